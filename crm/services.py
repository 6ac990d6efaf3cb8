"""Writes to the CRM: the only place that changes customers, contact points, advisors
and assignments. Each service checks, locks, writes and returns. What also changes a
customer's thread (reassigning, consent, confirming a number) is
conversations.services.customers."""

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.constraints import violation
from crm.addresses import normalize_address
from crm.models import Advisor, AdvisorAssignment, Agency, ContactPoint, Customer, Deputyship
from events.inbox_access import inbox_access_changed

CUSTOMER_EDITABLE_FIELDS = ("first_name", "last_name", "preferred_language", "segment", "typology")
AVAILABILITY_FIELDS = ("availability", "out_of_office_from", "out_of_office_until", "out_of_office_message")


def _field_error(field: str, message: str, *, code: str) -> ValidationError:
    # The code goes on the inner error: Django drops a dict-shaped error's own code.
    return ValidationError({field: ValidationError(message, code=code)})


def _save_or_refuse(write, *args, **kwargs):
    """Write; a row the database refuses for a rule becomes that constraint's ValidationError."""
    try:
        with transaction.atomic():
            return write(*args, **kwargs)
    except IntegrityError as exc:
        refused = violation(exc)
        if refused is None:
            raise
        raise refused from exc


def contact_point_create(
    *,
    kind: str,
    address: str,
    customer: Customer | None = None,
    display_name: str = "",
    consent: str = ContactPoint.Consent.OPTED_IN,
    source: str = "",
) -> ContactPoint:
    """Add an address, normalised; a malformed or already-registered one is refused."""
    if kind not in ContactPoint.Kind.values:
        raise ValidationError({"kind": _("Unknown channel “%(kind)s”.") % {"kind": kind}}, code="kind_invalid")
    try:
        normalized = normalize_address(kind=kind, address=address)
    except ValidationError as exc:
        raise ValidationError({"address": exc}) from exc
    contact = ContactPoint(
        customer=customer,
        kind=kind,
        address=normalized,
        display_name=display_name,
        consent=consent,
        consent_changed_at=timezone.now(),
        consent_source=source,
    )
    try:
        with transaction.atomic():
            contact.save()
    except IntegrityError as exc:
        # The code sits on the field's error: a dict-shaped ValidationError keeps no code of its own.
        raise ValidationError(
            {
                "address": ValidationError(
                    _("%(address)s is already registered on %(kind)s.")
                    % {"address": normalized, "kind": contact.get_kind_display()},
                    code="address_taken",
                )
            }
        ) from exc
    return contact


def customer_create(
    *,
    customer_number: str,
    first_name: str,
    last_name: str,
    agency: Agency,
    advisor: Advisor | None,
    created_by: AbstractBaseUser | None = None,
    reason: str = "",
    **fields,
) -> Customer:
    """Create a customer and open their assignment history; a customer number already
    taken is refused (`customer_number_taken`)."""
    customer = Customer(
        customer_number=customer_number.strip(),
        first_name=first_name.strip(),
        last_name=last_name.strip(),
        agency=agency,
        dedicated_advisor=advisor,
        **fields,
    )
    # The unique constraint decides whether the number is free: a query first would let two
    # concurrent creations both see it free, and the second fail with an IntegrityError.
    customer.full_clean(validate_unique=False)
    with transaction.atomic():
        try:
            with transaction.atomic():
                customer.save()
        except IntegrityError as exc:
            if Customer.objects.filter(customer_number=customer.customer_number).exists():
                raise _field_error(
                    "customer_number",
                    _("Customer number %(number)s is already taken.") % {"number": customer.customer_number},
                    code="customer_number_taken",
                ) from exc
            raise
        AdvisorAssignment.objects.create(
            customer=customer, advisor=advisor, reason=reason or _("Customer created"), changed_by=created_by
        )
    return customer


def customer_create_with_contact_points(
    *,
    customer_number: str,
    first_name: str,
    last_name: str,
    agency: Agency,
    advisor: Advisor | None,
    contact_points: list[dict],
    created_by: AbstractBaseUser | None,
    source: str,
    reason: str = "",
    **fields,
) -> Customer:
    """A customer and their addresses, all or nothing."""
    with transaction.atomic():
        customer = customer_create(
            customer_number=customer_number,
            first_name=first_name,
            last_name=last_name,
            agency=agency,
            advisor=advisor,
            created_by=created_by,
            reason=reason,
            **fields,
        )
        for index, contact in enumerate(contact_points):
            try:
                contact_point_create(
                    customer=customer,
                    kind=contact["kind"],
                    address=contact["address"],
                    display_name=contact.get("display_name", ""),
                    source=source,
                )
            except ValidationError as exc:
                raise _prefixed(exc, f"contact_points.{index}") from exc
    return customer


