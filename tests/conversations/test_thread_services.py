import pytest
from django.core.exceptions import ValidationError

from conversations.models import Message, Note, Thread
from conversations.services import (
    message_send,
    note_add,
    prospect_link_to_customer,
    thread_claim,
    thread_mark_read,
    thread_set_status,
    thread_transfer,
)
from conversations.services.customers import contact_point_confirm
from crm.models import ContactPoint
from events.models import Event
from tests import twilio
from tests.factories import AdvisorFactory, AgencyFactory, CustomerFactory, add_deputy

pytestmark = pytest.mark.django_db


def receive(body="Bonjour", sender="+33612345678") -> Thread:
    params = twilio.whatsapp_text(body=body, sender=sender)
    twilio.receive(params)
    return Message.objects.get(provider_message_id=params["MessageSid"]).thread


def test_claim_from_the_pool(camille, alice, bob):
    """An advisor of the agency takes a pooled thread; the reason says who claimed it."""
    alice.availability = "away"
    alice.save()
    thread = receive()
    assert thread.handler is None
    thread = thread_claim(thread=thread, advisor=bob)
    thread.refresh_from_db()
    assert thread.handler == bob
    assert str(thread.routing_reason) == "claimed from the pool by bob"
    assert Event.objects.filter(type="thread.assigned", payload__handler=bob.pk).exists()


def test_dedicated_advisor_claims_back_from_a_deputy(camille, alice, bob):
    """Back from absence, the dedicated advisor can take the thread back at once."""
    add_deputy(alice, bob)
    alice.availability = "away"
    alice.save()
    thread = receive()
    assert thread.handler == bob
    alice.availability = "available"
    alice.save()
    thread_claim(thread=thread, advisor=alice)
    thread.refresh_from_db()
    assert (thread.handler, str(thread.routing_reason)) == (alice, "dedicated advisor")
    assigned = Event.objects.filter(type="thread.assigned").latest("id")
    assert assigned.payload["previous_handler"] == bob.pk


def test_claiming_a_thread_someone_handles_is_refused(camille, alice, bob):
    """A colleague cannot grab a handled thread; the error says who has it."""
    thread = receive()
    with pytest.raises(ValidationError) as error:
        thread_claim(thread=thread, advisor=bob)
    assert "Alice Durand is handling this conversation" in error.value.messages[0]


def test_claim_from_another_agency_is_refused(camille, alice):
    """An advisor of another agency cannot claim."""
    alice.availability = "away"
    alice.save()
    thread = receive()
    outsider = AdvisorFactory(agency=AgencyFactory())
    with pytest.raises(ValidationError):
        thread_claim(thread=thread, advisor=outsider)


def test_transfer_needs_a_reason_and_a_colleague_of_the_agency(camille, alice, bob):
    """Transfer records who and why; no reason or another agency is refused."""
    thread = receive()
    with pytest.raises(ValidationError):
        thread_transfer(thread=thread, by=alice, to=bob, reason=" ")
    with pytest.raises(ValidationError):
        thread_transfer(thread=thread, by=alice, to=AdvisorFactory(agency=AgencyFactory()), reason="x")
    thread_transfer(thread=thread, by=alice, to=bob, reason="Question de crédit immobilier")
    thread.refresh_from_db()
    assert thread.handler == bob
    assert str(thread.routing_reason) == "transferred by alice: Question de crédit immobilier"


def test_close_and_reopen(camille, alice):
    """Closing clears the waiting clock; reopening publishes the change."""
    thread = receive()
    thread_set_status(thread=thread, by=alice, status="closed")
    thread.refresh_from_db()
    assert (thread.status, thread.waiting_since) == ("closed", None)
    thread_set_status(thread=thread, by=alice, status="open")
    thread.refresh_from_db()
    assert thread.status == "open"
    assert Event.objects.filter(type="thread.updated", payload__change="status").count() == 2
    with pytest.raises(ValidationError):
        thread_set_status(thread=thread, by=alice, status="archived")


def test_mark_read(camille, alice):
    """Reading a thread resets its unread count once."""
    receive()
    thread = receive("Encore")
    assert thread.unread_count == 2
    thread_mark_read(thread=thread, by=alice)
    thread_mark_read(thread=thread, by=alice)
    thread.refresh_from_db()
    assert thread.unread_count == 0
    assert Event.objects.filter(type="thread.updated", payload__change="read").count() == 1


