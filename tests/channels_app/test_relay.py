"""The embedded default is live too: with the in-memory channel layer, which lives in the web
process, what another process (the task worker) writes to the event log reaches the open
inboxes of this one through the relay (channels_app/relay.py), once."""

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.layers import InMemoryChannelLayer, channel_layers, get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.db import connections
from django.test import Client

from channels_app import relay
from channels_app.layers import RedisChannelLayer
from config.asgi import application
from conversations.models import Message, Thread
from conversations.providers.base import StatusUpdate
from conversations.services import message_status_apply
from crm.models import Customer
from events.groups import advisor_group
from tests import twilio
from tests.channels_app.test_chat import BANK
from tests.channels_app.test_chat import SECRET as CHAT_SECRET
from tests.channels_app.test_chat import token as chat_token
from tests.queue import run_in_another_process

pytestmark = pytest.mark.django_db(transaction=True)

HEADERS = [(b"origin", b"http://127.0.0.1:8000"), (b"host", b"127.0.0.1:8000")]
# A bound for a broken test, not a measurement.
FRAME_TIMEOUT = 10
BARRIER = {"id": 0, "status": "barrier"}


@pytest.fixture(autouse=True)
def in_memory_layer(settings):
    """The embedded default's layer, whatever REDIS_URL this run has."""
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    channel_layers.backends.clear()
    yield
    channel_layers.backends.clear()


@pytest.fixture(autouse=True)
async def _closed_connections():
    yield
    await sync_to_async(connections.close_all)()


@pytest.fixture
def outbound(camille, alice):
    thread = Thread.objects.create(
        customer=camille, dedicated_advisor=camille.dedicated_advisor, agency=camille.agency, handler=alice
    )
    return Message.objects.create(
        thread=thread,
        direction="outbound",
        channel="whatsapp",
        contact_point=camille.contact_points.get(kind="whatsapp"),
        author=alice,
        body="Bonjour Camille, votre carte est débloquée.",
        provider="twilio",
        provider_message_id=twilio.new_sid(),
        status="sent",
    )


async def open_tab(user) -> WebsocketCommunicator:
    def cookie() -> str:
        client = Client()
        client.force_login(user)
        return client.cookies[settings.SESSION_COOKIE_NAME].value

    session = await database_sync_to_async(cookie)()
    headers = [*HEADERS, (b"cookie", f"{settings.SESSION_COOKIE_NAME}={session}".encode())]
    tab = WebsocketCommunicator(application, "/ws/inbox/?since=0", headers=headers)
    connected, _ = await tab.connect()
    assert connected
    assert (await tab.receive_json_from(timeout=FRAME_TIMEOUT))["type"] == "cursor"
    return tab


async def next_event(tab: WebsocketCommunicator) -> dict:
    """The next frame with an event id (heartbeats and presence skipped)."""
    while (frame := await tab.receive_json_from(timeout=FRAME_TIMEOUT)).get("id") is None:
        pass
    return frame


def status_in_the_worker(message: Message, status: str) -> None:
    """Twilio's callback for `message`, applied by another process on the embedded default (no Redis)."""
    run_in_another_process(
        "from conversations.providers.base import StatusUpdate\n"
        "from conversations.services import message_status_apply\n"
        "message_status_apply(update=StatusUpdate(provider='twilio',"
        f" provider_message_id='{message.provider_message_id}', status='{status}'))",
        REDIS_URL="",
    )


async def test_a_status_the_worker_process_applies_reaches_the_open_inbox(outbound, alice):
    """The other process's in-memory layer reaches nobody; the relay reads its event from the
    log and the tab gets it, without reconnecting."""
    tab = await open_tab(alice.user)

    await database_sync_to_async(status_in_the_worker)(outbound, "delivered")

    frame = await next_event(tab)
    assert (frame["type"], frame["message"], frame["status"]) == ("message.status", outbound.pk, "delivered")
    await tab.disconnect()