def contact_point_add(*, customer: Customer, kind: str, address: str, display_name: str, source: str):
    """`contact_point_create`, with the machine-readable code of a taken address."""
    try:
        return contact_point_create(
            customer=customer, kind=kind, address=address, display_name=display_name, source=source
        )
    except ValidationError as exc:
        raise _with_taken_code(exc) from exc


def _with_taken_code(exc: ValidationError) -> ValidationError:
    if isinstance(exc.__cause__, IntegrityError) and hasattr(exc, "error_dict"):
        return ValidationError(
            {
                name: [ValidationError(message, code="address_taken") for message in ValidationError(errors).messages]
                for name, errors in exc.error_dict.items()
            }
        )
    return exc


def _prefixed(exc: ValidationError, prefix: str) -> ValidationError:
    exc = _with_taken_code(exc)
    if not hasattr(exc, "error_dict"):
        return ValidationError({prefix: exc.error_list})
    return ValidationError({f"{prefix}.{name}": errors for name, errors in exc.error_dict.items()})


def customer_update(*, customer: Customer, **changes) -> Customer:
    """Names, language, segment and typology; the dedicated advisor changes only through
    conversations.services.customers.customer_reassign, which keeps the history."""
    fields = [name for name in CUSTOMER_EDITABLE_FIELDS if name in changes]
    for name in fields:
        value = changes[name]
        setattr(customer, name, value.strip() if isinstance(value, str) else value)
    customer.full_clean(exclude=["dedicated_advisor", "agency"], validate_unique=False)
    if fields:
        customer.save(update_fields=fields)
    return customer


def advisor_update_availability(*, advisor: Advisor, **changes) -> Advisor:
    """Available or away, and the out-of-office period and message; fields not given
    keep their value. Routing reads them at the next inbound message."""
    fields = [name for name in AVAILABILITY_FIELDS if name in changes]
    if "availability" in changes and changes["availability"] not in Advisor.Availability.values:
        raise _field_error(
            "availability",
            _("Unknown availability “%(value)s”.") % {"value": changes["availability"]},
            code="availability_invalid",
        )
    with transaction.atomic():
        locked = Advisor.objects.select_for_update().get(pk=advisor.pk)
        for name in fields:
            value = changes[name]
            setattr(locked, name, (value or "").strip() if name == "out_of_office_message" else value)
        if fields:
            _save_or_refuse(locked.save, update_fields=fields)
    for name in fields:
        setattr(advisor, name, getattr(locked, name))
    return advisor


def advisor_set_deputies(*, advisor: Advisor, deputy_ids: list[int]) -> list[int]:
    """Replace the advisor's deputies by these colleagues, tried in this order; the
    constraints refuse the advisor themselves and a colleague listed twice."""
    found = set(Advisor.objects.filter(pk__in=deputy_ids, agency_id=advisor.agency_id).values_list("pk", flat=True))
    missing = [str(pk) for pk in deputy_ids if pk not in found]
    if missing:
        raise _field_error(
            "deputies", _("No advisor %(ids)s in this agency.") % {"ids": ", ".join(missing)}, code="advisor_unknown"
        )
    with transaction.atomic():
        Advisor.objects.select_for_update().filter(pk=advisor.pk).first()
        Deputyship.objects.filter(advisor=advisor).delete()
        _save_or_refuse(
            Deputyship.objects.bulk_create,
            [Deputyship(advisor=advisor, deputy_id=pk, position=index) for index, pk in enumerate(deputy_ids)],
        )
    return list(deputy_ids)


def advisor_update(*, advisor: Advisor, deputies: list[int] | None = None, **availability) -> Advisor:
    """What the API changes on an advisor, in one transaction: availability and absence,
    and the ordered list of deputies when given."""
    with transaction.atomic():
        deputies_before = list(Deputyship.objects.filter(advisor=advisor).values_list("deputy_id", flat=True))
        advisor_update_availability(advisor=advisor, **availability)
        if deputies is not None:
            advisor_set_deputies(advisor=advisor, deputy_ids=deputies)
        inbox_access_changed(advisor_ids=[advisor.pk, *deputies_before, *(deputies or [])])
    return advisor
