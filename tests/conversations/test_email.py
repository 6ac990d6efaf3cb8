"""The email channel, end to end: an ESP's inbound webhook (or the same email by IMAP)
into the customer's one thread, the advisor's reply out through a real SMTP server with
its threading headers, and the customer's answer back into the same thread."""

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from conversations.models import Attachment, EmailHeaders, Message, Thread
from conversations.providers import email as email_provider
from conversations.services import SendRefused, message_deliver, message_send
from conversations.services.email import email_receive
from crm.models import ContactPoint
from tests.email import fixture, mailgun_inbound, mailgun_tracking, postmark_inbound
from tests.factories import ContactPointFactory

pytestmark = pytest.mark.usefixtures("anymail_settings")
CAMILLE_EMAIL = "camille.martin@gmail.com"


@pytest.fixture
def camille_email(camille):
    return ContactPointFactory(customer=camille, kind="email", address=CAMILLE_EMAIL)


def _first_email(client, **replacements):
    raw = fixture("attachments.eml", **replacements)
    response = mailgun_inbound(client, raw)
    assert response.status_code == 200
    return Message.objects.get(provider="email")


@pytest.mark.django_db
def test_a_signed_mailgun_email_lands_in_the_customers_one_thread(client, camille_email, alice):
    """The sender's address (any case) finds Camille; her email joins her thread, routed to
    alice, with its headers, its PDF stored and the .exe refused (kept only in the raw MIME)."""
    raw = fixture("attachments.eml").replace(b"camille.martin@gmail.com", b"Camille.Martin@GMAIL.com")

    response = mailgun_inbound(client, raw)

    assert response.status_code == 200
    message = Message.objects.get(provider="email")
    thread = Thread.objects.get(customer=camille_email.customer)
    assert (message.thread, message.contact_point, message.channel) == (thread, camille_email, "email")
    assert message.body == "Voici mon avis d'imposition et un programme."
    assert (thread.handler, thread.last_inbound_channel, thread.waiting_since is not None) == (alice, "email", True)
    headers = message.email
    assert (headers.header_message_id, headers.subject) == ("attachments-0001@mail.gmail.com", "Justificatifs")
    assert default_storage.open(headers.raw.name).read() == raw
    pdf, exe = message.attachments.order_by("position")
    assert (pdf.state, pdf.content_type, pdf.file.read()[:5]) == ("stored", "application/pdf", b"%PDF-")
    assert (pdf.file_name, exe.file_name) == ("avis.pdf", "setup.exe")
    client.force_login(alice.user)
    download = client.get(f"/inbox/attachments/{pdf.pk}/")
    assert download["Content-Disposition"] == 'attachment; filename="avis.pdf"'
    assert download["Content-Type"] == "application/octet-stream"
    assert (exe.state, exe.file.name) == ("refused", "")
    assert "is not a file type we accept" in exe.error


@pytest.mark.django_db
def test_a_forged_or_unauthenticated_webhook_stores_nothing(client, camille_email):
    """A wrong Mailgun signature, or a Postmark POST without the webhook secret, is a 400."""
    raw = fixture("apple_mail_fr.eml")

    assert mailgun_inbound(client, raw, key="not-the-key").status_code == 400
    assert postmark_inbound(client, raw, auth=None).status_code == 400
    assert postmark_inbound(client, raw, auth="attitre-esp:wrong").status_code == 400

    assert not Message.objects.exists()
    assert not ContactPoint.objects.filter(kind="email").exclude(pk=camille_email.pk).exists()


