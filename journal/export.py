"""Exports for a regulator or e-discovery: one customer, one advisor or one agency over a date
range, as a ZIP of RFC 5322 messages (one `.eml` per message, our headers saying channel,
direction, thread and author) and a manifest holding each message's journal entry and hash,
signed with the agency's export key (Ed25519). Every export is itself journalled."""

import base64
import hashlib
import io
import zipfile
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, formataddr

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Prefetch, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from conversations.models import Attachment, Message
from crm.models import Advisor, Agency, Customer
from events.models import Event
from journal.chain import canonical, sha256_hex
from journal.models import JournalEntry, JournalHead
from journal.services import JournalType, actor_of_user, journal_record


def signing_key() -> Ed25519PrivateKey:
    """ATTITRE_JOURNAL_SIGNING_KEY (base64 of a 32-byte seed), else one derived from SECRET_KEY."""
    if settings.ATTITRE_JOURNAL_SIGNING_KEY:
        seed = base64.b64decode(settings.ATTITRE_JOURNAL_SIGNING_KEY)
    else:
        seed = hashlib.sha256(b"attitre-journal-export\x00" + settings.SECRET_KEY.encode()).digest()
    return Ed25519PrivateKey.from_private_bytes(seed)


def public_key_b64() -> str:
    return base64.b64encode(signing_key().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)).decode()


@dataclass
class Export:
    archive: bytes
    manifest: dict
    entry: JournalEntry


def _scope_q(*, agency: Agency, customer: Customer | None, advisor: Advisor | None) -> Q:
    query = Q(thread__agency=agency)
    if customer is not None:
        query &= Q(thread__customer=customer)
    if advisor is not None:
        # What they wrote, and what customers wrote to conversations they handle or are dedicated to.
        query &= Q(author=advisor) | Q(direction=Message.Direction.INBOUND) & (
            Q(thread__handler=advisor) | Q(thread__dedicated_advisor=advisor)
        )
    return query


def journal_export(
    *,
    agency: Agency,
    start: date,
    end: date,
    by,
    customer: Customer | None = None,
    advisor: Advisor | None = None,
) -> Export:
    """Build the archive of the messages of `start`..`end` (inclusive) in scope, and journal it."""
    if end < start:
        raise ValidationError(_("The export's end date is before its start date."), code="dates")
    for item in (customer, advisor):
        if item is not None and item.agency_id != agency.pk:
            raise ValidationError(_("What is exported must belong to the agency."), code="other_agency")
    since = timezone.make_aware(datetime.combine(start, time.min))
    until = timezone.make_aware(datetime.combine(end + timedelta(days=1), time.min))
    messages = list(
        Message.objects.filter(_scope_q(agency=agency, customer=customer, advisor=advisor))
        .filter(created_at__gte=since, created_at__lt=until)
        .select_related("thread__customer", "contact_point", "author__user", "email")
        .prefetch_related(Prefetch("attachments", queryset=Attachment.objects.order_by("position")))
        .order_by("created_at", "pk")
    )
    entries = {
        entry.message_id: entry
        for entry in JournalEntry.objects.filter(
            agency=agency, type=Event.Type.MESSAGE_CREATED, message_id__in=[m.pk for m in messages]
        ).only("message_id", "seq", "hash", "entry")
    }
    head = JournalHead.objects.filter(agency=agency).first()
    buffer = io.BytesIO()
    listed = []
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for index, message in enumerate(messages, start=1):
            name = f"messages/{index:05d}-{message.channel}-{message.pk}.eml"
            entry = entries.get(message.pk)
            data = _eml(message, agency, entry)
            archive.writestr(name, data)
            listed.append(
                {
                    "file": name,
                    "sha256": sha256_hex(data),
                    "message": message.pk,
                    "thread": message.thread_id,
                    "body_sha256": sha256_hex(message.body),
                    "journal": {"seq": entry.seq, "hash": entry.hash} if entry else None,
                }
            )
        manifest = {
            "format": "attitre-journal-export/1",
            "agency": agency.code,
            "scope": {
                "customer": customer.customer_number if customer else None,
                "advisor": advisor.user.get_username() if advisor else None,
                "from": start,
                "to": end,
            },
            "generated_at": timezone.now(),
            "generated_by": actor_of_user(by),
            "journal_head": {"seq": head.seq, "hash": head.hash} if head else None,
            "messages": listed,
            "signature": {"algorithm": "Ed25519", "public_key": public_key_b64(), "file": "manifest.json.sig"},
        }
        manifest_bytes = canonical(manifest).encode()
        archive.writestr("manifest.json", manifest_bytes)
        archive.writestr("manifest.json.sig", base64.b64encode(signing_key().sign(manifest_bytes)))
    with transaction.atomic():
        entry = journal_record(
            agency_id=agency.pk,
            type=JournalType.EXPORT_MADE,
            actor=actor_of_user(by),
            data={**manifest["scope"], "messages": len(listed), "manifest_sha256": sha256_hex(manifest_bytes)},
        )
    return Export(archive=buffer.getvalue(), manifest=manifest, entry=entry)


