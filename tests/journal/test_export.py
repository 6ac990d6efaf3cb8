"""Regulator exports: RFC 5322 messages, a signed manifest of journal hashes, journalled."""

import base64
import email
import email.policy
import io
import json
import zipfile
from datetime import date, timedelta
from io import StringIO

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from conversations.services.outbound import message_send
from journal.chain import sha256_hex
from journal.export import journal_export
from journal.models import JournalEntry
from tests.factories import ContactPointFactory, CustomerFactory
from tests.journal.conftest import receive

pytestmark = pytest.mark.django_db

TODAY = date.today()


def _open(archive: bytes):
    zf = zipfile.ZipFile(io.BytesIO(archive))
    manifest_bytes = zf.read("manifest.json")
    return zf, manifest_bytes, json.loads(manifest_bytes)


def test_a_customers_export_holds_each_message_as_eml_with_its_journal_hash(camille_thread, agency, alice, sam):
    """Camille's two messages: two .eml files with our headers, listed in a manifest whose
    Ed25519 signature verifies and whose hashes are the journal's; the export is journalled."""
    message_send(thread=camille_thread, author=alice, body="Votre virement est parti.")
    export = journal_export(agency=agency, customer=camille_thread.customer, start=TODAY, end=TODAY, by=sam.user)
    zf, manifest_bytes, manifest = _open(export.archive)

    public = Ed25519PublicKey.from_public_bytes(base64.b64decode(manifest["signature"]["public_key"]))
    public.verify(base64.b64decode(zf.read("manifest.json.sig")), manifest_bytes)  # raises if forged

    assert len(manifest["messages"]) == 2
    inbound, outbound = manifest["messages"]
    for item in manifest["messages"]:
        assert sha256_hex(zf.read(item["file"])) == item["sha256"]
        entry = JournalEntry.objects.get(type="message.created", message_id=item["message"])
        assert item["journal"] == {"seq": entry.seq, "hash": entry.hash}
        assert json.loads(entry.entry)["data"]["message"]["body_sha256"] == item["body_sha256"]

    parsed = email.message_from_bytes(zf.read(inbound["file"]), policy=email.policy.default)
    assert parsed["X-Attitre-Channel"] == "whatsapp" and parsed["X-Attitre-Direction"] == "inbound"
    assert parsed["X-Attitre-Thread"] == str(camille_thread.pk) and parsed["X-Attitre-Author"] == "customer"
    assert "33612345678@whatsapp" in parsed["From"] and parsed["Date"] and parsed["Message-ID"]
    assert parsed.get_content().strip() == "Bonjour, mon virement ?"
    reply = email.message_from_bytes(zf.read(outbound["file"]), policy=email.policy.default)
    assert reply["X-Attitre-Author"] == "alice" and reply["X-Attitre-Direction"] == "outbound"

    audit = JournalEntry.objects.get(type="export.made")
    assert audit.actor == f"user:{sam.user.pk}" and audit.pk == export.entry.pk
    assert json.loads(audit.entry)["data"]["manifest_sha256"] == sha256_hex(manifest_bytes)


def test_an_export_reads_in_a_fixed_number_of_queries(camille_thread, agency, alice, sam):
    """However many messages, the same queries: no N+1."""

    def count():
        with CaptureQueriesContext(connection) as queries:
            journal_export(agency=agency, start=TODAY, end=TODAY, by=sam.user)
        return len(queries)

    first = count()
    for i in range(3):
        message_send(thread=camille_thread, author=alice, body=f"Réponse {i}")
    assert count() == first


def test_scopes_keep_to_their_customer_advisor_and_dates(camille_thread, agency, alice, bob, sam):
    """Another customer's message is not in Camille's export nor in Alice's; nothing outside the dates."""
    other = CustomerFactory(agency=agency, dedicated_advisor=bob)
    ContactPointFactory(customer=other, kind="whatsapp", address="+33699999999")
    receive("+33699999999", "Autre client", "SM" + "9" * 32)
    camille_only = journal_export(agency=agency, customer=camille_thread.customer, start=TODAY, end=TODAY, by=sam.user)
    alices = journal_export(agency=agency, advisor=alice, start=TODAY, end=TODAY, by=sam.user)
    whole = journal_export(agency=agency, start=TODAY, end=TODAY, by=sam.user)
    yesterday = journal_export(
        agency=agency, start=TODAY - timedelta(days=1), end=TODAY - timedelta(days=1), by=sam.user
    )
    assert len(camille_only.manifest["messages"]) == 1
    assert len(alices.manifest["messages"]) == 1
    assert len(whole.manifest["messages"]) == 2
    assert yesterday.manifest["messages"] == []
    with pytest.raises(ValidationError, match="before its start"):
        journal_export(agency=agency, start=TODAY, end=TODAY - timedelta(days=1), by=sam.user)


def test_the_command_writes_the_zip_and_refuses_bad_input(camille_thread, agency, sam, tmp_path):
    """It writes the archive; an unknown customer, a bad date or an existing file is a clear error."""
    output = tmp_path / "camille.zip"
    common = ["--agency", agency.code, "--from", TODAY.isoformat(), "--to", TODAY.isoformat(), "--by", "sam"]
    out = StringIO()
    call_command(
        "journal_export",
        *common,
        "--customer",
        camille_thread.customer.customer_number,
        "--output",
        str(output),
        stdout=out,
    )
    assert "1 messages" in out.getvalue()
    assert _open(output.read_bytes())[2]["scope"]["customer"] == camille_thread.customer.customer_number
    with pytest.raises(CommandError, match="exists already"):
        call_command("journal_export", *common, "--output", str(output), stdout=out)
    with pytest.raises(CommandError, match="FR000"):
        call_command("journal_export", *common, "--customer", "FR000", "--output", str(tmp_path / "x.zip"), stdout=out)
    bad = ["--agency", agency.code, "--from", "demain", "--to", TODAY.isoformat(), "--by", "sam"]
    with pytest.raises(CommandError, match="demain"):
        call_command("journal_export", *bad, "--output", str(tmp_path / "y.zip"), stdout=out)
    assert JournalEntry.objects.filter(type="export.made").count() == 1
