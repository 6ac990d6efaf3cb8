"""Receiving what a provider delivers: inbound messages and delivery statuses."""

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django_q.tasks import async_task

from conversations.access import lost_sight, thread_audience
from conversations.models import Attachment, EmailHeaders, Message, Thread
from conversations.payloads import message_payload, message_status_payload, thread_summary
from conversations.providers.base import InboundMessage, StatusUpdate
from conversations.providers.registry import CHANNELS, LAST_INBOUND_FIELDS
from conversations.routing import RoutingDecision, route_customer_thread, route_prospect_thread, route_urgent_thread
from conversations.services.auto_replies import AutoReplies
from conversations.services.customers import contact_point_set_consent
from core.compiled import CompiledInsert, CompiledUpdate, PreparedQuery
from crm.models import Agency, ContactPoint
from events.models import Event
from events.publish import PendingEvent, publish_events

logger = logging.getLogger(__name__)

OPT_OUT_KEYWORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "END", "QUIT", "CANCEL", "OPTOUT", "REVOKE", "ARRET", "ARRÊT"}
)
OPT_IN_KEYWORDS = frozenset({"START", "UNSTOP", "YES"})
PREVIEW_LENGTH = 200

# Outbound delivery states in the order they can only move forward.
STATUS_RANK = {"queued": 0, "accepted": 0, "scheduled": 0, "sending": 1, "sent": 2, "delivered": 3, "read": 4}
TERMINAL_FAILURES = {"failed", "undelivered"}
# The column a status stamps the first time a message reaches it.
STATUS_STAMPS = {
    "queued": "queued_at",
    "sending": "sending_at",
    "sent": "sent_at",
    "delivered": "delivered_at",
    "read": "read_at",
    "failed": "failed_at",
    "undelivered": "failed_at",
}


@dataclass(frozen=True)
class InboundResult:
    message: Message
    created: bool


def consent_keyword(body: str) -> str:
    """A whole-message opt-out/opt-in keyword, in any case → the consent it asks for."""
    word = body.strip().upper()
    if word in OPT_OUT_KEYWORDS:
        return ContactPoint.Consent.OPTED_OUT
    if word in OPT_IN_KEYWORDS:
        return ContactPoint.Consent.OPTED_IN
    return ""


def default_agency() -> Agency:
    code = settings.ATTITRE_DEFAULT_AGENCY_CODE
    agency = Agency.objects.filter(code=code).first() if code else Agency.objects.order_by("pk").first()
    if agency is None:
        raise Agency.DoesNotExist(
            f"No agency to receive unknown numbers (ATTITRE_DEFAULT_AGENCY_CODE={code!r}); create one in the admin."
        )
    return agency


def _preview(inbound: InboundMessage) -> str:
    if inbound.body.strip():
        return inbound.body.strip()[:PREVIEW_LENGTH]
    if inbound.latitude is not None:
        return _("📍 Location")
    if inbound.media:
        return _("📎 Attachment")
    return ""


def inbound_message_receive(*, inbound: InboundMessage) -> InboundResult:
    """Store a customer's message once, in their one thread, routed to who should answer.

    Idempotent on the provider's message id: a replay, or the same message arriving
    twice at once, stores one message. The unique constraint decides the race
    (INSERT … ON CONFLICT DO NOTHING); the loser returns the stored message.
    """
    return inbound_messages_receive(inbounds=[inbound])[0]


def inbound_messages_receive(*, inbounds: Sequence[InboundMessage]) -> list[InboundResult]:
    """`inbound_message_receive` for several messages in one transaction (group commit):
    the same checks, routing and events as one by one, in the order given, with a handful
    of statements for the whole batch. All or nothing: when it raises, nothing is stored.
    """
    for attempt in (1, 2):
        try:
            with transaction.atomic():
                return _InboundBatch(inbounds).store()
        except IntegrityError:
            # Another transaction created the same prospect contact or thread first, or
            # stored one of these messages at the same instant: once more, seeing it.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


