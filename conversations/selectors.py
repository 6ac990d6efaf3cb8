"""Reads for the inbox: one tab of the list, a page at a time, and one of its rows; one
thread with its timeline and what its actions (the reply composer among them) offer; the
single things an action acts on; the events to replay after a reconnection.

Every read goes through the access rules (conversations.access). A thread, message,
attachment, contact point or event the advisor may not see raises its model's
DoesNotExist, exactly as one that does not exist (the views answer 404 for both), so that
its existence is not disclosed.
"""

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db import models
from django.db.models import F, Prefetch, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.urls import reverse
from django.utils.text import get_text_list
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from conversations.access import advisor_covered_ids, customer_visibility_q, event_visibility_q, thread_visibility_q
from conversations.models import (
    HANDLED_FOR_OTHERS,
    Attachment,
    EmailHeaders,
    Message,
    MessageTemplate,
    Note,
    Thread,
    TriageTopic,
)
from conversations.providers.email import INLINE_SCHEME
from conversations.providers.registry import CHANNELS, REPLY_CHANNELS
from conversations.templating import TEMPLATE_VARIABLE, template_variables_for
from crm.models import Advisor, ContactPoint, Customer, Deputyship
from crm.search import search_parse
from events.log import events_from, horizon
from events.models import Event

# The list shows this many rows, then the next ones as the advisor scrolls.
INBOX_PAGE_SIZE = 50
# A thread page shows the most recent messages, then earlier ones as the advisor scrolls up.
TIMELINE_PAGE_SIZE = 50
# Events shown in the timeline as lines of their own (messages and notes are items already);
# the index event_timeline (events.models.Event) lists the same types.
TIMELINE_EVENT_TYPES = (
    Event.Type.THREAD_ASSIGNED,
    Event.Type.CONSENT_CHANGED,
    Event.Type.CUSTOMER_REASSIGNED,
    Event.Type.CONTACT_POINT_CONFIRMED,
    Event.Type.THREAD_TRIAGED,
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# What the views answer 404 for.
NOT_FOUND = (
    Thread.DoesNotExist,
    Message.DoesNotExist,
    Attachment.DoesNotExist,
    ContactPoint.DoesNotExist,
    Event.DoesNotExist,
    EmailHeaders.DoesNotExist,
)


class InboxTab(models.TextChoices):
    MINE = "mine", gettext_lazy("My conversations")
    POOL = "pool", gettext_lazy("Agency pool")
    COVERING = "covering", gettext_lazy("Covering for colleagues")
    CLOSED = "closed", gettext_lazy("Closed")


@dataclass(frozen=True)
class PagePosition:
    """Where a page of a long list ends, in the list's order: its last row's time and id (a
    thread's last activity in the inbox, a message's creation in a timeline)."""

    at: datetime
    pk: int

    def __str__(self) -> str:
        return f"{(self.at - _EPOCH) // timedelta(microseconds=1)}.{self.pk}"

    @classmethod
    def parse(cls, value: str) -> "PagePosition | None":
        """The position written as "1733230000123456.42"; None for anything else."""
        at, _dot, pk = (value or "").partition(".")
        if not (at.isdigit() and pk.isdigit()) or len(at) > 18:
            return None
        return cls(at=_EPOCH + timedelta(microseconds=int(at)), pk=int(pk))

    def before_q(self, at_field: str) -> Q:
        """What comes after this position in a list newest first: older, or as old with a smaller id.
        The first condition bounds the index range; the second breaks ties on the time."""
        return Q(**{f"{at_field}__lte": self.at}) & (Q(**{f"{at_field}__lt": self.at}) | Q(pk__lt=self.pk))


@dataclass(frozen=True)
class InboxPage:
    tab: str
    search: str
    threads: list[Thread]
    # Where the next page starts; None on the last one.
    next: PagePosition | None
    # Unread messages of the open threads the advisor handles: {thread id: count}, counts > 0.
    unread: dict[int, int]
    # The event log's horizon when the page was read: the live inbox replays from there.
    cursor: int

    @property
    def unread_total(self) -> int:
        return sum(self.unread.values())

    @property
    def unread_attribute(self) -> str:
        return unread_attribute(self.unread)


# --- The list: tabs, search, pages ------------------------------------------------------------


@dataclass(frozen=True)
class _Owner:
    """Whose threads a part of a tab is: a condition one index answers in order."""

    q: Q
    # An unknown number's thread can be theirs (not a dedicated advisor's).
    prospects: bool = True
    # A dedicated advisor's: their customers are theirs too, which narrows a search.
    dedicated_id: int | None = None


def _tab_owners(*, advisor: Advisor, tab: str, covered_ids: list[int]) -> list[_Owner]:
    """The tab as a union of owners: a dedicated advisor's customers' threads, the threads
    someone handles for another (a deputy, a claim from the pool; with the former, all the
    threads they handle or whose customer is theirs, apart), an agency's pool, and for a
    supervisor's closed tab the agency. Each is within what the advisor may see
    (thread_visibility_q) by construction.

    mine: open threads they handle or whose customer is theirs; pool: open threads of the
    agency nobody handles; covering: open threads of the colleagues they cover now (a
    thread they handle as deputy shows here and in mine); closed: every closed thread they
    may see."""

    def people(ids):
        return [
            owner
            for pk in ids
            for owner in (
                _Owner(Q(dedicated_advisor_id=pk), prospects=False, dedicated_id=pk),
                _Owner(Q(handler_id=pk) & HANDLED_FOR_OTHERS),
            )
        ]

    pool = _Owner(Q(handler__isnull=True, agency_id=advisor.agency_id))
    if tab == InboxTab.MINE:
        return people([advisor.pk])
    if tab == InboxTab.POOL:
        return [pool]
    if tab == InboxTab.COVERING:
        return people(covered_ids)
    if tab == InboxTab.CLOSED:
        agency = [_Owner(Q(agency_id=advisor.agency_id))] if advisor.is_supervisor else []
        return [*people([advisor.pk, *covered_ids]), pool, *agency]
    raise ValueError(f"Unknown inbox tab {tab!r}; expected one of {', '.join(InboxTab.values)}.")


def _tab_branches(*, advisor: Advisor, tab: str, search: str, covered_ids: list[int]) -> list[Q]:
    """The tab and search as a union of conditions on Thread. With a search, each owner
    asks it of the thread's customer (a dedicated advisor's among their own customers
    only), and, where an unknown number can be, of the prospect: conditions the planner
    can answer from either side (the few matching customers, or the owner's threads in order)."""
    status = Q(status=Thread.Status.CLOSED) if tab == InboxTab.CLOSED else ~Q(status=Thread.Status.CLOSED)
    owners = _tab_owners(advisor=advisor, tab=tab, covered_ids=covered_ids)
    terms = search_parse(search)
    if terms is None:
        return [owner.q & status for owner in owners]
    prospects = ContactPoint.objects.filter(*terms.prospect, customer__isnull=True).values("pk")
    branches = []
    for owner in owners:
        customers = Customer.objects.filter(*terms.customer)
        if owner.dedicated_id is not None:
            customers = customers.filter(dedicated_advisor_id=owner.dedicated_id)
        branches.append(owner.q & status & Q(customer_id__in=customers.values("pk")))
        if owner.prospects:
            branches.append(owner.q & status & Q(prospect_id__in=prospects))
    return branches


def _newest_first(threads: QuerySet[Thread]) -> QuerySet[Thread]:
    return threads.order_by("-last_activity_at", "-pk")


def _union_of_pages(branches: list[Q], *, after: PagePosition | None, limit: int | None) -> RawSQL:
    """The ids of the first `limit` threads of the union of the branches, in the list's
    order, each branch read in order and cut at `limit` on its own: one index range each,
    whatever the size of the book. Plain SQL both databases run (a UNION of subqueries)."""
    parts, params = [], []
    for n, branch in enumerate(branches):
        after_q = [after.before_q("last_activity_at")] if after else []
        threads = _newest_first(Thread.objects.filter(branch, *after_q))
        threads = threads.values(tid=F("pk"), at=F("last_activity_at"))
        sql, branch_params = (threads[:limit] if limit is not None else threads).query.sql_with_params()
        # Django's own SQL for the branch, its values passed as parameters.
        parts.append(f"SELECT * FROM ({sql}) AS b{n}")  # noqa: S608
        params += branch_params
    sql = f"SELECT u.tid FROM ({' UNION '.join(parts)}) AS u ORDER BY u.at DESC, u.tid DESC"  # noqa: S608
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return RawSQL(sql, params)  # noqa: S611 - built above from compiled querysets and an int


def thread_list_for_advisor(
    *,
    advisor: Advisor,
    tab: str = InboxTab.MINE,
    search: str = "",
    after: PagePosition | None = None,
    limit: int | None = None,
    covered_ids: list[int] | None = None,
) -> QuerySet[Thread]:
    """One tab of an advisor's inbox, most recent activity first, optionally searched, from
    `after` on and `limit` rows long: one query, whose cost is that of `limit` rows per owner
    whatever the number of threads (`covered_ids` saves the query for them)."""
    if covered_ids is None:
        covered_ids = advisor_covered_ids(advisor=advisor)
    branches = _tab_branches(advisor=advisor, tab=tab, search=search, covered_ids=covered_ids)
    if not branches or not advisor.is_active:
        return Thread.objects.none()
    threads = Thread.objects.filter(pk__in=_union_of_pages(branches, after=after, limit=limit))
    return _newest_first(threads.select_related("customer", "prospect", "handler__user", "topic"))


def unread_attribute(unread: dict[int, int]) -> str:
    """{7: 2, 9: 1} as "7:2,9:1", what the page hands the live inbox: built here rather than
    in the template, as it holds thousands of threads for a call-centre advisor."""
    return ",".join(f"{thread_id}:{count}" for thread_id, count in unread.items())


def _unread_by_thread(*, advisor: Advisor) -> dict[int, int]:
    rows = (
        Thread.objects.filter(handler_id=advisor.pk, unread_count__gt=0)
        .exclude(status=Thread.Status.CLOSED)
        .values_list("pk", "unread_count")
        .order_by()
    )
    return dict(rows)


def inbox_cursor() -> int:
    """Where the page's socket replays from: the event log's horizon (events.log), read
    before the page, so that every event below it is already in what the page shows."""
    return horizon()


def inbox_page(
    *,
    advisor: Advisor,
    tab: str = InboxTab.MINE,
    search: str = "",
    after: PagePosition | None = None,
    with_unread: bool = True,
) -> InboxPage:
    """One page of a tab of the inbox, most recent first, INBOX_PAGE_SIZE rows from `after`
    on; a constant number of queries, of a constant cost, whatever the number of threads.
    The rows the list appends as it scrolls need no unread map (`with_unread`): the page has it."""
    cursor = inbox_cursor()
    threads = list(
        thread_list_for_advisor(advisor=advisor, tab=tab, search=search, after=after, limit=INBOX_PAGE_SIZE + 1)
    )
    shown = threads[:INBOX_PAGE_SIZE]
    return InboxPage(
        tab=tab,
        search=search.strip(),
        threads=shown,
        next=PagePosition(shown[-1].last_activity_at, shown[-1].pk) if len(threads) > INBOX_PAGE_SIZE else None,
        unread=_unread_by_thread(advisor=advisor) if with_unread else {},
        cursor=cursor,
    )


def inbox_row(*, advisor: Advisor, thread_id: int, tab: str = InboxTab.MINE, search: str = "") -> Thread | None:
    """The thread as a row of this tab and search; None when it is visible but not in them
    (the live list then drops it). Thread.DoesNotExist when the advisor may not see it."""
    covered_ids = advisor_covered_ids(advisor=advisor)
    branches = _tab_branches(advisor=advisor, tab=tab, search=search, covered_ids=covered_ids)
    in_tab = Q(pk__in=[])
    for branch in branches:
        in_tab |= branch
    thread = (
        Thread.objects.filter(in_tab, pk=thread_id)
        .select_related("customer", "prospect", "handler__user", "topic")
        .first()
    )
    if thread is None:
        thread_for_advisor(advisor=advisor, thread_id=thread_id)
    return thread


# --- A thread ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimelineItem:
    kind: str  # "message", "note" or "event"
    at: datetime
    obj: Message | Note | Event
    # For an assignment event: who the thread went to.
    handler: Advisor | None = None
    # For a triage event: the topic chosen.
    topic: TriageTopic | None = None

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
    # Where the earlier messages start; None when the timeline shows the first one.
    timeline_earlier: PagePosition | None = None
    composer: Composer | None = None

    @property
    def unread_total(self) -> int:
        return sum(self.unread.values())

    @property
    def unread_attribute(self) -> str:
        return unread_attribute(self.unread)


def thread_for_advisor(*, advisor: Advisor, thread_id: int) -> Thread:
    """The thread if the advisor may see it, with what its header shows; DoesNotExist otherwise."""
    thread = (
        Thread.objects.filter(thread_visibility_q(advisor=advisor), pk=thread_id)
        .select_related(
            "agency", "customer__agency", "customer__dedicated_advisor__user", "prospect", "handler__user", "topic"
        )
        .first()
    )
    if thread is None:
        raise Thread.DoesNotExist("No such conversation.")
    return thread


def thread_visible_to(*, advisor: Advisor, thread_id: int) -> bool:
    """Whether the advisor may (still) see the thread, e.g. after handing it over."""
    return Thread.objects.filter(thread_visibility_q(advisor=advisor), pk=thread_id).exists()


def _messages(*, thread: Thread, before: PagePosition | None, limit: int) -> tuple[list[Message], bool]:
    messages = Message.objects.filter(thread_id=thread.pk)
    if before is not None:
        messages = messages.filter(before.before_q("created_at"))
    messages = list(
        messages.select_related("author__user", "contact_point", "email")
        .prefetch_related(Prefetch("attachments", queryset=Attachment.objects.order_by("position")))
        .order_by("-created_at", "-pk")[: limit + 1]
    )
    more = len(messages) > limit
    for message in messages:
        message.thread = thread  # the timeline compares each sender with it (Message.sender_is_elsewhere)
    return list(reversed(messages[:limit])), more


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
    topic_ids = {event.payload.get("topic") for event in events if event.type == Event.Type.THREAD_TRIAGED}
    topic_ids.discard(None)
    topics = {topic.pk: topic for topic in TriageTopic.objects.filter(pk__in=topic_ids)} if topic_ids else {}
    return [
        TimelineItem(
            kind="event",
            at=event.created_at,
            obj=event,
            handler=handlers.get(event.payload.get("handler")),
            topic=topics.get(event.payload.get("topic")),
        )
        for event in events
    ]


@dataclass(frozen=True)
class TimelinePage:
    items: list[TimelineItem]
    # Where the earlier messages start; None when these are the first.
    earlier: PagePosition | None


def _timeline(*, thread: Thread, before: PagePosition | None = None) -> TimelinePage:
    """TIMELINE_PAGE_SIZE messages before `before` (the most recent without), and the notes
    and events from the oldest of them up to `before`: pages that meet without overlapping."""
    messages, more = _messages(thread=thread, before=before, limit=TIMELINE_PAGE_SIZE)
    notes = Note.objects.filter(thread_id=thread.pk).select_related("author__user")
    events = Event.objects.filter(thread_id=thread.pk, type__in=TIMELINE_EVENT_TYPES)
    if more and messages:
        notes = notes.filter(created_at__gte=messages[0].created_at)
        events = events.filter(created_at__gte=messages[0].created_at)
    if before is not None:
        notes = notes.filter(created_at__lt=before.at)
        events = events.filter(created_at__lt=before.at)
    items = [TimelineItem(kind="message", at=message.created_at, obj=message) for message in messages]
    items += [TimelineItem(kind="note", at=note.created_at, obj=note) for note in notes]
    items += _event_items(list(events.order_by("pk")))
    order = {"message": 0, "note": 1, "event": 2}
    items.sort(key=lambda item: (item.at, order[item.kind], item.obj.pk))
    earlier = PagePosition(messages[0].created_at, messages[0].pk) if more and messages else None
    return TimelinePage(items=items, earlier=earlier)


def timeline_page_for_advisor(*, advisor: Advisor, thread_id: int, before: PagePosition | None) -> TimelinePage:
    """The earlier part of a thread's timeline, as the advisor scrolls up; Thread.DoesNotExist
    when they may not see the thread."""
    return _timeline(thread=thread_for_advisor(advisor=advisor, thread_id=thread_id), before=before)


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
        points = list(ContactPoint.objects.filter(customer_id=thread.customer_id).order_by("kind", "address"))
    else:
        points = [thread.prospect]
    for point in points:
        # An address that came with a reply in the thread (email), not a number linked from the pool.
        spec = CHANNELS.get(point.kind)
        point.is_address = bool(spec and spec.envelope)
    return points


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
    """A failed (or undelivered) reply of a thread the advisor may see, to send again; DoesNotExist
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
        raise Message.DoesNotExist("No such failed message in this conversation.")
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


def thread_detail_for_advisor(
    *, advisor: Advisor, thread_id: int, with_timeline: bool = True, before: PagePosition | None = None
) -> ThreadDetail:
    """A thread page: the thread, its customer card and, unless told otherwise, the most
    recent part of its cross-channel timeline (messages with their attachments, internal
    notes, assignments and consent changes; the part before `before` when given) and the
    reply composer. A constant number of queries whatever the number of messages."""
    cursor = inbox_cursor()
    thread = thread_for_advisor(advisor=advisor, thread_id=thread_id)
    timeline = _timeline(thread=thread, before=before) if with_timeline else TimelinePage(items=[], earlier=None)
    contact_points = _contact_points(thread)
    return ThreadDetail(
        thread=thread,
        contact_points=contact_points,
        deputies=_deputies(thread),
        transfer_candidates=list(transfer_candidates(thread=thread)),
        unread=_unread_by_thread(advisor=advisor),
        cursor=cursor,
        timeline=timeline.items,
        timeline_earlier=timeline.earlier,
        composer=reply_composer(thread=thread, advisor=advisor, contact_points=contact_points)
        if with_timeline
        else None,
    )


def timeline_item_for_event(*, advisor: Advisor, thread_id: int, event_id: int) -> TimelineItem | None:
    """The timeline item an event created or changed, as it is now: the message (new, with a
    new status or a downloaded attachment), the note, or the event's own line. None when the
    event has no place in the timeline. DoesNotExist for a thread or event the advisor may not see."""
    thread = thread_for_advisor(advisor=advisor, thread_id=thread_id)
    event = Event.objects.filter(pk=event_id, thread_id=thread.pk).first()
    if event is None:
        raise Event.DoesNotExist("No such event in this conversation.")
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


def email_for_advisor(*, advisor: Advisor, message_id: int) -> EmailHeaders:
    """The email headers (and sanitised HTML, raw MIME) of a message the advisor may see;
    EmailHeaders.DoesNotExist otherwise."""
    visible = Thread.objects.filter(thread_visibility_q(advisor=advisor))
    return (
        EmailHeaders.objects.filter(message_id=message_id, message__thread__in=visible).select_related("message").get()
    )


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


def thread_contact_point_for_advisor(*, advisor: Advisor, thread_id: int, contact_point_id: int) -> ContactPoint:
    """A contact point of the customer of a thread the advisor may see; DoesNotExist otherwise."""
    thread = thread_for_advisor(advisor=advisor, thread_id=thread_id)
    contact = None
    if thread.customer_id:
        contact = (
            ContactPoint.objects.filter(pk=contact_point_id, customer_id=thread.customer_id)
            .select_related("customer")
            .first()
        )
    if contact is None:
        raise ContactPoint.DoesNotExist("No such contact point in this conversation.")
    return contact


def attachment_for_advisor(*, advisor: Advisor, attachment_id: int) -> Attachment:
    """A stored attachment of a thread the advisor may see; DoesNotExist otherwise."""
    visible = Thread.objects.filter(thread_visibility_q(advisor=advisor)).values("pk")
    attachment = (
        Attachment.objects.filter(pk=attachment_id, state=Attachment.State.STORED, message__thread__in=visible)
        .exclude(file="")
        .first()
    )
    if attachment is None:
        raise Attachment.DoesNotExist("No such attachment.")
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


NOTICE_BODY_LENGTH = 200


def message_notice_for_advisor(*, advisor: Advisor, message_id: int) -> dict:
    """What a browser notification of a new message shows: who wrote and the start of what
    they wrote, for a message of a thread the advisor may see; Message.DoesNotExist
    otherwise. Events carry no text (conversations.payloads): the page asks for it here."""
    message = (
        Message.objects.filter(pk=message_id, thread__in=Thread.objects.filter(thread_visibility_q(advisor=advisor)))
        .select_related("thread__customer", "thread__prospect")
        .get()
    )
    thread = message.thread
    name = (
        thread.customer.full_name if thread.customer_id else (thread.prospect.display_name or thread.prospect.address)
    )
    if message.body.strip():
        body = message.body.strip()[:NOTICE_BODY_LENGTH]
    else:
        body = _("📍 Location") if message.latitude is not None else _("📎 Attachment")
    return {"thread": thread.pk, "title": name, "body": body}


# --- Catching up -------------------------------------------------------------------------------


def events_visible_from(*, advisor: Advisor, position: int, limit: int) -> list[Event]:
    """The events to replay to an inbox that has every event below `position` (a horizon,
    events.log), in commit order.

    Visibility is today's, on the event's thread; a thread taken away from the advisor (or
    from a colleague they cover) still replays its transfer, so the inbox can drop it, as
    the live push did.
    """
    if not advisor.is_active:
        return []
    return events_from(position=position, visible=event_visibility_q(advisor=advisor), limit=limit)
