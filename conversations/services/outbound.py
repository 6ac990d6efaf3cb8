"""Sending to the customer: what an advisor's reply must satisfy, storing it, and its
delivery to the provider exactly once.

`message_send` checks everything a provider would refuse (consent, the channel's
free-text window, sizes, template variables) and stores the message `queued` with
its delivery task in the same transaction. `message_deliver` (run by the task)
claims the message with a conditional UPDATE, so only one worker ever calls the
provider for it, and maps the provider's answer onto the message.
"""

import logging
import mimetypes
import re
import uuid
from datetime import timedelta
from pathlib import PurePath

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import connections, transaction
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.text import get_text_list
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from conversations.access import thread_audience
from conversations.media import attachment_media_url
from conversations.models import Attachment, EmailHeaders, Message, MessageTemplate, Thread
from conversations.payloads import message_payload, message_status_payload, thread_summary
from conversations.providers import email as email_provider
from conversations.providers.base import OutboundEmail, OutboundFile, OutboundRequest, SendFailed, StatusUpdate
from conversations.providers.registry import CHANNELS, MB, REPLY_CHANNELS, ChannelSpec, default_reply_channel
from conversations.services.auto_replies import menu_content_sid
from conversations.services.inbound import STATUS_RANK, contact_point_opt_out_if_unsubscribed, message_status_apply
from conversations.templating import TEMPLATE_VARIABLE, template_numbers, template_variables_for
from core.compiled import PreparedQuery
from core.tasks import enqueue
from crm.addresses import PHONE_KINDS
from crm.models import Advisor, ContactPoint
from events.models import Event
from events.publish import publish_event

logger = logging.getLogger(__name__)

BODY_MAX_LENGTH = 1600
PREVIEW_LENGTH = 200
DELIVER_TASK = "conversations.tasks.message_deliver"
MAX_DELIVERY_ATTEMPTS = 5
RETRY_BACKOFF_SECONDS = (15, 60, 240, 900)
# After an unanswered call, wait this long for a status callback before calling again.
AMBIGUOUS_CHECK_AFTER = timedelta(seconds=60)
# A message `sending` without a provider id for longer than this is not in flight any more
# (well above TWILIO_API_TIMEOUT): its worker died or its call went unanswered.
SENDING_STALE_AFTER = timedelta(seconds=45)


class SendRefused(ValidationError):
    """A reply that cannot go out; `code` says why (machine-readable), the message says what to do."""

    def __init__(self, message: str, *, code: str):
        super().__init__(message, code=code)


def message_send(
    *,
    thread: Thread,
    author: Advisor,
    body: str = "",
    attachments=(),
    template: MessageTemplate | None = None,
    variables: dict | None = None,
    channel: str | None = None,
    subject: str = "",
) -> Message:
    """Send a reply to the thread's customer; refused with SendRefused (nothing stored) when
    the provider would refuse it. Returns the message, `queued`, its delivery enqueued.

    Its files are stored before its transaction: called inside a caller's transaction that
    later rolls back, they stay behind (the inbox and the API call it on its own)."""
    body = (body or "").strip()
    attachments = list(attachments or ())
    if template is not None and body:
        raise SendRefused(
            _("A template is sent as approved: leave the message empty, or send free text instead."),
            code="template_and_body",
        )
    if template is None:
        if not body and not attachments:
            raise SendRefused(_("Write a message or attach a file before sending."), code="empty_body")
        spec = CHANNELS.get(_channel_for(channel, thread))
        max_length = spec.max_body_length if spec else BODY_MAX_LENGTH
        if len(body) > max_length:
            raise SendRefused(
                _("The message is %(length)d characters long; the limit is %(max)d. Split it or shorten it.")
                % {"length": len(body), "max": max_length},
                code="body_too_long",
            )
    elif attachments:
        raise SendRefused(
            _("An approved template cannot carry a file; send the file once the customer answers."),
            code="attachment_type",
        )

    media = [_media_of(upload) for upload in attachments]
    # Checked before the files are stored, on the channel the reply will most likely take;
    # checked again under the lock, where the channel is settled.
    _check_media(_channel_for(channel, thread), media)
    # Stored before the thread is locked (with S3 each file is a network call), and deleted
    # again if the reply is refused under the lock or its transaction fails.
    files = _store_files(media)
    try:
        return _record_reply(
            thread=thread,
            author=author,
            body=body,
            media=media,
            files=files,
            template=template,
            variables=variables,
            channel=channel,
            subject=subject,
        )
    except BaseException:
        _delete_files(files)
        raise


