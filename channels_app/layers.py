"""The channel layer: channels-redis's, with group sends in one round trip to Redis.

channels-redis sends to a group in four round trips (drop expired members, read the
members, drop expired messages, add the message), one after the other, and a live
event goes to three groups or more. At the live inbox's rate each event is sent
alone, so those round trips were most of the time from commit to the advisor's socket
(bench/latency.py). `group_send_many` does the same for any number of groups in one:
a script reads each group's members and adds the message to each member's queue. What
it writes is what channels-redis writes, so its receiving side is unchanged.

channels-redis's message for a queue is its msgpack, behind a random prefix, with the
queue's channel names under `__asgi_channel__`, last. The script gets the rest of the
message packed, and packs the names itself. Where that cannot be done (several Redis
hosts, encrypted messages, capacities per channel), two round trips: a pipeline reads
the members, a script adds the messages.
"""

import asyncio
import logging
import random
import time
from collections import defaultdict
from collections.abc import Iterable

from channels_redis.core import ChannelLock
from channels_redis.core import RedisChannelLayer as _RedisChannelLayer
from channels_redis.serializers import MsgPackSerializer

logger = logging.getLogger(__name__)

# The second trip: channels-redis's own group-send script, with its expiry of old messages folded in.
# KEYS: channel keys (one may repeat); ARGV: their messages, then their capacities,
# then the current time and the expiry. A channel is read in score order: each message
# scores a microsecond after the one before, so one key's messages keep their order.
_SEND_SCRIPT = """
local count = #KEYS
local now = tonumber(ARGV[2 * count + 1])
local expiry = tonumber(ARGV[2 * count + 2])
local over_capacity = 0
for i = 1, count do
    redis.call('ZREMRANGEBYSCORE', KEYS[i], 0, math.floor(now) - expiry)
    if redis.call('ZCOUNT', KEYS[i], '-inf', '+inf') < tonumber(ARGV[count + i]) then
        redis.call('ZADD', KEYS[i], now + (i - 1) * 0.000001, ARGV[i])
        redis.call('EXPIRE', KEYS[i], expiry)
    else
        over_capacity = over_capacity + 1
    end
end
return over_capacity
"""


# KEYS: group keys; ARGV: for each group its message packed up to the channel names, then
# the current time, the group expiry, the message expiry, the capacity and the key prefix.
# The names are packed as msgpack packs a list of str: array header, then each string.
_SEND_IN_ONE_TRIP_SCRIPT = """
local groups = #KEYS
local now = tonumber(ARGV[groups + 1])
local group_expiry = tonumber(ARGV[groups + 2])
local expiry = tonumber(ARGV[groups + 3])
local capacity = tonumber(ARGV[groups + 4])
local prefix = ARGV[groups + 5]
local function header(small, marker8, marker16, count)
    if small and count < 16 then return string.char(small + count) end
    if marker8 and count < 256 then return string.char(marker8, count) end
    return string.char(marker16, math.floor(count / 256), count % 256)
end
local function pack_names(names)
    local parts = {header(0x90, nil, 0xdc, #names)}
    for _, name in ipairs(names) do
        local small = #name < 32 and 0xa0 or nil
        parts[#parts + 1] = header(small, 0xd9, 0xda, #name) .. name
    end
    return table.concat(parts)
end
local over_capacity = 0
local sent = 0
for g = 1, groups do
    redis.call('ZREMRANGEBYSCORE', KEYS[g], 0, math.floor(now) - group_expiry)
    local names_of, keys = {}, {}
    for _, channel in ipairs(redis.call('ZRANGE', KEYS[g], 0, -1)) do
        local bang = string.find(channel, '!', 1, true)
        local key = prefix .. (bang and string.sub(channel, 1, bang) or channel)
        if names_of[key] == nil then
            names_of[key] = {}
            keys[#keys + 1] = key
        end
        table.insert(names_of[key], channel)
    end
    for _, key in ipairs(keys) do
        redis.call('ZREMRANGEBYSCORE', key, 0, math.floor(now) - expiry)
        if redis.call('ZCOUNT', key, '-inf', '+inf') < capacity then
            redis.call('ZADD', key, now + sent * 0.000001, ARGV[g] .. pack_names(names_of[key]))
            redis.call('EXPIRE', key, expiry)
            sent = sent + 1
        else
            over_capacity = over_capacity + 1
        end
    end
end
return over_capacity
"""


