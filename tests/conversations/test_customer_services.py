import pytest
from django.core.exceptions import ValidationError

from conversations.models import Thread
from conversations.selectors import thread_list_for_advisor
from conversations.services.customers import contact_point_set_consent, customer_reassign
from crm.models import AdvisorAssignment
from crm.services import customer_create
from events.models import Event
from tests.factories import AdvisorFactory

pytestmark = pytest.mark.django_db


def test_reassign_writes_history_and_moves_the_customer(agency, alice, bob, sam):
    """Reassigning closes the current period and opens a new one with reason and author."""
    customer = customer_create(customer_number="FR1", first_name="A", last_name="B", agency=agency, advisor=alice)
    assignment = customer_reassign(customer=customer, advisor=bob, reason="Alice change d'agence", changed_by=sam.user)

    customer.refresh_from_db()
    assert customer.dedicated_advisor == bob
    history = list(AdvisorAssignment.objects.filter(customer=customer).order_by("started_at", "id"))
    assert [h.advisor for h in history] == [alice, bob]
    assert history[0].ended_at == assignment.started_at
    assert history[1] == assignment
    assert (assignment.ended_at, assignment.reason, assignment.changed_by) == (None, "Alice change d'agence", sam.user)


def test_reassign_to_the_same_advisor_changes_nothing(camille, alice, sam):
    """Reassigning to the current advisor writes no history."""
    AdvisorAssignment.objects.create(customer=camille, advisor=alice, reason="initial")
    assert customer_reassign(customer=camille, advisor=alice, reason="no-op", changed_by=sam.user) is None
    assert AdvisorAssignment.objects.filter(customer=camille).count() == 1


def test_reassign_needs_a_reason(camille, bob, sam):
    """A reassignment without a reason is refused."""
    with pytest.raises(ValidationError):
        customer_reassign(customer=camille, advisor=bob, reason="  ", changed_by=sam.user)


def test_reassign_to_an_inactive_advisor_is_refused(camille, agency, sam):
    """An inactive advisor cannot take customers."""
    gone = AdvisorFactory(agency=agency, is_active=False)
    with pytest.raises(ValidationError):
        customer_reassign(customer=camille, advisor=gone, reason="test", changed_by=sam.user)


def test_thread_follows_the_customer_to_the_new_advisor(camille, alice, bob, sam):
    """A thread the previous advisor handled moves to the new one, with an event."""
    thread = Thread.objects.create(
        customer=camille, dedicated_advisor=camille.dedicated_advisor, agency=camille.agency, handler=alice
    )
    customer_reassign(customer=camille, advisor=bob, reason="Mutation", changed_by=sam.user)
    thread.refresh_from_db()
    assert thread.handler == bob
    assert thread.dedicated_advisor == bob
    assert str(thread.routing_reason) == "reassigned: Mutation"
    event = Event.objects.get(type="customer.reassigned")
    assert (event.payload["previous_advisor"], event.payload["advisor"]) == (alice.pk, bob.pk)


def test_a_thread_someone_else_handles_still_changes_dedicated_advisor(camille, alice, bob, sam):
    """The thread keeps its handler but leaves the previous advisor's inbox for the new one's."""
    thread = Thread.objects.create(customer=camille, dedicated_advisor=alice, agency=camille.agency, handler=sam)
    customer_reassign(customer=camille, advisor=bob, reason="Mutation", changed_by=sam.user)
    thread.refresh_from_db()
    assert (thread.handler, thread.dedicated_advisor) == (sam, bob)
    assert thread_list_for_advisor(advisor=alice).count() == 0
    assert list(thread_list_for_advisor(advisor=bob)) == [thread]


def test_consent_change_is_recorded_once(camille):
    """Opting out records when and how; doing it again changes nothing."""
    contact = camille.contact_points.get(kind="sms")
    assert contact_point_set_consent(contact_point=contact, consent="opted_out", source="phone call") is True
    assert contact_point_set_consent(contact_point=contact, consent="opted_out", source="again") is False
    contact.refresh_from_db()
    assert (contact.consent, contact.consent_source) == ("opted_out", "phone call")
