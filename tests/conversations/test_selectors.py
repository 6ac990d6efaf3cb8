from datetime import timedelta

import pytest
from django.utils import timezone

from conversations.access import advisor_covered_ids, inbox_access_for, inbox_groups_for, thread_visibility_q
from conversations.models import Thread
from conversations.selectors import InboxTab, events_visible_from, thread_list_for_advisor
from events.groups import advisor_group, pool_group, supervision_group
from events.log import horizon
from events.models import Event
from tests.factories import (
    AgencyFactory,
    ContactPointFactory,
    CustomerFactory,
    SupervisorFactory,
    add_deputy,
)

pytestmark = pytest.mark.django_db


def customer_thread(customer, *, handler=None, status=Thread.Status.OPEN, **fields) -> Thread:
    return Thread.objects.create(
        customer=customer,
        dedicated_advisor=customer.dedicated_advisor,
        agency=customer.agency,
        handler=handler,
        status=status,
        **fields,
    )


def prospect_thread(agency, *, handler=None, address="+33699000000") -> Thread:
    prospect = ContactPointFactory(customer=None, address=address, display_name="Inconnu")
    return Thread.objects.create(prospect=prospect, agency=agency, handler=handler)


def visible(advisor) -> set[int]:
    return set(Thread.objects.filter(thread_visibility_q(advisor=advisor)).values_list("pk", flat=True))


@pytest.fixture
def dora(bob):
    return CustomerFactory(first_name="Dora", last_name="Petit", dedicated_advisor=bob, agency=bob.agency)


@pytest.fixture
def threads(alice, bob, camille, dora, agency):
    """Camille's (alice's customer, alice handles), Dora's (bob's customer, bob handles),
    one unknown number in the pool, and a pool thread of another agency."""
    elsewhere = AgencyFactory(name="Agence Paris Opéra", code="paris-opera")
    return {
        "camille": customer_thread(camille, handler=alice),
        "dora": customer_thread(dora, handler=bob),
        "pool": prospect_thread(agency),
        "elsewhere": prospect_thread(elsewhere, address="+33699111111"),
    }


def test_advisor_sees_own_threads_and_the_agency_pool(alice, threads):
    """An advisor sees the threads they handle or whose customer is theirs, and their agency's pool."""
    assert visible(alice) == {threads["camille"].pk, threads["pool"].pk}


def test_handler_sees_a_colleagues_customer_thread_they_handle(alice, bob, threads):
    """Handling a colleague's customer's thread (claimed, transferred) makes it visible."""
    Thread.objects.filter(pk=threads["dora"].pk).update(handler=alice)
    assert threads["dora"].pk in visible(alice)
    assert threads["dora"].pk in visible(bob), "bob still sees his own customer's thread"


def test_dedicated_advisor_sees_their_customer_thread_handled_by_someone_else(alice, bob, threads):
    """The dedicated advisor keeps sight of their customer's thread while a colleague handles it."""
    Thread.objects.filter(pk=threads["camille"].pk).update(handler=bob)
    assert threads["camille"].pk in visible(alice)


def test_deputy_sees_a_colleagues_threads_only_while_the_colleague_is_absent(alice, bob, threads):
    """A deputy sees the threads of the advisor they cover only while that advisor is away."""
    add_deputy(bob, alice)
    assert threads["dora"].pk not in visible(alice)
    assert advisor_covered_ids(advisor=alice) == []

    bob.availability = "away"
    bob.save()
    assert threads["dora"].pk in visible(alice)
    assert advisor_covered_ids(advisor=alice) == [bob.pk]

    bob.availability = "available"
    bob.out_of_office_from = timezone.now() - timedelta(days=1)
    bob.out_of_office_until = timezone.now() + timedelta(days=1)
    bob.save()
    assert threads["dora"].pk in visible(alice), "out of office counts as absent"


def test_non_deputy_colleague_does_not_see_an_absent_advisors_threads(alice, bob, threads):
    """Being in the same agency is not enough: only named deputies cover an absent advisor."""
    bob.availability = "away"
    bob.save()
    assert threads["dora"].pk not in visible(alice)


