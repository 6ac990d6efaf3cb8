"""End-to-end fixtures: the real ASGI application served by uvicorn in a thread of the test
process (so it shares the test database), and Debian's headless Chromium driven by Playwright."""

import os
import socket
import threading
import time

import pytest
import uvicorn
from channels.layers import channel_layers
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.db import connections

# The Twilio simulator (tests/servers.py), for the replies' round trip.
from tests.servers import simulator  # noqa: F401

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SERVER_START_SECONDS = 10


@pytest.fixture
def live_server_url(transactional_db, settings):
    """http://127.0.0.1:<port> serving config.asgi.application, websockets included.

    Static files come from the finders (Django's ASGIStaticFilesHandler in front of the
    application), as in development, so that no collectstatic is needed.
    """
    from config.asgi import application

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    base_url = f"http://127.0.0.1:{port}"
    # Twilio's signatures are computed over the public URL: here, the server's own.
    settings.PUBLIC_BASE_URL = base_url
    settings.WEBSOCKET_ALLOWED_ORIGINS = [base_url]  # the pages this server serves, on their port
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "127.0.0.1"]

    # A channel layer of its own: channels-redis lets one layer receive on one event loop at a
    # time, and a socket of the previous test's server (another loop) may still be closing.
    channel_layers.backends.clear()
    config = uvicorn.Config(
        ASGIStaticFilesHandler(application), host="127.0.0.1", port=port, lifespan="off", log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + SERVER_START_SECONDS
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail(f"uvicorn did not start on {base_url} within {SERVER_START_SECONDS} s.")
        time.sleep(0.02)
    yield base_url
    server.should_exit = True
    thread.join(SERVER_START_SECONDS)
    listener.close()
    channel_layers.backends.clear()
    connections.close_all()


@pytest.fixture
def browser():
    """Debian's Chromium, headless. Missing, the test fails (it does not skip): `make test` installs it."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"Chromium is missing ({CHROMIUM} not found): run `make test`, which installs Debian's chromium "
            "package (or `apt-get install -y chromium`)."
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("Playwright is not installed: run `make test`, which installs requirements.lock.")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def orm_beside_browser(browser, monkeypatch):
    """The ORM usable in the test body while Playwright's sync API keeps its event loop in this
    thread (the browser waits meanwhile: nothing runs concurrently). The connections opened
    there are closed before the browser, so that none outlives the test database."""
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    yield
    connections.close_all()