class _CancellableChannelLock(ChannelLock):
    """channels-redis's per-channel lock, which forgets a waiter that was cancelled: its own
    keeps counting it, so the lock is never dropped and stays bound to its event loop, and
    the next loop to wait on it fails ("bound to a different event loop"), as a test's does."""

    async def acquire(self, channel):
        try:
            return await super().acquire(channel)
        except asyncio.CancelledError:
            self.wait_counts[channel] -= 1
            if self.wait_counts[channel] < 1 and not self.locks[channel].locked():
                del self.locks[channel]
                del self.wait_counts[channel]
            raise


class RedisChannelLayer(_RedisChannelLayer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.receive_clean_locks = _CancellableChannelLock()

    async def group_send(self, group, message):
        await self.group_send_many([(group, message)])

    async def group_send_many(self, sends: Iterable[tuple[str, dict]]) -> None:
        """Send each (group, message) to that group's members, as `group_send` would."""
        sends = list(sends)
        for group, _ in sends:
            assert self.require_valid_group_name(group), "Group name not valid"
        if self._sends_in_one_trip():
            over = await self._send_in_one_trip(sends)
        else:
            over = sum(await self._send_in_two_trips(sends))
        if over:
            logger.info("%d channel messages dropped over capacity in groups %s", over, [g for g, _ in sends])

    def _sends_in_one_trip(self) -> bool:
        serializer = self._serializer
        return (
            self.ring_size == 1
            and not self.channel_capacity
            and isinstance(serializer, MsgPackSerializer)
            and serializer.crypter is None
        )

    async def _send_in_one_trip(self, sends: list[tuple[str, dict]]) -> int:
        if not sends:
            return 0
        heads = [self._packed_up_to_channel_names(message) for _, message in sends]
        keys = [self._group_key(group) for group, _ in sends]
        config = [time.time(), self.group_expiry, self.expiry, self.capacity, self.prefix]
        return await self.connection(0).eval(_SEND_IN_ONE_TRIP_SCRIPT, len(keys), *keys, *heads, *config)

    def _packed_up_to_channel_names(self, message: dict) -> bytes:
        """What channels-redis's serializer makes of the message, up to the channel names'
        list: their key comes last, so the script can append the list."""
        message = {key: value for key, value in message.items() if key != "__asgi_channel__"}
        packed = self._serializer.as_bytes({**message, "__asgi_channel__": None})
        if packed[-1:] != b"\xc0":  # msgpack's nil: the placeholder, last
            raise ValueError("The message does not pack with its channel names last.")
        length = self._serializer.random_prefix_length
        # As channels-redis: a random prefix keeps equal messages apart in the sorted set.
        prefix = random.getrandbits(8 * length).to_bytes(length, "big") if length else b""
        return prefix + packed[:-1]

    async def _send_in_two_trips(self, sends: list[tuple[str, dict]]) -> list[int]:
        members = await self._members_of([group for group, _ in sends])
        per_shard: dict[int, list[tuple[bytes, bytes, int]]] = defaultdict(list)
        for (_, message), channels in zip(sends, members, strict=True):
            keys, messages, capacities = self._map_channel_keys_to_connection(channels, message)
            for index, channel_keys in keys.items():
                per_shard[index] += [(key, messages[key], capacities[key]) for key in channel_keys]
        return await asyncio.gather(*(self._add(index, items) for index, items in per_shard.items()))

    async def _members_of(self, groups: list[str]) -> list[list[str]]:
        """Each group's live members, expired ones dropped: one pipeline per shard."""
        by_shard: dict[int, list[int]] = defaultdict(list)
        for position, group in enumerate(groups):
            by_shard[self.consistent_hash(group)].append(position)
        oldest = int(time.time()) - self.group_expiry
        members: list[list[str]] = [[] for _ in groups]

        async def read(index: int, positions: list[int]) -> None:
            pipe = self.connection(index).pipeline(transaction=False)
            for position in positions:
                key = self._group_key(groups[position])
                pipe.zremrangebyscore(key, min=0, max=oldest)
                pipe.zrange(key, 0, -1)
            results = await pipe.execute()
            for position, names in zip(positions, results[1::2], strict=True):
                members[position] = [name.decode("utf8") for name in names]

        await asyncio.gather(*(read(index, positions) for index, positions in by_shard.items()))
        return members

    async def _add(self, index: int, items: list[tuple[bytes, bytes, int]]) -> int:
        keys = [key for key, _, _ in items]
        args = [message for _, message, _ in items] + [capacity for _, _, capacity in items]
        return await self.connection(index).eval(_SEND_SCRIPT, len(keys), *keys, *args, time.time(), self.expiry)
