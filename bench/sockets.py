"""How many idle inbox sockets one server process holds, and the memory per socket.

Run with one server process (`make bench-sockets` sets WEB_CONCURRENCY=1): creates N
bench advisors in alice's agency (each with a real session), opens one authenticated
websocket for each and reads it as a browser tab would (which answers the server's
pings), measures the server's resident memory before and after, holds them past the
server's ping timeout, then checks alice's webhook-to-socket latency with them all
open and counts how many are still open.

Target on a 2-core machine: >= 5,000 sockets per process, <= 64 KiB each, with the
latency target (p50 <= 5 ms, p99 <= 25 ms) still met.
"""

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import django_setup  # noqa: E402

django_setup()

import aiohttp  # noqa: E402
from django.conf import settings  # noqa: E402

from bench.inbox_client import drain, open_inbox, session_cookie  # noqa: E402
from bench.latency import measure  # noqa: E402
from crm.models import ContactPoint  # noqa: E402


def rss_kib(pid: int) -> int:
    """Resident memory of the process and its children, in KiB."""
    total = 0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(child) for child in children.read_text().split()]
    for each in pids:
        for line in Path(f"/proc/{each}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


def bench_advisor_cookies(count: int) -> list[str]:
    """`count` idle advisors of alice's agency, each with a real session in the database."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
    from django.contrib.sessions.backends.db import SessionStore

    from crm.models import Advisor

    User = get_user_model()
    agency_id = Advisor.objects.get(user__username="alice").agency_id
    names = [f"bench-advisor-{i:05d}" for i in range(count)]
    existing = set(User.objects.filter(username__in=names).values_list("username", flat=True))
    users = User.objects.bulk_create([User(username=name, password="!") for name in names if name not in existing])
    Advisor.objects.bulk_create([Advisor(user=user, agency_id=agency_id) for user in users])
    cookies = []
    for user in User.objects.filter(username__in=names).order_by("username"):
        store = SessionStore()
        store[SESSION_KEY] = str(user.pk)
        store[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        store[HASH_SESSION_KEY] = user.get_session_auth_hash()
        store.create()
        cookies.append(store.session_key)
    return cookies


async def hold(session: aiohttp.ClientSession, base_url: str, cookies: list[str], pid: int, batch: int):
    """Open one socket per cookie, `batch` at a time, each read by its own task as a browser
    tab would; return the figures, the sockets and their readers (done = closed)."""
    await asyncio.sleep(1)
    before = rss_kib(pid)
    sockets, readers, failed = [], [], 0
    started = time.perf_counter()
    count = len(cookies)
    for offset in range(0, count, batch):
        results = await asyncio.gather(
            *(open_inbox(session, base_url, cookie) for cookie in cookies[offset : offset + batch]),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                failed += 1
            else:
                sockets.append(result)
                readers.append(asyncio.create_task(drain(result)))
    opened_in = time.perf_counter() - started
    await asyncio.sleep(5)
    after = rss_kib(pid)
    alive = sum(1 for reader in readers if not reader.done())
    result = {
        "requested": count,
        "open": alive,
        "failed": failed,
        "opened_in_s": round(opened_in, 1),
        "server_rss_before_mib": round(before / 1024, 1),
        "server_rss_after_mib": round(after / 1024, 1),
        "per_socket_kib": round((after - before) / max(alive, 1), 1),
    }
    return result, sockets, readers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=settings.PUBLIC_BASE_URL)
    parser.add_argument("-n", "--sockets", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=200, help="sockets opened at once")
    parser.add_argument("--pid", type=int, default=int(os.environ.get("SERVER_PID", "0")), help="server process id")
    parser.add_argument("--latency-messages", type=int, default=500)
    parser.add_argument("--hold", type=float, default=60, help="seconds to hold the sockets before the latency run")
    args = parser.parse_args()
    if not args.pid:
        raise SystemExit("Give the server's process id (--pid, or SERVER_PID as bench/serve.sh sets it).")
    base_url = args.url.rstrip("/")
    cookie = session_cookie("alice")
    idle_cookies = bench_advisor_cookies(args.sockets)
    numbers = list(
        ContactPoint.objects.filter(kind="whatsapp", customer__dedicated_advisor__user__username="alice").values_list(
            "address", flat=True
        )
    )

    async def run():
        # One client session for the whole run: closing it would close every socket it holds.
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            held, sockets, readers = await hold(session, base_url, idle_cookies, args.pid, args.batch)
            # Held past the server's ping timeout (40 s) first: an idle tab must stay open,
            # not merely open.
            await asyncio.sleep(args.hold)
            held["still_open_after_hold"] = sum(1 for reader in readers if not reader.done())
            latency = await measure(base_url, 50, args.latency_messages, numbers, cookie, 0)
            still_open = sum(1 for reader in readers if not reader.done())
            for ws in sockets:
                await ws.close()
        return {**held, "still_open_after_latency_run": still_open, "latency_with_sockets_open": latency}

    result = asyncio.run(run())
    print(json.dumps(result, indent=2))
    latency = result["latency_with_sockets_open"]
    met = (
        result["still_open_after_latency_run"] >= 5000
        and result["per_socket_kib"] <= 64
        and latency["missing"] == 0
        and latency["p50_ms"] <= 5
        and latency["p99_ms"] <= 25
    )
    print(f"target (>= 5,000 sockets, <= 64 KiB each, latency target still met): {'MET' if met else 'MISSED'}")


if __name__ == "__main__":
    main()
