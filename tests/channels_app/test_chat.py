"""The customers' chat socket, end to end: the ASGI application with its origin check, the
bank's tokens signed for real (HS256, and ES256 with a key pair made here), the receive and
send services, the real channel layer and event log."""

import hashlib
import hmac
import json
import time
from datetime import timedelta

import jwt
import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.db import connections
from django.utils import timezone

from channels_app import chat
from config.asgi import application
from conversations.models import ChatSocket, Message, Thread
from conversations.providers.base import StatusUpdate
from conversations.services import message_send, note_add
from crm.models import ContactPoint
from events.models import Event
from events.publish import pushes_sent
from tests.concurrency import transaction_held_open
from tests.factories import AdvisorFactory, ContactPointFactory, CustomerFactory

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "a-long-shared-secret-for-the-chat-tests-0123456789"
BANK = "https://www.bank.example"


@pytest.fixture(autouse=True)
async def _chat_settings(settings):
    settings.CHAT_JWT_SECRET = SECRET
    settings.CHAT_JWT_PUBLIC_KEY = ""
    settings.CHAT_ALLOWED_ORIGINS = [BANK]
    await get_channel_layer().flush()
    yield
    await get_channel_layer().flush()
    await sync_to_async(connections.close_all)()


def token(sub: str, *, key=SECRET, algorithm="HS256", lifetime=600, iat_offset=0, **claims) -> str:
    now = int(time.time())
    payload = {"sub": sub, "iat": now + iat_offset, "exp": now + lifetime, **claims}
    return jwt.encode(payload, key, algorithm=algorithm)


async def widget(*, origin: str = BANK) -> WebsocketCommunicator:
    communicator = WebsocketCommunicator(application, "/ws/chat/", headers=[(b"origin", origin.encode())])
    connected, _ = await communicator.connect()
    assert connected
    return communicator


async def signed_in(customer_number: str, *, since=None, **claims) -> tuple[WebsocketCommunicator, list[dict]]:
    """A widget past its auth frame, and what it received up to its cursor."""
    communicator = await widget()
    await communicator.send_json_to({"type": "auth", "token": token(customer_number, **claims), "since": since})
    frames = []
    while (frame := await communicator.receive_json_from(timeout=10))["type"] != "cursor":
        frames.append(frame)
    frames.append(frame)
    return communicator, frames


async def closed_with(communicator: WebsocketCommunicator) -> int:
    while True:
        output = await communicator.receive_output(timeout=10)
        if output["type"] == "websocket.close":
            return output["code"]


async def next_of(communicator: WebsocketCommunicator, kind: str) -> dict:
    while (frame := await communicator.receive_json_from(timeout=10))["type"] != kind:
        pass
    return frame


async def count(model, **filters) -> int:
    return await database_sync_to_async(lambda: model.objects.filter(**filters).count())()


# --- Identity ---------------------------------------------------------------------------


async def test_a_valid_token_signs_the_customer_in_to_their_own_thread(camille):
    """A signed-in widget says who answers (the dedicated advisor by name), shows the thread's
    history across channels, and the customer's web chat address is made once."""
    await database_sync_to_async(Thread.objects.create)(
        customer=camille, agency=camille.agency, dedicated_advisor=camille.dedicated_advisor
    )
    communicator, frames = await signed_in(camille.customer_number, locale="en")
    ready = frames[0]
    assert ready["type"] == "ready" and ready["customer"] == "Camille"
    assert ready["advisor"]["name"] == "Alice Durand"
    assert ready["advisor"]["text"] == "Alice Durand — will answer you soon"
    assert frames[1] == {"type": "history", "messages": [], "complete": True}
    assert await count(ContactPoint, customer=camille, kind="webchat", address=camille.customer_number) == 1
    await communicator.disconnect()


