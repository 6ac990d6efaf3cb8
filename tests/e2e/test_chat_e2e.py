"""The web chat widget in a real browser, embedded in a page of another origin (the bank's
site, served here by a small server of its own that mints the token as a bank's backend
would), talking to alice's open inbox both ways; hostile markup stays text on both sides."""

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest

from conversations.models import Message, Thread
from tests.e2e.test_inbox_e2e import LIVE_SECONDS, SCREENSHOTS, VIEWPORT, sign_in

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "the-bank-and-attitre-share-this-secret-0123456789"
HOSTILE = '<img src=x onerror="window.pwned=1">Ma carte <b>est</b> bloquée'
REPLY = "Je la débloque <script>window.pwned=2</script> tout de suite."

BANK_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Ma Banque — your space</title>
<style>button {{ background: red !important; }} div {{ display: none; }}</style></head>
<body><h1>Welcome to your space</h1>
<script src="{server}/static/chat/widget.js"></script>
<script>
  AttitreChat.init({{tokenProvider: () => fetch("/my-bank/chat-token").then((r) => r.text())}});
</script></body></html>"""


@pytest.fixture
def bank_site(camille):
    """http://localhost:<port>: the bank's page, and its backend's token endpoint for Camille."""
    holder = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/my-bank/chat-token":
                now = int(time.time())
                claims = {"sub": camille.customer_number, "iat": now, "exp": now + 600, "locale": "en"}
                body = jwt.encode(claims, SECRET, algorithm="HS256").encode()
                kind = "text/plain"
            else:
                body = BANK_PAGE.format(server=holder["server"]).encode()
                kind = "text/html; charset=utf-8"
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    holder["origin"] = f"http://localhost:{port}"
    yield holder
    server.shutdown()
    server.server_close()


def test_the_widget_on_the_banks_site_talks_with_alices_open_inbox(
    live_server_url, bank_site, alice, camille, browser, orm_beside_browser, settings
):
    from playwright.sync_api import expect

    settings.CHAT_JWT_SECRET = SECRET
    settings.CHAT_ALLOWED_ORIGINS = [bank_site["origin"]]
    bank_site["server"] = live_server_url

    inbox, inbox_problems = sign_in(browser, live_server_url, "alice")
    customer = browser.new_context(viewport=VIEWPORT, locale="en-GB").new_page()
    customer_problems = []
    customer.on("console", lambda message: customer_problems.append(message.text) if message.type == "error" else None)
    customer.on("pageerror", lambda error: customer_problems.append(str(error)))
    customer.goto(bank_site["origin"] + "/")

    # The launcher, reachable by keyboard and labelled; the host page's styles do not reach it.
    launcher = customer.get_by_role("button", name="Chat with your advisor")
    expect(launcher).to_be_visible(timeout=LIVE_SECONDS * 1000)
    assert launcher.evaluate("b => getComputedStyle(b).backgroundColor") != "rgb(255, 0, 0)"
    launcher.focus()
    customer.keyboard.press("Enter")
    dialog = customer.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("heading")).to_have_text("Alice Durand", timeout=LIVE_SECONDS * 1000)
    expect(dialog).to_contain_text("Alice Durand — online")
    box = dialog.get_by_label("Write your message")
    expect(box).to_be_focused()

    box.fill(HOSTILE)
    customer.keyboard.press("Enter")
    mine = dialog.locator(".msg.customer").last
    expect(mine).to_contain_text("Sent", timeout=LIVE_SECONDS * 1000)
    assert mine.evaluate("m => m.firstChild.textContent") == HOSTILE

    # alice's inbox: the row arrives live, the text as text.
    row = inbox.locator("#thread-list .thread-row").first
    expect(row).to_contain_text("Camille Martin", timeout=LIVE_SECONDS * 1000)
    row.get_by_role("link").click()
    expect(inbox.locator("#timeline")).to_contain_text(HOSTILE)
    expect(inbox.locator("#chat-presence")).to_have_text("On the bank's site now")
    stored = Message.objects.get(direction="inbound")
    assert (stored.channel, stored.body) == ("webchat", HOSTILE)

    # The composer answers on web chat, where Camille last wrote; the widget shows it live.
    expect(inbox.locator("#reply-channel")).to_have_value("webchat")
    inbox.get_by_label("Reply to the customer").fill(REPLY)
    inbox.get_by_role("button", name="Send", exact=True).click()
    theirs = dialog.locator(".msg.advisor").last
    expect(theirs).to_contain_text(REPLY, timeout=LIVE_SECONDS * 1000)
    expect(theirs).to_contain_text("Alice Durand")
    reply = Message.objects.get(direction="outbound")
    assert reply.channel == "webchat"

    # Seen in the open widget: read, without the customer doing anything more.
    deadline = time.monotonic() + LIVE_SECONDS
    while Message.objects.get(pk=reply.pk).status != "read" and time.monotonic() < deadline:
        customer.wait_for_timeout(100)
    assert Message.objects.get(pk=reply.pk).status == "read"

    customer.screenshot(path=SCREENSHOTS / "attitre-chat-widget.png")

    # Escape closes the dialog and gives the focus back to the launcher.
    dialog.get_by_label("Write your message").focus()
    customer.keyboard.press("Escape")
    expect(launcher).to_be_focused()

    # Leaving the page: alice's inbox shows it.
    customer.close()
    expect(inbox.locator("#chat-presence")).to_have_text("Not on the site", timeout=LIVE_SECONDS * 1000)
    inbox.screenshot(path=SCREENSHOTS / "attitre-chat-inbox.png", full_page=True)

    assert inbox.evaluate("window.pwned") is None
    assert Thread.objects.get(customer=camille).last_inbound_channel == "webchat"
    assert inbox_problems == [] and customer_problems == [], json.dumps([inbox_problems, customer_problems])


def test_the_widget_keeps_what_was_typed_offline_and_sends_it_once(
    live_server_url, bank_site, alice, camille, browser, orm_beside_browser, settings
):
    """Typed while the socket is down (the server refuses it for a moment): kept in
    localStorage, sent on reconnect by its client id, stored once."""
    from playwright.sync_api import expect

    settings.CHAT_JWT_SECRET = SECRET
    settings.CHAT_ALLOWED_ORIGINS = []  # the chat refuses the bank's origin for now
    bank_site["server"] = live_server_url
    page = browser.new_context(viewport=VIEWPORT, locale="en-GB").new_page()
    page.goto(bank_site["origin"] + "/")
    page.get_by_role("button", name="Chat with your advisor").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Write your message").fill("Typed offline")
    page.keyboard.press("Enter")
    expect(dialog).to_contain_text("Offline: your messages will be sent when the connection returns.")
    outbox = page.evaluate("Object.keys(localStorage).filter(k => k.startsWith('attitre-chat-outbox'))")
    assert outbox == [f"attitre-chat-outbox:{camille.customer_number}"]
    assert not Message.objects.exists()

    settings.CHAT_ALLOWED_ORIGINS = [bank_site["origin"]]
    expect(dialog.locator(".msg.customer").last).to_contain_text("Sent", timeout=40_000)
    assert Message.objects.filter(body="Typed offline").count() == 1
    assert page.evaluate(f"localStorage.getItem('attitre-chat-outbox:{camille.customer_number}')") == "[]"
