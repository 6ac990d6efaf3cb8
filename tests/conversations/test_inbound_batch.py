"""Group commit: several inbound messages stored in one transaction behave exactly as
if they had been stored one by one, cost a fixed number of statements, and a bad one
costs only its own answer."""

import logging
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.db import connection, transaction
from django.http import QueryDict
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from conversations.models import Message, Thread
from conversations.providers import twilio as twilio_provider
from conversations.services import inbound as inbound_module
from conversations.services import inbound_message_receive, inbound_messages_receive
from conversations.webhooks import WebhookRequest, handle_twilio_inbound_batch
from crm.models import ContactPoint
from events.models import Event
from tests import twilio
from tests.concurrency import run_at_once
from tests.conftest import ON_POSTGRES
from tests.factories import ContactPointFactory, CustomerFactory, add_deputy

MESSAGES = "/webhooks/twilio/messages/"
pytestmark = pytest.mark.django_db


def form(params: dict) -> QueryDict:
    return QueryDict(urlencode(params))


def inbound(**kwargs):
    """A parsed WhatsApp message, as the webhook hands it to the service."""
    return twilio_provider.parse_inbound(form(twilio.whatsapp_text(**kwargs)))


def request_for(params: dict, signature: str | None = None) -> WebhookRequest:
    signature = signature if signature is not None else twilio.signature_for(MESSAGES, params)
    return WebhookRequest(MESSAGES, "", form(params), {"x-twilio-signature": signature})


@pytest.fixture
def dora(bob):
    customer = CustomerFactory(first_name="Dora", last_name="Petit", dedicated_advisor=bob, agency=bob.agency)
    ContactPointFactory(customer=customer, kind="whatsapp", address="+33622334455")
    return customer


def outcome() -> dict:
    """What storing left behind, without ids and clocks: per thread, its state and its
    events in order, as an advisor's inbox would see them."""
    threads = {}
    for thread in Thread.objects.select_related("customer", "prospect").order_by("pk"):
        name = thread.customer.full_name if thread.customer else thread.prospect.address
        events = []
        for event in Event.objects.filter(thread=thread).order_by("pk"):
            payload = event.payload
            summary = payload.get("thread_summary") or {}
            events.append(
                (
                    event.type,
                    (payload.get("message") or {}).get("body"),
                    (payload.get("message") or {}).get("consent_change"),
                    summary.get("unread_count"),
                    summary.get("handler"),
                    summary.get("routing_reason_code"),
                    summary.get("routing_reason_params"),
                    payload.get("previous_handler"),
                    payload.get("consent"),
                )
            )
        threads[name] = {
            "handler": thread.handler_id,
            "reason": thread.routing_reason,
            "unread": thread.unread_count,
            "preview": thread.last_message_preview,
            "channel": thread.last_inbound_channel,
            "sms": thread.last_sms_inbound_at is not None,
            "whatsapp": thread.last_whatsapp_inbound_at is not None,
            "bodies": list(thread.messages.filter(automatic="").order_by("pk").values_list("body", "consent_change")),
            # Stored after the batch's messages, one by one after each: the same, in another id order.
            "automatic": sorted(thread.messages.exclude(automatic="").values_list("automatic", "body")),
            "events": events,
        }
    consent = dict(ContactPoint.objects.values_list("address", "consent"))
    return {"threads": threads, "consent": consent}


