"""Reads for the inbox pages: one tab of the list, one row, one thread with its timeline,
one timeline item, the choices its actions (the reply composer among them) offer. Every read goes through
`thread_visibility_q`: a thread the advisor may not see is a 404, never a 403, so its
existence is not disclosed."""

import re
from dataclasses import dataclass, field
from datetime import datetime

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Prefetch, QuerySet
from django.http import Http404
from django.urls import reverse
from django.utils.text import get_text_list
from django.utils.translation import gettext as _

from conversations.access import customer_visibility_q, thread_visibility_q
from conversations.models import Attachment, EmailHeaders, Message, MessageTemplate, Note, Thread
from conversations.providers.email import INLINE_SCHEME
from conversations.providers.registry import CHANNELS, REPLY_CHANNELS
from conversations.selectors import InboxTab, thread_list_for_advisor
from conversations.services.outbound import TEMPLATE_VARIABLE, template_variables_for
from crm.addresses import normalize_phone
from crm.models import Advisor, ContactPoint, Customer, Deputyship
from events.models import Event

# The list shows the most recent threads; past that, searching narrows it.
INBOX_PAGE_SIZE = 200
# A thread page shows the most recent messages; older ones stay in the database and the admin.
TIMELINE_MAX_MESSAGES = 500
SEARCH_MAX_LENGTH = 100
# Events shown in the timeline as lines of their own (messages and notes are items already).
TIMELINE_EVENT_TYPES = (
    Event.Type.THREAD_ASSIGNED,
    Event.Type.CONSENT_CHANGED,
    Event.Type.CUSTOMER_REASSIGNED,
    Event.Type.CONTACT_POINT_CONFIRMED,
)
_PHONE_CHARACTERS = set("0123456789 .-+()/")


@dataclass(frozen=True)
class InboxPage:
    tab: str
    search: str
    threads: list[Thread]
    has_more: bool
    # Unread messages of the open threads the advisor handles: {thread id: count}, counts > 0.
    unread: dict[int, int]
    # The newest event id when the page was read: the live inbox replays from there.
    cursor: int

    @property
    def unread_total(self) -> int:
        return sum(self.unread.values())


@dataclass(frozen=True)
class TimelineItem:
    kind: str  # "message", "note" or "event"
    at: datetime
    obj: Message | Note | Event
    # For an assignment event: who the thread went to.
    handler: Advisor | None = None

    @property
    def dom_id(self) -> str:
        return f"item-{self.kind}-{self.obj.pk}"

    @property
    def channel_label(self) -> str:
        """The channel named in an event's payload (a consent change), as people call it."""
        channel = self.obj.payload.get("channel", "") if self.kind == "event" else ""
        return ContactPoint.Kind(channel).label if channel in ContactPoint.Kind.values else channel


@dataclass(frozen=True)
class ReplyChannel:
    """A channel the advisor can reply on, with the number(s) it goes to."""

    value: str
    label: str
    addresses: str
    opted_out: bool


@dataclass(frozen=True)
class PreviewPart:
    text: str
    # The variable's number ("1") when this part is a variable's value, else "".
    variable: str = ""


@dataclass(frozen=True)
class TemplateChoice:
    """An active approved template, its variables pre-filled from the CRM, and its body as they fill it."""

    template: MessageTemplate
    variables: list[tuple[str, str]]
    preview: list[PreviewPart]


@dataclass(frozen=True)
class Composer:
    channels: list[ReplyChannel]
    # The channel message_send would pick: the customer's last one when they can be answered there.
    default_channel: str
    # Empty when the party has no number on a channel that takes approved templates (WhatsApp).
    templates: list[TemplateChoice]
    # The channels replies go on, in words ("WhatsApp or SMS"), for a party with none of them.
    reply_channel_names: str = ""
    # A channel offered carries its own headers (email): the composer asks for a subject.
    email: bool = False
    # The longest reply a channel offered takes (the service refuses more on a shorter one).
    max_length: int = 1600


