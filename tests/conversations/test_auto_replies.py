"""Automatic replies and the triage menu (issue #18): which reply goes, once, in the
customer's language; never to STOP or to automatic mail; menu choices by button, number and
keyword; urgent topics to the urgent pool with an alert; a person whenever asked."""

import base64
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from django.utils import timezone

from conversations.models import AutoReplyText, Message, Thread, TriageState, TriageTopic
from conversations.services import inbound_message_receive
from conversations.services.auto_replies import agency_setups_forget, check_placeholders, default_text
from crm.models import Agency, ClosedDay, OpeningHours
from events.groups import advisor_group
from events.models import Event
from tests import twilio
from tests.factories import AdvisorFactory, AgencyFactory, add_deputy
from tests.queue import queued_funcs

pytestmark = pytest.mark.django_db

PARIS = ZoneInfo("Europe/Paris")
# Wednesday 2 December 2026: 10:00 open, 20:00 closed; Friday 25 December 2026: Christmas.
OPEN = datetime(2026, 12, 2, 10, 0, tzinfo=PARIS)
CLOSED = datetime(2026, 12, 2, 20, 0, tzinfo=PARIS)
HOLIDAY = datetime(2026, 12, 25, 10, 0, tzinfo=PARIS)
MOMENTS = {"open": OPEN, "closed": CLOSED, "holiday": HOLIDAY}
UNKNOWN = "+33699000111"


class Clock:
    """The instant `timezone.now()` answers, as the test moves it."""

    def __init__(self, at: datetime):
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **delta) -> None:
        self.at += timedelta(**delta)


@pytest.fixture
def clock(monkeypatch):
    clock = Clock(OPEN)
    monkeypatch.setattr(timezone, "now", clock)
    return clock


@pytest.fixture
def hours(agency):
    """Monday to Friday, 9:00 to 18:00, in Paris; emergency numbers set."""
    for weekday in range(5):
        OpeningHours.objects.create(agency=agency, weekday=weekday, opens_at=time(9), closes_at=time(18))
    agency.emergency_card_number, agency.emergency_fraud_number = "09 69 39 77 77", "09 69 32 00 00"
    agency.save()
    agency_setups_forget()
    return agency


@pytest.fixture
def call_centre(db):
    centre = AgencyFactory(name="Centre de relation client", code="centre", kind=Agency.Kind.ONLINE)
    return centre


@pytest.fixture
def topics(hours, call_centre):
    hours.urgent_pool = call_centre
    hours.save()
    made = [
        TriageTopic.objects.create(
            agency=hours,
            position=0,
            label_fr="Carte perdue/volée",
            label_en="Lost/stolen card",
            keywords="carte, card, volée, stolen",
            urgent=True,
        ),
        TriageTopic.objects.create(
            agency=hours, position=1, label_fr="Mon crédit", label_en="My loan", keywords="crédit, prêt, loan"
        ),
        TriageTopic.objects.create(
            agency=hours, position=2, label_fr="Autre chose", label_en="Something else", keywords="autre, other"
        ),
    ]
    agency_setups_forget()
    return made


def write(body="Bonjour", *, sender="+33612345678", channel="whatsapp", **extra):
    params = (twilio.whatsapp_text if channel == "whatsapp" else twilio.sms)(body=body, sender=sender, **extra)
    return twilio.receive(params)


def automatic(thread=None):
    messages = Message.objects.exclude(automatic="").order_by("pk")
    if thread is not None:
        messages = messages.filter(thread=thread)
    return list(messages)


def set_triage_mode(agency, mode):
    agency.triage_mode = mode
    agency.save()
    agency_setups_forget()


# --- Which reply, once ------------------------------------------------------------------