@pytest.mark.parametrize(
    "case, make, close_code, error_code",
    [
        ("expired", lambda n: token(n, lifetime=-120, iat_offset=-700), 4401, "token_expired"),
        ("exp too far", lambda n: token(n, lifetime=3 * 3600), 4401, "token_too_long"),
        ("iat in the future", lambda n: token(n, iat_offset=600, lifetime=900), 4401, "token_future"),
        ("wrong key", lambda n: token(n, key="another-secret-of-the-same-kind-0123456789"), 4401, "token_signature"),
        (
            "alg none",
            lambda n: jwt.encode(
                {"sub": n, "iat": int(time.time()), "exp": int(time.time()) + 60}, None, algorithm="none"
            ),
            4401,
            "token_algorithm",
        ),  # noqa: E501
        (
            "no exp",
            lambda n: jwt.encode({"sub": n, "iat": int(time.time())}, SECRET, algorithm="HS256"),
            4401,
            "token_claims",
        ),  # noqa: E501
        ("tampered claims", lambda n: _tampered(token(n), "C99999999"), 4401, "token_signature"),
        ("garbage", lambda n: "not.a.jwt", 4401, "token_malformed"),
        ("unknown customer", lambda n: token("C77777777"), 4403, "customer_unknown"),
    ],
)
async def test_a_refused_token_closes_with_a_clear_code_and_stores_nothing(camille, case, make, close_code, error_code):
    """Each bad token: an error frame naming why, the close code the widget acts on (4401:
    fetch a new token; 4403: stop), and nothing stored: no address, no message."""
    communicator = await widget()
    await communicator.send_json_to({"type": "auth", "token": make(camille.customer_number)})
    error = await communicator.receive_json_from(timeout=10)
    assert (error["type"], error["code"]) == ("error", error_code), case
    assert await closed_with(communicator) == close_code
    assert await count(ContactPoint, kind="webchat") == 0
    assert await count(Message) == 0


def _tampered(token_text: str, sub: str) -> str:
    """The same signature over claims edited to name another customer."""
    header, _payload, signature = token_text.split(".")
    forged = jwt.utils.base64url_encode(
        f'{{"sub":"{sub}","iat":{int(time.time())},"exp":{int(time.time()) + 60}}}'.encode()
    )
    return f"{header}.{forged.decode()}.{signature}"


async def test_es256_tokens_are_checked_with_the_banks_public_key(camille, settings):
    """With CHAT_JWT_PUBLIC_KEY the bank signs with its private key; an HS256 token made with
    the public key as a secret (the algorithm-confusion attack) is refused."""
    private = ec.generate_private_key(ec.SECP256R1())
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    settings.CHAT_JWT_PUBLIC_KEY = public_pem
    settings.CHAT_JWT_SECRET = ""
    communicator, frames = await signed_in(camille.customer_number, key=private, algorithm="ES256")
    assert frames[0]["type"] == "ready"
    await communicator.disconnect()

    confused = await widget()
    forged = _hs256_by_hand(
        {"sub": camille.customer_number, "iat": int(time.time()), "exp": int(time.time()) + 60}, public_pem.encode()
    )
    await confused.send_json_to({"type": "auth", "token": forged})
    assert (await confused.receive_json_from(timeout=10))["code"] == "token_algorithm"
    assert await closed_with(confused) == 4401


def _hs256_by_hand(claims: dict, secret: bytes) -> str:
    """What PyJWT refuses to make: an HS256 token whose secret is a public key."""
    encode = jwt.utils.base64url_encode
    signing_input = encode(b'{"alg":"HS256","typ":"JWT"}') + b"." + encode(json.dumps(claims).encode())
    signature = encode(hmac.new(secret, signing_input, hashlib.sha256).digest())
    return (signing_input + b"." + signature).decode()


async def test_a_frame_before_auth_or_no_auth_at_all_closes(camille, monkeypatch):
    """Anything but auth first: 4401. No frame within the auth timeout: 4408."""
    communicator = await widget()
    await communicator.send_json_to({"type": "message.send", "client_id": "a1", "body": "hi"})
    assert await closed_with(communicator) == 4401
    monkeypatch.setattr(chat, "AUTH_TIMEOUT_SECONDS", 0)
    silent = await widget()
    assert await closed_with(silent) == 4408
    assert await count(Message) == 0


