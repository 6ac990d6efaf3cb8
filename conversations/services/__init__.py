"""Writes to conversations: the only place that stores messages, moves threads and
appends their events. `inbound` receives what providers deliver; `threads` is what
advisors do to a thread; `customers` changes a customer and their thread together;
`outbound` sends advisors' replies and delivers them."""

from conversations.services.inbound import (
    InboundResult,
    consent_keyword,
    inbound_message_receive,
    inbound_messages_receive,
    message_status_apply,
    message_statuses_apply,
)
from conversations.services.outbound import (
    SendRefused,
    free_text_allowed,
    message_deliver,
    message_send,
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
    "free_text_allowed",
    "inbound_message_receive",
    "inbound_messages_receive",
    "SendRefused",
    "message_deliver",
    "message_send",
    "message_status_apply",
    "message_statuses_apply",
    "note_add",
    "prospect_link_to_customer",
    "thread_claim",
    "thread_mark_read",
    "thread_set_status",
    "thread_transfer",
]