def _record_reply(*, thread, author, body, media, files, template, variables, channel, subject) -> Message:
    now = timezone.now()
    with transaction.atomic():
        thread = (
            Thread.objects.select_for_update(of=("self",))
            .select_related("customer", "prospect", "agency")
            .get(pk=thread.pk)
        )
        channel = _channel_for(channel, thread)
        spec, contact = _contact_point_for(thread, channel)
        _check_consent(thread, contact)
        _check_media(channel, media)
        content_variables = {}
        if template is not None:
            content_variables = _checked_template_variables(template, thread, author, variables)
            body = _render(template.body, content_variables)
        else:
            _check_free_text_window(spec, thread, now)
        envelope = _envelope_for(spec, thread, author, subject) if spec.envelope else None

        message = Message.objects.create(
            thread=thread,
            direction=Message.Direction.OUTBOUND,
            channel=channel,
            contact_point=contact,
            author=author,
            body=body,
            provider=spec.provider.name,
            status=Message.Status.QUEUED,
            created_at=now,
            queued_at=now,
            template=template,
            template_variables=content_variables,
        )
        for attachment in files:
            attachment.message = message
            attachment.save()
        if envelope is not None:
            envelope.message = message
            envelope.save()

        thread.last_activity_at = now
        thread.last_message_preview = body[:PREVIEW_LENGTH] if body else _("📎 Attachment")
        thread.waiting_since = None
        thread.status = Thread.Status.WAITING
        thread.save(update_fields=["last_activity_at", "last_message_preview", "waiting_since", "status"])
        publish_event(
            type=Event.Type.MESSAGE_CREATED,
            thread=thread,
            payload={"message": message_payload(message, files), "thread_summary": thread_summary(thread)},
            audience=thread_audience(thread),
        )
        # The ORM broker writes the task in this transaction: no message, no send; no send lost.
        _enqueue_delivery(message.pk)
    return message


def _enqueue_delivery(message_id: int, *, delay: timedelta | None = None) -> None:
    # Successful deliveries are not kept as task results: the message row is the record.
    enqueue(DELIVER_TASK, message_id, group="outbound", delay=delay)


def _party_name(thread: Thread) -> str:
    if thread.customer_id:
        return thread.customer.full_name
    return thread.prospect.display_name or thread.prospect.address


def _channel_for(requested: str | None, thread: Thread) -> str:
    """The channel asked for, else the one the customer last wrote on, else the default."""
    return requested or thread.last_inbound_channel or default_reply_channel().channel


def _contact_point_for(thread: Thread, channel: str) -> tuple[ChannelSpec, ContactPoint]:
    spec = CHANNELS.get(channel)
    if spec is None or not spec.replies:
        raise SendRefused(
            _("Replies on %(channel)s are not available; choose %(channels)s.")
            % {
                "channel": spec.label if spec else channel,
                "channels": get_text_list([reply.label for reply in REPLY_CHANNELS], _("or")),
            },
            code="channel_unsupported",
        )
    if thread.customer_id:
        points = list(ContactPoint.objects.filter(customer_id=thread.customer_id, kind=channel).order_by("pk"))
        candidates = [point for point in points if point.confirmed]
        if points and not candidates:
            raise SendRefused(
                _(
                    "%(name)s's %(channel)s number %(address)s was linked to them from the pool and is not "
                    "confirmed yet; their dedicated advisor must confirm it is theirs before anything is sent there."
                )
                % {"name": _party_name(thread), "channel": spec.label, "address": points[0].address},
                code="contact_point_unconfirmed",
            )
    else:
        candidates = [thread.prospect] if thread.prospect.kind == channel else []
    if not candidates:
        raise SendRefused(
            (
                _("%(name)s has no %(channel)s number; choose another channel.")
                if channel in PHONE_KINDS
                else _("%(name)s has no %(channel)s address; choose another channel.")
            )
            % {"name": _party_name(thread), "channel": spec.label},
            code="no_contact_point",
        )
    if len(candidates) > 1:
        # Several numbers on one channel: answer the one the customer last wrote from.
        last_used = (
            Message.objects.filter(thread=thread, direction=Message.Direction.INBOUND, channel=channel)
            .order_by("-created_at", "-pk")
            .values_list("contact_point_id", flat=True)
            .first()
        )
        for candidate in candidates:
            if candidate.pk == last_used:
                return spec, candidate
    return spec, candidates[0]


