"""Writes that span a customer and their thread: reassigning a customer moves the thread
they were handled on; consent and confirmation of a contact point are events on it.
They live here, above crm, because crm knows nothing of threads."""

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from conversations.access import lost_sight, thread_audience
from conversations.models import Thread
from conversations.routing_reasons import ReasonCode, RoutingReason
from crm.models import Advisor, AdvisorAssignment, ContactPoint, Customer
from events.models import Event
from events.publish import publish_event, record_fact


def contact_point_set_consent(*, contact_point: ContactPoint, consent: str, source: str) -> bool:
    """Record an opt-in or opt-out; returns whether it changed anything."""
    if consent not in ContactPoint.Consent.values:
        raise ValidationError(_("Unknown consent state “%(consent)s”.") % {"consent": consent}, code="consent_invalid")
    with transaction.atomic():
        changed = (
            ContactPoint.objects.filter(pk=contact_point.pk)
            .exclude(consent=consent)
            .update(consent=consent, consent_changed_at=timezone.now(), consent_source=source[:200])
        )
        contact_point.refresh_from_db(fields=["consent", "consent_changed_at", "consent_source"])
        if changed:
            payload = {
                "contact_point": contact_point.pk,
                "channel": contact_point.kind,
                "consent": consent,
                "source": contact_point.consent_source,
                "at": contact_point.consent_changed_at,
            }
            thread = _thread_of_contact(contact_point)
            if thread is not None:
                publish_event(
                    type=Event.Type.CONSENT_CHANGED, thread=thread, payload=payload, audience=thread_audience(thread)
                )
            elif contact_point.customer_id:
                # A customer with no conversation yet: no event, but the change goes on the record.
                agency_id = Customer.objects.values_list("agency_id", flat=True).get(pk=contact_point.customer_id)
                record_fact(
                    type=Event.Type.CONSENT_CHANGED,
                    agency_id=agency_id,
                    actor=f"contact:{contact_point.pk}",
                    data=payload,
                )
    return bool(changed)


def contact_point_confirm(*, contact_point: ContactPoint, by: Advisor) -> bool:
    """The customer's dedicated advisor (or a supervisor of their agency) vouches that a
    number linked to the customer from the pool is really theirs: replies may go there from
    now on. Returns whether it changed anything."""
    with transaction.atomic():
        contact = (
            ContactPoint.objects.select_for_update(of=("self",))
            .select_related("customer")
            .filter(pk=contact_point.pk, customer__isnull=False)
            .first()
        )
        if contact is None:
            raise ValidationError(_("Only a customer's number can be confirmed."), code="not_a_customer_contact")
        customer = contact.customer
        supervises = by.is_supervisor and by.agency_id == customer.agency_id
        if not by.is_active or (customer.dedicated_advisor_id != by.pk and not supervises):
            raise ValidationError(
                _("Only %(customer)s's dedicated advisor can confirm that this number is theirs.")
                % {"customer": customer.full_name},
                code="not_dedicated_advisor",
            )
        if contact.confirmed:
            return False
        contact.confirmed = True
        contact.save(update_fields=["confirmed"])
        thread = _thread_of_contact(contact)
        if thread is not None:
            publish_event(
                type=Event.Type.CONTACT_POINT_CONFIRMED,
                thread=thread,
                payload={"contact_point": contact.pk, "channel": contact.kind, "by": by.pk},
                audience=thread_audience(thread),
            )
    contact_point.confirmed = True
    return True


def _thread_of_contact(contact_point: ContactPoint) -> Thread | None:
    query = Thread.objects.select_related("customer")
    if contact_point.customer_id:
        return query.filter(customer_id=contact_point.customer_id).first()
    return query.filter(prospect_id=contact_point.pk).first()


def customer_reassign(
    *,
    customer: Customer,
    advisor: Advisor | None,
    reason: str,
    changed_by: AbstractBaseUser | None,
) -> AdvisorAssignment | None:
    """Make `advisor` the customer's dedicated advisor, closing the current period of
    the assignment history. A thread the previous advisor was handling follows the
    customer to the new one. Returns the new assignment (None when nothing changed)."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError(_("Say why the customer changes advisor."), code="reason_required")
    if advisor is not None and not advisor.is_active:
        raise ValidationError(
            _("%(advisor)s is not active and cannot take customers.") % {"advisor": advisor}, code="advisor_inactive"
        )
    now = timezone.now()
    with transaction.atomic():
        locked = Customer.objects.select_for_update().get(pk=customer.pk)
        previous_id = locked.dedicated_advisor_id
        if previous_id == (advisor.pk if advisor else None):
            return None
        AdvisorAssignment.objects.filter(customer=locked, ended_at__isnull=True).update(ended_at=now)
        assignment = AdvisorAssignment.objects.create(
            customer=locked, advisor=advisor, started_at=now, reason=reason[:500], changed_by=changed_by
        )
        Customer.objects.filter(pk=locked.pk).update(dedicated_advisor=advisor)
        customer.dedicated_advisor = advisor

        thread = Thread.objects.select_for_update().filter(customer=locked).first()
        if thread is not None:
            before = thread_audience(thread)  # still dedicated to the previous advisor
            thread.customer = customer
            thread.dedicated_advisor = advisor
            changed = ["dedicated_advisor"]
            if previous_id is not None and thread.handler_id == previous_id:
                thread.handler = advisor
                thread.routing_reason = RoutingReason(ReasonCode.REASSIGNED, {"reason": reason[:300]})
                thread.routed_at = now
                changed += ["handler", "routing_reason_code", "routing_reason_params", "routed_at"]
            thread.save(update_fields=changed)
            publish_event(
                type=Event.Type.CUSTOMER_REASSIGNED,
                thread=thread,
                payload={
                    "customer": customer.pk,
                    "previous_advisor": previous_id,
                    "advisor": advisor.pk if advisor else None,
                    "handler": thread.handler_id,
                    "reason": reason,
                },
                extra_groups=lost_sight(before, thread),
                audience=thread_audience(thread),
            )
    return assignment
