"""A rule the database enforces is stated once, in its constraint, with the message and
code people and programs see: the admin's forms (Django validates constraints in a
ModelForm), the services and the API read it from there."""

from datetime import time, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.constraints import violation
from crm.models import Advisor, Deputyship, OpeningHours
from tests.factories import AdvisorFactory

pytestmark = pytest.mark.django_db

RULES = [
    ("absence_order", "The absence must end after it starts."),
    ("opening_hours_order", "The closing time must come after the opening time."),
    ("deputy_self", "An advisor cannot be their own deputy."),
    ("deputy_duplicate", "A deputy can be listed only once."),
]


def breaking(code: str, alice: Advisor):
    now = timezone.now()
    if code == "absence_order":
        alice.out_of_office_from, alice.out_of_office_until = now, now - timedelta(hours=1)
        return alice
    if code == "opening_hours_order":
        return OpeningHours(agency=alice.agency, weekday=0, opens_at=time(17), closes_at=time(9))
    if code == "deputy_duplicate":
        bob = AdvisorFactory(agency=alice.agency)
        Deputyship.objects.create(advisor=alice, deputy=bob, position=0)
        return Deputyship(advisor=alice, deputy=bob, position=1)
    return Deputyship(advisor=alice, deputy=alice, position=0)


@pytest.mark.parametrize(("code", "message"), RULES)
def test_model_validation_gives_the_rules_message_and_code(alice, code, message):
    """full_clean, as every ModelForm runs it, says what to fix, with a code."""
    with pytest.raises(ValidationError) as refused:
        breaking(code, alice).full_clean()
    errors = [error for errors in refused.value.error_dict.values() for error in errors]
    assert [(error.code, error.message) for error in errors] == [(code, message)]


@pytest.mark.parametrize(("code", "message"), RULES)
def test_the_databases_refusal_reads_as_the_same_rule(alice, code, message):
    """The IntegrityError of the same row, written past validation, becomes the same
    ValidationError: one message whichever layer catches the rule."""
    with pytest.raises(IntegrityError) as raised, transaction.atomic():
        breaking(code, alice).save()
    error = violation(raised.value)
    assert (error.code, error.message) == (code, message)


def test_an_integrity_error_of_no_known_constraint_is_none(alice):
    with pytest.raises(IntegrityError) as raised, transaction.atomic():
        AdvisorFactory(user=alice.user)
    assert violation(raised.value) is None
