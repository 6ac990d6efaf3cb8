"""Delivering replies with the real twilio SDK over HTTP to the simulator, whose signed
status callbacks reach the app served over HTTP too."""

import threading
import time
from datetime import timedelta
from pathlib import PurePath
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test import Client
from django.utils import timezone
from django_q.models import OrmQ, Schedule

from conversations.models import Message, Thread
from conversations.providers.simulator import Phone
from conversations.services import message_deliver, message_send
from conversations.services.outbound import MAX_DELIVERY_ATTEMPTS
from crm.models import ContactPoint
from events.models import Event
from tests import twilio
from tests.queue import run_queued_tasks, waiting_tasks
from tests.servers import CAMILLE, ServerThread, closed_port_url, self_signed_certificate, wait_for

STATUS = "/webhooks/twilio/status/"


@pytest.fixture
def thread(camille):
    """Camille wrote on WhatsApp a minute ago (as far as both the app and Twilio know)."""
    twilio.receive(twilio.whatsapp_text(body="Bonjour"))
    OrmQ.objects.all().delete()
    return Thread.objects.get(customer=camille)


def send(thread, alice, **kwargs) -> Message:
    kwargs.setdefault("body", "Je regarde tout de suite.")
    return message_send(thread=thread, author=alice, **kwargs)


def deliver(message: Message) -> Message:
    assert run_queued_tasks() >= 1
    message.refresh_from_db()
    return message


def fault(sim, **spec) -> None:
    sim.phones[CAMILLE].faults.append(spec)


# --- End to end -------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_reply_is_sent_once_and_ends_delivered_through_signed_callbacks(live_app, simulator, thread, alice):
    """The SDK posts Twilio's fields; the simulator's signed callbacks move the message to delivered."""
    message = deliver(send(thread, alice))
    assert message.provider_message_id.startswith("SM")
    assert message.delivery_attempts == 1
    [sent] = simulator.log
    assert (sent["to"], sent["from"], sent["body"]) == (
        "whatsapp:+33612345678",
        "whatsapp:+33180000000",
        "Je regarde tout de suite.",
    )
    callback = urlsplit(sent["status_callback"])
    assert f"{callback.scheme}://{callback.netloc}" == live_app.url
    assert (callback.path, parse_qs(callback.query)) == (STATUS, {"m": [str(message.pk)]})

    assert wait_for(lambda: Message.objects.get(pk=message.pk).status == "delivered")
    message.refresh_from_db()
    assert message.sent_at is not None and message.delivered_at is not None
    assert [attempt["status"] for attempt in simulator.callbacks] == [204, 204]
    statuses = list(Event.objects.filter(type="message.status").values_list("payload__status", flat=True))
    assert statuses == ["sent", "delivered"]


@pytest.mark.django_db(transaction=True)
def test_status_callback_before_the_sid_is_saved_reconciles_by_our_id(live_app, simulator, thread, alice):
    """A worker that died after Twilio took the message: the callback (?m=<id>) sets the SID and status,
    and the redelivered task sends nothing again."""
    message = send(thread, alice)
    OrmQ.objects.all().delete()
    Message.objects.filter(pk=message.pk).update(
        status="sending", sending_at=timezone.now() - timedelta(minutes=2), delivery_attempts=1
    )
    params = twilio.status_callback(sid="SM" + "f" * 32, status="sent")
    response = twilio.post_signed(STATUS, params, query=f"m={message.pk}")
    assert response.status_code == 204

    message_deliver(message_id=message.pk)
    message.refresh_from_db()
    assert (message.status, message.provider_message_id) == ("sent", "SM" + "f" * 32)
    assert simulator.log == []


@pytest.mark.django_db(transaction=True)
def test_two_workers_running_the_same_delivery_send_once(simulator, thread, alice):
    """The same task run by two workers at the same instant calls Twilio once."""
    message = send(thread, alice)
    barrier = threading.Barrier(2)
    errors = []

    def worker():
        try:
            barrier.wait(timeout=10)
            message_deliver(message_id=message.pk)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    workers = [threading.Thread(target=worker) for _ in range(2)]
    for thread_ in workers:
        thread_.start()
    for thread_ in workers:
        thread_.join(timeout=30)
    assert errors == []
    assert len(simulator.log) == 1
    message.refresh_from_db()
    assert message.delivery_attempts == 1
    assert message.provider_message_id == simulator.log[0]["sid"]


# --- What is sent -----------------------------------------------------------------------


