"""Who has the inbox open: an advisor is online while at least one of their sockets is.

One entry per open socket (its channel name), stamped with its last beat. Each server
process stamps its own sockets' entries every time it refreshes their access
(channels_app.consumers, every 30 s); an entry not stamped for PRESENCE_TTL_SECONDS has
lapsed: its process is gone (killed, crashed, cut off) without closing its sockets.
Lapsed entries never count, and the same refresh, in any live process, sweeps them and
announces "offline" for the advisors it leaves with none.

Only the transitions are pushed (to the agency's supervisors and the advisor's own group):
online at an advisor's first live entry, offline when the last one is closed or swept. An
entry is removed by one process only (the store says which), so a lapse is announced once;
two processes sweeping two entries of one advisor at once may both announce it, which is
harmless: the message is a state, not a change to count. A store or channel-layer failure
costs the presence indicator, never the connection.

Where the entries live:
- with Redis (REDIS_URL), in sorted sets scored by last beat, shared by every process:
  one of every socket (`attitre:presence:sockets`, members "advisor:agency:channel") and
  one per advisor (`attitre:presence:advisor:<id>`, their channels). Through a small
  redis-py client of our own, built from REDIS_URL (and REDIS_SENTINELS: it follows a
  failover as the layer and the cache do, core/redis_config.py): the cache's client is
  internal to Django's cache backend, and presence wants its own timeouts.
- on the embedded default (no Redis, one web process), in rows of `events.Presence`,
  which the database serialises (SQLite's transactions are IMMEDIATE).
"""

import functools
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

import redis
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import transaction

from core.redis_config import RedisLocation, settings_redis_location, sync_client
from events.groups import advisor_group, supervision_group
from events.models import Presence

logger = logging.getLogger(__name__)

# Three missed refreshes (every 30 s): the process is gone, or too sick to serve its sockets.
PRESENCE_TTL_SECONDS = 90
# Lapsed entries removed per sweep: a dead process's thousands of sockets take a few refreshes.
SWEEP_BATCH = 1000
REDIS_PREFIX = "attitre:presence"

# Seconds since the epoch. Replaced in tests, which move time instead of waiting for it.
clock: Callable[[], float] = time.time


@dataclass(frozen=True)
class Socket:
    """An open inbox socket: its channel name and whose it is."""

    channel: str
    advisor_id: int
    agency_id: int


class _RedisPresence:
    def __init__(self, client):
        self.client = client
        self.sockets = f"{REDIS_PREFIX}:sockets"

    @staticmethod
    def _advisor(advisor_id: int) -> str:
        return f"{REDIS_PREFIX}:advisor:{advisor_id}"

    @staticmethod
    def _member(socket: Socket) -> str:
        return f"{socket.advisor_id}:{socket.agency_id}:{socket.channel}"

    def connect(self, socket: Socket, now: float) -> bool:
        key = self._advisor(socket.advisor_id)
        # MULTI/EXEC: two tabs opening at once count 1 then 2, never 2 and 2.
        pipe = self.client.pipeline(transaction=True)
        pipe.zadd(self.sockets, {self._member(socket): now})
        pipe.zadd(key, {socket.channel: now})
        pipe.expire(key, PRESENCE_TTL_SECONDS)
        pipe.zcount(key, now - PRESENCE_TTL_SECONDS, "+inf")
        return pipe.execute()[-1] == 1

    def disconnect(self, socket: Socket, now: float) -> bool:
        key = self._advisor(socket.advisor_id)
        pipe = self.client.pipeline(transaction=True)
        pipe.zrem(self.sockets, self._member(socket))
        pipe.zrem(key, socket.channel)
        pipe.zcount(key, now - PRESENCE_TTL_SECONDS, "+inf")
        _, removed, live = pipe.execute()
        # Not removed here: a sweep took the entry, and announced it if it was the last.
        return removed == 1 and live == 0

    def refresh(self, sockets: list[Socket], now: float) -> list[Socket]:
        pipe = self.client.pipeline(transaction=False)
        for socket in sockets:
            key = self._advisor(socket.advisor_id)
            pipe.zadd(self.sockets, {self._member(socket): now})
            pipe.zadd(key, {socket.channel: now})
            pipe.expire(key, PRESENCE_TTL_SECONDS)
        added = pipe.execute()[1::3]
        # Entries that were gone (swept while this process stalled, Redis restarted): back.
        return [socket for socket, new in zip(sockets, added, strict=True) if new]

    def live_counts(self, advisor_ids: Iterable[int], now: float) -> dict[int, int]:
        advisor_ids = list(advisor_ids)
        pipe = self.client.pipeline(transaction=False)
        for advisor_id in advisor_ids:
            pipe.zcount(self._advisor(advisor_id), now - PRESENCE_TTL_SECONDS, "+inf")
        return dict(zip(advisor_ids, pipe.execute(), strict=True))

    def sweep(self, now: float) -> list[Socket]:
        lapsed = self.client.zrangebyscore(
            self.sockets, "-inf", f"({now - PRESENCE_TTL_SECONDS}", start=0, num=SWEEP_BATCH
        )
        if not lapsed:
            return []
        pipe = self.client.pipeline(transaction=False)
        for member in lapsed:
            pipe.zrem(self.sockets, member)
        # ZREM answers 1 to one caller only: each lapsed entry belongs to the process that removed it.
        taken = [_socket_of(member) for member, removed in zip(lapsed, pipe.execute(), strict=True) if removed]
        pipe = self.client.pipeline(transaction=False)
        for socket in taken:
            pipe.zrem(self._advisor(socket.advisor_id), socket.channel)
        pipe.execute()
        return taken


