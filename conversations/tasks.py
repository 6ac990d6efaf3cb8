"""django-q2 entry points: take ids, call a service."""

from conversations.media import attachment_fetch
from conversations.services import email, outbound


def attachment_download(attachment_id: int) -> None:
    attachment_fetch(attachment_id=int(attachment_id))


def message_deliver(message_id: int) -> None:
    outbound.message_deliver(message_id=int(message_id))


def mailbox_poll() -> None:
    """The IMAP schedule's entry point: nothing to do without EMAIL_IMAP_URL."""
    from django.conf import settings

    if settings.EMAIL_IMAP_URL:
        email.mailbox_poll()