def _advisor_state(state, alice, bob, camille, clock):
    if state == "away":
        alice.out_of_office_from, alice.out_of_office_until = (
            clock.at - timedelta(days=1),
            datetime(2026, 12, 31, 9, tzinfo=PARIS),
        )
        alice.save()
    elif state == "deputy present":
        alice.out_of_office_from, alice.out_of_office_until = (
            clock.at - timedelta(days=1),
            datetime(2026, 12, 31, 9, tzinfo=PARIS),
        )
        alice.save()
        add_deputy(alice, bob)
    elif state == "none":
        camille.dedicated_advisor = None
        camille.save()
        Thread.objects.filter(customer=camille).update(dedicated_advisor=None)


# (advisor, agency, sender) → the kind of the one automatic reply ("" for none). With the menu
# off: the menu has its own tests below.
EXPECTED = {
    ("present", "open", "known"): "",
    ("present", "closed", "known"): "closed",
    ("present", "holiday", "known"): "closed",
    ("away", "open", "known"): "away",
    ("away", "closed", "known"): "closed",
    ("away", "holiday", "known"): "closed",
    ("deputy present", "open", "known"): "away",
    ("deputy present", "closed", "known"): "closed",
    ("deputy present", "holiday", "known"): "closed",
    ("none", "open", "known"): "",
    ("none", "closed", "known"): "closed",
    ("none", "holiday", "known"): "closed",
    **{(advisor, "open", "unknown"): "" for advisor in ("present", "away", "deputy present", "none")},
    **{(advisor, "closed", "unknown"): "closed" for advisor in ("present", "away", "deputy present", "none")},
    **{(advisor, "holiday", "unknown"): "closed" for advisor in ("present", "away", "deputy present", "none")},
}


@pytest.mark.parametrize("channel", ["whatsapp", "sms"])
@pytest.mark.parametrize(("advisor", "moment", "sender"), sorted(EXPECTED))
def test_which_reply_is_sent_once(advisor, moment, sender, channel, clock, hours, alice, bob, camille, settings):
    """Over advisor × agency × sender × channel: the one reply the table says, and nothing
    more for the next messages within the cooldown."""
    settings.ATTITRE_DEFAULT_AGENCY_CODE = hours.code
    clock.at = MOMENTS[moment]
    _advisor_state(advisor, alice, bob, camille, clock)
    address = UNKNOWN if sender == "unknown" else "+33612345678"

    first = write("Bonjour", sender=address, channel=channel)
    clock.advance(minutes=5)
    write("Vous êtes là ?", sender=address, channel=channel)
    clock.advance(hours=2)
    write("Toujours là ?", sender=address, channel=channel)

    replies = automatic(first.message.thread)
    expected = EXPECTED[advisor, moment, sender]
    assert [reply.automatic for reply in replies] == ([expected] if expected else [])
    for reply in replies:
        assert (reply.direction, reply.author_id, reply.channel, reply.status) == ("outbound", None, channel, "queued")
        assert reply.contact_point_id == first.message.contact_point_id
    if expected:
        assert queued_funcs().count("conversations.tasks.message_deliver") == 1
        body = replies[0].body
        if expected == "closed":
            assert "Agence Lyon Bellecour est fermée" in body
            assert "Carte perdue ou volée : 09 69 39 77 77" in body and "Fraude suspectée : 09 69 32 00 00" in body
            reopens = "jeudi 3 décembre à 09:00" if moment == "closed" else "lundi 28 décembre à 09:00"
            assert reopens in body
        if advisor in ("away", "deputy present") and sender == "known":
            assert "Alice Durand n’est pas disponible jusqu’au jeudi 31 décembre." in body
            cover = (
                "Bob Leroy (Agence Lyon Bellecour) vous répondra."
                if advisor == "deputy present"
                else "Un collègue (Agence Lyon Bellecour) vous répondra."
            )
            assert cover in body
    thread = Thread.objects.get(pk=first.message.thread_id)
    # The customer still waits for a person: an automatic reply is no answer.
    assert thread.waiting_since is not None and thread.status == Thread.Status.OPEN


def test_a_closed_day_of_the_agency_closes_it(clock, hours, alice, camille):
    """A closed day in the admin (not a public holiday) closes the agency like a holiday."""
    ClosedDay.objects.create(agency=hours, date=date(2026, 12, 2), label="Inventaire")
    agency_setups_forget()
    write()
    assert [reply.automatic for reply in automatic()] == ["closed"]


