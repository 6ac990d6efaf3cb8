import importlib

import pytest
from django.apps import apps
from django_q.models import OrmQ, Schedule
from django_q.signing import SignedPackage
from django_q.tasks import async_task

migration = importlib.import_module("integrations.migrations.0002_task_paths_from_crm")

pytestmark = pytest.mark.django_db


def queued_funcs() -> list[str]:
    return sorted(SignedPackage.loads(queued.payload)["func"] for queued in OrmQ.objects.all())


def test_webhook_tasks_scheduled_or_queued_under_crm_follow_to_integrations():
    """The dispatch schedule, a retry scheduled for later and a delivery waiting in the queue
    under the old crm.tasks paths run integrations.tasks after the upgrade; others are untouched."""
    Schedule.objects.create(name="webhook-dispatch", func="crm.tasks.webhook_dispatch", schedule_type=Schedule.MINUTES)
    Schedule.objects.create(name="webhook-delivery-7", func="crm.tasks.webhook_deliver", args="7")
    Schedule.objects.create(name="other", func="conversations.tasks.message_deliver")
    async_task("crm.tasks.webhook_deliver", 8, q_options={"group": "webhooks", "save": False})
    async_task("conversations.tasks.message_deliver", 9)

    migration.to_integrations(apps, None)

    assert sorted(Schedule.objects.values_list("func", flat=True)) == [
        "conversations.tasks.message_deliver",
        "integrations.tasks.webhook_deliver",
        "integrations.tasks.webhook_dispatch",
    ]
    assert queued_funcs() == ["conversations.tasks.message_deliver", "integrations.tasks.webhook_deliver"]
    assert [SignedPackage.loads(q.payload)["args"] for q in OrmQ.objects.order_by("pk")] == [(8,), (9,)]

    migration.to_crm(apps, None)
    assert queued_funcs() == ["conversations.tasks.message_deliver", "crm.tasks.webhook_deliver"]


def test_the_dispatcher_goes_with_its_schedule_and_its_queued_runs():
    """Deliveries are queued with their events now: the dispatch schedule and any dispatch run
    still queued go (their function is gone); deliveries and other tasks stay."""
    dispatch = importlib.import_module("integrations.migrations.0003_webhook_cursor_gone")
    Schedule.objects.create(name="webhook-dispatch", func=dispatch.DISPATCH, schedule_type=Schedule.MINUTES)
    Schedule.objects.create(name="a-bank-s-own", func="bank.tasks.report")
    async_task(dispatch.DISPATCH, q_options={"group": "webhooks", "save": False})
    async_task("integrations.tasks.webhook_deliver", 8, q_options={"group": "webhooks", "save": False})

    dispatch.drop_dispatcher(apps, None)

    assert list(Schedule.objects.values_list("name", flat=True)) == ["a-bank-s-own"]
    assert queued_funcs() == ["integrations.tasks.webhook_deliver"]
