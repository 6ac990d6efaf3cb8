from datetime import timedelta

import pytest
from django.utils import timezone, translation

from conversations.models import Thread
from crm.models import ContactPoint
from crm.services import customer_create
from tests import twilio
from tests.factories import AdvisorFactory, AgencyFactory, add_deputy

pytestmark = pytest.mark.django_db


def send(body="Bonjour", sender="+33612345678"):
    """A WhatsApp message through the inbound service, which routes it; its thread."""
    params = twilio.whatsapp_text(body=body, sender=sender)
    twilio.receive(params)
    return Thread.objects.select_related("handler__user").get(messages__provider_message_id=params["MessageSid"])


@pytest.fixture
def chloe(agency):
    return AdvisorFactory(user__username="chloe", agency=agency)


def test_dedicated_advisor_handles_when_available(camille, alice):
    """Routing rule 1: the dedicated advisor, when available."""
    thread = send()
    assert thread.handler == alice
    assert str(thread.routing_reason) == "dedicated advisor"


def test_first_available_deputy_when_dedicated_is_out_of_office(camille, alice, bob, chloe):
    """Out of office: the first available deputy in order handles it, and the reason says why."""
    add_deputy(alice, bob, position=0)
    add_deputy(alice, chloe, position=1)
    now = timezone.now()
    alice.out_of_office_from = now - timedelta(days=1)
    alice.out_of_office_until = timezone.make_aware(timezone.datetime(2026, 12, 1, 9, 0)) + timedelta(days=3650)
    alice.save()

    thread = send()
    assert thread.handler == bob
    assert str(thread.routing_reason).startswith("deputy of alice: out of office until ")
    thread.customer.refresh_from_db()
    assert thread.customer.dedicated_advisor == alice  # the dedicated advisor stays


def test_deputy_order_skips_absent_deputies(camille, alice, bob, chloe):
    """An absent first deputy is skipped for the next one."""
    add_deputy(alice, bob, position=0)
    add_deputy(alice, chloe, position=1)
    alice.availability = "away"
    alice.save()
    bob.is_active = False
    bob.save()

    thread = send()
    assert thread.handler == chloe
    assert str(thread.routing_reason) == "deputy of alice: away"


def test_pool_when_no_deputy_is_available(camille, alice, bob):
    """No deputy present: the thread goes to the agency pool (no handler)."""
    add_deputy(alice, bob)
    alice.is_active = False
    alice.save()
    bob.availability = "away"
    bob.save()

    thread = send()
    assert thread.handler is None
    assert thread.agency == alice.agency
    assert str(thread.routing_reason) == "pool: no deputy available (alice: inactive)"


def test_thread_returns_to_dedicated_advisor_at_next_message_after_return(camille, alice, bob):
    """Back from absence, the dedicated advisor takes the thread at the next inbound message."""
    add_deputy(alice, bob)
    alice.availability = "away"
    alice.save()
    assert send("Premier").handler == bob

    assert send("Toujours absente ?").handler == bob  # still away: the deputy keeps it

    alice.availability = "available"
    alice.save()
    thread = send("Vous êtes revenue ?")
    assert thread.handler == alice
    assert str(thread.routing_reason) == "dedicated advisor"
    assert list(thread.events.filter(type="thread.assigned").values_list("payload__handler", flat=True)) == [
        bob.pk,
        alice.pk,
    ]


def test_unknown_number_creates_prospect_in_default_agency_pool(agency, settings):
    """An unknown number creates a prospect contact and a pooled thread in the default agency."""
    other = AgencyFactory(code="en-ligne", name="Centre en ligne")
    settings.ATTITRE_DEFAULT_AGENCY_CODE = "en-ligne"

    thread = send("Bonjour, je voudrais ouvrir un compte", sender="+33699887766")
    prospect = ContactPoint.objects.get(address="+33699887766")
    assert prospect.customer is None
    assert prospect.kind == "whatsapp"
    assert prospect.display_name == "Camille"
    assert thread.prospect == prospect
    assert thread.customer is None
    assert thread.agency == other
    assert thread.handler is None
    assert str(thread.routing_reason) == "unknown number"


def test_unknown_number_without_default_agency_setting_uses_first_agency(agency):
    """With no ATTITRE_DEFAULT_AGENCY_CODE, the first agency's pool takes unknown numbers."""
    thread = send(sender="+33699887766")
    assert thread.agency == agency


def test_a_second_message_from_a_prospect_reuses_its_thread(agency):
    """A prospect writing twice stays in one thread."""
    send("Un", sender="+33699887766")
    send("Deux", sender="+33699887766")
    assert Thread.objects.count() == 1
    assert Thread.objects.get().unread_count == 2


def test_customer_without_dedicated_advisor_goes_to_pool(agency):
    """A customer with no dedicated advisor lands in their agency's pool."""
    customer = customer_create(
        customer_number="FR00000099", first_name="Léa", last_name="Roux", agency=agency, advisor=None
    )
    ContactPoint.objects.create(customer=customer, kind="whatsapp", address="+33611112222")
    thread = send(sender="+33611112222")
    assert thread.handler is None
    assert str(thread.routing_reason) == "pool: the customer has no dedicated advisor"


def test_out_of_office_period_in_the_past_or_future_does_not_count(camille, alice, bob):
    """Only a current out-of-office period makes the advisor absent."""
    add_deputy(alice, bob)
    alice.out_of_office_from = timezone.now() + timedelta(days=2)
    alice.out_of_office_until = timezone.now() + timedelta(days=5)
    alice.save()
    assert send().handler == alice


def test_the_reason_is_written_in_the_readers_language(camille, alice, bob):
    """The decision is stored, not its sentence: routed while English is active, read in French."""
    add_deputy(alice, bob)
    alice.availability = "away"
    alice.save()
    thread = send()
    with translation.override("fr"):
        assert str(Thread.objects.get(pk=thread.pk).routing_reason) == "suppléant de alice : indisponible"
    assert str(thread.routing_reason) == "deputy of alice: away"


def test_the_same_decision_taken_in_another_language_does_not_reroute(camille, alice):
    """Routing compares decisions, not their translated sentences: a message handled while
    French is active leaves an unchanged routing (and its time) alone."""
    first = send("Un")
    with translation.override("fr"):
        second = send("Deux")
    assert second.handler == alice
    assert second.routed_at == first.routed_at