async def test_a_socket_from_another_origin_is_refused(camille):
    """Only CHAT_ALLOWED_ORIGINS may open the chat: the handshake itself is refused (no
    frame ever reaches the consumer), and a missing Origin too."""
    for headers in ([(b"origin", b"https://evil.example")], [(b"origin", b"http://www.bank.example")], []):
        communicator = WebsocketCommunicator(application, "/ws/chat/", headers=headers)
        connected, code = await communicator.connect()
        assert (connected, code) == (False, 4403)


async def test_the_token_is_never_read_from_the_url(camille):
    """A token in the query string (where access logs would keep it) signs nobody in."""
    communicator = WebsocketCommunicator(
        application, f"/ws/chat/?token={token(camille.customer_number)}", headers=[(b"origin", BANK.encode())]
    )
    assert (await communicator.connect())[0]
    await communicator.send_json_to({"type": "ping"})
    assert await closed_with(communicator) == 4401


# --- Messages ----------------------------------------------------------------------------


async def test_a_message_lands_through_the_receive_service_and_a_resend_is_stored_once(camille, alice):
    """message.send → message.ack with the stored id; the thread is routed to alice with its
    unread count, on web chat; the same client id again acks the same id, storing nothing."""
    communicator, _ = await signed_in(camille.customer_number)
    await communicator.send_json_to({"type": "message.send", "client_id": "c-1", "body": "Bonjour Alice"})
    ack = await next_of(communicator, "message.ack")
    message = await database_sync_to_async(Message.objects.select_related("thread").get)(pk=ack["id"])
    assert (message.channel, message.body, message.direction) == ("webchat", "Bonjour Alice", "inbound")
    assert (message.thread.customer_id, message.thread.handler_id, message.thread.unread_count) == (
        camille.pk,
        alice.pk,
        1,
    )
    assert message.thread.last_inbound_channel == "webchat"
    await communicator.send_json_to({"type": "message.send", "client_id": "c-1", "body": "Bonjour Alice"})
    assert (await next_of(communicator, "message.ack"))["id"] == ack["id"]
    assert await count(Message) == 1
    await communicator.disconnect()


async def test_bad_messages_are_refused_with_a_reason_and_nothing_stored(camille):
    """No client id, an empty body, an over-long body: message.refused, nothing stored."""
    communicator, _ = await signed_in(camille.customer_number)
    for frame, code in [
        ({"client_id": "", "body": "hi"}, "client_id_invalid"),
        ({"client_id": "a b", "body": "hi"}, "client_id_invalid"),
        ({"client_id": "x1", "body": "   "}, "empty_body"),
        ({"client_id": "x2", "body": "a" * 4001}, "body_too_long"),
    ]:
        await communicator.send_json_to({"type": "message.send", **frame})
        refused = await next_of(communicator, "message.refused")
        assert refused["code"] == code
    assert await count(Message) == 0
    await communicator.disconnect()


async def test_an_oversized_frame_closes_4413_and_too_many_messages_close_4429(camille, settings, monkeypatch):
    """A frame past CHAT_FRAME_MAX_BYTES is closed, not parsed; the rate limit is per
    customer, across their sockets, and what was past it is not stored."""
    communicator, _ = await signed_in(camille.customer_number)
    await communicator.send_to(text_data='{"type":"ping","pad":"' + "x" * chat.CHAT_FRAME_MAX_BYTES + '"}')
    assert await closed_with(communicator) == 4413

    settings.CHAT_RATE_PER_MINUTE = 2
    now = [1000.0]
    monkeypatch.setattr(chat, "clock", lambda: now[0])
    first, _ = await signed_in(camille.customer_number)
    second, _ = await signed_in(camille.customer_number)
    for socket, client_id in ((first, "r1"), (second, "r2")):
        await socket.send_json_to({"type": "message.send", "client_id": client_id, "body": "hello"})
        await next_of(socket, "message.ack")
    await first.send_json_to({"type": "message.send", "client_id": "r3", "body": "hello"})
    assert await closed_with(first) == 4429
    assert await count(Message) == 2
    now[0] += 61
    await second.send_json_to({"type": "message.send", "client_id": "r3", "body": "hello"})
    await next_of(second, "message.ack")
    await second.disconnect()


