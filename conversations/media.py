"""Media: fetching inbound media into our storage, with bounded retries, and the signed,
expiring URLs from which the provider fetches our outbound attachments."""

import logging
import mimetypes
from datetime import timedelta
from pathlib import PurePath

from django.conf import settings
from django.core import signing
from django.core.files.base import ContentFile
from django.db import transaction
from django.http import Http404
from django.urls import reverse

from conversations.access import thread_audience
from conversations.models import Attachment, Message, Thread
from conversations.payloads import attachment_payload
from conversations.providers import twilio
from conversations.providers.base import MediaRefused, MediaUnavailable
from core.tasks import enqueue
from events.models import Event
from events.publish import publish_event

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 4
BACKOFF_SECONDS = (30, 120, 600)
# Only for outbound media URLs: a token signed for anything else never names an attachment.
OUTBOUND_MEDIA_SALT = "conversations.media.outbound"


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
        # Results kept, as for the first attempt (conversations.services.inbound).
        enqueue(
            "conversations.tasks.attachment_download",
            attachment.pk,
            group="media",
            delay=timedelta(seconds=delay),
            save=True,
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
            audience=thread_audience(thread),
        )
    if state != Attachment.State.STORED:
        logger.warning("Attachment %s not stored: %s.", attachment.pk, error)
    return attachment


def attachment_media_url(*, attachment_id: int, file_name: str) -> str:
    """The absolute URL the provider fetches an outbound attachment from: it carries a signed
    token naming the attachment, valid ATTITRE_MEDIA_URL_MAX_AGE_SECONDS, and needs no session."""
    token = signing.dumps(attachment_id, salt=OUTBOUND_MEDIA_SALT)
    path = reverse("twilio-media", kwargs={"token": token, "filename": PurePath(file_name).name})
    return settings.PUBLIC_BASE_URL + path


def attachment_for_media_token(*, token: str) -> Attachment:
    """The stored attachment of an outbound message that a media URL's token names; Http404,
    the same for every reason, when the token is forged, expired or names anything else."""
    try:
        attachment_id = signing.loads(
            token, salt=OUTBOUND_MEDIA_SALT, max_age=settings.ATTITRE_MEDIA_URL_MAX_AGE_SECONDS
        )
    except signing.SignatureExpired:
        # Twilio fetches soon after the send: an expiry here means a URL kept or passed on.
        logger.info("Outbound media URL refused: expired.")
        raise Http404("No such attachment.") from None
    except signing.BadSignature:
        logger.info("Outbound media URL refused: bad signature.")
        raise Http404("No such attachment.") from None
    attachment = (
        Attachment.objects.filter(
            pk=attachment_id,
            state=Attachment.State.STORED,
            message__direction=Message.Direction.OUTBOUND,
        )
        .exclude(file="")
        .first()
    )
    if attachment is None:
        raise Http404("No such attachment.")
    return attachment