@dataclass(frozen=True)
class ThreadDetail:
    thread: Thread
    contact_points: list[ContactPoint]
    deputies: list[Advisor]
    transfer_candidates: list[Advisor]
    unread: dict[int, int]
    cursor: int
    timeline: list[TimelineItem] = field(default_factory=list)
    timeline_truncated: bool = False
    composer: Composer | None = None

    @property
    def unread_total(self) -> int:
        return sum(self.unread.values())


def _search_variants(search: str) -> list[str]:
    """What to look for: the words typed and, when they are a phone number written the
    national way ("06 12 34 56 78"), its E.164 form, the form addresses are stored in."""
    search = search.strip()[:SEARCH_MAX_LENGTH]
    if not search:
        return [""]
    variants = [search]
    if set(search) <= _PHONE_CHARACTERS and sum(c.isdigit() for c in search) >= 6:
        try:
            variants.append(normalize_phone(search))
        except ValidationError:
            variants.append(_partial_phone(search))
    return list(dict.fromkeys(variants))


def _partial_phone(search: str) -> str:
    """The start of a number written the national way ("06 12 34") as the start of its E.164 form."""
    digits = "".join(c for c in search if c.isdigit() or c == "+")
    if digits.startswith("0") and not digits.startswith("00"):
        country_code = phonenumbers.country_code_for_region(settings.ATTITRE_DEFAULT_PHONE_REGION)
        if country_code:
            return f"+{country_code}{digits[1:]}"
    return digits


def _inbox_threads(*, advisor: Advisor, tab: str, search: str) -> QuerySet[Thread]:
    variants = _search_variants(search)
    threads = thread_list_for_advisor(advisor=advisor, tab=tab, search=variants[0])
    for variant in variants[1:]:
        threads |= thread_list_for_advisor(advisor=advisor, tab=tab, search=variant)
    return threads


def _unread_by_thread(*, advisor: Advisor) -> dict[int, int]:
    rows = (
        Thread.objects.filter(handler_id=advisor.pk, unread_count__gt=0)
        .exclude(status=Thread.Status.CLOSED)
        .values_list("pk", "unread_count")
    )
    return dict(rows)


def inbox_cursor() -> int:
    """The newest event id now; 0 before the first event."""
    return Event.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def inbox_page(*, advisor: Advisor, tab: str = InboxTab.MINE, search: str = "") -> InboxPage:
    """One tab of the inbox, most recent first, at most INBOX_PAGE_SIZE rows; a constant
    number of queries whatever the number of threads."""
    cursor = inbox_cursor()
    threads = list(_inbox_threads(advisor=advisor, tab=tab, search=search)[: INBOX_PAGE_SIZE + 1])
    return InboxPage(
        tab=tab,
        search=search.strip(),
        threads=threads[:INBOX_PAGE_SIZE],
        has_more=len(threads) > INBOX_PAGE_SIZE,
        unread=_unread_by_thread(advisor=advisor),
        cursor=cursor,
    )


def inbox_row(*, advisor: Advisor, thread_id: int, tab: str = InboxTab.MINE, search: str = "") -> Thread | None:
    """The thread as a row of this tab and search; None when it is visible but not in them
    (the live list then drops it). Http404 when the advisor may not see it."""
    thread = _inbox_threads(advisor=advisor, tab=tab, search=search).filter(pk=thread_id).first()
    if thread is None:
        thread_for_advisor(advisor=advisor, thread_id=thread_id)
    return thread


def thread_for_advisor(*, advisor: Advisor, thread_id: int) -> Thread:
    """The thread if the advisor may see it, with what its header shows; Http404 otherwise."""
    thread = (
        Thread.objects.filter(thread_visibility_q(advisor=advisor), pk=thread_id)
        .select_related("agency", "customer__agency", "customer__dedicated_advisor__user", "prospect", "handler__user")
        .first()
    )
    if thread is None:
        raise Http404("No such conversation.")
    return thread


