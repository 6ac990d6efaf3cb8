"""Outbound delivery throughput: N replies queued at once, delivered by a real django-q2
cluster through the real twilio SDK to the simulator, whose signed status callbacks
reach the running app.

Run inside bench/serve.sh (`make bench-outbound`), which recreates the bench database,
loads the demo and starts the shipped server. This script then
  1. starts the simulator (`manage.py simulator`, its own process) and has every demo
     customer write on WhatsApp through it, which opens the 24-hour windows;
  2. starts `manage.py qcluster` (no pacing of ours: Twilio queues per sender);
  3. queues N replies through `message_send` in one transaction (so they appear at once);
  4. waits until every one is `delivered`, and reports msgs/s, the time to the last
     hand-over to Twilio and to the last "delivered", and checks at the simulator that
     each message was sent exactly once.

Target on the 2-core machine: >= 200 msgs/s.
"""

import argparse
import collections
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import ROOT, django_setup  # noqa: E402

# This process stands in for the advisors' inbox: it queues the replies. Its live pushes
# (one per reply, sent one by one after commit outside a server) are not what is measured
# and would compete for the CPU that is: it has no channel layer. Server and worker keep Redis.
SERVER_REDIS_URL = os.environ.pop("REDIS_URL", "")
django_setup()

from django.conf import settings  # noqa: E402

settings.CHANNEL_LAYERS = {}

from django.db import transaction  # noqa: E402
from django.db.models import Count, Max, Q  # noqa: E402
from django.utils import timezone  # noqa: E402

from conversations.models import Message, Thread  # noqa: E402
from conversations.services import message_send  # noqa: E402
from crm.models import ContactPoint  # noqa: E402

PYTHON = sys.executable


def http_json(method: str, url: str, payload: dict | None = None) -> dict:
    response = requests.request(method, url, json=payload, timeout=30)
    response.raise_for_status()
    return json.loads(response.content or b"{}")


TICKS = os.sysconf("SC_CLK_TCK")


