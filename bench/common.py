"""Shared by the benchmarks: Django setup against the bench database, percentiles, the
loop that posts webhooks at a given concurrency."""

import asyncio
import os
import ssl
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def django_setup() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def summary_ms(latencies_s: list[float]) -> dict:
    ms = [value * 1000 for value in latencies_s]
    return {
        "p50_ms": round(percentile(ms, 50), 2),
        "p95_ms": round(percentile(ms, 95), 2),
        "p99_ms": round(percentile(ms, 99), 2),
        "max_ms": round(max(ms), 2) if ms else None,
        "mean_ms": round(statistics.fmean(ms), 2) if ms else None,
    }


@dataclass
class Posted:
    """What `post_all` saw: each answer's time and status, the run's length, and when each
    item's request started (`started_at[i]`, perf_counter seconds, for the i-th item)."""

    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    elapsed: float = 0.0
    started_at: dict[int, float] = field(default_factory=dict)


async def post_all(
    target: str,
    items: Sequence,
    concurrency: int,
    request_for: Callable[[object], tuple[object, dict]],
    *,
    cafile: str | None = None,
) -> Posted:
    """POST every item to `target`, `concurrency` at a time on kept-alive connections;
    `request_for(item)` gives the body (bytes, or aiohttp form data) and the headers. A
    connection error counts as status 0."""
    import aiohttp

    posted = Posted()
    queue = iter(enumerate(items))
    tls = ssl.create_default_context(cafile=cafile) if cafile else None
    connector = aiohttp.TCPConnector(limit=concurrency, ssl=tls if tls else True)

    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker():
            for index, item in queue:
                data, headers = request_for(item)
                started = posted.started_at[index] = time.perf_counter()
                try:
                    async with session.post(target, data=data, headers=headers) as response:
                        await response.read()
                        status = response.status
                except aiohttp.ClientError:
                    status = 0
                posted.latencies.append(time.perf_counter() - started)
                posted.statuses[status] = posted.statuses.get(status, 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        posted.elapsed = time.perf_counter() - started
    return posted


def tree_cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) used so far by a process and its descendants, from /proc;
    on a machine others load, CPU per request is steadier than wall time."""
    ticks = os.sysconf("SC_CLK_TCK")
    parents, cpu = {}, {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        parents[int(entry.name)] = int(fields[1])
        cpu[int(entry.name)] = (int(fields[11]) + int(fields[12])) / ticks
    wanted, total = [pid], 0.0
    while wanted:
        current = wanted.pop()
        total += cpu.get(current, 0.0)
        wanted += [child for child, parent in parents.items() if parent == current]
    return total
