"""Which thread an inbound email lands in: the signed reply token among its recipients,
then In-Reply-To/References, then the sender's address; even when that address is
another customer's. A customer's second address is offered to their advisor to add."""

import pytest

from conversations.models import Message, Thread
from conversations.services import message_deliver, message_send
from crm.models import ContactPoint
from tests.email import fixture, mailgun_inbound
from tests.factories import ContactPointFactory, CustomerFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("anymail_settings")]
CAMILLE_EMAIL = "camille.martin@gmail.com"
DORA_EMAIL = "dora.petit@example.fr"


@pytest.fixture
def camille_email(camille):
    return ContactPointFactory(customer=camille, kind="email", address=CAMILLE_EMAIL)


@pytest.fixture
def dora_email(bob):
    """Another customer of the bank, bob's, known by her email address, with her own thread."""
    dora = CustomerFactory(first_name="Dora", last_name="Petit", dedicated_advisor=bob, agency=bob.agency)
    point = ContactPointFactory(customer=dora, kind="email", address=DORA_EMAIL)
    Thread.objects.create(customer=dora, agency=dora.agency, dedicated_advisor=bob, handler=bob)
    return point


def _camille_writes_and_alice_answers(client, alice, smtp_server):
    assert mailgun_inbound(client, fixture("attachments.eml")).status_code == 200
    thread = Message.objects.get(provider="email").thread
    reply = message_send(thread=thread, author=alice, body="Bien reçu, merci Camille.")
    message_deliver(message_id=reply.pk)
    reply.refresh_from_db()
    return thread, reply


def _dora_answers(reply, *, by: str) -> tuple[bytes, str]:
    """Dora answers alice's email to Camille (it was forwarded to her), from her own address:
    `by` "token" (to the Reply-To, with no References) or "references" (to our plain address)."""
    headers = reply.email
    to = headers.reply_to if by == "token" else "conseiller@attitre.example"
    previous = headers.header_message_id if by == "references" else "unrelated@elsewhere.example"
    raw = fixture("gmail_reply_fr.eml", PREVIOUS_ID=previous, TO_ADDRESS=to).replace(
        b"Camille.Martin@GMAIL.com", DORA_EMAIL.encode()
    )
    return raw, to


@pytest.mark.parametrize("by", ["token", "references"])
def test_the_token_or_references_win_over_another_customers_address(
    client, camille_email, dora_email, alice, bob, smtp_server, by
):
    """Dora, another customer (bob's), answers with the token (or References) of Camille's
    thread: the email lands in Camille's thread, routed to Camille's advisor, from Dora's
    address, which stays Dora's; Dora's own thread is untouched; the timeline says the
    address is not Camille's; the next reply still goes to Camille only."""
    thread, reply = _camille_writes_and_alice_answers(client, alice, smtp_server)
    dora_thread = Thread.objects.get(customer=dora_email.customer)
    raw, to = _dora_answers(reply, by=by)

    assert mailgun_inbound(client, raw, recipient=to).status_code == 200

    answer = Message.objects.get(provider="email", direction="inbound", email__header_message_id__startswith="CAF=")
    assert (answer.thread, answer.contact_point) == (thread, dora_email)
    thread.refresh_from_db()
    assert (thread.handler, thread.last_inbound_channel) == (alice, "email")
    dora_email.refresh_from_db()
    assert dora_email.customer == dora_thread.customer
    assert not dora_thread.messages.exists()
    assert ContactPoint.objects.filter(kind="email").count() == 2
    client.force_login(alice.user)
    html = client.get(f"/inbox/threads/{thread.pk}/").content.decode()
    assert f"from {DORA_EMAIL}, which is not one of this customer's addresses" in html

    again = message_send(thread=thread, author=alice, body="Je réponds à Camille.")
    message_deliver(message_id=again.pk)
    assert smtp_server.received[-1][1] == [CAMILLE_EMAIL]


def test_without_token_or_references_a_known_address_lands_in_its_own_thread(
    client, camille_email, dora_email, alice, smtp_server
):
    """The sender's address decides last: Dora writing fresh to our address is in her thread."""
    _camille_writes_and_alice_answers(client, alice, smtp_server)
    raw = fixture(
        "gmail_reply_fr.eml", PREVIOUS_ID="unrelated@elsewhere.example", TO_ADDRESS="conseiller@attitre.example"
    )
    raw = raw.replace(b"Camille.Martin@GMAIL.com", DORA_EMAIL.encode())

    assert mailgun_inbound(client, raw).status_code == 200

    answer = Message.objects.filter(provider="email", direction="inbound").latest("pk")
    assert answer.thread.customer == dora_email.customer


def test_a_second_address_lands_in_the_thread_and_the_advisor_may_add_it(client, camille_email, alice, smtp_server):
    """Camille answers from a second address: her thread, the address hers unconfirmed and
    offered to alice on the card; added, alice's replies may go there."""
    thread, reply = _camille_writes_and_alice_answers(client, alice, smtp_server)
    raw = fixture("gmail_reply_fr.eml", PREVIOUS_ID=reply.email.header_message_id, TO_ADDRESS=reply.email.reply_to)
    raw = raw.replace(b"Camille.Martin@GMAIL.com", b"camille.perso@example.fr")

    assert mailgun_inbound(client, raw, recipient=reply.email.reply_to).status_code == 200

    second = ContactPoint.objects.get(address="camille.perso@example.fr")
    assert (second.customer, second.confirmed) == (camille_email.customer, False)
    assert Message.objects.filter(provider="email", direction="inbound").latest("pk").thread == thread
    client.force_login(alice.user)
    html = client.get(f"/inbox/threads/{thread.pk}/").content.decode()
    assert "they wrote from this address in answer to this conversation" in html
    assert "Add this address to Camille Martin's" in html

    response = client.post(f"/inbox/threads/{thread.pk}/contact-points/{second.pk}/confirm/")

    assert response.status_code in (200, 302)
    second.refresh_from_db()
    assert second.confirmed
    answer = message_send(thread=thread, author=alice, body="Noté, je vous écris ici.")
    message_deliver(message_id=answer.pk)
    assert smtp_server.received[-1][1] == ["camille.perso@example.fr"]
