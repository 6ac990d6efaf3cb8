"""The one way to record and publish what happened.

`publish_event` appends to the durable Event log inside the caller's transaction
and, once that transaction commits, pushes the event to the channel-layer groups
of whoever may see the thread. A broken or absent Redis only loses the live push:
the event stays in the log and the inbox replays it after reconnecting.
"""

import json
import logging
from functools import partial

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction

from channels_app.groups import advisor_group, pool_group, supervision_group
from conversations.models import Event, Thread

logger = logging.getLogger(__name__)


def thread_audience(thread: Thread) -> list[str]:
    """The groups that may see this thread now: its handler (or the agency pool when it
    has none), the customer's dedicated advisor, whose group covering deputies join,
    and the agency's supervisors."""
    groups = [supervision_group(thread.agency_id)]
    if thread.handler_id:
        groups.append(advisor_group(thread.handler_id))
    else:
        groups.append(pool_group(thread.agency_id))
    dedicated_id = thread.customer.dedicated_advisor_id if thread.customer_id else None
    if dedicated_id and dedicated_id != thread.handler_id:
        groups.append(advisor_group(dedicated_id))
    return groups


def event_message(event: Event) -> dict:
    """The JSON object a client receives, round-tripped through JSON as on the wire."""
    body = {"id": event.pk, "type": event.type, "thread": event.thread_id, **event.payload}
    return json.loads(json.dumps(body, cls=DjangoJSONEncoder))


def publish_event(*, type: str, thread: Thread, payload: dict, extra_groups: tuple[str, ...] = ()) -> Event:
    """Append an event for `thread` and push it to its audience after commit.

    `extra_groups` reaches people who just lost sight of the thread (a transfer
    away from them), so their inbox can drop it.
    """
    safe_payload = json.loads(json.dumps(payload, cls=DjangoJSONEncoder))
    event = Event.objects.create(type=type, thread=thread, agency_id=thread.agency_id, payload=safe_payload)
    groups = list(dict.fromkeys([*thread_audience(thread), *extra_groups]))
    transaction.on_commit(partial(_push, groups, event_message(event)))
    return event


def _push(groups: list[str], message: dict) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    envelope = {"type": "inbox.event", "event": message}
    for group in groups:
        try:
            async_to_sync(layer.group_send)(group, envelope)
        except Exception as exc:  # the log has the event; the inbox will replay it
            logger.warning(
                "Live push of event %s to %s failed (%s); clients will catch up from the event log.",
                message.get("id"),
                group,
                type(exc).__name__,
            )
            # The layer is down: don't pay the same timeout once per group.
            return