def thread_visible_to(*, advisor: Advisor, thread_id: int) -> bool:
    """Whether the advisor may (still) see the thread, e.g. after handing it over."""
    return Thread.objects.filter(thread_visibility_q(advisor=advisor), pk=thread_id).exists()


def _messages(*, thread: Thread, limit: int) -> tuple[list[Message], bool]:
    messages = list(
        Message.objects.filter(thread_id=thread.pk)
        .select_related("author__user", "contact_point", "email")
        .prefetch_related(Prefetch("attachments", queryset=Attachment.objects.order_by("position")))
        .order_by("-created_at", "-pk")[: limit + 1]
    )
    truncated = len(messages) > limit
    return list(reversed(messages[:limit])), truncated


def _event_items(events: list[Event]) -> list[TimelineItem]:
    handler_ids = {
        event.payload.get("handler")
        for event in events
        if event.type == Event.Type.THREAD_ASSIGNED and event.payload.get("handler")
    }
    handlers = (
        {advisor.pk: advisor for advisor in Advisor.objects.filter(pk__in=handler_ids).select_related("user")}
        if handler_ids
        else {}
    )
    return [
        TimelineItem(kind="event", at=event.created_at, obj=event, handler=handlers.get(event.payload.get("handler")))
        for event in events
    ]


def _timeline(*, thread: Thread) -> tuple[list[TimelineItem], bool]:
    messages, truncated = _messages(thread=thread, limit=TIMELINE_MAX_MESSAGES)
    since = messages[0].created_at if truncated and messages else None
    notes = Note.objects.filter(thread_id=thread.pk).select_related("author__user")
    events = Event.objects.filter(thread_id=thread.pk, type__in=TIMELINE_EVENT_TYPES)
    if since is not None:
        notes = notes.filter(created_at__gte=since)
        events = events.filter(created_at__gte=since)
    items = [TimelineItem(kind="message", at=message.created_at, obj=message) for message in messages]
    items += [TimelineItem(kind="note", at=note.created_at, obj=note) for note in notes]
    items += _event_items(list(events.order_by("pk")))
    order = {"message": 0, "note": 1, "event": 2}
    items.sort(key=lambda item: (item.at, order[item.kind], item.obj.pk))
    return items, truncated


def _deputies(thread: Thread) -> list[Advisor]:
    dedicated_id = thread.customer.dedicated_advisor_id if thread.customer_id else None
    if dedicated_id is None:
        return []
    deputyships = (
        Deputyship.objects.filter(advisor_id=dedicated_id).select_related("deputy__user").order_by("position", "pk")
    )
    return [deputyship.deputy for deputyship in deputyships]


def _contact_points(thread: Thread) -> list[ContactPoint]:
    if thread.customer_id:
        return list(ContactPoint.objects.filter(customer_id=thread.customer_id).order_by("kind", "address"))
    return [thread.prospect]


def _reply_channels(thread: Thread, contact_points: list[ContactPoint]) -> list[ReplyChannel]:
    channels = []
    for spec in REPLY_CHANNELS:
        # A number linked from the pool and not confirmed yet is never offered as a reply address.
        points = [point for point in contact_points if point.kind == spec.channel and point.confirmed]
        if points:
            channels.append(
                ReplyChannel(
                    value=spec.channel,
                    label=spec.label,
                    addresses=", ".join(point.address for point in points),
                    opted_out=all(point.consent == ContactPoint.Consent.OPTED_OUT for point in points),
                )
            )
    return channels


def _preview(body: str, values: dict[str, str]) -> list[PreviewPart]:
    """The template's body cut into text and variables; a blank variable shows as {{n}}."""
    parts, start = [], 0
    for match in TEMPLATE_VARIABLE.finditer(body):
        number = match.group(1)
        parts += [
            PreviewPart(body[start : match.start()]),
            PreviewPart(values.get(number) or f"{{{{{number}}}}}", number),
        ]
        start = match.end()
    parts.append(PreviewPart(body[start:]))
    return [part for part in parts if part.text]


