"""State kept per event loop: a server process runs one; tests start many."""

import asyncio
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def loop_local(factory: Callable[[], T]) -> Callable[[], T]:
    """A getter returning the running loop's own `factory()`, made on first use.
    Entries of closed loops are dropped as new loops arrive."""
    instances: dict[asyncio.AbstractEventLoop, T] = {}

    def get() -> T:
        loop = asyncio.get_running_loop()
        if loop not in instances:
            for closed in [other for other in instances if other.is_closed()]:
                del instances[closed]
            instances[loop] = factory()
        return instances[loop]

    return get
