"""The development simulator: Twilio's API shapes, signed webhooks the app accepts, and its safety catch."""

import base64
import time

import httpx
import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from twilio.request_validator import RequestValidator

from conversations.management.commands.simulator import phones_from_database
from conversations.models import Message, Thread
from conversations.providers.simulator import Simulator
from conversations.services import message_send
from tests import twilio
from tests.queue import run_queued_tasks
from tests.servers import CAMILLE, wait_for


def messages_url(sim) -> str:
    return f"{sim.url}/2010-04-01/Accounts/{sim.account_sid}/Messages.json"


def auth(sim) -> dict:
    token = base64.b64encode(f"{sim.account_sid}:{sim.auth_token}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def test_simulator_refuses_to_exist_with_debug_off(settings):
    """With DEBUG off the simulator cannot even be built: it must never stand in for Twilio in production."""
    settings.DEBUG = False
    with pytest.raises(ImproperlyConfigured, match="DEBUG off"):
        Simulator(account_sid="AC1", auth_token="t", app_base_url="http://127.0.0.1:8000", phones=[])


def test_simulator_command_refuses_debug_off(settings):
    """`manage.py simulator` stops at once with DEBUG off."""
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG off"):
        call_command("simulator", "--port", "0")


@pytest.mark.django_db
def test_messages_api_answers_like_twilio(simulator):
    """Basic auth, Twilio's form fields, a Twilio-shaped resource with an SM… sid, status queued."""
    response = httpx.post(
        messages_url(simulator),
        data={"To": f"whatsapp:{CAMILLE}", "From": twilio.BANK_WHATSAPP, "Body": "Bonjour"},
        headers=auth(simulator),
    )
    assert response.status_code == 201
    resource = response.json()
    assert resource["sid"].startswith("SM") and len(resource["sid"]) == 34
    assert (resource["status"], resource["to"], resource["direction"]) == (
        "queued",
        f"whatsapp:{CAMILLE}",
        "outbound-api",
    )
    assert [entry["body"] for entry in simulator.log] == ["Bonjour"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"To": "whatsapp:+33600000001", "Body": "x"}, 21211),
        ({"To": "+331", "Body": "x"}, 21211),
        ({"To": f"whatsapp:{CAMILLE}"}, 21602),
        ({"To": "whatsapp:+33698765432", "Body": "x"}, 63016),
    ],
)
def test_messages_api_errors_are_twilio_error_json(simulator, fields, code):
    """Unknown or invalid number 21211, no body 21602, free text outside the window 63016."""
    response = httpx.post(
        messages_url(simulator), data={"From": twilio.BANK_WHATSAPP, **fields}, headers=auth(simulator)
    )
    assert response.status_code == 400
    assert response.json() == {
        "code": code,
        "message": response.json()["message"],
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": 400,
    }
    assert simulator.log == []


@pytest.mark.django_db
def test_opted_out_phone_gets_21610(simulator):
    """A phone that wrote STOP: 21610."""
    simulator.phones[CAMILLE].opted_out = True
    response = httpx.post(
        messages_url(simulator), data={"To": CAMILLE, "From": twilio.BANK_SMS, "Body": "x"}, headers=auth(simulator)
    )
    assert (response.status_code, response.json()["code"]) == (400, 21610)


@pytest.mark.django_db
def test_wrong_credentials_get_20003(simulator):
    """Basic auth must carry the configured SID and token."""
    response = httpx.post(
        messages_url(simulator), data={"To": CAMILLE, "Body": "x"}, auth=(simulator.account_sid, "no")
    )
    assert (response.status_code, response.json()["code"]) == (401, 20003)


@pytest.mark.django_db
def test_status_callbacks_are_signed_as_twilio_signs_them(simulator):
    """Every callback attempt carries an X-Twilio-Signature that the twilio library validates."""
    callback = "https://attitre.example.com/webhooks/twilio/status/?m=42"
    httpx.post(
        messages_url(simulator),
        data={"To": f"whatsapp:{CAMILLE}", "From": twilio.BANK_WHATSAPP, "Body": "x", "StatusCallback": callback},
        headers=auth(simulator),
    )
    assert wait_for(lambda: len(simulator.callbacks) == 2)
    validator = RequestValidator(simulator.auth_token)
    for attempt in simulator.callbacks:
        assert attempt["url"] == callback
        assert validator.validate(attempt["url"], attempt["params"], attempt["signature"])
    assert [attempt["params"]["MessageStatus"] for attempt in simulator.callbacks] == ["sent", "delivered"]


@pytest.mark.django_db(transaction=True)
def test_customer_typing_on_the_phone_reaches_the_app_signed(live_app, simulator, camille):
    """What a person types on the phone page is posted signed to the app, which verifies and stores it."""
    simulator.app_base_url = live_app.url
    response = httpx.post(
        f"{simulator.url}/api/phones/%2B33612345678/messages", json={"body": "Bonjour depuis le téléphone"}
    )
    assert response.status_code == 202
    assert response.json()["app_status"] == 200
    message = Message.objects.get(direction="inbound")
    assert (message.body, message.channel, message.profile_name, message.wa_id) == (
        "Bonjour depuis le téléphone",
        "whatsapp",
        "Camille",
        "33612345678",
    )
    assert message.provider_message_id == response.json()["sid"]
    assert Thread.objects.get(customer=camille).last_inbound_channel == "whatsapp"


