"""Who has the inbox open: an advisor is online while at least one of their tabs is connected.

Ephemeral by design: a connection count per advisor in the cache (Redis in
production, shared by every server process), never in the database. Only the
transitions 0→1 and 1→0 are pushed, to the agency's supervisors and to the
advisor's own group (their other tabs, the deputies covering them). A cache or
channel-layer failure costs the presence indicator, never the connection.
"""

import logging

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.core.cache import cache

from events.groups import advisor_group, supervision_group

logger = logging.getLogger(__name__)

# Each heartbeat refreshes it: the counts of a server that died without closing its
# sockets expire instead of showing its advisors online forever.
PRESENCE_TTL_SECONDS = 120


def presence_key(advisor_id: int) -> str:
    return f"inbox.presence.{advisor_id}"


def _count_change(advisor_id: int, delta: int) -> int | None:
    """The advisor's connection count after adding `delta`; None when the cache fails."""
    key = presence_key(advisor_id)
    try:
        for _attempt in range(2):
            if delta > 0:
                cache.add(key, 0, PRESENCE_TTL_SECONDS)
            try:
                # incr, not a get then a set: two tabs opening at once must count two.
                count = cache.incr(key, delta)
                if count < 0:
                    # More closes than opens counted (the count expired under open tabs): back to zero.
                    count = cache.incr(key, -count)
                return count
            except ValueError:
                # The key expired between add and incr; a missing key on the way down means nobody is counted.
                if delta < 0:
                    return 0
        return None
    except Exception:
        logger.warning("Presence count of advisor %s unavailable; presence not updated.", advisor_id, exc_info=True)
        return None


def _count_refresh(advisor_id: int) -> None:
    key = presence_key(advisor_id)
    try:
        if not cache.touch(key, PRESENCE_TTL_SECONDS):
            # The count vanished under a live tab (cache restart, eviction): count this tab again.
            cache.add(key, 1, PRESENCE_TTL_SECONDS)
    except Exception:
        logger.warning("Presence count of advisor %s not refreshed.", advisor_id, exc_info=True)


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


async def presence_connect(*, advisor_id: int, agency_id: int) -> None:
    """A tab opened: the advisor comes online if it is their first."""
    count = await sync_to_async(_count_change, thread_sensitive=False)(advisor_id, 1)
    if count == 1:
        await _publish(advisor_id=advisor_id, agency_id=agency_id, online=True)


async def presence_disconnect(*, advisor_id: int, agency_id: int) -> None:
    """A tab closed: the advisor goes offline if it was their last."""
    count = await sync_to_async(_count_change, thread_sensitive=False)(advisor_id, -1)
    if count is not None and count <= 0:
        await _publish(advisor_id=advisor_id, agency_id=agency_id, online=False)


def _counts_refresh(advisor_ids: list[int]) -> None:
    for advisor_id in advisor_ids:
        _count_refresh(advisor_id)


async def presence_refresh(*, advisor_ids: list[int]) -> None:
    """These advisors' tabs are still connected: keep their counts from expiring, in one
    trip off the event loop however many there are."""
    await sync_to_async(_counts_refresh, thread_sensitive=False)(advisor_ids)


def advisors_online(*, advisor_ids: list[int]) -> set[int]:
    """Which of these advisors have the inbox open now, for a page's first render."""
    try:
        counts = cache.get_many([presence_key(advisor_id) for advisor_id in advisor_ids])
    except Exception:
        logger.warning("Presence unavailable.", exc_info=True)
        return set()
    return {advisor_id for advisor_id in advisor_ids if (counts.get(presence_key(advisor_id)) or 0) > 0}
