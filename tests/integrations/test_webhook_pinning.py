"""Event webhooks connect to the address their check vetted, never to a second lookup's
(DNS rebinding), keeping the URL's host name for Host, SNI and the certificate check.

The resolver is the outer edge faked here: `socket.getaddrinfo` answers for the test's
names as a hostile or a bank's DNS server would; the connections are real."""

import hashlib
import hmac
import ipaddress
import socket
import ssl
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from conversations.models import Thread
from conversations.services import thread_set_status
from integrations.models import WebhookDelivery, WebhookEndpoint
from tests.queue import run_queued_tasks

pytestmark = pytest.mark.django_db
SECRET = "whsec-test-0123456789"
PUBLIC = "93.184.215.14"  # a public address: nothing answers it from this machine


class Receiver(BaseHTTPRequestHandler):
    received: list[dict] = []

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        Receiver.received.append(
            {"host": self.headers["Host"], "valid": hmac.compare_digest(expected, self.headers["X-Attitre-Signature"])}
        )
        self.send_response(204)
        self.end_headers()


@pytest.fixture
def server():
    """A receiver on 127.0.0.1; `.tls(cert, key)` makes it speak https."""
    Receiver.received = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threads = []

    def start():
        thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        threads.append(thread)

    def tls(cert_file, key_file):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
        httpd.socket = context.wrap_socket(httpd.socket, server_side=True)

    httpd.start, httpd.tls = start, tls
    yield httpd
    if threads:
        httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def resolver(monkeypatch):
    """Answers for *.bank.test from a script: each name's list of answers, one per lookup
    (the last one repeats), each answer a comma-separated list of addresses."""
    answers: dict[str, list[str]] = {}
    lookups: list[str] = []
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if isinstance(host, str) and host.endswith(".bank.test"):
            lookups.append(host)
            script = answers[host]
            answer = script.pop(0) if len(script) > 1 else script[0]
            return [
                (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, int(port)))
                for address in answer.split(",")
            ]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers, lookups


def _certificate(tmp_path, name: str) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return str(cert_file), str(key_file)


def _deliver(url, camille, alice) -> WebhookDelivery:
    endpoint = WebhookEndpoint.objects.create(url=url, secret=SECRET, event_types=["thread.updated"])
    thread = Thread.objects.create(
        customer=camille, dedicated_advisor=camille.dedicated_advisor, agency=camille.agency, handler=alice
    )
    thread_set_status(thread=thread, by=alice, status="closed")
    run_queued_tasks()
    return WebhookDelivery.objects.get(endpoint=endpoint, attempt=1)


def test_a_name_rebinding_to_loopback_after_the_check_reaches_nothing(settings, server, resolver, camille, alice):
    """The name answers a public address to the check and 127.0.0.1 afterwards: the delivery
    goes to the public address it checked (which does not answer here), never to loopback."""
    settings.ATTITRE_WEBHOOKS_ALLOW_PRIVATE = False
    settings.ATTITRE_WEBHOOK_TIMEOUT_SECONDS = 0.5
    server.start()
    answers, lookups = resolver
    answers["rebind.bank.test"] = [PUBLIC, "127.0.0.1"]

    delivery = _deliver(f"http://rebind.bank.test:{server.server_port}/hooks", camille, alice)

    assert Receiver.received == []
    assert lookups == ["rebind.bank.test"]  # one lookup: the check's
    assert delivery.state == "failed"
    assert "could not be reached" in delivery.error


def test_https_to_the_vetted_address_keeps_the_host_name_for_sni_and_the_certificate(
    settings, server, resolver, tmp_path, monkeypatch, camille, alice
):
    """Connected to the address the check returned, the request still names its host: the
    Host header, SNI and the certificate's name are the URL's, and the signature is valid."""
    settings.ATTITRE_WEBHOOKS_ALLOW_PRIVATE = True  # the receiver is on loopback here
    cert_file, key_file = _certificate(tmp_path, "hooks.bank.test")
    monkeypatch.setenv("SSL_CERT_FILE", cert_file)
    server.tls(cert_file, key_file)
    server.start()
    answers, lookups = resolver
    answers["hooks.bank.test"] = ["127.0.0.1"]

    delivery = _deliver(f"https://hooks.bank.test:{server.server_port}/hooks", camille, alice)

    assert (delivery.state, delivery.status_code) == ("succeeded", 204)
    assert Receiver.received == [{"host": f"hooks.bank.test:{server.server_port}", "valid": True}]
    assert lookups == ["hooks.bank.test"]


def test_a_certificate_for_another_name_is_refused(settings, server, resolver, tmp_path, monkeypatch, camille, alice):
    """Pinning the address does not loosen TLS: a certificate that does not name the URL's
    host fails the delivery, and nothing is sent."""
    settings.ATTITRE_WEBHOOKS_ALLOW_PRIVATE = True
    cert_file, key_file = _certificate(tmp_path, "hooks.bank.test")
    monkeypatch.setenv("SSL_CERT_FILE", cert_file)
    server.tls(cert_file, key_file)
    server.start()
    answers, _ = resolver
    answers["impostor.bank.test"] = ["127.0.0.1"]

    delivery = _deliver(f"https://impostor.bank.test:{server.server_port}/hooks", camille, alice)

    assert delivery.state == "failed"
    assert "could not be reached" in delivery.error
    assert Receiver.received == []


def test_every_address_of_the_name_is_vetted_before_any_is_called(settings, resolver):
    """A name answering several addresses, one of them internal, is refused as a whole."""
    from integrations.services import WebhookRefused, webhook_url_check

    settings.ATTITRE_WEBHOOKS_ALLOW_PRIVATE = False
    answers, _ = resolver
    answers["public.bank.test"] = [f"{PUBLIC},1.1.1.1"]
    assert webhook_url_check("https://public.bank.test/hooks") == [
        ipaddress.ip_address(PUBLIC),
        ipaddress.ip_address("1.1.1.1"),
    ]
    answers["mixed.bank.test"] = [f"{PUBLIC},10.0.0.8"]
    with pytest.raises(WebhookRefused, match="10.0.0.8"):
        webhook_url_check("https://mixed.bank.test/hooks")
