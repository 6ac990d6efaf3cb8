"""Build a believable bank of N customers on PostgreSQL, with set-based SQL, in minutes.

    .venv/bin/python bench/bank.py --customers 100000 [--messages 1000000] [--events 1000000]
        [--database-url postgres://postgres@127.0.0.1:5432/attitre_scale] [--reset]

Creates the database if needed, runs `manage.py migrate` and `manage.py demo` (alice, bob,
chloe and sam keep their password, attitre-demo), then adds, in one transaction:

- agencies: the demo's two plus branches (about one per 12,000 customers), each with
  opening hours, closed days and a supervisor;
- advisors: about one per 1,500 customers, books log-normal between 500 and 3,000; alice's
  book is 3,000 customers and chloe's (the online centre) 47,000, with two more very large
  books from 400,000 customers; deputies, a few advisors away or out of office (alice and
  chloe each cover one), a few who left;
- customers with French names (a few hundred of each, Zipf-weighted), unique customer
  numbers, segments, typologies and languages mixed, WhatsApp (60 %), SMS (most), email
  (30 %) contact points, mostly opted in, and their assignment history; 4 % have no
  dedicated advisor (the online centre's call-centre pool) and 1 % more are unknown numbers;
- one thread for 70 % of customers and for every unknown number, open, waiting or closed,
  routed as conversations/routing.py would; messages over three years in episodes, both
  directions, WhatsApp and SMS, delivery statuses, templates, attachments, locations, the
  webhook parameters of inbound ones; the threads' last activity, preview, waiting time,
  unread count and last inbound times follow from their messages;
- the event log (message.created, message.status, thread.assigned, thread.updated,
  note.created, customer.reassigned) of the most recent messages, as many events as asked,
  with the payloads the services publish.

Ids follow time, as in a live database; sequences are moved past them; everything is
vacuumed and analysed. A database that already holds a bank is refused (--reset drops and
recreates it, for a database whose name says it is a bench one).
"""

import argparse
import json
import math
import os
import random
import re
import subprocess
import sys
import time
import unicodedata
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from psycopg import sql  # noqa: E402

from bench import bank_sql as q  # noqa: E402
from bench import bank_text as text  # noqa: E402

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/attitre_scale"
MARKER = "attitre bench bank "
SEED = 2027
HEAVY_SHARE = 0.0001  # threads with 500 to 3,000 messages, besides alice's and chloe's three
# The tables loaded in bulk: their secondary indexes and their foreign-key and unique
# constraints are dropped for the load and put back (and checked) afterwards.
BULK_MODELS = ["Customer", "ContactPoint", "AdvisorAssignment", "Thread", "Message", "Attachment", "Note", "Event"]


# --- Timings -------------------------------------------------------------------------------------


class Timings:
    def __init__(self):
        self.steps: list[tuple[str, float]] = []
        self.started = time.perf_counter()

    @contextmanager
    def step(self, name: str):
        started = time.perf_counter()
        print(f"  {name} …", end="", flush=True)
        yield
        elapsed = time.perf_counter() - started
        self.steps.append((name, elapsed))
        print(f" {elapsed:.1f} s", flush=True)

    @property
    def total(self) -> float:
        return time.perf_counter() - self.started


# --- The database ----------------------------------------------------------------------------------


def _database_name(url: str) -> str:
    name = urlsplit(url).path.lstrip("/")
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
        raise SystemExit(f"Use a plain lower-case database name in the URL, not “{name}”.")
    return name