async def test_the_advisors_reply_reaches_the_widget_live_and_read_flows_back(camille, alice):
    """alice answers on web chat: the widget receives message.created with her name and the
    body as text (hostile markup untouched, for the widget to show as text); message.read
    marks it read, pushed back as message.status."""
    communicator, _ = await signed_in(camille.customer_number)
    await communicator.send_json_to({"type": "message.send", "client_id": "m1", "body": "<b>bold?</b>"})
    await next_of(communicator, "message.ack")
    thread = await database_sync_to_async(Thread.objects.get)(customer=camille)
    hostile = '<img src=x onerror="alert(1)">Voici'
    reply = await database_sync_to_async(message_send)(thread=thread, author=alice, body=hostile)
    assert reply.channel == "webchat"  # the customer last wrote there
    await pushes_sent()
    created = await next_of(communicator, "message.created")
    while created["message"]["id"] != reply.pk:
        created = await next_of(communicator, "message.created")
    assert created["message"]["body"] == hostile
    assert (created["message"]["from"], created["message"]["author"]) == ("advisor", "Alice Durand")
    assert set(created["message"]) == {
        "id",
        "from",
        "channel",
        "body",
        "created_at",
        "status",
        "author",
        "client_id",
        "files",
    }
    await communicator.send_json_to({"type": "message.read", "id": reply.pk})
    status = await next_of(communicator, "message.status")
    assert status == {"type": "message.status", "id": reply.pk, "status": "read"}
    await communicator.disconnect()


async def test_no_internal_note_or_routing_reason_ever_reaches_the_widget(camille, alice, bob):
    """A note, a transfer (with its reason) and the customer's own message happen while the
    widget is open and before a reconnect: the only frames are the messages."""
    communicator, _ = await signed_in(camille.customer_number)
    await communicator.send_json_to({"type": "message.send", "client_id": "n1", "body": "Bonjour"})
    await next_of(communicator, "message.ack")
    thread = await database_sync_to_async(Thread.objects.get)(customer=camille)
    await database_sync_to_async(note_add)(thread=thread, author=alice, body="SECRET NOTE: credit risk")
    from conversations.services import thread_transfer

    await database_sync_to_async(thread_transfer)(thread=thread, by=alice, to=bob, reason="SECRET REASON")
    await pushes_sent()
    await communicator.send_json_to({"type": "ping"})
    live = []
    while (frame := await communicator.receive_json_from(timeout=10))["type"] != "pong":
        live.append(frame)
    await communicator.disconnect()
    again, replay = await signed_in(camille.customer_number, since=0)
    text = repr(live + replay)
    assert "SECRET" not in text and "routing" not in text and "reason" not in text
    assert {frame["type"] for frame in live} <= {"message.created", "message.status"}
    await again.disconnect()


async def test_one_customer_never_reaches_another_customers_thread(camille, alice):
    """Dora's widget: no frame of Camille's thread, live or replayed; reading Camille's
    message ids marks nothing; a client id Camille used stores Dora's own message."""
    dora = await database_sync_to_async(CustomerFactory)(
        first_name="Dora", last_name="Petit", dedicated_advisor=alice, agency=alice.agency
    )
    camille_socket, _ = await signed_in(camille.customer_number)
    await camille_socket.send_json_to({"type": "message.send", "client_id": "same", "body": "Camille's secret"})
    camille_id = (await next_of(camille_socket, "message.ack"))["id"]
    thread = await database_sync_to_async(Thread.objects.get)(customer=camille)
    reply = await database_sync_to_async(message_send)(thread=thread, author=alice, body="For Camille only")

    dora_socket, frames = await signed_in(dora.customer_number, since=0)
    await dora_socket.send_json_to({"type": "message.read", "id": reply.pk})
    await dora_socket.send_json_to({"type": "message.send", "client_id": "same", "body": "Dora here"})
    dora_id = (await next_of(dora_socket, "message.ack"))["id"]
    assert dora_id != camille_id
    await database_sync_to_async(message_send)(thread=thread, author=alice, body="Another for Camille")
    await pushes_sent()
    await dora_socket.send_json_to({"type": "ping"})
    while (frame := await dora_socket.receive_json_from(timeout=10))["type"] != "pong":
        frames.append(frame)
    assert "Camille" not in repr(frames)
    reply_status = await database_sync_to_async(lambda: Message.objects.get(pk=reply.pk).status)()
    assert reply_status != "read"
    await dora_socket.disconnect()
    await camille_socket.disconnect()


