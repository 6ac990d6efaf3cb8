"""Writes of the journal app: what every event appends, what happens outside the event log
(holds, exports, purges, audited reads), and the daily anchor."""

import logging

import requests
from django.conf import settings
from django.utils import timezone

from crm.models import Agency
from events.models import Event
from journal.chain import Fact, canonical, journal_append
from journal.facts import facts_from_events
from journal.models import JournalEntry, JournalHead

logger = logging.getLogger(__name__)


class JournalType:
    """Entries that are not events (those keep their event's type)."""

    LEGAL_HOLD_PLACED = "legal_hold.placed"
    LEGAL_HOLD_RELEASED = "legal_hold.released"
    RETENTION_PURGED = "retention.purged"
    RETENTION_POLICY_CHANGED = "retention.policy_changed"
    EXPORT_MADE = "export.made"


def journal_events(events: list[Event]) -> None:
    """The event log's append hook (JournalConfig.ready): every event, in its transaction."""
    if settings.ATTITRE_JOURNAL_ENABLED:
        journal_append(facts=facts_from_events(events))


def journal_facts(facts: list) -> None:
    """The record hook (events.publish.record_fact): facts that are no event."""
    if settings.ATTITRE_JOURNAL_ENABLED:
        now = timezone.now()
        journal_append(
            facts=[
                Fact(agency_id=f.agency_id, type=f.type, at=now, actor=f.actor, data=f.data, thread_id=f.thread_id)
                for f in facts
            ]
        )


def actor_of_user(user) -> str:
    if user is None or not getattr(user, "is_authenticated", False):
        return "system"
    return f"user:{user.pk}"


def journal_record(
    *, agency_id: int, type: str, actor: str, data: dict, thread_id: int | None = None, message_id: int | None = None
) -> JournalEntry:
    """Journal what no event records, in the caller's transaction."""
    return journal_append(
        facts=[
            Fact(
                agency_id=agency_id,
                type=type,
                at=timezone.now(),
                actor=actor,
                data=data,
                thread_id=thread_id,
                message_id=message_id,
            )
        ]
    )[0]


def journal_anchor(*, now=None) -> list[dict]:
    """The head of every agency's chain, logged and, with ATTITRE_JOURNAL_ANCHOR_URL, posted
    there: a copy outside our database, so that a chain rewritten whole is seen."""
    now = now or timezone.now()
    codes = dict(Agency.objects.values_list("pk", "code"))
    anchors = [
        {"agency": codes.get(head.agency_id, str(head.agency_id)), "seq": head.seq, "hash": head.hash, "at": now}
        for head in JournalHead.objects.order_by("agency_id")
    ]
    for anchor in anchors:
        logger.info("Journal anchor: agency %s, entry %s, head %s.", anchor["agency"], anchor["seq"], anchor["hash"])
    url = settings.ATTITRE_JOURNAL_ANCHOR_URL
    if url and anchors:
        body = canonical({"anchors": anchors})
        try:
            response = requests.post(url, data=body.encode(), headers={"Content-Type": "application/json"}, timeout=10)
            response.raise_for_status()
        except requests.RequestException as exc:
            logger.error("Journal anchor not delivered to the anchor endpoint (%s).", type(exc).__name__)
            raise
    return anchors


def journal_anchor_verify(*, agency_id: int, seq: int, hash: str) -> bool:
    """Whether entry `seq` of the agency still has the hash an anchor recorded."""
    return JournalEntry.objects.filter(agency_id=agency_id, seq=seq, hash=hash).exists()
