"""Each ESP's inbound format that anymail reads, as the ESP documents it: SendGrid's Inbound
Parse (raw MIME), Mailjet's Parse API, Brevo's inbound webhook (Mailgun and Postmark:
test_email.py; Amazon SES needs boto3, which is not installed: docs/email.md). Each lands
in the customer's one thread, each refuses a POST without the webhook secret, and the same
email by two ESPs is one message."""

import pytest
from django.core.files.storage import default_storage

from conversations.models import Message
from tests.email import brevo_inbound, fixture, mailgun_inbound, mailjet_inbound, sendgrid_inbound
from tests.factories import ContactPointFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("anymail_settings")]
POSTS = {"sendgrid": sendgrid_inbound, "mailjet": mailjet_inbound, "brevo": brevo_inbound}


@pytest.fixture(autouse=True)
def _brevo_key(anymail_settings):
    # anymail's Brevo view wants the API key it fetches attachments with (none are fetched here).
    anymail_settings.ANYMAIL = {**anymail_settings.ANYMAIL, "BREVO_API_KEY": "xkeysib-test-only"}


@pytest.fixture
def camille_email(camille):
    return ContactPointFactory(customer=camille, kind="email", address="camille.martin@gmail.com")


@pytest.mark.parametrize("esp", POSTS)
def test_each_esps_inbound_format_lands_in_the_customers_thread(client, camille_email, alice, esp):
    """Camille's email by this ESP: in her thread, routed to alice, with its Message-ID,
    subject and reply text; the ESPs that post the whole MIME have it kept as it came."""
    raw = fixture("gmail_reply_fr.eml", PREVIOUS_ID="earlier@mail.gmail.com", TO_ADDRESS="conseiller@attitre.example")

    response = POSTS[esp](client, raw)

    assert response.status_code == 200, response.content
    message = Message.objects.select_related("email", "thread").get(provider="email")
    assert (message.contact_point, message.thread.customer, message.thread.handler) == (
        camille_email,
        camille_email.customer,
        alice,
    )
    headers = message.email
    assert (headers.header_message_id, headers.subject, headers.in_reply_to) == (
        "CAF=gmail-reply-fr-0001@mail.gmail.com",
        "Re: Votre rendez-vous",
        "earlier@mail.gmail.com",
    )
    assert message.body.startswith("Bonjour Alice,\n\nOui, jeudi 14 h me convient très bien.")
    assert "a écrit" not in message.body
    if esp == "sendgrid":
        assert default_storage.open(headers.raw.name).read() == raw


@pytest.mark.parametrize("esp", POSTS)
def test_each_esps_webhook_refuses_a_post_without_the_secret(client, camille_email, esp):
    """No basic auth, or the wrong one: refused (400/401), nothing stored."""
    raw = fixture("apple_mail_fr.eml")
    assert POSTS[esp](client, raw, auth=None).status_code in (400, 401)
    assert POSTS[esp](client, raw, auth="attitre-esp:wrong").status_code in (400, 401)
    assert not Message.objects.exists()


def test_mailjets_attachments_are_stored_as_files(client, camille_email):
    """Mailjet hands files over in its own JSON: stored with the message, as from MIME."""
    assert mailjet_inbound(client, fixture("attachments.eml")).status_code == 200
    message = Message.objects.get(provider="email")
    pdf = message.attachments.get(file_name="avis.pdf")
    assert (pdf.state, pdf.file.read()[:5]) == ("stored", b"%PDF-")


def test_the_same_email_by_two_esps_is_stored_once(client, camille_email):
    """A bank moving from Mailgun to SendGrid, both routing for a while: one message."""
    raw = fixture("attachments.eml")
    assert mailgun_inbound(client, raw).status_code == 200
    assert sendgrid_inbound(client, raw).status_code == 200
    assert mailjet_inbound(client, raw).status_code == 200
    assert Message.objects.filter(provider="email").count() == 1
