"""The inbox, search, API, event catch-up and admin against a bank at scale: p50/p95/p99.

Run through bench/scale.sh, which serves the database as it is (one uvicorn process,
DEBUG off) and runs this against it:

    SCALE_DATABASE_URL=postgres://postgres@127.0.0.1:5432/attitre_scale bench/scale.sh --label 1M
    SCALE_DATABASE_URL=postgres://postgres@127.0.0.1:5432/attitre_scale_demo bench/scale.sh --label demo
    .venv/bin/python bench/scale.py --compare bench/results/scale-demo.json bench/results/scale-1M.json

Advisors log in for real (CSRF and /accounts/login/); the API is called with a key made
by `manage.py create_api_key` (and, for the advisor's view of it, alice's session).
Inputs vary within each row: threads, last names, customer numbers, phone numbers and
emails drawn from the advisor's own book, several handlers and cursors. Thread pages are
opened on threads without unread messages, so that reading one changes nothing.

Afterwards each request runs once more in this process with its SQL captured (its query
count goes in the table); the slowest rows' slowest statements are run again under
EXPLAIN (ANALYZE, BUFFERS) and saved in bench/plans/<label>/.

Target (issue 14): every page, search and API list p95 <= 60 ms, and within 1.5x its
demo figure.
"""

import argparse
import asyncio
import json
import re
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import quote, urlencode, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import ROOT, django_setup, summary_ms  # noqa: E402

TARGET_MS = 60
TARGET_RATIO = 1.5
PASSWORD = "attitre-demo"  # noqa: S105 - the demo's, printed by `manage.py demo`
RESULTS = ROOT / "bench" / "results"
PLANS = ROOT / "bench" / "plans"


@dataclass
class Row:
    key: str  # the same on every database: rows are compared by it
    label: str
    group: str
    who: str  # a username, or "api-key"
    inputs: list[str]  # paths (HTTP) or `since` values (websocket)
    kind: str = "http"
    result: dict = field(default_factory=dict)


# --- Logged-in HTTP, one keep-alive connection ---------------------------------------------------


