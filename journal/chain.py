"""The hash chain: appending entries (locked per agency), verifying and anchoring it.

An entry is canonical JSON: keys sorted, no spaces, UTF-8, Django's encoding of dates and
decimals. `hash = SHA-256(prev_hash ‖ entry)`, the previous hash's 64 hexadecimal characters
followed by the entry's UTF-8 bytes; an agency's first entry follows GENESIS (64 zeros)."""

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction

from core.compiled import CompiledInsert, CompiledUpdate, PreparedQuery
from journal.models import GENESIS, JournalEntry, JournalHead

# Compiled once: the journal runs in every transaction that appends an event, and the ORM's
# SQL building (bulk_update's CASE above all) cost more than the statements (bench/inbound_batches.py).
_heads_for_update = PreparedQuery(
    lambda ids: JournalHead.objects.select_for_update().filter(agency_id__in=ids).order_by("agency_id"),
    sentinels=([-7_346_183_031],),
)
_insert_entries = CompiledInsert(JournalEntry)
_move_head = CompiledUpdate(JournalHead, ["seq", "hash"])


@dataclass
class Fact:
    """Something to journal, not yet chained."""

    agency_id: int
    type: str
    at: datetime
    actor: str
    data: dict
    thread_id: int | None = None
    event_id: int | None = None
    message_id: int | None = None
    extra: dict = field(default_factory=dict)


