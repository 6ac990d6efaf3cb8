"""Finding customers and unknown numbers by what an advisor types: the one reading of a
search the inbox, the API and the admin share.

Every word must match: a name or customer number (anywhere in them, any case:
Customer.search_text), or, written as one, a phone number (06 12 34 56 78, +33 6 12…, whole
or its start) or an email address (ContactPoint.address, stored normalised). A phone
number typed with spaces is one word. On PostgreSQL, trigram and pattern indexes answer
each condition (crm migration 0006).
"""

from dataclasses import dataclass

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Q

from crm.addresses import normalize_email, normalize_phone
from crm.models import ContactPoint

SEARCH_MAX_LENGTH = 100
SEARCH_MAX_TERMS = 5
_PHONE_CHARACTERS = set("0123456789 .-+()/")


@dataclass(frozen=True)
class Search:
    # Conditions on Customer, every one to be met; and on an unknown number's ContactPoint.
    customer: list[Q]
    prospect: list[Q]

    def customers_q(self) -> Q:
        return Q(*self.customer)


def _phone_like(text: str) -> bool:
    return set(text) <= _PHONE_CHARACTERS and sum(c.isdigit() for c in text) >= 6


def address_q(word: str) -> Q:
    """A phone number as typed, whole (equal to its E.164 form) or its start (the start of
    that form); an email address, whole (equal), or its part and other digits anywhere in
    the address."""
    if not _phone_like(word):
        try:
            return Q(address=normalize_email(word))
        except ValidationError:
            return Q(address__contains=word.lower())
    try:
        return Q(address=normalize_phone(word))
    except ValidationError:
        digits = "".join(c for c in word if c.isdigit() or c == "+")
    if digits.startswith("0") and not digits.startswith("00"):
        country_code = phonenumbers.country_code_for_region(settings.ATTITRE_DEFAULT_PHONE_REGION)
        if country_code:
            return Q(address__startswith=f"+{country_code}{digits[1:]}")
    if digits.startswith("+"):
        return Q(address__startswith=digits)
    return Q(address__contains=digits)


def search_parse(search: str) -> Search | None:
    """The conditions a search asks for; None for an empty one."""
    search = (search or "").strip()[:SEARCH_MAX_LENGTH]
    if not search:
        return None
    words = [search] if _phone_like(search) else search.split()[:SEARCH_MAX_TERMS]
    customer, prospect = [], []
    for word in words:
        if _phone_like(word) or "@" in word:
            address = address_q(word)
            customer.append(Q(pk__in=ContactPoint.objects.filter(address).values("customer_id")))
            prospect.append(address)
        else:
            customer.append(Q(search_text__icontains=word))
            prospect.append(Q(display_name__icontains=word))
    return Search(customer=customer, prospect=prospect)
