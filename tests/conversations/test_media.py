"""Inbound media: downloaded by a task from a local server that plays Twilio's media host."""

import base64
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone
from django_q.models import Schedule

from conversations.media import MAX_ATTEMPTS
from conversations.models import Attachment, Message
from events.models import Event
from tests import twilio
from tests.queue import run_queued_tasks, waiting_tasks

MESSAGES = "/webhooks/twilio/messages/"
JPEG = b"\xff\xd8\xff\xe0" + b"fake-jpeg-bytes" * 100
# Through the ASGI application, whose webhook route stores from its own threads: committed rows.
pytestmark = pytest.mark.django_db(transaction=True)


class FakeTwilioMedia(BaseHTTPRequestHandler):
    requests: list[str] = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        FakeTwilioMedia.requests.append(self.path)
        expected = (
            "Basic " + base64.b64encode(f"{twilio.ACCOUNT_SID}:test-auth-token-0123456789abcdef".encode()).decode()
        )
        if self.path.startswith("/cdn/"):
            return self._send(200, "image/jpeg", JPEG)
        if self.headers.get("Authorization") != expected:
            return self._send(401, "application/json", b'{"code": 20003}')
        routes = {
            "/media/photo": (200, "image/jpeg", JPEG),
            "/media/exe": (200, "application/x-msdownload", b"MZ"),
            "/media/big": (200, "image/jpeg", b"x" * 4096),
            "/media/flaky": (503, "text/plain", b"busy"),
            "/media/gone": (404, "text/plain", b"gone"),
        }
        port = self.server.server_port
        redirects = {
            "/media/redirect": f"http://127.0.0.1:{port}/cdn/photo",
            "/media/to-loopback": f"http://localhost:{port}/cdn/photo",
            "/media/to-metadata": "http://169.254.169.254/latest/meta-data/iam",
            "/media/relative": "/cdn/photo",
            "/media/loop": "/media/loop",
        }
        if self.path in redirects:
            self.send_response(302 if self.path != "/media/redirect" else 307)
            self.send_header("Location", redirects[self.path])
            self.end_headers()
            return None
        return self._send(*routes.get(self.path, (404, "text/plain", b"?")))

    def _send(self, status, content_type, body):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def media_server(settings):
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeTwilioMedia)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    FakeTwilioMedia.requests = []
    base = f"http://127.0.0.1:{server.server_port}"
    settings.TWILIO_API_BASE_URL = base
    yield base
    server.shutdown()
    server.server_close()


def receive_image(url: str, content_type: str = "image/jpeg") -> Attachment:
    params = twilio.whatsapp_image(url=url, content_type=content_type)
    assert twilio.post_signed(MESSAGES, params).status_code == 200
    return Attachment.objects.get(message__provider_message_id=params["MessageSid"])


def test_image_is_downloaded_with_basic_auth_into_storage(camille, media_server):
    """The task fetches the file with the account's credentials and stores it."""
    attachment = receive_image(f"{media_server}/media/photo")
    assert run_queued_tasks() == 1
    attachment.refresh_from_db()
    assert attachment.state == "stored"
    assert attachment.size == len(JPEG)
    with attachment.file.open("rb") as stored:
        assert stored.read() == JPEG
    assert attachment.file.name.endswith(".jpg")
    assert Event.objects.filter(type="attachment.updated", payload__attachment__state="stored").count() == 1


def test_redirect_to_the_cdn_is_followed(camille, media_server):
    """Twilio redirects media to its CDN; the redirect is followed."""
    attachment = receive_image(f"{media_server}/media/redirect")
    run_queued_tasks()
    attachment.refresh_from_db()
    assert attachment.state == "stored"
    assert FakeTwilioMedia.requests == ["/media/redirect", "/cdn/photo"]


@pytest.mark.parametrize(
    ("path", "reason", "requests"),
    [
        ("/media/to-loopback", "redirected: media host localhost is not Twilio's", ["/media/to-loopback"]),
        ("/media/to-metadata", "redirected: media host 169.254.169.254 is not Twilio's", ["/media/to-metadata"]),
        ("/media/loop", "more than 3 redirects", ["/media/loop"] * 4),
    ],
)
def test_every_redirect_hop_is_checked_as_the_first_was(camille, media_server, path, reason, requests):
    """An allowed host answering a redirect to an address we refuse (loopback by another
    name, the cloud metadata service) or redirecting without end: refused, never fetched,
    and the message is kept."""
    attachment = receive_image(f"{media_server}{path}")
    run_queued_tasks()
    attachment.refresh_from_db()
    assert (attachment.state, attachment.error) == ("refused", reason)
    assert FakeTwilioMedia.requests == requests
    assert Message.objects.filter(pk=attachment.message_id).exists()


