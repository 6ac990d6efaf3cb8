"""Receiving email, from an ESP's inbound webhook or from IMAP polling: one raw MIME
message in, one message in the customer's thread (through the same receive service as
WhatsApp and SMS), or a delivery report applied to the message of ours it is about.

Files (the raw MIME, attachments) are written to storage before the transaction, and
deleted again if the email turns out to be stored already or its storage fails.
"""

import logging
import mimetypes
import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import PurePath

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from conversations.models import EmailHeaders, MailboxCursor, Message, Thread
from conversations.providers import email as email_provider
from conversations.providers import imap
from conversations.providers.base import InboundEmail, InboundMedia, InboundMessage, StatusUpdate
from conversations.providers.email import EmailRejected, ParsedEmail
from conversations.services.customers import contact_point_set_consent
from conversations.services.inbound import InboundResult, inbound_message_receive, message_status_apply
from crm.models import ContactPoint

logger = logging.getLogger(__name__)

CHANNEL = email_provider.CHANNEL


@dataclass(frozen=True)
class EmailReceived:
    """What became of one raw email: a message (`result`), a bounce applied to ours
    (`bounced`), or kept aside unread by anyone (`rejected`, its reason and where it is)."""

    result: InboundResult | None = None
    bounced: Message | None = None
    rejected: str = ""
    kept_as: str = ""


def email_receive(
    *, raw: bytes, source: str, envelope_recipient: str = "", parsed_message: EmailMessage | None = None
) -> EmailReceived:
    """File one raw email. `source` says where it came from ("mailgun", "imap"…), for logs;
    `parsed_message`, `raw` already parsed by the stdlib's email package (anymail's).

    Idempotent on its Message-ID: the same email from a retried webhook and from IMAP is
    stored once. An email we cannot attribute (no usable sender) is kept in storage under
    email/rejected/ and logged; it never raises for bad content, only for failures worth
    retrying (the database, the storage)."""
    try:
        parsed = email_provider.parse_email(raw, envelope_recipients=(envelope_recipient,), message=parsed_message)
    except EmailRejected as rejected:
        return _keep_aside(raw, rejected.reason, source)

    if parsed.report is not None:
        bounced = _apply_report(parsed)
        if bounced is not None:
            return EmailReceived(bounced=bounced)
    key = email_provider.provider_message_id(parsed.message_id)
    # Not looked up first: the insert's ON CONFLICT tells a redelivery, one round trip less
    # for every email (its files, written meanwhile, are deleted again).
    answered = thread_for_email(parsed)
    if answered is not None:
        _attach_sender_to_customer(parsed, answered)
    written: list[str] = []
    try:
        inbound = _inbound_message(parsed, raw, key, written, answers_thread_id=answered.pk if answered else None)
        result = inbound_message_receive(inbound=inbound)
    except BaseException:
        _delete(written)
        raise
    if not result.created:
        logger.info("Email %s from %s received again; stored once.", key[:16], source)
        _delete(written)
    elif result.message.contact_point.bouncing_since is not None:
        # An address that writes to us receives mail again: a past hard bounce no longer holds.
        ContactPoint.objects.filter(pk=result.message.contact_point_id).update(bouncing_since=None, bounce_reason="")
    return EmailReceived(result=result)


