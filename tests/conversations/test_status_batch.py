"""Group commit for status callbacks: several callbacks applied in one transaction leave
exactly what they would one by one, cost a fixed number of statements, and a bad one
costs only its own answer."""

import logging
import re
from pathlib import Path
from urllib.parse import urlencode

import pytest
from django.db import connection, models, transaction
from django.http import QueryDict
from django.test.utils import CaptureQueriesContext

from conversations.models import Message, Thread
from conversations.providers import twilio as twilio_provider
from conversations.services import inbound as inbound_module
from conversations.services import message_status_apply, message_statuses_apply
from conversations.services.inbound import STATUS_STAMPS
from conversations.webhooks import WebhookRequest, handle_twilio_status_batch
from crm.models import ContactPoint
from events.models import Event
from tests import twilio
from tests.concurrency import run_at_once
from tests.factories import replies_handed_to_twilio

STATUS = "/webhooks/twilio/status/"
pytestmark = pytest.mark.django_db


def update(message: Message | None = None, status: str = "delivered", *, sid=None, our_id=None, **extra):
    """A parsed status callback, as the webhook hands it to the service."""
    sid = sid if sid is not None else message.provider_message_id
    query = QueryDict(f"m={our_id}" if our_id is not None else "")
    return twilio_provider.parse_status(
        QueryDict(urlencode(twilio.status_callback(sid=sid, status=status, **extra))), query
    )


def request_for(params: dict, query: str = "", signature: str | None = None) -> WebhookRequest:
    signature = signature if signature is not None else twilio.signature_for(STATUS, params, query)
    return WebhookRequest(STATUS, query, QueryDict(urlencode(params)), {"x-twilio-signature": signature})


@pytest.fixture
def outbounds(camille, alice):
    """Five replies to Camille, handed to Twilio (`sent`, each with its SID)."""
    thread = Thread.objects.create(
        customer=camille, dedicated_advisor=camille.dedicated_advisor, agency=camille.agency, handler=alice
    )
    return replies_handed_to_twilio(thread, 5)


def outcome(messages: list[Message]) -> dict:
    """What applying left behind, without clocks: each message's state and the events in order."""
    rows = Message.objects.filter(pk__in=[m.pk for m in messages]).order_by("pk")
    return {
        "messages": [
            (
                m.status,
                m.provider_message_id,
                m.error_code,
                m.error_message,
                m.delivered_at is not None,
                m.read_at is not None,
                m.failed_at is not None,
            )
            for m in rows
        ],
        "events": [
            (kind, {key: value for key, value in payload.items() if key != "at"})
            for kind, payload in Event.objects.order_by("pk").values_list("type", "payload")
        ],
        "consent": list(ContactPoint.objects.order_by("pk").values_list("consent", flat=True)),
    }


def test_a_batch_leaves_exactly_what_one_by_one_would(outbounds):
    """Callbacks in any order, two for one message, a late `delivered`, a terminal failure, an
    unknown SID, one matched by our id only: one batch leaves the same messages, events
    (in order) and consent as applying them one by one."""
    first, second, third, fourth, fifth = outbounds
    Message.objects.filter(pk=fifth.pk).update(provider_message_id=None, status="sending")
    fifth_sid = twilio.new_sid()
    updates = [
        update(first, "delivered"),
        update(first, "read"),
        update(second, "read"),
        update(second, "delivered"),  # late: changes only its timestamp
        update(third, "failed", ErrorCode="63016"),
        update(third, "delivered"),  # after a failure: nothing
        update(status="delivered", sid=twilio.new_sid()),  # not ours
        update(status="delivered", sid=fifth_sid, our_id=fifth.pk),  # before its SID was saved
        update(status="read", sid=fifth_sid),  # now found by that SID
        update(fourth, "undelivered", ErrorCode="21610"),  # opts Camille out
    ]

    with transaction.atomic():
        one_by_one_results = [message_status_apply(update=u) for u in updates]
        one_by_one = outcome(outbounds)
        transaction.set_rollback(True)

    results = message_statuses_apply(updates=updates)
    batched = outcome(outbounds)

    assert batched == one_by_one
    assert [r.pk if r else None for r in results] == [r.pk if r else None for r in one_by_one_results]
    assert [row[0] for row in batched["messages"]] == ["read", "read", "failed", "undelivered", "read"]
    assert batched["messages"][4][1] == fifth_sid
    assert [(kind, payload.get("status")) for kind, payload in batched["events"]] == [
        ("message.status", "delivered"),
        ("message.status", "read"),
        ("message.status", "read"),  # the second's late `delivered` only stamps its time
        ("message.status", "failed"),
        ("message.status", "delivered"),
        ("message.status", "read"),
        ("message.status", "undelivered"),
        ("consent.changed", None),
    ]
    assert batched["consent"][0] == ContactPoint.Consent.OPTED_OUT


