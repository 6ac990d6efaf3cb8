"""Real HTTP servers in background threads for the outbound tests: the Twilio/phone
simulator, and the app itself (so the simulator's status callbacks reach it)."""

import ipaddress
import socket
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import uvicorn
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.db import connections

from conversations.providers.simulator import Phone, Simulator
from tests import twilio

CAMILLE = "+33612345678"


class ServerThread:
    def __init__(self, app, *, lifespan: str = "off", **config):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        scheme = "https" if config.get("ssl_certfile") else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(
            uvicorn.Config(app, log_level="warning", lifespan=lifespan, access_log=False, **config)
        )
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("test server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


def self_signed_certificate(directory: Path) -> tuple[str, str]:
    """A key and a certificate for 127.0.0.1 that no authority signed: (key file, cert file)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    key_file, cert_file = directory / "key.pem", directory / "cert.pem"
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return str(key_file), str(cert_file)


def closed_port_url() -> str:
    """An address where nothing listens: callbacks to it fail at once, without DNS."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
def simulator(settings):
    """The simulator on a free port; the SDK points at it. Camille wrote on WhatsApp a minute ago."""
    settings.DEBUG = True
    settings.TWILIO_WHATSAPP_FROM = twilio.BANK_WHATSAPP
    settings.TWILIO_SMS_FROM = twilio.BANK_SMS
    settings.TWILIO_MESSAGING_SERVICE_SID = ""
    settings.TWILIO_API_TIMEOUT = 2
    if settings.PUBLIC_BASE_URL.startswith("https://"):
        settings.PUBLIC_BASE_URL = closed_port_url()
    sim = Simulator(
        account_sid=settings.TWILIO_ACCOUNT_SID,
        auth_token=settings.TWILIO_AUTH_TOKEN,
        app_base_url=settings.PUBLIC_BASE_URL,
        phones=[
            Phone(number=CAMILLE, name="Camille Martin", last_whatsapp_at=time.time() - 60),
            Phone(number="+33698765432", name="Julien Moreau"),
        ],
        bank_whatsapp=twilio.BANK_WHATSAPP,
        bank_sms=twilio.BANK_SMS,
        callback_delay=0,
    )
    with ServerThread(sim, lifespan="on") as server:
        settings.TWILIO_API_BASE_URL = server.url
        sim.url = server.url
        yield sim


@pytest.fixture
def live_app(settings, transactional_db):
    """The app (config.asgi) served over HTTP; PUBLIC_BASE_URL points at it."""
    from config.asgi import application

    with ServerThread(application) as server:
        settings.PUBLIC_BASE_URL = server.url
        yield server
    connections.close_all()


def wait_for(predicate, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.02)