async def test_catch_up_after_reconnect_replays_what_was_missed_once(camille, alice):
    """A widget that reconnects with its cursor gets the messages committed meanwhile (from
    the event log, the inbox's overlap rule), each once, and a new cursor."""
    communicator, frames = await signed_in(camille.customer_number)
    await communicator.send_json_to({"type": "message.send", "client_id": "k1", "body": "first"})
    await next_of(communicator, "message.ack")
    cursor = frames[-1]["since"]
    await communicator.disconnect()
    thread = await database_sync_to_async(Thread.objects.get)(customer=camille)
    missed = [await database_sync_to_async(message_send)(thread=thread, author=alice, body=f"r{i}") for i in range(3)]
    again, replay = await signed_in(camille.customer_number, since=cursor)
    created = [frame["message"]["id"] for frame in replay if frame["type"] == "message.created"]
    assert [m.pk for m in missed] == [i for i in created if i in {m.pk for m in missed}]
    assert len(created) == len(set(created))
    assert replay[-1]["type"] == "cursor" and replay[-1]["since"] >= cursor
    await again.disconnect()


async def test_the_advisor_sees_the_customer_come_online_and_leave(camille, alice):
    """The customer's first widget is announced to the thread's audience (alice's group) as
    customer.presence online; closing the last one, offline; a row per open widget meanwhile."""
    thread = await database_sync_to_async(Thread.objects.create)(
        customer=camille, agency=camille.agency, dedicated_advisor=alice, handler=alice
    )
    layer = get_channel_layer()
    listener = await layer.new_channel()
    await layer.group_add(f"advisor.{alice.pk}", listener)
    communicator, _ = await signed_in(camille.customer_number)
    pushed = await layer.receive(listener)
    assert pushed["events"] == [{"type": "customer.presence", "thread": thread.pk, "online": True}]
    assert await count(ChatSocket, thread=thread) == 1
    await communicator.send_json_to({"type": "typing"})
    assert (await layer.receive(listener))["events"] == [{"type": "customer.typing", "thread": thread.pk}]
    await communicator.disconnect()
    pushed = await layer.receive(listener)
    assert pushed["events"] == [{"type": "customer.presence", "thread": thread.pk, "online": False}]
    assert await count(ChatSocket, thread=thread) == 0


# --- Offline notification -----------------------------------------------------------------


@pytest.fixture
def answered(camille, alice):
    """Camille wrote on web chat and left; alice's reply on web chat, not yet delivered."""
    from conversations.services.webchat import chat_identify, chat_message_receive

    identity = chat_identify(token=token(camille.customer_number))
    chat_message_receive(identity=identity, client_id="o1", body="Une question")
    thread = Thread.objects.get(customer=camille)
    return thread


def test_the_offline_customer_is_told_once_on_a_consented_channel(answered, alice, settings):
    """alice answers twice while Camille is away: one SMS ("Alice Durand answered you…"),
    none for the second answer within CHAT_OFFLINE_NOTIFY_MINUTES, never on an opted-out
    channel; past the interval, one more."""
    from conversations.services.webchat import chat_offline_notify

    ContactPoint.objects.filter(customer=answered.customer, kind="whatsapp").update(consent="opted_out")
    first = message_send(thread=answered, author=alice, body="Réponse 1")
    notice = chat_offline_notify(message_id=first.pk)
    assert notice is not None and notice.channel == "sms"
    assert notice.body == "Alice Durand answered you in your bank's online space: sign in to read it." or (
        notice.body.startswith("Alice Durand")
    )
    assert "Réponse" not in notice.body
    second = message_send(thread=answered, author=alice, body="Réponse 2", channel="webchat")
    assert chat_offline_notify(message_id=second.pk) is None
    assert Message.objects.filter(thread=answered, channel="sms").count() == 1
    Thread.objects.filter(pk=answered.pk).update(
        chat_offline_notified_at=timezone.now() - timedelta(minutes=settings.CHAT_OFFLINE_NOTIFY_MINUTES + 1)
    )
    assert chat_offline_notify(message_id=second.pk) is not None