def _address(message: Message, agency: Agency) -> str:
    contact = message.contact_point
    if "@" in contact.address:
        return contact.address
    return f"{contact.address.lstrip('+')}@{contact.kind}.{agency.code}.attitre.invalid"


def _eml(message: Message, agency: Agency, entry: JournalEntry | None) -> bytes:
    eml = EmailMessage()
    customer = message.thread.customer
    customer_name = customer.full_name if customer else message.contact_point.display_name
    party = formataddr((customer_name or "", _address(message, agency)))
    if message.author_id:
        author = formataddr(
            (message.author.display_name, f"{message.author.user.get_username()}@{agency.code}.attitre.invalid")
        )
        author_header = message.author.user.get_username()
    else:
        author = formataddr(("Attitré", f"system@{agency.code}.attitre.invalid"))
        author_header = "customer" if message.direction == Message.Direction.INBOUND else "system"
    sender, recipient = (party, author) if message.direction == Message.Direction.INBOUND else (author, party)
    email = getattr(message, "email", None) if message.channel == "email" else None
    eml["From"] = sender
    eml["To"] = recipient
    eml["Date"] = format_datetime(message.created_at)
    eml["Message-ID"] = (
        email.header_message_id if email else ""
    ) or f"<message-{message.pk}@{agency.code}.attitre.invalid>"
    eml["Subject"] = (email.subject if email else "") or _("%(channel)s message") % {
        "channel": message.get_channel_display()
    }
    eml["X-Attitre-Channel"] = message.channel
    eml["X-Attitre-Direction"] = message.direction
    eml["X-Attitre-Thread"] = str(message.thread_id)
    eml["X-Attitre-Author"] = author_header
    eml["X-Attitre-Message"] = str(message.pk)
    eml["X-Attitre-Status"] = message.status
    eml["X-Attitre-Body-SHA256"] = sha256_hex(message.body)
    if entry is not None:
        eml["X-Attitre-Journal-Seq"] = str(entry.seq)
        eml["X-Attitre-Journal-Hash"] = entry.hash
    if not message.body and not message.attachments.all() and message.raw == {}:
        eml["X-Attitre-Purged"] = "content removed past retention"
    eml.set_content(message.body or "", charset="utf-8")
    for attachment in message.attachments.all():
        if not attachment.file:
            continue
        with attachment.file.open("rb") as handle:
            content = handle.read()
        maintype, _slash, subtype = (attachment.content_type or "application/octet-stream").partition("/")
        eml.add_attachment(
            content,
            maintype=maintype,
            subtype=subtype or "octet-stream",
            filename=attachment.file_name or attachment.file.name.rsplit("/", 1)[-1],
        )
    return eml.as_bytes()
