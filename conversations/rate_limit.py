"""Pacing sends per sender: a fixed one-second window counted in Django's cache.

With Redis (REDIS_URL) the count is shared by every worker process; with the
local-memory cache of a laptop it is per process, so N workers may send N times
the limit. A burst is paced, never refused: the caller waits for the next window.
"""

import time

from django.core.cache import cache

KEY_PREFIX = "attitre:rate"


def rate_limit_try(*, key: str, limit: int, now: float | None = None) -> float:
    """Take one slot for `key` in the current second; 0 when taken, else seconds to the next window."""
    if limit <= 0:
        return 0.0
    now = time.time() if now is None else now
    window = int(now)
    cache_key = f"{KEY_PREFIX}:{key}:{window}"
    cache.add(cache_key, 0, timeout=5)
    try:
        count = cache.incr(cache_key)
    except ValueError:
        # The key expired between add and incr (a stalled process): count this one alone.
        cache.add(cache_key, 1, timeout=5)
        count = 1
    if count <= limit:
        return 0.0
    return max(window + 1 - now, 0.001)


def rate_limit_wait(*, key: str, limit: int, max_wait: float) -> bool:
    """Wait (at most a second at a time, `max_wait` in all) for a slot; False if none came."""
    deadline = time.monotonic() + max_wait
    while True:
        delay = rate_limit_try(key=key, limit=limit)
        if delay == 0:
            return True
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        time.sleep(min(delay, remaining, 1.0))
