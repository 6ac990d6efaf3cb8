"""The lean ASGI route serves Twilio's webhooks with the same checks as the Django view."""

import asyncio
from urllib.parse import urlencode

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.db import connections

from config.asgi import application
from conversations.models import Message, Thread
from tests import twilio
from tests.factories import replies_handed_to_twilio

MESSAGES = "/webhooks/twilio/messages/"
STATUS = "/webhooks/twilio/status/"
pytestmark = pytest.mark.django_db(transaction=True)


def asgi_client() -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=application), base_url="http://127.0.0.1:8000")


async def post(
    params: dict, signature: str | None = None, content_type="application/x-www-form-urlencoded", path=MESSAGES
):
    signature = signature if signature is not None else twilio.signature_for(path, params)
    async with asgi_client() as client:
        return await client.post(
            path,
            content=urlencode(params),
            headers={"content-type": content_type, "x-twilio-signature": signature},
        )


@pytest.fixture
def camille_sync(camille):
    return camille


@pytest.fixture(autouse=True)
async def _close_async_orm_connection():
    yield
    # The async ORM ran in asgiref's thread; its connection must not outlive the test.
    await sync_to_async(connections.close_all)()


async def test_signed_message_is_stored_through_the_lean_route(camille_sync):
    """A signed webhook through the ASGI application answers TwiML and stores the message."""
    params = twilio.whatsapp_text(body="Par la route ASGI")
    response = await post(params)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/xml"
    assert response.content.endswith(b"<Response/>")
    assert await Message.objects.filter(provider_message_id=params["MessageSid"], body="Par la route ASGI").aexists()


async def test_duplicate_through_the_lean_route_is_stored_once(camille_sync):
    """A replayed MessageSid gets a 200 and is stored once."""
    params = twilio.whatsapp_text()
    assert (await post(params)).status_code == 200
    assert (await post(params)).status_code == 200
    assert await Message.objects.acount() == 1


async def test_forged_signature_through_the_lean_route_is_refused(camille_sync):
    """The lean route refuses a forged signature with a 403, like the view."""
    response = await post(twilio.whatsapp_text(), signature="Zm9yZ2Vk")
    assert response.status_code == 403
    assert await Message.objects.acount() == 0


async def test_missing_message_sid_through_the_lean_route_is_a_400(camille_sync):
    """A signed request without MessageSid is a 400 with its reason."""
    params = twilio.whatsapp_text()
    for key in ("MessageSid", "SmsMessageSid", "SmsSid"):
        params.pop(key)
    response = await post(params)
    assert (response.status_code, response.text) == (400, "MessageSid is missing.")


async def test_wrong_content_type_is_a_415(camille_sync):
    """Twilio posts form-encoded; JSON to this route is refused with a 415."""
    response = await post(twilio.whatsapp_text(), content_type="application/json")
    assert response.status_code == 415


async def test_oversized_body_is_a_413(camille_sync):
    """A body far beyond anything Twilio sends is refused without being read whole."""
    response = await post(twilio.whatsapp_text(body="x" * 300_000))
    assert response.status_code == 413
    assert await Message.objects.acount() == 0


async def test_a_client_gone_mid_body_gets_no_answer_and_nothing_is_stored(camille_sync, monkeypatch):
    """A request whose client disconnects before its body is complete is dropped: it is not
    handed to a batch (as an empty body it used to be, and answered), nothing is stored,
    nothing is sent back."""
    sizes = batch_sizes(monkeypatch, "handle_twilio_inbound_batch")
    params = twilio.whatsapp_text(body="Coupé en plein envoi")
    body = urlencode(params).encode()
    incoming = [
        {"type": "http.request", "body": body[:40], "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent = []

    async def receive():
        return incoming.pop(0)

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": MESSAGES,
        "raw_path": MESSAGES.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"content-type", b"application/x-www-form-urlencoded"),
            (b"x-twilio-signature", twilio.signature_for(MESSAGES, params).encode()),
        ],
    }
    await application(scope, receive, send)

    assert (sent, sizes, incoming) == ([], [], [])
    assert not await Message.objects.aexists()


