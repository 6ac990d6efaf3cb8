"""The channel layer's group sends: what channels-redis delivers, in fewer round trips."""

import asyncio
import uuid

import pytest
from channels_redis.core import RedisChannelLayer as ChannelsRedisLayer
from django.conf import settings

from channels_app.layers import RedisChannelLayer, group_send_many

pytestmark = pytest.mark.redis


def _layers(cls, **config):
    """Two server processes' layers (each its own process channel key) on one test prefix."""
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    return [cls(hosts=[settings.REDIS_URL], prefix=prefix, **config) for _ in range(2)]


async def _received(layer, channel: str) -> list[dict]:
    messages = []
    while True:
        try:
            messages.append(await asyncio.wait_for(layer.receive(channel), timeout=0.2))
        except TimeoutError:
            return messages


async def _deliveries(cls) -> list[list[dict]]:
    """Three groups over three channels of two processes, two rounds of sends."""
    first, second = _layers(cls)
    a1, a2, b1 = await first.new_channel(), await first.new_channel(), await second.new_channel()
    for group, channel in [("advisor.1", a1), ("advisor.1", a2), ("pool.1", a1), ("pool.1", b1), ("agency.1", b1)]:
        await first.group_add(group, channel)
    sends = [("advisor.1", {"type": "inbox.events", "n": 1}), ("pool.1", {"type": "inbox.events", "n": 2})]
    sends += [("agency.1", {"type": "inbox.events", "n": 3}), ("nobody", {"type": "inbox.events", "n": 4})]
    for _ in range(2):
        if cls is RedisChannelLayer:
            await first.group_send_many(sends)
        else:
            for group, message in sends:
                await first.group_send(group, message)
    try:
        return [await _received(first, a1), await _received(first, a2), await _received(second, b1)]
    finally:
        await first.flush()


async def test_each_channel_receives_what_channels_redis_would_deliver():
    """Every member of every group gets that group's message, once per send and in order,
    across processes and for several channels of one process, exactly as channels-redis."""
    ours, theirs = await _deliveries(RedisChannelLayer), await _deliveries(ChannelsRedisLayer)
    assert ours == theirs
    assert [[m["n"] for m in messages] for messages in ours] == [[1, 2, 1, 2], [1, 1], [2, 3, 2, 3]]


async def test_group_send_of_one_group_is_the_batch_of_one():
    first, second = _layers(RedisChannelLayer)
    channel = await second.new_channel()
    await first.group_add("advisor.7", channel)
    await first.group_send("advisor.7", {"type": "inbox.events", "n": 7})
    assert await _received(second, channel) == [{"type": "inbox.events", "n": 7}]
    await first.flush()


async def test_a_full_channel_drops_the_message_as_channels_redis_does():
    """Over capacity a group send drops the message for that channel only, without raising."""
    first, _ = _layers(RedisChannelLayer, capacity=2)
    full, free = await first.new_channel("full"), await first.new_channel("free")
    for group, channel in [("g", full), ("h", free)]:
        await first.group_add(group, channel)
    await first.group_send_many([("g", {"type": "x", "n": n}) for n in range(3)] + [("h", {"type": "x", "n": 9})])
    assert [m["n"] for m in await _received(first, full)] == [0, 1]
    assert [m["n"] for m in await _received(first, free)] == [9]
    await first.flush()


async def test_members_past_the_group_expiry_are_dropped_and_get_nothing():
    first, _ = _layers(RedisChannelLayer, group_expiry=60)
    stale, live = await first.new_channel(), await first.new_channel()
    await first.group_add("g", live)
    # Joined long ago and never refreshed: what channels-redis expires.
    await first.connection(0).zadd(first._group_key("g"), {stale: 1})
    await first.group_send_many([("g", {"type": "x"})])
    assert await _received(first, stale) == []
    assert await _received(first, live) == [{"type": "x"}]
    assert await first.connection(0).zrange(first._group_key("g"), 0, -1) == [live.encode()]
    await first.flush()


async def test_a_layer_without_group_send_many_sends_group_by_group():
    """The embedded default's in-memory layer: the helper falls back to its group_send."""
    from channels.layers import InMemoryChannelLayer

    layer = InMemoryChannelLayer()
    channel = await layer.new_channel()
    await layer.group_add("g", channel)
    await layer.group_add("h", channel)
    await group_send_many(layer, [("g", {"type": "x", "n": 1}), ("h", {"type": "x", "n": 2})])
    assert [(await layer.receive(channel))["n"] for _ in range(2)] == [1, 2]
