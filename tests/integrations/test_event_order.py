"""The event log read in commit order: a transaction that commits after a later one's is
neither skipped by the API's feed nor missed by the webhooks (the inbox socket's replay:
tests/channels_app/test_consumer.py). With real concurrent transactions on PostgreSQL."""

import psycopg
import pytest
from django.db import connection, transaction

from conversations.models import Thread
from conversations.services import thread_set_status
from events.models import Event
from integrations.models import WebhookDelivery, WebhookEndpoint
from integrations.services import webhooks_queue
from tests.concurrency import transaction_held_open
from tests.factories import CustomerFactory
from tests.queue import queued_funcs

pytestmark = pytest.mark.django_db


@pytest.fixture
def threads(camille, alice):
    dora = CustomerFactory(first_name="Dora", last_name="Petit", dedicated_advisor=alice, agency=alice.agency)
    return [
        Thread.objects.create(customer=customer, agency=alice.agency, handler=alice) for customer in (camille, dora)
    ]


def _close(thread, advisor) -> int:
    thread_set_status(thread=thread, by=advisor, status="closed")
    return Event.objects.filter(thread=thread).latest("pk").pk


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_event_feed_hands_out_a_late_commit_before_what_followed_it(key_client, threads, alice, settings):
    """Camille's transaction draws the smaller id and commits after Dora's: the feed holds Dora's
    event back while Camille's transaction runs, then hands out both, in commit order, to a
    client that passes back `next_since` (with ids alone it would never see Camille's)."""
    # The journal serialises an agency's commits (its chain head is locked until each commits):
    # off here, for the log's own handling of out-of-order commits (other agencies, journal off).
    settings.ATTITRE_JOURNAL_ENABLED = False
    with transaction_held_open(lambda: _close(threads[0], alice)) as late:
        later = _close(threads[1], alice)
        assert late.result < later
        page = key_client.get("/api/v1/events/").json()
        assert page == {"results": [], "next_since": 0}
    page = key_client.get(f"/api/v1/events/?since={page['next_since']}").json()
    assert [event["id"] for event in page["results"]] == [late.result, later]
    assert key_client.get(f"/api/v1/events/?since={page['next_since']}").json()["results"] == []


@pytest.mark.postgres
def test_event_feed_is_not_held_back_by_a_transaction_of_another_database(key_client, threads, alice):
    """Transaction ids are shared by the cluster's databases: one left open in another database
    does not hold the feed back, only this database's writers could add events below it."""
    params = {**connection.get_connection_params(), "dbname": "postgres"}
    params.pop("cursor_factory", None)
    params.pop("context", None)
    with psycopg.connect(**params) as other:
        other.execute("SELECT pg_current_xact_id()")  # an open transaction, with its id, older than ours
        event_id = _close(threads[0], alice)
        assert [event["id"] for event in key_client.get("/api/v1/events/").json()["results"]] == [event_id]
        other.rollback()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_webhooks_of_a_late_commit_are_queued_with_it(threads, alice, settings):
    """Each event's deliveries, and their tasks, are written in its own transaction: Dora's come
    as soon as hers commits, Camille's with Camille's later commit; nothing reads the log."""
    # The journal serialises an agency's commits (its chain head is locked until each commits):
    # off here, for the log's own handling of out-of-order commits (other agencies, journal off).
    settings.ATTITRE_JOURNAL_ENABLED = False
    endpoint = WebhookEndpoint.objects.create(url="http://127.0.0.1:9/hook", secret="s")
    with transaction_held_open(lambda: _close(threads[0], alice)) as late:
        later = _close(threads[1], alice)
        assert list(WebhookDelivery.objects.values_list("event_id", flat=True)) == [later]
    assert sorted(WebhookDelivery.objects.filter(endpoint=endpoint).values_list("event_id", flat=True)) == [
        late.result,
        later,
    ]
    assert queued_funcs() == ["integrations.tasks.webhook_deliver"] * 2


def test_an_event_rolled_back_sends_no_webhook(threads, alice):
    """The delivery and its task roll back with the event: the broker is the outbox."""
    WebhookEndpoint.objects.create(url="http://127.0.0.1:9/hook", secret="s")
    with pytest.raises(RuntimeError), transaction.atomic():
        _close(threads[0], alice)
        assert WebhookDelivery.objects.count() == 1
        raise RuntimeError("the service failed after its event")
    assert not WebhookDelivery.objects.exists()
    assert queued_funcs() == []


def test_appending_costs_no_query_when_no_endpoint_wants_the_event(threads, alice, django_assert_num_queries):
    """The active endpoints are cached: an event no endpoint wants costs no query; an endpoint
    created is read at the next event, and one switched off meanwhile gets nothing."""
    WebhookEndpoint.objects.create(url="http://127.0.0.1:9/hook", secret="s", event_types=["message.created"])
    event = Event.objects.create(type=Event.Type.THREAD_UPDATED, thread=threads[0], agency=alice.agency)
    webhooks_queue([event])  # reads the endpoints once
    with django_assert_num_queries(0):
        webhooks_queue([event])

    wanting = WebhookEndpoint.objects.create(url="http://127.0.0.1:9/all", secret="s")
    webhooks_queue([event])
    assert list(WebhookDelivery.objects.values_list("endpoint_id", flat=True)) == [wanting.pk]

    WebhookEndpoint.objects.filter(pk=wanting.pk).update(active=False)  # no signal: the cache still has it
    webhooks_queue([event])
    assert WebhookDelivery.objects.count() == 1