@pytest.mark.django_db
def test_a_signed_webhook_without_the_webhook_secret_stores_nothing(client, camille_email, settings):
    """Mailgun's signature alone is not enough: a wrong basic auth is a 400; and with no
    ANYMAIL_WEBHOOK_SECRET configured at all, every email webhook is refused."""
    from tests.email import MAILGUN_SIGNING_KEY

    raw = fixture("apple_mail_fr.eml")
    settings.ANYMAIL = {"WEBHOOK_SECRET": "someone:else", "MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_SIGNING_KEY}
    assert mailgun_inbound(client, raw).status_code == 400
    settings.ANYMAIL = {"MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_SIGNING_KEY}
    assert mailgun_inbound(client, raw).status_code == 400
    assert mailgun_tracking(client, event="delivered", message_id="x@y").status_code == 400
    assert not Message.objects.exists()


@pytest.mark.django_db
def test_postmark_raw_email_from_an_unknown_address_is_a_prospect_in_the_pool(client, agency):
    """Postmark's JSON (RawEmail) from an address nobody has: a prospect in the default pool."""
    response = postmark_inbound(client, fixture("apple_mail_fr.eml"))

    assert response.status_code == 200
    message = Message.objects.get(provider="email")
    assert message.contact_point.address == "camille@icloud.com"
    assert message.contact_point.customer is None
    assert (message.thread.prospect, message.thread.handler, message.thread.agency) == (
        message.contact_point,
        None,
        agency,
    )
    assert message.body.startswith("Bonjour,\n\nQuel est le plafond du livret A ?")


@pytest.mark.django_db
def test_the_same_email_by_webhook_twice_and_by_imap_is_stored_once(client, camille_email):
    """Idempotent on Message-ID: a retried webhook and the IMAP copy find it stored, and
    leave no file behind."""
    raw = fixture("attachments.eml")
    assert mailgun_inbound(client, raw).status_code == 200
    files_before = _stored_files()

    assert mailgun_inbound(client, raw).status_code == 200
    again = email_receive(raw=raw, source="imap")

    assert Message.objects.filter(provider="email").count() == 1
    assert again.result.created is False
    assert _stored_files() == files_before


def _stored_files() -> set[str]:
    found = set()

    def walk(path):
        directories, files = default_storage.listdir(path)
        found.update(f"{path}/{name}" for name in files)
        for directory in directories:
            walk(f"{path}/{directory}" if path else directory)

    try:
        walk("email")
    except FileNotFoundError:
        pass
    return found


@pytest.mark.django_db
def test_quoted_replies_are_stripped_in_french_and_english(client, camille_email):
    """Gmail's "Le … a écrit :" (wrapped over two lines) and Outlook's separator: the
    timeline shows the reply; the full text stays one click away."""
    ContactPointFactory(customer=camille_email.customer, kind="email", address="camille.martin@outlook.com")
    mailgun_inbound(client, fixture("gmail_reply_fr.eml", PREVIOUS_ID="x@y", TO_ADDRESS="conseiller@attitre.example"))
    mailgun_inbound(client, fixture("outlook_reply_en.eml", PREVIOUS_ID="x@y"))

    gmail, outlook = Message.objects.filter(provider="email").order_by("pk")
    assert gmail.body == "Bonjour Alice,\n\nOui, jeudi 14 h me convient très bien.\n\nCamille"
    assert "Êtes-vous disponible jeudi ?" in gmail.email.full_text
    assert outlook.body == "Hello Alice,\n\nThursday works for me.\n\nRegards,\nCamille"
    assert "are you free on Thursday?" in outlook.email.full_text


@pytest.mark.django_db
def test_hostile_html_is_sanitised_and_remote_images_are_not_loaded(client, agency):
    """An HTML-only email: script, event handlers, javascript: links, CSS expressions and
    iframes are gone; the tracking pixel loses its source; the cid: image is our copy."""
    mailgun_inbound(client, fixture("html_only_hostile.eml"))

    message = Message.objects.get(provider="email")
    html = message.email.html
    for hostile in (
        "<script",
        "onload",
        "onclick",
        "javascript:",
        "expression(",
        "<iframe",
        "tracker.example",
        "<style",
    ):
        assert hostile not in html
    assert f'src="{email_provider.INLINE_SCHEME}:0"' in html
    assert message.body == "Voici mon relevé du mois.\n\ncliquez lien"
    (logo,) = message.attachments.all()
    assert (logo.state, logo.content_type) == ("stored", "image/png")


@pytest.mark.django_db
@pytest.mark.parametrize(("name", "noise"), [("out_of_office.eml", "auto_reply"), ("mailing_list.eml", "bulk")])
def test_automatic_mail_is_flagged_and_nobody_waits_for_an_answer(client, camille_email, name, noise):
    """An out-of-office (Auto-Submitted) or list mail (List-Id, Precedence) lands, flagged,
    without putting the thread in "customer waiting"."""
    mailgun_inbound(client, fixture(name))

    message = Message.objects.get(provider="email")
    assert message.email.noise == noise
    assert message.thread.waiting_since is None


@pytest.mark.django_db
def test_an_email_without_a_sender_is_kept_aside_not_lost(client, agency, caplog):
    """No From: nothing to file it under. It is answered 200 (a retry would not help),
    kept in storage for the mail administrator, and logged without its content."""
    raw = fixture("apple_mail_fr.eml").replace(b"From: Camille Martin <camille@icloud.com>\n", b"")

    assert mailgun_inbound(client, raw).status_code == 200

    assert not Message.objects.exists()
    (kept,) = [name for name in _stored_files() if "/rejected/" in name]
    assert default_storage.open(kept).read() == raw
    assert "kept aside" in caplog.text and "livret" not in caplog.text


# --- The reply and the customer's answer ------------------------------------------------


@pytest.mark.django_db
def test_the_advisors_reply_reaches_the_smtp_server_threaded_and_the_answer_comes_back(
    client, camille_email, alice, smtp_server
):
    """alice answers Camille's email by email: the SMTP server receives Re: her subject,
    From "Alice Durand — <agency>", In-Reply-To/References her Message-ID, our own
    Message-ID and the thread's signed Reply-To. Camille answers it from a second
    address: by the token, her answer joins her thread, the address unconfirmed."""
    first = _first_email(client)
    thread = first.thread

    reply = message_send(thread=thread, author=alice, body="Bien reçu, merci Camille.")
    message_deliver(message_id=reply.pk)

    (mail_from, rcpt_tos, sent) = smtp_server.received[0]
    assert (mail_from, rcpt_tos) == ("conseiller@attitre.example", [CAMILLE_EMAIL])
    assert sent["Subject"] == "Re: Justificatifs"
    assert sent["From"].addresses[0].display_name == "Alice Durand — Agence Lyon Bellecour"
    assert sent["From"].addresses[0].addr_spec == "conseiller@attitre.example"
    assert sent["In-Reply-To"] == "<attachments-0001@mail.gmail.com>"
    assert sent["References"] == "<attachments-0001@mail.gmail.com>"
    our_id = reply.email.header_message_id
    assert sent["Message-ID"] == f"<{our_id}>" and our_id.endswith("@attitre.example")
    reply_to = sent["Reply-To"].addresses[0].addr_spec
    assert reply_to == email_provider.reply_address(thread.pk)
    assert sent.get_body(("plain",)).get_content().strip() == "Bien reçu, merci Camille."
    assert "Bien reçu, merci Camille." in sent.get_body(("html",)).get_content()
    reply.refresh_from_db()
    assert reply.status == "sent"

    answer = fixture("gmail_reply_fr.eml", PREVIOUS_ID=our_id, TO_ADDRESS=reply_to).replace(
        b"Camille.Martin@GMAIL.com", b"camille.perso@example.fr"
    )
    assert mailgun_inbound(client, answer, recipient=reply_to).status_code == 200

    answered = Message.objects.filter(provider="email", direction="inbound").latest("pk")
    assert answered.thread == thread
    assert (answered.contact_point.address, answered.contact_point.confirmed) == ("camille.perso@example.fr", False)
    assert answered.contact_point.customer == camille_email.customer


@pytest.mark.django_db
def test_an_answer_naming_our_message_in_references_joins_its_thread(client, camille_email, alice, smtp_server):
    """Without the token (a client that answered From, not Reply-To), References finds the thread."""
    thread = _first_email(client).thread
    reply = message_send(thread=thread, author=alice, body="Bien reçu.")
    message_deliver(message_id=reply.pk)

    answer = fixture("outlook_reply_en.eml", PREVIOUS_ID=reply.email.header_message_id).replace(
        b"camille.martin@outlook.com", b"c.martin@work.example"
    )
    mailgun_inbound(client, answer)

    assert Message.objects.filter(provider="email", direction="inbound").latest("pk").thread == thread


@pytest.mark.django_db
def test_a_forged_token_is_not_a_way_into_someones_thread(client, camille_email, alice, agency):
    """A reply address with a made-up signature threads nothing: the stranger is a prospect."""
    thread = _first_email(client).thread
    forged = f"conseiller+t{thread.pk}.{'0' * 24}@attitre.example"
    stranger = fixture("apple_mail_fr.eml").replace(b"To: conseiller@attitre.example", f"To: {forged}".encode())

    mailgun_inbound(client, stranger, recipient=forged)

    message = Message.objects.filter(provider="email").latest("pk")
    assert message.thread != thread and message.thread.prospect is not None


@pytest.mark.django_db
def test_a_new_email_needs_a_subject_and_an_opted_out_address_refuses(camille_email, alice):
    """To a customer who never wrote by email, the advisor types a subject; an opted-out
    address refuses the send with `opted_out`; nothing is stored either time."""
    thread = Thread.objects.create(customer=camille_email.customer, agency=alice.agency, handler=alice)

    with pytest.raises(SendRefused) as refused:
        message_send(thread=thread, author=alice, body="Bonjour", channel="email")
    assert refused.value.code == "subject_required"

    message = message_send(thread=thread, author=alice, body="Bonjour", channel="email", subject="Votre dossier")
    assert (message.email.subject, message.email.in_reply_to) == ("Votre dossier", "")

    ContactPoint.objects.filter(pk=camille_email.pk).update(consent="opted_out")
    with pytest.raises(SendRefused) as refused:
        message_send(thread=thread, author=alice, body="Encore", channel="email", subject="x")
    assert refused.value.code == "opted_out"
    assert Message.objects.count() == 1


@pytest.mark.django_db
def test_an_attachment_goes_out_and_one_over_the_limit_is_refused(camille_email, alice, smtp_server, settings):
    """A PDF travels with the email; files past EMAIL_MAX_ATTACHMENT_BYTES are refused before storage."""
    thread = Thread.objects.create(customer=camille_email.customer, agency=alice.agency, handler=alice)
    pdf = SimpleUploadedFile("rib.pdf", b"%PDF-1.4 rib", content_type="application/pdf")
    message = message_send(
        thread=thread, author=alice, body="Votre RIB", attachments=[pdf], channel="email", subject="RIB"
    )
    message_deliver(message_id=message.pk)

    (_from, _to, sent) = smtp_server.received[0]
    (attached,) = list(sent.iter_attachments())
    assert (attached.get_content_type(), attached.get_content()) == ("application/pdf", b"%PDF-1.4 rib")
    assert attached.get_filename() == "rib.pdf"

    settings.EMAIL_MAX_ATTACHMENT_BYTES = 10
    big = SimpleUploadedFile("big.pdf", b"%PDF-" + b"0" * 20, content_type="application/pdf")
    with pytest.raises(SendRefused) as refused:
        message_send(thread=thread, author=alice, body="x", attachments=[big], channel="email", subject="x")
    assert refused.value.code == "attachment_too_large"
    assert Attachment.objects.count() == 1


@pytest.mark.django_db
def test_a_refused_recipient_fails_the_message_with_a_reason(camille_email, alice, smtp_server):
    """The SMTP server's 550 for the recipient: failed, with the code, no retry."""
    smtp_server.refuse_recipients[CAMILLE_EMAIL] = (550, "5.1.1 User unknown")
    thread = Thread.objects.create(customer=camille_email.customer, agency=alice.agency, handler=alice)
    message = message_send(thread=thread, author=alice, body="Bonjour", channel="email", subject="Bonjour")

    message = message_deliver(message_id=message.pk)

    assert (message.status, message.error_code) == ("failed", "smtp 550")
    assert "check the customer's address" in message.error_message
    assert smtp_server.received == []


@pytest.mark.django_db
def test_a_mail_server_that_is_down_is_retried_and_an_unanswered_one_is_not(camille_email, alice, settings):
    """Connection refused: back to queued, retried later. A server that accepts the
    connection and never answers: failed, "may have been sent" (at most once)."""
    import socket

    thread = Thread.objects.create(customer=camille_email.customer, agency=alice.agency, handler=alice)
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 18726, 0.5
    message = message_send(thread=thread, author=alice, body="Bonjour", channel="email", subject="Bonjour")
    assert message_deliver(message_id=message.pk).status == "queued"

    silent = socket.socket()
    silent.bind(("127.0.0.1", 18727))
    silent.listen()
    try:
        settings.EMAIL_PORT = 18727
        Message.objects.filter(pk=message.pk).update(delivery_attempts=0)
        message = message_deliver(message_id=message.pk)
    finally:
        silent.close()
    assert message.status == "failed"
    assert "may have been sent" in message.error_message


@pytest.mark.django_db
def test_a_hard_bounce_marks_the_message_and_the_address(client, camille_email, alice, smtp_server):
    """A DSN (5.1.1) about our email: the message is undelivered with the status, the
    address bouncing; a soft one (4.2.2) fails the message and leaves the address alone."""
    thread = Thread.objects.create(customer=camille_email.customer, agency=alice.agency, handler=alice)
    hard = message_send(thread=thread, author=alice, body="Bonjour", channel="email", subject="Bonjour")
    soft = message_send(thread=thread, author=alice, body="Encore", channel="email", subject="Bonjour")
    message_deliver(message_id=hard.pk)
    message_deliver(message_id=soft.pk)

    for message, status in ((soft, "4.2.2"), (hard, "5.1.1")):
        dsn = fixture(
            "bounce_dsn.eml",
            ORIGINAL_ID=message.email.header_message_id,
            STATUS_ACTION="failed",
            STATUS_CODE=status,
            STATUS_RECIPIENT=CAMILLE_EMAIL,
        )
        if message is soft:
            assert mailgun_inbound(client, dsn).status_code == 200
            assert ContactPoint.objects.get(pk=camille_email.pk).bouncing_since is None
        else:
            mailgun_inbound(client, dsn.replace(b"dsn-0001", b"dsn-0002"))

    hard.refresh_from_db()
    soft.refresh_from_db()
    assert (hard.status, hard.error_code) == ("undelivered", "dsn 5.1.1")
    assert (soft.status, soft.error_code) == ("undelivered", "dsn 4.2.2")
    camille_email.refresh_from_db()
    assert camille_email.bouncing_since is not None
    assert "does not accept email" in camille_email.bounce_reason
    assert not Message.objects.filter(direction="inbound").exists()

    mailgun_inbound(client, fixture("attachments.eml"))  # Camille writes from it again
    camille_email.refresh_from_db()
    assert (camille_email.bouncing_since, camille_email.bounce_reason) == (None, "")


@pytest.mark.django_db
def test_esp_tracking_moves_the_status_forward_only(client, camille_email, alice, smtp_server):
    """Mailgun's signed tracking webhooks: delivered, then opened (read); a late
    `delivered` does not move it back; a complaint opts the address out."""
    thread = Thread.objects.create(customer=camille_email.customer, agency=alice.agency, handler=alice)
    message = message_deliver(
        message_id=message_send(thread=thread, author=alice, body="Bonjour", channel="email", subject="B").pk
    )
    Message.objects.filter(pk=message.pk).update(provider_message_id="20261202.mailgun-id@mg.attitre.example")
    mid = "20261202.mailgun-id@mg.attitre.example"

    assert mailgun_tracking(client, event="delivered", message_id=mid).status_code == 200
    assert mailgun_tracking(client, event="opened", message_id=mid).status_code == 200
    assert mailgun_tracking(client, event="delivered", message_id=mid).status_code == 200
    message.refresh_from_db()
    assert message.status == "read"

    assert mailgun_tracking(client, event="complained", message_id=mid).status_code == 200
    camille_email.refresh_from_db()
    assert camille_email.consent == "opted_out"
    assert mailgun_tracking(client, event="delivered", message_id=mid, key="forged").status_code == 400


@pytest.mark.django_db
def test_reply_tokens_are_signed_and_case_blind(settings):
    """A token survives a mail system folding the local part's case; another thread's id
    with this signature, or a changed signature, is not a token."""
    address = email_provider.reply_address(42)
    assert email_provider.thread_id_from_recipients([address.upper()]) == 42
    assert email_provider.thread_id_from_recipients([address.replace("+t42.", "+t43.")]) is None
    settings.SECRET_KEY = "another-secret-key-entirely-0123456789abcdef"
    assert email_provider.thread_id_from_recipients([address]) is None


def test_addresses_are_normalised_case_and_idn():
    """Case folded, an internationalised domain in its IDNA form; junk is refused clearly."""
    assert email_provider.normalize_address("Camille@Exemple.FR") == "camille@exemple.fr"
    assert email_provider.normalize_address("camille@société.fr") == "camille@xn--socit-esab.fr"
    with pytest.raises(email_provider.EmailRejected) as rejected:
        email_provider.normalize_address("pas une adresse")
    assert "is not an email address" in rejected.value.reason


@pytest.mark.django_db
def test_email_headers_row_exists_for_every_email_message(client, camille_email):
    """Each inbound email keeps its headers; a WhatsApp message has none."""
    _first_email(client)
    assert EmailHeaders.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_simulators_mailbox_plays_the_whole_loop(live_app, settings, camille_email, alice):
    """make run without an ESP: the customer's mailbox posts a signed Mailgun webhook to the
    running app; the advisor's reply reaches the simulator's SMTP server; answering it from
    the mailbox threads back into the same conversation."""
    import httpx

    from conversations.providers.mail_simulator import Mailbox
    from conversations.providers.simulator import Simulator
    from tests.email import MAILGUN_SIGNING_KEY, WEBHOOK_SECRET
    from tests.servers import ServerThread

    settings.DEBUG = True
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.EMAIL_TIMEOUT = "127.0.0.1", 18761, 5
    mailbox = Mailbox(
        address=CAMILLE_EMAIL,
        name="Camille Martin",
        bank_address="conseiller@attitre.example",
        signing_key=MAILGUN_SIGNING_KEY,
        webhook_secret=WEBHOOK_SECRET,
        smtp_port=18761,
    )
    sim = Simulator(account_sid="AC" + "0" * 32, auth_token="x", app_base_url=live_app.url, phones=[], mailbox=mailbox)
    with ServerThread(sim, lifespan="on") as server, httpx.Client(base_url=server.url) as http:
        assert http.get("/mailbox").status_code == 200
        sent = http.post("/api/mailbox", json={"subject": "Ma carte", "body": "Bonjour, ma carte est bloquée."})
        assert sent.json() == {"status": 200}
        first = Message.objects.get(direction="inbound")
        assert (first.thread.customer, first.email.subject) == (camille_email.customer, "Ma carte")

        reply = message_send(thread=first.thread, author=alice, body="Je regarde tout de suite.")
        message_deliver(message_id=reply.pk)
        received = [m for m in http.get("/api/mailbox").json()["messages"] if m["direction"] == "received"]
        assert [(m["subject"], m["body"].strip()) for m in received] == [("Re: Ma carte", "Je regarde tout de suite.")]

        answer = http.post("/api/mailbox", json={"body": "Merci !", "in_reply_to": received[0]["message_id"]})
        assert answer.json() == {"status": 200}
    last = Message.objects.filter(direction="inbound").latest("pk")
    assert (last.thread, last.body, last.email.in_reply_to) == (first.thread, "Merci !", reply.email.header_message_id)


QUOTING_STYLES = [
    "Hi\n\nOn Mon, 1 Dec 2026 at 10:00, Alice <a@b.example> wrote:\n> quoted\n",
    "Bonjour\n\n-----Original Message-----\nFrom: x\nSent: y\nTo: z\nSubject: s\n\nold",
    "Merci\n\nDe : Alice\nEnvoyé : lundi\nÀ : Camille\nObjet : RDV\n\nancien",
    "> Le 1 déc. 2026, Alice a écrit :\n> x\nreply",
    "From: a\nTo: b\n\nbody\nFrom: c\nSent: d\n",
    "Le lun. 30 nov. 2026 à 10:00, Alice\nDurand a écrit :\n> x",
]


@pytest.mark.parametrize(
    "name",
    ["gmail_reply_fr.eml", "outlook_reply_en.eml", "apple_mail_fr.eml", "attachments.eml", "out_of_office.eml", None],
)
def test_the_latest_reply_is_the_one_mail_parser_reply_reads(name):
    """strip_quoted stops at the latest reply and tries the quote-header pattern only at
    line starts and newlines (both for speed), and reads exactly what mail-parser-reply's
    parse_reply does: for each fixture, a text quoting it twice, and other quoting styles."""
    from mailparser_reply import EmailReplyParser

    if name is None:
        samples = QUOTING_STYLES + ["\n\n".join(QUOTING_STYLES)]
    else:
        text = email_provider.parse_email(fixture(name, PREVIOUS_ID="x@y", TO_ADDRESS="a@b")).full_text
        samples = [text, text * 3]
    for sample in samples:
        wrapped = email_provider.QUOTE_HEADER_WRAPPED.sub(r"\1 \2", sample)
        expected = (EmailReplyParser(languages=["fr", "en"]).parse_reply(wrapped) or "").strip() or sample.strip()
        assert email_provider.strip_quoted(sample) == expected


@pytest.mark.django_db(transaction=True)
def test_two_workers_delivering_the_same_email_send_it_once(client, camille_email, alice, smtp_server):
    """The same email reply's task run by two workers at the same instant: the SMTP server
    receives it once (the claim queued → sending is conditional, as for Twilio)."""
    from tests.concurrency import run_at_once

    thread = _first_email(client).thread
    reply = message_send(thread=thread, author=alice, body="Une seule fois, merci.")

    outcomes = run_at_once([lambda: message_deliver(message_id=reply.pk)] * 2, timeout=30)

    assert not [outcome for outcome in outcomes if isinstance(outcome, Exception)]
    assert len(smtp_server.received) == 1
    reply.refresh_from_db()
    assert (reply.status, reply.delivery_attempts) == ("sent", 1)


@pytest.mark.django_db(transaction=True)
def test_whatsapp_then_email_then_whatsapp_is_one_conversation(client, camille_email, alice, smtp_server):
    """Camille writes on WhatsApp, then by email, then on WhatsApp: one thread, each message
    with its channel, and the reply goes on the channel she last wrote on."""
    from tests import twilio

    assert twilio.post_signed("/webhooks/twilio/messages/", twilio.whatsapp_text(body="Bonjour")).status_code == 200
    _first_email(client)
    thread = Thread.objects.get(customer=camille_email.customer)
    reply = message_send(thread=thread, author=alice, body="Reçu par email.")
    assert reply.channel == "email"
    message_deliver(message_id=reply.pk)
    assert twilio.post_signed("/webhooks/twilio/messages/", twilio.whatsapp_text(body="Et encore")).status_code == 200

    channels = list(thread.messages.order_by("pk").values_list("direction", "channel"))
    assert channels == [("inbound", "whatsapp"), ("inbound", "email"), ("outbound", "email"), ("inbound", "whatsapp")]
    assert Thread.objects.count() == 1
    thread.refresh_from_db()
    assert thread.last_inbound_channel == "whatsapp"


@pytest.mark.django_db
def test_email_has_no_24_hour_window(client, camille_email, alice, smtp_server):
    """Camille's last email is 30 days old: a free-text email reply still goes out."""
    from datetime import timedelta

    from django.utils import timezone

    message = _first_email(client)
    Message.objects.filter(pk=message.pk).update(created_at=timezone.now() - timedelta(days=30))
    Thread.objects.filter(pk=message.thread_id).update(last_email_inbound_at=timezone.now() - timedelta(days=30))

    reply = message_send(thread=message.thread, author=alice, body="Un mois après.", channel="email")
    message_deliver(message_id=reply.pk)

    assert smtp_server.received[-1][1] == [CAMILLE_EMAIL]
