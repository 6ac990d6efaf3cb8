import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from conversations.models import Message, Thread
from crm.models import AdvisorAssignment, ContactPoint
from crm.services import contact_point_create, contact_point_set_consent, customer_create, customer_reassign
from events.models import Event
from tests.factories import AdvisorFactory

pytestmark = pytest.mark.django_db


def test_contact_point_is_stored_normalised(camille):
    """A contact point is stored in E.164 with its consent history started."""
    contact = contact_point_create(customer=camille, kind="sms", address="07 81 22 33 44", source="agency form")
    assert contact.address == "+33781223344"
    assert contact.consent == "opted_in"
    assert contact.consent_changed_at is not None
    assert contact.consent_source == "agency form"


def test_bad_contact_point_is_refused_and_nothing_stored(camille):
    """A bad number is a field error; nothing is stored."""
    before = ContactPoint.objects.count()
    with pytest.raises(ValidationError) as error:
        contact_point_create(customer=camille, kind="whatsapp", address="06 12")
    assert "address" in error.value.message_dict
    assert ContactPoint.objects.count() == before


def test_unknown_channel_is_refused(camille):
    """An unknown channel kind is refused."""
    with pytest.raises(ValidationError) as error:
        contact_point_create(customer=camille, kind="fax", address="+33612345678")
    assert "kind" in error.value.message_dict


def test_same_address_twice_on_a_channel_is_refused_clearly(camille):
    """A number already registered on a channel is refused with a clear message, whatever its spelling."""
    with pytest.raises(ValidationError) as error:
        contact_point_create(customer=camille, kind="whatsapp", address="06 12 34 56 78")
    assert error.value.message_dict["address"] == ["+33612345678 is already registered on WhatsApp."]


def test_contact_point_uniqueness_is_enforced_by_the_database(camille):
    """The database itself refuses a second (kind, address), whatever the Python code does."""
    with pytest.raises(IntegrityError), transaction.atomic():
        ContactPoint.objects.create(customer=None, kind="whatsapp", address="+33612345678")


def test_same_number_on_two_channels_is_allowed(camille):
    """WhatsApp and SMS on the same number are two contact points."""
    assert camille.contact_points.filter(address="+33612345678").count() == 2


def test_provider_message_id_uniqueness_is_enforced_by_the_database(camille):
    """The same provider message id can never be stored twice (database constraint)."""
    thread = Thread.objects.create(customer=camille, agency=camille.agency)
    contact = camille.contact_points.get(kind="whatsapp")
    fields = dict(thread=thread, direction="inbound", channel="whatsapp", contact_point=contact, status="received")
    Message.objects.create(provider="twilio", provider_message_id="SM1", **fields)
    with pytest.raises(IntegrityError), transaction.atomic():
        Message.objects.create(provider="twilio", provider_message_id="SM1", **fields)
    # Outbound messages without an id yet never collide (NULLs are distinct).
    Message.objects.create(
        provider="twilio", provider_message_id=None, **{**fields, "status": "queued", "direction": "outbound"}
    )
    Message.objects.create(
        provider="twilio", provider_message_id=None, **{**fields, "status": "queued", "direction": "outbound"}
    )


def test_one_thread_per_customer_is_enforced_by_the_database(camille):
    """A customer has one thread; the database refuses a second."""
    Thread.objects.create(customer=camille, agency=camille.agency)
    with pytest.raises(IntegrityError), transaction.atomic():
        Thread.objects.create(customer=camille, agency=camille.agency)


def test_customer_create_opens_the_assignment_history(agency, alice, sam):
    """Creating a customer writes their first assignment."""
    customer = customer_create(
        customer_number="FR12345678",
        first_name="Inès",
        last_name="Moreau",
        agency=agency,
        advisor=alice,
        created_by=sam.user,
        reason="Ouverture de compte",
    )
    assignment = AdvisorAssignment.objects.get(customer=customer)
    assert (assignment.advisor, assignment.ended_at, assignment.reason, assignment.changed_by) == (
        alice,
        None,
        "Ouverture de compte",
        sam.user,
    )


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


def test_only_one_current_assignment_is_enforced_by_the_database(camille, alice, bob):
    """Two open assignment periods for one customer are refused by the database."""
    AdvisorAssignment.objects.create(customer=camille, advisor=alice, reason="a")
    with pytest.raises(IntegrityError), transaction.atomic():
        AdvisorAssignment.objects.create(customer=camille, advisor=bob, reason="b")


def test_thread_follows_the_customer_to_the_new_advisor(camille, alice, bob, sam):
    """A thread the previous advisor handled moves to the new one, with an event."""
    thread = Thread.objects.create(customer=camille, agency=camille.agency, handler=alice)
    customer_reassign(customer=camille, advisor=bob, reason="Mutation", changed_by=sam.user)
    thread.refresh_from_db()
    assert thread.handler == bob
    assert thread.routing_reason == "reassigned: Mutation"
    event = Event.objects.get(type="customer.reassigned")
    assert (event.payload["previous_advisor"], event.payload["advisor"]) == (alice.pk, bob.pk)


def test_consent_change_is_recorded_once(camille):
    """Opting out records when and how; doing it again changes nothing."""
    contact = camille.contact_points.get(kind="sms")
    assert contact_point_set_consent(contact_point=contact, consent="opted_out", source="phone call") is True
    assert contact_point_set_consent(contact_point=contact, consent="opted_out", source="again") is False
    contact.refresh_from_db()
    assert (contact.consent, contact.consent_source) == ("opted_out", "phone call")
