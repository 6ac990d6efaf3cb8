"""What group commit saves: CPU per inbound message by batch size, in process.

Stores N WhatsApp messages from the demo customers through `inbound_messages_receive`
in batches of each given size, and reports per message the Python CPU of this process,
the CPU of its PostgreSQL backend and the wall time. Live pushes go to an event loop on
another thread, as in the server. Run on the bench database (`bench/serve.sh` prepares it):

    bench/serve.sh .venv/bin/python bench/inbound_batches.py -n 2000 --sizes 1 8 32
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
    for size in args.sizes:
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
            for i in range(args.n)
        ]
        cpu, backend_cpu, wall = time.process_time(), backend_cpu_seconds(backend), time.perf_counter()
        for start in range(0, args.n, size):
            inbound_messages_receive(inbounds=[twilio.parse_inbound(form) for form in forms[start : start + size]])
        cpu = time.process_time() - cpu
        backend_cpu = backend_cpu_seconds(backend) - backend_cpu
        wall = time.perf_counter() - wall
        print(
            f"batch {size:>3}: Python {1000 * cpu / args.n:.2f} ms/msg, "
            f"PostgreSQL {1000 * backend_cpu / args.n:.2f} ms/msg, wall {1000 * wall / args.n:.2f} ms/msg"
        )


if __name__ == "__main__":
    main()
