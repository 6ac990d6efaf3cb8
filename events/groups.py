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
