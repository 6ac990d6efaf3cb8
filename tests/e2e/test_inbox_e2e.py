"""The live inbox in a real browser: a signed WhatsApp webhook reaches the advisor's open
inbox over the websocket, without a reload, and nobody else's; a reply goes out through the
Twilio simulator and its delivery ticks come back live."""

import re
import tempfile
from pathlib import Path

import httpx
import pytest

from conversations.models import Message, Thread
from tests import twilio
from tests.queue import real_cluster, run_queued_tasks
from tests.servers import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "correct-horse-battery"
BODY = "Bonjour, ma carte est bloquée depuis ce matin"
SECOND_BODY = "Je suis à l'agence de Bellecour"
NOTE = "Carte bloquée après trois codes faux : la débloquer"
REPLY = "Je la débloque tout de suite, vous pourrez payer dans une minute."
VIEWPORT = {"width": 1280, "height": 800}
LIVE_SECONDS = 5
# What the embedded default promises for what the task worker writes (docs/inbox.md).
RELAYED_WITHIN_SECONDS = 1
# Looked at by a person after a run: /tmp/attitre-inbox.png and /tmp/attitre-thread.png.
SCREENSHOTS = Path(tempfile.gettempdir())


def sign_in(browser, base_url: str, username: str):
    context = browser.new_context(viewport=VIEWPORT, locale="en-GB")
    page = context.new_page()
    problems = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.goto(f"{base_url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base_url}/inbox/")
    # Connected before the message is sent, so this is the live push, not the replay on connect.
    page.wait_for_selector('#live-status[data-state="connected"]', timeout=LIVE_SECONDS * 1000)
    return page, problems


def post_whatsapp(base_url: str, body: str) -> None:
    params = twilio.whatsapp_text(body=body, sender="+33612345678")
    path = "/webhooks/twilio/messages/"
    response = httpx.post(
        base_url + path,
        data=params,
        headers={"X-Twilio-Signature": twilio.signature_for(path, params)},
        timeout=10,
    )
    assert response.status_code == 200, response.text


def test_inbound_message_appears_live_in_the_advisors_inbox_only(
    live_server_url, alice, bob, camille, browser, orm_beside_browser
):
    from playwright.sync_api import expect

    alice_page, alice_problems = sign_in(browser, live_server_url, "alice")
    bob_page, bob_problems = sign_in(browser, live_server_url, "bob")
    expect(alice_page.locator("#thread-list-empty")).to_be_visible()

    post_whatsapp(live_server_url, BODY)

    row = alice_page.locator("#thread-list .thread-row").first
    expect(row).to_contain_text(BODY, timeout=LIVE_SECONDS * 1000)
    expect(row).to_contain_text("Camille Martin")
    expect(row.locator(".badge")).to_contain_text("1")
    expect(alice_page).to_have_title("(1) Attitré")
    expect(alice_page.locator("#live-status")).to_have_text("Live: connected")
    alice_page.screenshot(path=SCREENSHOTS / "attitre-inbox.png", full_page=True)

    bob_page.wait_for_timeout(1000)
    assert BODY not in bob_page.content()
    expect(bob_page.locator("#thread-list .thread-row")).to_have_count(0)

    # The thread page: shown to its handler it is read (the page reports it; its GET wrote
    # nothing), and the live update drops the count; a new message is appended live.
    row.get_by_role("link").click()
    alice_page.wait_for_url(re.compile(r".*/inbox/threads/\d+/$"))
    expect(alice_page.locator("#timeline")).to_contain_text(BODY)
    expect(alice_page).to_have_title("Camille Martin · Attitré")
    expect(alice_page.locator("#thread-header")).not_to_contain_text("Mark as read")
    assert Thread.objects.get(customer=camille).unread_count == 0
    post_whatsapp(live_server_url, SECOND_BODY)
    expect(alice_page.locator("#timeline .message").last).to_contain_text(SECOND_BODY, timeout=LIVE_SECONDS * 1000)
    expect(alice_page.locator("#thread-header")).to_contain_text("Mark as read")

    # An action through its form, enhanced by htmx (boosted: no full reload, the socket stays).
    alice_page.get_by_label("Internal note").fill(NOTE)
    alice_page.get_by_role("button", name="Add note").click()
    expect(alice_page.locator("#timeline .note")).to_contain_text(NOTE)
    expect(alice_page.locator(".messages")).to_contain_text("Note added.")
    expect(alice_page.locator("#live-status")).to_have_text("Live: connected")
    alice_page.screenshot(path=SCREENSHOTS / "attitre-thread.png", full_page=True)

    assert BODY not in bob_page.content() and SECOND_BODY not in bob_page.content()
    # No script error and nothing the Content-Security-Policy had to block.
    assert alice_problems == [] and bob_problems == []


