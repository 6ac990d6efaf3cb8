"""Queueing a task for the cluster, now or after a delay, in the caller's transaction.

A delayed task is an ordinary queued task, a row of django-q2's OrmQ, written with its
`lock` at the time it may run. django-q2's ORM broker (and ours, core/task_broker.py)
claims only the rows whose lock has passed, `lock < now`: that is how a task claimed by
one cluster stays away from the others until `retry` has passed. A row whose lock is in
the future is therefore claimed once, at the cluster's first poll after its time, and
deleted when its task is acknowledged, like any other. No Schedule row is written, none
is left behind, and no once-a-minute scheduler stands between the time and the run.
tests/core/test_tasks.py fails if django-q2 changes that claim rule.
"""

from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone
from django_q.models import Task
from django_q.tasks import async_task

from core.task_broker import OrmBroker


class _DelayedBroker(OrmBroker):
    """The configured broker, writing the one task it enqueues locked until `run_after`."""

    def __init__(self, *, run_after: datetime):
        super().__init__()
        self.run_after = run_after

    def enqueue(self, task):
        # django-q2's ORM.enqueue, with the lock at the run time instead of now.
        return self.get_connection().create(key=self.list_key, payload=task, lock=self.run_after).pk


def enqueue(func: str, *args, group: str, delay: timedelta | None = None, save: bool = False) -> str:
    """Queue `func(*args)` in the current transaction (it exists once that commits, never
    if it rolls back); with `delay`, it runs no sooner than now + delay, within the
    cluster's poll of that time. `save`: keep the result of a successful run as a Task
    (failures are kept either way). Returns the task's id."""
    options = {"group": group, "save": save}
    if delay is not None:
        options["broker"] = _DelayedBroker(run_after=timezone.now() + delay)
    return async_task(func, *args, q_options=options)


PRUNE_BATCH = 5000


def task_results_prune() -> int:
    """Run daily by the `task-results-prune` schedule (`manage.py ensure_schedules`): the task
    results django-q2 keeps (every failure, the last `save_limit` successes of the tasks that
    save theirs) that stopped more than ATTITRE_TASK_RESULT_RETENTION_DAYS ago go, in batches
    each of its own transaction. django-q2 never deletes a failure itself. Returns how many."""
    old = Task.objects.filter(stopped__lt=timezone.now() - timedelta(days=settings.ATTITRE_TASK_RESULT_RETENTION_DAYS))
    deleted = 0
    while ids := list(old.order_by("stopped").values_list("pk", flat=True)[:PRUNE_BATCH]):
        with transaction.atomic():
            Task.objects.filter(pk__in=ids).delete()
        deleted += len(ids)
    return deleted
