"""Inbound webhook throughput: N signed WhatsApp webhooks at a given concurrency.

Run against a running server (the shipped ASGI server on PostgreSQL and Redis);
`make bench-inbound` starts one and runs this. From this separate process it
posts N signed webhooks spread over the demo customers, reports accepted msgs/s
and p50/p95/p99 answer time, then checks the database holds exactly N of them.

    DATABASE_URL=postgres://… REDIS_URL=redis://… TWILIO_AUTH_TOKEN=… PUBLIC_BASE_URL=http://127.0.0.1:8100 \
        .venv/bin/python bench/inbound.py --url http://127.0.0.1:8100 -n 20000 -c 32

Target on a 2-core machine: >= 500 msgs/s sustained, p99 <= 100 ms, zero loss.
"""

import argparse
import asyncio
import json
import sys
import uuid
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import django_setup, post_all, summary_ms  # noqa: E402

django_setup()

from django.conf import settings  # noqa: E402
from django.http import QueryDict  # noqa: E402

from conversations.models import Message  # noqa: E402
from conversations.providers.twilio import sign  # noqa: E402
from crm.models import ContactPoint  # noqa: E402

PATH = "/webhooks/twilio/messages/"


def build_payloads(n: int, run_id: str, base_url: str) -> list[tuple[bytes, str, str]]:
    numbers = list(
        ContactPoint.objects.filter(kind="whatsapp", customer__isnull=False).values_list("address", flat=True)
    )
    if not numbers:
        raise SystemExit("No WhatsApp customers in the database: run `python manage.py demo` first.")
    url = base_url + PATH
    payloads = []
    for i in range(n):
        number = numbers[i % len(numbers)]
        sid = f"SM{run_id}{i:022x}"
        params = {
            "MessageSid": sid,
            "SmsMessageSid": sid,
            "SmsSid": sid,
            "AccountSid": settings.TWILIO_ACCOUNT_SID or "AC" + "0" * 32,
            "From": f"whatsapp:{number}",
            "To": "whatsapp:+33180000000",
            "Body": f"Bonjour, message de test {i}",
            "NumMedia": "0",
            "NumSegments": "1",
            "ProfileName": "Bench",
            "WaId": number.lstrip("+"),
            "MessageType": "text",
            "SmsStatus": "received",
            "ApiVersion": "2010-04-01",
        }
        query = QueryDict(mutable=True)
        query.update(params)
        payloads.append((urlencode(params).encode(), sign(url=url, params=query), sid))
    return payloads


def signed_request(payload: tuple[bytes, str, str]) -> tuple[bytes, dict]:
    body, signature, _sid = payload
    return body, {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=settings.PUBLIC_BASE_URL, help="server base URL (signed as PUBLIC_BASE_URL)")
    parser.add_argument("-n", "--messages", type=int, default=10000)
    parser.add_argument("-c", "--concurrency", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=500, help="messages sent first and not measured")
    parser.add_argument("--cafile", help="CA certificate of an https --url (bench/pair.sh's proxy)")
    args = parser.parse_args()

    # Each run its own 10 hexadecimal digits: with the counter, a MessageSid in Twilio's format.
    warmup = build_payloads(args.warmup, uuid.uuid4().hex[:10], settings.PUBLIC_BASE_URL) if args.warmup else []
    payloads = build_payloads(args.messages, uuid.uuid4().hex[:10], settings.PUBLIC_BASE_URL)
    target = args.url.rstrip("/") + PATH
    if warmup:
        asyncio.run(post_all(target, warmup, args.concurrency, signed_request, cafile=args.cafile))
    posted = asyncio.run(post_all(target, payloads, args.concurrency, signed_request, cafile=args.cafile))
    latencies, statuses, elapsed = posted.latencies, posted.statuses, posted.elapsed

    sids = [sid for _body, _sig, sid in payloads]
    stored = 0
    for start in range(0, len(sids), 5000):
        stored += Message.objects.filter(provider="twilio", provider_message_id__in=sids[start : start + 5000]).count()
    accepted = statuses.get(200, 0)
    result = {
        "messages": args.messages,
        "concurrency": args.concurrency,
        "elapsed_s": round(elapsed, 2),
        "accepted_per_s": round(accepted / elapsed, 1),
        "statuses": statuses,
        **summary_ms(latencies),
        "stored": stored,
        "lost": args.messages - stored,
        "duplicates": max(0, stored - args.messages),
    }
    print(json.dumps(result, indent=2))
    target_met = result["accepted_per_s"] >= 500 and result["p99_ms"] <= 100 and stored == args.messages
    print(f"target (>= 500 msgs/s, p99 <= 100 ms, zero loss): {'MET' if target_met else 'MISSED'}")


if __name__ == "__main__":
    main()
