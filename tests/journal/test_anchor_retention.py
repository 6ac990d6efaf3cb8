"""The daily anchor, retention purges and legal holds."""

import json
import logging
import os
import queue
import threading
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.utils import timezone
from django_q.models import Schedule

from conversations.models import Attachment, Message
from conversations.services.threads import note_add
from journal import tasks
from journal.chain import journal_verify_agency
from journal.facts import file_sha256
from journal.models import JournalEntry, JournalHead, LegalHold, RetentionPolicy
from journal.retention import legal_hold_place, legal_hold_release, retention_policy_set, retention_purge
from journal.services import journal_anchor, journal_anchor_verify
from tests.factories import AgencyFactory, CustomerFactory

pytestmark = pytest.mark.django_db


class AnchorReceiver(BaseHTTPRequestHandler):
    received: queue.Queue

    def do_POST(self):
        self.received.put(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def anchor_endpoint(settings):
    AnchorReceiver.received = queue.Queue()
    server = ThreadingHTTPServer(("127.0.0.1", 0), AnchorReceiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.ATTITRE_JOURNAL_ANCHOR_URL = f"http://127.0.0.1:{server.server_port}/anchors"
    yield AnchorReceiver.received
    server.shutdown()


def test_the_anchor_logs_and_posts_every_agencys_head(camille_thread, agency, anchor_endpoint, caplog):
    """The head hash of each agency goes to the log and to ATTITRE_JOURNAL_ANCHOR_URL."""
    head = JournalHead.objects.get(agency=agency)
    with caplog.at_level(logging.INFO, logger="journal.services"):
        assert tasks.journal_anchor() == 1
    assert head.hash in caplog.text
    posted = json.loads(anchor_endpoint.get(timeout=10))
    assert posted["anchors"][0] | {"at": None} == {
        "agency": "lyon-bellecour",
        "seq": head.seq,
        "hash": head.hash,
        "at": None,
    }


def test_an_unreachable_anchor_endpoint_fails_the_task_loudly(camille_thread, settings, caplog):
    """The task fails (django-q2 records it) and the log says so; the head is still logged."""
    settings.ATTITRE_JOURNAL_ANCHOR_URL = "http://127.0.0.1:9/anchors"
    with pytest.raises(Exception, match="Connection"):
        journal_anchor()
    assert "not delivered" in caplog.text


def test_ensure_schedules_adds_the_anchor_and_the_purge_daily():
    for _ in range(2):
        call_command("ensure_schedules", stdout=StringIO())
    for name, func in (
        ("journal-anchor", "journal.tasks.journal_anchor"),
        ("retention-purge", "journal.tasks.retention_purge"),
    ):
        schedule = Schedule.objects.get(name=name)
        assert (schedule.func, schedule.schedule_type) == (func, Schedule.DAILY)


def _age(thread, years: float):
    """Move the thread's messages back in time."""
    Message.objects.filter(thread=thread).update(created_at=timezone.now() - timedelta(days=365.25 * years))


@pytest.fixture
def old_thread(camille_thread, alice):
    message = camille_thread.messages.get()
    attachment = Attachment.objects.create(message=message, content_type="image/jpeg", state="stored")
    attachment.file.save("photo.jpg", ContentFile(b"\xff\xd8 carte"), save=True)
    note_add(thread=camille_thread, author=alice, body="Appelée, RAS")
    _age(camille_thread, 5.1)
    return camille_thread


def test_content_past_retention_is_purged_leaving_a_tombstone(old_thread, agency, django_capture_on_commit_callbacks):
    """Five years and more after the last message: bodies, raw payloads and files go (notes stay); the
    journal gains a tombstone and still verifies; a second run has nothing to do."""
    message = old_thread.messages.get()
    attachment = message.attachments.get()
    path = attachment.file.path
    with django_capture_on_commit_callbacks(execute=True):
        assert retention_purge() == 1
    message.refresh_from_db()
    attachment.refresh_from_db()
    assert (message.body, message.raw, attachment.file.name) == ("", {}, "")
    assert not os.path.exists(path)
    assert old_thread.notes.get().body == "Appelée, RAS"
    old_thread.refresh_from_db()
    assert old_thread.last_message_preview == ""
    tombstone = JournalEntry.objects.get(type="retention.purged")
    data = json.loads(tombstone.entry)["data"]
    assert data["messages"] == [message.pk] and data["attachments"] == [attachment.pk]
    assert data["retention_years"] == 5
    assert journal_verify_agency(agency_id=agency.pk).broken is None
    assert retention_purge() == 0


def test_content_within_retention_is_kept(old_thread, agency):
    """An agency keeping ten years keeps a five-year-old thread whole."""
    retention_policy_set(agency=agency, years=10, by=None)
    assert retention_purge() == 0
    assert old_thread.messages.get().body == "Bonjour, mon virement ?"
    assert JournalEntry.objects.filter(type="retention.policy_changed").exists()


@pytest.mark.parametrize("years", [4, 11])
def test_a_policy_outside_five_to_ten_years_is_refused(agency, years):
    with pytest.raises(ValidationError, match="between 5 and 10"):
        retention_policy_set(agency=agency, years=years, by=None)
    with pytest.raises(IntegrityError), transaction.atomic():
        RetentionPolicy.objects.create(agency=agency, years=years)


@pytest.mark.parametrize("target", ["customer", "thread", "advisor"])
def test_a_legal_hold_suspends_the_purge_until_released(old_thread, agency, camille, alice, sam, target):
    """A hold on the customer, the thread or the advisor keeps everything; once released, the purge runs."""
    covered = {"customer": camille, "thread": old_thread, "advisor": alice}[target]
    hold = legal_hold_place(agency=agency, reason="Enquête AMF 2031-17", by=sam.user, **{target: covered})
    assert retention_purge() == 0
    assert old_thread.messages.get().body == "Bonjour, mon virement ?"
    placed = JournalEntry.objects.get(type="legal_hold.placed")
    assert placed.actor == f"user:{sam.user.pk}" and json.loads(placed.entry)["data"]["reason"] == "Enquête AMF 2031-17"

    legal_hold_release(hold=hold, by=sam.user)
    assert JournalEntry.objects.filter(type="legal_hold.released").count() == 1
    assert retention_purge() == 1


def test_an_expired_hold_no_longer_holds(old_thread, agency, camille, sam):
    hold = legal_hold_place(agency=agency, reason="Litige", by=sam.user, customer=camille, until=date.today())
    LegalHold.objects.filter(pk=hold.pk).update(until=date.today() - timedelta(days=1))
    assert retention_purge() == 1


def test_a_hold_must_cover_one_thing_of_its_own_agency(agency, camille, alice, sam):
    """Nothing, two things, another agency's customer or a past end date: a clear refusal, no hold."""
    other = CustomerFactory(agency=AgencyFactory(code="en-ligne"), dedicated_advisor=None)
    cases = [
        ({}, "exactly one"),
        ({"customer": camille, "advisor": alice}, "exactly one"),
        ({"customer": other}, "its agency"),
        ({"customer": camille, "until": date.today() - timedelta(days=1)}, "past"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValidationError, match=message):
            legal_hold_place(agency=agency, reason="Litige", by=sam.user, **kwargs)
    with pytest.raises(ValidationError, match="why"):
        legal_hold_place(agency=agency, reason="  ", by=sam.user, customer=camille)
    assert not LegalHold.objects.exists()


def test_a_stored_attachment_is_journalled_with_its_files_hash(camille_thread):
    """The attachment's journal entry holds the SHA-256 of the stored file."""
    from conversations.media import _finish

    message = camille_thread.messages.get()
    attachment = Attachment.objects.create(message=message, content_type="image/jpeg")
    attachment.file.save("scan.jpg", ContentFile(b"scan"), save=False)
    _finish(attachment, state=Attachment.State.STORED, error="")
    entry = JournalEntry.objects.get(type="attachment.updated")
    assert json.loads(entry.entry)["data"]["attachment"]["sha256"] == file_sha256(attachment.file)
    assert entry.message_id == message.pk


def test_an_emails_raw_mime_text_and_html_are_purged(camille_thread, agency, django_capture_on_commit_callbacks):
    """An email past retention keeps its addresses and Message-ID, loses its source, text, HTML and subject."""
    from conversations.models import EmailHeaders

    message = camille_thread.messages.get()
    headers = EmailHeaders.objects.create(
        message=message,
        header_message_id="abc@example.com",
        subject="Mon virement",
        from_header="camille@example.com",
        full_text="Bonjour\n> cité",
        html="<p>Bonjour</p>",
    )
    headers.raw.save("raw.eml", ContentFile(b"From: camille@example.com\r\n\r\nBonjour"), save=True)
    path = headers.raw.path
    _age(camille_thread, 6)
    with django_capture_on_commit_callbacks(execute=True):
        assert retention_purge() == 1
    headers.refresh_from_db()
    assert (headers.raw.name, headers.full_text, headers.html, headers.subject) == ("", "", "", "")
    assert (headers.from_header, headers.header_message_id) == ("camille@example.com", "abc@example.com")
    assert not os.path.exists(path)
    assert journal_verify_agency(agency_id=agency.pk).broken is None


def test_an_anchor_still_matches_its_chain_and_a_rewritten_chain_does_not(camille_thread, agency, settings):
    """The anchored head is found at its seq; a chain rewritten after it (same seq, other hash) is not."""
    settings.ATTITRE_JOURNAL_ANCHOR_URL = ""
    (anchor,) = journal_anchor()
    assert journal_anchor_verify(agency_id=agency.pk, seq=anchor["seq"], hash=anchor["hash"])
    assert not journal_anchor_verify(agency_id=agency.pk, seq=anchor["seq"], hash="0" * 64)
