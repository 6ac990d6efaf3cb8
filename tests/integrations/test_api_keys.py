"""API keys: a prefix is unique (the database says so), a secret is shown once and stored hashed."""

import threading

import pytest
from django.db import IntegrityError

from integrations import services
from integrations.models import ApiKey
from integrations.services import PREFIX_ATTEMPTS, api_key_create, hash_key
from tests.concurrency import run_at_once

pytestmark = pytest.mark.django_db


def drawn_keys(monkeypatch, *keys: str) -> None:
    """`secrets.token_urlsafe` draws these keys, in order, whichever thread asks."""
    draws, lock = iter(keys), threading.Lock()

    def next_key(nbytes):
        with lock:
            return next(draws)

    monkeypatch.setattr(services.secrets, "token_urlsafe", next_key)


def test_a_key_drawn_with_a_taken_prefix_is_drawn_again(monkeypatch):
    """The prefix finds the key: a new key whose prefix is taken is drawn again."""
    drawn_keys(monkeypatch, "AAAAAAAA-first", "AAAAAAAA-second", "BBBBBBBB-third")
    first, _ = api_key_create(name="CRM", scopes=["customers:read"])

    second, secret = api_key_create(name="Reporting", scopes=["events:read"])

    assert (first.prefix, second.prefix, secret) == ("AAAAAAAA", "BBBBBBBB", "BBBBBBBB-third")
    assert second.hashed_key == hash_key("BBBBBBBB-third")


def test_a_prefix_that_stays_taken_is_an_error_not_a_loop(monkeypatch):
    """After PREFIX_ATTEMPTS taken prefixes in a row (a broken random source), the
    constraint's error reaches the caller; nothing more is stored."""
    drawn_keys(monkeypatch, *(f"AAAAAAAA-{n}" for n in range(PREFIX_ATTEMPTS + 1)))
    api_key_create(name="CRM", scopes=["customers:read"])

    with pytest.raises(IntegrityError):
        api_key_create(name="Reporting", scopes=["events:read"])
    assert ApiKey.objects.count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_keys_created_at_once_with_one_prefix_both_succeed(monkeypatch):
    """Two creations at the same instant draw the same prefix: the constraint lets one
    through, the other draws again; neither caller sees an error."""
    drawn_keys(monkeypatch, "AAAAAAAA-one", "AAAAAAAA-two", "BBBBBBBB-three", "CCCCCCCC-four")

    outcomes = run_at_once([lambda: api_key_create(name="CRM", scopes=["customers:read"])] * 2)

    assert all(isinstance(outcome, tuple) for outcome in outcomes), outcomes
    prefixes = sorted(api_key.prefix for api_key, _ in outcomes)
    assert prefixes[0] == "AAAAAAAA" and prefixes[1] != "AAAAAAAA"
    assert sorted(ApiKey.objects.values_list("prefix", flat=True)) == prefixes
