"""Two transactions journalling for the same agency at once take turns on its chain head."""

import pytest

from journal.chain import journal_verify_agency
from journal.models import JournalEntry
from tests.concurrency import run_at_once
from tests.factories import ContactPointFactory, CustomerFactory
from tests.journal.conftest import receive

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_simultaneous_messages_do_not_fork_the_chain(agency, alice):
    """Eight customers writing at the same instant: eight chained entries, no two on one predecessor."""
    numbers = [f"+3361234560{i}" for i in range(8)]
    for number in numbers:
        ContactPointFactory(
            customer=CustomerFactory(agency=agency, dedicated_advisor=alice), kind="whatsapp", address=number
        )
    outcomes = run_at_once([lambda n=n, i=i: receive(n, "Bonjour", f"SM{i:032x}") for i, n in enumerate(numbers)])
    assert not [o for o in outcomes if isinstance(o, Exception)]
    created = JournalEntry.objects.filter(agency=agency, type="message.created")
    assert created.count() == 8
    prevs = list(JournalEntry.objects.filter(agency=agency).values_list("prev_hash", flat=True))
    assert len(prevs) == len(set(prevs))
    assert journal_verify_agency(agency_id=agency.pk).broken is None
