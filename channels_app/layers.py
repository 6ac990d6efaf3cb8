"""The channel layer: channels-redis's, with group sends in two round trips to Redis.

channels-redis sends to a group in four round trips (drop expired members, read the
members, drop expired messages, add the message), one after the other, and a live
event goes to three groups or more. At the live inbox's rate each event is sent
alone, so those round trips are most of the time from commit to the advisor's socket
(bench/latency.py). `group_send_many` does the same for any number of groups in two:
one pipeline reads every group's members, one script adds every message. What it
writes is what channels-redis writes, so its receiving side is unchanged.
"""

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Iterable

from channels_redis.core import RedisChannelLayer as _RedisChannelLayer

logger = logging.getLogger(__name__)

# channels-redis's own group-send script, with its expiry of old messages folded in.
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


class RedisChannelLayer(_RedisChannelLayer):
    async def group_send(self, group, message):
        await self.group_send_many([(group, message)])

    async def group_send_many(self, sends: Iterable[tuple[str, dict]]) -> None:
        """Send each (group, message) to that group's members, as `group_send` would."""
        sends = list(sends)
        for group, _ in sends:
            assert self.require_valid_group_name(group), "Group name not valid"
        members = await self._members_of([group for group, _ in sends])
        per_shard: dict[int, list[tuple[bytes, bytes, int]]] = defaultdict(list)
        for (_, message), channels in zip(sends, members, strict=True):
            keys, messages, capacities = self._map_channel_keys_to_connection(channels, message)
            for index, channel_keys in keys.items():
                per_shard[index] += [(key, messages[key], capacities[key]) for key in channel_keys]
        over = await asyncio.gather(*(self._add(index, items) for index, items in per_shard.items()))
        if sum(over):
            logger.info("%d channel messages dropped over capacity in groups %s", sum(over), [g for g, _ in sends])

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


async def group_send_many(layer, sends: list[tuple[str, dict]]) -> None:
    """Send to several groups in as few round trips as the layer allows; the in-memory
    layer of the embedded default sends group by group."""
    if isinstance(layer, RedisChannelLayer):
        await layer.group_send_many(sends)
    else:
        for group, message in sends:
            await layer.group_send(group, message)
