"""What advisors do to a thread: claim, transfer, close and reopen, read, annotate,
and link an unknown number to the customer it turns out to be.

Access (may this advisor see the thread?) is checked by the caller through the
selectors; these services check the business rules and write.
"""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from conversations.access import customer_visibility_q, lost_sight, thread_audience
from conversations.models import Message, Note, Thread, TriageState
from conversations.payloads import thread_summary
from conversations.providers.registry import LAST_INBOUND_FIELDS
from conversations.routing_reasons import ReasonCode, RoutingReason
from crm.models import Advisor, ContactPoint, Customer
from events.models import Event
from events.publish import publish_event

NOTE_MAX_LENGTH = 5000


def _locked(thread: Thread) -> Thread:
    locked = (
        Thread.objects.select_for_update(of=("self",))
        .select_related("customer__dedicated_advisor__user", "prospect", "handler__user")
        .get(pk=thread.pk)
    )
    return locked


def _assign(thread: Thread, *, handler: Advisor | None, reason: RoutingReason, by: Advisor | None) -> None:
    previous = thread.handler_id
    before = thread_audience(thread)
    thread.handler = handler
    thread.routing_reason = reason
    thread.routed_at = timezone.now()
    thread.save(update_fields=["handler", "routing_reason_code", "routing_reason_params", "routed_at"])
    publish_event(
        type=Event.Type.THREAD_ASSIGNED,
        thread=thread,
        payload={
            "thread_summary": thread_summary(thread),
            "previous_handler": previous,
            "handler": thread.handler_id,
            "reason": thread.routing_reason_code,
            "reason_params": thread.routing_reason_params,
            "by": by.pk if by else None,
        },
        extra_groups=lost_sight(before, thread),
        audience=thread_audience(thread),
    )


def thread_claim(*, thread: Thread, advisor: Advisor) -> Thread:
    """Take a thread: from the agency pool, or back as the customer's dedicated advisor."""
    with transaction.atomic():
        thread = _locked(thread)
        if thread.agency_id != advisor.agency_id:
            raise ValidationError(_("This conversation belongs to another agency."), code="other_agency")
        if not advisor.is_active:
            raise ValidationError(_("An inactive advisor cannot take conversations."), code="advisor_inactive")
        if thread.handler_id == advisor.pk:
            return thread
        dedicated = thread.customer.dedicated_advisor if thread.customer_id else None
        if dedicated is not None and dedicated.pk == advisor.pk:
            reason = RoutingReason(ReasonCode.DEDICATED)
        elif thread.handler_id is None:
            reason = RoutingReason(ReasonCode.CLAIMED, {"advisor": advisor.user.get_username()})
        else:
            raise ValidationError(
                _("%(handler)s is handling this conversation; ask them to transfer it.")
                % {"handler": thread.handler.display_name},
                code="already_handled",
            )
        _assign(thread, handler=advisor, reason=reason, by=advisor)
    return thread


def thread_transfer(*, thread: Thread, by: Advisor, to: Advisor, reason: str) -> Thread:
    """Hand a thread to a colleague of the same agency, saying why."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError(_("Say why you transfer this conversation."), code="reason_required")
    with transaction.atomic():
        thread = _locked(thread)
        if to.agency_id != thread.agency_id:
            raise ValidationError(
                _("%(advisor)s works in another agency.") % {"advisor": to.display_name}, code="other_agency"
            )
        if not to.is_active or not to.user.is_active:
            raise ValidationError(
                _("%(advisor)s is not active and cannot take conversations.") % {"advisor": to.display_name},
                code="advisor_inactive",
            )
        if thread.handler_id == to.pk:
            return thread
        _assign(
            thread,
            handler=to,
            reason=RoutingReason(ReasonCode.TRANSFERRED, {"by": by.user.get_username(), "reason": reason[:300]}),
            by=by,
        )
    return thread


def thread_set_status(*, thread: Thread, by: Advisor, status: str) -> Thread:
    """Close, reopen, or mark a thread as waiting on the customer."""
    if status not in Thread.Status.values:
        raise ValidationError(_("Unknown status “%(status)s”.") % {"status": status}, code="status_invalid")
    with transaction.atomic():
        thread = _locked(thread)
        if thread.status == status:
            return thread
        before = thread_audience(thread)
        thread.status = status
        fields = ["status"]
        if status == Thread.Status.CLOSED:
            thread.waiting_since = None
            fields.append("waiting_since")
            fields += _end_triage(thread)
        thread.save(update_fields=fields)
        publish_event(
            type=Event.Type.THREAD_UPDATED,
            thread=thread,
            payload={"thread_summary": thread_summary(thread), "by": by.pk, "change": "status"},
            audience=thread_audience(thread),
            extra_groups=lost_sight(before, thread),
        )
    return thread


def _end_triage(thread: Thread) -> list[str]:
    """Closing ends the conversation: its next one may be asked the menu again, and an urgent
    one leaves the urgent pool for the customer's own agency. The topic stays, as history."""
    thread.triage_state, thread.triage_misses, thread.urgent = TriageState.NONE, 0, False
    fields = ["triage_state", "triage_misses", "urgent"]
    if thread.customer_id and thread.agency_id != thread.customer.agency_id:
        thread.agency_id = thread.customer.agency_id
        fields.append("agency")
    return fields


