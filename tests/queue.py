"""Run what django-q2's ORM broker holds, as a worker would, in this process.

The queue is real (tasks are enqueued in the same transaction as their rows and read
back through django-q2's broker and signing); only the worker process is replaced by
this loop so that tests stay fast and deterministic.
"""

import os
import pydoc
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.models import OrmQ
from django_q.signing import SignedPackage


def queued_funcs() -> list[str]:
    return [SignedPackage.loads(payload)["func"] for payload in OrmQ.objects.values_list("payload", flat=True)]


def waiting_tasks() -> list[tuple[str, tuple, object]]:
    """The tasks queued for later (core.tasks.enqueue with a delay), soonest first: (func,
    args, the time they run after)."""
    waiting = []
    for lock, payload in OrmQ.objects.filter(lock__gt=timezone.now()).order_by("lock").values_list("lock", "payload"):
        task = SignedPackage.loads(payload)
        waiting.append((task["func"], task["args"], lock))
    return waiting


def run_queued_tasks(max_rounds: int = 10) -> int:
    broker = get_broker()
    ran = 0
    for _ in range(max_rounds):
        batch = broker.dequeue()
        if not batch:
            break
        for ack_id, payload in batch:
            task = SignedPackage.loads(payload)
            func = task["func"]
            func = pydoc.locate(func) if isinstance(func, str) else func
            func(*task.get("args", ()), **task.get("kwargs", {}))
            broker.acknowledge(ack_id)
            ran += 1
    return ran


PROJECT = Path(__file__).resolve().parents[1]


def env_on_test_database() -> dict[str, str]:
    """What points a process of ours at the test database: PostgreSQL's URL, or the SQLite file."""
    database = settings.DATABASES["default"]
    if database["ENGINE"].endswith("sqlite3"):
        return {"DATABASE_URL": "", "SQLITE_PATH": str(database["NAME"])}
    url = (
        f"postgres://{database['USER']}:{database['PASSWORD'] or ''}@{database['HOST'] or '127.0.0.1'}:"
        f"{database['PORT'] or 5432}/{database['NAME']}"
    )
    return {"DATABASE_URL": url}


def run_in_another_process(code: str, **env) -> None:
    """`manage.py shell -c code` on the test database, to its end: what a task does in the worker."""
    subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=PROJECT,
        env={**os.environ, **env_on_test_database(), "DEBUG": "1", **env},
        check=True,
        timeout=60,
    )


@contextmanager
def real_cluster(**env):
    """`manage.py qcluster` in its own process, on the test database, until the block ends."""
    cluster = subprocess.Popen(  # noqa: S603
        [sys.executable, "manage.py", "qcluster"],
        cwd=PROJECT,
        env={**os.environ, **env_on_test_database(), "DEBUG": "1", **env},
        stdout=subprocess.DEVNULL,
    )
    try:
        yield cluster
    finally:
        cluster.terminate()
        cluster.wait(timeout=30)