def test_a_batch_leaves_exactly_what_one_by_one_would(camille, dora, alice, bob, sam):
    """The same messages, stored one by one and then as one batch, leave the same threads,
    messages, consent and events, in the same order: routing to a deputy, a new prospect
    writing twice, two channels, and STOP then START from the same phone."""
    now = timezone.now()
    alice.out_of_office_from, alice.out_of_office_until = now - timedelta(days=1), now + timedelta(days=3)
    alice.save()
    add_deputy(alice, bob)
    scenario = [
        dict(body="Bonjour, ma carte est bloquée"),
        dict(body="Je suis Dora", sender="+33622334455"),
        dict(body="Un nouveau numéro", sender="+33699000111"),
        dict(body="STOP"),
        dict(body="Encore moi", sender="+33699000111"),
        dict(body="start"),
        dict(body="Merci", sender="+33622334455"),
    ]
    messages = [inbound(**kwargs) for kwargs in scenario]
    messages.insert(4, twilio_provider.parse_inbound(form(twilio.sms(body="Et par SMS"))))

    with transaction.atomic():
        results = [inbound_message_receive(inbound=m) for m in messages]
        one_by_one = outcome()
        transaction.set_rollback(True)
    assert all(result.created for result in results)

    results = inbound_messages_receive(inbounds=messages)
    assert all(result.created for result in results)
    assert [result.message.body for result in results] == [m.body for m in messages]
    batched = outcome()

    assert batched == one_by_one
    camille_thread = batched["threads"]["Camille Martin"]
    assert (camille_thread["handler"], camille_thread["unread"], camille_thread["channel"]) == (bob.pk, 4, "whatsapp")
    assert camille_thread["sms"] and camille_thread["whatsapp"]
    assert str(camille_thread["reason"]).startswith("deputy of alice")
    assert [e[0] for e in camille_thread["events"]] == [
        "thread.assigned",
        "message.created",
        "message.created",  # the automatic reply: alice is away, bob covers
        "consent.changed",
        "message.created",
        "message.created",
        "consent.changed",
        "message.created",
    ]
    # The unread count of each message event: the automatic reply (second) leaves it as it was.
    assert [e[3] for e in camille_thread["events"] if e[0] == "message.created"] == [1, 1, 2, 3, 4]
    assert [kind for kind, _body in camille_thread["automatic"]] == ["away"]
    assert batched["consent"]["+33612345678"] == ContactPoint.Consent.OPTED_IN
    assert batched["threads"]["+33699000111"]["handler"] is None
    assert batched["threads"]["+33699000111"]["unread"] == 2


def test_replays_within_and_before_a_batch_are_stored_once(camille):
    """A message already stored and a twin within the batch are answered as replays;
    the thread counts each message once."""
    stored = inbound(body="Déjà reçu", sid=twilio.new_sid())
    inbound_message_receive(inbound=stored)
    fresh = inbound(body="Nouveau", sid=twilio.new_sid())

    results = inbound_messages_receive(inbounds=[stored, fresh, fresh])

    assert [result.created for result in results] == [False, True, False]
    assert results[1].message.pk == results[2].message.pk
    assert Message.objects.count() == 2
    assert Thread.objects.get().unread_count == 2
    assert Event.objects.filter(type="message.created").count() == 2


def test_a_batch_costs_the_same_statements_for_5_and_for_50_messages(agency, alice):
    """Group commit's point: the statements do not grow with the batch (each customer's
    thread already exists, as for customers who have written before)."""
    numbers = [f"+33611{i:06d}" for i in range(50)]
    for number in numbers:
        ContactPointFactory(customer=CustomerFactory(dedicated_advisor=alice, agency=agency), address=number)
        inbound_message_receive(inbound=inbound(sender=number))

    def statements(count: int) -> int:
        with CaptureQueriesContext(connection) as queries:
            inbound_messages_receive(inbounds=[inbound(sender=number) for number in numbers[:count]])
        return len(queries)

    assert statements(5) == statements(50)
    assert Message.objects.count() == 50 + 5 + 50


def test_a_lone_message_from_a_known_customer_costs_seven_statements(camille):
    """The live inbox waits for each statement of a lone message: the customer and their
    locked thread in one, the message, the thread's update, the event; and the journal's
    (docs/journal.md): its body read for its hash, the agency's chain head locked, the entry
    written and the head moved (one statement on PostgreSQL, two on SQLite)."""
    inbound_message_receive(inbound=inbound(body="Bonjour"))
    with CaptureQueriesContext(connection) as queries:
        result = inbound_message_receive(inbound=inbound(body="Vous êtes là ?"))
    statements = [query["sql"] for query in queries if not query["sql"].startswith(("SAVEPOINT", "RELEASE"))]
    journal = 2 if ON_POSTGRES else 3
    assert sum("journal_" in sql for sql in statements) == journal
    assert len(statements) == 5 + journal, statements
    assert result.created and result.message.thread.unread_count == 2
    assert Thread.objects.get().unread_count == 2


