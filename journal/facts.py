"""What each event becomes in the journal. Events carry no text by design
(conversations.payloads); the journal must make the text tamper-evident, so it reads the
bodies here, in the event's transaction, one query per kind of event in the batch, and
keeps their SHA-256 — not the text, which retention purges while the journal stays."""

import hashlib
from collections import defaultdict

from conversations.models import Attachment, Message, Note
from core.compiled import PreparedQuery
from crm.models import AdvisorAssignment
from events.models import Event
from journal.chain import Fact, canonical, sha256_hex


def text_sha256(text: str) -> str:
    return sha256_hex(text or "")


def message_content_sha256(message: dict) -> dict:
    """The hashes kept for a message's content: its body, what else the customer typed
    (button, location) and the provider's raw payload."""
    extras = {key: message.get(key) for key in ("button_text", "button_payload", "location_address", "location_label")}
    extras |= {"latitude": message.get("latitude"), "longitude": message.get("longitude")}
    return {
        "body_sha256": text_sha256(message.get("body", "")),
        "extras_sha256": sha256_hex(canonical(extras)),
        "raw_sha256": sha256_hex(canonical(message.get("raw") or {})),
    }


def file_sha256(field_file) -> str | None:
    if not field_file:
        return None
    digest = hashlib.sha256()
    with field_file.open("rb") as handle:
        for chunk in iter(lambda: handle.read(65536), b""):
            digest.update(chunk)
    return digest.hexdigest()


def facts_from_events(events: list[Event]) -> list[Fact]:
    by_type: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        by_type[event.type].append(event)
    messages = _messages([e.payload["message"]["id"] for e in by_type.get(Event.Type.MESSAGE_CREATED, [])])
    notes = _notes([e.payload["note"]["id"] for e in by_type.get(Event.Type.NOTE_CREATED, [])])
    files = _attachment_hashes([e.payload["attachment"]["id"] for e in by_type.get(Event.Type.ATTACHMENT_UPDATED, [])])
    reassigned_by = _reassigned_by([e.payload["customer"] for e in by_type.get(Event.Type.CUSTOMER_REASSIGNED, [])])
    return [_fact(e, messages, notes, files, reassigned_by) for e in events]


def _fact(event: Event, messages: dict, notes: dict, files: dict, reassigned_by: dict) -> Fact:
    payload = event.payload
    data = {key: value for key, value in payload.items() if key != "thread_summary"}
    if "thread_summary" in payload:
        summary = payload["thread_summary"]
        data["thread_state"] = {key: summary.get(key) for key in ("status", "handler", "customer")}
    actor = f"advisor:{payload['by']}" if payload.get("by") else "system"
    message_id = None
    if event.type == Event.Type.MESSAGE_CREATED:
        message_id = payload["message"]["id"]
        row = messages.get(message_id, {})
        data["message"] = {**payload["message"], **message_content_sha256(row)}
        if payload["message"]["direction"] == Message.Direction.INBOUND:
            actor = f"contact:{row.get('contact_point_id')}"
        elif payload["message"].get("author"):
            actor = f"advisor:{payload['message']['author']}"
    elif event.type == Event.Type.NOTE_CREATED:
        data["note"] = {**payload["note"], "body_sha256": text_sha256(notes.get(payload["note"]["id"], ""))}
        data["note"].pop("author_name", None)
        actor = f"advisor:{payload['note']['author']}"
    elif event.type == Event.Type.ATTACHMENT_UPDATED:
        message_id = payload["message"]
        data["attachment"] = {**payload["attachment"], "sha256": files.get(payload["attachment"]["id"])}
    elif event.type == Event.Type.MESSAGE_STATUS:
        message_id = payload["message"]
    elif event.type == Event.Type.CONSENT_CHANGED:
        actor = f"contact:{payload['contact_point']}"
    elif event.type == Event.Type.CUSTOMER_REASSIGNED:
        user = reassigned_by.get(payload["customer"])
        actor = f"user:{user}" if user else "system"
    return Fact(
        agency_id=event.agency_id,
        type=event.type,
        at=event.created_at,
        actor=actor,
        data=data,
        thread_id=event.thread_id,
        event_id=event.pk,
        message_id=message_id,
    )


_MESSAGE_FIELDS = (
    "pk",
    "contact_point_id",
    "body",
    "button_text",
    "button_payload",
    "location_address",
    "location_label",
    "latitude",
    "longitude",
    "raw",
)


_message_contents = PreparedQuery(
    lambda ids: Message.objects.filter(pk__in=ids).only(*_MESSAGE_FIELDS), sentinels=([-7_346_183_032],)
)


def _messages(ids: list[int]) -> dict[int, dict]:
    if not ids:
        return {}
    fields = [name for name in _MESSAGE_FIELDS if name != "pk"]
    return {m.pk: {name: getattr(m, name) for name in fields} for m in _message_contents.all(ids)}


def _notes(ids: list[int]) -> dict[int, str]:
    if not ids:
        return {}
    return dict(Note.objects.filter(pk__in=ids).values_list("pk", "body"))


def _attachment_hashes(ids: list[int]) -> dict[int, str | None]:
    if not ids:
        return {}
    return {a.pk: file_sha256(a.file) for a in Attachment.objects.filter(pk__in=ids).only("pk", "file")}


def _reassigned_by(customer_ids: list[int]) -> dict[int, int | None]:
    if not customer_ids:
        return {}
    rows = AdvisorAssignment.objects.filter(customer_id__in=customer_ids, ended_at__isnull=True)
    return dict(rows.values_list("customer_id", "changed_by_id"))
