"""Run what django-q2's ORM broker holds, as a worker would, in this process.

The queue is real (tasks are enqueued in the same transaction as their rows and read
back through django-q2's broker and signing); only the worker process is replaced by
this loop so that tests stay fast and deterministic.
"""

import pydoc

from django_q.brokers import get_broker
from django_q.models import OrmQ
from django_q.signing import SignedPackage


def queued_funcs() -> list[str]:
    return [SignedPackage.loads(payload)["func"] for payload in OrmQ.objects.values_list("payload", flat=True)]


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
