"""Channel-layer group names. Consumers join them; the event helper sends to them."""

import hashlib


def advisor_group(advisor_id: int) -> str:
    return f"advisor.{advisor_id}"


def pool_group(agency_id: int) -> str:
    return f"pool.{agency_id}"


def supervision_group(agency_id: int) -> str:
    return f"supervision.{agency_id}"


def session_group(session_key: str) -> str:
    """The sockets opened with one session. Named after a digest: the key signs a browser in,
    and group names are stored in Redis."""
    return f"session.{hashlib.sha256(session_key.encode()).hexdigest()}"


def chat_group(thread_id: int) -> str:
    """The customer's open chat widgets on one thread (channels_app.chat)."""
    return f"chat.{thread_id}"


# What a customer's widget hears of their thread: its messages and their delivery, never a
# note, an assignment or a routing decision. The widget reads each message as the customer
# may see it; the event's own payload is never forwarded.
CUSTOMER_EVENT_TYPES = frozenset({"message.created", "message.status"})
