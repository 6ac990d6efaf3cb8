import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from conversations.models import Message, Thread
from crm.models import AdvisorAssignment, ContactPoint, Customer
from crm.services import contact_point_create, customer_create, customer_create_with_contact_points
from tests.concurrency import run_at_once

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
    thread = Thread.objects.create(customer=camille, dedicated_advisor=camille.dedicated_advisor, agency=camille.agency)
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
    Thread.objects.create(customer=camille, dedicated_advisor=camille.dedicated_advisor, agency=camille.agency)
    with pytest.raises(IntegrityError), transaction.atomic():
        Thread.objects.create(customer=camille, dedicated_advisor=camille.dedicated_advisor, agency=camille.agency)


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


def create(agency, advisor, number: str, contact_points=()):
    return customer_create_with_contact_points(
        customer_number=number,
        first_name="Inès",
        last_name="Moreau",
        agency=agency,
        advisor=advisor,
        contact_points=list(contact_points),
        created_by=None,
        source="test",
    )


def assert_number_taken(error: ValidationError, number: str) -> None:
    [field_error] = error.error_dict["customer_number"]
    assert field_error.code == "customer_number_taken"
    assert field_error.messages == [f"Customer number {number} is already taken."]


def test_a_taken_customer_number_is_refused_with_its_code(agency, alice):
    """A second customer with a number already taken (whatever the spaces around it) is
    refused on the field, `customer_number_taken`; nothing of it is stored."""
    create(agency, alice, "FR777")
    with pytest.raises(ValidationError) as error:
        create(agency, alice, " FR777 ", contact_points=[{"kind": "sms", "address": "+33781223344"}])
    assert_number_taken(error.value, "FR777")
    assert Customer.objects.filter(customer_number="FR777").count() == 1
    assert AdvisorAssignment.objects.count() == 1
    assert not ContactPoint.objects.filter(address="+33781223344").exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_concurrent_creations_of_one_number_make_one_customer(agency, alice):
    """Two creations of the same number at the same instant (two API calls): the database's
    constraint lets one through and the other gets the field error, never an IntegrityError."""
    outcomes = run_at_once([lambda: create(agency, alice, "FR888")] * 2)

    created = [outcome for outcome in outcomes if isinstance(outcome, Customer)]
    refused = [outcome for outcome in outcomes if isinstance(outcome, ValidationError)]
    assert (len(created), len(refused)) == (1, 1), outcomes
    assert_number_taken(refused[0], "FR888")
    assert list(Customer.objects.filter(customer_number="FR888")) == created
    assert AdvisorAssignment.objects.filter(customer__customer_number="FR888").count() == 1


def test_only_one_current_assignment_is_enforced_by_the_database(camille, alice, bob):
    """Two open assignment periods for one customer are refused by the database."""
    AdvisorAssignment.objects.create(customer=camille, advisor=alice, reason="a")
    with pytest.raises(IntegrityError), transaction.atomic():
        AdvisorAssignment.objects.create(customer=camille, advisor=bob, reason="b")
