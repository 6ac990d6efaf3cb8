"""The task broker: django-q2's ORM broker, claiming and acknowledging with one statement each
on PostgreSQL. Tasks are enqueued by django-q2 itself, in the caller's transaction."""

import inspect
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone
from django_q import pusher
from django_q.brokers import get_broker
from django_q.brokers.orm import ORM
from django_q.conf import Conf
from django_q.models import OrmQ
from django_q.signing import SignedPackage
from django_q.tasks import async_task

from core.task_broker import OrmBroker
from tests.concurrency import run_at_once
from tests.pins import assert_tested_version
from tests.queue import real_cluster

pytestmark = pytest.mark.django_db


def enqueue(count: int) -> list[str]:
    return [async_task("math.floor", n + 0.5) for n in range(count)]


def claimed_args(batch) -> list:
    return [SignedPackage.loads(payload)["args"] for _, payload in batch]


def test_the_configured_broker_is_ours():
    """django-q2 hands out our broker (the cluster's pusher and monitor use get_broker)."""
    assert isinstance(get_broker(), OrmBroker)


def test_tasks_are_claimed_in_bulk_oldest_first_and_once(monkeypatch):
    """A claim takes up to `bulk` tasks in the order queued and locks them: the next claim
    gets the rest, and a third finds nothing while their locks hold."""
    monkeypatch.setattr(Conf, "BULK", 3)
    monkeypatch.setattr(Conf, "POLL", 0)
    enqueue(5)
    broker = get_broker()

    first, second, third = broker.dequeue(), broker.dequeue(), broker.dequeue()

    assert claimed_args(first) == [(0.5,), (1.5,), (2.5,)]
    assert claimed_args(second) == [(3.5,), (4.5,)]
    assert not third
    assert OrmQ.objects.filter(lock__gt=timezone.now() + timedelta(seconds=Conf.RETRY - 30)).count() == 5


def test_a_task_whose_lock_expired_is_claimed_again(monkeypatch):
    """A task claimed by a cluster that died comes back once its lock (`retry`) has passed."""
    monkeypatch.setattr(Conf, "POLL", 0)
    enqueue(1)
    broker = get_broker()
    [(task_id, _)] = broker.dequeue()
    assert not broker.dequeue()

    OrmQ.objects.filter(pk=task_id).update(lock=timezone.now() - timedelta(seconds=1))

    assert [pk for pk, _ in broker.dequeue()] == [task_id]


def test_acknowledging_deletes_only_that_task(monkeypatch):
    """An acknowledged task is gone; the others stay queued."""
    monkeypatch.setattr(Conf, "BULK", 10)
    enqueue(2)
    broker = get_broker()
    (done, _), (other, _) = broker.dequeue()

    broker.acknowledge(done)
    broker.acknowledge(done)  # a second acknowledgement is harmless

    assert list(OrmQ.objects.values_list("pk", flat=True)) == [other]


def test_a_rolled_back_enqueue_leaves_nothing_to_claim(monkeypatch):
    """The outbox rule the broker exists for: a task enqueued in a transaction that rolls
    back is never claimed."""
    monkeypatch.setattr(Conf, "POLL", 0)
    with transaction.atomic():
        enqueue(1)
        transaction.set_rollback(True)
    assert not get_broker().dequeue()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_never_share_a_task(monkeypatch):
    """Four pushers claiming at once (as four clusters would) split the tasks: each is
    claimed exactly once, none waits on another's locks."""
    monkeypatch.setattr(Conf, "BULK", 4)
    monkeypatch.setattr(Conf, "POLL", 0)
    enqueue(40)

    def pusher() -> list[int]:
        broker, claimed = get_broker(), []
        while batch := broker.dequeue():
            claimed.extend(pk for pk, _ in batch)
        return claimed

    outcomes = run_at_once([pusher] * 4)

    everything = [pk for pks in outcomes for pk in pks]
    assert sorted(everything) == sorted(OrmQ.objects.values_list("pk", flat=True))
    assert len(everything) == len(set(everything)) == 40


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_connection_dropped_by_the_database_is_replaced(monkeypatch):
    """The database closed the connection (a restart): the acknowledgement reconnects and
    deletes the task instead of failing the monitor."""
    monkeypatch.setattr(Conf, "POLL", 0)
    enqueue(1)
    broker = get_broker()
    [(task_id, _)] = broker.dequeue()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        [pid] = cursor.fetchone()
    with connection._nodb_cursor() as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])

    broker.acknowledge(task_id)

    assert not OrmQ.objects.exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_real_cluster_runs_what_was_enqueued(tmp_path):
    """`manage.py qcluster` with this broker runs every task enqueued, once, and empties
    the queue: the benchmark's path, against the test database."""
    marker_dir = tmp_path / "ran"
    marker_dir.mkdir()
    task_ids = [async_task("tests.tasks_for_cluster.touch", str(marker_dir), n) for n in range(12)]
    with real_cluster(Q_WORKERS="2", Q_BULK="4"):
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (OrmQ.objects.exists() or len(list(marker_dir.iterdir())) < 12):
            time.sleep(0.2)

    assert sorted(int(path.name) for path in marker_dir.iterdir()) == list(range(12))
    assert all(path.read_text() == "1" for path in marker_dir.iterdir())
    assert not OrmQ.objects.exists()
    assert len(task_ids) == 12


def test_canary_django_q2_is_the_version_and_shape_our_broker_builds_on():
    """Canary for core/task_broker.py (and core/tasks.py): they override django-q2's ORM
    broker's dequeue, delete and enqueue, read its settings and write its queue table's
    columns by name. An upgrade fails here first, by name."""
    assert_tested_version("django-q2", ">=1.11,<1.12", piece="core/task_broker.py and core/tasks.py")
    # The methods we override keep their signatures, and acknowledging and failing still delete.
    assert list(inspect.signature(ORM.dequeue).parameters) == ["self"]
    assert list(inspect.signature(ORM.delete).parameters) == ["self", "task_id"]
    assert list(inspect.signature(ORM.enqueue).parameters) == ["self", "task"]
    assert "self.delete(task_id)" in inspect.getsource(ORM.acknowledge)
    assert "self.delete(task_id)" in inspect.getsource(ORM.fail)
    # The pusher takes (ack id, payload) pairs from dequeue; our claim returns those.
    assert "ack_id = task[0]" in inspect.getsource(pusher.pusher)
    # The settings and columns the claim statement uses.
    for name in ("ORM", "RETRY", "BULK", "POLL", "CLUSTER_NAME"):
        assert hasattr(Conf, name), f"django-q2's Conf has no {name} any more"
    assert {f.name for f in OrmQ._meta.concrete_fields} == {"id", "key", "payload", "lock"}
