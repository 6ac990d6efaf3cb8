"""The triage menu end to end, in a real browser: Camille writes from the simulator's phone
while the agency is closed; the menu goes out through the Content API (created in the
simulator, sent by ContentSid) and shows as buttons; she taps one; the tap comes back as
Twilio reports it, tags the thread, and the acknowledgement reaches her phone."""

from datetime import datetime, time
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from conversations.models import InteractiveContent, Message, Thread, TriageState, TriageTopic
from crm.models import Agency, OpeningHours
from tests.queue import run_queued_tasks
from tests.servers import CAMILLE, wait_for

pytestmark = pytest.mark.django_db(transaction=True)

# Wednesday 2 December 2026, 20:00 in Paris: after closing time.
EVENING = datetime(2026, 12, 2, 20, 0, tzinfo=ZoneInfo("Europe/Paris"))


@pytest.fixture
def closed_agency(agency, monkeypatch):
    for weekday in range(5):
        OpeningHours.objects.create(agency=agency, weekday=weekday, opens_at=time(9), closes_at=time(18))
    agency.triage_mode = Agency.TriageMode.UNKNOWN_AND_CLOSED
    agency.emergency_card_number = "09 69 39 77 77"
    agency.save()
    topics = [
        TriageTopic.objects.create(
            agency=agency, position=0, label_fr="Carte perdue/volée", label_en="Lost card", urgent=True
        ),
        TriageTopic.objects.create(agency=agency, position=1, label_fr="Mon crédit", label_en="My loan"),
    ]
    # The server thread reads the same clock (one process): the evening, whatever the hour,
    # moving on as time does (the task queue runs what is due before now).
    started = timezone.now()
    real_now = timezone.now
    monkeypatch.setattr(timezone, "now", lambda: EVENING + (real_now() - started))
    return topics


def test_camille_taps_a_menu_button_on_the_simulated_phone(
    live_server_url, simulator, closed_agency, alice, camille, browser, orm_beside_browser
):
    from playwright.sync_api import expect

    loan = closed_agency[1]
    context = browser.new_context(viewport={"width": 900, "height": 900}, locale="fr-FR")
    page = context.new_page()
    problems = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(simulator.url + "/")
    expect(page.locator("#contact-number")).to_have_text(CAMILLE)
    page.locator("#body").fill("Bonjour, j'ai une question")
    page.locator("#composer button[type=submit]").click()

    thread = wait_for(lambda: Thread.objects.filter(customer=camille, triage_state=TriageState.ASKED).first())
    assert thread is not None
    assert run_queued_tasks() >= 1
    [sent] = simulator.log
    # Sent as the content the Content API made, not as text.
    assert sent["content_sid"] == InteractiveContent.objects.get().content_sid and sent["body"] == ""
    assert InteractiveContent.objects.get().kind == "twilio/quick-reply"

    buttons = page.locator("#conversation .choice")
    expect(buttons).to_have_count(2, timeout=5000)
    expect(buttons.nth(0)).to_have_text("Carte perdue/volée")
    buttons.nth(1).click()

    chosen = wait_for(lambda: Thread.objects.filter(pk=thread.pk, topic=loan).first())
    assert chosen is not None and chosen.triage_state == TriageState.CHOSEN
    tap = Message.objects.filter(thread=thread, direction="inbound").order_by("-pk").first()
    assert (tap.button_payload, tap.button_text) == (f"topic:{loan.pk}", "Mon crédit")
    assert run_queued_tasks() >= 1
    expect(page.locator("#conversation li.theirs").last).to_contain_text(
        "Merci : « Mon crédit ». Alice Durand vous répondra.", timeout=5000
    )
    assert problems == []


def test_an_urgent_choice_alerts_the_advisor_on_duty_at_once(
    live_server_url, closed_agency, camille, browser, orm_beside_browser
):
    """Dan, on duty at the call centre with his inbox open, sees the alert the moment
    Camille chooses the lost card: a banner linking to the conversation, no reload."""
    from playwright.sync_api import expect

    from tests.e2e.test_inbox_e2e import PASSWORD, post_whatsapp, sign_in
    from tests.factories import AdvisorFactory, AgencyFactory

    centre = AgencyFactory(name="Centre de relation client", code="centre", kind=Agency.Kind.ONLINE)
    agency = closed_agency[0].agency
    agency.urgent_pool = centre
    agency.save()
    dan = AdvisorFactory(agency=centre, user__username="dan", user__first_name="Dan")
    dan.user.set_password(PASSWORD)
    dan.user.save()

    post_whatsapp(live_server_url, "Bonjour")
    thread = Thread.objects.get(customer=camille)
    assert thread.triage_state == TriageState.ASKED
    page, problems = sign_in(browser, live_server_url, "dan")
    post_whatsapp(live_server_url, "1")

    alert = page.locator("#urgent-alerts .urgent-alert")
    expect(alert).to_have_count(1, timeout=5000)
    expect(alert).to_contain_text("Urgent")
    assert alert.get_attribute("href") == f"/inbox/threads/{thread.pk}/"
    # It opens the conversation, there marked urgent, with its topic.
    alert.click()
    page.wait_for_url(f"{live_server_url}/inbox/threads/{thread.pk}/")
    expect(page.locator("#thread-header .tag-urgent")).to_have_text("Urgent")
    expect(page.locator("#thread-header")).to_contain_text("Lost card")
    assert problems == []
