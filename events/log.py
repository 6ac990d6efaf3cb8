"""Reading the event log in commit order, so that no reader skips an event.

Ids are drawn at insert and transactions commit in any order: an event with a smaller id
can become visible after a larger one was handed out, so "every id above the last one seen"
is not complete, and no time window behind a cursor is long enough to be sure.

On PostgreSQL each event stores the transaction that wrote it (`Event.txid`, filled by the
INSERT with `pg_current_xact_id()`), and a reader looks at the *horizon*: the oldest
transaction still running, `pg_snapshot_xmin(pg_current_snapshot())`. Every transaction
below it has ended and every new one gets a larger id, so the events below the horizon are
final: nothing will ever be added there. A reader that hands out only events below the
horizon, in (txid, id) order, and resumes after the last one it handed out, skips none.
The horizon never moves back.

Transaction ids are shared by every database of the PostgreSQL cluster, and so is that
xmin: a transaction left open in another database (a bank's batch, a stuck session) would
hold every reader of ours back for as long as it lasts. Only this database's transactions
can write events, so the horizon is the oldest of *them* (`pg_stat_activity.backend_xid`),
bounded by the snapshot's next transaction id. The reader's own transaction does not count:
what it wrote itself it sees (a test's single transaction). Long writing transactions of this
database still hold readers back; `idle_in_transaction_session_timeout` bounds forgotten ones.

On SQLite writes are serialised: a transaction takes the database's one write lock at its
first write and keeps it until it commits, and ids are never reused, so ids are drawn in
commit order. There `txid` is NULL, an event's position is its id, and the horizon is one
past the largest id committed.

The log is pruned past ATTITRE_EVENT_RETENTION_DAYS (`events_prune`, run daily by the
`events-prune` schedule), longer than any reader replays.
"""

from collections.abc import Iterable
from datetime import datetime

from django.db import connections, transaction
from django.db.models import F, Q

from events.models import Event

_table = Event._meta.db_table


def _ordered(using: str) -> bool:
    """Whether events carry their transaction (PostgreSQL), else their id orders them (SQLite)."""
    return connections[using].vendor == "postgresql"


def _position(using: str) -> str:
    return "txid" if _ordered(using) else "id"


# The horizon on PostgreSQL, and the txid of event %s. The bound: the snapshot's xmax (every
# transaction at or past it counts as running), or past the reader's own transaction, which
# may be above it and sees what it wrote. backend_xid is a 32-bit xid: it is widened to 64
# bits (as txid) by its distance to that bound, modulo 2**32.
# pg_stat_activity is read after the statement's snapshot is taken (a transaction that began
# in between is at or past its next xid), and afresh: inside a transaction PostgreSQL would
# otherwise serve the copy it read first (hence the lateral join on the cleared copy).
_HORIZON_SQL = f"""
SELECT
    LEAST(
        next_xid,
        MIN(next_xid + ((backend_xid::text::bigint - next_xid) %% 4294967296 + 6442450944) %% 4294967296 - 2147483648)
    ),
    (SELECT txid FROM {_table} WHERE id = %s)
FROM (
    SELECT
        GREATEST(
            pg_snapshot_xmax(pg_current_snapshot())::text::bigint,
            pg_current_xact_id_if_assigned()::text::bigint + 1
        ) AS next_xid,
        pg_stat_clear_snapshot()::text AS cleared
) AS snapshot LEFT JOIN LATERAL (
    SELECT backend_xid FROM pg_stat_activity
    WHERE cleared IS NOT NULL AND datname = current_database() AND backend_xid IS NOT NULL AND pid <> pg_backend_pid()
) AS running ON true
GROUP BY next_xid
"""  # noqa: S608


def _pg_horizon(connection, since: int = 0) -> tuple[int, int | None]:
    with connection.cursor() as cursor:
        cursor.execute(_HORIZON_SQL, [since])
        return cursor.fetchone()


def horizon(*, using: str = "default") -> int:
    """Every event of a transaction below this position is committed (or never will be):
    on PostgreSQL the oldest transaction of this database still running, on SQLite the next
    id. Read it *before* what it vouches for (a page, a replay): everything below it is
    visible to the later reads."""
    connection = connections[using]
    if _ordered(using):
        return _pg_horizon(connection)[0]
    with connection.cursor() as cursor:
        quote = connection.ops.quote_name
        cursor.execute(f"SELECT COALESCE(MAX({quote('id')}), 0) + 1 FROM {quote(_table)}")  # noqa: S608
        return cursor.fetchone()[0]


def tail_start(*, using: str = "default") -> int:
    """Where a reader that wants only what commits from now on starts `events_after`: the
    last event below the horizon in commit order (0 when there is none). Every event it will
    hand out from there belongs to a transaction that had not committed yet, or that committed
    after this read."""
    if not _ordered(using):
        return horizon(using=using) - 1
    below = _pg_horizon(connections[using])[0]
    final = Event.objects.using(using).filter(txid__lt=below).order_by("-txid", "-pk")
    return final.values_list("pk", flat=True).first() or 0


def events_after(*, since: int, visible: Q, limit: int, using: str = "default") -> list[Event]:
    """The visible events that follow event `since` in commit order, at most `limit`, all
    below the horizon: a reader that passes back the last one's id (0 at first) gets every
    event once, however late its transaction committed.

    A `since` that names no event (pruned past the retention, or made up) resumes after the
    events whose ids are not above it."""
    if not _ordered(using):
        return list(Event.objects.using(using).filter(visible, pk__gt=since).order_by("pk")[:limit])
    below, since_txid = _pg_horizon(connections[using], since)
    events = Event.objects.using(using).filter(visible, txid__lt=below)
    if since_txid is not None:
        events = events.filter(Q(txid__gt=since_txid) | Q(txid=since_txid, pk__gt=since))
    elif since:
        events = events.filter(pk__gt=since)
    return list(events.order_by("txid", "pk")[:limit])


def events_from(*, position: int, visible: Q, limit: int, using: str = "default") -> list[Event]:
    """The visible events of transactions at or past `position` (a horizon read earlier), at
    most `limit`, in (txid, id) order: committed, whether or not below the current horizon.
    For a reader that also receives events live and drops those it already has (the inbox
    socket): it resumes from the horizon it read before this, so it may get some twice."""
    field = _position(using)
    events = Event.objects.using(using).filter(visible, **{f"{field}__gte": position})
    return list(events.order_by(F(field).asc(), "pk")[:limit])


PRUNE_BATCH = 5000


def events_prune(*, before: datetime, keep_types: Iterable[str] = ()) -> int:
    """Delete the events created before `before`, but those of `keep_types`, in batches (each
    its own transaction, so that a large backlog holds no long lock); returns how many. Their
    webhook deliveries go with them."""
    old = Event.objects.filter(created_at__lt=before).exclude(type__in=list(keep_types))
    deleted = 0
    while ids := list(old.order_by("pk").values_list("pk", flat=True)[:PRUNE_BATCH]):
        with transaction.atomic():
            Event.objects.filter(pk__in=ids).delete()
        deleted += len(ids)
    return deleted
