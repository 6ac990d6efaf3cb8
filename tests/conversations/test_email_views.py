"""Email in the advisor's inbox and in the API: subject, stripped quotes one click away,
the original in a sandbox, the raw MIME for audit, a subject field in the composer."""

import pytest

from conversations.models import Message, Thread
from conversations.services.email import email_receive
from tests.email import fixture
from tests.factories import AdvisorFactory, AgencyFactory, ContactPointFactory

pytestmark = pytest.mark.django_db
# As for any message list (tests/integrations/test_endpoints.py): the key, the thread, the page with
# its email headers joined, its attachments.
QUERIES = 4


@pytest.fixture
def camille_email(camille):
    ContactPointFactory(customer=camille, kind="email", address="camille.martin@gmail.com")
    return camille


def _receive(name: str, **replacements) -> Message:
    email_receive(raw=fixture(name, **replacements), source="test")
    return Message.objects.filter(provider="email").latest("pk")


def test_the_timeline_shows_the_subject_the_reply_and_the_quoted_text_folded(client, alice, camille_email):
    message = _receive("gmail_reply_fr.eml", PREVIOUS_ID="x@y", TO_ADDRESS="conseiller@attitre.example")
    client.force_login(alice.user)

    html = client.get(f"/inbox/threads/{message.thread_id}/").content.decode()

    assert "<strong>Re: Votre rendez-vous</strong>" in html
    assert '<details class="email-quoted"><summary>Show quoted text</summary>' in html
    assert f'href="/inbox/messages/{message.pk}/email/"' in html
    assert 'id="reply-subject"' in html
    assert 'maxlength="20000"' in html  # email takes longer replies than WhatsApp's 1,600


def test_the_original_is_sanitised_sandboxed_and_shows_our_inline_image(client, alice, agency):
    """The original view: under a CSP sandbox (no script, no remote load), the cid: image
    pointing at the inbox's copy, nothing hostile left."""
    message = _receive("html_only_hostile.eml")
    Thread.objects.filter(pk=message.thread_id).update(handler=alice)
    (logo,) = message.attachments.all()
    client.force_login(alice.user)

    response = client.get(f"/inbox/messages/{message.pk}/email/")

    assert response.status_code == 200
    policy = response.headers["Content-Security-Policy"]
    assert policy.startswith("sandbox allow-same-origin allow-popups allow-popups-to-escape-sandbox;")
    assert "allow-scripts" not in policy and "default-src 'none'" in policy and "img-src 'self'" in policy
    html = response.content.decode()
    assert f'<img src="/inbox/attachments/{logo.pk}/" alt="logo">' in html
    assert "<script" not in html.split("<hr>")[1] and "javascript:" not in html and "tracker.example" not in html


def test_the_raw_email_downloads_and_strangers_get_404(client, alice, camille_email):
    raw = fixture("apple_mail_fr.eml").replace(b"camille@icloud.com", b"camille.martin@gmail.com")
    email_receive(raw=raw, source="test")
    message = Message.objects.get(provider="email")
    client.force_login(alice.user)

    response = client.get(f"/inbox/messages/{message.pk}/email/?raw=1")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert b"".join(response.streaming_content) == raw

    stranger = AdvisorFactory(agency=AgencyFactory(code="paris"))
    client.force_login(stranger.user)
    assert client.get(f"/inbox/messages/{message.pk}/email/").status_code == 404


def test_the_composer_sends_an_email_with_the_typed_subject(client, alice, camille_email):
    thread = _receive("attachments.eml").thread
    client.force_login(alice.user)

    client.post(f"/inbox/threads/{thread.pk}/reply/", {"body": "Merci", "channel": "email", "subject": "Votre RIB"})

    reply = Message.objects.get(direction="outbound")
    assert (reply.channel, reply.email.subject, reply.email.in_reply_to) == (
        "email",
        "Votre RIB",
        "attachments-0001@mail.gmail.com",
    )


def test_the_api_shows_email_headers_and_sends_with_a_subject(client, alice, camille_email, django_assert_num_queries):
    """GET messages: each email's headers (null for others), in a fixed number of queries."""
    from integrations.services import api_key_create

    thread = _receive("attachments.eml").thread
    _receive("gmail_reply_fr.eml", PREVIOUS_ID="attachments-0001@mail.gmail.com", TO_ADDRESS="x@y.fr")
    from integrations.models import ApiKey

    _key, secret = api_key_create(name="crm", scopes=list(ApiKey.Scope.values), agency=alice.agency)
    headers = {"authorization": f"Bearer {secret}"}

    client.get(f"/api/v1/threads/{thread.pk}/messages/", headers=headers)  # warms the key's cache, if any
    _receive("outlook_reply_en.eml", PREVIOUS_ID="attachments-0001@mail.gmail.com")
    with django_assert_num_queries(QUERIES):
        response = client.get(f"/api/v1/threads/{thread.pk}/messages/", headers=headers)
    assert response.status_code == 200, response.content

    emails = [item["email"] for item in response.json()["results"]]
    assert [e["subject"] for e in emails] == ["Justificatifs", "Re: Votre rendez-vous", "RE: Your appointment"]
    assert emails[1]["in_reply_to"] == "attachments-0001@mail.gmail.com"
    assert emails[1]["references"] == ["attachments-0001@mail.gmail.com"]

    sent = client.post(
        f"/api/v1/threads/{thread.pk}/messages/",
        {"body": "Bonjour", "channel": "email", "subject": "Nouveau", "as_advisor": alice.pk},
        content_type="application/json",
        headers=headers,
    )
    assert sent.status_code == 202, sent.content
    assert sent.json()["email"]["subject"] == "Nouveau"