def test_reply_goes_out_and_its_delivered_tick_arrives_live(
    live_server_url, simulator, alice, camille, browser, orm_beside_browser
):
    """Alice replies from the thread page; the delivery task hands it to the simulator, whose signed
    status callbacks reach the app, and the "delivered" tick appears in her page without a reload."""
    from playwright.sync_api import expect

    post_whatsapp(live_server_url, BODY)
    thread = Thread.objects.get(customer=camille)
    page, problems = sign_in(browser, live_server_url, "alice")
    page.goto(f"{live_server_url}/inbox/threads/{thread.pk}/")
    page.wait_for_selector('#live-status[data-state="connected"]', timeout=LIVE_SECONDS * 1000)
    # Gone after a full page load: proves that what follows happened in this very page.
    page.evaluate("window.attitreSamePage = true")

    page.get_by_label("Reply to the customer").fill(REPLY)
    expect(page.locator("#reply-count")).to_have_text(f"{len(REPLY)} / 1600 characters")
    page.get_by_role("button", name="Send", exact=True).click()
    reply = page.locator("#timeline .message-outbound").last
    expect(reply).to_contain_text(REPLY)
    expect(reply.locator(".delivery")).to_contain_text("Queued")
    expect(page.locator(".messages")).to_contain_text("Reply queued for sending")
    message = Message.objects.get(direction="outbound")
    assert message.status == "queued"

    assert run_queued_tasks() >= 1
    [sent] = simulator.log
    assert (sent["to"], sent["body"]) == ("whatsapp:+33612345678", REPLY)

    item = page.locator(f"#item-message-{message.pk}")
    expect(item.locator(".delivery-delivered")).to_contain_text("Delivered", timeout=LIVE_SECONDS * 1000)
    expect(item.locator(".ticks")).to_have_text("✓✓")
    assert [attempt["status"] for attempt in simulator.callbacks] == [204, 204]
    assert page.evaluate("window.attitreSamePage") is True
    expect(page.locator("#live-status")).to_have_text("Live: connected")
    page.screenshot(path=SCREENSHOTS / "attitre-reply.png", full_page=True)
    assert problems == []


@pytest.fixture
def embedded_layer(settings):
    """The embedded default's in-memory channel layer, whatever REDIS_URL this run has: listed
    before `live_server_url`, which makes its layer from the settings."""
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


def test_without_redis_a_status_the_worker_process_writes_shows_live(
    embedded_layer, live_server_url, simulator, alice, camille, browser, orm_beside_browser, settings
):
    """The embedded default (in-memory layer, no Redis): Alice's reply is delivered by a real
    `qcluster` in its own process, Twilio refuses it, and the failure the worker records reaches
    her open page within a second, relayed from the event log by the web process, without a reload."""
    from playwright.sync_api import expect

    post_whatsapp(live_server_url, BODY)
    thread = Thread.objects.get(customer=camille)
    page, problems = sign_in(browser, live_server_url, "alice")
    page.goto(f"{live_server_url}/inbox/threads/{thread.pk}/")
    page.wait_for_selector('#live-status[data-state="connected"]', timeout=LIVE_SECONDS * 1000)
    page.evaluate("window.attitreSamePage = true")
    phone = simulator.phones[camille.contact_points.get(kind="whatsapp").address]
    phone.faults.append({"code": 21211})

    page.get_by_label("Reply to the customer").fill(REPLY)
    page.get_by_role("button", name="Send", exact=True).click()
    message_row = page.locator("#timeline .message-outbound").last
    expect(message_row.locator(".delivery")).to_contain_text("Queued")
    message = Message.objects.get(direction="outbound")

    worker_env = {
        "REDIS_URL": "",
        "Q_WORKERS": "1",
        "PUBLIC_BASE_URL": live_server_url,
        "TWILIO_API_BASE_URL": settings.TWILIO_API_BASE_URL,
        "TWILIO_ACCOUNT_SID": settings.TWILIO_ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": settings.TWILIO_AUTH_TOKEN,
        "TWILIO_WHATSAPP_FROM": settings.TWILIO_WHATSAPP_FROM,
        "TWILIO_SMS_FROM": settings.TWILIO_SMS_FROM,
        "TWILIO_MESSAGING_SERVICE_SID": "",
    }
    with real_cluster(**worker_env):
        # Bounds for a broken test: the cluster's start is not what is measured.
        assert wait_for(lambda: Message.objects.filter(pk=message.pk, status="failed").exists(), timeout=60)
    assert phone.faults == [] and simulator.log == []  # the worker's call got Twilio's refusal

    # Committed by the worker: on the page within a second (the relay reads the log every 0.25 s).
    item = page.locator(f"#item-message-{message.pk}")
    expect(item.locator(".delivery-failed")).to_contain_text("Failed", timeout=RELAYED_WITHIN_SECONDS * 1000)
    expect(item.locator(".delivery-failed")).to_contain_text("error 21211")
    assert page.evaluate("window.attitreSamePage") is True
    expect(page.locator("#live-status")).to_have_text("Live: connected")
    assert problems == []


def test_signing_out_in_one_tab_closes_the_others_at_once(live_server_url, alice, browser):
    """Alice signs out in one tab: the server closes her other tab's socket at once (not at
    the next 30 s refresh), and that tab shows the login page."""
    from playwright.sync_api import expect

    first, problems = sign_in(browser, live_server_url, "alice")
    second = first.context.new_page()
    second.goto(f"{live_server_url}/inbox/")
    second.wait_for_selector('#live-status[data-state="connected"]', timeout=LIVE_SECONDS * 1000)

    second.get_by_role("button", name="Sign out").click()
    first.wait_for_url(re.compile(r".*/accounts/login/\?next=/inbox/$"), timeout=LIVE_SECONDS * 1000)
    expect(first.get_by_role("button", name="Sign in")).to_be_visible()
    assert problems == []