def test_an_agency_without_opening_hours_is_never_closed(clock, agency, alice, camille):
    """No opening hours configured: no "closed" reply at any hour (the feature is opt-in)."""
    clock.at = CLOSED
    write()
    assert automatic() == []


def test_the_cooldown_allows_one_reply_per_thread_per_period(clock, hours, alice, camille, settings):
    """After AUTO_REPLY_COOLDOWN_HOURS the next message gets the reply again, not before."""
    settings.AUTO_REPLY_COOLDOWN_HOURS = 12
    clock.at = CLOSED
    write("Bonjour")
    clock.advance(hours=11, minutes=59)
    write("Encore")
    assert len(automatic()) == 1
    clock.advance(minutes=2)  # Thursday 08:01: still closed, 12 h after the first reply
    write("Toujours")
    assert [reply.automatic for reply in automatic()] == ["closed", "closed"]


def test_the_cooldown_is_per_thread(clock, hours, alice, camille, settings):
    """Another customer writing meanwhile gets their own reply."""
    settings.ATTITRE_DEFAULT_AGENCY_CODE = hours.code
    clock.at = CLOSED
    write("Bonjour")
    write("Bonjour", sender=UNKNOWN)
    assert sorted(reply.thread_id for reply in automatic()) == sorted(Thread.objects.values_list("pk", flat=True))


@pytest.mark.parametrize("keyword", ["STOP", "arrêt", "START"])
def test_no_reply_to_a_consent_keyword(keyword, clock, hours, alice, camille):
    """STOP (and START, ARRÊT) changes consent and gets no automatic reply, closed or not."""
    clock.at = CLOSED
    write(keyword)
    assert automatic() == []


def test_nothing_goes_to_an_opted_out_customer(clock, hours, alice, camille):
    """After STOP, the next message (not a keyword) gets nothing either: consent first."""
    clock.at = CLOSED
    write("STOP")
    write("Bonjour")
    assert automatic() == []


def test_no_reply_to_automatic_email(clock, hours, alice, camille):
    """An email flagged as an auto-reply (Auto-Submitted) is never answered automatically."""
    from conversations.providers.base import InboundEmail, InboundMessage
    from tests.factories import ContactPointFactory

    ContactPointFactory(customer=camille, kind="email", address="camille@example.com")
    clock.at = CLOSED
    inbound_message_receive(
        inbound=InboundMessage(
            provider="email",
            provider_message_id="<ooo@example.com>",
            channel="email",
            address="camille@example.com",
            body="Je suis absente",
            email=InboundEmail(message_id="ooo@example.com", subject="Absence", noise="auto_reply"),
        )
    )
    assert automatic() == []


def test_status_callbacks_get_no_reply(clock, hours, alice, camille):
    """A delivery receipt is a status, not a message: it never triggers a reply."""
    from tests.twilio import post_signed, status_callback

    clock.at = CLOSED
    write()
    [reply] = automatic()
    Message.objects.filter(pk=reply.pk).update(provider_message_id="SMreceipt" + "0" * 23)
    assert post_signed("/webhooks/twilio/status/", status_callback(sid="SMreceipt" + "0" * 23, status="delivered"))
    assert len(automatic()) == 1


def test_english_texts_for_an_english_speaking_customer(clock, hours, alice, bob, camille):
    """The customer's preferred language decides: English here, names and dates in English."""
    camille.preferred_language = "en"
    camille.save()
    alice.out_of_office_from, alice.out_of_office_until = (
        OPEN - timedelta(days=1),
        datetime(2026, 12, 31, 9, tzinfo=PARIS),
    )
    alice.save()
    add_deputy(alice, bob)
    clock.at = CLOSED
    write()
    [reply] = automatic()
    assert reply.body == (
        "Alice Durand is away until Thursday 31 December. Bob Leroy, a colleague at Agence Lyon Bellecour, "
        "will answer you.\n\n"
        "Agence Lyon Bellecour is closed; we will answer you from Thursday 3 December at 09:00.\n"
        "Lost or stolen card: 09 69 39 77 77\nSuspected fraud: 09 69 32 00 00"
    )


