"""The one way to record and publish what happened.

`publish_event` appends to the durable Event log inside the caller's transaction
and, once that transaction commits, pushes the event to the channel-layer groups
of whoever may see the thread (the caller says who: conversations.access). A broken
or absent Redis only loses the live push: the event stays in the log and the inbox
replays it after reconnecting.

Apps above this one that must act on every event in its own transaction (integrations
queues its webhooks, the journal chains them) register an append hook from their
AppConfig.ready (`on_append`): the log knows no reader, and a hook cannot be forgotten by a
service that appends events. What must be on the record but is nobody's event (a supervisor's
read, a consent change for a customer without a conversation) goes to `record_fact`.
"""

import asyncio
import json
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Model

from core.compiled import CompiledInsert
from events.groups import CUSTOMER_EVENT_TYPES, chat_group
from events.models import Event

logger = logging.getLogger(__name__)


def event_message(event: Event) -> dict:
    """The JSON object a client receives: the id, the type, the thread and the payload."""
    return {"id": event.pk, "type": event.type, "thread": event.thread_id, **event.payload}


_insert_event = CompiledInsert(Event)

AppendHook = Callable[[list[Event]], None]
_append_hooks: list[AppendHook] = []


def on_append(hook: AppendHook) -> None:
    """Call `hook(events)` with every batch of events appended, right after their insert, in
    their transaction: what it writes commits or rolls back with them. Registering the same
    hook twice registers it once. Keep it cheap: it runs on every append."""
    if hook not in _append_hooks:
        _append_hooks.append(hook)


@dataclass(frozen=True)
class Fact:
    """Something that happened and must be on the record (the journal) without being an event:
    no inbox, integration or webhook hears of it."""

    type: str
    agency_id: int
    actor: str  # "advisor:<id>", "user:<id>", "contact:<id>" or "system"
    data: dict
    thread_id: int | None = None


# The fact of a conversation read by someone it was not routed to (a supervisor, in the admin).
THREAD_READ = "thread.read"

RecordHook = Callable[[list[Fact]], None]
_record_hooks: list[RecordHook] = []


def on_record(hook: RecordHook) -> None:
    """Call `hook(facts)` with what `record_fact` is given, in the caller's transaction."""
    if hook not in _record_hooks:
        _record_hooks.append(hook)


def record_fact(*, type: str, agency_id: int, actor: str, data: dict, thread_id: int | None = None) -> None:
    """Hand a fact to the record hooks, in the caller's transaction (it is lost if that rolls back)."""
    safe = json.loads(json.dumps(data, cls=DjangoJSONEncoder))
    facts = [Fact(type, agency_id, actor, safe, thread_id)]
    for hook in _record_hooks:
        hook(facts)


@dataclass(frozen=True)
class PendingEvent:
    """An event not yet written: what `publish_events` takes."""

    type: str
    thread: Model  # a conversations.Thread: only its pk and agency are read
    payload: dict
    # The groups that may see it, read when it happened (conversations.access.thread_audience):
    # the thread may change hands again before the event is written.
    audience: tuple[str, ...]
    extra_groups: tuple[str, ...] = ()


def publish_event(
    *, type: str, thread: Model, payload: dict, audience: Iterable[str], extra_groups: tuple[str, ...] = ()
) -> Event:
    """Append an event for `thread` and push it to `audience` after commit.

    `audience` is who may see the thread now (conversations.access.thread_audience);
    `extra_groups` reaches people who just lost sight of it (a transfer away from
    them), so their inbox can drop it. The payload goes through JSON here, as it will
    on the wire, so what is stored is exactly what is sent.
    """
    return publish_events([PendingEvent(type, thread, payload, tuple(audience), extra_groups)])[0]