@pytest.mark.django_db
def test_duplicate_task_after_delivery_sends_nothing(simulator, thread, alice):
    """A replayed task finds the message past queued."""
    message = deliver(send(thread, alice))
    message_deliver(message_id=message.pk)
    assert len(simulator.log) == 1
    assert Message.objects.get(pk=message.pk).delivery_attempts == 1


@pytest.mark.django_db
def test_template_is_sent_as_content_sid_and_variables_outside_the_window(simulator, thread, alice):
    """Past 24 hours a template goes: ContentSid and ContentVariables, no Body."""
    from conversations.models import MessageTemplate

    template = MessageTemplate.objects.create(
        name="reprise_contact",
        content_sid=simulator.templates[0]["sid"],
        body=simulator.templates[0]["body"],
        variables={"1": "customer.first_name", "2": "advisor.name", "3": "agency.name"},
    )
    Thread.objects.filter(pk=thread.pk).update(last_whatsapp_inbound_at=timezone.now() - timedelta(days=3))
    simulator.phones[CAMILLE].last_whatsapp_at = None
    message = deliver(send(thread, alice, body="", template=template))
    assert message.status == "sending" and message.provider_message_id
    [sent] = simulator.log
    assert sent["body"] == ""
    assert sent["content_sid"] == template.content_sid
    assert sent["content_variables"] == {"1": "Camille", "2": "Alice Durand", "3": "Agence Lyon Bellecour"}


@pytest.mark.django_db
def test_sms_goes_from_the_sms_number(simulator, thread, alice):
    """An SMS reply: plain E.164 addresses."""
    deliver(send(thread, alice, channel="sms"))
    [sent] = simulator.log
    assert (sent["to"], sent["from"]) == ("+33612345678", "+33180000000")


@pytest.mark.django_db
def test_messaging_service_is_used_when_configured(simulator, thread, alice, settings):
    """With a Messaging Service, it sends instead of a From number."""
    settings.TWILIO_MESSAGING_SERVICE_SID = "MG" + "1" * 32
    deliver(send(thread, alice))
    [sent] = simulator.log
    assert (sent["from"], sent["messaging_service_sid"]) == ("", "MG" + "1" * 32)


@pytest.mark.django_db
def test_attachment_is_sent_as_a_signed_url_that_serves_the_file(simulator, thread, alice, settings):
    """Twilio gets the app's signed media route for the stored file, and fetches it without a session."""
    pdf = SimpleUploadedFile("releve.pdf", b"%PDF-1.4", content_type="application/pdf")
    message = deliver(send(thread, alice, body="Votre relevé", attachments=[pdf]))
    [sent] = simulator.log
    [url] = sent["media_url"]
    file_name = PurePath(message.attachments.get().file.name).name
    assert url.startswith(f"{settings.PUBLIC_BASE_URL}/webhooks/twilio/media/")
    assert url.endswith(f"/{file_name}")

    response = Client().get(urlsplit(url).path)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert b"".join(response.streaming_content) == b"%PDF-1.4"


# --- Errors -----------------------------------------------------------------------------


def assert_failed(message: Message, code: str, text: str) -> None:
    message.refresh_from_db()
    assert (message.status, message.error_code) == ("failed", code)
    assert text in message.error_message
    assert message.failed_at is not None
    event = Event.objects.filter(type="message.status").latest("id")
    assert event.payload == {
        "message": message.pk,
        "status": "failed",
        "error_code": code,
        "error_message": message.error_message,
    }
    assert not OrmQ.objects.exists()


@pytest.mark.django_db
def test_63016_outside_the_window_at_twilio_fails_with_advice(simulator, thread, alice):
    """Twilio knows the window is closed (the app thought otherwise): failed, send a template."""
    simulator.phones[CAMILLE].last_whatsapp_at = None
    message = deliver(send(thread, alice))
    assert_failed(message, "63016", "24-hour window: send an approved template")


@pytest.mark.django_db
def test_21610_fails_and_opts_the_contact_point_out(simulator, thread, alice):
    """The customer replied STOP at Twilio: failed, and the contact point is opted out, with its source."""
    simulator.phones[CAMILLE].opted_out = True
    message = deliver(send(thread, alice, channel="sms"))
    assert_failed_sms = Message.objects.get(pk=message.pk)
    assert (assert_failed_sms.status, assert_failed_sms.error_code) == ("failed", "21610")
    contact = ContactPoint.objects.get(kind="sms", address=CAMILLE)
    assert (contact.consent, contact.consent_source) == ("opted_out", "Twilio error 21610: the recipient unsubscribed")
    assert Event.objects.filter(type="consent.changed").exists()