def test_the_advisors_own_out_of_office_message_is_used(clock, hours, alice, camille):
    """When the advisor wrote an out-of-office message, it replaces the default away text."""
    alice.out_of_office_from, alice.out_of_office_until = OPEN - timedelta(days=1), OPEN + timedelta(days=3)
    alice.out_of_office_message = "Bonjour {{customer.first_name}}, je suis en congé ; mon collègue vous répond."
    alice.save()
    write()
    [reply] = automatic()
    assert (reply.automatic, reply.body) == ("away", "Bonjour Camille, je suis en congé ; mon collègue vous répond.")


def test_a_supervisors_text_replaces_the_default(clock, hours, alice, camille):
    """A text set for the agency and the language replaces the default; placeholders filled."""
    AutoReplyText.objects.create(
        agency=hours,
        kind=AutoReplyText.Kind.CLOSED,
        language="fr",
        body="{{customer.first_name}}, {{agency.name}} rouvre le {{agency.opens}}.",
    )
    agency_setups_forget()
    clock.at = CLOSED
    write()
    [reply] = automatic()
    assert reply.body == "Camille, Agence Lyon Bellecour rouvre le jeudi 3 décembre à 09:00."


def test_default_texts_ship_in_french_and_english():
    """Every kind has its own text in both languages, and uses only known placeholders."""
    for kind in AutoReplyText.Kind.values:
        french, english = default_text(kind, "fr"), default_text(kind, "en")
        assert french != english
        assert check_placeholders(french) == check_placeholders(english) == []


def test_placeholders_nothing_fills_are_named():
    assert check_placeholders("Bonjour {{customer.first_name}} {{customer.iban}}") == ["customer.iban"]


# --- The triage menu ----------------------------------------------------------------------


def test_the_menu_goes_to_an_unknown_number_with_its_choices(clock, topics, settings):
    """Mode "unknown numbers only": an unknown number's first message gets the menu; on
    WhatsApp its choices go along for the buttons, the text is numbered for the timeline."""
    settings.ATTITRE_DEFAULT_AGENCY_CODE = topics[0].agency.code
    set_triage_mode(topics[0].agency, Agency.TriageMode.UNKNOWN)
    result = write("Bonjour", sender=UNKNOWN)
    [menu] = automatic()
    assert menu.automatic == "menu"
    assert [item["title"] for item in menu.choices["items"]] == ["Carte perdue/volée", "Mon crédit", "Autre chose"]
    assert [item["id"] for item in menu.choices["items"]] == [f"topic:{topic.pk}" for topic in topics]
    assert "1. Carte perdue/volée\n2. Mon crédit\n3. Autre chose" in menu.body
    assert Thread.objects.get(pk=result.message.thread_id).triage_state == TriageState.ASKED


def test_the_menu_on_sms_is_a_numbered_list_without_buttons(clock, topics, settings):
    settings.ATTITRE_DEFAULT_AGENCY_CODE = topics[0].agency.code
    set_triage_mode(topics[0].agency, Agency.TriageMode.UNKNOWN)
    write("Bonjour", sender=UNKNOWN, channel="sms")
    [menu] = automatic()
    assert menu.choices == {}
    assert menu.body.endswith(
        "1. Carte perdue/volée\n2. Mon crédit\n3. Autre chose\n\nRépondez par un numéro, ou écrivez « conseiller »."
    )


