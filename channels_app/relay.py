"""The events other processes wrote, relayed to this process's open inboxes, when the channel
layer lives in this process only.

On the embedded default (no Redis) the channel layer is Channels' in-memory one: it lives in
the web process, and what the task worker pushes after its commits (delivery failures, emails
handed to the mail server, media downloaded, inbound email) reaches no socket. The durable
event log has it all, so while this process has inbox sockets open, one task per event loop
tails the log in commit order (`events.log.events_after`, every RELAY_POLL_SECONDS) and sends
each event that this process did not append itself to the groups that may see its thread now
(`conversations.access.event_audience`: what the inbox's replay would show). The events this
process appends it pushes itself after commit (`events.publish`); the relay skips them.

The relay starts with the first socket, from the log's current end (read before that socket
replays what it missed, so nothing falls between the two), and stops with the last one. With
a layer that every process shares (Redis), every process pushes its own events: it stays off.
"""

import asyncio
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable

from channels.db import database_sync_to_async
from channels.layers import InMemoryChannelLayer
from django.db import close_old_connections, connections
from django.db.models import Q

from conversations.access import event_audience
from conversations.models import Thread
from core.loops import loop_local
from events.groups import CUSTOMER_EVENT_TYPES, chat_group
from events.log import events_after, tail_start
from events.models import Event
from events.publish import event_message, on_append, push_events

logger = logging.getLogger(__name__)

# How often the log is read while sockets are open: worker events reach pages within this,
# plus a read and a send (well under the second promised).
RELAY_POLL_SECONDS = 0.25
# Events read at once; a fuller backlog is read again at once.
RELAY_BATCH = 500
# Own events remembered until the relay passes them. One forgotten (its transaction rolled
# back, or too many pending) is at worst sent twice, and the socket drops the second.
OWN_IDS_KEPT = 10_000


def relay_needed(layer) -> bool:
    """Whether `layer` reaches this process's sockets only (Channels' in-memory layer)."""
    return isinstance(layer, InMemoryChannelLayer)


class _OwnEvents:
    """The ids of the events this process appended, while a relay runs: recorded at insert, in
    their transaction (`events.publish.on_append`), so before the relay can read them."""

    def __init__(self):
        self.lock = threading.Lock()
        self.ids: OrderedDict[int, None] = OrderedDict()
        self.relays = 0

    def running(self, delta: int) -> None:
        with self.lock:
            self.relays += delta
            if not self.relays:
                self.ids.clear()

    def remember(self, events: list[Event]) -> None:
        with self.lock:
            if not self.relays:
                return
            for event in events:
                self.ids[event.pk] = None
            while len(self.ids) > OWN_IDS_KEPT:
                self.ids.popitem(last=False)

    def take(self, event_id: int) -> bool:
        """Whether this process appended `event_id` (forgotten from now on)."""
        with self.lock:
            if event_id in self.ids:
                del self.ids[event_id]
                return True
            return False


_own = _OwnEvents()
on_append(_own.remember)


class _Relay:
    """One event loop's relay: runs while at least one socket follows it."""

    # What the relay waits with between reads; tests may replace it.
    sleep = staticmethod(asyncio.sleep)

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.followers = 0
        self.task: asyncio.Task | None = None
        self.started: asyncio.Future | None = None

    async def follow(self) -> None:
        """Count one more socket; returns once the relay knows where the log ends."""
        self.followers += 1
        if self.task is None:
            self.started = self.loop.create_future()
            self.task = self.loop.create_task(self._run(self.started))
        try:
            await asyncio.shield(self.started)
        except BaseException:
            self.unfollow()
            raise

    def unfollow(self) -> None:
        self.followers -= 1
        if not self.followers and self.task is not None:
            self.task.cancel()
            self.task = None

    async def _run(self, started: asyncio.Future) -> None:
        _own.running(+1)
        try:
            try:
                since = await _tail_start()
            except Exception as error:
                started.set_exception(error)
                return
            started.set_result(None)
            while True:
                full = False
                try:
                    since, sends, full = await _read(since)
                    await push_events(sends)
                except Exception:
                    logger.warning("Relaying the event log to open inboxes failed; retrying.", exc_info=True)
                if not full:
                    await self.sleep(RELAY_POLL_SECONDS)
        finally:
            _own.running(-1)
            if self.task is asyncio.current_task():
                self.task = None
            await _close_connections()


_relay = loop_local(lambda: _Relay(asyncio.get_running_loop()))


async def relay_follow(layer) -> bool:
    """Called by a socket before it replays: with a layer of this process only, the relay runs
    (from the log's current end) until `relay_unfollow`. Returns whether it was needed."""
    if not relay_needed(layer):
        return False
    await _relay().follow()
    return True


def relay_unfollow() -> None:
    _relay().unfollow()


def _in_own_context(function):
    """`function` run in a thread of its own, so that the thread Django's sync code shares stays
    free for requests. Its connection lives in the relay task's context (asgiref's Local), not
    in the thread's: closed there once past its age, as a request's is, and when the relay stops."""

    def run(*args):
        try:
            return function(*args)
        finally:
            close_old_connections()

    return database_sync_to_async(run, thread_sensitive=False)


def _read_sync(since: int) -> tuple[int, list[tuple[list[str], dict]], bool]:
    """The events past `since` that another process appended, with their groups: (the new
    `since`, the sends, whether the batch was full)."""
    events = events_after(since=since, visible=Q(thread__isnull=False), limit=RELAY_BATCH)
    if not events:
        return since, [], False
    foreign = [event for event in events if not _own.take(event.pk)]
    threads = _threads({event.thread_id for event in foreign})
    sends = [
        (
            # The customer's own chat widget too, for what it shows (as events.publish does).
            [*event_audience(event=event, thread=threads[event.thread_id])]
            + ([chat_group(event.thread_id)] if event.type in CUSTOMER_EVENT_TYPES else []),
            event_message(event),
        )
        for event in foreign
        if event.thread_id in threads
    ]
    return events[-1].pk, sends, len(events) == RELAY_BATCH


def _threads(ids: Iterable[int]) -> dict[int, Thread]:
    return Thread.objects.only("agency_id", "handler_id", "dedicated_advisor_id").in_bulk(list(ids))


_tail_start = _in_own_context(tail_start)
_read = _in_own_context(_read_sync)
_close_connections = _in_own_context(connections.close_all)
