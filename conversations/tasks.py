"""django-q2 entry points: take ids, call a service."""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from conversations.media import attachment_fetch
from conversations.selectors import TIMELINE_EVENT_TYPES
from conversations.services import email, outbound, webchat
from events.log import events_prune as prune


def attachment_download(attachment_id: int) -> None:
    attachment_fetch(attachment_id=int(attachment_id))


def message_deliver(message_id: int) -> None:
    outbound.message_deliver(message_id=int(message_id))


def chat_offline_notify(message_id: int) -> None:
    webchat.chat_offline_notify(message_id=int(message_id))


def events_prune() -> int:
    """Run daily by the `events-prune` schedule (`manage.py ensure_schedules`): the event log
    past ATTITRE_EVENT_RETENTION_DAYS goes, but for the lines the thread timeline shows
    (assignments, consent changes), which are the thread's history."""
    before = timezone.now() - timedelta(days=settings.ATTITRE_EVENT_RETENTION_DAYS)
    return prune(before=before, keep_types=TIMELINE_EVENT_TYPES)


def mailbox_poll() -> None:
    """The IMAP schedule's entry point: nothing to do without EMAIL_IMAP_URL."""
    if settings.EMAIL_IMAP_URL:
        email.mailbox_poll()