def _inbound_message(
    parsed: ParsedEmail, raw: bytes, key: str, written: list[str], *, answers_thread_id: int | None
) -> InboundMessage:
    stem = f"email/{timezone.now():%Y/%m}/{uuid.uuid4().hex}"
    raw_name = default_storage.save(f"{stem}.eml", ContentFile(raw))
    written.append(raw_name)
    limit = settings.EMAIL_MAX_ATTACHMENT_BYTES
    media, inline_urls, total = [], {}, 0
    for index, part in enumerate(parsed.parts):
        size = len(part.content)
        refused = ""
        if part.content_type not in email_provider.ALLOWED_MEDIA_TYPES:
            refused = _(
                "“%(name)s” (%(type)s) is not a file type we accept; it is kept only in the original email."
            ) % {
                "name": part.filename or _("unnamed file"),
                "type": part.content_type,
            }
        elif total + size > limit:
            refused = _(
                "“%(name)s” goes past the %(max)d MB limit for an email's files; it is kept only in the original email."
            ) % {
                "name": part.filename or _("unnamed file"),
                "max": limit // (1024 * 1024),
            }
        if refused:
            media.append(
                InboundMedia(
                    url="", content_type=part.content_type, size=size, refused=refused, file_name=part.filename
                )
            )
            continue
        total += size
        extension = PurePath(part.filename).suffix.lower() or mimetypes.guess_extension(part.content_type) or ""
        name = default_storage.save(f"{stem}-{index}{extension[:10]}", ContentFile(part.content))
        written.append(name)
        media.append(
            InboundMedia(url="", content_type=part.content_type, stored_name=name, size=size, file_name=part.filename)
        )
        if part.content_id:
            inline_urls[part.content_id] = index
    html = ""
    if parsed.html:
        # The inbox shows an inline image through its attachment URL, known once the message
        # exists: its position stands in for it until then (see thread_selectors).
        scheme = email_provider.INLINE_SCHEME
        html = email_provider.sanitise_html(
            parsed.html, inline_urls={cid: f"{scheme}:{index}" for cid, index in inline_urls.items()}
        )
    return InboundMessage(
        provider=email_provider.PROVIDER,
        provider_message_id=key,
        channel=CHANNEL,
        address=parsed.sender,
        body=parsed.text,
        profile_name=parsed.sender_name,
        media=tuple(media),
        email=InboundEmail(
            message_id=parsed.message_id,
            in_reply_to=parsed.in_reply_to,
            references=parsed.references,
            subject=parsed.subject,
            from_header=parsed.from_header,
            to_header=parsed.to_header,
            cc_header=parsed.cc_header,
            reply_to=parsed.reply_to,
            full_text=parsed.full_text,
            html=html,
            raw_name=raw_name,
            raw_size=len(raw),
            noise=parsed.noise,
        ),
        answers_thread_id=answers_thread_id,
    )


def thread_for_email(parsed: ParsedEmail) -> Thread | None:
    """The thread an email answers: the signed token of a reply address among its
    recipients first, then a message of ours (or theirs) it names in In-Reply-To/References.
    The email lands there, whoever its sender is (the issue's matching order: token, then
    References, then the sender's address); None leaves it to the sender's address."""
    thread_id = email_provider.thread_id_from_recipients(parsed.recipients)
    if thread_id is not None:
        thread = Thread.objects.filter(pk=thread_id).first()
        if thread is not None:
            return thread
    named = [ref for ref in (parsed.in_reply_to, *reversed(parsed.references)) if ref]
    if named:
        found = (
            EmailHeaders.objects.filter(header_message_id__in=named)
            .select_related("message__thread")
            .order_by("-message__created_at")
            .first()
        )
        if found is not None:
            return found.message.thread
    return None


def _attach_sender_to_customer(parsed: ParsedEmail, thread: Thread) -> None:
    """A customer writing from an address we do not know, in answer to their thread: the
    address joins them unconfirmed (nothing is sent there until their advisor confirms it,
    which the customer card offers). A known address stays whose it is, even another
    customer's: the email lands in the thread it answers all the same."""
    if not thread.customer_id or ContactPoint.objects.filter(kind=CHANNEL, address=parsed.sender).exists():
        return
    try:
        with transaction.atomic():
            ContactPoint.objects.create(
                customer_id=thread.customer_id,
                kind=CHANNEL,
                address=parsed.sender,
                display_name=parsed.sender_name,
                confirmed=False,
                consent_changed_at=timezone.now(),
                consent_source=_("reply in their email thread"),
            )
    except IntegrityError:
        pass  # created at the same instant by another delivery of it


def _apply_report(parsed: ParsedEmail) -> Message | None:
    """A delivery status notification about a message of ours: failed (hard bounce: the
    address is marked bouncing) or failed for now (soft: the address is left alone); a
    delay notice changes nothing. None when it names no message of ours."""
    report = parsed.report
    headers = (
        EmailHeaders.objects.filter(
            header_message_id=report.original_message_id, message__direction=Message.Direction.OUTBOUND
        )
        .select_related("message__contact_point")
        .first()
    )
    if headers is None:
        return None
    message = headers.message
    if report.action != "failed":
        logger.info("Delivery report (%s) for message %s: nothing to change.", report.action or "?", message.pk)
        return message
    text = _("The customer's mail server returned this email (status %(status)s).") % {"status": report.status or "?"}
    if report.hard:
        text = _("The address does not accept email (status %(status)s); check it with the customer.") % {
            "status": report.status
        }
        ContactPoint.objects.filter(pk=message.contact_point_id, bouncing_since__isnull=True).update(
            bouncing_since=timezone.now(), bounce_reason=text[:300]
        )
    if message.provider_message_id:
        message_status_apply(
            update=StatusUpdate(
                provider=message.provider,
                provider_message_id=message.provider_message_id,
                status="undelivered",
                error_code=f"dsn {report.status}"[:16],
                error_message=text,
            )
        )
    message.refresh_from_db()
    return message