def _socket_of(member: str) -> Socket:
    advisor_id, agency_id, channel = member.split(":", 2)
    return Socket(channel, int(advisor_id), int(agency_id))


class _DatabasePresence:
    @staticmethod
    def _live(now: float):
        return Presence.objects.filter(last_seen__gte=_datetime(now - PRESENCE_TTL_SECONDS))

    def connect(self, socket: Socket, now: float) -> bool:
        with transaction.atomic():
            Presence.objects.update_or_create(
                channel_name=socket.channel,
                defaults={"advisor_id": socket.advisor_id, "agency_id": socket.agency_id, "last_seen": _datetime(now)},
            )
            return self._live(now).filter(advisor_id=socket.advisor_id).count() == 1

    def disconnect(self, socket: Socket, now: float) -> bool:
        with transaction.atomic():
            removed, _ = Presence.objects.filter(channel_name=socket.channel).delete()
            return removed == 1 and not self._live(now).filter(advisor_id=socket.advisor_id).exists()

    def refresh(self, sockets: list[Socket], now: float) -> list[Socket]:
        if not sockets:
            return []
        names = [socket.channel for socket in sockets]
        with transaction.atomic():
            updated = Presence.objects.filter(channel_name__in=names).update(last_seen=_datetime(now))
            if updated == len(sockets):
                return []
            kept = set(Presence.objects.filter(channel_name__in=names).values_list("channel_name", flat=True))
            back = [socket for socket in sockets if socket.channel not in kept]
            Presence.objects.bulk_create(
                [
                    Presence(
                        channel_name=s.channel, advisor_id=s.advisor_id, agency_id=s.agency_id, last_seen=_datetime(now)
                    )
                    for s in back
                ],
                ignore_conflicts=True,
            )
        return back

    def live_counts(self, advisor_ids: Iterable[int], now: float) -> dict[int, int]:
        counts = dict.fromkeys(advisor_ids, 0)
        for advisor_id in self._live(now).filter(advisor_id__in=counts).values_list("advisor_id", flat=True):
            counts[advisor_id] += 1
        return counts

    def sweep(self, now: float) -> list[Socket]:
        lapsed = Presence.objects.filter(last_seen__lt=_datetime(now - PRESENCE_TTL_SECONDS))
        if not lapsed.exists():  # the usual answer, without taking SQLite's write lock
            return []
        with transaction.atomic():
            rows = list(
                lapsed.select_for_update(skip_locked=True).values_list("channel_name", "advisor_id", "agency_id")[
                    :SWEEP_BATCH
                ]
            )
            Presence.objects.filter(channel_name__in=[row[0] for row in rows]).delete()
        return [Socket(*row) for row in rows]