_contact_with_advisor = PreparedQuery(
    lambda kind, address: ContactPoint.objects.select_related("customer__dedicated_advisor__user").filter(
        kind=kind, address=address
    ),
    sentinels=("\x00kind", "\x00address"),
)
_contacts_with_advisor = PreparedQuery(
    lambda addresses: (
        ContactPoint.objects.select_related("customer__dedicated_advisor__user")
        .filter(address__in=addresses)
        .order_by()
    ),
    sentinels=(["\x00address"],),
)
# A lone message from a known customer, the common case: the contact point, its customer
# and dedicated advisor, and the customer's thread locked, in one statement instead of two.
_contact_with_locked_thread = PreparedQuery(
    lambda kind, address: (
        ContactPoint.objects.select_related("customer__dedicated_advisor__user", "customer__thread")
        .select_for_update(no_key=True, of=("customer__thread",))
        .filter(kind=kind, address=address, customer__thread__isnull=False)
        .order_by()
    ),
    sentinels=("\x00kind", "\x00address"),
)
_thread_of_customer = PreparedQuery(
    lambda customer_id: Thread.objects.select_for_update(no_key=True).filter(customer_id=customer_id),
    sentinels=(-7_346_183_019,),
)
# Locked in id order, so that two batches cannot wait on each other.
_threads_of_customers = PreparedQuery(
    lambda customer_ids: (
        Thread.objects.select_for_update(no_key=True).filter(customer_id__in=customer_ids).order_by("pk")
    ),
    sentinels=([-7_346_183_019],),
)
# By the unique index (provider first): without the provider, a sequential scan of every message.
_messages_stored = PreparedQuery(
    lambda provider, sids: Message.objects.filter(provider=provider, provider_message_id__in=sids).order_by(),
    sentinels=("\x00provider", ["\x00sid"]),
)


def _route(thread: Thread, contact: ContactPoint, at) -> RoutingDecision:
    if thread.urgent:
        return route_urgent_thread(thread=thread, at=at)
    # The thread's customer decides, not the sender's: a message may land in the thread it
    # answers from an address that is not its customer's (InboundMessage.answers_thread_id).
    if thread.customer_id:
        customer = contact.customer if contact.customer_id == thread.customer_id else thread.customer
        return route_customer_thread(thread=thread, dedicated=customer.dedicated_advisor, at=at)
    return route_prospect_thread(thread=thread, at=at)


_insert_messages = CompiledInsert(Message, ignore_conflicts=True, returning=("provider", "provider_message_id"))
_update_thread_on_inbound = CompiledUpdate(
    Thread,
    [
        "handler",
        "routing_reason_code",
        "routing_reason_params",
        "routed_at",
        "last_inbound_channel",
        "last_activity_at",
        "last_message_preview",
        "waiting_since",
        "status",
        "unread_count",
        "agency",
        "last_auto_reply_at",
        "triage_state",
        "triage_misses",
        "topic",
        "urgent",
        *LAST_INBOUND_FIELDS,
    ],
)


def _attachment(message: Message, position: int, media) -> Attachment:
    """A file to download (at its URL), or one the provider handed over and we already
    stored, or one refused (type, size) that nothing was stored for."""
    attachment = Attachment(
        message=message,
        position=position,
        content_type=media.content_type[:128],
        original_url=media.url,
        file_name=media.file_name[:200],
    )
    if media.refused:
        attachment.state, attachment.error, attachment.size = Attachment.State.REFUSED, media.refused[:500], media.size
    elif media.stored_name:
        attachment.state, attachment.file, attachment.size = Attachment.State.STORED, media.stored_name, media.size
    return attachment


def _store_email_headers(message: Message, parts) -> None:
    EmailHeaders.objects.create(
        message=message,
        header_message_id=parts.message_id,
        in_reply_to=parts.in_reply_to,
        references=" ".join(parts.references),
        subject=parts.subject,
        from_header=parts.from_header,
        to_header=parts.to_header,
        cc_header=parts.cc_header,
        reply_to=parts.reply_to,
        full_text=parts.full_text,
        html=parts.html,
        raw=parts.raw_name,
        raw_size=parts.raw_size,
        noise=parts.noise,
    )


