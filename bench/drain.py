"""How long the web server and the task cluster take to stop on SIGTERM, busy.

- uvicorn (`--workers W`, as the systemd unit starts it) with N open inbox sockets and a
  webhook stream in flight: seconds from SIGTERM to exit, how each socket ended (close code),
  webhooks answered and lost around the stop.
- qcluster (Q_WORKERS workers) with every worker inside a task of T seconds and more queued:
  seconds from SIGTERM to exit, and what became of the tasks (finished, still queued for
  another cluster once django-q2's `retry` lapses).

Run on the bench database (demo loaded):  bench/serve.sh .venv/bin/python bench/drain.py
"""

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import ROOT, django_setup  # noqa: E402

django_setup()

import aiohttp  # noqa: E402
from django.conf import settings  # noqa: E402
from django.utils import timezone  # noqa: E402
from django_q.models import OrmQ, Success  # noqa: E402
from django_q.tasks import async_task  # noqa: E402

from bench.inbox_client import MESSAGES_PATH, open_inbox, session_cookie, signed_whatsapp  # noqa: E402
from crm.models import ContactPoint  # noqa: E402


def start(args: list[str], env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(args, cwd=ROOT, env={**os.environ, **(env or {})})  # noqa: S603


def stop_timed(process: subprocess.Popen, limit: float) -> tuple[float, bool]:
    """SIGTERM, then wait up to `limit` s: (seconds, exited by itself)."""
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=limit)
        return time.monotonic() - started, True
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return time.monotonic() - started, False


async def web(
    port: int, workers: int, sockets: int, graceful: int | None, limit: float, cookie: str, numbers: list[str]
) -> dict:
    base = f"http://127.0.0.1:{port}"
    args = [sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1", "--port", str(port)]
    args += ["--workers", str(workers), "--lifespan", "off", "--no-access-log", "--log-level", "warning"]
    if graceful is not None:
        args += ["--timeout-graceful-shutdown", str(graceful)]
    server = start(args, {"PUBLIC_BASE_URL": base})
    try:
        return await _web(server, base, workers, sockets, graceful, limit, cookie, numbers)
    finally:
        if server.poll() is None:
            server.kill()


async def _web(server, base, workers, sockets, graceful, limit, cookie, numbers) -> dict:
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        for _ in range(100):
            try:
                async with session.get(f"{base}/healthz") as answer:
                    if answer.status == 200:
                        break
            except aiohttp.ClientError:
                await asyncio.sleep(0.2)
        tabs = [await open_inbox(session, base, cookie) for _ in range(sockets)]
        closes: list[int | None] = []

        async def read(ws):
            async for _frame in ws:
                pass
            closes.append(ws.close_code)

        readers = [asyncio.create_task(read(ws)) for ws in tabs]
        statuses: dict[str, int] = {}
        stop = asyncio.Event()

        async def stream(n: int):
            i = 0
            while not stop.is_set():
                body, headers = signed_whatsapp(
                    base_url=base, sid=f"SM{uuid.uuid4().hex}", sender=numbers[(n + i) % len(numbers)], body="x"
                )
                try:
                    async with session.post(base + MESSAGES_PATH, data=body, headers=headers) as answer:
                        key = str(answer.status)
                except aiohttp.ClientError as exc:
                    key = type(exc).__name__
                statuses[key] = statuses.get(key, 0) + 1
                i += 1
                if key not in {"200"}:
                    await asyncio.sleep(0.05)

        senders = [asyncio.create_task(stream(n)) for n in range(4)]
        await asyncio.sleep(2)
        seconds, clean = await asyncio.to_thread(stop_timed, server, limit)
        stop.set()
        await asyncio.gather(*senders)
        if readers:
            await asyncio.wait(readers, timeout=5)
    codes: dict[str, int] = {}
    for code in closes:
        codes[str(code)] = codes.get(str(code), 0) + 1
    return {
        "workers": workers,
        "sockets": sockets,
        "timeout_graceful_shutdown": graceful,
        "stop_seconds": round(seconds, 2),
        "exited_by_itself": clean,
        "socket_close_codes": codes,
        "webhooks": statuses,
    }


def cluster(workers: int, task_seconds: float, limit: float) -> dict:
    OrmQ.objects.all().delete()
    tag = uuid.uuid4().hex[:8]
    for i in range(workers * 3):
        async_task("time.sleep", task_seconds, task_name=f"drain-{tag}-{i}")
    process = start([sys.executable, "manage.py", "qcluster"], {"Q_WORKERS": str(workers), "Q_BULK": "1"})
    # Until every worker is inside a task: a claim moves the row's lock `retry` seconds ahead.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if OrmQ.objects.filter(lock__gt=timezone.now() + timedelta(seconds=30)).count() >= workers:
            break
        time.sleep(0.1)
    time.sleep(1)
    seconds, clean = stop_timed(process, limit)
    finished = Success.objects.filter(name__startswith=f"drain-{tag}").count()
    return {
        "workers": workers,
        "task_seconds": task_seconds,
        "stop_seconds": round(seconds, 2),
        "exited_by_itself": clean,
        "tasks": workers * 3,
        "finished": finished,
        "left_in_queue": OrmQ.objects.count(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=8130)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sockets", type=int, default=200)
    parser.add_argument("--graceful", type=int, default=None, help="uvicorn --timeout-graceful-shutdown")
    parser.add_argument("--task-seconds", type=float, default=20)
    parser.add_argument("--limit", type=float, default=120, help="SIGKILL after this many seconds")
    args = parser.parse_args()
    settings.PUBLIC_BASE_URL = f"http://127.0.0.1:{args.port}"
    cookie = session_cookie("alice")
    numbers = list(ContactPoint.objects.filter(kind="whatsapp").values_list("address", flat=True)[:20])
    result = {
        "web": asyncio.run(web(args.port, args.workers, args.sockets, args.graceful, args.limit, cookie, numbers)),
        "cluster": cluster(args.workers, args.task_seconds, args.limit),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
