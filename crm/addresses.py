"""Normalising customers' addresses: phone numbers to E.164, emails to lower case.

A bad address raises ValidationError with a message a person can act on; nothing
half-parsed is ever returned.
"""

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.translation import gettext as _

PHONE_KINDS = {"whatsapp", "sms"}


def normalize_phone(raw: str, *, region: str | None = None) -> str:
    value = (raw or "").strip()
    if not value:
        raise ValidationError(_("A phone number is required."), code="phone_required")
    try:
        number = phonenumbers.parse(value, region or settings.ATTITRE_DEFAULT_PHONE_REGION)
    except phonenumbers.NumberParseException as exc:
        raise ValidationError(
            _("“%(value)s” is not a phone number. Write it in international form, e.g. +33612345678."),
            code="phone_unparseable",
            params={"value": value},
        ) from exc
    if not phonenumbers.is_valid_number(number):
        raise ValidationError(
            _("“%(value)s” is not a valid phone number for its country. Check the digits and the country code."),
            code="phone_invalid",
            params={"value": value},
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_email(raw: str) -> str:
    value = (raw or "").strip().lower()
    if not value:
        raise ValidationError(_("An email address is required."), code="email_required")
    try:
        validate_email(value)
    except ValidationError as exc:
        raise ValidationError(
            _("“%(value)s” is not a valid email address."), code="email_invalid", params={"value": value}
        ) from exc
    return value


def normalize_address(*, kind: str, address: str) -> str:
    if kind in PHONE_KINDS:
        return normalize_phone(address)
    if kind == "email":
        return normalize_email(address)
    value = (address or "").strip()
    if not value:
        raise ValidationError(_("An address is required."), code="address_required")
    return value


def parse_twilio_address(raw: str) -> tuple[str, str]:
    """`whatsapp:+33612345678` → ("whatsapp", "+33612345678"); a bare E.164 number is SMS."""
    value = (raw or "").strip()
    if value.lower().startswith("whatsapp:"):
        return "whatsapp", normalize_phone(value.split(":", 1)[1])
    return "sms", normalize_phone(value)