class _InboundBatch:
    """One transaction's worth of inbound messages; `store` runs inside it.

    The statements for the whole batch: the contact points (with customer and dedicated
    advisor), the threads locked in id order (so two batches cannot deadlock), one
    insert for the messages, one update per thread touched, one insert for the events.
    Routing, consent and events are then decided message by message, in order, exactly
    as for a single message.
    """

    def __init__(self, inbounds: Sequence[InboundMessage]):
        self.inbounds = list(inbounds)
        self.now = timezone.now()
        self.events: list[PendingEvent] = []
        self.touched: dict[int, Thread] = {}
        self.auto_replies = AutoReplies(now=self.now)

    def store(self) -> list[InboundResult]:
        first = {}  # the first of each provider message id: a later twin in the batch is a replay
        for inbound in self.inbounds:
            first.setdefault(self._key(inbound), inbound)
        already = self._already_stored(list(first.values()))
        fresh = [inbound for key, inbound in first.items() if key not in already]

        contacts, locked = self._contacts_for(fresh)
        threads, new_thread_ids = self._threads_for_update(fresh, contacts, locked)
        messages = self._messages_for(fresh, contacts, threads)
        inserted = {self._key(m) for m in _insert_messages.many(list(messages.values()))}
        if len(inserted) != len(messages):
            if len(first) > 1:
                # Stored by a concurrent transaction between our check and our insert.
                raise IntegrityError("A message of the batch was stored concurrently.")
            # One message (maybe delivered more than once), not checked beforehand: a replay.
            existing = Message.objects.get(provider=fresh[0].provider, provider_message_id=fresh[0].provider_message_id)
            return [InboundResult(existing, created=False) for _ in self.inbounds]

        for inbound in fresh:
            contact = contacts[inbound.channel, inbound.address]
            thread = threads[self._thread_key(contact, inbound)]
            message = messages[self._key(inbound)]
            self._apply(inbound, message, contact, thread, is_new=thread.pk in new_thread_ids)
            new_thread_ids.discard(thread.pk)
        self._flush()

        results, seen = [], set()
        for inbound in self.inbounds:
            key = self._key(inbound)
            if key in already:
                results.append(InboundResult(already[key], created=False))
            else:
                results.append(InboundResult(messages[key], created=key not in seen))
                seen.add(key)
        return results

    @staticmethod
    def _key(item) -> tuple[str, str]:
        return (item.provider, item.provider_message_id)

    @staticmethod
    def _thread_key(contact: ContactPoint, inbound: InboundMessage | None = None) -> tuple[str, int]:
        if inbound is not None and inbound.answers_thread_id is not None:
            return ("answered", inbound.answers_thread_id)
        return ("customer", contact.customer_id) if contact.customer_id else ("prospect", contact.pk)

    def _already_stored(self, unique: list[InboundMessage]) -> dict[tuple[str, str], Message]:
        if len(unique) < 2:
            return {}  # one message: its insert tells, without this query
        sids_by_provider: dict[str, list[str]] = {}
        for inbound in unique:
            sids_by_provider.setdefault(inbound.provider, []).append(inbound.provider_message_id)
        return {
            self._key(message): message
            for provider, sids in sids_by_provider.items()
            for message in _messages_stored.all(provider, sids)
        }

    def _contacts_for(self, fresh: list[InboundMessage]) -> tuple[dict[tuple[str, str], ContactPoint], list[Thread]]:
        """Each sender's contact point, created for an unknown number; and the threads
        already locked on the way (a lone known customer's)."""
        wanted = list(dict.fromkeys((inbound.channel, inbound.address) for inbound in fresh))
        locked = []
        # A message landing in the thread it answers does not lock its sender's own thread.
        if len(wanted) == 1 and fresh[0].answers_thread_id is None:
            contact = _contact_with_locked_thread.first(*wanted[0])
            if contact is not None:
                locked.append(contact.customer.thread)
            else:  # a prospect, a customer's first message, or an unknown number
                contact = _contact_with_advisor.first(*wanted[0])
            found = [contact] if contact is not None else []
        elif len(wanted) == 1:
            found = [c for c in [_contact_with_advisor.first(*wanted[0])] if c is not None]
        else:
            found = _contacts_with_advisor.all(list({address for _, address in wanted}))
        contacts = {(c.kind, c.address): c for c in found}
        for inbound in fresh:
            if (inbound.channel, inbound.address) not in contacts:
                # An unknown number: a prospect, until an advisor links it to a customer.
                contacts[inbound.channel, inbound.address] = ContactPoint.objects.create(
                    kind=inbound.channel,
                    address=inbound.address,
                    display_name=inbound.profile_name,
                    consent_changed_at=self.now,
                    consent_source=_("first message"),
                )
        return contacts, locked

    def _threads_for_update(
        self, fresh: list[InboundMessage], contacts: dict, already_locked: list[Thread]
    ) -> tuple[dict[tuple[str, int], Thread], set[int]]:
        """Each message's thread, locked (unless in `already_locked`): the one it answers,
        or its contact's, created on first contact; and the ids of those created."""
        answered = {inbound.answers_thread_id for inbound in fresh if inbound.answers_thread_id is not None}
        own = {(inbound.channel, inbound.address) for inbound in fresh if inbound.answers_thread_id is None}
        # In the contacts' order, the same for every batch (not the messages'): threads are
        # created in it, and two batches creating them in other orders would deadlock.
        by_key = {self._thread_key(contact): contact for key, contact in contacts.items() if key in own}
        done = {thread.customer_id for thread in already_locked}
        customer_ids = sorted(pk for kind, pk in by_key if kind == "customer" and pk not in done)
        prospect_ids = sorted(pk for kind, pk in by_key if kind == "prospect")
        locked = list(already_locked)
        if len(customer_ids) == 1:
            locked += [t for t in [_thread_of_customer.first(customer_ids[0])] if t is not None]
        elif customer_ids:
            locked += _threads_of_customers.all(customer_ids)
        if prospect_ids:
            locked += Thread.objects.select_for_update(no_key=True).filter(prospect_id__in=prospect_ids).order_by("pk")
        threads = {("customer", t.customer_id) if t.customer_id else ("prospect", t.prospect_id): t for t in locked}
        if answered:
            for thread in (
                Thread.objects.select_for_update(no_key=True, of=("self",))
                .select_related("customer__dedicated_advisor__user", "prospect")
                .filter(pk__in=answered)
                .order_by("pk")
            ):
                threads["answered", thread.pk] = thread
            missing = answered - {pk for kind, pk in threads if kind == "answered"}
            if missing:
                # Deleted since the sender's email named it: the caller finds no thread to answer next time.
                raise Thread.DoesNotExist(f"Thread {min(missing)} no longer exists.")
        created = set()
        for key, contact in by_key.items():
            customer = contact.customer
            thread = threads.get(key)
            if thread is None:
                if customer:
                    thread = Thread.objects.create(
                        agency_id=customer.agency_id,
                        customer=customer,
                        dedicated_advisor_id=customer.dedicated_advisor_id,
                    )
                else:
                    thread = Thread.objects.create(agency_id=default_agency().pk, prospect=contact)
                threads[key] = thread
                created.add(thread.pk)
            if customer:
                thread.customer = customer
                dedicated = customer.dedicated_advisor
                if dedicated is not None and thread.handler_id == dedicated.pk:
                    thread.handler = dedicated  # already loaded with the contact: no query
            else:
                thread.prospect = contact
        return threads, created

    def _messages_for(self, fresh, contacts, threads) -> dict[tuple[str, str], Message]:
        consent = {}  # each contact's consent as the batch's keywords change it, in order
        messages = {}
        for inbound in fresh:
            contact = contacts[inbound.channel, inbound.address]
            thread = threads[self._thread_key(contact, inbound)]
            requested = "" if inbound.email is not None and inbound.email.noise else consent_keyword(inbound.body)
            current = consent.get(contact.pk, contact.consent)
            change = requested if requested and requested != current else ""
            if change:
                consent[contact.pk] = change
            replied_to = None
            if inbound.replied_to_provider_id:
                replied_to = Message.objects.filter(
                    thread=thread, provider=inbound.provider, provider_message_id=inbound.replied_to_provider_id
                ).first()
            messages[self._key(inbound)] = Message(
                thread=thread,
                direction=Message.Direction.INBOUND,
                channel=inbound.channel,
                contact_point=contact,
                body=inbound.body,
                provider=inbound.provider,
                provider_message_id=inbound.provider_message_id,
                status=Message.Status.RECEIVED,
                created_at=self.now,
                profile_name=inbound.profile_name,
                wa_id=inbound.wa_id,
                latitude=inbound.latitude,
                longitude=inbound.longitude,
                location_address=inbound.location_address,
                location_label=inbound.location_label,
                button_text=inbound.button_text,
                button_payload=inbound.button_payload,
                replied_to=replied_to,
                replied_to_provider_id=inbound.replied_to_provider_id,
                consent_change=change,
                raw=inbound.raw,
            )
        return messages

    def _apply(self, inbound: InboundMessage, message: Message, contact, thread: Thread, *, is_new: bool):
        """What one new message does to its thread, its contact point and the event log."""
        now = self.now
        # An auto-reply or list mail is shown, flagged, but nobody is waiting for an answer to it.
        automatic = inbound.email is not None and bool(inbound.email.noise)
        attachments = []
        if inbound.media:
            attachments = Attachment.objects.bulk_create(
                _attachment(message, index, media) for index, media in enumerate(inbound.media)
            )
            for attachment in attachments:
                if attachment.state == Attachment.State.PENDING:
                    # Enqueued in this transaction (ORM broker): the download exists iff the message does.
                    async_task("conversations.tasks.attachment_download", attachment.pk, group="media")
        if inbound.email is not None:
            _store_email_headers(message, inbound.email)

        previous_handler_id, previous_agency_id = thread.handler_id, thread.agency_id
        # Nobody saw a new thread yet: its customer's name must not reach the pool it never was in.
        before = () if is_new else thread_audience(thread)
        # Never answered, never taken as a menu choice: a consent keyword, automatic mail.
        answerable = not automatic and not message.consent_change and not consent_keyword(inbound.body)
        home_agency_id = contact.customer.agency_id if contact.customer_id else thread.agency_id
        answer = self.auto_replies.triage_answer(thread=thread, inbound=inbound, answerable=answerable)
        decision = _route(thread, contact, now)
        new_handler_id = decision.handler.pk if decision.handler else None
        if new_handler_id != previous_handler_id or decision.reason != thread.routing_reason or not thread.routed_at:
            thread.routed_at = now
        thread.handler = decision.handler
        thread.routing_reason = decision.reason
        setattr(thread, CHANNELS[inbound.channel].last_inbound_field, now)
        thread.last_inbound_channel = inbound.channel
        thread.last_activity_at = now
        thread.last_message_preview = _preview(inbound)
        if not automatic:
            thread.waiting_since = thread.waiting_since or now
        thread.status = Thread.Status.OPEN
        thread.unread_count += 1
        self.touched[thread.pk] = thread

        if message.consent_change:
            self._flush()  # the consent event reads the thread from the database, and follows what came before
            keyword = inbound.body.strip().upper()
            contact_point_set_consent(
                contact_point=contact,
                consent=message.consent_change,
                source=_("keyword “%(keyword)s” in %(channel)s message %(sid)s")
                % {"keyword": keyword, "channel": contact.get_kind_display(), "sid": inbound.provider_message_id},
            )

        # An urgent topic moves the thread to the urgent pool's agency, handler or not.
        if previous_handler_id != thread.handler_id or previous_agency_id != thread.agency_id:
            self._publish(
                Event.Type.THREAD_ASSIGNED,
                thread,
                {
                    "thread_summary": thread_summary(thread),
                    "previous_handler": previous_handler_id,
                    "handler": thread.handler_id,
                    "reason": thread.routing_reason_code,
                    "reason_params": thread.routing_reason_params,
                },
                extra_groups=lost_sight(before, thread),
            )
        self._publish(
            Event.Type.MESSAGE_CREATED,
            thread,
            {"message": message_payload(message, attachments), "thread_summary": thread_summary(thread)},
        )
        self.auto_replies.after(
            thread=thread,
            contact=contact,
            inbound=inbound,
            decision=decision,
            answer=answer,
            answerable=answerable,
            home_agency_id=home_agency_id,
        )
        self.events += self.auto_replies.take_events()

    def _publish(self, type: str, thread: Thread, payload: dict, extra_groups: tuple[str, ...] = ()) -> None:
        # Who may see it now: the thread may change hands again before the batch is written.
        self.events.append(PendingEvent(type, thread, payload, tuple(thread_audience(thread)), extra_groups))

    def _flush(self) -> None:
        _update_thread_on_inbound.many([(thread.pk, self._thread_values(thread)) for thread in self.touched.values()])
        self.touched = {}
        self._flush_events()

    def _flush_events(self) -> None:
        publish_events(self.events)
        self.events = []

    @staticmethod
    def _thread_values(thread: Thread) -> dict:
        return {field.name: getattr(thread, field.attname) for field in _update_thread_on_inbound.fields}