@pytest.mark.django_db
def test_21211_unknown_number_fails_as_not_a_valid_recipient(simulator, thread, alice):
    """A number Twilio does not know: not a valid WhatsApp recipient."""
    del simulator.phones[CAMILLE]
    simulator.phones["+33699999999"] = Phone(number="+33699999999")
    message = deliver(send(thread, alice))
    assert_failed(message, "21211", "Not a valid WhatsApp recipient")


@pytest.mark.parametrize(
    ("code", "text"),
    [
        (63003, "Not a valid WhatsApp recipient"),
        (63024, "Not a valid WhatsApp recipient"),
        (63014, "blocked messages"),
        (30007, "Filtered by the carrier"),
        (12345, "failed (Twilio error 12345)"),
    ],
)
@pytest.mark.django_db
def test_final_twilio_errors_fail_with_a_specific_message(simulator, thread, alice, code, text):
    """Each final error code keeps its code and says what it means; unknown ones name the code."""
    fault(simulator, code=code)
    message = deliver(send(thread, alice))
    assert_failed(message, str(code), text)
    assert simulator.log == []


@pytest.mark.parametrize("spec", [{"code": 63018, "status": 429}, {"http_status": 429}, {"http_status": 503}])
@pytest.mark.django_db
def test_passing_errors_are_retried_with_backoff_then_fail(simulator, thread, alice, spec):
    """Rate limits and 5xx put the message back in the queue with a task delayed by 15 s,
    then 1 min, 4 min, 15 min; after the last attempt it fails. No Schedule is written."""
    simulator.phones[CAMILLE].faults = [dict(spec) for _ in range(MAX_DELIVERY_ATTEMPTS)]
    message = deliver(send(thread, alice))
    assert (message.status, message.delivery_attempts) == ("queued", 1)
    [(func, args, run_after)] = waiting_tasks()
    assert (func, args) == ("conversations.tasks.message_deliver", (message.pk,))
    assert timedelta(seconds=14) < run_after - timezone.now() <= timedelta(seconds=15)

    for _ in range(MAX_DELIVERY_ATTEMPTS - 1):
        message_deliver(message_id=message.pk)
    message.refresh_from_db()
    assert (message.status, message.delivery_attempts) == ("failed", MAX_DELIVERY_ATTEMPTS)
    assert "Gave up after 5 attempts" in message.error_message
    delays = [(run_after - timezone.now()).total_seconds() for _, _, run_after in waiting_tasks()]
    assert delays == pytest.approx([15, 60, 240, 900], abs=5)
    assert not Schedule.objects.exists()
    assert simulator.log == []


@pytest.mark.django_db
def test_retry_succeeds_once_twilio_is_back(simulator, thread, alice):
    """After a 503, the retry sends the message once."""
    fault(simulator, http_status=503)
    message = deliver(send(thread, alice))
    assert message.status == "queued"
    message_deliver(message_id=message.pk)
    message.refresh_from_db()
    assert message.status == "sending" and message.provider_message_id == simulator.log[0]["sid"]
    assert (len(simulator.log), message.delivery_attempts) == (1, 2)


@pytest.mark.django_db
def test_unreachable_twilio_is_retried(simulator, thread, alice, settings):
    """Connection refused: nothing was sent, so it is retried."""
    settings.TWILIO_API_BASE_URL = closed_port_url()
    message = deliver(send(thread, alice))
    assert (message.status, message.delivery_attempts) == ("queued", 1)
    assert len(waiting_tasks()) == 1


def test_a_server_whose_certificate_does_not_verify_gets_nothing(simulator, thread, alice, settings, tmp_path):
    """Twilio's address answered by a server with a self-signed certificate: the SDK's TLS
    check refuses it before the message leaves, and the message is not marked sent (it
    waits for the ambiguous-call check, as it never resends blindly)."""
    key, cert = self_signed_certificate(tmp_path)
    with ServerThread(simulator, ssl_keyfile=str(key), ssl_certfile=str(cert)) as impostor:
        settings.TWILIO_API_BASE_URL = impostor.url
        message = deliver(send(thread, alice))

    assert (message.status, message.provider_message_id) == ("sending", None)
    assert simulator.log == []


