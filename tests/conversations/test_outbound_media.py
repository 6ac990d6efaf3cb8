"""The route Twilio fetches outbound attachments from: a signed, expiring token is the only access."""

import time
from pathlib import PurePath
from unittest import mock
from urllib.parse import urlsplit

import pytest
from django.core import signing
from django.core.files.base import ContentFile
from django.test import Client

from conversations.media import attachment_media_url
from conversations.models import Attachment, Message, Thread

pytestmark = pytest.mark.django_db
PDF = b"%PDF-1.4 releve de compte"


@pytest.fixture
def thread(camille, alice):
    return Thread.objects.create(
        customer=camille, dedicated_advisor=camille.dedicated_advisor, agency=camille.agency, handler=alice
    )


def attachment_of(thread, direction: str, content_type: str = "application/pdf", name: str = "releve.pdf"):
    message = Message.objects.create(
        thread=thread,
        direction=direction,
        channel="whatsapp",
        contact_point=thread.customer.contact_points.get(kind="whatsapp"),
        author=thread.handler if direction == "outbound" else None,
        body="",
        status="sending" if direction == "outbound" else "received",
    )
    attachment = Attachment.objects.create(message=message, content_type=content_type, state="stored", size=len(PDF))
    attachment.file.save(name, ContentFile(PDF), save=True)
    return attachment


def path_for(attachment: Attachment) -> str:
    return urlsplit(attachment_media_url(attachment_id=attachment.pk, file_name=attachment.file.name)).path


def test_outbound_attachment_downloads_without_a_session(thread, django_assert_num_queries):
    """No cookie, no login: the file, its stored type, a safe file name, never sniffed nor cached by a proxy."""
    attachment = attachment_of(thread, "outbound")
    name = PurePath(attachment.file.name).name
    path = path_for(attachment)
    assert path.startswith("/webhooks/twilio/media/") and path.endswith(f"/{name}")

    with django_assert_num_queries(1):
        response = Client().get(path)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == PDF
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"] == f'attachment; filename="{name}"'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cache-Control"] == "private"
    assert not response.cookies


def test_url_is_absolute_on_the_public_base_url(thread, settings):
    """Twilio is given an absolute URL on PUBLIC_BASE_URL."""
    attachment = attachment_of(thread, "outbound")
    url = attachment_media_url(attachment_id=attachment.pk, file_name=attachment.file.name)
    assert url.startswith(f"{settings.PUBLIC_BASE_URL}/webhooks/twilio/media/")


def other_signature(token: str, pk: int) -> str:
    return token[:-1] + ("A" if token[-1] != "A" else "B")


def other_attachment(token: str, pk: int) -> str:
    # Another id in the payload, with the signature of ours.
    payload = signing.b64_encode(str(pk + 1).encode()).decode()
    return ":".join([payload, *token.split(":")[1:]])


def other_salt(token: str, pk: int) -> str:
    return signing.dumps(pk)


def garbage(token: str, pk: int) -> str:
    return "not-a-token"


@pytest.mark.parametrize("forge", [other_signature, other_attachment, other_salt, garbage], ids=lambda f: f.__name__)
def test_forged_token_is_a_404(thread, forge):
    """A token we did not sign for this route is a plain 404 that says nothing about why."""
    attachment = attachment_of(thread, "outbound")
    attachment_of(thread, "outbound")  # the id a forged payload names exists
    token, name = path_for(attachment).rsplit("/", 2)[1:]
    response = Client().get(f"/webhooks/twilio/media/{forge(token, attachment.pk)}/{name}")
    assert response.status_code == 404
    assert b"signature" not in response.content.lower() and b"expired" not in response.content.lower()


def test_expired_token_is_a_404(thread, settings):
    """Past ATTITRE_MEDIA_URL_MAX_AGE_SECONDS the URL is refused; within it, served."""
    attachment = attachment_of(thread, "outbound")
    settings.ATTITRE_MEDIA_URL_MAX_AGE_SECONDS = 3600
    with mock.patch("django.core.signing.time.time", return_value=time.time() - 3601):
        expired = path_for(attachment)
    with mock.patch("django.core.signing.time.time", return_value=time.time() - 3500):
        recent = path_for(attachment)
    assert Client().get(expired).status_code == 404
    assert Client().get(recent).status_code == 200


def test_inbound_attachment_is_a_404(thread):
    """A customer's file is never served by this route, even with a valid token."""
    attachment = attachment_of(thread, "inbound", content_type="image/jpeg", name="photo.jpg")
    assert Client().get(path_for(attachment)).status_code == 404


def test_file_gone_from_storage_is_a_404(thread):
    """A file that is gone from storage is a 404, not an error."""
    attachment = attachment_of(thread, "outbound")
    path = path_for(attachment)
    attachment.file.storage.delete(attachment.file.name)
    assert Client().get(path).status_code == 404
