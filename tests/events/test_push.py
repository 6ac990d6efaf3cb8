import asyncio
import json
import logging
import socket

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from conversations.models import Message
from events.groups import advisor_group, pool_group, supervision_group
from events.models import Event
from events.publish import _group_send_many
from tests import twilio
from tests.factories import add_deputy

MESSAGES = "/webhooks/twilio/messages/"
# Webhooks go through the ASGI application, whose route commits from its own threads.
webhook_db = pytest.mark.django_db(transaction=True)


def listen(*groups: str) -> str:
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    for group in groups:
        async_to_sync(layer.group_add)(group, channel)
    return channel


def received(channel: str) -> list[dict]:
    """Every event waiting on `channel` (an empty group gets nothing): what arrived before a
    barrier sent to it now (a channel delivers in order), without waiting for a quiet period."""
    layer = get_channel_layer()
    events = []
    barrier = {"type": "barrier"}

    async def drain():
        await layer.send(channel, barrier)
        async with asyncio.timeout(10):  # a broken test fails instead of hanging; nothing is timed
            while (message := await layer.receive(channel)) != barrier:
                assert message["type"] == "inbox.events"
                events.extend(message["events"])

    async_to_sync(drain)()
    return events


@pytest.fixture(autouse=True)
def _flush_layer():
    layer = get_channel_layer()
    if hasattr(layer, "flush"):
        async_to_sync(layer.flush)()
    yield


@webhook_db
def test_events_reach_the_handler_after_commit_and_not_other_advisors(camille, alice, bob, sam):
    """After the webhook commits, alice's group and the supervisors get the message; bob's group gets nothing."""
    alice_channel = listen(advisor_group(alice.pk))
    bob_channel = listen(advisor_group(bob.pk), pool_group(bob.agency_id))
    supervisor_channel = listen(supervision_group(sam.agency_id))

    assert twilio.post_signed(MESSAGES, twilio.whatsapp_text(body="Bonjour Alice")).status_code == 200

    alice_events = received(alice_channel)
    assert [e["type"] for e in alice_events] == ["thread.assigned", "message.created"]
    created = alice_events[1]
    assert created["id"] == Event.objects.get(type="message.created").pk
    assert created["message"]["id"] == Message.objects.get().pk
    assert "Bonjour Alice" not in json.dumps(created)
    assert created["thread_summary"]["unread_count"] == 1
    assert received(bob_channel) == []
    assert [e["type"] for e in received(supervisor_channel)] == ["thread.assigned", "message.created"]


@webhook_db
def test_pooled_thread_events_reach_the_pool(camille, alice, bob):
    """A thread in the pool is published to the agency pool group."""
    alice.availability = "away"
    alice.save()
    pool_channel = listen(pool_group(alice.agency_id))
    twilio.post_signed(MESSAGES, twilio.whatsapp_text())
    assert "message.created" in [e["type"] for e in received(pool_channel)]


@webhook_db
def test_deputy_handling_gets_events_and_dedicated_advisor_too(camille, alice, bob):
    """Covered by a deputy, the event reaches the deputy (handler) and the dedicated advisor's group."""
    add_deputy(alice, bob)
    alice.availability = "away"
    alice.save()
    alice_channel = listen(advisor_group(alice.pk))
    bob_channel = listen(advisor_group(bob.pk))
    twilio.post_signed(MESSAGES, twilio.whatsapp_text())
    assert "message.created" in [e["type"] for e in received(bob_channel)]
    assert "message.created" in [e["type"] for e in received(alice_channel)]


@pytest.mark.django_db
def test_nothing_is_pushed_when_the_transaction_rolls_back(camille, alice):
    """Without a commit (the test transaction never commits), the event exists only inside it."""
    alice_channel = listen(advisor_group(alice.pk))
    twilio.receive(twilio.whatsapp_text())
    assert Event.objects.filter(type="message.created").exists()
    assert received(alice_channel) == []


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@webhook_db
def test_dead_redis_never_fails_the_webhook(camille, alice, settings, caplog):
    """Redis down during a webhook: 200, the message and its events are stored, a warning is logged."""
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_app.layers.RedisChannelLayer",
            "CONFIG": {
                "hosts": [
                    {
                        "address": f"redis://127.0.0.1:{_closed_port()}/0",
                        "socket_connect_timeout": 0.5,
                        "socket_timeout": 0.5,
                    }
                ]
            },
        }
    }
    params = twilio.whatsapp_text(body="Redis est en panne")
    with caplog.at_level(logging.WARNING):
        response = twilio.post_signed(MESSAGES, params)
    assert response.status_code == 200
    assert Message.objects.filter(provider_message_id=params["MessageSid"]).exists()
    assert Event.objects.filter(type="message.created").count() == 1
    assert "Live push of events" in caplog.text
    assert "Redis est en panne" not in caplog.text


@pytest.mark.django_db
def test_pool_hears_when_a_thread_leaves_it(camille, alice, bob, django_capture_on_commit_callbacks):
    """A pooled thread claimed by an advisor tells the pool, so colleagues' Pool tabs drop it."""
    from conversations.models import Thread
    from conversations.services import thread_claim

    alice.availability = "away"
    alice.save()
    twilio.receive(twilio.whatsapp_text())
    pool_channel = listen(pool_group(alice.agency_id))
    with django_capture_on_commit_callbacks(execute=True):
        thread_claim(thread=Thread.objects.get(), advisor=bob)
    assigned = [e for e in received(pool_channel) if e["type"] == "thread.assigned"]
    assert [(e["previous_handler"], e["handler"]) for e in assigned] == [(None, bob.pk)]


async def test_a_layer_without_group_send_many_sends_group_by_group():
    """The embedded default's in-memory layer: the helper falls back to its group_send."""
    from channels.layers import InMemoryChannelLayer

    layer = InMemoryChannelLayer()
    channel = await layer.new_channel()
    await layer.group_add("g", channel)
    await layer.group_add("h", channel)
    await _group_send_many(layer, [("g", {"type": "x", "n": 1}), ("h", {"type": "x", "n": 2})])
    assert [(await layer.receive(channel))["n"] for _ in range(2)] == [1, 2]


@webhook_db
def test_a_reassigned_customers_previous_advisor_is_told_though_a_deputy_handles_the_thread(camille, alice, bob, sam):
    """Camille moves from alice to sam while bob handles her thread: alice loses sight of it and
    her inbox is told (before, only a previous advisor who handled the thread was)."""
    from conversations.models import Thread
    from conversations.services.customers import customer_reassign

    Thread.objects.create(customer=camille, dedicated_advisor=alice, agency=camille.agency, handler=bob)
    alice_channel = listen(advisor_group(alice.pk))
    customer_reassign(customer=camille, advisor=sam, reason="Départ d'Alice", changed_by=sam.user)
    assert [event["type"] for event in received(alice_channel)] == ["customer.reassigned"]