@pytest.mark.django_db(transaction=True)
def test_advisor_reply_shows_on_the_phone_and_is_read_when_shown(live_app, simulator, camille, alice):
    """The advisor's reply appears on the phone; the phone showing it reports it read."""
    simulator.app_base_url = live_app.url
    httpx.post(f"{simulator.url}/api/phones/%2B33612345678/messages", json={"body": "Bonjour"})
    thread = Thread.objects.get(customer=camille)
    run_queued_tasks()
    message = message_send(thread=thread, author=alice, body="Bonjour Camille")
    run_queued_tasks()
    assert wait_for(lambda: Message.objects.get(pk=message.pk).status == "delivered")

    shown = httpx.get(f"{simulator.url}/api/phones/%2B33612345678/messages").json()["messages"]
    assert [(item["from_customer"], item["body"]) for item in shown] == [(True, "Bonjour"), (False, "Bonjour Camille")]
    assert wait_for(lambda: Message.objects.get(pk=message.pk).status == "read")


@pytest.mark.django_db
def test_phone_page_uses_no_inline_script(simulator):
    """The page loads its script from a file, under a same-origin CSP."""
    page = httpx.get(f"{simulator.url}/")
    assert page.status_code == 200
    assert page.headers["content-security-policy"] == "default-src 'self'"
    assert '<script src="/static/phone.js" defer></script>' in page.text
    assert page.text.count("<script") == 1
    assert httpx.get(f"{simulator.url}/static/phone.js").headers["content-type"].startswith("text/javascript")


@pytest.mark.django_db
def test_log_lists_every_send_and_resets(simulator):
    """The in-memory log counts sends for tests and the benchmark."""
    httpx.post(
        messages_url(simulator),
        data={"To": f"whatsapp:{CAMILLE}", "From": twilio.BANK_WHATSAPP, "Body": "un"},
        headers=auth(simulator),
    )
    assert [m["body"] for m in httpx.get(f"{simulator.url}/api/log").json()["messages"]] == ["un"]
    httpx.delete(f"{simulator.url}/api/log")
    assert httpx.get(f"{simulator.url}/api/log").json()["messages"] == []


@pytest.mark.django_db
def test_phone_state_can_be_set_for_tests(simulator):
    """Tests and benchmarks open a phone's window or opt it out over HTTP."""
    before = time.time()
    response = httpx.post(
        f"{simulator.url}/api/phones/%2B33698765432/state", json={"last_whatsapp_at": "now", "opted_out": True}
    )
    assert response.status_code == 200
    phone = simulator.phones["+33698765432"]
    assert phone.opted_out and before <= phone.last_whatsapp_at <= time.time()


@pytest.mark.django_db
def test_phones_come_from_the_customers_with_camille_first(camille, bob):
    """The simulator knows the customers' numbers, names and last WhatsApp message; Camille is shown first."""
    from tests.factories import ContactPointFactory, CustomerFactory

    other = CustomerFactory(first_name="Julien", last_name="Moreau", dedicated_advisor=bob, agency=bob.agency)
    ContactPointFactory(customer=other, kind="whatsapp", address="+33698765432")
    before = time.time()
    twilio.receive(twilio.whatsapp_text(body="Bonjour"))
    phones = phones_from_database(shown=1)
    assert [(p.number, p.name, p.shown) for p in phones] == [
        (CAMILLE, "Camille Martin", True),
        ("+33698765432", "Julien Moreau", False),
    ]
    assert before <= phones[0].last_whatsapp_at <= time.time()
    assert phones[1].last_whatsapp_at is None


def test_the_banks_site_signs_camille_in_to_the_apps_chat_widget(settings):
    """/bank embeds the app's widget (the policy lets it load from and talk to the app only);
    /bank/chat-token is a token the app accepts for Camille's customer number."""
    from conversations.providers.webchat import verify_token
    from tests.servers import ServerThread

    settings.DEBUG = True
    settings.CHAT_JWT_SECRET = "simulator-test-chat-secret-0123456789abcdef"
    sim = Simulator(
        account_sid="AC" + "0" * 32,
        auth_token="token",
        app_base_url="http://127.0.0.1:8000",
        phones=[],
        bank_customer="C00000042",
    )
    with ServerThread(sim) as server:
        page = httpx.get(f"{server.url}/bank", timeout=5)
        token = httpx.get(f"{server.url}/bank/chat-token", timeout=5)
    assert '<script src="http://127.0.0.1:8000/static/chat/widget.js">' in page.text
    assert page.headers["content-security-policy"] == (
        "default-src 'self'; script-src 'self' http://127.0.0.1:8000; connect-src 'self' ws://127.0.0.1:8000"
    )
    assert token.headers["cache-control"] == "no-store"
    assert verify_token(token.text).customer_number == "C00000042"


def test_without_a_chat_secret_the_simulator_has_no_banks_site(settings):
    settings.DEBUG = True
    sim = Simulator(account_sid="AC" + "0" * 32, auth_token="t", app_base_url="http://127.0.0.1:8000", phones=[])
    from tests.servers import ServerThread

    with ServerThread(sim) as server:
        assert httpx.get(f"{server.url}/bank", timeout=5).status_code == 404