def publish_events(pending: list[PendingEvent]) -> list[Event]:
    """`publish_event` for several events at once: one insert, one push after commit.

    A caller that changes a thread between two events passes each one's payload and
    audience as they were at the time (the payload is serialised here, at once).
    """
    events, pushes = [], []
    for item in pending:
        safe_payload = json.loads(json.dumps(item.payload, cls=DjangoJSONEncoder))
        events.append(
            Event(type=item.type, thread_id=item.thread.pk, agency_id=item.thread.agency_id, payload=safe_payload)
        )
        customer = (chat_group(item.thread.pk),) if item.type in CUSTOMER_EVENT_TYPES else ()
        pushes.append(list(dict.fromkeys([*item.audience, *item.extra_groups, *customer])))
    _insert_event.many(events)
    if events:
        for hook in _append_hooks:
            hook(events)
        transaction.on_commit(
            partial(_push_many, [(groups, event_message(e)) for groups, e in zip(pushes, events, strict=True)])
        )
    return events


async def _group_send_many(layer, sends: list[tuple[str, dict]]) -> None:
    """Send to several groups in as few round trips as the layer allows: a layer with its own
    `group_send_many` (ours on Redis, channels_app.layers) sends them together; any other,
    such as the embedded default's in-memory layer, group by group."""
    send_many = getattr(layer, "group_send_many", None)
    if send_many is not None:
        await send_many(sends)
    else:
        for group, message in sends:
            await layer.group_send(group, message)


async def _send_batch(layer, batch: list[tuple[list[str], dict]]) -> None:
    """One message per group for a batch of events, in event order within each group."""
    per_group: dict[str, list[dict]] = defaultdict(list)
    for groups, message in batch:
        for group in groups:
            per_group[group].append(message)
    try:
        await _group_send_many(
            layer, [(group, {"type": "inbox.events", "events": events}) for group, events in per_group.items()]
        )
    except Exception as exc:
        logger.warning(
            "Live push of events %s failed (%s); clients will catch up from the event log.",
            ",".join(str(message.get("id")) for _, message in batch),
            type(exc).__name__,
        )


async def push_events(batch: list[tuple[list[str], dict]]) -> None:
    """Push `(groups, event_message(event))` pairs from async code, as `publish_events` does
    after commit: for a reader that sends events again from the log (channels_app.relay)."""
    layer = get_channel_layer()
    if layer is not None and batch:
        await _send_batch(layer, batch)


class _LoopPublisher:
    """Collects the pushes handed over by request threads and sends them from the
    server's event loop, coalesced: under load, one message per group per batch
    instead of one per event, and no request ever waits for the channel layer."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.pending: list[tuple[list[str], dict]] = []
        self.flush_scheduled = False
        # Handed over and not sent yet, for `pushes_sent`.
        self.unsent = 0
        self.all_sent = asyncio.Event()

    def submit(self, batch: list[tuple[list[str], dict]]) -> None:
        self.loop.call_soon_threadsafe(self._add, batch)

    def _add(self, batch: list[tuple[list[str], dict]]) -> None:
        self.pending.extend(batch)
        self.unsent += len(batch)
        self.all_sent.clear()
        if not self.flush_scheduled:
            self.flush_scheduled = True
            self.loop.create_task(self._flush())

    async def _flush(self) -> None:
        await asyncio.sleep(0)  # let the hand-overs already queued on the loop join this batch
        batch, self.pending, self.flush_scheduled = self.pending, [], False
        layer = get_channel_layer()
        try:
            if layer is not None and batch:
                await _send_batch(layer, batch)
        finally:
            self.unsent -= len(batch)
            if not self.unsent:
                self.all_sent.set()


_publisher: _LoopPublisher | None = None


def bind_server_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Called by the ASGI application: pushes from request threads go to this loop."""
    global _publisher
    if _publisher is None or _publisher.loop is not loop:
        _publisher = _LoopPublisher(loop)


async def pushes_sent() -> None:
    """Return once every push handed over to this loop's publisher so far has reached the
    channel layer (what a test reads next follows them)."""
    publisher = _publisher
    if publisher is None or publisher.loop is not asyncio.get_running_loop():
        return
    while publisher.unsent:
        await publisher.all_sent.wait()


def _push_many(batch: list[tuple[list[str], dict]]) -> None:
    publisher = _publisher
    if publisher is not None and publisher.loop.is_running():
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not publisher.loop:
            publisher.submit(batch)
            return
    # Outside the server (task worker, management command, tests): send now.
    layer = get_channel_layer()
    if layer is not None:
        async_to_sync(_send_batch)(layer, batch)