def _template_choices(*, thread: Thread, advisor: Advisor) -> list[TemplateChoice]:
    language = (
        thread.customer.preferred_language
        if thread.customer_id
        else Customer._meta.get_field("preferred_language").default
    )
    templates = sorted(
        MessageTemplate.objects.filter(is_active=True),
        key=lambda template: (template.language != language, template.name, template.language),
    )
    choices = []
    for template in templates:
        values = template_variables_for(template=template, thread=thread, advisor=advisor)
        choices.append(
            TemplateChoice(template=template, variables=list(values.items()), preview=_preview(template.body, values))
        )
    return choices


def reply_composer(*, thread: Thread, advisor: Advisor, contact_points: list[ContactPoint]) -> Composer:
    """What the reply composer offers: the party's channels advisors can reply on (WhatsApp
    and SMS) and, when one of them takes approved templates, the active templates, their
    language first. One query."""
    channels = _reply_channels(thread, contact_points)
    values = [channel.value for channel in channels]
    # The customer's last channel, else the first in the registry's order of preference.
    default = thread.last_inbound_channel if thread.last_inbound_channel in values else (values[0] if values else "")
    takes_templates = any(CHANNELS[value].templates for value in values)
    return Composer(
        channels=channels,
        default_channel=default,
        templates=_template_choices(thread=thread, advisor=advisor) if takes_templates else [],
        reply_channel_names=get_text_list([spec.label for spec in REPLY_CHANNELS], _("or")),
        email=any(CHANNELS[value].envelope for value in values),
        max_length=max((CHANNELS[value].max_body_length for value in values), default=1600),
    )


def failed_message_for_advisor(*, advisor: Advisor, thread_id: int, message_id: int) -> Message:
    """A failed (or undelivered) reply of a thread the advisor may see, to send again; Http404
    otherwise. Not one that carried files: the composer cannot send them again."""
    thread = thread_for_advisor(advisor=advisor, thread_id=thread_id)
    message = (
        Message.objects.filter(
            pk=message_id,
            thread_id=thread.pk,
            direction=Message.Direction.OUTBOUND,
            status__in=[Message.Status.FAILED, Message.Status.UNDELIVERED],
            attachments__isnull=True,
        )
        .select_related("template")
        .first()
    )
    if message is None:
        raise Http404("No such failed message in this conversation.")
    message.thread = thread
    return message


def transfer_candidates(*, thread: Thread) -> QuerySet[Advisor]:
    """The colleagues a thread can be handed to: active advisors of its agency but its handler."""
    return (
        Advisor.objects.filter(agency_id=thread.agency_id, is_active=True, user__is_active=True)
        .exclude(pk=thread.handler_id or 0)
        .select_related("user")
        .order_by("user__first_name", "user__last_name", "user__username")
    )


def thread_detail_for_advisor(*, advisor: Advisor, thread_id: int, with_timeline: bool = True) -> ThreadDetail:
    """A thread page: the thread, its customer card and, unless told otherwise, its whole
    cross-channel timeline (messages with their attachments, internal notes, assignments
    and consent changes) and the reply composer. A constant number of queries whatever the number of messages."""
    cursor = inbox_cursor()
    thread = thread_for_advisor(advisor=advisor, thread_id=thread_id)
    timeline, truncated = _timeline(thread=thread) if with_timeline else ([], False)
    contact_points = _contact_points(thread)
    return ThreadDetail(
        thread=thread,
        contact_points=contact_points,
        deputies=_deputies(thread),
        transfer_candidates=list(transfer_candidates(thread=thread)),
        unread=_unread_by_thread(advisor=advisor),
        cursor=cursor,
        timeline=timeline,
        timeline_truncated=truncated,
        composer=reply_composer(thread=thread, advisor=advisor, contact_points=contact_points)
        if with_timeline
        else None,
    )