def _processes() -> dict[int, tuple[int, float, str]]:
    """pid -> (parent pid, CPU seconds, command line), from /proc."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        table[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / TICKS, cmdline)
    return table


def cpu_by_role(roots: dict[str, int], web_marker: str) -> dict[str, float]:
    """CPU seconds used so far by each role's process tree, the web server and PostgreSQL."""
    table = _processes()
    children = collections.defaultdict(list)
    for pid, (parent, _cpu, _cmd) in table.items():
        children[parent].append(pid)

    def tree(pid: int) -> float:
        return table.get(pid, (0, 0.0, ""))[1] + sum(tree(child) for child in children[pid])

    usage = {role: tree(pid) for role, pid in roots.items() if role != "bench"}
    usage["bench"] = table.get(roots["bench"], (0, 0.0, ""))[1]  # itself only: its children are listed
    usage["web"] = sum(tree(pid) for pid, (_p, _cpu, cmd) in table.items() if web_marker in cmd and "uvicorn" in cmd)
    usage["postgres"] = sum(cpu for _p, cpu, cmd in table.values() if cmd.startswith("postgres"))
    return usage


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit(f"Timed out waiting for {what}.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=1000, help="replies to deliver")
    parser.add_argument("--workers", type=int, default=4, help="qcluster worker processes (Q_WORKERS)")
    parser.add_argument("--simulator-port", type=int, default=int(os.environ.get("SIMULATOR_PORT", "8101")))
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args()

    simulator_url = f"http://127.0.0.1:{args.simulator_port}"
    base_env = dict(os.environ)
    simulator_env = {**base_env, "DEBUG": "1", "LOG_LEVEL": "WARNING"}
    base_env["REDIS_URL"] = SERVER_REDIS_URL
    worker_env = {
        **base_env,
        "TWILIO_API_BASE_URL": simulator_url,
        "TWILIO_WHATSAPP_FROM": "whatsapp:+33180000000",
        "TWILIO_SMS_FROM": "+33180000000",
        "Q_WORKERS": str(args.workers),
    }
    processes = []
    try:
        simulator = subprocess.Popen(  # noqa: S603
            [PYTHON, "manage.py", "simulator", "--port", str(args.simulator_port), "--callback-delay", "0"],
            cwd=ROOT,
            env=simulator_env,
            stdout=subprocess.DEVNULL,
        )
        processes.append(simulator)
        wait_until(lambda: http_json("GET", f"{simulator_url}/api/phones") is not None, 30, "the simulator")

        numbers = list(
            ContactPoint.objects.filter(kind="whatsapp", customer__isnull=False).values_list("address", flat=True)
        )
        for number in numbers:
            answer = http_json("POST", f"{simulator_url}/api/phones/{quote(number)}/messages", {"body": "Bonjour"})
            if answer.get("app_status") != 200:
                raise SystemExit(f"The app refused the simulator's webhook for {number}: {answer}.")
        threads = list(
            Thread.objects.filter(customer__contact_points__address__in=numbers)
            .select_related("customer__dedicated_advisor__user", "handler__user")
            .distinct()
        )
        print(f"{len(threads)} customers wrote on WhatsApp through the simulator.")

        worker = subprocess.Popen([PYTHON, "manage.py", "qcluster"], cwd=ROOT, env=worker_env)  # noqa: S603
        processes.append(worker)
        time.sleep(3)  # the cluster's workers start

        roots = {"simulator": simulator.pid, "worker": worker.pid, "bench": os.getpid()}
        web_marker = f"--port {os.environ.get('BENCH_PORT', '8100')}"
        committed = {}
        started = time.monotonic()
        with transaction.atomic():
            # Registered first, so it runs first once the transaction commits: the replies' t0.
            transaction.on_commit(lambda: committed.update(wall=timezone.now(), mono=time.monotonic()))
            ids = []
            for i in range(args.n):
                thread = threads[i % len(threads)]
                author = thread.handler or thread.customer.dedicated_advisor
                ids.append(message_send(thread=thread, author=author, body=f"Réponse de test {i}").pk)
        t0_wall, t0 = committed["wall"], committed["mono"]
        cpu_before = cpu_by_role(roots, web_marker)
        queued_in = t0 - started
        print(f"Queued {args.n} replies through message_send in {queued_in:.1f} s ({args.n / queued_in:.0f}/s).")

        handed_over_at = None
        # One cheap aggregate twice a second: the poll must not steal the CPU it measures.
        query = Message.objects.filter(pk__gte=min(ids), pk__lte=max(ids), direction="outbound")
        progress = {}
        while time.monotonic() - t0 < args.timeout:
            progress = query.aggregate(
                handed=Count("pk", filter=Q(provider_message_id__isnull=False)),
                done=Count("pk", filter=Q(status__in=["delivered", "read"])),
                failed=Count("pk", filter=Q(status="failed")),
            )
            if handed_over_at is None and progress["handed"] == args.n:
                handed_over_at = time.monotonic() - t0
            if progress["done"] == args.n or progress["failed"]:
                break
            time.sleep(0.5)
        elapsed_poll = time.monotonic() - t0
        cpu_after = cpu_by_role(roots, web_marker)
        cpu = {role: round(cpu_after[role] - cpu_before[role], 1) for role in cpu_after}
        by_status = collections.Counter(query.values_list("status", flat=True))
        last_delivered = query.aggregate(last=Max("delivered_at"))["last"]
        to_last_delivered = (last_delivered - t0_wall).total_seconds() if last_delivered else float("nan")

        log = http_json("GET", f"{simulator_url}/api/log")["messages"]
        sends = collections.Counter(
            int(parse_qs(urlsplit(entry["status_callback"]).query)["m"][0]) for entry in log if entry["status_callback"]
        )
        duplicates = sum(1 for count in sends.values() if count > 1)
        missing = len(set(ids) - set(sends))
        delivered = by_status["delivered"] + by_status["read"]
        print(
            json.dumps(
                {
                    "messages": args.n,
                    "workers": args.workers,
                    "queued_per_s": round(args.n / queued_in),
                    "handed_to_twilio_s": round(handed_over_at, 2) if handed_over_at else None,
                    "last_delivered_s": round(to_last_delivered, 2),
                    "handed_to_twilio_msgs_per_s": round(args.n / handed_over_at, 1) if handed_over_at else None,
                    "delivered_msgs_per_s": round(args.n / to_last_delivered, 1) if delivered == args.n else None,
                    "statuses": dict(by_status),
                    "sends_at_simulator": sum(sends.values()),
                    "duplicates": duplicates,
                    "missing": missing,
                    "poll_s": round(elapsed_poll, 2),
                    "cpu_s_during_delivery": cpu,
                    "load_average": os.getloadavg(),
                },
                indent=2,
            )
        )
        if delivered != args.n or duplicates or missing:
            raise SystemExit("Not every reply was delivered exactly once.")
    finally:
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


if __name__ == "__main__":
    main()
