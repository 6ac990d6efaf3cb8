"""The channel layer's group sends: what channels-redis delivers, in fewer round trips."""

import asyncio
import inspect
import uuid

import msgpack
import pytest
from channels_redis.core import ChannelLock
from channels_redis.core import RedisChannelLayer as ChannelsRedisLayer
from channels_redis.serializers import MsgPackSerializer
from django.conf import settings

from channels_app.layers import RedisChannelLayer, _CancellableChannelLock
from tests.pins import assert_tested_version


def _layers(cls, **config):
    """Two server processes' layers (each its own process channel key) on one test prefix."""
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    return [cls(hosts=[settings.REDIS_URL], prefix=prefix, **config) for _ in range(2)]


async def _received(layer, channel: str) -> list[dict]:
    """What waits on `channel`: the messages before a barrier sent to it now (a channel
    delivers in order), without waiting for a quiet period."""
    barrier = {"type": "barrier", "to": channel}
    await layer.send(channel, barrier)
    messages = []
    async with asyncio.timeout(10):  # a broken test fails instead of hanging; nothing is timed
        while (message := await layer.receive(channel)) != barrier:
            messages.append(message)
    return messages


async def _deliveries(cls, **config) -> list[list[dict]]:
    """Four groups over the channels of two processes and a channel of no process, two
    rounds of sends: every way a member's queue is keyed and its names are packed."""
    first, second = _layers(cls, **config)
    a1, a2, b1 = await first.new_channel(), await first.new_channel(), await second.new_channel()
    crowd = [await second.new_channel("tab") for _ in range(17)]  # msgpack packs 16 names and more apart
    plain = "plain-channel-" + uuid.uuid4().hex  # no process: a queue of its own
    members = [("advisor.1", a1), ("advisor.1", a2), ("pool.1", a1), ("pool.1", b1), ("agency.1", b1)]
    members += [("agency.1", plain)] + [("supervision.1", tab) for tab in crowd]
    for group, channel in members:
        await first.group_add(group, channel)
    sends = [("advisor.1", {"type": "inbox.events", "n": 1}), ("pool.1", {"type": "inbox.events", "n": 2})]
    sends += [("agency.1", {"type": "inbox.events", "n": 3, "text": "café ☕"}), ("nobody", {"type": "x", "n": 4})]
    sends += [("supervision.1", {"type": "inbox.events", "n": 5, "events": [{"id": 9, "body": "x" * 300}]})]
    for _ in range(2):
        if cls is RedisChannelLayer:
            await first.group_send_many(sends)
        else:
            for group, message in sends:
                await first.group_send(group, message)
    try:
        channels = [(first, a1), (first, a2), (second, b1), (first, plain)] + [(second, tab) for tab in crowd]
        return [await _received(layer, channel) for layer, channel in channels]
    finally:
        await first.flush()


@pytest.mark.redis
@pytest.mark.parametrize(
    "config",
    [{}, {"symmetric_encryption_keys": ["a test key, not a secret"]}],
    ids=["one round trip", "two round trips (encrypted messages)"],
)
async def test_each_channel_receives_what_channels_redis_would_deliver(config):
    """Every member of every group gets that group's message, once per send and in order,
    across processes, for many channels of one process and for a channel of none,
    exactly as channels-redis delivers them."""
    first, _ = _layers(RedisChannelLayer, **config)
    assert first._sends_in_one_trip() == (not config)
    ours, theirs = await _deliveries(RedisChannelLayer, **config), await _deliveries(ChannelsRedisLayer, **config)
    assert ours == theirs
    assert [[m["n"] for m in messages] for messages in ours[:4]] == [[1, 2, 1, 2], [1, 1], [2, 3, 2, 3], [3, 3]]
    assert all([m["n"] for m in messages] == [5, 5] for messages in ours[4:])
    assert ours[3][0]["text"] == "café ☕"


