"""django-q2 entry points: take ids, call a service."""

from conversations.media import attachment_fetch
from conversations.services import outbound


def attachment_download(attachment_id: int) -> None:
    attachment_fetch(attachment_id=int(attachment_id))


def message_deliver(message_id: int) -> None:
    outbound.message_deliver(message_id=int(message_id))
