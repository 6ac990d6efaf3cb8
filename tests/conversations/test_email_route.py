"""anymail's webhooks through the ASGI application: served by Django in the route's own
threads (conversations/email_asgi.py), with Django's middleware and anymail's checks."""

import threading

import httpx
import pytest
from anymail.signals import inbound
from asgiref.sync import sync_to_async
from django.core.files.storage import default_storage
from django.db import connections

from config.asgi import application
from conversations.models import Message
from tests.email import WEBHOOK_SECRET, basic_auth, fixture, mailgun_form
from tests.factories import ContactPointFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("anymail_settings")]


@pytest.fixture(autouse=True)
async def _close_connections():
    yield
    await sync_to_async(connections.close_all)()


@pytest.fixture
def camille_email(camille):
    return ContactPointFactory(customer=camille, kind="email", address="camille.martin@gmail.com")


async def post(data: dict, auth: str = WEBHOOK_SECRET) -> httpx.Response:
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as client:
        return await client.post(
            "/anymail/mailgun/inbound_mime/", data=data, headers={"authorization": basic_auth(auth)}
        )


async def test_a_signed_email_is_stored_by_the_routes_threads_as_it_came(camille_email):
    """The email is stored, in one of the route's threads, its raw MIME kept byte for byte as
    Mailgun posted it (not written out again from anymail's parse); the answer carries the
    security headers of Django's middleware."""
    seen_in = []

    def record(sender, **kwargs):
        seen_in.append(threading.current_thread().name)

    inbound.connect(record, dispatch_uid="test.route-thread")
    try:
        raw = fixture("attachments.eml")
        response = await post(mailgun_form(raw))
    finally:
        inbound.disconnect(dispatch_uid="test.route-thread")

    assert response.status_code == 200
    assert response.headers["content-security-policy"].startswith("default-src 'self'")
    assert seen_in and seen_in[0].startswith("email-webhook")
    message = await Message.objects.select_related("email").aget(provider="email")
    assert message.contact_point_id == camille_email.pk
    assert default_storage.open(message.email.raw.name).read() == raw


async def test_a_forged_signature_or_a_wrong_secret_stores_nothing_through_the_route(camille_email):
    """anymail's checks hold on this route: 400, nothing stored."""
    raw = fixture("attachments.eml")
    assert (await post(mailgun_form(raw, key="not-the-key"))).status_code == 400
    assert (await post(mailgun_form(raw), auth="attitre-esp:wrong")).status_code == 400
    assert not await Message.objects.aexists()