async def test_what_this_process_appends_is_pushed_once_and_not_relayed(outbound, alice):
    """An event appended in the web process goes out with its commit; the relay, reading it in
    the log before the worker's, skips it: one group message each."""
    tab = await open_tab(alice.user)
    layer = get_channel_layer()
    listener = await layer.new_channel()
    await layer.group_add(advisor_group(alice.pk), listener)

    await database_sync_to_async(message_status_apply)(
        update=StatusUpdate(provider="twilio", provider_message_id=outbound.provider_message_id, status="delivered")
    )
    await database_sync_to_async(status_in_the_worker)(outbound, "read")

    # The relay sends in log order: a second "delivered" would come before or with "read".
    # Then a barrier: nothing else was queued meanwhile.
    sent = []  # each group message's events (presence, which has no id, left out)
    while not sent or sent[-1] != ["barrier"]:
        message = await layer.receive(listener)
        if statuses := [event["status"] for event in message["events"] if event.get("id") is not None]:
            sent.append(statuses)
        if statuses == ["read"]:
            await layer.group_send(advisor_group(alice.pk), {"type": "inbox.events", "events": [BARRIER]})
    assert sent == [["delivered"], ["read"], ["barrier"]]
    assert [(await next_event(tab))["status"] for _ in range(3)] == ["delivered", "read", "barrier"]
    await tab.disconnect()


async def test_a_transfer_in_the_worker_reaches_the_advisor_it_was_taken_from(outbound, alice, bob):
    """A transfer is relayed to the thread's audience now and to its previous handler, whose inbox drops it."""
    alice_tab, bob_tab = await open_tab(alice.user), await open_tab(bob.user)
    thread = outbound.thread
    # Alice handles it but is not Camille's dedicated advisor: the transfer takes it from her.
    await sync_to_async(Customer.objects.filter(pk=thread.customer_id).update)(dedicated_advisor=None)
    await sync_to_async(Thread.objects.filter(pk=thread.pk).update)(dedicated_advisor=None)

    await database_sync_to_async(run_in_another_process)(
        "from conversations.models import Thread\n"
        "from conversations.services import thread_transfer\n"
        "from crm.models import Advisor\n"
        f"thread = Thread.objects.get(pk={thread.pk})\n"
        f"thread_transfer(thread=thread, to=Advisor.objects.get(pk={bob.pk}), by=Advisor.objects.get(pk={alice.pk}),"
        " reason='Bob knows this customer')",
        REDIS_URL="",
    )

    for tab in (alice_tab, bob_tab):
        frame = await next_event(tab)
        assert (frame["type"], frame["previous_handler"], frame["handler"]) == ("thread.assigned", alice.pk, bob.pk)
        await tab.disconnect()


async def test_the_relay_runs_while_sockets_are_open_and_never_on_a_shared_layer(outbound, alice):
    """Off with Redis (every process pushes its own events there); on the in-memory layer, it
    starts with the first socket and stops with the last."""
    assert not relay.relay_needed(RedisChannelLayer(hosts=["redis://127.0.0.1:1/0"]))
    assert not await relay.relay_follow(RedisChannelLayer(hosts=["redis://127.0.0.1:1/0"]))
    assert relay.relay_needed(InMemoryChannelLayer())

    first, second = await open_tab(alice.user), await open_tab(alice.user)
    running = relay._relay().task
    assert running is not None and not running.done()
    await first.disconnect()
    assert relay._relay().task is running
    await second.disconnect()
    assert relay._relay().task is None


async def test_a_status_the_worker_applies_reaches_the_customers_open_chat(outbound, camille, settings):
    """The customer's chat widget follows the relay as the inbox does: the worker's status of a
    message of their thread reaches it without Redis."""
    settings.CHAT_JWT_SECRET, settings.CHAT_JWT_PUBLIC_KEY = CHAT_SECRET, ""
    settings.CHAT_ALLOWED_ORIGINS = [BANK]
    widget = WebsocketCommunicator(application, "/ws/chat/", headers=[(b"origin", BANK.encode())])
    assert (await widget.connect())[0]
    await widget.send_json_to({"type": "auth", "token": chat_token(camille.customer_number)})
    while (await widget.receive_json_from(timeout=FRAME_TIMEOUT))["type"] != "cursor":
        pass

    await database_sync_to_async(status_in_the_worker)(outbound, "delivered")

    while (frame := await widget.receive_json_from(timeout=FRAME_TIMEOUT))["type"] != "message.status":
        pass
    assert frame == {"type": "message.status", "id": outbound.pk, "status": "delivered"}
    await widget.disconnect()