def _envelope_for(spec: ChannelSpec, thread: Thread, author: Advisor, subject: str) -> EmailHeaders:
    """An email reply's headers, decided before it is stored (and so before it is sent):
    our Message-ID, `Re:` the customer's last email (or the subject typed for a new
    conversation), In-Reply-To/References to it, and the thread's own reply address."""
    last = (
        EmailHeaders.objects.filter(message__thread=thread, message__direction=Message.Direction.INBOUND)
        .order_by("-message__created_at", "-message_id")
        .first()
    )
    subject = " ".join((subject or "").split())
    if not subject and last is not None:
        subject = email_provider.reply_subject(last.subject)
    if not subject:
        raise SendRefused(
            _("%(name)s has not written by email yet: type a subject for this new email.")
            % {"name": _party_name(thread)},
            code="subject_required",
        )
    references = [*last.reference_ids, last.header_message_id][-20:] if last is not None else []
    return EmailHeaders(
        header_message_id=email_provider.new_message_id(),
        in_reply_to=last.header_message_id if last is not None else "",
        references=" ".join(references),
        subject=subject[:998],
        from_header=_sender_name(author, thread),
        reply_to=email_provider.reply_address(thread.pk),
    )


def _sender_name(author: Advisor, thread: Thread) -> str:
    return f"{author.display_name} — {thread.agency.name}"


def _check_consent(thread: Thread, contact: ContactPoint) -> None:
    if contact.consent == ContactPoint.Consent.OPTED_OUT:
        raise SendRefused(
            _(
                "%(name)s opted out of %(channel)s messages (%(source)s); nothing can be sent there "
                "until they write START."
            )
            % {
                "name": _party_name(thread),
                "channel": contact.get_kind_display(),
                "source": contact.consent_source or _("no reason recorded"),
            },
            code="opted_out",
        )


def free_text_allowed(*, thread: Thread, channel: str, now=None) -> bool:
    """Whether free text may go to the thread's customer on `channel`: always, unless the
    channel has a free-text window (WhatsApp: 24 h after the customer's last message on it)."""
    spec = CHANNELS[channel]
    return spec.free_text_allowed(last_inbound_at=getattr(thread, spec.last_inbound_field), now=now or timezone.now())