def test_supervisor_sees_every_thread_of_their_agency(sam, threads):
    """A supervisor sees every thread of their agency, and none of another agency."""
    assert visible(sam) == {threads["camille"].pk, threads["dora"].pk, threads["pool"].pk}


def test_another_agencys_supervisor_sees_nothing(threads):
    """A supervisor of another agency sees none of this agency's threads."""
    zoe = SupervisorFactory(user__username="zoe", agency=AgencyFactory(name="Agence Nantes", code="nantes"))
    assert visible(zoe) == set()


def test_inactive_advisor_sees_nothing(alice, threads):
    """A deactivated advisor sees no thread at all."""
    alice.is_active = False
    alice.save()
    assert visible(alice) == set()


def test_inbox_groups_of_an_advisor_a_covering_deputy_and_a_supervisor(alice, bob, sam):
    """Own group and pool; a covering deputy adds the absent colleague's group; only a supervisor
    joins the supervision group."""
    assert inbox_groups_for(advisor=alice) == [advisor_group(alice.pk), pool_group(alice.agency_id)]
    add_deputy(bob, alice)
    bob.availability = "away"
    bob.save()
    assert inbox_groups_for(advisor=alice) == [
        advisor_group(alice.pk),
        advisor_group(bob.pk),
        pool_group(alice.agency_id),
    ]
    assert supervision_group(sam.agency_id) in inbox_groups_for(advisor=sam)
    assert supervision_group(bob.agency_id) not in inbox_groups_for(advisor=bob)


def test_inbox_access_for_many_advisors_matches_one_by_one_and_leaves_out_who_may_not_connect(
    alice, bob, sam, django_assert_num_queries
):
    """The bulk read used for every open tab of a server gives each advisor the groups
    `inbox_groups_for` gives, in two queries; a deactivated advisor or login is left out."""
    add_deputy(bob, alice)
    bob.availability = "away"
    bob.save()
    with django_assert_num_queries(2):
        access = inbox_access_for(advisor_ids=[alice.pk, bob.pk, sam.pk])
    assert {advisor_id: groups for advisor_id, (_advisor, groups) in access.items()} == {
        advisor.pk: inbox_groups_for(advisor=advisor) for advisor in (alice, bob, sam)
    }
    assert advisor_group(bob.pk) in access[alice.pk][1]

    sam.user.is_active = False
    sam.user.save()
    alice.is_active = False
    alice.save()
    assert set(inbox_access_for(advisor_ids=[alice.pk, bob.pk, sam.pk])) == {bob.pk}


def test_tabs_split_the_inbox(alice, bob, camille, dora, agency):
    """mine: own open threads; pool: the agency's unhandled ones; covering: absent colleagues'; closed."""
    add_deputy(bob, alice)
    bob.availability = "away"
    bob.save()
    mine = customer_thread(camille, handler=alice)
    covering = customer_thread(dora, handler=bob)
    pool = prospect_thread(agency)
    closed = prospect_thread(agency, handler=alice, address="+33699222222")
    Thread.objects.filter(pk=closed.pk).update(status=Thread.Status.CLOSED)

    def tab(name):
        return [thread.pk for thread in thread_list_for_advisor(advisor=alice, tab=name)]

    assert tab(InboxTab.MINE) == [mine.pk]
    assert tab(InboxTab.POOL) == [pool.pk]
    assert tab(InboxTab.COVERING) == [covering.pk]
    assert tab(InboxTab.CLOSED) == [closed.pk]
    with pytest.raises(ValueError, match="Unknown inbox tab"):
        thread_list_for_advisor(advisor=alice, tab="everything")


def test_list_is_ordered_by_last_activity_and_searchable(alice, agency):
    """Most recent activity first; every search word must match a name, a number or an address."""
    now = timezone.now()
    older = customer_thread(
        CustomerFactory(first_name="Camille", last_name="Martin", dedicated_advisor=alice),
        last_activity_at=now - timedelta(hours=2),
    )
    newer = customer_thread(
        CustomerFactory(first_name="Camille", last_name="Roux", dedicated_advisor=alice),
        last_activity_at=now - timedelta(hours=1),
    )
    ContactPointFactory(customer=newer.customer, address="+33611223344")

    def search(text):
        return [thread.pk for thread in thread_list_for_advisor(advisor=alice, search=text)]

    assert search("") == [newer.pk, older.pk]
    assert search("camille") == [newer.pk, older.pk]
    assert search("camille martin") == [older.pk]
    assert search("11223344") == [newer.pk]
    assert search("nobody") == []