@pytest.mark.parametrize(
    ("mode", "moment", "sender", "menu"),
    [
        (Agency.TriageMode.OFF, "closed", "unknown", False),
        (Agency.TriageMode.UNKNOWN, "open", "unknown", True),
        (Agency.TriageMode.UNKNOWN, "closed", "known", False),
        (Agency.TriageMode.UNKNOWN_AND_CLOSED, "open", "known", False),
        (Agency.TriageMode.UNKNOWN_AND_CLOSED, "closed", "known", True),
        (Agency.TriageMode.UNKNOWN_AND_CLOSED, "holiday", "known", True),
        (Agency.TriageMode.UNKNOWN_AND_CLOSED, "open", "unknown", True),
    ],
)
def test_each_menu_mode(mode, moment, sender, menu, clock, topics, alice, camille, settings):
    """Off, unknown numbers only, or also everyone while closed: when the menu is asked."""
    settings.ATTITRE_DEFAULT_AGENCY_CODE = topics[0].agency.code
    set_triage_mode(topics[0].agency, mode)
    clock.at = MOMENTS[moment]
    write("Bonjour", sender=UNKNOWN if sender == "unknown" else "+33612345678")
    kinds = [reply.automatic for reply in automatic()]
    assert ("menu" in kinds) is menu
    assert len(kinds) <= 1
    if menu and moment != "open":
        # Closed: the one message says so, with the emergency numbers, before the question.
        [reply] = automatic()
        assert "est fermée" in reply.body and "09 69 39 77 77" in reply.body


@pytest.fixture
def asked(clock, topics, alice, camille):
    """Camille wrote while the agency was closed and got the menu."""
    set_triage_mode(topics[0].agency, Agency.TriageMode.UNKNOWN_AND_CLOSED)
    clock.at = CLOSED
    result = write("Bonjour")
    assert [reply.automatic for reply in automatic()] == ["menu"]
    return Thread.objects.get(pk=result.message.thread_id)


@pytest.mark.parametrize(
    ("answer", "how"),
    [
        ({"body": "Mon crédit", "ButtonPayload": "topic:{loan}", "ButtonText": "Mon crédit"}, "button"),
        ({"body": "Mon crédit", "ListId": "topic:{loan}", "ListTitle": "Mon crédit"}, "button"),
        ({"body": "2"}, "number"),
        ({"body": "C'est pour mon prêt immobilier"}, "keyword"),
    ],
)
def test_a_choice_tags_the_thread_and_stays_with_the_advisor(answer, how, asked, topics, alice):
    """By button payload (quick reply or list picker), number or keyword: the topic is set,
    the thread stays with the dedicated advisor, the customer is told who answers."""
    loan = topics[1]
    params = {key: value.format(loan=loan.pk) for key, value in answer.items()}
    write(params.pop("body"), **params)
    thread = Thread.objects.get(pk=asked.pk)
    assert (thread.topic_id, thread.triage_state, thread.urgent) == (loan.pk, TriageState.CHOSEN, False)
    assert thread.handler_id == alice.pk
    assert [reply.automatic for reply in automatic()] == ["menu", "topic"]
    assert automatic()[-1].body == "Merci : « Mon crédit ». Alice Durand vous répondra."
    [event] = Event.objects.filter(type=Event.Type.THREAD_TRIAGED)
    assert (event.payload["topic"], event.payload["how"]) == (loan.pk, how)


def test_an_urgent_topic_goes_to_the_urgent_pool_with_an_alert(asked, topics, call_centre, alice):
    """Lost card: the thread goes to the call centre's pool, marked urgent; whoever is on duty
    there is alerted at once (their own group); the customer gets the emergency numbers."""
    on_duty = AdvisorFactory(agency=call_centre, user__username="dan")
    AdvisorFactory(agency=call_centre, user__username="eve", availability="away")
    card = topics[0]
    write("Carte perdue/volée", ButtonPayload=f"topic:{card.pk}", ButtonText="Carte perdue/volée")

    thread = Thread.objects.get(pk=asked.pk)
    assert (thread.agency_id, thread.handler_id, thread.urgent, thread.topic_id) == (
        call_centre.pk,
        None,
        True,
        card.pk,
    )
    assert thread.routing_reason_code == "urgent"
    urgent = automatic()[-1]
    assert urgent.automatic == "urgent"
    assert urgent.body.startswith("« Carte perdue/volée » : notre équipe de permanence est prévenue")
    assert "Carte perdue ou volée : 09 69 39 77 77" in urgent.body
    [alert] = Event.objects.filter(type=Event.Type.THREAD_URGENT)
    assert alert.payload["on_duty"] == 1 and alert.thread_id == thread.pk

    # The next message stays in the urgent pool, even with the dedicated advisor present.
    write("Merci de faire vite")
    assert Thread.objects.get(pk=thread.pk).handler_id is None
    assert on_duty.pk  # present, active: the one counted above