@pytest.mark.redis
async def test_group_send_of_one_group_is_the_batch_of_one():
    first, second = _layers(RedisChannelLayer)
    channel = await second.new_channel()
    await first.group_add("advisor.7", channel)
    await first.group_send("advisor.7", {"type": "inbox.events", "n": 7})
    assert await _received(second, channel) == [{"type": "inbox.events", "n": 7}]
    await first.flush()


@pytest.mark.redis
async def test_a_full_channel_drops_the_message_as_channels_redis_does():
    """Over capacity a group send drops the message for that channel only, without raising."""
    first, _ = _layers(RedisChannelLayer, capacity=2)
    full, free = await first.new_channel("full"), await first.new_channel("free")
    for group, channel in [("g", full), ("h", free)]:
        await first.group_add(group, channel)
    await first.group_send_many([("g", {"type": "x", "n": n}) for n in range(3)] + [("h", {"type": "x", "n": 9})])
    # Full, it takes no barrier: the two it holds first, then nothing (the third was dropped).
    assert [(await first.receive(full))["n"] for _ in range(2)] == [0, 1]
    assert await _received(first, full) == []
    assert [m["n"] for m in await _received(first, free)] == [9]
    await first.flush()


@pytest.mark.redis
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


def test_a_cancelled_waiter_leaves_the_receive_lock_free_for_another_event_loop():
    """A tab that closes while its receive waits on the lock must not leave the lock behind,
    bound to its event loop: the next loop to wait on it would fail (channels-redis's does)."""
    lock = _CancellableChannelLock()

    async def holder_and_cancelled_waiter():
        await lock.acquire("specific.abc!")
        waiter = asyncio.ensure_future(lock.acquire("specific.abc!"))
        await asyncio.sleep(0)  # waiting: the lock is now bound to this loop
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        lock.release("specific.abc!")

    async def two_waiters():
        await lock.acquire("specific.abc!")
        second = asyncio.ensure_future(lock.acquire("specific.abc!"))
        await asyncio.sleep(0)
        lock.release("specific.abc!")
        await second
        lock.release("specific.abc!")

    asyncio.run(holder_and_cancelled_waiter())
    assert "specific.abc!" not in lock.locks
    asyncio.run(two_waiters())  # another loop, as the next test (or a restarted loop) has
    assert "specific.abc!" not in lock.locks


def test_canary_channels_redis_is_the_version_and_shape_our_layer_builds_on():
    """Canary for channels_app/layers.py: it reads channels-redis's private attributes and
    writes channels-redis's message format. An upgrade fails here first, by name."""
    assert_tested_version("channels-redis", ">=4.3,<4.4", piece="channels_app/layers.py")
    layer = ChannelsRedisLayer(hosts=[settings.REDIS_URL or "redis://127.0.0.1:6379/0"])
    # What _sends_in_one_trip, _send_in_one_trip and _send_in_two_trips read.
    for attribute in ("ring_size", "channel_capacity", "_serializer", "group_expiry", "expiry", "capacity", "prefix"):
        assert hasattr(layer, attribute), f"channels-redis's layer has no {attribute} any more"
    for method in ("_group_key", "connection", "consistent_hash", "require_valid_group_name"):
        assert callable(getattr(layer, method, None)), f"channels-redis's layer has no {method}() any more"
    assert list(inspect.signature(layer._map_channel_keys_to_connection).parameters) == ["channel_names", "message"]
    assert isinstance(layer._serializer, MsgPackSerializer) and layer._serializer.crypter is None
    assert layer._serializer.random_prefix_length == 12
    # The receive lock we replace, and the attributes our subclass of it updates.
    assert isinstance(layer.receive_clean_locks, ChannelLock)
    assert {"locks", "wait_counts"} <= set(vars(ChannelLock()))
    # channels-redis's message for a queue: its random prefix, then msgpack with the channel names last.
    packed = layer._serializer.serialize({"type": "x", "__asgi_channel__": ["a!b"]})
    assert msgpack.unpackb(packed[12:]) == {"type": "x", "__asgi_channel__": ["a!b"]}
    assert packed.endswith(msgpack.packb(["a!b"]))
