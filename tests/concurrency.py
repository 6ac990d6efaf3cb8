"""Races on purpose: several calls released at the same instant, each on its own thread
and database connection, as several server processes or workers would run them."""

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.db import connection, transaction


def run_at_once(calls: list[Callable[[], object]], timeout: float = 60) -> list:
    """Run every call in its own thread, all starting together; returns each call's result,
    or the exception it raised, in the calls' order."""
    barrier = threading.Barrier(len(calls))
    outcomes: list = [None] * len(calls)

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            outcomes[index] = calls[index]()
        except Exception as exc:  # the caller asserts on it
            outcomes[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    return outcomes


class HeldOpen:
    """What `transaction_held_open` ran: its result once it has run."""

    result: object = None


@contextmanager
def transaction_held_open(work: Callable[[], object], timeout: float = 30) -> Iterator[HeldOpen]:
    """Run `work` in a transaction on its own thread and database connection, and keep that
    transaction open, uncommitted, for the whole block; it commits when the block ends. The
    block starts once `work` has run (its result is `.result`), so what the block does happens
    while that transaction is running, as a slow request's transaction would be."""
    held, ran, release = HeldOpen(), threading.Event(), threading.Event()
    failure: list[BaseException] = []

    def run() -> None:
        try:
            with transaction.atomic():
                held.result = work()
                ran.set()
                release.wait(timeout=timeout)
        except BaseException as exc:  # re-raised in the test's thread
            failure.append(exc)
        finally:
            ran.set()
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    ran.wait(timeout=timeout)
    if failure:
        thread.join(timeout=timeout)
        raise failure[0]
    try:
        yield held
    finally:
        release.set()
        thread.join(timeout=timeout)
    if failure:
        raise failure[0]
