"""What the event log keeps: no text in its payloads, and nothing past its retention but the
thread's history."""

import importlib
from datetime import timedelta
from io import StringIO

import pytest
from django.apps import apps
from django.core.management import call_command
from django.utils import timezone
from django_q.models import Schedule

from conversations import tasks
from conversations.models import Thread
from events.models import Event
from integrations.models import WebhookDelivery, WebhookEndpoint

pytestmark = pytest.mark.django_db


@pytest.fixture
def thread(camille, alice):
    return Thread.objects.create(customer=camille, agency=camille.agency, handler=alice)


def _event(thread, type, *, days_old: float, payload=None) -> Event:
    return Event.objects.create(
        type=type,
        thread=thread,
        agency=thread.agency,
        payload=payload or {},
        created_at=timezone.now() - timedelta(days=days_old),
    )


def test_events_past_the_retention_are_pruned_but_the_threads_history(settings, thread):
    """The daily task deletes events older than ATTITRE_EVENT_RETENTION_DAYS, with their webhook
    deliveries; the lines the thread's timeline shows (assignments, consent) stay."""
    settings.ATTITRE_EVENT_RETENTION_DAYS = 30
    old = _event(thread, Event.Type.MESSAGE_CREATED, days_old=31)
    _event(thread, Event.Type.MESSAGE_STATUS, days_old=40)
    history = _event(thread, Event.Type.THREAD_ASSIGNED, days_old=400)
    recent = _event(thread, Event.Type.MESSAGE_CREATED, days_old=29)
    endpoint = WebhookEndpoint.objects.create(url="http://127.0.0.1:9/hook", secret="s")
    WebhookDelivery.objects.create(endpoint=endpoint, event=old)

    assert tasks.events_prune() == 2

    assert set(Event.objects.values_list("pk", flat=True)) == {history.pk, recent.pk}
    assert not WebhookDelivery.objects.exists()


def test_ensure_schedules_prunes_the_log_daily_and_is_idempotent():
    """One daily schedule, created once however often the command runs."""
    for _ in range(2):
        call_command("ensure_schedules", stdout=StringIO())
    schedule = Schedule.objects.get(name="events-prune")
    assert Schedule.objects.filter(name=schedule.name).count() == 1
    assert (schedule.name, schedule.func, schedule.schedule_type) == (
        "events-prune",
        "conversations.tasks.events_prune",
        Schedule.DAILY,
    )


def test_the_text_already_in_the_log_is_taken_out(thread):
    """Events written before payloads lost their text keep their ids and metadata, not the text."""
    migration = importlib.import_module("conversations.migrations.0008_event_payloads_without_text")
    created = _event(
        thread,
        Event.Type.MESSAGE_CREATED,
        days_old=1,
        payload={
            "message": {
                "id": 7,
                "body": "Mon code est 1234",
                "profile_name": "Camille",
                "location": {"latitude": 45.7, "longitude": 4.8, "address": "1 rue X", "label": "Chez moi"},
                "button": None,
                "status": "received",
            },
            "thread_summary": {"id": thread.pk, "name": "Camille Martin", "last_message_preview": "Mon code"},
        },
    )
    note = _event(
        thread, Event.Type.NOTE_CREATED, days_old=1, payload={"note": {"id": 3, "body": "Appeler", "author": 1}}
    )
    status = _event(thread, Event.Type.MESSAGE_STATUS, days_old=1, payload={"message": 7, "status": "read"})

    migration.strip_text(apps, None)

    created.refresh_from_db()
    assert created.payload == {
        "message": {"id": 7, "status": "received", "has_location": True, "has_button": False},
        "thread_summary": {"id": thread.pk},
    }
    note.refresh_from_db()
    assert note.payload == {"note": {"id": 3, "author": 1}}
    status.refresh_from_db()
    assert status.payload == {"message": 7, "status": "read"}