def test_a_customer_with_the_chat_open_is_not_notified(answered, alice):
    """A widget stamped lately: the customer reads the answer there; nothing sent elsewhere."""
    from conversations.services.webchat import chat_offline_notify

    ChatSocket.objects.create(thread=answered, channel_name="specific.abc")
    reply = message_send(thread=answered, author=alice, body="Réponse")
    assert chat_offline_notify(message_id=reply.pk) is None
    assert not Message.objects.filter(thread=answered, channel__in=["sms", "whatsapp", "email"]).exists()


def test_delivering_a_web_chat_reply_enqueues_the_offline_check(answered, alice):
    """message_deliver hands a web chat reply over (`sent`) and queues the offline check."""
    from django_q.models import OrmQ

    from conversations.services import message_deliver

    reply = message_send(thread=answered, author=alice, body="Réponse")
    before = OrmQ.objects.count()
    delivered = message_deliver(message_id=reply.pk)
    assert delivered.status == "sent" and delivered.provider == "webchat"
    assert OrmQ.objects.count() == before + 1
    assert Event.objects.filter(type="message.status", thread=answered).exists()


def test_a_second_advisor_of_another_agency_cannot_be_reached_by_a_token(camille):
    """A token names a customer number only: an advisor's or a stranger's id is unknown."""
    from conversations.providers.webchat import TokenRefused
    from conversations.services.webchat import chat_identify

    other = AdvisorFactory()
    ContactPointFactory(customer=camille, kind="email", address="camille@example.org")
    with pytest.raises(TokenRefused) as refused:
        chat_identify(token=token(str(other.user.pk)))
    assert refused.value.code == "customer_unknown"


@pytest.mark.postgres
async def test_catch_up_replays_a_status_that_committed_out_of_order(camille, alice, settings):
    """A status change of alice's first reply (locking only that message) draws the smaller
    event id but commits after her second reply, which the widget saw live; a widget that got
    its cursor before the status committed replays it."""
    # The journal holds its agency's chain head until commit, so one agency's transactions
    # cannot commit out of order while it is on (docs/journal.md): off, to show the log's rule.
    settings.ATTITRE_JOURNAL_ENABLED = False
    from conversations.services import message_deliver, message_status_apply

    communicator, _ = await signed_in(camille.customer_number)
    await communicator.send_json_to({"type": "message.send", "client_id": "o1", "body": "Bonjour"})
    await next_of(communicator, "message.ack")
    thread = await database_sync_to_async(Thread.objects.get)(customer=camille)
    first = await database_sync_to_async(message_send)(thread=thread, author=alice, body="Première")
    first = await database_sync_to_async(message_deliver)(message_id=first.pk)
    update = StatusUpdate(provider="webchat", provider_message_id=first.provider_message_id, status="delivered")

    def slow() -> int:
        message_status_apply(update=update)
        return Event.objects.filter(type="message.status", payload__status="delivered").get().pk

    with transaction_held_open(slow) as late:
        quick = await database_sync_to_async(message_send)(thread=thread, author=alice, body="Tout de suite")
        await pushes_sent()
        live = await next_of(communicator, "message.created")
        while live["message"]["id"] != quick.pk:
            live = await next_of(communicator, "message.created")
        quick_event = await database_sync_to_async(
            lambda: Event.objects.get(type="message.created", payload__message__id=quick.pk).pk
        )()
        assert late.result < quick_event
        await communicator.disconnect()
        other, frames = await signed_in(camille.customer_number)
        cursor = frames[-1]["since"]
        await other.disconnect()

    again, replay = await signed_in(camille.customer_number, since=cursor)
    assert {"type": "message.status", "id": first.pk, "status": "delivered"} in replay
    await again.disconnect()


# --- Visitors -------------------------------------------------------------------------------


async def visitor(visitor_id=None) -> tuple[WebsocketCommunicator, list[dict]]:
    communicator = await widget()
    await communicator.send_json_to({"type": "auth", "visitor": visitor_id, "locale": "en"})
    frames = []
    while (frame := await communicator.receive_json_from(timeout=10))["type"] not in ("cursor", "error"):
        frames.append(frame)
    frames.append(frame)
    return communicator, frames