def test_a_phone_number_typed_with_spaces_is_one_number(alice):
    """ "06 24 00 44 12" is the number +33624004412, not five words that a customer number
    holding 06, 24, 00, 44 and 12 would match."""
    owner = customer_thread(CustomerFactory(dedicated_advisor=alice))
    ContactPointFactory(customer=owner.customer, address="+33624004412")
    customer_thread(CustomerFactory(dedicated_advisor=alice, customer_number="FR1206244400"))

    def search(text):
        return [thread.pk for thread in thread_list_for_advisor(advisor=alice, search=text)]

    assert search("06 24 00 44 12") == [owner.pk]
    assert search("06 24 00") == [owner.pk], "the start of a number"
    assert search("+33 6 24 00 44 12") == [owner.pk]


def test_an_email_address_is_found_whole_or_in_part(alice):
    thread = customer_thread(CustomerFactory(dedicated_advisor=alice))
    ContactPointFactory(customer=thread.customer, kind="email", address="agathe.roux@example.org")
    customer_thread(CustomerFactory(dedicated_advisor=alice))

    def search(text):
        return [thread.pk for thread in thread_list_for_advisor(advisor=alice, search=text)]

    assert search("Agathe.Roux@example.org") == [thread.pk]
    assert search("roux@example") == [thread.pk]


@pytest.mark.parametrize("count", [5, 50])
def test_thread_list_query_count_does_not_grow_with_threads(alice, bob, agency, count, django_assert_num_queries):
    """Listing an inbox takes 2 queries (covered colleagues, threads with customer, prospect and
    handler), for 5 threads as for 50."""
    for index in range(count):
        customer = CustomerFactory(dedicated_advisor=alice)
        customer_thread(customer, handler=bob if index % 2 else alice)
    with django_assert_num_queries(2):
        rows = [
            (thread.customer.full_name, thread.handler.user.get_username(), thread.prospect)
            for thread in thread_list_for_advisor(advisor=alice, tab=InboxTab.MINE)
        ]
    assert len(rows) == count


def _event(thread, **fields) -> Event:
    return Event.objects.create(type=Event.Type.MESSAGE_CREATED, thread=thread, agency=thread.agency, **fields)


@pytest.mark.django_db(transaction=True)
def test_events_from_a_position_are_those_of_transactions_at_or_past_it(alice, camille):
    """Every visible event of a transaction at or past the position (a horizon read earlier),
    however old its date says it is; none from before it."""
    thread = customer_thread(camille, handler=alice)
    _event(thread)
    position = horizon()
    late = _event(thread, created_at=timezone.now() - timedelta(hours=1))
    after = _event(thread)
    events = events_visible_from(advisor=alice, position=position, limit=10)
    assert [event.pk for event in events] == [late.pk, after.pk]


def test_events_from_only_for_threads_visible_now(alice, bob, camille, dora):
    """Another advisor's thread and thread-less events are not replayed."""
    mine = customer_thread(camille, handler=alice)
    theirs = customer_thread(dora, handler=bob)
    own = _event(mine)
    _event(theirs)
    Event.objects.create(type=Event.Type.CUSTOMER_REASSIGNED, thread=None, agency=mine.agency)

    events = events_visible_from(advisor=alice, position=0, limit=10)
    assert [event.pk for event in events] == [own.pk]


def test_events_from_replay_a_transfer_away(alice, bob, camille):
    """A thread transferred away from the advisor replays its transfer, so the inbox can drop it."""
    thread = customer_thread(CustomerFactory(dedicated_advisor=bob), handler=bob)
    transfer = Event.objects.create(
        type=Event.Type.THREAD_ASSIGNED,
        thread=thread,
        agency=thread.agency,
        payload={"previous_handler": alice.pk, "handler": bob.pk},
    )
    assert transfer in events_visible_from(advisor=alice, position=0, limit=10)