def timeline_item_for_event(*, advisor: Advisor, thread_id: int, event_id: int) -> TimelineItem | None:
    """The timeline item an event created or changed, as it is now: the message (new, with a
    new status or a downloaded attachment), the note, or the event's own line. None when the
    event has no place in the timeline. Http404 for a thread or event the advisor may not see."""
    thread = thread_for_advisor(advisor=advisor, thread_id=thread_id)
    event = Event.objects.filter(pk=event_id, thread_id=thread.pk).first()
    if event is None:
        raise Http404("No such event in this conversation.")
    if event.type in TIMELINE_EVENT_TYPES:
        return _event_items([event])[0]
    if event.type == Event.Type.NOTE_CREATED:
        note = Note.objects.filter(thread_id=thread.pk, pk=(event.payload.get("note") or {}).get("id")).first()
        return TimelineItem(kind="note", at=note.created_at, obj=note) if note else None
    if event.type not in (Event.Type.MESSAGE_CREATED, Event.Type.MESSAGE_STATUS, Event.Type.ATTACHMENT_UPDATED):
        return None
    # message.created carries the whole message; the others its id.
    message_id = event.payload.get("message")
    if isinstance(message_id, dict):
        message_id = message_id.get("id")
    message = (
        Message.objects.filter(thread_id=thread.pk, pk=message_id)
        .select_related("author__user", "contact_point", "email")
        .prefetch_related(Prefetch("attachments", queryset=Attachment.objects.order_by("position")))
        .first()
    )
    return TimelineItem(kind="message", at=message.created_at, obj=message) if message else None


def thread_contact_point_for_advisor(*, advisor: Advisor, thread_id: int, contact_point_id: int) -> ContactPoint:
    """A contact point of the customer of a thread the advisor may see; Http404 otherwise."""
    thread = thread_for_advisor(advisor=advisor, thread_id=thread_id)
    contact = None
    if thread.customer_id:
        contact = (
            ContactPoint.objects.filter(pk=contact_point_id, customer_id=thread.customer_id)
            .select_related("customer")
            .first()
        )
    if contact is None:
        raise Http404("No such contact point in this conversation.")
    return contact


def email_for_advisor(*, advisor: Advisor, message_id: int) -> EmailHeaders:
    """The email headers (and sanitised HTML, raw MIME) of a message the advisor may see;
    Http404 otherwise."""
    visible = Thread.objects.filter(thread_visibility_q(advisor=advisor))
    headers = (
        EmailHeaders.objects.filter(message_id=message_id, message__thread__in=visible)
        .select_related("message")
        .first()
    )
    if headers is None:
        raise Http404("No such email.")
    return headers


def email_html_for_display(headers: EmailHeaders) -> str:
    """The stored (sanitised) HTML with its inline images pointing at the inbox's copies."""
    urls = {
        attachment.position: reverse("inbox:attachment", args=[attachment.pk])
        for attachment in headers.message.attachments.filter(state=Attachment.State.STORED)
    }
    return re.sub(
        rf'src="{INLINE_SCHEME}:(\d+)"',
        lambda match: f'src="{urls[int(match.group(1))]}"' if int(match.group(1)) in urls else "",
        headers.html,
    )


def attachment_for_advisor(*, advisor: Advisor, attachment_id: int) -> Attachment:
    """A stored attachment of a thread the advisor may see; Http404 otherwise."""
    visible = Thread.objects.filter(thread_visibility_q(advisor=advisor)).values("pk")
    attachment = (
        Attachment.objects.filter(pk=attachment_id, state=Attachment.State.STORED, message__thread__in=visible)
        .exclude(file="")
        .first()
    )
    if attachment is None:
        raise Http404("No such attachment.")
    return attachment


def customer_linkable_by_number(*, advisor: Advisor, customer_number: str) -> Customer | None:
    """The customer with this number (case and surrounding spaces ignored) if the advisor may
    see them; None otherwise, whether or not the number exists, so that it is never disclosed."""
    number = customer_number.strip()
    if not number:
        return None
    return (
        Customer.objects.filter(customer_visibility_q(advisor=advisor), customer_number__iexact=number)
        .select_related("dedicated_advisor__user")
        .first()
    )
