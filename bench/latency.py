"""Webhook-to-socket latency of the live inbox.

With the shipped server, PostgreSQL and Redis running (`make bench-latency` starts
them), an authenticated websocket client as alice, and signed webhooks from her
customers posted at a fixed rate: the time from sending the webhook request to the
message.created event arriving on alice's socket.

Target on a 2-core machine: p50 <= 5 ms, p99 <= 25 ms (at 50 msgs/s, 1,000 messages).
"""

import argparse
import asyncio
import json
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

from bench.inbox_client import MESSAGES_PATH, drain, open_inbox, parse, session_cookie, signed_whatsapp  # noqa: E402
from conversations.models import Message  # noqa: E402
from crm.models import ContactPoint  # noqa: E402


def _bodies(message_ids: list[int]) -> list[tuple[int, str]]:
    return list(Message.objects.filter(pk__in=message_ids).values_list("pk", "body"))


async def measure(base_url: str, rate: float, count: int, numbers: list[str], cookie: str, idle_sockets: int) -> dict:
    run = uuid.uuid4().hex[:8]
    sent_at: dict[str, float] = {}
    latencies: list[float] = []
    done = asyncio.Event()
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        idle = [await open_inbox(session, base_url, cookie) for _ in range(idle_sockets)]
        idle_readers = [asyncio.create_task(drain(ws)) for ws in idle]
        socket = await open_inbox(session, base_url, cookie)

        # Frames carry the message's id, not its text: arrivals are matched to their webhooks
        # afterwards, through the database.
        arrived: dict[int, float] = {}

        async def read():
            async for frame in socket:
                event = parse(frame)
                if not event or event.get("type") != "message.created":
                    continue
                arrived.setdefault(event["message"]["id"], time.perf_counter())
                if len(arrived) == count:
                    done.set()

        reader = asyncio.create_task(read())
        answers = []
        answer_times: list[float] = []

        async def post(body, headers):
            started = time.perf_counter()
            async with session.post(base_url + MESSAGES_PATH, data=body, headers=headers) as response:
                await response.read()
            answer_times.append(time.perf_counter() - started)

        for i in range(count):
            token = f"{run}-{i}"
            body, headers = signed_whatsapp(
                base_url=base_url,
                sid=f"SM{run}{i:024x}",
                sender=numbers[i % len(numbers)],
                body=f"Bonjour {token}",
            )
            sent_at[token] = time.perf_counter()
            answers.append(asyncio.create_task(post(body, headers)))
            await asyncio.sleep(1 / rate)
        await asyncio.gather(*answers)
        try:
            await asyncio.wait_for(done.wait(), timeout=30)
        except TimeoutError:
            pass
        reader.cancel()
        await socket.close()
        for ws in idle:
            await ws.close()
        await asyncio.gather(*idle_readers)
    for message_id, body in await sync_to_async(_bodies)(list(arrived)):
        started = sent_at.pop(body.rsplit(" ", 1)[-1], None)
        if started is not None:
            latencies.append(arrived[message_id] - started)
    return {
        "messages": count,
        "rate_per_s": rate,
        "received": len(latencies),
        "missing": count - len(latencies),
        **summary_ms(latencies),
        "webhook_answer": summary_ms(answer_times),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=settings.PUBLIC_BASE_URL)
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("-n", "--messages", type=int, default=1000)
    parser.add_argument("--advisor", default="alice")
    parser.add_argument("--idle-sockets", type=int, default=0, help="other sockets of alice's kept open meanwhile")
    args = parser.parse_args()
    numbers = list(
        ContactPoint.objects.filter(
            kind="whatsapp", customer__dedicated_advisor__user__username=args.advisor
        ).values_list("address", flat=True)
    )
    cookie = session_cookie(args.advisor)
    result = asyncio.run(measure(args.url.rstrip("/"), args.rate, args.messages, numbers, cookie, args.idle_sockets))
    print(json.dumps(result, indent=2))
    met = result["missing"] == 0 and result["p50_ms"] <= 5 and result["p99_ms"] <= 25
    print(f"target (p50 <= 5 ms, p99 <= 25 ms, nothing missing): {'MET' if met else 'MISSED'}")


if __name__ == "__main__":
    main()
