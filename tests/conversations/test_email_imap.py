"""IMAP polling against a real Dovecot: by UID, idempotent, flagged only once stored,
UIDVALIDITY respected; the same email from a webhook and from the mailbox is one message."""

import pytest
from imap_tools import MailBox, MailBoxUnencrypted

from conversations.models import MailboxCursor, Message
from conversations.providers.imap import MailboxUnavailable
from conversations.services.email import email_receive, mailbox_poll
from tests.email import fixture
from tests.factories import ContactPointFactory
from tests.imap_server import IMAP_PASSWORD, IMAP_PORT, IMAP_USER, free_port


def _append(*raws: bytes) -> None:
    with MailBoxUnencrypted("127.0.0.1", IMAP_PORT).login(IMAP_USER, IMAP_PASSWORD) as box:
        for raw in raws:
            box.append(raw, "INBOX")


def _seen_flags() -> dict[int, bool]:
    with MailBoxUnencrypted("127.0.0.1", IMAP_PORT).login(IMAP_USER, IMAP_PASSWORD) as box:
        return {int(m.uid): "\\Seen" in m.flags for m in box.fetch(mark_seen=False, headers_only=True)}


@pytest.fixture
def camille_email(camille):
    return ContactPointFactory(customer=camille, kind="email", address="camille.martin@gmail.com")


@pytest.mark.django_db
def test_new_messages_are_stored_by_uid_then_flagged_seen(imap_server, camille_email):
    """Two emails in the mailbox: both stored in order, both flagged \\Seen, the cursor at
    the last UID; a second poll finds nothing new."""
    _append(fixture("attachments.eml"), fixture("out_of_office.eml"))

    polled = mailbox_poll(url=imap_server)

    assert polled.stored == 2
    bodies = list(Message.objects.filter(provider="email").order_by("pk").values_list("body", flat=True))
    assert bodies == ["Voici mon avis d'imposition et un programme.", "Je suis absente jusqu'au 7 décembre."]
    assert _seen_flags() == {1: True, 2: True}
    cursor = MailboxCursor.objects.get()
    assert (cursor.last_uid, cursor.uid_validity is not None, "imap-test-password" in cursor.mailbox) == (
        2,
        True,
        False,
    )
    assert mailbox_poll(url=imap_server).stored == 0


@pytest.mark.django_db
def test_an_email_already_received_by_webhook_is_not_stored_twice(imap_server, camille_email):
    """The ESP's webhook delivered it first; the mailbox's copy is seen again, flagged, not stored."""
    raw = fixture("attachments.eml")
    email_receive(raw=raw, source="mailgun")
    _append(raw)

    polled = mailbox_poll(url=imap_server)

    assert (polled.stored, polled.seen_again) == (0, 1)
    assert Message.objects.filter(provider="email").count() == 1
    assert _seen_flags() == {1: True}


@pytest.mark.django_db
def test_a_failure_to_store_leaves_the_message_unflagged_for_the_next_poll(imap_server, camille_email, monkeypatch):
    """Storage fails on the second email: the first is stored and flagged, the second stays
    unseen and the cursor stays before it; the next poll stores it."""
    _append(fixture("attachments.eml"), fixture("apple_mail_fr.eml"))
    from conversations.services import email as email_service

    real = email_service.email_receive
    calls = []

    def failing_second(**kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk full")
        return real(**kwargs)

    monkeypatch.setattr(email_service, "email_receive", failing_second)
    with pytest.raises(OSError):
        mailbox_poll(url=imap_server)
    assert _seen_flags() == {1: True, 2: False}
    assert MailboxCursor.objects.get().last_uid == 1

    monkeypatch.setattr(email_service, "email_receive", real)
    assert mailbox_poll(url=imap_server).stored == 1
    assert Message.objects.filter(provider="email").count() == 2


@pytest.mark.django_db
def test_a_new_uidvalidity_reads_the_folder_again_without_duplicates(imap_server, camille_email):
    """The folder was rebuilt (another UIDVALIDITY): read from the start; what was stored
    is found stored, nothing is lost or doubled."""
    _append(fixture("attachments.eml"))
    mailbox_poll(url=imap_server)
    MailboxCursor.objects.update(uid_validity=1, last_uid=99)

    polled = mailbox_poll(url=imap_server)

    assert (polled.stored, polled.seen_again) == (0, 1)
    assert MailboxCursor.objects.get().last_uid == 1


@pytest.mark.django_db
def test_a_wrong_password_or_no_server_is_a_clear_error(imap_server):
    """Refused login, nobody listening: MailboxUnavailable, saying which, never the password."""
    with pytest.raises(MailboxUnavailable) as refused:
        mailbox_poll(url=imap_server.replace(IMAP_PASSWORD, "wrong"))
    assert refused.value.reason == f"The IMAP server refused the login of {IMAP_USER}."

    with pytest.raises(MailboxUnavailable) as unreachable:
        mailbox_poll(url=f"imap://{IMAP_USER}:x@127.0.0.1:{free_port()}/INBOX")
    assert "could not be reached" in unreachable.value.reason and "x@" not in unreachable.value.reason

    with pytest.raises(MailboxUnavailable):
        mailbox_poll(url="https://example.com/")


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["imaps", "starttls"])
def test_a_mailbox_over_tls_is_read_with_its_certificate_verified(imap_tls_server, camille_email, settings, kind):
    """Dovecot requiring TLS, by IMAPS or by STARTTLS: with its authority in
    EMAIL_IMAP_CA_FILE the email is stored; without it the certificate is refused, said so,
    and nothing is read."""
    url = imap_tls_server.imaps_url if kind == "imaps" else imap_tls_server.starttls_url
    with MailBox("127.0.0.1", imap_tls_server.imaps_port, ssl_context=_trusting(imap_tls_server.cafile)).login(
        IMAP_USER, IMAP_PASSWORD
    ) as box:
        box.append(fixture("attachments.eml"), "INBOX")

    settings.EMAIL_IMAP_CA_FILE = ""
    with pytest.raises(MailboxUnavailable) as untrusted:
        mailbox_poll(url=url)
    assert "certificate could not be verified" in untrusted.value.reason
    assert "EMAIL_IMAP_CA_FILE" in untrusted.value.reason
    assert not Message.objects.exists()

    settings.EMAIL_IMAP_CA_FILE = imap_tls_server.cafile
    assert mailbox_poll(url=url).stored == 1
    assert Message.objects.get(provider="email").contact_point == camille_email
    assert MailboxCursor.objects.get().mailbox.startswith("imaps://" if kind == "imaps" else "imap+starttls://")


@pytest.mark.django_db
def test_starttls_to_a_server_without_tls_is_refused_before_the_password(imap_server):
    """imap+starttls:// to a server that offers no STARTTLS: a clear error, no login tried."""
    url = imap_server.replace("imap://", "imap+starttls://")
    with pytest.raises(MailboxUnavailable) as refused:
        mailbox_poll(url=url)
    assert (
        refused.value.reason == "The IMAP server 127.0.0.1 would not start TLS (STARTTLS); the password was not sent."
    )
    assert not MailboxCursor.objects.filter(uid_validity__isnull=False).exists()


def _trusting(cafile: str):
    import ssl

    return ssl.create_default_context(cafile=cafile)