def _maintenance_url(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/postgres"))


def prepare_database(url: str, *, reset: bool) -> None:
    """Create the database, or drop and create it with --reset; refuse one that holds a bank."""
    name = _database_name(url)
    with psycopg.connect(_maintenance_url(url), autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if exists and reset:
            if "scale" not in name and "bench" not in name:
                raise SystemExit(
                    f"--reset drops the database; it only does so for a bench database (a name with “scale” or "
                    f"“bench” in it), not “{name}”."
                )
            admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
            exists = False
        if not exists:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            return
    with psycopg.connect(url) as db:
        comment = db.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = current_database()"
        ).fetchone()[0]
        if comment and comment.startswith(MARKER):
            raise SystemExit(
                f"{name} already holds a scaled bank ({comment.removeprefix(MARKER)}). "
                "Benchmark it as it is, or rebuild it with --reset."
            )
        table = db.execute("SELECT to_regclass('crm_customer')").fetchone()[0]
        customers = db.execute("SELECT count(*) FROM crm_customer").fetchone()[0] if table else 0
        if customers > 60:
            raise SystemExit(
                f"{name} holds {customers} customers, more than the demo's 60, but no finished bank: someone "
                "else's data. Use another database, or --reset to drop it."
            )


def manage(*args: str) -> None:
    subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], check=True, cwd=ROOT, stdout=subprocess.DEVNULL)


# --- The plan: agencies and advisors ---------------------------------------------------------------


@dataclass
class AgencyPlan:
    code: str
    name: str
    kind: str
    pool_name: str
    id: int | None = None


@dataclass
class StaffPlan:
    username: str
    first_name: str
    last_name: str
    agency: str
    role: str = "advisor"
    book: int = 0
    availability: str = "available"
    out_of_office: tuple[datetime, datetime] | None = None
    out_of_office_message: str = ""
    is_active: bool = True
    deputies: list[str] = field(default_factory=list)
    demo: bool = False
    id: int | None = None
    user_id: int | None = None

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @property
    def present(self) -> bool:
        return self.is_active and self.availability == "available" and self.out_of_office is None

    @property
    def absence(self) -> str:
        """The routing reason's parameters conversations.routing.absence_reason gives, as JSON."""
        if self.out_of_office is not None:
            return json.dumps({"absence": "out_of_office", "until": self.out_of_office[1].isoformat()})
        return json.dumps({"absence": "away"})


def ascii_slug(value: str, separator: str = "") -> str:
    plain = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode().lower()
    return re.sub(r"[^a-z0-9]+", separator, plain).strip(separator)