async def test_get_on_the_lean_route_is_a_405():
    """Only POST is served."""
    async with asgi_client() as client:
        response = await client.get(MESSAGES)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


async def test_other_paths_fall_through_to_django(db):
    """Everything else is Django's: /healthz answers through the same application."""
    async with asgi_client() as client:
        response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def batch_sizes(monkeypatch, handler: str) -> list[int]:
    """The size of each batch the lean route hands to `handler`, recorded as they come."""
    from conversations import asgi as lean_route

    sizes, handle_batch = [], getattr(lean_route, handler)

    def recording(requests):
        sizes.append(len(requests))
        return handle_batch(requests)

    monkeypatch.setattr(lean_route, handler, recording)
    return sizes


async def test_concurrent_webhooks_are_stored_in_shared_batches(camille_sync, monkeypatch):
    """Requests that arrive while a batch is in the database wait for the next one, which
    stores them together: every request gets its own 200 and every message is stored."""
    sizes = batch_sizes(monkeypatch, "handle_twilio_inbound_batch")
    payloads = [twilio.whatsapp_text(body=f"Message {i}") for i in range(20)]
    responses = await asyncio.gather(*(post(params) for params in payloads))

    assert [response.status_code for response in responses] == [200] * 20
    assert sum(sizes) == 20
    assert max(sizes) > 1
    assert await Message.objects.acount() == 20
    thread = await Thread.objects.aget()
    assert thread.unread_count == 20


async def test_batch_settings_are_read_when_requests_arrive(camille_sync, monkeypatch, settings):
    """TWILIO_WEBHOOK_BATCH_SIZE set after the route was imported still bounds its batches."""
    settings.TWILIO_WEBHOOK_BATCH_SIZE = 3
    sizes = batch_sizes(monkeypatch, "handle_twilio_inbound_batch")
    responses = await asyncio.gather(*(post(twilio.whatsapp_text(body=f"Message {i}")) for i in range(12)))

    assert [response.status_code for response in responses] == [200] * 12
    assert sum(sizes) == 12
    assert max(sizes) == 3


@pytest.fixture
def sent_replies(camille, alice):
    thread = Thread.objects.create(
        customer=camille, dedicated_advisor=camille.dedicated_advisor, agency=camille.agency, handler=alice
    )
    return replies_handed_to_twilio(thread, 10)


async def test_concurrent_status_callbacks_are_applied_in_shared_batches(sent_replies, monkeypatch):
    """Status callbacks go through group commit too: each gets its own 204, a forged one
    its 403, and every status lands."""
    sizes = batch_sizes(monkeypatch, "handle_twilio_status_batch")
    callbacks = [
        twilio.status_callback(sid=reply.provider_message_id, status=status)
        for reply in sent_replies
        for status in ("delivered", "read")
    ]
    forged = twilio.status_callback(sid=sent_replies[0].provider_message_id, status="failed")
    responses = await asyncio.gather(
        *(post(params, path=STATUS) for params in callbacks), post(forged, signature="Zm9yZ2Vk", path=STATUS)
    )

    assert [response.status_code for response in responses] == [204] * len(callbacks) + [403]
    assert sum(sizes) == len(callbacks) + 1
    assert max(sizes) > 1
    statuses = [status async for status in Message.objects.values_list("status", flat=True)]
    assert statuses == ["read"] * len(sent_replies)


async def test_a_request_queued_as_a_drain_ends_starts_a_new_one():
    """The request sent the moment the previous one is answered (its client resumes
    before the finished drain's done-callbacks run) is served, not left waiting for
    a later request."""
    from conversations import asgi as lean_route
    from conversations.webhooks import WebhookAnswer

    async def answer_all(requests):
        return [WebhookAnswer(200, b"ok")] * len(requests)

    batcher = lean_route._GroupCommit(answer_all)
    first = await batcher.submit(("/", "", b"", {}))
    async with asyncio.timeout(2):  # inline, in the step that received the first answer
        second = await batcher.submit(("/", "", b"", {}))
    assert (first.status, second.status) == (200, 200)
    assert batcher.draining == 0
