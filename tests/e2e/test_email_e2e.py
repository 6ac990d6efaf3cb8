"""A hostile HTML email in a real browser: it arrives live in the advisor's inbox over
Mailgun's signed webhook, and neither the timeline nor the original view runs its
script, fires its handlers or loads its remote pixel; its inline image is our copy."""

import tempfile
from pathlib import Path

import httpx
import pytest

from conversations.models import Message
from tests.e2e.test_inbox_e2e import LIVE_SECONDS, sign_in
from tests.email import MAILGUN_SIGNING_KEY, WEBHOOK_SECRET, basic_auth, fixture

pytestmark = pytest.mark.django_db(transaction=True)
SCREENSHOTS = Path(tempfile.gettempdir())


def test_hostile_html_runs_nothing_and_loads_nothing_remote(
    live_server_url, settings, alice, camille, browser, orm_beside_browser
):
    from playwright.sync_api import expect

    from tests.factories import ContactPointFactory

    settings.ANYMAIL = {"WEBHOOK_SECRET": WEBHOOK_SECRET, "MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_SIGNING_KEY}
    ContactPointFactory(customer=camille, kind="email", address="julien.moreau@example.net")
    page, problems = sign_in(browser, live_server_url, "alice")
    dialogs, requests = [], []
    page.context.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.context.on("request", lambda request: requests.append(request.url))

    # The webhook, as Mailgun posts it (tests/email.py builds the same form for the test client).
    import hashlib
    import hmac
    import secrets
    import time

    raw = fixture("html_only_hostile.eml")
    timestamp, token = str(int(time.time())), secrets.token_hex(25)
    response = httpx.post(
        f"{live_server_url}/anymail/mailgun/inbound_mime/",
        data={
            "recipient": "conseiller@attitre.example",
            "body-mime": raw.decode(),
            "timestamp": timestamp,
            "token": token,
            "signature": hmac.new(
                MAILGUN_SIGNING_KEY.encode(), f"{timestamp}{token}".encode(), hashlib.sha256
            ).hexdigest(),
        },
        headers={"authorization": basic_auth(WEBHOOK_SECRET)},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    row = page.locator("#thread-list .thread-row").first
    expect(row).to_contain_text("Voici mon relevé", timeout=LIVE_SECONDS * 1000)

    message = Message.objects.get(provider="email")
    page.goto(f"{live_server_url}/inbox/threads/{message.thread_id}/")
    expect(page.locator(".email-subject")).to_have_text("Mon relevé")
    with page.context.expect_page() as opened:
        page.get_by_role("link", name="View the original email").click()
    original = opened.value
    original.wait_for_load_state("load")
    expect(original.locator("b")).to_have_text("du mois")
    assert original.locator("script, iframe, [onload], [onclick], [style]").count() == 0
    logo = original.locator('img[alt="logo"]')
    assert logo.evaluate("image => image.complete && image.naturalWidth") == 1
    original.screenshot(path=SCREENSHOTS / "attitre-email-original.png", full_page=True)

    assert dialogs == []
    assert [url for url in requests if not url.startswith(live_server_url)] == []
    assert not [problem for problem in problems if "Content Security Policy" not in problem]