def book_sizes(total: int, count: int, rng: random.Random, *, low: int = 500, high: int = 3000) -> list[int]:
    """`count` log-normal book sizes around 1,500 within [low, high], summing to `total`."""
    if count == 0:
        return []
    low, high = min(low, total // count), max(high, -(-total // count))
    draws = [rng.lognormvariate(math.log(1500) - 0.45**2 / 2, 0.45) for _ in range(count)]
    factor = total / sum(draws)
    sizes = [min(high, max(low, round(draw * factor))) for draw in draws]
    diff, index = total - sum(sizes), 0
    while diff:
        position, step = index % count, 1 if diff > 0 else -1
        if low <= sizes[position] + step <= high:
            sizes[position] += step
            diff -= step
        index += 1
    return sizes


def plan_staff(customers: int, rng: random.Random, now: datetime) -> tuple[list[AgencyPlan], list[StaffPlan], int]:
    """Agencies and advisors with their book sizes; returns them and the customers left
    without a dedicated advisor (the online centre's pool)."""
    big = min(47_000, customers * 47 // 100)
    alice = min(3_000, customers * 3 // 100)
    unassigned = customers * 4 // 100
    very_large = [25_000, 15_000] if customers >= 400_000 else []
    rest = customers - big - alice - unassigned - sum(very_large)
    regular = max(3, round(rest / 1500))
    sizes = book_sizes(rest, regular, rng)

    extra_branches = max(1, min(round(customers / 12_000), regular // 5))
    places = [(town, district) for district_index in range(8) for town, districts in text.TOWNS
              if district_index < len(districts) for district in [districts[district_index]]]  # fmt: skip
    agencies = [
        AgencyPlan("lyon-bellecour", "Agence Lyon Bellecour", "branch", "File de l'agence Bellecour"),
        AgencyPlan("en-ligne", "Centre 100 % en ligne", "online", "File du centre en ligne"),
    ]
    for index in range(extra_branches):
        town, district = places[index % len(places)]
        suffix = f" {index // len(places) + 1}" if index >= len(places) else ""
        agencies.append(
            AgencyPlan(
                ascii_slug(f"{town}-{district}{suffix}", "-")[:32],
                f"Agence {town} {district}{suffix}",
                "branch",
                f"File de l'agence {district}{suffix}",
            )
        )

    taken = {"sam", "alice", "bob", "chloe"}

    def person(agency: str, **kwargs) -> StaffPlan:
        while True:
            first, last = rng.choice(text.FIRST_NAMES), rng.choice(text.LAST_NAMES)
            username = f"{ascii_slug(first)}.{ascii_slug(last)}"
            if username not in taken:
                taken.add(username)
                return StaffPlan(username, first, last, agency, **kwargs)

    staff = [
        StaffPlan("sam", "Sam", "Bernard", "lyon-bellecour", role="supervisor", demo=True),
        StaffPlan("alice", "Alice", "Durand", "lyon-bellecour", book=alice, demo=True),
        StaffPlan("bob", "Bob", "Leroy", "lyon-bellecour", book=sizes[0], demo=True),
        StaffPlan("chloe", "Chloé", "Petit", "en-ligne", book=big, demo=True),
    ]
    staff += [person(agency.code, role="supervisor") for agency in agencies[1:]]
    staff += [person("en-ligne", book=size) for size in very_large]
    in_lyon = max(2, min(6, regular // 6))
    online = max(1, round(0.15 * regular))
    branches = [agency.code for agency in agencies[2:]] or ["lyon-bellecour"]
    for index, size in enumerate(sizes[1:], start=1):
        if index < in_lyon:
            agency = "lyon-bellecour"
        elif index < in_lyon + online:
            agency = "en-ligne"
        else:
            agency = branches[(index - in_lyon - online) % len(branches)]
        staff.append(person(agency, book=size))
    staff += [
        person(rng.choice(agencies).code, is_active=False, availability="away") for _ in range(max(1, regular // 100))
    ]

    advisors = [member for member in staff if member.role == "advisor" and member.is_active]
    generated = [member for member in advisors if not member.demo]
    for member in rng.sample(generated, k=len(generated) // 33):
        member.availability = "away"
    for member in rng.sample(generated, k=len(generated) // 33):
        member.availability = "available"
        member.out_of_office = (now - timedelta(days=rng.randint(1, 10)), now + timedelta(days=rng.randint(10, 40)))
        member.out_of_office_message = rng.choice(text.OUT_OF_OFFICE_MESSAGES)
    # Alice and chloe each cover an absent colleague: their covering tab is not empty.
    covered = {}
    for deputy, agency in (("alice", "lyon-bellecour"), ("chloe", "en-ligne")):
        colleagues = [member for member in generated if member.agency == agency]
        if colleagues:
            absent = colleagues[0]
            absent.availability, absent.out_of_office = "available", (now - timedelta(days=3), now + timedelta(days=18))
            absent.out_of_office_message = text.OUT_OF_OFFICE_MESSAGES[0]
            covered[absent.username] = deputy
    for member in advisors:
        if member.username == "alice":
            continue  # the demo's: bob
        colleagues = [other.username for other in advisors if other.agency == member.agency and other is not member]
        chosen = rng.sample(colleagues, k=min(len(colleagues), rng.choice((1, 2))))
        if member.username in covered:
            chosen = [covered[member.username], *[name for name in chosen if name != covered[member.username]]][:2]
        member.deputies = chosen
    return agencies, staff, unassigned


# --- The build ----------------------------------------------------------------------------------------


def model(*labels: str):
    """The model under the first of these labels that exists (models may move between apps)."""
    from django.apps import apps

    for label in labels:
        try:
            return apps.get_model(label)
        except LookupError:
            continue
    raise LookupError(f"None of {', '.join(labels)} is an installed model.")


def table_names() -> dict[str, str]:
    names = {
        name.lower(): model(f"crm.{name}")._meta.db_table
        for name in [
            "Agency",
            "OpeningHours",
            "ClosedDay",
            "Advisor",
            "Deputyship",
            "Customer",
            "ContactPoint",
            "AdvisorAssignment",
        ]
    }
    for name in ["Thread", "Message", "Attachment", "Note", "MessageTemplate"]:
        names[name.lower()] = model(f"conversations.{name}")._meta.db_table
    names["event"] = model("events.Event", "conversations.Event")._meta.db_table
    user = model("auth.User")
    names["user"] = user._meta.db_table
    names["user_permissions"] = user.user_permissions.through._meta.db_table
    for value in names.values():
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", value):
            raise SystemExit(f"Unexpected table name {value!r}.")
    return names


class Bank:
    """One build: the connection, the table names and the parameters every statement shares."""

    def __init__(self, db: psycopg.Connection, tables: dict[str, str], timings: Timings):
        self.db, self.t, self.timings = db, tables, timings
        self.p: dict = {}

    def run(self, statement: str, params: dict | None = None):
        cursor = self.db.execute(
            statement.format(**self.t), {**self.p, **(params or {})} if "%(" in statement else None
        )
        # Temporary tables are never analysed on their own; without statistics the planner
        # may hash the big side of a join and lose the time order the rows are written in.
        staged = re.match(r"\s*CREATE TEMP TABLE (\w+)", statement)
        if staged:
            self.db.execute(f"ANALYZE {staged.group(1)}")
        return cursor

    def one(self, statement: str, params: dict | None = None):
        return self.run(statement, params).fetchone()[0]

    def max_id(self, table: str) -> int:
        return self.one(f"SELECT coalesce(max(id), 0) FROM {{{table}}}")


def check_columns(bank: Bank) -> None:
    """Every NOT NULL column without a default is written by the generator; refuse early otherwise."""
    statements = [value for value in vars(q).values() if isinstance(value, str) and "INSERT INTO {" in value]
    written = {}
    for statement in statements:
        for table, columns in re.findall(r"INSERT INTO \{(\w+)\} \(([^)]*)\)", statement):
            written[bank.t[table]] = {column.strip() for column in columns.split(",")}
    for table, columns in written.items():
        required = {row[0] for row in bank.db.execute(q.REQUIRED_COLUMNS, {"table": table})}
        missing = required - columns
        if missing:
            raise SystemExit(
                f"{table} has NOT NULL columns the generator does not fill: {', '.join(sorted(missing))}. "
                "Teach bench/bank_sql.py about them."
            )


def insert_staff(bank: Bank, agencies: list[AgencyPlan], staff: list[StaffPlan], now: datetime) -> None:
    from django.contrib.auth.hashers import make_password

    from conversations import demo

    db, t = bank.db, bank.t
    for agency in agencies:
        row = db.execute(f"SELECT id FROM {t['agency']} WHERE code = %s", [agency.code]).fetchone()
        if row:
            agency.id = row[0]
            continue
        agency.id = db.execute(
            f"INSERT INTO {t['agency']} (name, code, kind, timezone, pool_name) VALUES (%s, %s, %s, %s, %s) "
            "RETURNING id",
            [agency.name, agency.code, agency.kind, "Europe/Paris", agency.pool_name],
        ).fetchone()[0]
        hours = demo.OPENING_HOURS[demo.BRANCH if agency.kind == "branch" else demo.ONLINE]
        with db.cursor().copy(f"COPY {t['openinghours']} (agency_id, weekday, opens_at, closes_at) FROM STDIN") as copy:
            for weekday, opens, (close_hour, close_minute) in hours:
                copy.write_row([agency.id, weekday, f"{opens:02d}:00", f"{close_hour:02d}:{close_minute:02d}"])
        with db.cursor().copy(f"COPY {t['closedday']} (agency_id, date, label) FROM STDIN") as copy:
            for day, label in demo.CLOSED_DAYS:
                copy.write_row([agency.id, day, label])
    by_code = {agency.code: agency for agency in agencies}

    existing = dict(db.execute(f"SELECT username, id FROM {t['user']}").fetchall())
    password = make_password(demo.DEFAULT_PASSWORD)  # one salted hash, shared: the demo's password
    columns = "password, is_superuser, username, first_name, last_name, email, is_staff, is_active, date_joined"
    with db.cursor().copy(f"COPY {t['user']} ({columns}) FROM STDIN") as copy:
        for member in staff:
            if member.username not in existing:
                copy.write_row(
                    [
                        password,
                        False,
                        member.username,
                        member.first_name,
                        member.last_name,
                        f"{member.username}@banque.example",
                        member.role == "supervisor",
                        member.is_active,
                        now - timedelta(days=400),
                    ]  # fmt: skip
                )
    users = dict(db.execute(f"SELECT username, id FROM {t['user']}").fetchall())
    existing_advisors = dict(db.execute(f"SELECT user_id, id FROM {t['advisor']}").fetchall())
    columns = "role, is_active, availability, out_of_office_from, out_of_office_until, out_of_office_message, "
    with db.cursor().copy(f"COPY {t['advisor']} ({columns}user_id, agency_id) FROM STDIN") as copy:
        for member in staff:
            member.user_id = users[member.username]
            if member.user_id in existing_advisors:
                continue
            away_from, away_until = member.out_of_office or (None, None)
            copy.write_row(
                [
                    member.role,
                    member.is_active,
                    member.availability,
                    away_from,
                    away_until,
                    member.out_of_office_message,
                    member.user_id,
                    by_code[member.agency].id,
                ]  # fmt: skip
            )
    advisors = dict(db.execute(f"SELECT user_id, id FROM {t['advisor']}").fetchall())
    for member in staff:
        member.id = advisors[member.user_id]
    by_name = {member.username: member for member in staff}
    with db.cursor().copy(f"COPY {t['deputyship']} (advisor_id, deputy_id, position) FROM STDIN") as copy:
        for member in staff:
            for position, deputy in enumerate(member.deputies):
                copy.write_row([member.id, by_name[deputy].id, position])
    supervisors = [member.user_id for member in staff if member.role == "supervisor" and not member.demo]
    db.execute(
        f"""INSERT INTO {t["user_permissions"]} (user_id, permission_id)
            SELECT u.id, p.permission_id FROM {t["user_permissions"]} p JOIN {t["user"]} s ON s.id = p.user_id
            CROSS JOIN unnest(%s::int[]) AS u(id) WHERE s.username = 'sam'""",
        [supervisors],
    )

    # What the SQL steps look advisors up in.
    db.execute(
        "CREATE TEMP TABLE bench_advisor (advisor_id bigint, agency_id bigint, username text, name text, "
        "present boolean, stand_in bigint, absence jsonb)"
    )
    with db.cursor().copy("COPY bench_advisor FROM STDIN") as copy:
        for member in staff:
            stand_in = next((by_name[name].id for name in member.deputies if by_name[name].present), None)
            copy.write_row(
                [
                    member.id,
                    by_code[member.agency].id,
                    member.username,
                    member.name,
                    member.present,
                    stand_in,
                    member.absence,
                ]  # fmt: skip
            )
    db.execute("CREATE TEMP TABLE bench_staff (agency_id bigint, idx int, advisor_id bigint, username text, name text)")
    db.execute(
        "CREATE TEMP TABLE bench_agency (agency_id bigint, staff_count int, name text, supervisor_user_id int, "
        "supervisor_advisor_id bigint, colleague_count int)"
    )
    # Everyone who has had a book there, those who left included: previous owners of a book.
    db.execute("CREATE TEMP TABLE bench_colleague (agency_id bigint, idx int, advisor_id bigint, name text)")
    with db.cursor().copy("COPY bench_colleague FROM STDIN") as copy:
        for agency in agencies:
            colleagues = [m for m in staff if m.agency == agency.code and m.role == "advisor"]
            for index, member in enumerate(colleagues, start=1):
                copy.write_row([agency.id, index, member.id, member.name])
    with db.cursor().copy("COPY bench_staff FROM STDIN") as staff_copy:
        for agency in agencies:
            present = [m for m in staff if m.agency == agency.code and m.role == "advisor" and m.present]
            for index, member in enumerate(present, start=1):
                staff_copy.write_row([agency.id, index, member.id, member.username, member.name])
    with db.cursor().copy("COPY bench_agency FROM STDIN") as copy:
        for agency in agencies:
            present = [m for m in staff if m.agency == agency.code and m.role == "advisor" and m.present]
            supervisor = next(m for m in staff if m.agency == agency.code and m.role == "supervisor")
            colleagues = [m for m in staff if m.agency == agency.code and m.role == "advisor"]
            copy.write_row([agency.id, len(present), agency.name, supervisor.user_id, supervisor.id, len(colleagues)])
    db.execute("ANALYZE bench_advisor, bench_staff, bench_agency, bench_colleague")


def insert_books(bank: Bank, agencies: list[AgencyPlan], staff: list[StaffPlan], unassigned: int) -> int:
    """The books still to fill (a demo advisor's demo customers count towards it); returns N."""
    by_code = {agency.code: agency for agency in agencies}
    held = dict(
        bank.db.execute(
            f"SELECT dedicated_advisor_id, count(*) FROM {bank.t['customer']} GROUP BY dedicated_advisor_id"
        ).fetchall()
    )
    bank.db.execute("CREATE TEMP TABLE bench_book (k int, advisor_id bigint, agency_id bigint, size int, online bool)")
    total = 0
    with bank.db.cursor().copy("COPY bench_book FROM STDIN") as copy:
        rows = [(m.id, by_code[m.agency], max(0, m.book - held.get(m.id, 0))) for m in staff if m.book]
        rows.append((None, by_code["en-ligne"], unassigned))
        for k, (advisor_id, agency, size) in enumerate(rows, start=1):
            copy.write_row([k, advisor_id, agency.id, size, agency.kind == "online"])
            total += size
    bank.db.execute("ANALYZE bench_book")
    return total


def deferred_schema(bank: Bank) -> tuple[list[tuple[str, str, str]], list[tuple[str, str]]]:
    tables = [bank.t[name.lower()] for name in BULK_MODELS]
    constraints = bank.db.execute(q.DEFERRED_CONSTRAINTS, {"tables": tables}).fetchall()
    indexes = bank.db.execute(q.DEFERRED_INDEXES, {"tables": tables}).fetchall()
    return constraints, indexes


def build(bank: Bank, *, customers: int, messages: int, events: int) -> dict:
    db, timings = bank.db, bank.timings
    for setting in (
        "SET temp_buffers = '2GB'",
        "SET work_mem = '512MB'",
        "SET maintenance_work_mem = '1GB'",
        "SET synchronous_commit = off",
        "SET jit = off",
        "SET max_parallel_workers_per_gather = 0",
        "SET synchronize_seqscans = off",
    ):
        db.execute(setting)
    now = db.execute("SELECT date_trunc('second', now())").fetchone()[0]
    rng = random.Random(SEED)
    check_columns(bank)

    templates = db.execute(f"SELECT id, body FROM {bank.t['messagetemplate']} WHERE is_active ORDER BY id").fetchall()
    for statement in q.functions_sql(seed=SEED, templates=[body for _id, body in templates]):
        db.execute(statement)

    with timings.step("agencies, advisors, deputies"):
        agencies, staff, unassigned = plan_staff(customers, rng, now)
        insert_staff(bank, agencies, staff, now)
        new_customers = insert_books(bank, agencies, staff, unassigned)
    by_name = {member.username: member for member in staff}
    branch_ids = [agency.id for agency in agencies if agency.kind == "branch"]
    bank.p = {
        "now": now,
        "n": new_customers,
        "prospects": max(1, customers // 100),
        "online_id": next(agency.id for agency in agencies if agency.code == "en-ligne"),
        "branch_ids": branch_ids,
        "branch_count": len(branch_ids),
        "showcase_ids": [by_name["alice"].id, by_name["chloe"].id],
        "heavy_share": HEAVY_SHARE,
        "fn_cum": _thresholds(text.FIRST_NAME_WEIGHTS),
        "ln_cum": _thresholds(text.LAST_NAME_WEIGHTS),
        "first_names": text.FIRST_NAMES,
        "last_names": text.LAST_NAMES,
        "first_ascii": [ascii_slug(name) for name in text.FIRST_NAMES],
        "last_ascii": [ascii_slug(name) for name in text.LAST_NAMES],
        "domains": q.EMAIL_DOMAINS,
        "statuses": q.STATUSES,
        "templates": len(templates),
        "template_ids": [template_id for template_id, _body in templates],
        **{
            f"{key}base": bank.max_id(table)
            for key, table in [
                ("c", "customer"),
                ("cp", "contactpoint"),
                ("t", "thread"),
                ("m", "message"),
                ("e", "event"),
                ("a", "attachment"),
                ("n", "note"),
            ]
        },  # fmt: skip
    }

    with timings.step("drop secondary indexes and constraints for the load"):
        constraints, indexes = deferred_schema(bank)
        db.execute("SET CONSTRAINTS ALL IMMEDIATE")  # check the staff rows now: no pending checks block ALTER
        for table, name, _definition in constraints:
            db.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(sql.Identifier(table), sql.Identifier(name)))
        for name, _definition in indexes:
            db.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(name)))

    with timings.step(f"plan {new_customers:,} customers and {bank.p['prospects']:,} unknown numbers"):
        bank.run(q.SLOTS)
        bank.run(q.PARTY0)
        bank.run(q.PARTY1)
        heavy, heavy_messages, light = db.execute(
            "SELECT count(*) FILTER (WHERE heavy), coalesce(sum(500 + floor(pg_temp.u(i, 32) * 2500)) FILTER "
            "(WHERE heavy), 0), count(*) FILTER (WHERE NOT heavy) FROM bench_party1 WHERE has_thread"
        ).fetchone()
        bank.p["scaled_messages"] = float(max(light, messages - heavy_messages))
        bank.run(q.PARTY2)
        bank.run(q.PARTY)
        bank.run(q.PREVIOUS_ADVISORS)
        bank.run(q.FIX_NUMBERS)
        bank.run(q.FIX_PHONES)
        collisions = bank.one(q.COLLISIONS)
        if collisions:
            raise SystemExit(f"{collisions} generated customer numbers or phone numbers collide; change SEED.")
    with timings.step("customers"):
        bank.run(q.CUSTOMERS)
    with timings.step("contact points"):
        bank.run(q.CONTACT_POINTS)
    with timings.step("assignment history"):
        bank.run(q.ASSIGNMENTS)
    with timings.step("plan threads"):
        bank.run(q.THREADS0)
        bank.run(q.THREADS)
    with timings.step("plan messages in time order"):
        bank.run(q.MESSAGE_PLAN)
    with timings.step("messages"):
        bank.run(q.MESSAGES)
    with timings.step("attachments, threads, notes"):
        bank.run(q.ATTACHMENTS)
        bank.run(q.ATTACHMENTS_INSERT)
        bank.run(q.THREAD_AGGREGATES)
        bank.run(q.THREADS_INSERT)
        bank.run(q.NOTES_PLAN)
        bank.run(q.NOTES_INSERT)

    with timings.step("plan the event log"):
        cutoff, cutoff_at = event_window(bank, messages=messages, events=events)
        bank.run(q.EVENT_PLAN, {"cutoff": cutoff, "cutoff_at": cutoff_at})
    with timings.step("events"):
        bank.run(q.EVENTS)

    with timings.step("recreate indexes"):
        for _name, definition in indexes:
            db.execute(definition)
    with timings.step("recreate and check unique and foreign-key constraints"):
        for table, name, definition in reversed(constraints):
            db.execute(
                sql.SQL("ALTER TABLE {} ADD CONSTRAINT {} " + definition.replace("{", "{{").replace("}", "}}")).format(
                    sql.Identifier(table), sql.Identifier(name)
                )
            )
    with timings.step("sequences"):
        for table in bank.t.values():
            db.execute(
                sql.SQL(
                    "SELECT setval(pg_get_serial_sequence({table}, 'id'), (SELECT max(id) FROM {ident})) "
                    "WHERE EXISTS (SELECT 1 FROM {ident})"
                ).format(table=sql.Literal(table), ident=sql.Identifier(table))
            )
    counts = {
        name: bank.one(f"SELECT count(*) FROM {{{name}}}")
        for name in [
            "agency",
            "advisor",
            "customer",
            "contactpoint",
            "advisorassignment",
            "thread",
            "message",
            "attachment",
            "note",
            "event",
        ]  # fmt: skip
    }
    counts["pool_threads_online"] = bank.one(
        "SELECT count(*) FROM {thread} WHERE handler_id IS NULL AND agency_id = %(online_id)s"
    )
    books = dict(
        db.execute(
            f"SELECT a.username, count(*) FROM {bank.t['customer']} c JOIN bench_advisor a "
            "ON a.advisor_id = c.dedicated_advisor_id WHERE a.username IN ('alice', 'chloe') GROUP BY 1"
        ).fetchall()
    )
    return {"seed": SEED, "built_at": now.isoformat(), "counts": counts, "books": books, "heavy_threads": heavy}


def _thresholds(weights: list[float]) -> list[float]:
    """Cumulative weights from 0, for width_bucket: bucket i (1-based) has weight i."""
    total, running, edges = sum(weights), 0.0, []
    for weight in weights:
        edges.append(running / total)
        running += weight
    return edges


def event_window(bank: Bank, *, messages: int, events: int) -> tuple[int, datetime]:
    """The first message whose events the log keeps, so that it holds about `events`."""
    bucket = max(1, messages // 2000)
    kept = 0
    for index, since, count in bank.run(q.EVENT_HISTOGRAM, {"bucket": bucket}).fetchall():
        kept += count
        if kept >= events:
            return index * bucket - 1, since
    return 0, datetime(1970, 1, 1, tzinfo=bank.p["now"].tzinfo)


def report(bank_db_url: str, summary: dict, timings: Timings) -> None:
    with psycopg.connect(bank_db_url) as db:
        size = db.execute("SELECT pg_database_size(current_database())").fetchone()[0]
        tables = db.execute(
            "SELECT relname, pg_total_relation_size(oid) FROM pg_class WHERE relkind = 'r' "
            "AND relnamespace = 'public'::regnamespace ORDER BY 2 DESC LIMIT 8"
        ).fetchall()
    summary["database_bytes"] = size
    summary["tables_bytes"] = dict(tables)
    summary["steps_s"] = {name: round(elapsed, 1) for name, elapsed in timings.steps}
    summary["total_s"] = round(timings.total, 1)
    print(json.dumps(summary, indent=2, default=str))
    print(f"Built in {timings.total / 60:.1f} min; database size {size / 2**30:.2f} GiB.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, required=True)
    parser.add_argument("--messages", type=int, help="default: 10 per customer")
    parser.add_argument("--events", type=int, help="default: as many as messages")
    parser.add_argument("--database-url", default=os.environ.get("BANK_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--reset", action="store_true", help="drop and recreate the database first")
    args = parser.parse_args()
    if args.customers < 1000:
        parser.error("--customers must be at least 1,000 (alice's and chloe's books are shares of it).")
    messages = args.messages if args.messages is not None else args.customers * 10
    events = args.events if args.events is not None else messages

    print(f"Building a bank of {args.customers:,} customers, {messages:,} messages, {events:,} events "
          f"in {_database_name(args.database_url)}:")  # fmt: skip
    prepare_database(args.database_url, reset=args.reset)
    os.environ["DATABASE_URL"] = args.database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    timings = Timings()
    with timings.step("migrate"):
        manage("migrate", "--noinput", "-v0")
    with timings.step("demo"):
        manage("demo", "--allow-production")

    import django

    django.setup()
    with psycopg.connect(args.database_url) as db:
        bank = Bank(db, table_names(), timings)
        summary = build(bank, customers=args.customers, messages=messages, events=events)
        marker = MARKER + json.dumps(
            {"customers": args.customers, "messages": messages, "events": events, "built_at": summary["built_at"]}
        )
        # As docs/scale.md advises for production: JIT compiling costs the catch-up query
        # 300 ms for nothing on a table this size (its estimate crosses jit_above_cost).
        db.execute(sql.SQL("ALTER DATABASE {} SET jit = off").format(sql.Identifier(_database_name(args.database_url))))
        db.execute(
            sql.SQL("COMMENT ON DATABASE {} IS {}").format(
                sql.Identifier(_database_name(args.database_url)), sql.Literal(marker)
            )
        )
        with timings.step("commit"):
            db.commit()
    with psycopg.connect(args.database_url, autocommit=True) as db, timings.step("vacuum and analyse"):
        db.execute("VACUUM (ANALYZE)")
    report(args.database_url, summary, timings)


if __name__ == "__main__":
    main()
