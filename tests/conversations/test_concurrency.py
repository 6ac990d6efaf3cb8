"""Races between webhook deliveries, with real concurrent transactions on PostgreSQL."""

import pytest

from conversations.models import Message, Thread
from crm.models import ContactPoint
from tests import twilio
from tests.concurrency import run_at_once

MESSAGES = "/webhooks/twilio/messages/"
pytestmark = pytest.mark.django_db(transaction=True)


def post_concurrently(payloads: list[dict]) -> list[int]:
    return run_at_once(
        [lambda params=params: twilio.post_signed(MESSAGES, params).status_code for params in payloads],
        timeout=30,
    )


def test_same_message_sid_at_the_same_instant_is_stored_once(camille):
    """The same MessageSid posted by 8 workers at once is stored once; every delivery gets a 200."""
    params = twilio.whatsapp_text(body="Envoyé une fois, reçu huit fois")
    statuses = post_concurrently([params] * 8)
    assert statuses == [200] * 8
    assert Message.objects.filter(provider_message_id=params["MessageSid"]).count() == 1
    assert Thread.objects.get().unread_count == 1


def test_first_messages_from_an_unknown_number_race_to_one_prospect_and_one_thread(agency):
    """Six different first messages from a new number at once make one prospect, one thread, six messages."""
    payloads = [twilio.whatsapp_text(body=f"Message {i}", sender="+33699887766") for i in range(6)]
    statuses = post_concurrently(payloads)
    assert statuses == [200] * 6
    assert ContactPoint.objects.filter(address="+33699887766").count() == 1
    assert Thread.objects.count() == 1
    assert Message.objects.count() == 6
    assert Thread.objects.get().unread_count == 6


def test_messages_from_a_known_customer_at_once_each_count_on_the_locked_thread(camille):
    """Eight different messages from a customer whose thread exists, at once: the thread is
    locked by the statement that finds the customer, so no update is lost."""
    twilio.post_signed(MESSAGES, twilio.whatsapp_text(body="Le premier"))
    payloads = [twilio.whatsapp_text(body=f"Message {i}") for i in range(8)]
    assert post_concurrently(payloads) == [200] * 8
    thread = Thread.objects.get()
    assert thread.unread_count == 9
    assert thread.messages.count() == 9