def test_one_bad_request_in_a_batch_gets_its_own_answer(camille):
    """A forged or malformed request in a batch is refused alone; the others are stored."""
    good = twilio.whatsapp_text(body="Bon")
    forged = twilio.whatsapp_text(body="Forgé")
    malformed = twilio.whatsapp_text(body="Sans expéditeur")
    malformed.pop("From")
    other = twilio.sms(body="Bon aussi")

    answers = handle_twilio_inbound_batch(
        [request_for(good), request_for(forged, signature="Zm9yZ2Vk"), request_for(malformed), request_for(other)]
    )

    assert [answer.status for answer in answers] == [200, 403, 400, 200]
    assert answers[2].body == b"From is missing."
    assert sorted(Message.objects.values_list("body", flat=True)) == ["Bon", "Bon aussi"]


def test_a_message_that_fails_costs_only_its_own_answer(camille, dora, monkeypatch, caplog):
    """When storing one message raises, the batch is rolled back and stored again one by
    one: the others are stored and answered 200; the failing one gets a 500 (Twilio
    retries it) and is logged without its body."""
    route = inbound_module._route
    doras_text = "Secret de Dora"

    def route_failing_for_dora(thread, contact, at):
        if contact.address == "+33622334455":
            # As PostgreSQL's errors do, the message quotes the row, and the customer's text.
            raise RuntimeError(f"Failing row contains (…, {doras_text}, …)")
        return route(thread, contact, at)

    monkeypatch.setattr(inbound_module, "_route", route_failing_for_dora)
    requests = [
        request_for(twilio.whatsapp_text(body="Camille 1")),
        request_for(twilio.whatsapp_text(body=doras_text, sender="+33622334455")),
        request_for(twilio.whatsapp_text(body="Camille 2")),
    ]
    with caplog.at_level(logging.WARNING):
        answers = handle_twilio_inbound_batch(requests)

    assert [answer.status for answer in answers] == [200, 500, 200]
    assert list(Message.objects.order_by("pk").values_list("body", flat=True)) == ["Camille 1", "Camille 2"]
    assert Thread.objects.get(customer=camille).unread_count == 2
    assert not Thread.objects.filter(customer=dora).exists()
    assert "could not be stored: RuntimeError" in caplog.text
    assert "route_failing_for_dora" in caplog.text  # where it failed
    assert "Secret de Dora" not in caplog.text


def test_a_single_request_that_fails_raises_as_before(camille, monkeypatch):
    """Alone, a failure propagates (the Django view answers 500, the lean route too)."""
    monkeypatch.setattr(inbound_module, "_route", lambda *args: (_ for _ in ()).throw(RuntimeError("bug")))
    with pytest.raises(RuntimeError):
        handle_twilio_inbound_batch([request_for(twilio.whatsapp_text())])
    assert not Message.objects.exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_sharing_messages_store_each_once(agency, alice):
    """Four batches holding the same twelve messages in different orders, committed at
    once on PostgreSQL: each message is stored once, no batch fails, and each thread
    counts its messages exactly (threads are locked in id order: no deadlock)."""
    numbers = [f"+33633{i:06d}" for i in range(6)]
    for number in numbers:
        ContactPointFactory(customer=CustomerFactory(dedicated_advisor=alice, agency=agency), address=number)
    messages = [inbound(sender=number, body=f"{number} {n}") for number in numbers for n in range(2)]
    orders = [messages, messages[::-1], messages[::2] + messages[1::2], messages[1::2] + messages[::2]]
    outcomes = run_at_once(
        [lambda order=order: sum(r.created for r in inbound_messages_receive(inbounds=order)) for order in orders]
    )

    assert all(isinstance(created, int) for created in outcomes), outcomes
    assert sum(outcomes) == len(messages)
    assert Message.objects.count() == len(messages)
    assert list(Thread.objects.values_list("unread_count", flat=True)) == [2] * len(numbers)


def test_a_stored_message_delivered_twice_in_one_batch_is_two_replays(camille, caplog):
    """Twilio's retry and its original, both arriving after the message was stored, in the
    same batch: two replays, answered without falling back to one-by-one storage."""
    params = twilio.whatsapp_text(body="Une fois")
    inbound_message_receive(inbound=twilio_provider.parse_inbound(form(params)))

    with caplog.at_level(logging.WARNING):
        answers = handle_twilio_inbound_batch([request_for(params), request_for(params)])

    assert [answer.status for answer in answers] == [200, 200]
    assert "one by one" not in caplog.text
    assert Message.objects.count() == 1
    assert Thread.objects.get().unread_count == 1
