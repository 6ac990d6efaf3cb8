"""Reads for the customer's side of the web chat: the thread as its customer may see it.

Everything here is built field by field from a whitelist, never from an event's payload or
a model's whole dict: a customer sees their own messages and the bank's answers on every
channel, who answered by name, and delivery states. Never a note (another model), a routing
reason, an error from a provider, another customer's anything.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from conversations.models import ChatSocket, Message, Thread
from conversations.providers.webchat import PROVIDER
from conversations.routing import route_customer_thread
from conversations.routing_reasons import ReasonCode
from crm.models import Advisor, Customer
from events.groups import CUSTOMER_EVENT_TYPES
from events.log import events_from
from events.models import Event
from events.presence import advisors_online

HISTORY_PAGE = 50
# A widget is stamped every CHAT_PRESENCE_REFRESH_SECONDS by its process (channels_app.chat);
# three missed stamps and the process is gone.
CHAT_PRESENCE_REFRESH_SECONDS = 30
CHAT_PRESENCE_TTL = timedelta(seconds=3 * CHAT_PRESENCE_REFRESH_SECONDS)
# What the widget may show of a message's delivery.
CUSTOMER_STATUSES = {
    "queued": "sending",
    "sending": "sending",
    "sent": "sent",
    "delivered": "delivered",
    "read": "read",
}


def client_id_of(message: Message) -> str:
    """The widget's own id for a message the customer sent from it ("" for any other)."""
    if message.provider == PROVIDER and message.direction == Message.Direction.INBOUND:
        return (message.provider_message_id or "").partition(":")[2]
    return ""


def chat_message_frame(message: Message) -> dict:
    inbound = message.direction == Message.Direction.INBOUND
    author = message.author if message.author_id else None
    return {
        "id": message.pk,
        "from": "customer" if inbound else "advisor",
        "channel": message.channel,
        "body": message.body,
        "created_at": message.created_at.isoformat(),
        "status": "received" if inbound else CUSTOMER_STATUSES.get(message.status, "failed"),
        "author": author.user.get_full_name() or author.user.get_username() if author else "",
        "client_id": client_id_of(message),
        "files": [a.file_name or a.content_type for a in message.attachments.all()],
    }


def _messages(thread_id: int):
    return (
        Message.objects.filter(thread_id=thread_id)
        .select_related("author__user")
        .prefetch_related("attachments")
        .order_by("-created_at", "-pk")
    )


def chat_history(*, thread_id: int, before_id: int | None = None, limit: int = HISTORY_PAGE) -> list[dict]:
    """The thread's last `limit` messages (before message `before_id`), oldest first."""
    messages = _messages(thread_id)
    if before_id is not None:
        messages = messages.filter(pk__lt=before_id)
    return [chat_message_frame(message) for message in reversed(messages[:limit])]


def chat_messages(*, thread_id: int, ids: list[int]) -> list[dict]:
    """These messages, if they are the thread's (an id of another thread yields nothing)."""
    return [chat_message_frame(message) for message in reversed(_messages(thread_id).filter(pk__in=ids))]


def chat_message_statuses(*, thread_id: int, ids: list[int]) -> list[dict]:
    rows = Message.objects.filter(thread_id=thread_id, pk__in=ids, direction=Message.Direction.OUTBOUND)
    return [
        {"id": pk, "status": CUSTOMER_STATUSES.get(status, "failed")} for pk, status in rows.values_list("pk", "status")
    ]


def chat_events_from(*, thread_id: int, position: int, limit: int) -> list[Event]:
    """The customer-facing events of the thread from `position` (a horizon), for a widget
    catching up: the inbox's overlap rule (events.log.events_from)."""
    return events_from(position=position, visible=Q(thread_id=thread_id, type__in=CUSTOMER_EVENT_TYPES), limit=limit)


def chat_frames_for(*, thread_id: int, events: list[dict]) -> list[dict]:
    """The frames a widget gets for these events (as pushed or replayed): each message read
    as the customer sees it, statuses of the bank's messages; anything else dropped."""
    created = [
        e["message"]["id"] for e in events if e.get("type") == "message.created" and e.get("thread") == thread_id
    ]
    statuses = [e["message"] for e in events if e.get("type") == "message.status" and e.get("thread") == thread_id]
    frames = [{"type": "message.created", "message": m} for m in chat_messages(thread_id=thread_id, ids=created)]
    frames += [{"type": "message.status", **s} for s in chat_message_statuses(thread_id=thread_id, ids=statuses)]
    return frames


@dataclass(frozen=True)
class AdvisorStatus:
    name: str
    online: bool
    text: str

    def frame(self) -> dict:
        return {"type": "advisor.status", "name": self.name, "online": self.online, "text": self.text}


def _name(advisor: Advisor) -> str:
    return advisor.user.get_full_name() or advisor.user.get_username()


def chat_advisor_status(
    *, customer: Customer | None, thread: Thread | None, at: datetime | None = None
) -> AdvisorStatus:
    """Who answers the customer now, by the routing rules that route their messages, in
    words for the customer (the reader's language is active): no routing reason's wording,
    no colleague's username. A visitor's thread is the pool's until someone claims it."""
    at = at or timezone.now()
    if customer is None:
        handler = thread.handler if thread is not None and thread.handler_id else None
        if handler is None:
            return AdvisorStatus("", False, _("Your agency replies within about 2 hours."))
        online = handler.pk in advisors_online(advisor_ids=[handler.pk])
        return AdvisorStatus(_name(handler), online, _status_text(handler, online))
    dedicated = customer.dedicated_advisor
    probe = thread or Thread(customer=customer, agency_id=customer.agency_id)
    decision = route_customer_thread(thread=probe, dedicated=dedicated, at=at)
    handler = decision.handler
    if handler is None:
        return AdvisorStatus("", False, _("Your agency replies within about 2 hours."))
    online = handler.pk in advisors_online(advisor_ids=[handler.pk])
    if decision.reason.code == ReasonCode.DEPUTY and dedicated is not None:
        until = dedicated.out_of_office_until
        if until:
            text = _("%(advisor)s is back %(when)s; %(deputy)s covers meanwhile.") % {
                "advisor": _name(dedicated),
                "when": formats.date_format(timezone.localtime(until), "l j F, H:i"),
                "deputy": _name(handler),
            }
        else:
            text = _("%(advisor)s is away; %(deputy)s covers meanwhile.") % {
                "advisor": _name(dedicated),
                "deputy": _name(handler),
            }
        return AdvisorStatus(_name(handler), online, text)
    return AdvisorStatus(_name(handler), online, _status_text(handler, online))


def _status_text(handler: Advisor, online: bool) -> str:
    return (_("%(advisor)s — online") if online else _("%(advisor)s — will answer you soon")) % {
        "advisor": _name(handler)
    }


def chat_customer_online(*, thread_id: int, at: datetime | None = None) -> bool:
    """Whether the customer has the chat open now."""
    since = (at or timezone.now()) - CHAT_PRESENCE_TTL
    return ChatSocket.objects.filter(thread_id=thread_id, seen_at__gte=since).exists()


def chat_offline_notify_due(*, thread: Thread, at: datetime) -> bool:
    last = thread.chat_offline_notified_at
    return last is None or at - last >= timedelta(minutes=settings.CHAT_OFFLINE_NOTIFY_MINUTES)