def test_the_alert_reaches_the_on_duty_advisors_group(
    asked, topics, call_centre, monkeypatch, django_capture_on_commit_callbacks
):
    """After commit, the alert is pushed to the on-duty advisor's own group, beside the pool's."""
    from events import publish

    pushed = []
    monkeypatch.setattr(publish, "_push_many", lambda batch: pushed.extend(batch))
    on_duty = AdvisorFactory(agency=call_centre, user__username="dan")
    with django_capture_on_commit_callbacks(execute=True):
        write("1")
    [groups] = [groups for groups, message in pushed if message["type"] == "thread.urgent"]
    assert advisor_group(on_duty.pk) in groups


@pytest.mark.parametrize("word", ["conseiller", "Je veux un humain", "ADVISOR", "agent svp"])
def test_asking_for_a_person_hands_over_at_once(word, asked):
    write(word)
    thread = Thread.objects.get(pk=asked.pk)
    assert (thread.triage_state, thread.topic_id) == (TriageState.HUMAN, None)
    assert [reply.automatic for reply in automatic()] == ["menu", "handover"]
    assert automatic()[-1].body == "Une personne vous répondra au plus vite."


def test_nonsense_twice_hands_over_and_the_menu_never_asks_again(asked, clock):
    """The first unrecognised answer gets no second question; the second hands over. Later
    messages, even after the cooldown, get no menu again: one question per conversation."""
    write("euh")
    assert [reply.automatic for reply in automatic()] == ["menu"]
    write("bof")
    assert Thread.objects.get(pk=asked.pk).triage_state == TriageState.HUMAN
    assert [reply.automatic for reply in automatic()] == ["menu", "handover"]
    clock.advance(hours=13)  # Thursday 09:00: open; nothing more to say
    write("Alors ?")
    clock.at = datetime(2026, 12, 3, 21, 0, tzinfo=PARIS)  # closed again, cooldown over
    write("Et maintenant ?")
    assert [reply.automatic for reply in automatic()] == ["menu", "handover", "closed"]


def test_stop_is_never_taken_as_a_choice(asked):
    write("STOP")
    thread = Thread.objects.get(pk=asked.pk)
    assert (thread.triage_state, thread.triage_misses) == (TriageState.ASKED, 0)
    assert [reply.automatic for reply in automatic()] == ["menu"]


def test_the_menu_in_english(clock, topics, alice, camille):
    camille.preferred_language = "en"
    camille.save()
    set_triage_mode(topics[0].agency, Agency.TriageMode.UNKNOWN_AND_CLOSED)
    clock.at = CLOSED
    write()
    [menu] = automatic()
    assert [item["title"] for item in menu.choices["items"]] == ["Lost/stolen card", "My loan", "Something else"]
    assert "choose a topic, or write “advisor” to reach a person." in menu.body
    write("stolen")
    assert Thread.objects.get(customer=camille).topic_id == topics[0].pk


def test_closing_the_thread_ends_the_triage_and_the_urgency(asked, topics, call_centre, alice, camille):
    """Closed, the conversation is over: the urgent pool gives the thread back to the
    customer's agency, and the next conversation may be asked the menu again."""
    from conversations.services import thread_set_status

    write("1")
    thread = Thread.objects.get(pk=asked.pk)
    assert thread.agency_id == call_centre.pk
    thread_set_status(thread=thread, by=alice, status=Thread.Status.CLOSED)
    thread = Thread.objects.get(pk=asked.pk)
    assert (thread.agency_id, thread.urgent, thread.triage_state) == (camille.agency_id, False, TriageState.NONE)
    assert thread.topic_id == topics[0].pk  # kept, as history


