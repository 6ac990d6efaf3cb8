"""Fetching inbound media into our storage, with bounded retries."""

import logging
import mimetypes
from datetime import timedelta

from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone
from django_q.models import Schedule

from channels_app.events import publish_event
from conversations.models import Attachment, Event, Thread
from conversations.payloads import attachment_payload
from conversations.providers import twilio
from conversations.providers.base import MediaRefused, MediaUnavailable

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 4
BACKOFF_SECONDS = (30, 120, 600)


def attachment_fetch(*, attachment_id: int) -> Attachment | None:
    """Download one pending attachment. A refusal (host, type, size) is final; a passing
    failure is retried later, a bounded number of times. The message is never touched."""
    with transaction.atomic():
        attachment = Attachment.objects.select_for_update().filter(pk=attachment_id).first()
        if attachment is None or attachment.state != Attachment.State.PENDING:
            return attachment
        attachment.attempts += 1
        attachment.save(update_fields=["attempts"])

    # The network call happens outside any transaction.
    try:
        content, content_type = twilio.download_media(
            url=attachment.original_url, declared_type=attachment.content_type
        )
    except MediaRefused as exc:
        return _finish(attachment, state=Attachment.State.REFUSED, error=str(exc))
    except MediaUnavailable as exc:
        if attachment.attempts >= MAX_ATTEMPTS:
            return _finish(attachment, state=Attachment.State.FAILED, error=str(exc))
        delay = BACKOFF_SECONDS[min(attachment.attempts - 1, len(BACKOFF_SECONDS) - 1)]
        Schedule.objects.create(
            func="conversations.tasks.attachment_download",
            args=str(attachment.pk),
            schedule_type=Schedule.ONCE,
            repeats=1,
            next_run=timezone.now() + timedelta(seconds=delay),
            name=f"attachment-{attachment.pk}-retry-{attachment.attempts}",
        )
        Attachment.objects.filter(pk=attachment.pk).update(error=str(exc)[:500])
        logger.info("Attachment %s download failed (%s); retry in %ss.", attachment.pk, exc, delay)
        return attachment

    extension = mimetypes.guess_extension(content_type) or ""
    attachment.file.save(f"{attachment.message_id}-{attachment.position}{extension}", ContentFile(content), save=False)
    attachment.size = len(content)
    attachment.content_type = content_type
    return _finish(attachment, state=Attachment.State.STORED, error="")


def _finish(attachment: Attachment, *, state: str, error: str) -> Attachment:
    attachment.state = state
    attachment.error = error[:500]
    with transaction.atomic():
        attachment.save(update_fields=["state", "error", "file", "size", "content_type"])
        thread = Thread.objects.select_related("customer").get(messages__attachments=attachment)
        publish_event(
            type=Event.Type.ATTACHMENT_UPDATED,
            thread=thread,
            payload={"message": attachment.message_id, "attachment": attachment_payload(attachment)},
        )
    if state != Attachment.State.STORED:
        logger.warning("Attachment %s not stored: %s.", attachment.pk, error)
    return attachment