async def test_visitors_are_refused_unless_allowed(camille):
    """CHAT_ALLOW_VISITORS off (the default): an auth frame without a token closes 4403."""
    communicator, frames = await visitor()
    assert frames[-1]["code"] == "visitors_disabled"
    assert await closed_with(communicator) == 4403


async def test_a_visitor_becomes_a_prospect_in_the_pool_and_comes_back_by_their_signed_id(camille, settings):
    """Allowed: the visitor gets a signed id, their message lands as a prospect's in the
    default agency's pool (unknown contact), and their id brings the same thread back; an
    altered id is a new visitor, who sees nothing of the first one's thread."""
    settings.CHAT_ALLOW_VISITORS = True
    first, frames = await visitor()
    signed = frames[0]["id"]
    assert frames[0]["type"] == "visitor"
    assert frames[1]["advisor"]["text"] == "Your agency replies within about 2 hours."
    await first.send_json_to({"type": "message.send", "client_id": "v1", "body": "Je voudrais ouvrir un compte"})
    ack = await next_of(first, "message.ack")
    message = await database_sync_to_async(Message.objects.select_related("thread__prospect").get)(pk=ack["id"])
    assert message.thread.customer_id is None and message.thread.handler_id is None
    assert message.thread.routing_reason_code == "unknown_number"
    assert message.thread.prospect.kind == "webchat"
    await first.disconnect()

    again, frames = await visitor(signed)
    history = next(f for f in frames if f["type"] == "history")
    assert [m["body"] for m in history["messages"]] == ["Je voudrais ouvrir un compte"]
    await again.disconnect()

    forged, frames = await visitor(signed[:-2] + ("AA" if not signed.endswith("AA") else "BB"))
    assert frames[0]["id"] != signed
    assert next(f for f in frames if f["type"] == "history")["messages"] == []
    await forged.disconnect()


async def test_the_advisors_typing_reaches_the_customers_widget_only_on_threads_they_may_see(camille, alice):
    """alice types in Camille's thread: her widget shows it. A "typing" for a thread of another
    agency's customer, which alice may not see, reaches nobody."""
    from django.conf import settings as django_settings
    from django.test import Client

    from tests.factories import AgencyFactory

    elsewhere = await database_sync_to_async(AgencyFactory)()
    stranger_advisor = await database_sync_to_async(AdvisorFactory)(agency=elsewhere)
    stranger = await database_sync_to_async(CustomerFactory)(agency=elsewhere, dedicated_advisor=stranger_advisor)
    theirs = await database_sync_to_async(Thread.objects.create)(
        customer=stranger, agency=elsewhere, dedicated_advisor=stranger_advisor, handler=stranger_advisor
    )
    ours = await database_sync_to_async(Thread.objects.create)(
        customer=camille, agency=camille.agency, dedicated_advisor=alice, handler=alice
    )
    stranger_widget, _ = await signed_in(stranger.customer_number)
    camille_widget, _ = await signed_in(camille.customer_number)

    def cookie():
        client = Client()
        client.force_login(alice.user)
        return client.cookies[django_settings.SESSION_COOKIE_NAME].value

    session = await database_sync_to_async(cookie)()
    inbox = WebsocketCommunicator(
        application,
        "/ws/inbox/",
        headers=[
            (b"origin", b"http://127.0.0.1:8000"),
            (b"host", b"127.0.0.1:8000"),
            (b"cookie", f"{django_settings.SESSION_COOKIE_NAME}={session}".encode()),
        ],
    )
    assert (await inbox.connect())[0]
    await inbox.send_json_to({"type": "typing", "thread": theirs.pk})
    await inbox.send_json_to({"type": "typing", "thread": ours.pk})
    assert await next_of(camille_widget, "typing") == {"type": "typing", "from": "advisor"}
    await stranger_widget.send_json_to({"type": "ping"})
    assert (await stranger_widget.receive_json_from(timeout=10))["type"] == "pong"  # nothing came before it
    await inbox.disconnect()
    await camille_widget.disconnect()
    await stranger_widget.disconnect()
    from tests.presence import forget_presence

    await sync_to_async(forget_presence)()
