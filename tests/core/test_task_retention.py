"""The task table stays bounded: django-q2 keeps every failure and never deletes one; a
daily schedule prunes the results past ATTITRE_TASK_RESULT_RETENTION_DAYS."""

import uuid
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_q.models import Failure, Schedule, Success, Task

from core import tasks

pytestmark = pytest.mark.django_db


def _result(*, success: bool, days_old: float) -> Task:
    stopped = timezone.now() - timedelta(days=days_old)
    return Task.objects.create(
        id=uuid.uuid4().hex,
        name=f"task-{uuid.uuid4().hex[:8]}",
        func="conversations.tasks.message_deliver",
        started=stopped - timedelta(seconds=1),
        stopped=stopped,
        success=success,
    )


def test_results_past_the_retention_are_pruned_failures_and_successes(settings):
    """Failures and successes that stopped more than the retention ago go; younger ones stay."""
    settings.ATTITRE_TASK_RESULT_RETENTION_DAYS = 30
    _result(success=False, days_old=31)
    _result(success=True, days_old=400)
    kept_failure = _result(success=False, days_old=29)
    kept_success = _result(success=True, days_old=1)

    assert tasks.task_results_prune() == 2

    assert list(Failure.objects.values_list("pk", flat=True)) == [kept_failure.pk]
    assert list(Success.objects.values_list("pk", flat=True)) == [kept_success.pk]
    assert tasks.task_results_prune() == 0


def test_ensure_schedules_prunes_the_task_results_daily():
    for _ in range(2):
        call_command("ensure_schedules", stdout=StringIO())
    schedule = Schedule.objects.get(name="task-results-prune")
    assert (schedule.func, schedule.schedule_type, schedule.repeats) == (
        "core.tasks.task_results_prune",
        Schedule.DAILY,
        -1,
    )