def _datetime(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


@functools.cache
def _redis_client(location: RedisLocation) -> redis.Redis:
    return sync_client(location, socket_connect_timeout=0.5, socket_timeout=1, decode_responses=True)


def _store() -> _RedisPresence | _DatabasePresence:
    location = settings_redis_location()
    if location:
        return _RedisPresence(_redis_client(location))
    return _DatabasePresence()


# --- What the consumers call ---------------------------------------------------------


def _connect(socket: Socket) -> bool | None:
    try:
        return _store().connect(socket, clock())
    except Exception:
        logger.warning("Presence of advisor %s not recorded.", socket.advisor_id, exc_info=True)
        return None


def _disconnect(socket: Socket) -> bool | None:
    try:
        return _store().disconnect(socket, clock())
    except Exception:
        logger.warning("Presence of advisor %s not removed.", socket.advisor_id, exc_info=True)
        return None


def _refresh(sockets: list[Socket]) -> tuple[dict[int, int], dict[int, int]]:
    """Stamp these sockets and sweep the lapsed entries: the agencies of the advisors who
    are back online, and of those now offline, by advisor."""
    store, now = _store(), clock()
    back, gone = {}, {}
    try:
        returned = store.refresh(sockets, now)
        if returned:
            counts = store.live_counts({socket.advisor_id for socket in returned}, now)
            returned_by_advisor = defaultdict(int)
            for socket in returned:
                returned_by_advisor[socket.advisor_id] += 1
            # Online again only if what came back is all they have (duplicates are harmless).
            back = {
                socket.advisor_id: socket.agency_id
                for socket in returned
                if counts[socket.advisor_id] == returned_by_advisor[socket.advisor_id]
            }
    except Exception:
        logger.warning("Presence of %s open inboxes not refreshed.", len(sockets), exc_info=True)
    try:
        swept = store.sweep(now)
        if swept:
            counts = store.live_counts({socket.advisor_id for socket in swept}, now)
            gone = {socket.advisor_id: socket.agency_id for socket in swept if counts[socket.advisor_id] == 0}
    except Exception:
        logger.warning("Lapsed presence not swept.", exc_info=True)
    return back, gone


async def _publish(*, advisor_id: int, agency_id: int, online: bool) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    event = {"id": None, "type": "presence", "advisor": advisor_id, "online": online}
    for group in (supervision_group(agency_id), advisor_group(advisor_id)):
        try:
            await layer.group_send(group, {"type": "inbox.events", "events": [event]})
        except Exception:
            logger.warning("Presence of advisor %s not pushed to %s.", advisor_id, group, exc_info=True)


async def presence_connect(*, socket: Socket) -> None:
    """A socket opened: its advisor comes online if it is their only live one."""
    if await sync_to_async(_connect, thread_sensitive=False)(socket):
        await _publish(advisor_id=socket.advisor_id, agency_id=socket.agency_id, online=True)


async def presence_disconnect(*, socket: Socket) -> None:
    """A socket closed: its advisor goes offline if it was their last live one."""
    if await sync_to_async(_disconnect, thread_sensitive=False)(socket):
        await _publish(advisor_id=socket.advisor_id, agency_id=socket.agency_id, online=False)


async def presence_refresh(*, sockets: list[Socket]) -> None:
    """These sockets are still open: stamp their entries, and sweep the lapsed ones of any
    process, announcing who went offline. One trip off the event loop however many."""
    back, gone = await sync_to_async(_refresh, thread_sensitive=False)(sockets)
    for advisor_id, agency_id in back.items():
        await _publish(advisor_id=advisor_id, agency_id=agency_id, online=True)
    for advisor_id, agency_id in gone.items():
        await _publish(advisor_id=advisor_id, agency_id=agency_id, online=False)


def advisors_online(*, advisor_ids: list[int]) -> set[int]:
    """Which of these advisors have the inbox open now, for a page's first render."""
    try:
        counts = _store().live_counts(advisor_ids, clock())
    except Exception:
        logger.warning("Presence unavailable.", exc_info=True)
        return set()
    return {advisor_id for advisor_id, count in counts.items() if count}