def _keep_aside(raw: bytes, reason: str, source: str) -> EmailReceived:
    name = default_storage.save(f"email/rejected/{timezone.now():%Y/%m}/{uuid.uuid4().hex}.eml", ContentFile(raw))
    # The reason names no content; the file is there for the mail administrator.
    logger.warning("Email from %s kept aside as %s: %s", source, name, reason)
    return EmailReceived(rejected=reason, kept_as=name)


def _delete(names: list[str]) -> None:
    for name in names:
        try:
            default_storage.delete(name)
        except Exception:
            logger.exception("Could not delete the stored file %s of an email that was not stored.", name)


def email_tracking_apply(*, event: email_provider.TrackingEvent) -> Message | None:
    """An ESP's tracking event for a message of ours: its status only moves forward; a
    complaint or an unsubscription opts the address out of email."""
    message = None
    if event.status:
        failed = event.status in ("failed", "undelivered")
        message = message_status_apply(
            update=StatusUpdate(
                provider=email_provider.PROVIDER,
                provider_message_id=event.provider_message_id,
                status=event.status,
                error_code=(event.reason or event.event_type)[:16] if failed else "",
                error_message=_("The email service reports the email as %(event)s.") % {"event": event.event_type}
                if failed
                else "",
            )
        )
    if event.event_type in email_provider.TRACKING_OPT_OUTS:
        message = (
            Message.objects.filter(provider=email_provider.PROVIDER, provider_message_id=event.provider_message_id)
            .select_related("contact_point")
            .first()
        )
        if message is not None:
            contact_point_set_consent(
                contact_point=message.contact_point,
                consent=ContactPoint.Consent.OPTED_OUT,
                source=_("email service: the recipient %(event)s") % {"event": event.event_type},
            )
    return message


@dataclass(frozen=True)
class MailboxPolled:
    stored: int = 0
    seen_again: int = 0
    kept_aside: int = 0


def mailbox_poll(*, url: str | None = None) -> MailboxPolled:
    """Read the new messages of the IMAP folder EMAIL_IMAP_URL names, by UID, oldest first.

    Each is stored (or found stored: the same email from a webhook is one message), then
    flagged \\Seen or moved (EMAIL_IMAP_MOVE_TO), then the cursor moves past it: a crash in
    between reads it again, and storing it again is a no-op. A new UIDVALIDITY (the folder
    was rebuilt, UIDs mean other messages) reads the folder again from the start."""
    address = imap.parse_mailbox_url(url if url is not None else settings.EMAIL_IMAP_URL)
    cursor, _created = MailboxCursor.objects.get_or_create(mailbox=address.name)
    stored = seen_again = kept_aside = 0
    with imap.open_mailbox(address, timeout=settings.EMAIL_IMAP_TIMEOUT, cafile=settings.EMAIL_IMAP_CA_FILE) as mailbox:
        validity = mailbox.uid_validity()
        if cursor.uid_validity != validity:
            if cursor.uid_validity is not None:
                logger.warning(
                    "%s: UIDVALIDITY changed (%s → %s); reading the folder again.",
                    address.name,
                    cursor.uid_validity,
                    validity,
                )
            cursor.uid_validity, cursor.last_uid = validity, 0
            cursor.save(update_fields=["uid_validity", "last_uid"])
        for uid in mailbox.uids_after(cursor.last_uid):
            raw = mailbox.raw(uid)
            if raw is not None:
                received = email_receive(raw=raw, source="imap")
                if received.rejected:
                    kept_aside += 1
                elif received.result is not None and not received.result.created:
                    seen_again += 1
                else:
                    stored += 1
                mailbox.done(uid, move_to=settings.EMAIL_IMAP_MOVE_TO)
            MailboxCursor.objects.filter(pk=cursor.pk, last_uid__lt=uid).update(last_uid=uid)
            cursor.last_uid = uid
    MailboxCursor.objects.filter(pk=cursor.pk).update(polled_at=timezone.now())
    return MailboxPolled(stored=stored, seen_again=seen_again, kept_aside=kept_aside)
