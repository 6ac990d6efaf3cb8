"""Writes to conversations: the only place that stores messages, moves threads and
appends their events. `inbound` receives what providers deliver; `threads` is what
advisors do to a thread."""

from conversations.services.inbound import (
    InboundResult,
    consent_keyword,
    inbound_message_receive,
    message_status_apply,
)
from conversations.services.threads import (
    note_add,
    prospect_link_to_customer,
    thread_claim,
    thread_mark_read,
    thread_set_status,
    thread_transfer,
)

__all__ = [
    "InboundResult",
    "consent_keyword",
    "inbound_message_receive",
    "message_status_apply",
    "note_add",
    "prospect_link_to_customer",
    "thread_claim",
    "thread_mark_read",
    "thread_set_status",
    "thread_transfer",
]
