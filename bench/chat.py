"""Web chat under load: N customers' widgets held open on one server process while they write.

Run with one server process on PostgreSQL + Redis (`make bench-chat` sets WEB_CONCURRENCY=1
and the chat's secret and origin): creates N bench customers of alice's, opens one
`/ws/chat/` socket for each (auth frame with a token minted as a bank's backend would, then
read as the widget reads it), measures the server's resident memory before and after, then:

- customer → advisor: customers send `message.send` at RATE msgs/s, round robin; the time
  from the frame sent to `message.created` on alice's inbox socket;
- advisor → customer: replies to the customers who wrote (`message_send`, as the composer
  calls it, from this process like a second server), at RATE/5; the time from the call to
  `message.created` on that customer's widget;

and counts what was lost (no ack, never on alice's socket, never on the widget).

Target on a 2-core machine: >= 5,000 sockets per process, <= 64 KiB each; both latencies
p50 <= 10 ms, p99 <= 50 ms; zero loss.
"""

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import django_setup, summary_ms  # noqa: E402

django_setup()

import aiohttp  # noqa: E402
from asgiref.sync import sync_to_async  # noqa: E402
from django.conf import settings  # noqa: E402

from bench.inbox_client import open_inbox, parse, session_cookie  # noqa: E402
from bench.sockets import rss_kib  # noqa: E402
from conversations.models import Thread  # noqa: E402
from conversations.providers.webchat import chat_token  # noqa: E402
from conversations.services import message_send  # noqa: E402
from crm.models import Advisor, Customer  # noqa: E402

ORIGIN = os.environ.get("BENCH_CHAT_ORIGIN", "https://www.bank.example")


def bench_customers(count: int) -> list[str]:
    """`count` customers of alice's (made once, kept between runs on a kept database)."""
    alice = Advisor.objects.get(user__username="alice")
    numbers = [f"BCH{i:07d}" for i in range(count)]
    existing = set(Customer.objects.filter(customer_number__in=numbers).values_list("customer_number", flat=True))
    Customer.objects.bulk_create(
        [
            Customer(
                customer_number=number,
                first_name="Bench",
                last_name=number,
                agency_id=alice.agency_id,
                dedicated_advisor=alice,
            )
            for number in numbers
            if number not in existing
        ],
        batch_size=1000,
    )
    # Customers who wrote before (a thread each): what a bank's chat holds most of the time.
    customers = Customer.objects.filter(customer_number__in=numbers, thread__isnull=True)
    Thread.objects.bulk_create(
        [
            Thread(customer=customer, agency_id=alice.agency_id, dedicated_advisor=alice, handler=alice)
            for customer in customers
        ],
        batch_size=1000,
    )
    return numbers


class Widget:
    """One customer's socket, read as the widget reads it."""

    def __init__(self, number: str, ws):
        self.number = number
        self.ws = ws
        self.acks: dict[str, int] = {}
        self.arrived: dict[int, float] = {}
        self.ready = asyncio.Event()

    async def read(self) -> None:
        try:
            async for frame in self.ws:
                event = parse(frame)
                if not event:
                    continue
                kind = event.get("type")
                if kind == "cursor":
                    self.ready.set()
                elif kind == "message.ack":
                    self.acks[event["client_id"]] = event["id"]
                elif kind == "message.created" and event["message"]["from"] == "advisor":
                    self.arrived.setdefault(event["message"]["id"], time.perf_counter())
        except aiohttp.ClientError:
            pass


async def open_widget(session, base_url: str, number: str) -> Widget:
    ws = await session.ws_connect(base_url.replace("http", "ws", 1) + "/ws/chat/", headers={"Origin": ORIGIN})
    widget = Widget(number, ws)
    widget.reader = asyncio.create_task(widget.read())
    await ws.send_str(json.dumps({"type": "auth", "token": chat_token(number, lifetime=3600), "since": None}))
    await asyncio.wait_for(widget.ready.wait(), 30)
    return widget


