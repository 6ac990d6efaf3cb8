"""The journal's cost on the hot path, in queries: fixed per batch, whatever its size."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from conversations.providers.base import InboundMessage
from conversations.services import inbound_messages_receive
from journal.models import JournalEntry
from tests.conftest import ON_POSTGRES
from tests.factories import ContactPointFactory, CustomerFactory

pytestmark = pytest.mark.django_db


def _batch(numbers: list[str], tag: str) -> int:
    inbounds = [
        InboundMessage(
            provider="twilio",
            provider_message_id=f"SM{tag}{i:030x}",
            channel="whatsapp",
            address=n,
            body=f"Bonjour {i}",
        )
        for i, n in enumerate(numbers)
    ]
    with CaptureQueriesContext(connection) as queries:
        inbound_messages_receive(inbounds=inbounds)
    return len([q for q in queries if "journal_" in q["sql"]]), len(queries)


def test_a_batch_journals_in_the_same_number_of_queries_whatever_its_size(agency, alice, settings):
    """Two messages or six: the same journal statements (read the bodies, lock the head, insert
    the entries and move the head); and the journal adds only those to the batch."""
    numbers = [f"+336000000{i:02d}" for i in range(11)]
    for number in numbers:
        ContactPointFactory(
            customer=CustomerFactory(agency=agency, dedicated_advisor=alice), kind="whatsapp", address=number
        )
    _batch(numbers[:1], "00")  # the agency's chain head exists from now on
    small_journal, small_total = _batch(numbers[1:3], "01")
    large_journal, _large_total = _batch(numbers[3:9], "02")
    # Lock the head, insert the entries, move the head: the last two in one statement on PostgreSQL.
    assert small_journal == large_journal == (2 if ON_POSTGRES else 3)
    assert JournalEntry.objects.filter(type="message.created").count() == 9

    settings.ATTITRE_JOURNAL_ENABLED = False
    off_journal, off_total = _batch(numbers[9:11], "03")
    assert off_journal == 0
    assert small_total - off_total == small_journal + 1  # and the one read of the bodies
