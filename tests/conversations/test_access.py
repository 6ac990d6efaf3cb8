"""Who may see a thread, over every routing situation: the query filter and the push audience
are derived from one table (conversations.access.REACHES) and must give the same answer."""

import itertools

import pytest

from conversations.access import (
    advisor_covered_ids,
    inbox_groups_for,
    lost_sight,
    thread_audience,
    thread_visibility_q,
)
from conversations.models import Thread
from crm.models import Advisor
from tests.factories import (
    AdvisorFactory,
    AgencyFactory,
    ContactPointFactory,
    CustomerFactory,
    SupervisorFactory,
    add_deputy,
)

pytestmark = pytest.mark.django_db

# Who handles the thread (None: the agency pool); "elsewhere" is an advisor of another agency.
HANDLERS = ("dedicated", "deputy", "colleague", "supervisor", "elsewhere", None)
# Whose thread: a customer of the dedicated advisor, a customer with no dedicated advisor, a prospect.
PARTIES = ("customer", "unassigned", "prospect")


@pytest.fixture
def people(agency):
    elsewhere = AgencyFactory(name="Agence Paris Opéra", code="paris-opera")
    cast = {
        "dedicated": AdvisorFactory(agency=agency),
        "deputy": AdvisorFactory(agency=agency),
        "second_deputy": AdvisorFactory(agency=agency),
        "colleague": AdvisorFactory(agency=agency),
        "supervisor": SupervisorFactory(agency=agency),
        "inactive": AdvisorFactory(agency=agency, is_active=False),
        "elsewhere": AdvisorFactory(agency=elsewhere),
        "elsewhere_supervisor": SupervisorFactory(agency=elsewhere),
    }
    add_deputy(cast["dedicated"], cast["deputy"], position=0)
    add_deputy(cast["dedicated"], cast["second_deputy"], position=1)
    return cast


def _threads(agency, people) -> dict[tuple, Thread]:
    """One thread per (party, handler): each its own customer or prospect."""
    threads = {}
    for party, handler in itertools.product(PARTIES, HANDLERS):
        fields = {"agency": agency, "handler": people[handler] if handler else None}
        if party == "prospect":
            fields["prospect"] = ContactPointFactory(customer=None)
        else:
            dedicated = people["dedicated"] if party == "customer" else None
            fields["customer"] = CustomerFactory(agency=agency, dedicated_advisor=dedicated)
            fields["dedicated_advisor"] = dedicated  # the thread's copy, as the services write it
        threads[party, handler] = Thread.objects.create(**fields)
    return threads


def _visible_ids(advisor: Advisor) -> set[int]:
    return set(Thread.objects.filter(thread_visibility_q(advisor=advisor)).values_list("pk", flat=True))


@pytest.mark.parametrize("availability", ["available", "away"])
def test_the_filter_and_the_audience_agree_over_the_routing_table(agency, people, availability):
    """For every advisor and every thread (each party, each handler, the dedicated advisor present
    or away so that their deputies cover them): the advisor may see the thread exactly when one of
    the groups their inbox joins is in the thread's audience; and when a thread changes hands,
    whoever loses sight of it is told, and only those who saw it."""
    people["dedicated"].availability = availability
    people["dedicated"].save(update_fields=["availability"])
    threads = _threads(agency, people)
    by_advisor = {}
    for name, advisor in people.items():
        advisor = Advisor.objects.select_related("user").get(pk=advisor.pk)
        by_advisor[name] = (set(inbox_groups_for(advisor=advisor)), _visible_ids(advisor))

    for (party, handler), thread in threads.items():
        audience = set(thread_audience(thread))
        for name, (groups, visible) in by_advisor.items():
            assert (thread.pk in visible) == bool(groups & audience), (name, party, handler, availability)

    for party in PARTIES:
        for before, after in itertools.permutations(HANDLERS, 2):
            old, new = threads[party, before], threads[party, after]
            told = set(lost_sight(thread_audience(old), new))
            for name, (groups, visible) in by_advisor.items():
                if old.pk in visible and new.pk not in visible:
                    assert groups & told, (name, "not told", party, before, after)
                if old.pk not in visible:
                    assert not groups & told, (name, "told of a thread never seen", party, before, after)


def test_the_routing_table_covers_what_it_claims(agency, people):
    """The table above is not vacuous: the deputies see their absent colleague's customer's thread
    and not a present one's; a colleague sees what they handle and the pool; another agency sees
    only what its advisor handles."""
    threads = _threads(agency, people)
    thread = threads["customer", "colleague"]
    assert thread.pk not in _visible_ids(people["deputy"])
    people["dedicated"].availability = "away"
    people["dedicated"].save(update_fields=["availability"])
    assert advisor_covered_ids(advisor=people["deputy"]) == [people["dedicated"].pk]
    assert thread.pk in _visible_ids(people["deputy"])
    assert thread.pk in _visible_ids(people["second_deputy"])
    assert _visible_ids(people["colleague"]) == {threads[party, "colleague"].pk for party in PARTIES} | {
        threads[party, None].pk for party in PARTIES
    }
    assert _visible_ids(people["inactive"]) == set()
    assert _visible_ids(people["elsewhere"]) == {threads[party, "elsewhere"].pk for party in PARTIES}
    assert _visible_ids(people["elsewhere_supervisor"]) == set()