def thread_mark_read(*, thread: Thread, by: Advisor) -> Thread:
    """The advisor has read the thread: its unread count drops to zero."""
    with transaction.atomic():
        thread = _locked(thread)
        if thread.unread_count == 0:
            return thread
        thread.unread_count = 0
        thread.save(update_fields=["unread_count"])
        publish_event(
            type=Event.Type.THREAD_UPDATED,
            thread=thread,
            payload={"thread_summary": thread_summary(thread), "by": by.pk, "change": "read"},
            audience=thread_audience(thread),
        )
    return thread


def note_add(*, thread: Thread, author: Advisor, body: str) -> Note:
    """An internal note: visible to colleagues who see the thread, never sent to the customer."""
    body = (body or "").strip()
    if not body:
        raise ValidationError(_("A note cannot be empty."), code="note_empty")
    if len(body) > NOTE_MAX_LENGTH:
        raise ValidationError(
            _("A note is limited to %(max)d characters.") % {"max": NOTE_MAX_LENGTH}, code="note_too_long"
        )
    with transaction.atomic():
        thread = _locked(thread)
        note = Note.objects.create(thread=thread, author=author, body=body)
        Thread.objects.filter(pk=thread.pk).update(last_activity_at=note.created_at)
        publish_event(
            type=Event.Type.NOTE_CREATED,
            thread=thread,
            payload={
                "note": {
                    "id": note.pk,
                    "author": author.pk,
                    "author_name": author.display_name,
                    "created_at": note.created_at,
                }
            },
            audience=thread_audience(thread),
        )
    return note


def prospect_link_to_customer(*, thread: Thread, customer: Customer, by: Advisor) -> Thread:
    """An unknown number turns out to be a customer: the contact point becomes theirs and
    the conversation joins theirs, history kept, routed to their dedicated advisor.

    Only someone who may see the customer links to them, and the number is only the
    writer's word: it joins the customer unconfirmed, so that no reply goes there until
    the dedicated advisor confirms it (`contact_point_confirm`). Its messages do not open
    the WhatsApp window or change the reply channel of the customer's own numbers."""
    with transaction.atomic():
        thread = _locked(thread)
        if thread.prospect_id is None:
            raise ValidationError(_("This conversation already belongs to a customer."), code="not_a_prospect")
        customer = (
            Customer.objects.select_for_update(of=("self",))
            .select_related("dedicated_advisor__user")
            .filter(customer_visibility_q(advisor=by), pk=customer.pk)
            .first()
        )
        if customer is None:
            raise ValidationError(
                _("You may only link this contact to a customer you look after."), code="customer_unknown"
            )
        prospect: ContactPoint = thread.prospect
        ContactPoint.objects.filter(pk=prospect.pk).update(customer=customer, confirmed=False)
        target = Thread.objects.select_for_update().filter(customer=customer).first()
        if target is None:
            # The prospect's thread becomes the customer's thread; what the unconfirmed number
            # opened (a WhatsApp window, the reply channel) is not the customer's.
            Thread.objects.filter(pk=thread.pk).update(
                customer=customer,
                dedicated_advisor_id=customer.dedicated_advisor_id,
                prospect=None,
                agency=customer.agency,
                last_inbound_channel="",
                **dict.fromkeys(LAST_INBOUND_FIELDS),
            )
            target = _locked(thread)
        else:
            # The customer already has a thread: the prospect's history moves into it.
            Message.objects.filter(thread=thread).update(thread=target)
            Note.objects.filter(thread=thread).update(thread=target)
            Event.objects.filter(thread=thread).update(thread=target)
            fields = {"unread_count": F("unread_count") + thread.unread_count}
            if thread.last_activity_at > target.last_activity_at:
                fields.update(
                    last_activity_at=thread.last_activity_at, last_message_preview=thread.last_message_preview
                )
            if thread.waiting_since and (target.waiting_since is None or thread.waiting_since < target.waiting_since):
                fields["waiting_since"] = thread.waiting_since
            Thread.objects.filter(pk=target.pk).update(status=Thread.Status.OPEN, **fields)
            Thread.objects.filter(pk=thread.pk).delete()
            target = _locked(target)
        dedicated = customer.dedicated_advisor
        handler = dedicated if dedicated is not None and dedicated.is_present() else target.handler
        _assign(
            target,
            handler=handler,
            reason=RoutingReason(ReasonCode.LINKED, {"number": customer.customer_number, "by": by.user.get_username()}),
            by=by,
        )
    return target