def test_note_is_stored_and_published_but_never_a_message(camille, alice):
    """A note is internal: stored, evented, not a message."""
    thread = receive()
    note = note_add(thread=thread, author=alice, body="  Client fragile, rappeler avant 18h  ")
    assert note.body == "Client fragile, rappeler avant 18h"
    assert Message.objects.filter(thread=thread).count() == 1
    assert Event.objects.get(type="note.created").payload["note"]["author_name"] == "Alice Durand"
    with pytest.raises(ValidationError):
        note_add(thread=thread, author=alice, body="   ")
    with pytest.raises(ValidationError):
        note_add(thread=thread, author=alice, body="x" * 5001)


def test_linking_a_prospect_moves_its_thread_to_the_customer(agency, alice):
    """An unknown number linked to a customer without a thread: the thread becomes theirs."""
    prospect_thread = receive("Bonjour, je suis cliente chez vous", sender="+33699887766")
    customer = CustomerFactory(dedicated_advisor=alice, agency=agency, first_name="Léa", last_name="Roux")

    thread = prospect_link_to_customer(thread=prospect_thread, customer=customer, by=alice)
    assert thread.pk == prospect_thread.pk
    assert (thread.customer, thread.prospect, thread.handler) == (customer, None, alice)
    assert thread.dedicated_advisor == alice
    assert ContactPoint.objects.get(address="+33699887766").customer == customer
    assert str(thread.routing_reason).startswith("linked to customer ")
    # The next message from that number lands with the customer.
    assert receive("Merci", sender="+33699887766").pk == thread.pk


def test_linking_a_prospect_merges_into_the_customers_existing_thread(camille, alice):
    """When the customer already has a thread, the prospect's history moves into it."""
    customer_thread = receive("Depuis mon numéro habituel")
    prospect_thread = receive("Depuis mon nouveau numéro", sender="+33699887766")
    note_add(thread=prospect_thread, author=alice, body="Nouveau numéro ?")

    thread = prospect_link_to_customer(thread=prospect_thread, customer=camille, by=alice)
    assert thread.pk == customer_thread.pk
    assert not Thread.objects.filter(pk=prospect_thread.pk).exists()
    assert sorted(thread.messages.values_list("body", flat=True)) == [
        "Depuis mon nouveau numéro",
        "Depuis mon numéro habituel",
    ]
    assert Note.objects.get().thread == thread
    assert thread.unread_count == 2
    assert ContactPoint.objects.get(address="+33699887766").customer == camille


def test_linking_a_customer_thread_is_refused(camille, alice):
    """Only a prospect's thread can be linked."""
    thread = receive()
    with pytest.raises(ValidationError):
        prospect_link_to_customer(thread=thread, customer=camille, by=alice)


def test_linking_is_refused_to_an_advisor_who_does_not_see_the_customer(camille, bob):
    """Bob (same agency, not covering Alice) cannot make a pool number Camille's."""
    prospect_thread = receive("C'est Camille", sender="+33699887766")
    with pytest.raises(ValidationError) as refused:
        prospect_link_to_customer(thread=prospect_thread, customer=camille, by=bob)
    assert refused.value.code == "customer_unknown"
    assert ContactPoint.objects.get(address="+33699887766").customer_id is None
    assert Thread.objects.get(pk=prospect_thread.pk).prospect_id is not None


def test_a_linked_number_that_keeps_writing_never_becomes_the_reply_address(camille, alice):
    """After linking, the stranger's number writes again (so it is the one "last written from"
    on WhatsApp): the dedicated advisor's reply still goes to Camille's own WhatsApp number."""
    receive("Depuis mon numéro habituel")
    prospect_thread = receive("C'est Camille", sender="+33699887766")
    thread = prospect_link_to_customer(thread=prospect_thread, customer=camille, by=alice)
    assert receive("Répondez-moi ici", sender="+33699887766").pk == thread.pk
    reply = message_send(thread=thread, author=alice, body="Bonjour Camille")
    assert (reply.channel, reply.contact_point.address) == ("whatsapp", "+33612345678")

    linked = ContactPoint.objects.get(address="+33699887766")
    with pytest.raises(ValidationError) as refused:
        contact_point_confirm(contact_point=linked, by=AdvisorFactory(agency=alice.agency))
    assert refused.value.code == "not_dedicated_advisor"
    assert contact_point_confirm(contact_point=linked, by=alice) is True
    assert contact_point_confirm(contact_point=linked, by=alice) is False
    reply = message_send(thread=thread, author=alice, body="Bien reçu")
    assert reply.contact_point_id == linked.pk
