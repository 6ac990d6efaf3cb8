"""Races on purpose: several calls released at the same instant, each on its own thread
and database connection, as several server processes or workers would run them."""

import threading
from collections.abc import Callable

from django.db import connection


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