def test_a_relative_redirect_on_twilios_host_is_followed(camille, media_server):
    """A Location relative to the media URL stays on its host, and is followed."""
    attachment = receive_image(f"{media_server}/media/relative")
    run_queued_tasks()
    attachment.refresh_from_db()
    assert attachment.state == "stored"
    assert FakeTwilioMedia.requests == ["/media/relative", "/cdn/photo"]


def test_forged_media_host_is_refused_without_any_request(camille, media_server):
    """A MediaUrl outside Twilio's hosts is never fetched (no SSRF), and the message is kept."""
    attachment = receive_image("http://169.254.169.254/latest/meta-data/iam")
    run_queued_tasks()
    attachment.refresh_from_db()
    assert attachment.state == "refused"
    assert "169.254.169.254" in attachment.error
    assert FakeTwilioMedia.requests == []
    assert Message.objects.filter(pk=attachment.message_id).exists()


def test_https_is_required_for_twilio_hosts(camille, media_server):
    """Plain http to Twilio's real media host is refused."""
    attachment = receive_image("http://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1")
    run_queued_tasks()
    attachment.refresh_from_db()
    assert (attachment.state, attachment.error) == ("refused", "media URL is not https")


def test_content_type_outside_whatsapps_list_is_refused(camille, media_server):
    """A served type WhatsApp does not accept is refused and not stored."""
    attachment = receive_image(f"{media_server}/media/exe", content_type="image/jpeg")
    run_queued_tasks()
    attachment.refresh_from_db()
    assert attachment.state == "refused"
    assert "application/x-msdownload" in attachment.error
    assert not attachment.file


def test_file_over_the_size_limit_is_refused(camille, media_server, settings):
    """A file over the limit (16 MB by default) is refused without being kept."""
    settings.TWILIO_MEDIA_MAX_BYTES = 1024
    attachment = receive_image(f"{media_server}/media/big")
    run_queued_tasks()
    attachment.refresh_from_db()
    assert attachment.state == "refused"
    assert "larger than" in attachment.error


def test_gone_media_is_refused_not_retried(camille, media_server):
    """A 404 is final."""
    attachment = receive_image(f"{media_server}/media/gone")
    run_queued_tasks()
    attachment.refresh_from_db()
    assert attachment.state == "refused"
    assert waiting_tasks() == []


def test_passing_failure_is_retried_a_bounded_number_of_times(camille, media_server):
    """A 503 queues a retry 30 s later, then 2 min, 10 min; after the last attempt the
    attachment is failed, the message kept. No Schedule is written."""
    attachment = receive_image(f"{media_server}/media/flaky")
    run_queued_tasks()
    attachment.refresh_from_db()
    assert (attachment.state, attachment.attempts) == ("pending", 1)
    [(func, args, _)] = waiting_tasks()
    assert (func, args) == ("conversations.tasks.attachment_download", (attachment.pk,))

    from conversations.tasks import attachment_download

    for _ in range(MAX_ATTEMPTS - 1):
        attachment_download(attachment.pk)
    attachment.refresh_from_db()
    assert (attachment.state, attachment.attempts) == ("failed", MAX_ATTEMPTS)
    assert attachment.error == "HTTP 503"
    delays = [(run_after - timezone.now()).total_seconds() for _, _, run_after in waiting_tasks()]
    assert delays == pytest.approx([30, 120, 600], abs=5)
    assert not Schedule.objects.exists()
    assert Message.objects.filter(pk=attachment.message_id).exists()


def test_wrong_credentials_are_not_retried_forever(camille, media_server, settings):
    """With the wrong credentials Twilio answers 401: retried, then failed."""
    settings.TWILIO_AUTH_TOKEN = "not-the-token"
    params = twilio.whatsapp_image(url=f"{media_server}/media/photo")
    signature = twilio.signature_for(MESSAGES, params, token="not-the-token")
    twilio.post_signed(MESSAGES, params, signature=signature)
    run_queued_tasks()
    attachment = Attachment.objects.get()
    assert attachment.error == "HTTP 401"
    assert attachment.state == "pending"


def test_finished_attachment_is_not_fetched_again(camille, media_server):
    """A duplicate task for a stored attachment does nothing."""
    attachment = receive_image(f"{media_server}/media/photo")
    run_queued_tasks()
    from conversations.tasks import attachment_download

    attachment_download(attachment.pk)
    assert FakeTwilioMedia.requests == ["/media/photo"]
