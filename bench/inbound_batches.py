"""What group commit saves: CPU per inbound message by batch size, in process.

Stores N WhatsApp messages from the demo customers through `inbound_messages_receive`
in batches of each given size, and reports per message the Python CPU of this process,
the CPU of its PostgreSQL backend and the wall time. Live pushes go to an event loop on
another thread, as in the server. Run on the bench database (`bench/serve.sh` prepares it):

    bench/serve.sh .venv/bin/python bench/inbound_batches.py -n 2000 --sizes 1 8 32

`--journal` runs each size twice more, the journal on then off (ATTITRE_JOURNAL_ENABLED, read
at every append), alternating over `--rounds`, so that both see the same machine: the
journal's cost per message in CPU, which a busy machine shakes less than throughput.
"""

import argparse
import asyncio
import os
import sys
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import django_setup  # noqa: E402

django_setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.http import QueryDict  # noqa: E402

from conversations.providers import twilio  # noqa: E402
from conversations.services import inbound_messages_receive  # noqa: E402
from crm.models import ContactPoint  # noqa: E402
from events.publish import bind_server_loop  # noqa: E402


def backend_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=2000, help="messages per batch size")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--journal", action="store_true", help="compare the journal on and off, interleaved")
    parser.add_argument("--rounds", type=int, default=3, help="with --journal: on/off pairs per size")
    args = parser.parse_args()

    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    bind_server_loop(loop)

    numbers = list(
        ContactPoint.objects.filter(kind="whatsapp", customer__isnull=False).values_list("address", flat=True)
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    variants = (
        [None]
        if not args.journal
        else [v for r in range(args.rounds) for v in ((True, False) if r % 2 == 0 else (False, True))]
    )
    for size in args.sizes:
        totals: dict = {}
        for journal in variants:
            if journal is not None:
                settings.ATTITRE_JOURNAL_ENABLED = journal
            figures = _measure(numbers, backend, args.n, size)
            label = "" if journal is None else (" journal on " if journal else " journal off")
            print(
                f"batch {size:>3}{label}: Python {figures[0]:.2f} ms/msg, "
                f"PostgreSQL {figures[1]:.2f} ms/msg, wall {figures[2]:.2f} ms/msg"
            )
            sums = totals.setdefault(journal, [0.0, 0.0, 0.0])
            for index, value in enumerate(figures):
                sums[index] += value
        if args.journal:
            on, off = ([value / args.rounds for value in totals[key]] for key in (True, False))
            print(
                f"batch {size:>3} journal cost: Python {on[0] - off[0]:+.3f} ms/msg, "
                f"PostgreSQL {on[1] - off[1]:+.3f} ms/msg, wall {on[2] - off[2]:+.3f} ms/msg (means of {args.rounds})"
            )


def _measure(numbers: list[str], backend: int, n: int, size: int) -> tuple[float, float, float]:
    run = uuid.uuid4().hex[:10]
    forms = [
        QueryDict(
            urlencode(
                {
                    "MessageSid": f"SM{run}{i:022x}",
                    "From": f"whatsapp:{numbers[i % len(numbers)]}",
                    "To": "whatsapp:+33180000000",
                    "Body": f"Bonjour, message {i}",
                    "NumMedia": "0",
                    "ProfileName": "Bench",
                }
            )
        )
        for i in range(n)
    ]
    cpu, backend_cpu, wall = time.process_time(), backend_cpu_seconds(backend), time.perf_counter()
    for start in range(0, n, size):
        inbound_messages_receive(inbounds=[twilio.parse_inbound(form) for form in forms[start : start + size]])
    cpu = time.process_time() - cpu
    backend_cpu = backend_cpu_seconds(backend) - backend_cpu
    wall = time.perf_counter() - wall
    return 1000 * cpu / n, 1000 * backend_cpu / n, 1000 * wall / n


if __name__ == "__main__":
    main()