def test_a_menu_the_content_api_refuses_goes_as_numbered_text(clock, topics, settings, simulator):
    """Delivery makes the buttons; when Twilio refuses to create them, the numbered text goes."""
    from conversations.services.auto_replies import menu_content_sid

    choices = {"items": [{"id": "topic:1", "title": "A"}], "body": "", "button": "Choisir", "language": "fr"}
    # An empty body: the Content API (the simulator, as Twilio) answers 400.
    assert menu_content_sid(choices=choices) == ""
    choices["body"] = "Choisissez"
    sid = menu_content_sid(choices=choices)
    assert sid.startswith("HX") and menu_content_sid(choices=choices) == sid  # created once
    assert [t["kind"] for t in simulator.templates if t["sid"] == sid] == ["twilio/quick-reply"]
    choices["items"] = [{"id": f"topic:{n}", "title": f"T{n}"} for n in range(4)]
    other = menu_content_sid(choices=choices)
    assert [t["kind"] for t in simulator.templates if t["sid"] == other] == ["twilio/list-picker"]


# --- The admin's checks -----------------------------------------------------------------


def test_the_admin_refuses_a_placeholder_nothing_fills(agency):
    from conversations.admin import AutoReplyTextForm

    form = AutoReplyTextForm(data={"kind": "closed", "language": "fr", "body": "Fermé, {{agency.iban}}."})
    assert not form.is_valid()
    [error] = form.errors["body"]
    assert error.startswith("Nothing fills {{agency.iban}}.")
    assert "{{agency.opens}}" in error
    ok = AutoReplyTextForm(data={"kind": "closed", "language": "fr", "body": "Fermé jusqu'au {{agency.opens}}."})
    assert ok.is_valid(), ok.errors


@pytest.mark.parametrize(("country", "region", "field"), [("ZZ", "", "country"), ("FR", "99", "subdivision")])
def test_the_admin_refuses_a_country_without_known_holidays(country, region, field, agency):
    from crm.admin import AgencyAdminForm

    data = {
        "name": agency.name,
        "code": agency.code,
        "kind": agency.kind,
        "timezone": "Europe/Paris",
        "country": country,
        "subdivision": region,
        "triage_mode": "off",
    }
    form = AgencyAdminForm(data=data, instance=agency)
    assert not form.is_valid()
    assert [error.code for error in form.errors.as_data()[field]] == ["holidays_unknown"]
    data.update(country="fr", subdivision="57")
    form = AgencyAdminForm(data=data, instance=agency)
    assert form.is_valid(), form.errors
    assert (form.cleaned_data["country"], form.cleaned_data["subdivision"]) == ("FR", "57")


# --- What advisors see ------------------------------------------------------------------------


