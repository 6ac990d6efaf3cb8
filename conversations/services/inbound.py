"""Receiving what a provider delivers: inbound messages and delivery statuses."""

import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django_q.tasks import async_task

from channels_app.events import publish_event
from channels_app.groups import left_behind
from conversations.compiled import CompiledInsert, CompiledUpdate, PreparedQuery
from conversations.models import Attachment, Channel, Event, Message, Thread
from conversations.payloads import message_payload, message_status_payload, thread_summary
from conversations.providers.base import InboundMessage, StatusUpdate
from conversations.routing import RoutingDecision, route_customer_thread, route_prospect_thread
from crm.models import Agency, ContactPoint
from crm.services import contact_point_set_consent

logger = logging.getLogger(__name__)

OPT_OUT_KEYWORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "END", "QUIT", "CANCEL", "OPTOUT", "REVOKE", "ARRET", "ARRÊT"}
)
OPT_IN_KEYWORDS = frozenset({"START", "UNSTOP", "YES"})
PREVIEW_LENGTH = 200

# Outbound delivery states in the order they can only move forward.
STATUS_RANK = {"queued": 0, "accepted": 0, "scheduled": 0, "sending": 1, "sent": 2, "delivered": 3, "read": 4}
TERMINAL_FAILURES = {"failed", "undelivered"}


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
    for attempt in (1, 2):
        try:
            with transaction.atomic():
                return _store_inbound(inbound)
        except IntegrityError:
            # Another request created the same prospect contact or thread first: once more.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


_contact_with_advisor = PreparedQuery(
    lambda kind, address: ContactPoint.objects.select_related("customer__dedicated_advisor__user").filter(
        kind=kind, address=address
    ),
    sentinels=("\x00kind", "\x00address"),
)
_thread_of_customer = PreparedQuery(
    lambda customer_id: Thread.objects.select_for_update().filter(customer_id=customer_id), sentinels=(-7_346_183_019,)
)


def _contact_for(inbound: InboundMessage) -> ContactPoint:
    contact = _contact_with_advisor.first(inbound.channel, inbound.address)
    if contact is None:
        # An unknown number: a prospect, until an advisor links it to a customer.
        contact = ContactPoint.objects.create(
            kind=inbound.channel,
            address=inbound.address,
            display_name=inbound.profile_name,
            consent_changed_at=timezone.now(),
            consent_source=_("first message"),
        )
    return contact


def _thread_for_update(contact: ContactPoint) -> tuple[Thread, bool]:
    customer = contact.customer
    lookup = {"customer": customer} if customer else {"prospect": contact}
    if customer:
        thread = _thread_of_customer.first(customer.pk)
    else:
        thread = Thread.objects.select_for_update().filter(prospect=contact).first()
    created = thread is None
    if created:
        agency_id = customer.agency_id if customer else default_agency().pk
        thread = Thread.objects.create(agency_id=agency_id, **lookup)
    if customer:
        thread.customer = customer
        dedicated = customer.dedicated_advisor
        if dedicated is not None and thread.handler_id == dedicated.pk:
            thread.handler = dedicated  # already loaded with the contact: no query
    else:
        thread.prospect = contact
    return thread, created


def _route(thread: Thread, contact: ContactPoint, at) -> RoutingDecision:
    if contact.customer_id:
        return route_customer_thread(thread=thread, dedicated=contact.customer.dedicated_advisor, at=at)
    return route_prospect_thread(thread=thread, at=at)


def _consent_change(contact: ContactPoint, body: str) -> str:
    requested = consent_keyword(body)
    return requested if requested and requested != contact.consent else ""


_insert_message = CompiledInsert(Message, ignore_conflicts=True)
_THREAD_INBOUND_FIELDS = [
    "handler",
    "routing_reason",
    "routed_at",
    "last_inbound_channel",
    "last_activity_at",
    "last_message_preview",
    "waiting_since",
    "status",
]
_update_thread_on_inbound = {
    channel: CompiledUpdate(
        Thread, [*_THREAD_INBOUND_FIELDS, f"last_{channel}_inbound_at"], increment=("unread_count",)
    )
    for channel in Channel.values
}