def canonical(value) -> str:
    return json.dumps(value, cls=DjangoJSONEncoder, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def sha256_hex(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def chain_hash(prev_hash: str, entry: str) -> str:
    return sha256_hex(prev_hash.encode("ascii") + entry.encode())


def _entry_text(fact: Fact, seq: int) -> str:
    return canonical(
        {
            "agency": fact.agency_id,
            "seq": seq,
            "type": fact.type,
            "at": fact.at,
            "actor": fact.actor,
            "thread": fact.thread_id,
            "event": fact.event_id,
            "message": fact.message_id,
            "data": fact.data,
        }
    )


def _locked_heads(agency_ids: list[int]) -> dict[int, JournalHead]:
    # In agency order (the query's), so that two transactions writing for the same agencies
    # cannot deadlock.
    heads = {h.agency_id: h for h in _heads_for_update.all(agency_ids)}
    missing = [pk for pk in agency_ids if pk not in heads]
    if missing:
        JournalHead.objects.bulk_create([JournalHead(agency_id=pk) for pk in missing], ignore_conflicts=True)
        heads.update({h.agency_id: h for h in _heads_for_update.all(missing)})
    return heads


def _write(entries: list[JournalEntry], heads: list[JournalHead]) -> None:
    """Insert the entries and move the heads. On PostgreSQL in one statement (the heads'
    UPDATE as a data-modifying CTE of the INSERT): a round trip fewer while the heads are
    locked, which is what every other transaction of the agency waits for."""
    if connection.vendor != "postgresql":
        _insert_entries.many(entries)
        _move_head.many([(h.agency_id, {"seq": h.seq, "hash": h.hash}) for h in heads])
        return
    values = ", ".join(["(%s::bigint, %s::bigint, %s::varchar)"] * len(heads))
    # Only placeholders are formatted in; every value is a parameter.
    update = "WITH moved AS (UPDATE journal_journalhead AS head SET seq = v.seq, hash = v.hash FROM (VALUES "
    moved = update + values + ") AS v(agency_id, seq, hash) WHERE head.agency_id = v.agency_id) "  # noqa: S608
    head_params = [value for h in heads for value in (h.agency_id, h.seq, h.hash)]
    fields = _insert_entries.fields
    params = [f.get_db_prep_save(f.pre_save(e, True), connection) for e in entries for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(moved + _insert_entries._compile(connection.alias, len(entries)), head_params + params)
        for entry, (pk,) in zip(entries, cursor.fetchall(), strict=True):
            entry.pk = pk
            entry._state.adding = False


def journal_append(*, facts: list[Fact]) -> list[JournalEntry]:
    """Chain `facts` onto their agencies' journals in the caller's transaction (one is opened
    if there is none): the head of each agency is locked until it commits."""
    if not facts:
        return []
    by_agency: dict[int, list[Fact]] = defaultdict(list)
    for fact in facts:
        by_agency[fact.agency_id].append(fact)
    # No savepoint of its own: it fails with its caller's transaction, and saves two round trips.
    with transaction.atomic(savepoint=False):
        heads = _locked_heads(sorted(by_agency))
        entries = []
        for agency_id in sorted(by_agency):
            head = heads[agency_id]
            for fact in by_agency[agency_id]:
                head.seq += 1
                text = _entry_text(fact, head.seq)
                digest = chain_hash(head.hash, text)
                entries.append(
                    JournalEntry(
                        agency_id=agency_id,
                        seq=head.seq,
                        type=fact.type,
                        at=fact.at,
                        actor=fact.actor,
                        thread_id=fact.thread_id,
                        event_id=fact.event_id,
                        message_id=fact.message_id,
                        entry=text,
                        prev_hash=head.hash,
                        hash=digest,
                    )
                )
                head.hash = digest
        _write(entries, [heads[pk] for pk in sorted(by_agency)])
    return entries


@dataclass
class Break:
    agency_id: int
    seq: int
    entry_id: int | None
    problem: str


@dataclass
class Verification:
    agency_id: int
    checked: int
    first_seq: int | None
    head_hash: str
    broken: Break | None


def journal_verify_agency(*, agency_id: int, since: datetime | None = None, chunk: int = 2000) -> Verification:
    """Recompute an agency's chain and say where it first breaks. From `since`, the chain is
    taken up at the first entry at or after it, trusting the previous entry's hash."""
    entries = JournalEntry.objects.filter(agency_id=agency_id).order_by("seq")
    expected_prev, expected_seq = GENESIS, 1
    if since is not None:
        start = entries.filter(at__gte=since).values_list("seq", flat=True).first()
        if start is None:
            return Verification(agency_id, 0, None, "", None)
        if start > 1:
            previous = entries.filter(seq=start - 1).only("entry", "prev_hash", "hash").first()
            if previous is None:
                return Verification(agency_id, 0, start, "", Break(agency_id, start - 1, None, "missing"))
            if chain_hash(previous.prev_hash, previous.entry) != previous.hash:
                return Verification(agency_id, 0, start, "", Break(agency_id, previous.seq, previous.pk, "hash"))
            expected_prev = previous.hash
        expected_seq = start
        entries = entries.filter(seq__gte=start)
    checked, first_seq = 0, None
    for entry in entries.iterator(chunk_size=chunk):
        first_seq = first_seq or entry.seq
        problem = _problem(entry, expected_seq, expected_prev)
        if problem:
            return Verification(
                agency_id, checked, first_seq, expected_prev, Break(agency_id, entry.seq, entry.pk, problem)
            )
        checked += 1
        expected_prev, expected_seq = entry.hash, entry.seq + 1
    head = JournalHead.objects.filter(agency_id=agency_id).first()
    if head is not None and (head.seq, head.hash) != (expected_seq - 1, expected_prev) and checked:
        return Verification(agency_id, checked, first_seq, expected_prev, Break(agency_id, head.seq, None, "head"))
    return Verification(agency_id, checked, first_seq, expected_prev, None)


def _problem(entry: JournalEntry, expected_seq: int, expected_prev: str) -> str:
    if entry.seq != expected_seq:
        return "missing"
    if entry.prev_hash != expected_prev:
        return "link"
    if chain_hash(entry.prev_hash, entry.entry) != entry.hash:
        return "hash"
    try:
        parsed = json.loads(entry.entry)
    except ValueError:
        return "entry"
    columns = {"agency": entry.agency_id, "seq": entry.seq, "type": entry.type, "actor": entry.actor}
    columns |= {"thread": entry.thread_id, "event": entry.event_id, "message": entry.message_id}
    if any(parsed.get(key) != value for key, value in columns.items()):
        return "columns"
    return ""