def test_the_inbox_shows_the_topic_and_how_the_customer_got_there(client, asked, topics, alice, sam):
    """The thread page: the menu and the acknowledgement authored "Attitré (automatic)" with
    their kind, the choice as a timeline line, the topic in the header; the row shows it too."""
    write("Mon crédit", ButtonPayload=f"topic:{topics[1].pk}", ButtonText="Mon crédit")
    client.force_login(alice.user)
    page = client.get(f"/inbox/threads/{asked.pk}/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert page.count("Attitré (automatic)") == 2
    assert '<span class="tag automatic">Triage menu</span>' in page
    assert '<span class="tag automatic">Topic acknowledged</span>' in page
    assert "Topic chosen: My loan" in page and "tapped a button" in page
    assert (
        '<span class="tag tag-topic">My loan</span>'
        in client.get("/inbox/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    )


def test_the_urgent_tag_shows_in_the_urgent_pool(client, asked, topics, call_centre):
    on_duty = AdvisorFactory(agency=call_centre, user__username="dan")
    write("1")
    client.force_login(on_duty.user)
    inbox = client.get("/inbox/?tab=pool", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert f'id="thread-row-{asked.pk}"' in inbox
    assert '<span class="tag tag-urgent">Urgent</span>' in inbox


def test_the_home_pool_is_told_the_urgent_thread_left_it(
    clock, topics, call_centre, settings, monkeypatch, django_capture_on_commit_callbacks
):
    """An unknown number in the agency pool picks an urgent topic: the assignment event
    reaches the home pool (which drops it) and the urgent pool (which shows it)."""
    from events import publish
    from events.groups import pool_group

    pushed = []
    monkeypatch.setattr(publish, "_push_many", lambda batch: pushed.extend(batch))
    settings.ATTITRE_DEFAULT_AGENCY_CODE = topics[0].agency.code
    set_triage_mode(topics[0].agency, Agency.TriageMode.UNKNOWN)
    write("Bonjour", sender=UNKNOWN)
    with django_capture_on_commit_callbacks(execute=True):
        write("carte volée", sender=UNKNOWN)
    [moved] = Event.objects.filter(type=Event.Type.THREAD_ASSIGNED)
    assert (moved.agency_id, moved.payload["handler"], moved.payload["reason"]) == (call_centre.pk, None, "urgent")
    [groups] = [groups for groups, message in pushed if message["type"] == "thread.assigned"]
    assert {pool_group(call_centre.pk), pool_group(topics[0].agency_id)} <= set(groups)


@pytest.mark.parametrize(("count", "names"), [(2, ("ButtonPayload", "ButtonText")), (4, ("ListId", "ListTitle"))])
def test_the_simulated_phone_taps_like_twilio_reports(count, names, simulator):
    """A quick reply's tap comes back as ButtonPayload/ButtonText, a list picker's as
    ListId/ListTitle, signed like any inbound message; a button it never showed is refused."""
    from conversations.services.auto_replies import menu_content_sid
    from tests.servers import CAMILLE

    items = [{"id": f"topic:{n}", "title": f"Sujet {n}"} for n in range(count)]
    sid = menu_content_sid(choices={"items": items, "body": "Choisissez", "button": "Choisir", "language": "fr"})
    token = f"{simulator.account_sid}:{simulator.auth_token}"
    sent = httpx.post(
        f"{simulator.url}/2010-04-01/Accounts/{simulator.account_sid}/Messages.json",
        data={"To": f"whatsapp:{CAMILLE}", "From": twilio.BANK_WHATSAPP, "ContentSid": sid},
        headers={"Authorization": "Basic " + base64.b64encode(token.encode()).decode()},
    ).json()
    shown = httpx.get(f"{simulator.url}/api/phones/{CAMILLE}/messages").json()["messages"][-1]
    assert (shown["body"], [c["title"] for c in shown["choices"]]) == ("Choisissez", [i["title"] for i in items])

    tapped = httpx.post(
        f"{simulator.url}/api/phones/{CAMILLE}/messages", json={"choice": "topic:1", "message": sent["sid"]}
    )
    assert tapped.status_code == 202
    params = simulator.callbacks[-1]["params"]
    assert (params[names[0]], params[names[1]], params["MessageType"]) == ("topic:1", "Sujet 1", "interactive")
    refused = httpx.post(
        f"{simulator.url}/api/phones/{CAMILLE}/messages", json={"choice": "topic:9", "message": sent["sid"]}
    )
    assert refused.status_code == 400


def test_an_advisor_marked_away_without_dates_gets_no_end_date(clock, hours, alice, camille):
    """Away (the availability switch), no absence under way: the reply names no date."""
    alice.availability = "away"
    alice.out_of_office_until = OPEN - timedelta(days=30)  # an old absence, over
    alice.out_of_office_from = OPEN - timedelta(days=40)
    alice.save()
    write()
    [reply] = automatic()
    assert reply.body == "Alice Durand n’est pas disponible. Un collègue (Agence Lyon Bellecour) vous répondra."
