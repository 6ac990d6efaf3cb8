"""django-q2 entry points: take ids, call a service."""

from conversations.media import attachment_fetch


def attachment_download(attachment_id: int) -> None:
    attachment_fetch(attachment_id=int(attachment_id))
