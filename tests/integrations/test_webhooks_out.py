"""Events delivered to integrators' endpoints: signed, retried, refused inside our network."""

import hashlib
import hmac
import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django_q.models import Schedule

from conversations.models import Thread
from conversations.services import thread_set_status
from integrations.models import WebhookDelivery, WebhookEndpoint
from integrations.services import WebhookRefused, webhook_deliver, webhook_url_check
from tests.queue import queued_funcs, run_queued_tasks, waiting_tasks

pytestmark = pytest.mark.django_db
SECRET = "whsec-test-0123456789"


class Receiver(BaseHTTPRequestHandler):
    """Verifies the signature; answers 500 to the first delivery, then `then`."""

    received: list[dict] = []
    then = 200

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        valid = hmac.compare_digest(expected, self.headers.get("X-Attitre-Signature", ""))
        Receiver.received.append(
            {"valid": valid, "event_id": self.headers.get("X-Attitre-Event-Id"), "body": json.loads(body)}
        )
        status = 500 if len(Receiver.received) == 1 else Receiver.then
        self.send_response(status if valid else 401)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def receiver():
    Receiver.received = []
    Receiver.then = 200
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hooks/attitre"
    server.shutdown()
    server.server_close()


@pytest.fixture
def thread(camille, alice):
    return Thread.objects.create(
        customer=camille, dedicated_advisor=camille.dedicated_advisor, agency=camille.agency, handler=alice
    )


def _endpoint(url, agency=None, types=("thread.updated",)):
    return WebhookEndpoint.objects.create(url=url, secret=SECRET, event_types=list(types), agency=agency)


def test_signed_delivery_is_retried_after_a_failure(receiver, thread, alice):
    """The receiver's 500 is logged and retried later; the second attempt succeeds."""
    endpoint = _endpoint(receiver, agency=alice.agency)
    thread_set_status(thread=thread, by=alice, status="closed")
    assert queued_funcs() == ["integrations.tasks.webhook_deliver"]  # written with the event
    run_queued_tasks()

    first = WebhookDelivery.objects.get(endpoint=endpoint, attempt=1)
    assert (first.state, first.status_code) == ("failed", 500)
    assert first.next_retry_at is not None
    retry = WebhookDelivery.objects.get(endpoint=endpoint, attempt=2)
    [(func, args, run_after)] = waiting_tasks()
    assert (func, args) == ("integrations.tasks.webhook_deliver", (retry.pk,))
    assert abs(run_after - first.next_retry_at) < timedelta(seconds=1)
    assert not Schedule.objects.exists()

    webhook_deliver(delivery_id=retry.pk)  # what the delayed task runs
    retry.refresh_from_db()
    assert (retry.state, retry.status_code) == ("succeeded", 200)
    assert retry.duration_ms is not None
    assert [r["valid"] for r in Receiver.received] == [True, True]
    body = Receiver.received[1]["body"]
    assert body["type"] == "thread.updated"
    assert Receiver.received[1]["event_id"] == str(body["id"])
    assert body["data"]["thread_summary"]["status"] == "closed"
    endpoint.refresh_from_db()
    assert endpoint.failure_count == 0


def test_a_private_address_is_refused_unless_allowed(settings, receiver, thread, alice):
    """Without ATTITRE_WEBHOOKS_ALLOW_PRIVATE, 127.0.0.1 is never called."""
    settings.ATTITRE_WEBHOOKS_ALLOW_PRIVATE = False
    endpoint = _endpoint(receiver)
    thread_set_status(thread=thread, by=alice, status="closed")
    run_queued_tasks()
    delivery = WebhookDelivery.objects.get(endpoint=endpoint, attempt=1)
    assert delivery.state == "failed"
    assert "internal address" in delivery.error
    assert Receiver.received == []


@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/x", "http://localhost/", "http://10.1.2.3/", "http://169.254.169.254/", "http://[::1]/"],
)
def test_url_check_refuses_internal_and_non_http_urls(settings, url):
    settings.ATTITRE_WEBHOOKS_ALLOW_PRIVATE = False
    with pytest.raises(WebhookRefused):
        webhook_url_check(url)


def test_an_endpoint_failing_repeatedly_is_disabled(settings, receiver, thread, alice):
    """After N failures in a row the endpoint is switched off, saying why."""
    settings.ATTITRE_WEBHOOK_DISABLE_AFTER_FAILURES = 3
    Receiver.then = 503
    endpoint = _endpoint(receiver)
    thread_set_status(thread=thread, by=alice, status="closed")
    run_queued_tasks()
    for attempt in (2, 3):
        webhook_deliver(delivery_id=WebhookDelivery.objects.get(endpoint=endpoint, attempt=attempt).pk)
    endpoint.refresh_from_db()
    assert endpoint.active is False
    assert "3 failed deliveries in a row" in endpoint.disabled_reason
    assert not WebhookDelivery.objects.filter(endpoint=endpoint, attempt=4).exists()


def test_endpoints_get_only_their_agency_and_types(receiver, thread, alice, other_agency):
    """An endpoint of another agency, or for other event types, gets nothing."""
    _endpoint(receiver, agency=other_agency)
    _endpoint(receiver, types=("message.created",))
    thread_set_status(thread=thread, by=alice, status="closed")
    assert not WebhookDelivery.objects.exists()
    assert queued_funcs() == []