def test_a_batch_costs_the_same_statements_for_two_messages_and_for_twenty(camille, alice):
    """Locking, writing and the events are one statement each (or one pipeline), whatever
    the batch's size."""
    thread = Thread.objects.create(
        customer=camille, dedicated_advisor=camille.dedicated_advisor, agency=camille.agency, handler=alice
    )

    counts = []
    # The first batch also reads the webhook endpoints, which the process then keeps for a while,
    # and makes the agency's journal head (two statements: tried, then locked).
    for count in (1, 2, 20):
        replies = replies_handed_to_twilio(thread, count, status="sending")
        updates = [update(m, status) for m in replies for status in ("sent", "delivered")]
        with CaptureQueriesContext(connection) as queries:
            message_statuses_apply(updates=updates)
        counts.append(len(queries))
    assert counts[0] == counts[1] + 3 == counts[2] + 3
    assert set(Message.objects.values_list("status", flat=True)) == {"delivered"}
    assert Event.objects.filter(type="message.status").count() == 2 * (1 + 2 + 20)


def test_forged_and_malformed_callbacks_get_their_own_answers(outbounds):
    """In one batch: a forged callback is a 403, one without status a 400; the others apply."""
    first, second = outbounds[:2]
    good = twilio.status_callback(sid=first.provider_message_id, status="delivered")
    forged = twilio.status_callback(sid=second.provider_message_id, status="failed")
    malformed = {**twilio.status_callback(sid=second.provider_message_id, status="read"), "MessageStatus": ""}
    malformed["SmsStatus"] = ""
    answers = handle_twilio_status_batch(
        [request_for(good), request_for(forged, signature="Zm9yZ2Vk"), request_for(malformed)]
    )
    assert [answer.status for answer in answers] == [204, 403, 400]
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status) == ("delivered", "sent")


def test_a_callback_that_fails_costs_only_its_own_answer(outbounds, monkeypatch, caplog):
    """When applying one callback raises, the batch is rolled back and applied one by one:
    the others apply and get a 204, the failing one a 500 (Twilio retries it), logged with
    its SID and where it failed, not the exception's message."""
    first, second, third = outbounds[:3]
    moves_forward = inbound_module._status_moves_forward
    body = second.body

    def failing_for_second(current, new):
        if new == "read":
            # As PostgreSQL's errors do, the message quotes the row, and the message's text.
            raise RuntimeError(f"Failing row contains (…, {body}, …)")
        return moves_forward(current, new)

    monkeypatch.setattr(inbound_module, "_status_moves_forward", failing_for_second)
    requests = [
        request_for(twilio.status_callback(sid=first.provider_message_id, status="delivered")),
        request_for(twilio.status_callback(sid=second.provider_message_id, status="read")),
        request_for(twilio.status_callback(sid=third.provider_message_id, status="delivered")),
    ]
    with caplog.at_level(logging.WARNING):
        answers = handle_twilio_status_batch(requests)

    assert [answer.status for answer in answers] == [204, 500, 204]
    statuses = dict(Message.objects.filter(pk__in=[first.pk, second.pk, third.pk]).values_list("pk", "status"))
    assert statuses == {first.pk: "delivered", second.pk: "sent", third.pk: "delivered"}
    assert f"status callback {second.provider_message_id} could not be stored: RuntimeError" in caplog.text
    assert "failing_for_second" in caplog.text
    assert body not in caplog.text


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_sharing_messages_do_not_deadlock(camille, alice):
    """Four batches holding callbacks for the same messages in different orders, committed
    at once on PostgreSQL: none fails (messages are locked in id order) and every message
    ends at its furthest status, with one event per status reached."""
    thread = Thread.objects.create(
        customer=camille, dedicated_advisor=camille.dedicated_advisor, agency=camille.agency, handler=alice
    )
    messages = replies_handed_to_twilio(thread, 8, status="sending")
    updates = [update(m, status) for status in ("sent", "delivered", "read") for m in messages]
    orders = [updates, updates[::-1], updates[::2] + updates[1::2], updates[1::2] + updates[::2]]
    outcomes = run_at_once([lambda order=order: len(message_statuses_apply(updates=order)) for order in orders])

    assert outcomes == [len(updates)] * len(orders)
    assert set(Message.objects.values_list("status", flat=True)) == {"read"}
    assert all(m.sent_at and m.delivered_at and m.read_at for m in Message.objects.all())
    # Each message's status only moved forward: at most one event per status it reached.
    statuses = list(Event.objects.filter(type="message.status").values_list("payload__message", "payload__status"))
    assert len(statuses) == len(set(statuses))
    assert {status for _, status in statuses} <= {"sent", "delivered", "read"}
    assert all((m.pk, "read") in statuses for m in messages)


def test_the_columns_a_status_stamps_are_named_once():
    """Each status a callback stamps has its date-time column of Message in one mapping,
    and every such column belongs to a status: nothing spells a column from a status."""
    for field in STATUS_STAMPS.values():
        assert isinstance(Message._meta.get_field(field), models.DateTimeField)
    columns = {field.name for field in Message._meta.fields if field.name.endswith("_at")} - {"created_at"}
    assert set(STATUS_STAMPS.values()) == columns


def test_no_column_name_is_built_from_a_value():
    """No f"{…}_at" in the apps: a column is named in a mapping (the channel registry's
    spec, the status stamps), never spelt from a channel or a status."""
    root = Path(__file__).resolve().parents[2]
    built = re.compile(r"""f["'][^"']*\{[^}]+\}_at["']""")
    offenders = [
        f"{path.relative_to(root)}:{number}"
        for app in ("core", "events", "crm", "conversations", "integrations", "channels_app")
        for path in sorted((root / app).rglob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if built.search(line)
    ]
    assert offenders == []
