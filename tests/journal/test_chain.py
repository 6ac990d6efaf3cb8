"""The journal: every event chained per agency in its own transaction, refused changes,
verification that names the first broken entry."""

import json
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from conversations.services.outbound import message_send
from conversations.services.threads import note_add, thread_set_status, thread_transfer
from journal.chain import GENESIS, chain_hash, journal_verify_agency
from journal.models import JournalEntry, JournalHead
from tests.conftest import ON_POSTGRES
from tests.factories import AgencyFactory, ContactPointFactory, CustomerFactory
from tests.journal.conftest import receive

pytestmark = pytest.mark.django_db


def _entries(agency):
    return list(JournalEntry.objects.filter(agency=agency).order_by("seq"))


def test_inbound_message_is_journalled_with_the_hash_of_its_body(camille_thread, agency):
    """The inbound message's entry holds the SHA-256 of its body, not the body, chained on GENESIS."""
    entries = _entries(agency)
    created = [e for e in entries if e.type == "message.created"]
    assert len(created) == 1
    entry = json.loads(created[0].entry)
    message = camille_thread.messages.get()
    assert entry["data"]["message"]["body_sha256"] == __import__("hashlib").sha256(message.body.encode()).hexdigest()
    assert "Bonjour" not in created[0].entry
    assert entry["actor"] == f"contact:{message.contact_point_id}"
    assert entries[0].prev_hash == GENESIS and entries[0].seq == 1
    for previous, entry in zip(entries, entries[1:], strict=False):
        assert entry.prev_hash == previous.hash and entry.seq == previous.seq + 1
    for entry in entries:
        assert entry.hash == chain_hash(entry.prev_hash, entry.entry)


def test_every_advisor_action_is_journalled_with_its_actor(camille_thread, agency, alice, bob):
    """Transfer, note, reply and status change: one entry each, by Alice."""
    before = JournalEntry.objects.count()
    thread_transfer(thread=camille_thread, by=alice, to=bob, reason="Congés")
    note_add(thread=camille_thread, author=alice, body="Rappeler demain")
    message_send(thread=camille_thread, author=alice, body="Je regarde")
    thread_set_status(thread=camille_thread, by=alice, status="closed")
    new = list(JournalEntry.objects.order_by("seq")[before:])
    assert [e.type for e in new] == ["thread.assigned", "note.created", "message.created", "thread.updated"]
    assert {e.actor for e in new} == {f"advisor:{alice.pk}"}
    assert "Rappeler" not in new[1].entry and "regarde" not in new[2].entry
    assert json.loads(new[0].entry)["data"]["reason_params"]["reason"] == "Congés"
    assert journal_verify_agency(agency_id=agency.pk).broken is None


def test_routing_decisions_are_journalled_as_the_systems(camille_thread):
    """The inbound message routed to the dedicated advisor: an assignment by the system."""
    assigned = JournalEntry.objects.get(type="thread.assigned", thread_id=camille_thread.pk)
    assert assigned.actor == "system"
    assert json.loads(assigned.entry)["data"]["reason"] == camille_thread.routing_reason_code


def test_chains_are_per_agency(camille_thread, agency):
    """Another agency's entries start their own chain from GENESIS."""
    other = AgencyFactory(code="en-ligne")
    petit = CustomerFactory(agency=other, dedicated_advisor=None)
    ContactPointFactory(customer=petit, kind="whatsapp", address="+33687654321")
    receive("+33687654321", "Salut", "SM" + "2" * 32)
    first = _entries(other)[0]
    assert (first.seq, first.prev_hash) == (1, GENESIS)
    assert JournalHead.objects.get(agency=other).hash == _entries(other)[-1].hash


def test_a_rolled_back_change_leaves_no_entry(agency, camille):
    """The entry is in the change's transaction: no change, no entry."""
    with pytest.raises(RuntimeError), transaction.atomic():
        receive("+33612345678", "Bonjour", "SM" + "3" * 32)
        assert JournalEntry.objects.filter(agency=agency).exists()
        raise RuntimeError
    assert not JournalEntry.objects.exists()
    assert not JournalHead.objects.filter(agency=agency, seq__gt=0).exists()