class Http:
    def __init__(self, base_url: str):
        import urllib3

        parts = urlsplit(base_url)
        self.base_url = base_url
        self.pool = urllib3.HTTPConnectionPool(parts.hostname, parts.port, maxsize=1, retries=False, timeout=120)
        self.cookies: dict[str, str] = {}
        self.headers: dict[str, str] = {}

    def _absorb(self, response) -> None:
        for header in response.headers.getlist("Set-Cookie"):
            cookie = SimpleCookie()
            cookie.load(header)
            # Secure cookies (DEBUG off) are kept: this is plain HTTP to 127.0.0.1.
            self.cookies.update({name: morsel.value for name, morsel in cookie.items()})

    def request(self, method: str, path: str, body: str | None = None, headers: dict | None = None):
        cookie = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        all_headers = {**self.headers, **(headers or {}), **({"Cookie": cookie} if cookie else {})}
        response = self.pool.request(method, path, body=body, headers=all_headers, redirect=False)
        self._absorb(response)
        return response

    def login(self, username: str) -> "Http":
        page = self.request("GET", "/accounts/login/")
        token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.data).group(1).decode()
        form = urlencode({"username": username, "password": PASSWORD, "csrfmiddlewaretoken": token, "next": "/inbox/"})
        answer = self.request(
            "POST", "/accounts/login/", body=form, headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
        if answer.status != 302:
            raise SystemExit(f"Logging in as {username} failed ({answer.status}): is this a demo or bench bank?")
        return self

    def get(self, path: str) -> tuple[int, bytes, float]:
        started = time.perf_counter()
        response = self.request("GET", path)
        return response.status, response.data, time.perf_counter() - started


# --- What to ask: inputs from the bank itself ---------------------------------------------------


def _sql(query: str, params=()) -> list[tuple]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchall()


def _national(phone: str) -> str:
    """+33612345678 → 06 12 34 56 78"""
    digits = "0" + phone[3:]
    return " ".join(digits[i : i + 2] for i in range(0, 10, 2))


def _tables() -> dict[str, str]:
    from django.apps import apps

    def table(*labels):
        for label in labels:
            try:
                return apps.get_model(label)._meta.db_table
            except LookupError:
                continue
        raise LookupError(labels)

    return {
        "customer": table("crm.Customer"),
        "contactpoint": table("crm.ContactPoint"),
        "advisor": table("crm.Advisor"),
        "user": table("auth.User"),
        "thread": table("conversations.Thread"),
        "message": table("conversations.Message"),
        "event": table("events.Event", "conversations.Event"),
    }


def book_inputs(t: dict, advisor_id: int, count: int) -> dict[str, list[str]]:
    """Search terms from an advisor's book (None for a whole agency: the supervisor's)."""
    rows = _sql(
        f"""SELECT c.last_name, c.customer_number,
                   (SELECT address FROM {t["contactpoint"]} p
                    WHERE p.customer_id = c.id AND p.kind IN ('whatsapp', 'sms') ORDER BY p.kind DESC LIMIT 1),
                   (SELECT address FROM {t["contactpoint"]} p WHERE p.customer_id = c.id AND p.kind = 'email' LIMIT 1)
            FROM {t["customer"]} c WHERE c.dedicated_advisor_id = %s
            ORDER BY md5(c.id::text) LIMIT %s""",
        [advisor_id, count * 4],
    )
    phones = [row[2] for row in rows if row[2]][:count]
    return {
        "last_name": [row[0] for row in rows][:count],
        "number": [row[1] for row in rows][:count],
        "phone_national": [_national(phone) for phone in phones if phone.startswith("+33")],
        "phone_e164": phones,
        "email": [row[3] for row in rows if row[3]][:count],
    }


def visible_threads(t: dict, advisor_id: int, count: int) -> tuple[list[int], list[int]]:
    """Threads the advisor handles or whose customer is theirs, preferably without unread
    messages (opening one marks it read, a write): a random sample, and the ones with the
    most messages."""
    visible = f"""FROM {t["thread"]} th LEFT JOIN {t["customer"]} c ON c.id = th.customer_id
                  WHERE (th.handler_id = %s OR c.dedicated_advisor_id = %s)"""
    picks = []
    for order, limit in (
        ("md5(th.id::text)", count),
        (f"(SELECT count(*) FROM {t['message']} m WHERE m.thread_id = th.id) DESC", 5),
    ):
        ids = [
            row[0]
            for row in _sql(
                f"SELECT th.id {visible} AND th.unread_count = 0 ORDER BY {order} LIMIT %s",
                [advisor_id, advisor_id, limit],
            )
        ]
        ids = ids or [
            row[0] for row in _sql(f"SELECT th.id {visible} ORDER BY {order} LIMIT %s", [advisor_id, advisor_id, limit])
        ]
        picks.append(ids)
    return picks[0], picks[1]


def api_key() -> str:
    """A fresh all-scopes key: only its hash is stored, so one is made for each run."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), "create_api_key", "--name", "bench scale", "--scopes", "all"],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    return done.stdout.strip().splitlines()[-1]


def plan_rows(http_api: Http, *, advisor: str, big: str, supervisor: str, count: int) -> tuple[list[Row], dict]:
    t = _tables()
    ids = dict(
        _sql(
            f"SELECT u.username, a.id FROM {t['advisor']} a JOIN {t['user']} u ON u.id = a.user_id "
            "WHERE u.username IN (%s, %s, %s)",
            [advisor, big, supervisor],
        )
    )
    books = dict(
        _sql(
            f"SELECT dedicated_advisor_id, count(*) FROM {t['customer']} WHERE dedicated_advisor_id IN (%s, %s) "
            "GROUP BY 1",
            [ids[advisor], ids[big]],
        )
    )
    facts = {
        "customers": _sql(f"SELECT count(*) FROM {t['customer']}")[0][0],
        "threads": _sql(f"SELECT count(*) FROM {t['thread']}")[0][0],
        "messages": _sql(f"SELECT count(*) FROM {t['message']}")[0][0],
        "events": _sql(f"SELECT count(*) FROM {t['event']}")[0][0],
        "books": {advisor: books.get(ids[advisor], 0), big: books.get(ids[big], 0)},
    }
    rows: list[Row] = []
    for who in (advisor, big):
        book = f"{who}, {facts['books'][who]:,}-customer book"
        for tab in ("mine", "pool", "covering", "closed"):
            rows.append(Row(f"inbox.{tab}.{who}", f"/inbox/?tab={tab} ({book})", "inbox", who, [f"/inbox/?tab={tab}"]))
        terms = book_inputs(t, ids[who], count)
        for name, label in (
            ("last_name", "last name"),
            ("number", "customer number"),
            ("phone_national", "phone, 06 12 34 56 78"),
            ("phone_e164", "phone, +33612345678"),
            ("email", "email address"),
        ):
            paths = [f"/inbox/?q={quote(term)}" for term in terms[name]]
            if paths:
                rows.append(Row(f"search.{name}.{who}", f"/inbox/?q=<{label}> ({book})", "search", who, paths))
        sample, heavy = visible_threads(t, ids[who], count)
        rows.append(
            Row(
                f"thread.{who}",
                f"/inbox/threads/<id>/ ({who}'s threads)",
                "thread",
                who,
                [f"/inbox/threads/{tid}/" for tid in sample],
            )  # fmt: skip
        )
        if who == advisor:
            rows.append(
                Row(
                    "thread.heavy",
                    f"/inbox/threads/<id>/ ({who}'s 5 longest threads)",
                    "thread",
                    who,
                    [f"/inbox/threads/{tid}/" for tid in heavy],
                )  # fmt: skip
            )
            rows.append(
                Row(
                    "api.messages",
                    "/api/v1/threads/<id>/messages/",
                    "api",
                    "api-key",
                    [f"/api/v1/threads/{tid}/messages/" for tid in sample],
                )  # fmt: skip
            )
            rows.append(
                Row(
                    "api.messages.heavy",
                    "/api/v1/threads/<id>/messages/?order=newest (longest threads)",
                    "api",
                    "api-key",
                    [f"/api/v1/threads/{tid}/messages/?order=newest" for tid in heavy],
                )  # fmt: skip
            )
            rows.append(
                Row(
                    "api.customers.phone",
                    "/api/v1/customers/?phone=<+336…>",
                    "api",
                    "api-key",
                    [f"/api/v1/customers/?phone={quote(p)}" for p in terms["phone_e164"]],
                )  # fmt: skip
            )
            rows.append(
                Row(
                    "api.customers.phone_national",
                    "/api/v1/customers/?phone=<06 …>",
                    "api",
                    "api-key",
                    [f"/api/v1/customers/?phone={quote(p)}" for p in terms["phone_national"]],
                )  # fmt: skip
            )
            rows.append(
                Row(
                    "api.customers.search",
                    "/api/v1/customers/?search=<last name>",
                    "api",
                    "api-key",
                    [f"/api/v1/customers/?search={quote(n)}" for n in terms["last_name"]],
                )  # fmt: skip
            )
            rows.append(
                Row(
                    "api.customers.search.session",
                    f"/api/v1/customers/?search=<last name> ({who}'s session)",
                    "api",
                    who,
                    [f"/api/v1/customers/?search={quote(n)}" for n in terms["last_name"]],
                )  # fmt: skip
            )

    handlers = [row[0] for row in _sql(f"SELECT id FROM {t['advisor']} ORDER BY md5(id::text) LIMIT 10")]
    base = "/api/v1/threads/?page_size=50"
    rows += [
        Row("api.threads", base, "api", "api-key", [base]),
        Row("api.threads.handler", base + "&handler=<id>", "api", "api-key", [f"{base}&handler={h}" for h in handlers]),
        Row("api.threads.pool", base + "&handler=none", "api", "api-key", [base + "&handler=none"]),
        Row(
            "api.threads.status",
            base + "&status=open|waiting",
            "api",
            "api-key",
            [base + "&status=open", base + "&status=waiting"],
        ),  # fmt: skip
        Row(
            "api.threads.channel",
            base + "&channel=sms|whatsapp",
            "api",
            "api-key",
            [base + "&channel=sms", base + "&channel=whatsapp"],
        ),  # fmt: skip
        Row("api.threads.next", base + " pages 2–20 (next cursor)", "api", "api-key", next_pages(http_api, base, 20)),
        Row("api.threads.session", base + f" ({advisor}'s session)", "api", advisor, [base]),
    ]
    top = _sql(f"SELECT coalesce(max(id), 0) FROM {t['event']}")[0][0]
    rows += [
        Row(
            "api.events.recent",
            "/api/v1/events/?since=<latest − 100…5,000>",
            "api",
            "api-key",
            [f"/api/v1/events/?since={max(0, top - back)}" for back in (100, 500, 1000, 2000, 5000)],
        ),  # fmt: skip
        Row(
            "api.events.backlog",
            "/api/v1/events/?since=<0 … half the log>",
            "api",
            "api-key",
            [f"/api/v1/events/?since={top * k // 10}" for k in range(6)],
        ),  # fmt: skip
    ]

    def position(back: int) -> str:
        """The socket's cursor of a tab that saw every event up to id `top - back` (events.log)."""
        found = _sql(
            f"SELECT coalesce(txid, id) FROM {t['event']} WHERE id <= {max(0, top - back)} ORDER BY id DESC LIMIT 1"
        )
        return str(found[0][0] + 1 if found else 0)

    for who in (advisor, big):
        rows += [
            Row(f"ws.none.{who}", f"/ws/inbox/?since=<latest> ({who})", "ws", who, [position(0)], kind="ws"),
            Row(
                f"ws.some.{who}",
                f"/ws/inbox/?since=<latest − 1,000> ({who})",
                "ws",
                who,
                [position(1000)],
                kind="ws",
            ),  # fmt: skip
            Row(
                f"ws.many.{who}",
                f"/ws/inbox/?since=<latest − 20,000> ({who})",
                "ws",
                who,
                [position(20000)],
                kind="ws",
            ),  # fmt: skip
        ]
    lyon = _sql(
        f"SELECT a.id FROM {t['advisor']} a JOIN {t['advisor']} s ON s.agency_id = a.agency_id AND s.id = %s "
        "WHERE a.role = 'advisor' ORDER BY a.id LIMIT 1",
        [ids[supervisor]],
    )[0][0]
    terms = book_inputs(t, lyon, count)
    rows.append(Row("admin.list", "/admin/crm/customer/ (sam)", "admin", supervisor, ["/admin/crm/customer/"]))
    for name, label in (("last_name", "last name"), ("number", "customer number"),
                        ("phone_national", "phone, 06 …"), ("email", "email address")):  # fmt: skip
        rows.append(
            Row(
                f"admin.search.{name}",
                f"/admin/crm/customer/?q=<{label}> (sam)",
                "admin",
                supervisor,
                [f"/admin/crm/customer/?q={quote(term)}" for term in terms[name]],
            )  # fmt: skip
        )
    return rows, facts


def later_inbox_pages(http: Http, first: str, pages: int) -> list[str]:
    """The paths the list fetches as it scrolls (`part=rows`), pages 2…`pages`, following each
    page's "Older conversations" link."""
    paths, path = [], first
    for _ in range(pages - 1):
        status, body, _elapsed = http.get(path)
        found = re.search(rb'id="thread-list-more"[^>]*><a href="([^"]+)"', body) if status == 200 else None
        if not found:
            break
        path = found.group(1).decode().replace("&amp;", "&") + "&part=rows"
        paths.append(path)
    return paths


def next_pages(http: Http, first: str, pages: int) -> list[str]:
    """The paths of pages 2…`pages`, following each page's `next` link."""
    paths, path = [], first
    for _ in range(pages - 1):
        status, body, _elapsed = http.get(path)
        following = json.loads(body).get("next") if status == 200 else None
        if not following:
            break
        parts = urlsplit(following)
        path = f"{parts.path}?{parts.query}"
        paths.append(path)
    return paths or [first]


# --- Measuring ----------------------------------------------------------------------------------------


def measure_http(http: Http, row: Row, *, reps: int, budget: float) -> dict:
    for path in row.inputs[:3]:
        http.get(path)  # warm-up: caches, connections, the first query plans
    latencies, sizes, failures = [], [], {}
    started = time.perf_counter()
    last_body = b""
    for n in range(reps):
        status, body, elapsed = http.get(row.inputs[n % len(row.inputs)])
        if status != 200:
            failures[status] = failures.get(status, 0) + 1
        latencies.append(elapsed)
        sizes.append(len(body))
        last_body = body
        if time.perf_counter() - started > budget and n >= 19:
            break
    result = {"n": len(latencies), **summary_ms(latencies), "bytes": round(sum(sizes) / len(sizes))}
    if failures:
        result["failures"] = failures
    if row.group == "inbox":
        result["rows_shown"] = last_body.count(b'class="thread-row')
        result["has_more"] = b'id="thread-list-more"' in last_body
    return result


async def _catch_up_once(session, base_url: str, cookie: str, since: str) -> tuple[float, int, bool]:
    from django.conf import settings

    started = time.perf_counter()
    ws = await session.ws_connect(
        base_url.replace("http", "ws", 1) + f"/ws/inbox/?since={since}",
        headers={"Cookie": f"{settings.SESSION_COOKIE_NAME}={cookie}", "Origin": base_url},
    )
    # The consumer handles a frame only once connect() (and its replay) is done: the pong
    # marks the end of the replay.
    await ws.send_str(json.dumps({"type": "ping"}))
    events, resync = 0, False
    async for frame in ws:
        data = json.loads(frame.data)
        if data.get("type") == "pong":
            break
        resync = resync or data.get("type") == "resync"
        events += "id" in data
    elapsed = time.perf_counter() - started
    await ws.close()
    return elapsed, events, resync


def measure_ws(base_url: str, cookie: str, row: Row, *, reps: int, budget: float) -> dict:
    import aiohttp

    async def run():
        latencies, replayed, resyncs = [], [], 0
        async with aiohttp.ClientSession() as session:
            await _catch_up_once(session, base_url, cookie, row.inputs[0])
            started = time.perf_counter()
            for n in range(reps):
                elapsed, events, resync = await _catch_up_once(session, base_url, cookie, row.inputs[0])
                latencies.append(elapsed)
                replayed.append(events)
                resyncs += resync
                if time.perf_counter() - started > budget and n >= 19:
                    break
        return {"n": len(latencies), **summary_ms(latencies), "events_replayed": max(replayed), "resync": resyncs}

    return asyncio.run(run())


# --- The SQL behind each request -----------------------------------------------------------------------


def capture(row: Row, *, api_key_value: str) -> list[dict]:
    """The statements the request runs, with their times, by running it in this process."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    if row.kind == "ws":
        from channels_app.consumers import REPLAY_MAX_EVENTS
        from conversations.selectors import events_visible_from

        advisor = get_user_model().objects.get(username=row.who).advisor
        with CaptureQueriesContext(connection) as captured:
            events_visible_from(advisor=advisor, position=int(row.inputs[0]), limit=REPLAY_MAX_EVENTS + 1)
    else:
        client = Client(SERVER_NAME="127.0.0.1")
        headers = {}
        if row.who == "api-key":
            headers["HTTP_AUTHORIZATION"] = f"Bearer {api_key_value}"
        else:
            client.force_login(get_user_model().objects.get(username=row.who))
        with CaptureQueriesContext(connection) as captured:
            client.get(row.inputs[0], **headers)
    return [{"ms": float(query["time"]) * 1000, "sql": query["sql"]} for query in captured.captured_queries]


def explain(statement: str) -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + statement)
        return "\n".join(line for (line,) in cursor.fetchall())


def save_plans(label: str, row: Row, queries: list[dict], *, statements: int = 2) -> Path:
    folder = PLANS / label
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{row.key}.txt"
    lines = [f"{row.label}\n{row.inputs[0]}\n", f"{len(queries)} statements:"]
    lines += [f"  {q['ms']:8.1f} ms  {q['sql'][:160]}" for q in queries]
    selects = [q for q in queries if q["sql"].lstrip().upper().startswith("SELECT")]
    for query in sorted(selects, key=lambda q: -q["ms"])[:statements]:
        lines += ["", "-" * 100, f"{query['ms']:.1f} ms in the request:", query["sql"], "", explain(query["sql"])]
    path.write_text("\n".join(lines) + "\n")
    return path


# --- Reporting --------------------------------------------------------------------------------------


def print_table(rows: list[dict]) -> None:
    print("| request | n | p50 ms | p95 ms | p99 ms | bytes | queries |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        r = row["result"]
        print(
            f"| {row['label']} | {r['n']} | {r['p50_ms']} | {r['p95_ms']} | {r['p99_ms']} | "
            f"{r.get('bytes', '')} | {r.get('queries', '')} |"
        )


def compare(paths: list[str]) -> None:
    """One table: each request's figures on each database, the last one's response size and
    query count, and its p95 against the demo's (the first file) and the target."""
    runs = [json.loads(Path(path).read_text()) for path in paths]
    results = [{row["key"]: row["result"] for row in run["rows"]} for run in runs]
    last = runs[-1]["label"]
    print(
        "| request | "
        + " | ".join(f"{run['label']} p50 / p95 / p99 ms" for run in runs)
        + f" | {last} bytes | {last} queries | {last} p95 ×demo | target |"
    )
    print("|---|" + "---:|" * (len(runs) + 3) + "---|")
    for row in runs[-1]["rows"]:
        cells = []
        for by_key in results:
            result = by_key.get(row["key"])
            cells.append(f"{result['p50_ms']:.0f} / {result['p95_ms']:.0f} / {result['p99_ms']:.0f}" if result else "—")
        final, base = row["result"], results[0].get(row["key"])
        ratio = final["p95_ms"] / base["p95_ms"] if base and base["p95_ms"] else None
        met = final["p95_ms"] <= TARGET_MS and (ratio is None or ratio <= TARGET_RATIO)
        size = f"{final['bytes']:,}" if final.get("bytes") is not None else "—"
        print(
            f"| {row['label']} | "
            + " | ".join(cells)
            + f" | {size} | {final.get('queries', '')} | {f'{ratio:.1f}' if ratio else '—'}"
            + f" | {'met' if met else 'missed'} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--label", help="names the results file and the plans folder, e.g. 1M, 100k, demo")
    parser.add_argument("--url", default=None, help="the server (default: PUBLIC_BASE_URL)")
    parser.add_argument("--reps", type=int, default=100, help="requests per row (at least 20)")
    parser.add_argument("--budget", type=float, default=45, help="seconds per row after which it stops early")
    parser.add_argument("--inputs", type=int, default=20, help="varied inputs per row")
    parser.add_argument("--explain", type=int, default=8, help="EXPLAIN the slowest statements of this many rows")
    parser.add_argument(
        "--explain-only",
        action="store_true",
        help="no timings: capture and EXPLAIN every selected row, save no results",
    )
    parser.add_argument("--only", default="", help="only rows whose key starts with one of these (comma-separated)")
    parser.add_argument("--advisor", default="alice")
    parser.add_argument("--big-advisor", default="chloe")
    parser.add_argument("--supervisor", default="sam")
    parser.add_argument("--compare", nargs="+", metavar="RESULTS", help="print a table of saved results and stop")
    args = parser.parse_args()
    if args.compare:
        compare(args.compare)
        return
    if not args.label:
        parser.error("--label is required to run the benchmark")

    django_setup()
    from django.conf import settings
    from django.db import connection

    base_url = (args.url or settings.PUBLIC_BASE_URL).rstrip("/")
    key = api_key()
    http_api = Http(base_url)
    http_api.headers["Authorization"] = f"Bearer {key}"
    rows, facts = plan_rows(
        http_api, advisor=args.advisor, big=args.big_advisor, supervisor=args.supervisor, count=args.inputs
    )
    if args.only:
        rows = [row for row in rows if row.key.startswith(tuple(args.only.split(",")))]
    sessions = {who: Http(base_url).login(who) for who in {row.who for row in rows if row.who != "api-key"}}
    for who in (args.advisor, args.big_advisor):
        key = f"inbox.mine.later.{who}"
        later = later_inbox_pages(sessions[who], "/inbox/?tab=mine", 10) if who in sessions else []
        if later and (not args.only or key.startswith(tuple(args.only.split(",")))):
            rows.append(Row(key, f"/inbox/?tab=mine pages 2–10 (as {who} scrolls)", "inbox", who, later))
    print(
        f"{args.label}: {facts['customers']:,} customers, {facts['threads']:,} threads, {facts['messages']:,} "
        f"messages, {facts['events']:,} events; books {facts['books']}",
        flush=True,
    )
    for row in [] if args.explain_only else rows:
        if row.kind == "ws":
            row.result = measure_ws(
                base_url, sessions[row.who].cookies[settings.SESSION_COOKIE_NAME], row, reps=args.reps,
                budget=args.budget,
            )  # fmt: skip
        else:
            http = http_api if row.who == "api-key" else sessions[row.who]
            row.result = measure_http(http, row, reps=args.reps, budget=args.budget)
        print(f"  {row.label}: p50 {row.result['p50_ms']} p95 {row.result['p95_ms']} ms", flush=True)

    print("Capturing each request's SQL …", flush=True)
    captured = {}
    for row in rows:
        captured[row.key] = capture(row, api_key_value=key)
        row.result["queries"] = len(captured[row.key])
        row.result["slowest_statement_ms"] = round(max((q["ms"] for q in captured[row.key]), default=0), 1)
    slowest = rows if args.explain_only else sorted(rows, key=lambda row: -row.result["p95_ms"])[: args.explain]
    for row in slowest:
        print(f"  plan: {save_plans(args.label, row, captured[row.key]).relative_to(ROOT)}", flush=True)

    if args.explain_only:
        return
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"scale-{args.label}.json"
    document = {
        "label": args.label,
        "database": connection.settings_dict["NAME"],
        "facts": facts,
        "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "reps": args.reps,
        "rows": [asdict(row) | {"inputs": row.inputs[:3]} for row in rows],
    }
    out.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n")
    print_table(document["rows"])
    print(f"Saved {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