# Status callbacks come twice per outbound message (sent, delivered): the lean route
# applies those that arrive together in one transaction, with statements compiled once.
# Locked in id order, so that two batches cannot wait on each other; only the messages
# are locked, their thread and customer are read for the events' audience.
_outbound_for_status = PreparedQuery(
    lambda providers, sids, ids: (
        Message.objects.select_for_update(of=("self",))
        .select_related("thread__customer")
        .filter(
            Q(provider__in=providers, provider_message_id__in=sids) | Q(pk__in=ids),
            direction=Message.Direction.OUTBOUND,
        )
        .order_by("pk")
    ),
    sentinels=(["\x00provider"], ["\x00sid"], [-7_346_183_029]),
)


class _CompiledUpdates(dict):
    """A CompiledUpdate per set of fields, made on first use."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def __missing__(self, fields: tuple[str, ...]) -> CompiledUpdate:
        self[fields] = CompiledUpdate(self.model, list(fields))
        return self[fields]


_update_message_status = _CompiledUpdates(Message)


def message_status_apply(*, update: StatusUpdate) -> Message | None:
    """Apply a delivery status callback. Callbacks arrive in any order: the status only
    moves forward, failures are terminal, and each status keeps its own timestamp.
    Returns the message, or None when no outbound message of ours matches."""
    return message_statuses_apply(updates=[update])[0]


def message_statuses_apply(*, updates: Sequence[StatusUpdate]) -> list[Message | None]:
    """`message_status_apply` for several callbacks in one transaction (group commit), in
    the order given: two callbacks for one message apply one after the other, exactly as
    they would one by one. All or nothing: when it raises, nothing is changed."""
    with transaction.atomic():
        return _StatusBatch(updates).apply()


class _StatusBatch:
    """One transaction's status callbacks: one statement finds and locks their messages,
    each message is written once with everything the callbacks changed, and the events
    go out in one insert."""

    def __init__(self, updates: Sequence[StatusUpdate]):
        self.updates = list(updates)
        self.changed: dict[int, tuple[Message, set[str]]] = {}
        self.events: list[PendingEvent] = []
        self.failures: list[tuple[Message, str]] = []

    def apply(self) -> list[Message | None]:
        by_sid, by_id = self._lock_messages()
        now = timezone.now()
        results = []
        for update in self.updates:
            message = by_sid.get((update.provider, update.provider_message_id)) if update.provider_message_id else None
            if message is None and update.our_message_id is not None:
                message = by_id.get(update.our_message_id)
                if message is not None and message.provider_message_id not in (None, update.provider_message_id):
                    message = None  # our id with someone else's SID: not ours to touch
            if message is None:
                logger.info(
                    "Status callback for an unknown message (%s, status %s).", update.provider_message_id, update.status
                )
            else:
                self._apply(message, update, now)
                if message.provider_message_id:
                    by_sid[message.provider, message.provider_message_id] = message
            results.append(message)
        self._write()
        return results

    def _lock_messages(self) -> tuple[dict, dict]:
        providers = sorted({update.provider for update in self.updates if update.provider_message_id})
        sids = sorted({update.provider_message_id for update in self.updates if update.provider_message_id})
        ids = sorted({update.our_message_id for update in self.updates if update.our_message_id is not None})
        # An empty list would make `IN ()`; these match no outbound message (ids start at 1).
        messages = _outbound_for_status.all(providers or [""], sids or [""], ids or [0])
        by_sid = {(m.provider, m.provider_message_id): m for m in messages if m.provider_message_id}
        return by_sid, {m.pk: m for m in messages}

    def _apply(self, message: Message, update: StatusUpdate, now) -> None:
        changed = []
        if not message.provider_message_id and update.provider_message_id:
            message.provider, message.provider_message_id = update.provider, update.provider_message_id
            changed += ["provider", "provider_message_id"]
        field = STATUS_STAMPS.get(update.status)
        if field and getattr(message, field) is None:
            setattr(message, field, now)
            changed.append(field)
        if _status_moves_forward(message.status, update.status):
            message.status = update.status
            changed.append("status")
            if update.status in TERMINAL_FAILURES:
                message.error_code = update.error_code
                message.error_message = update.error_message
                changed += ["error_code", "error_message"]
                # Only when the failure is first applied: a replayed callback must not undo a later START.
                self.failures.append((message, update.error_code))
            self.events.append(
                PendingEvent(
                    Event.Type.MESSAGE_STATUS,
                    message.thread,
                    message_status_payload(message),
                    tuple(thread_audience(message.thread)),
                )
            )
        if changed:
            self.changed.setdefault(message.pk, (message, set()))[1].update(changed)

    def _write(self) -> None:
        by_fields: dict[tuple[str, ...], list[tuple]] = {}
        for pk, (message, fields) in self.changed.items():
            names = tuple(sorted(fields))
            by_fields.setdefault(names, []).append((pk, {name: getattr(message, name) for name in names}))
        for names, rows in by_fields.items():
            _update_message_status[names].many(rows)
        publish_events(self.events)
        for message, error_code in self.failures:
            contact_point_opt_out_if_unsubscribed(message=message, error_code=error_code)


UNSUBSCRIBED_ERROR_CODE = "21610"


def contact_point_opt_out_if_unsubscribed(*, message: Message, error_code: str) -> bool:
    """Twilio's 21610 (the recipient unsubscribed from this sender, e.g. by replying STOP to it)
    opts the message's contact point out, whether Twilio refused the send or reported the
    failure later in a status callback. Returns whether the consent changed."""
    if error_code != UNSUBSCRIBED_ERROR_CODE:
        return False
    return contact_point_set_consent(
        contact_point=message.contact_point,
        consent=ContactPoint.Consent.OPTED_OUT,
        source=_("Twilio error %(code)s: the recipient unsubscribed") % {"code": error_code},
    )


def _status_moves_forward(current: str, new: str) -> bool:
    if current in TERMINAL_FAILURES:
        return False
    if new in TERMINAL_FAILURES:
        return STATUS_RANK.get(current, 0) <= STATUS_RANK["sent"]
    if new not in STATUS_RANK:
        return False
    return STATUS_RANK[new] > STATUS_RANK.get(current, -1)