def _check_free_text_window(spec: ChannelSpec, thread: Thread, now) -> None:
    if spec.free_text_allowed(last_inbound_at=getattr(thread, spec.last_inbound_field), now=now):
        return
    last = getattr(thread, spec.last_inbound_field)
    name = _party_name(thread)
    if last is None:
        text = _("%(name)s has not written on %(channel)s yet; %(channel)s only allows an approved template.") % {
            "name": name,
            "channel": spec.label,
        }
    else:
        hours = int((now - last).total_seconds() // 3600)
        if hours < 48:
            age = ngettext("%(count)d h", "%(count)d h", hours) % {"count": hours}
        else:
            age = ngettext("%(count)d day", "%(count)d days", hours // 24) % {"count": hours // 24}
        text = _(
            "%(name)s's last %(channel)s message is %(age)s old; %(channel)s only allows an approved template now."
        ) % {"name": name, "channel": spec.label, "age": age}
    raise SendRefused(text, code=spec.free_text_window.refusal_code)


def _media_of(upload) -> tuple:
    name = PurePath(getattr(upload, "name", "") or "file").name
    content_type = (getattr(upload, "content_type", "") or mimetypes.guess_type(name)[0] or "").lower()
    return upload, name, content_type.split(";")[0].strip(), upload.size


def _check_media(channel: str, media: list[tuple]) -> None:
    spec = CHANNELS.get(channel)
    if not media or spec is None or not spec.replies:  # no reply at all there: _contact_point_for says so
        return
    rule, label = spec.media, spec.label
    if rule is None:
        raise SendRefused(
            _("%(channel)s replies cannot carry files; send the text alone.") % {"channel": label},
            code="attachment_type",
        )
    if len(media) > rule.max_files:
        raise SendRefused(
            ngettext(
                "%(channel)s takes %(max)d file per message; send them one by one.",
                "%(channel)s takes at most %(max)d files per message.",
                rule.max_files,
            )
            % {"channel": label, "max": rule.max_files},
            code="attachment_type",
        )
    for _upload, name, content_type, size in media:
        if content_type not in rule.types:
            raise SendRefused(
                _("%(channel)s does not accept “%(name)s” (%(type)s); send a PDF, an image or an Office document.")
                % {"channel": label, "name": name, "type": content_type or _("unknown type")},
                code="attachment_type",
            )
        limit = rule.max_per_type.get(content_type, rule.total_limit())
        if size > limit:
            raise SendRefused(
                _("“%(name)s” is %(size).1f MB; %(channel)s accepts up to %(max)d MB for this type.")
                % {"name": name, "size": size / MB, "channel": label, "max": limit // MB},
                code="attachment_too_large",
            )
    total = sum(item[3] for item in media)
    if total > rule.total_limit():
        raise SendRefused(
            _("The files add up to %(size).1f MB; %(channel)s accepts up to %(max)d MB per message.")
            % {"size": total / MB, "channel": label, "max": rule.total_limit() // MB},
            code="attachment_too_large",
        )


def _store_files(media: list[tuple]) -> list[Attachment]:
    """Each upload written to storage, as the attachment it will be (not saved yet)."""
    # No message id yet: a random stem names the files, the position orders them.
    stem = uuid.uuid4().hex
    files = []
    try:
        for position, (upload, name, content_type, size) in enumerate(media):
            attachment = Attachment(
                position=position,
                content_type=content_type,
                size=size,
                state=Attachment.State.STORED,
                file_name=name[:200],
            )
            extension = PurePath(name).suffix.lower() or mimetypes.guess_extension(content_type) or ""
            attachment.file.save(f"{stem}-{position}{extension}", upload, save=False)
            files.append(attachment)
    except BaseException:
        _delete_files(files)
        raise
    return files


def _delete_files(files: list[Attachment]) -> None:
    for attachment in files:
        name = attachment.file.name
        try:
            attachment.file.delete(save=False)
        except Exception:
            # The reply's own failure is what the caller must see; a stray file is only logged.
            logger.exception("Could not delete the stored file %s of a reply that was not sent.", name)


def _render(body: str, values: dict) -> str:
    return TEMPLATE_VARIABLE.sub(lambda match: values.get(match.group(1), match.group(0)), body)


def _checked_template_variables(template, thread, author, variables) -> dict:
    if not template.is_active:
        raise SendRefused(
            _("The template “%(name)s” is no longer active; choose another one.") % {"name": template.name},
            code="template_inactive",
        )
    if variables is None:
        variables = template_variables_for(template=template, thread=thread, advisor=author)
    values = {}
    for number in template_numbers(template):
        value = str(variables.get(number) or variables.get(int(number)) or "").strip()
        if not value:
            raise SendRefused(
                _("Fill in {{%(number)s}} of the template “%(name)s” before sending.")
                % {"number": number, "name": template.name},
                code="template_variables",
            )
        # WhatsApp refuses template parameters with line breaks, tabs or long runs of spaces.
        if re.search(r"[\n\r\t]| {5,}", value):
            raise SendRefused(
                _("{{%(number)s}} cannot contain line breaks, tabs or more than four spaces in a row.")
                % {"number": number},
                code="template_variables",
            )
        values[number] = value
    return values


# --- Delivery ------------------------------------------------------------------------


# The delivery path runs once per message in the worker: its statements are built once
# (see core/compiled.py for why; the outbound benchmark showed the same cost).
_message_for_delivery = PreparedQuery(
    lambda message_id: Message.objects.select_related("contact_point", "template", "email").filter(
        pk=message_id, direction=Message.Direction.OUTBOUND
    ),
    sentinels=(-7_346_183_023,),
)


class _Statement:
    """One SQL statement built once per database; identifiers come from model metadata
    (quoted), every value is a parameter."""

    def __init__(self, build):
        self.build = build
        self._sql: dict[str, str] = {}

    def __call__(self, params: list, using: str = "default"):
        connection = connections[using]
        if using not in self._sql:
            quote = connection.ops.quote_name
            self._sql[using] = self.build(
                lambda model, name=None: quote(model._meta.get_field(name).column if name else model._meta.db_table)
            )
        with connection.cursor() as cursor:
            cursor.execute(self._sql[using], params)
            return cursor.fetchall() if cursor.description else cursor.rowcount


def _build_claim(q) -> str:
    m = Message
    return (
        f"UPDATE {q(m)} SET {q(m, 'status')} = %s, {q(m, 'sending_at')} = %s, "  # noqa: S608
        f"{q(m, 'delivery_attempts')} = {q(m, 'delivery_attempts')} + 1 "
        f"WHERE {q(m, 'id')} = %s AND {q(m, 'status')} = %s"
    )


def _build_save_sid(q) -> str:
    m = Message
    return (
        f"UPDATE {q(m)} SET {q(m, 'provider')} = %s, {q(m, 'provider_message_id')} = %s "  # noqa: S608
        f"WHERE {q(m, 'id')} = %s AND {q(m, 'provider_message_id')} IS NULL"
    )


def _build_attachment_files(q) -> str:
    a = Attachment
    return (
        f"SELECT {q(a, 'id')}, {q(a, 'file')} FROM {q(a)} "  # noqa: S608
        f"WHERE {q(a, 'message')} = %s AND {q(a, 'file')} <> '' ORDER BY {q(a, 'position')}"
    )


_claim = _Statement(_build_claim)
_save_sid = _Statement(_build_save_sid)
_attachment_files = _Statement(_build_attachment_files)


def message_deliver(*, message_id: int) -> Message | None:
    """Hand one queued message to the provider, exactly once.

    Only the worker whose conditional UPDATE moves it from `queued` to `sending` calls
    the provider; a duplicate or replayed task finds it past `queued` and does nothing.
    """
    message = _message_for_delivery.first(message_id)
    if message is None:
        return None
    if message.status == Message.Status.SENDING and not message.provider_message_id:
        message = _reclaim_if_stale(message)
    if message.status != Message.Status.QUEUED:
        return message

    now = timezone.now()
    if not _claim([Message.Status.SENDING, now, message.pk, Message.Status.QUEUED]):
        return message
    message.status, message.sending_at = Message.Status.SENDING, now
    message.delivery_attempts += 1

    # The network call happens outside any transaction.
    spec = CHANNELS[message.channel]
    try:
        accepted = spec.provider.send(_outbound_request(message))
    except SendFailed as failure:
        return _after_failure(message, failure)
    if spec.after_send:
        enqueue(spec.after_send, message.pk, group="outbound")
    # A status callback carrying ?m=<id> may have set the id already: keep it.
    _save_sid([accepted.provider, accepted.provider_message_id, message.pk])
    message.provider, message.provider_message_id = accepted.provider, accepted.provider_message_id
    if STATUS_RANK.get(accepted.status, 0) > STATUS_RANK[Message.Status.SENDING]:
        # A provider whose acceptance is the handing over (an SMTP server's 250): `sent` now.
        message = message_status_apply(
            update=StatusUpdate(
                provider=accepted.provider, provider_message_id=accepted.provider_message_id, status=accepted.status
            )
        )
    return message


def _outbound_request(message: Message) -> OutboundRequest:
    media_urls = tuple(
        attachment_media_url(attachment_id=attachment_id, file_name=name)
        for attachment_id, name in _attachment_files([message.pk])
    )
    content_sid = message.template.content_sid if message.template_id else ""
    if message.choices and not content_sid:
        # A triage menu: its buttons, or (the provider refusing them) its numbered text.
        content_sid = menu_content_sid(choices=message.choices)
    return OutboundRequest(
        email=_outbound_email(message) if CHANNELS[message.channel].envelope else None,
        channel=message.channel,
        address=message.contact_point.address,
        body="" if content_sid else message.body,
        content_sid=content_sid,
        content_variables=message.template_variables if message.template_id else {},
        media_urls=media_urls,
        status_callback=f"{settings.PUBLIC_BASE_URL}/webhooks/twilio/status/?m={message.pk}",
    )


def _outbound_email(message: Message) -> OutboundEmail:
    headers = message.email
    files = tuple(
        OutboundFile(
            name=attachment.file_name or PurePath(attachment.file.name).name,
            content_type=attachment.content_type,
            path=attachment.file.name,
        )
        for attachment in message.attachments.order_by("position")
        if attachment.file
    )
    return OutboundEmail(
        message_id=headers.header_message_id,
        subject=headers.subject,
        from_name=headers.from_header,
        reply_to=headers.reply_to,
        in_reply_to=headers.in_reply_to,
        references=tuple(headers.reference_ids),
        html=render_to_string("conversations/email/reply.html", {"body": message.body, "sender": headers.from_header}),
        files=files,
    )


def _reclaim_if_stale(message: Message) -> Message:
    """A message left `sending` with no provider id: its call went unanswered or its worker
    died. If no status callback has matched it by now, the provider did not take it."""
    if message.sending_at and timezone.now() - message.sending_at < SENDING_STALE_AFTER:
        return message
    if not CHANNELS[message.channel].provider.confirms_by_callback:
        # Nothing can tell whether it went: never sent twice, the advisor decides.
        return _fail(
            message,
            code="",
            text=_("Sending was interrupted; the message may have been sent. Check before sending it again."),
        )
    if message.delivery_attempts >= MAX_DELIVERY_ATTEMPTS:
        return _fail(
            message,
            code="",
            text=_("Twilio never confirmed this message after %(attempts)d attempts; it was probably not sent.")
            % {"attempts": message.delivery_attempts},
        )
    requeued = Message.objects.filter(
        pk=message.pk,
        status=Message.Status.SENDING,
        provider_message_id__isnull=True,
        sending_at=message.sending_at,
    ).update(status=Message.Status.QUEUED)
    message.refresh_from_db(fields=["status", "provider", "provider_message_id", "delivery_attempts", "sending_at"])
    if requeued:
        logger.warning("Message %s was never confirmed by Twilio; sending it again.", message.pk)
    return message


def _after_failure(message: Message, failure: SendFailed) -> Message:
    if failure.ambiguous and not CHANNELS[message.channel].provider.confirms_by_callback:
        # No callback will tell whether it went: at most once, the advisor sees why.
        return _fail(message, code=failure.code, text=failure.message)
    if failure.ambiguous:
        # Twilio may have taken it: a status callback (?m=<id>) would tell. Check later, never resend now.
        _enqueue_delivery(message.pk, delay=AMBIGUOUS_CHECK_AFTER)
        logger.warning(
            "Message %s: no clear answer from Twilio (attempt %s); checking again in %ss.",
            message.pk,
            message.delivery_attempts,
            int(AMBIGUOUS_CHECK_AFTER.total_seconds()),
        )
        return message
    if failure.retryable:
        if message.delivery_attempts >= MAX_DELIVERY_ATTEMPTS:
            return _fail(
                message,
                code=failure.code,
                text=_("%(error)s Gave up after %(attempts)d attempts.")
                % {"error": failure.message, "attempts": message.delivery_attempts},
            )
        Message.objects.filter(pk=message.pk, status=Message.Status.SENDING, provider_message_id__isnull=True).update(
            status=Message.Status.QUEUED
        )
        message.status = Message.Status.QUEUED
        delay = RETRY_BACKOFF_SECONDS[min(message.delivery_attempts - 1, len(RETRY_BACKOFF_SECONDS) - 1)]
        _enqueue_delivery(message.pk, delay=timedelta(seconds=delay))
        logger.info(
            "Message %s: Twilio unavailable (%s, attempt %s); retry in %ss.",
            message.pk,
            failure.code or "no code",
            message.delivery_attempts,
            delay,
        )
        return message
    message = _fail(message, code=failure.code, text=failure.message)
    contact_point_opt_out_if_unsubscribed(message=message, error_code=failure.code)
    return message


def _fail(message: Message, *, code: str, text: str) -> Message:
    now = timezone.now()
    with transaction.atomic():
        updated = Message.objects.filter(
            pk=message.pk, status__in=[Message.Status.QUEUED, Message.Status.SENDING]
        ).update(status=Message.Status.FAILED, error_code=code[:16], error_message=text[:500], failed_at=now)
        if updated:
            message.status, message.error_code, message.error_message, message.failed_at = (
                Message.Status.FAILED,
                code[:16],
                text[:500],
                now,
            )
            thread = Thread.objects.select_related("customer").get(pk=message.thread_id)
            publish_event(
                type=Event.Type.MESSAGE_STATUS,
                thread=thread,
                payload=message_status_payload(message),
                audience=thread_audience(thread),
            )
    if updated:
        logger.warning("Message %s failed (Twilio error %s).", message.pk, code or "none")
    return message