@pytest.mark.django_db
def test_read_timeout_is_not_resent_at_once_but_checked_a_minute_later(simulator, thread, alice):
    """No answer in time: Twilio may have it. The message stays sending, a check is queued for 60 s
    later; with no callback by then, it is sent again."""
    fault(simulator, delay=3)  # the SDK's timeout is 2 s in these tests
    message = deliver(send(thread, alice))
    assert (message.status, message.provider_message_id) == ("sending", None)
    [(_, args, run_after)] = waiting_tasks()
    assert args == (message.pk,)
    assert timedelta(seconds=55) < run_after - timezone.now() <= timedelta(seconds=60)

    message_deliver(message_id=message.pk)  # a duplicate right away does nothing
    assert Message.objects.get(pk=message.pk).delivery_attempts == 1

    Message.objects.filter(pk=message.pk).update(sending_at=timezone.now() - timedelta(seconds=61))
    message_deliver(message_id=message.pk)
    message.refresh_from_db()
    assert message.delivery_attempts == 2
    assert message.provider_message_id == simulator.log[-1]["sid"]


@pytest.mark.django_db(transaction=True)
def test_read_timeout_then_callback_is_never_resent(live_app, simulator, thread, alice):
    """Twilio took it although it answered late: its callback (?m=<id>) arrives, and the check sends nothing."""
    fault(simulator, delay=3)
    message = deliver(send(thread, alice))
    assert message.status == "sending"
    assert wait_for(lambda: Message.objects.get(pk=message.pk).status == "delivered", timeout=10)
    Message.objects.filter(pk=message.pk).update(sending_at=timezone.now() - timedelta(seconds=61))
    message_deliver(message_id=message.pk)
    assert len(simulator.log) == 1


@pytest.mark.django_db
def test_broken_connection_after_sending_is_treated_as_ambiguous(simulator, thread, alice):
    """The answer was lost on the way: not resent at once."""
    fault(simulator, drop=True)
    message = deliver(send(thread, alice))
    assert (message.status, message.delivery_attempts) == ("sending", 1)
    [(_, args, run_after)] = waiting_tasks()
    assert args == (message.pk,) and run_after - timezone.now() > timedelta(seconds=55)


@pytest.mark.django_db
def test_never_confirmed_after_the_last_attempt_fails(simulator, thread, alice):
    """A message the provider never confirmed, attempts exhausted, fails and says so."""
    message = send(thread, alice)
    OrmQ.objects.all().delete()
    Message.objects.filter(pk=message.pk).update(
        status="sending", sending_at=timezone.now() - timedelta(minutes=5), delivery_attempts=MAX_DELIVERY_ATTEMPTS
    )
    message_deliver(message_id=message.pk)
    message.refresh_from_db()
    assert message.status == "failed"
    assert "never confirmed" in message.error_message
    assert simulator.log == []


# --- Pacing -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_burst_of_sms_goes_to_twilio_at_once(simulator, thread, alice, monkeypatch):
    """Three SMS from one sender are handed over in one round of the queue, and no worker
    waits for a slot: pacing a sender is Twilio's queue's job (docs/delivery.md)."""
    messages = [send(thread, alice, channel="sms", body=f"Message {i}") for i in range(3)]
    monkeypatch.setattr(time, "sleep", lambda seconds: pytest.fail(f"a worker slept {seconds} s"))

    assert run_queued_tasks(max_rounds=1) == 3

    assert len(simulator.log) == 3
    assert all(Message.objects.get(pk=m.pk).status == "sending" for m in messages)
    assert not OrmQ.objects.exists()


@pytest.mark.parametrize(
    ("no_proxy", "proxied"), [("", True), ("api.twilio.com,content.twilio.com", False)], ids=["proxy", "no_proxy"]
)
def test_the_sdk_goes_through_the_environment_proxy(monkeypatch, settings, no_proxy, proxied):
    """A bank's outbound proxy (HTTPS_PROXY, unless NO_PROXY exempts Twilio) carries the
    SDK's calls; it is read when the client is made."""
    from conversations.providers import twilio as provider

    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.bank.example:3128")
    monkeypatch.setenv("NO_PROXY", no_proxy)
    settings.TWILIO_API_BASE_URL = provider.DEFAULT_API_BASE_URL
    settings.TWILIO_CONTENT_BASE_URL = ""
    provider._client.cache_clear()
    try:
        pool = provider.client().http_client.pool
    finally:
        provider._client.cache_clear()
    proxy = getattr(pool, "proxy", None)
    assert (proxy.host, proxy.port) == ("proxy.bank.example", 3128) if proxied else proxy is None