async def run(base_url: str, count: int, batch: int, rate: float, messages: int, pid: int) -> dict:
    numbers = await sync_to_async(bench_customers)(count)
    cookie = await sync_to_async(session_cookie)("alice")
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.sleep(1)
        before = rss_kib(pid)
        started = time.perf_counter()
        widgets, failed = [], 0
        for start in range(0, count, batch):
            opened = await asyncio.gather(
                *(open_widget(session, base_url, n) for n in numbers[start : start + batch]), return_exceptions=True
            )
            widgets += [w for w in opened if isinstance(w, Widget)]
            failed += sum(1 for w in opened if not isinstance(w, Widget))
        open_seconds = time.perf_counter() - started
        await asyncio.sleep(2)
        after = rss_kib(pid)

        inbox = await open_inbox(session, base_url, cookie)
        on_inbox: dict[int, float] = {}

        async def read_inbox():
            async for frame in inbox:
                event = parse(frame)
                if event and event.get("type") == "message.created" and event["message"]["direction"] == "inbound":
                    on_inbox.setdefault(event["message"]["id"], time.perf_counter())

        inbox_reader = asyncio.create_task(read_inbox())
        await asyncio.sleep(0.5)

        # Customer → advisor, at `rate`.
        run_id = uuid.uuid4().hex[:8]
        sent_at: dict[tuple[int, str], float] = {}
        writers = []
        first = time.perf_counter()
        for i in range(messages):
            widget = widgets[i % len(widgets)]
            client_id = f"{run_id}-{i}"
            sent_at[(i % len(widgets), client_id)] = time.perf_counter()
            await widget.ws.send_str(json.dumps({"type": "message.send", "client_id": client_id, "body": f"b{i}"}))
            writers.append(widget)
            await asyncio.sleep(max(0.0, first + (i + 1) / rate - time.perf_counter()))
        await asyncio.sleep(3)
        inbound = []
        lost_ack = lost_inbox = 0
        for (index, client_id), at in sent_at.items():
            message_id = widgets[index].acks.get(client_id)
            if message_id is None:
                lost_ack += 1
            elif message_id not in on_inbox:
                lost_inbox += 1
            else:
                inbound.append(on_inbox[message_id] - at)

        # Advisor → customer, at rate / 5, to those who wrote.
        alice = await sync_to_async(Advisor.objects.get)(user__username="alice")
        writers_unique = list({w.number: w for w in writers}.values())
        threads = await sync_to_async(
            lambda: dict(
                Thread.objects.filter(customer__customer_number__in=[w.number for w in writers_unique]).values_list(
                    "customer__customer_number", "pk"
                )
            )
        )()
        replies = max(1, messages // 5)
        outbound, reply_at = [], {}
        first = time.perf_counter()
        for i in range(replies):
            widget = writers_unique[i % len(writers_unique)]
            thread = Thread(pk=threads[widget.number])
            at = time.perf_counter()
            message = await sync_to_async(message_send)(thread=thread, author=alice, body=f"r{i}", channel="webchat")
            reply_at[message.pk] = (widget, at)
            await asyncio.sleep(max(0.0, first + (i + 1) * 5 / rate - time.perf_counter()))
        await asyncio.sleep(3)
        lost_widget = 0
        for message_id, (widget, at) in reply_at.items():
            if message_id in widget.arrived:
                outbound.append(widget.arrived[message_id] - at)
            else:
                lost_widget += 1
        still_open = sum(1 for w in widgets if not w.reader.done())

        inbox_reader.cancel()
        await inbox.close()
        for widget in widgets:
            await widget.ws.close()
    return {
        "sockets_asked": count,
        "sockets_open": len(widgets),
        "sockets_failed": failed,
        "sockets_still_open_at_end": still_open,
        "open_seconds": round(open_seconds, 1),
        "rss_before_kib": before,
        "rss_after_kib": after,
        "kib_per_socket": round((after - before) / max(len(widgets), 1), 1),
        "customer_to_advisor": {"messages": messages, "rate_per_s": rate, **summary_ms(inbound)},
        "advisor_to_customer": {"messages": replies, "rate_per_s": rate / 5, **summary_ms(outbound)},
        "lost": {"no_ack": lost_ack, "not_on_inbox": lost_inbox, "not_on_widget": lost_widget},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=5000, help="customer sockets held open")
    parser.add_argument("--batch", type=int, default=200, help="sockets opened at once")
    parser.add_argument("--rate", type=float, default=100, help="customer messages per second")
    parser.add_argument("--messages", type=int, default=2000, help="customer messages sent in all")
    args = parser.parse_args()
    pid = int(os.environ["SERVER_PID"])
    result = asyncio.run(run(settings.PUBLIC_BASE_URL, args.n, args.batch, args.rate, args.messages, pid))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