def test_the_database_refuses_updates_and_deletes(camille_thread):
    """Through the ORM or raw SQL, an entry is neither changed nor deleted."""
    entry = JournalEntry.objects.first()
    for attempt in (
        lambda: JournalEntry.objects.filter(pk=entry.pk).update(actor="system"),
        lambda: JournalEntry.objects.filter(pk=entry.pk).delete(),
        lambda: connection.cursor().execute("UPDATE journal_journalentry SET entry = '{}'"),
        lambda: connection.cursor().execute("DELETE FROM journal_journalentry"),
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            attempt()
    entry.refresh_from_db()
    assert entry.hash == chain_hash(entry.prev_hash, entry.entry)
    assert JournalEntry.objects.count() >= 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_postgresql_refuses_truncate(camille_thread):
    """TRUNCATE too (a committed journal: the test's flush afterwards is the one that passes)."""
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        connection.cursor().execute("TRUNCATE journal_journalentry")


def _tamper(sql: str, params: list) -> None:
    """Edit the journal behind the application's back: the trigger disabled, as a superuser would."""
    with connection.cursor() as cursor:
        if ON_POSTGRES:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # the test's own inserts, checked now
            cursor.execute("ALTER TABLE journal_journalentry DISABLE TRIGGER journal_entry_append_only")
            cursor.execute(sql, params)
            cursor.execute("ALTER TABLE journal_journalentry ENABLE TRIGGER journal_entry_append_only")
        else:
            cursor.execute("DROP TRIGGER journal_entry_no_update")
            cursor.execute(sql, params)


def test_journal_verify_names_the_first_entry_edited_behind_our_back(camille_thread, agency, alice):
    """A body hash rewritten in raw SQL with the trigger disabled: journal_verify names that entry and fails."""
    note_add(thread=camille_thread, author=alice, body="Rappeler")
    target = JournalEntry.objects.get(agency=agency, type="message.created")
    forged = target.entry.replace('"body_sha256":"', '"body_sha256":"0')
    _tamper("UPDATE journal_journalentry SET entry = %s WHERE id = %s", [forged, target.pk])

    out = StringIO()
    with pytest.raises(CommandError) as failure:
        call_command("journal_verify", "--agency", agency.code, stdout=out)
    assert f"entry {target.seq}" in str(failure.value) and str(target.pk) in str(failure.value)
    verification = journal_verify_agency(agency_id=agency.pk)
    assert (verification.broken.seq, verification.broken.problem) == (target.seq, "hash")


def test_a_rewritten_hash_breaks_the_next_link(camille_thread, agency, alice):
    """Recomputing the edited entry's hash does not help: the next entry no longer follows it."""
    note_add(thread=camille_thread, author=alice, body="Rappeler")
    target = JournalEntry.objects.get(agency=agency, type="message.created")
    forged = target.entry.replace('"body_sha256":"', '"body_sha256":"0')
    _tamper(
        "UPDATE journal_journalentry SET entry = %s, hash = %s WHERE id = %s",
        [forged, chain_hash(target.prev_hash, forged), target.pk],
    )
    broken = journal_verify_agency(agency_id=agency.pk).broken
    assert (broken.seq, broken.problem) == (target.seq + 1, "link")


def test_journal_verify_passes_a_whole_chain_and_since_a_date(camille_thread, agency, alice):
    """An untouched chain verifies, whole or from a date; an unknown agency code is a clear error."""
    note_add(thread=camille_thread, author=alice, body="Rappeler")
    out = StringIO()
    call_command("journal_verify", stdout=out)
    assert "lyon-bellecour" in out.getvalue() and "intact" in out.getvalue()
    tomorrow = (timezone.now() + timedelta(days=1)).date().isoformat()
    call_command("journal_verify", "--agency", agency.code, "--since", tomorrow, stdout=out)
    today = timezone.now().date().isoformat()
    out = StringIO()
    call_command("journal_verify", "--since", today, stdout=out)
    assert "intact" in out.getvalue()
    with pytest.raises(CommandError, match="nope"):
        call_command("journal_verify", "--agency", "nope", stdout=out)
    with pytest.raises(CommandError, match="2026-13-01"):
        call_command("journal_verify", "--since", "2026-13-01", stdout=out)
