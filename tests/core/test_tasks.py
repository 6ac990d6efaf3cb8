"""Queueing tasks, now or after a delay: a delayed task is a queued row locked until its
time, which django-q2's claim rule (`lock < now`) keeps from every cluster until then."""

import time
from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.brokers.orm import ORM
from django_q.conf import Conf
from django_q.models import OrmQ, Schedule
from django_q.signing import SignedPackage

from core.tasks import enqueue
from tests.queue import real_cluster

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_poll_wait(monkeypatch):
    monkeypatch.setattr(Conf, "POLL", 0)


def claimed(broker) -> list[tuple]:
    return [SignedPackage.loads(payload)["args"] for _, payload in broker.dequeue() or []]


def test_django_q2_claims_a_row_only_once_its_lock_has_passed():
    """Canary for core/tasks.py: django-q2's own ORM broker leaves a row locked in the future
    alone and claims it once the lock has passed. If an upgrade changes that rule, delayed
    tasks would run at once or never: this fails first."""
    enqueue("math.floor", 1.5, group="test", delay=timedelta(minutes=5))
    broker = ORM(list_key=Conf.CLUSTER_NAME)

    assert claimed(broker) == []
    assert broker.queue_size() == 0

    OrmQ.objects.update(lock=timezone.now() - timedelta(seconds=1))

    assert claimed(broker) == [(1.5,)]
    assert claimed(broker) == []


def test_a_delayed_row_differs_from_django_q2s_own_only_by_its_lock():
    """Canary: the delayed enqueue writes the row django-q2's ORM.enqueue writes (same key,
    a payload it reads), with the lock moved to the run time."""
    ORM(list_key=Conf.CLUSTER_NAME).enqueue(SignedPackage.dumps({"func": "math.floor", "args": (0.5,)}))
    before = timezone.now()
    enqueue("math.floor", 2.5, group="test", delay=timedelta(seconds=30))

    own, delayed = OrmQ.objects.order_by("pk")
    assert own.key == delayed.key == Conf.CLUSTER_NAME
    assert own.lock <= before
    assert before + timedelta(seconds=30) <= delayed.lock <= timezone.now() + timedelta(seconds=30)
    assert SignedPackage.loads(delayed.payload)["args"] == (2.5,)


def test_the_configured_broker_runs_a_delayed_task_once_after_its_time():
    """With the configured broker (ours on PostgreSQL): not claimed before its time, claimed
    once after it, while a task queued after it with no delay is claimed at once."""
    enqueue("math.floor", 1.5, group="test", delay=timedelta(minutes=1))
    enqueue("math.floor", 2.5, group="test")
    broker = get_broker()

    assert claimed(broker) == [(2.5,)]
    assert claimed(broker) == []

    first = OrmQ.objects.order_by("pk").first()
    OrmQ.objects.filter(pk=first.pk).update(lock=timezone.now() - timedelta(seconds=1))

    assert claimed(broker) == [(1.5,)]
    assert claimed(broker) == []


def test_task_options_travel_with_the_task():
    """The group and `save` reach the worker in the payload; no delay means lock now."""
    enqueue("math.floor", 3.5, group="outbound")
    [queued] = OrmQ.objects.all()
    task = SignedPackage.loads(queued.payload)
    assert (task["func"], task["args"], task["group"], task["save"]) == ("math.floor", (3.5,), "outbound", False)
    assert queued.lock <= timezone.now()


def test_a_delayed_task_of_a_rolled_back_transaction_never_exists():
    """A delayed task is written in the caller's transaction, as any task is."""
    with transaction.atomic():
        enqueue("math.floor", 1.5, group="test", delay=timedelta(seconds=15))
        transaction.set_rollback(True)
    assert not OrmQ.objects.exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_real_cluster_runs_a_delayed_task_once_not_before_its_time(tmp_path):
    """`manage.py qcluster` runs a task delayed by 3 s once, no sooner than 3 s after it
    was queued, after a task queued later without delay; no Schedule or OrmQ row is left."""
    delay = 3
    delayed = tmp_path / "delayed"

    with real_cluster(Q_WORKERS="1"):
        # Queued once the cluster runs: a cluster slower to start than the delay (a busy
        # machine) would find both tasks due at its first poll and run them in queue order.
        enqueue("tests.tasks_for_cluster.stamp", str(tmp_path), "ready", group="test")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (tmp_path / "ready").exists():
            time.sleep(0.2)
        queued_at = time.time()
        enqueue("tests.tasks_for_cluster.stamp", str(tmp_path), "delayed", group="test", delay=timedelta(seconds=delay))
        enqueue("tests.tasks_for_cluster.stamp", str(tmp_path), "now", group="test")
        while time.monotonic() < deadline and (OrmQ.objects.exists() or not delayed.exists()):
            time.sleep(0.2)

    [ran_at] = [float(line) for line in delayed.read_text().split()]
    [ran_now] = [float(line) for line in (tmp_path / "now").read_text().split()]
    assert ran_at >= queued_at + delay
    assert ran_now < ran_at
    assert not OrmQ.objects.exists()
    assert not Schedule.objects.exists()
