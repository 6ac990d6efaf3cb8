import importlib
from datetime import timedelta

import pytest
from django.apps import apps
from django.utils import timezone
from django_q.models import OrmQ, Schedule
from django_q.signing import SignedPackage

from tests.queue import waiting_tasks

migration = importlib.import_module("core.migrations.0001_retry_schedules_to_delayed_tasks")

pytestmark = pytest.mark.django_db


def once(name: str, func: str, args: str, *, in_seconds: int, run: bool = False) -> Schedule:
    return Schedule.objects.create(
        name=name,
        func=func,
        args=args,
        schedule_type=Schedule.ONCE,
        repeats=0 if run else 1,
        next_run=timezone.now() + timedelta(seconds=in_seconds),
    )


def test_waiting_retry_schedules_become_delayed_tasks_and_every_retry_schedule_goes():
    """A retry still waiting runs at its time as a delayed task (an overdue one at once);
    retries already run leave no task; schedules that are not retries stay."""
    once("message-7-retry-1", "conversations.tasks.message_deliver", "7", in_seconds=40)
    once("message-8-check-2", "conversations.tasks.message_deliver", "8", in_seconds=-5)
    once("attachment-9-retry-1", "conversations.tasks.attachment_download", "9", in_seconds=100)
    once("webhook-delivery-10", "integrations.tasks.webhook_deliver", "10", in_seconds=600)
    once("webhook-delivery-11", "integrations.tasks.webhook_deliver", "11", in_seconds=-3600, run=True)
    once("message-12-retry-1", "conversations.tasks.message_deliver", "12", in_seconds=-3600, run=True)
    Schedule.objects.create(name="webhook-dispatch", func="integrations.tasks.webhook_dispatch", schedule_type="I")
    once("a-bank-s-own", "bank.tasks.report", "1", in_seconds=60)

    migration.to_delayed_tasks(apps, None)

    assert sorted(Schedule.objects.values_list("name", flat=True)) == ["a-bank-s-own", "webhook-dispatch"]
    now = timezone.now()
    waiting = [(func, args, round((run_after - now).total_seconds())) for func, args, run_after in waiting_tasks()]
    assert waiting == [
        ("conversations.tasks.message_deliver", (7,), 40),
        ("conversations.tasks.attachment_download", (9,), 100),
        ("integrations.tasks.webhook_deliver", (10,), 600),
    ]
    tasks = {SignedPackage.loads(queued.payload)["args"]: queued for queued in OrmQ.objects.all()}
    assert sorted(tasks) == [(7,), (8,), (9,), (10,)]
    assert tasks[(8,)].lock <= now
    groups = {args: SignedPackage.loads(queued.payload)["group"] for args, queued in tasks.items()}
    assert groups == {(7,): "outbound", (8,): "outbound", (9,): "media", (10,): "webhooks"}