def _store_inbound(inbound: InboundMessage) -> InboundResult:
    now = timezone.now()
    contact = _contact_for(inbound)
    thread, created = _thread_for_update(contact)

    replied_to = None
    if inbound.replied_to_provider_id:
        replied_to = Message.objects.filter(
            thread=thread, provider=inbound.provider, provider_message_id=inbound.replied_to_provider_id
        ).first()

    message = Message(
        thread=thread,
        direction=Message.Direction.INBOUND,
        channel=inbound.channel,
        contact_point=contact,
        body=inbound.body,
        provider=inbound.provider,
        provider_message_id=inbound.provider_message_id,
        status=Message.Status.RECEIVED,
        created_at=now,
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
        consent_change=_consent_change(contact, inbound.body),
        raw=inbound.raw,
    )
    if not _insert_message(message):
        existing = Message.objects.get(provider=inbound.provider, provider_message_id=inbound.provider_message_id)
        return InboundResult(existing, created=False)
    attachments = []
    if inbound.media:
        attachments = Attachment.objects.bulk_create(
            Attachment(message=message, position=index, content_type=media.content_type[:128], original_url=media.url)
            for index, media in enumerate(inbound.media)
        )
        for attachment in attachments:
            # Enqueued in this transaction (ORM broker): the download exists iff the message does.
            async_task("conversations.tasks.attachment_download", attachment.pk, group="media")

    previous_handler_id = thread.handler_id
    decision = _route(thread, contact, now)
    new_handler_id = decision.handler.pk if decision.handler else None
    if new_handler_id != previous_handler_id or decision.reason != thread.routing_reason or not thread.routed_at:
        thread.routed_at = now
    thread.handler = decision.handler
    thread.routing_reason = decision.reason
    setattr(thread, f"last_{inbound.channel}_inbound_at", now)
    thread.last_inbound_channel = inbound.channel
    thread.last_activity_at = now
    thread.last_message_preview = _preview(inbound)
    thread.waiting_since = thread.waiting_since or now
    thread.status = Thread.Status.OPEN
    _update_thread_on_inbound[inbound.channel](
        thread.pk,
        {
            "handler": thread.handler_id,
            "routing_reason": thread.routing_reason,
            "routed_at": thread.routed_at,
            "last_inbound_channel": inbound.channel,
            "last_activity_at": now,
            "last_message_preview": thread.last_message_preview,
            "waiting_since": thread.waiting_since,
            "status": thread.status,
            f"last_{inbound.channel}_inbound_at": now,
        },
    )
    thread.unread_count += 1

    if message.consent_change:
        keyword = inbound.body.strip().upper()
        contact_point_set_consent(
            contact_point=contact,
            consent=message.consent_change,
            source=_("keyword “%(keyword)s” in %(channel)s message %(sid)s")
            % {"keyword": keyword, "channel": contact.get_kind_display(), "sid": inbound.provider_message_id},
        )

    moved_away = left_behind(previous_handler_id, thread, was_in_pool=not created)
    if previous_handler_id != thread.handler_id:
        publish_event(
            type=Event.Type.THREAD_ASSIGNED,
            thread=thread,
            payload={
                "thread_summary": thread_summary(thread),
                "previous_handler": previous_handler_id,
                "handler": thread.handler_id,
                "reason": thread.routing_reason,
            },
            extra_groups=moved_away,
        )
    publish_event(
        type=Event.Type.MESSAGE_CREATED,
        thread=thread,
        payload={"message": message_payload(message, attachments), "thread_summary": thread_summary(thread)},
    )
    return InboundResult(message, created=True)


def message_status_apply(*, update: StatusUpdate) -> Message | None:
    """Apply a delivery status callback. Callbacks arrive in any order: the status only
    moves forward, failures are terminal, and each status keeps its own timestamp."""
    with transaction.atomic():
        query = Message.objects.select_for_update().filter(direction=Message.Direction.OUTBOUND)
        message = None
        if update.provider_message_id:
            message = query.filter(provider=update.provider, provider_message_id=update.provider_message_id).first()
        if message is None and update.our_message_id is not None:
            message = query.filter(pk=update.our_message_id).first()
            if message is not None and message.provider_message_id not in (None, update.provider_message_id):
                message = None  # our id with someone else's SID: not ours to touch
        if message is None:
            logger.info(
                "Status callback for an unknown message (%s, status %s).", update.provider_message_id, update.status
            )
            return None

        now = timezone.now()
        changed = []
        if not message.provider_message_id and update.provider_message_id:
            message.provider, message.provider_message_id = update.provider, update.provider_message_id
            changed += ["provider", "provider_message_id"]
        stamp_field = f"{update.status}_at"
        if update.status in STATUS_RANK or update.status in TERMINAL_FAILURES:
            field = "failed_at" if update.status in TERMINAL_FAILURES else stamp_field
            if hasattr(message, field) and getattr(message, field) is None:
                setattr(message, field, now)
                changed.append(field)
        if _status_moves_forward(message.status, update.status):
            message.status = update.status
            changed.append("status")
            if update.status in TERMINAL_FAILURES:
                message.error_code = update.error_code
                message.error_message = update.error_message
                changed += ["error_code", "error_message"]
        if not changed:
            return message
        message.save(update_fields=changed)
        if "status" in changed:
            thread = Thread.objects.select_related("customer").get(pk=message.thread_id)
            publish_event(
                type=Event.Type.MESSAGE_STATUS,
                thread=thread,
                payload=message_status_payload(message),
            )
            # Only when the failure is first applied: a replayed callback must not undo a later START.
            if update.status in TERMINAL_FAILURES:
                contact_point_opt_out_if_unsubscribed(message=message, error_code=update.error_code)
    return message


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
