"""The email channel's adapter: reading a MIME message into provider-neutral parts, and
sending a reply through Django's email backend (anymail's ESP backend, or SMTP).

The only code that imports anymail, nh3 and mail-parser-reply (`make lint`). Nothing here
touches the database; conversations/services/email.py stores what this reads.
"""

import base64
import email
import email.policy
import functools
import hashlib
import html as html_lib
import logging
import re
import smtplib
import socket
from dataclasses import dataclass, field
from email.headerregistry import Address, HeaderRegistry
from email.message import EmailMessage
from email.utils import getaddresses, make_msgid

import nh3
from django.conf import settings
from django.core import mail, signing
from django.core.files.storage import default_storage
from django.utils.crypto import constant_time_compare
from django.utils.translation import gettext as _
from mailparser_reply.parser import EmailMessage as ReplyParserMessage

from conversations.providers.base import OutboundRequest, SendAccepted, SendFailed

logger = logging.getLogger(__name__)

PROVIDER = "email"
CHANNEL = "email"
# Stands for an inline image's URL in stored HTML until the inbox shows it (its attachment's position).
INLINE_SCHEME = "x-attitre-inline"
MB = 1024 * 1024
# What an email may carry, both ways: documents a bank's customers send, and images.
ALLOWED_MEDIA_TYPES = frozenset(
    {
        "application/pdf",
        "image/jpeg",
        "image/png",
        "image/gif",
        "image/webp",
        "image/heic",
        "text/plain",
        "text/csv",
        "application/msword",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.ms-excel",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.oasis.opendocument.text",
        "application/vnd.oasis.opendocument.spreadsheet",
    }
)
TOKEN_SALT = "attitre.email.reply-token"  # noqa: S105 (a signing salt, not a secret)
TOKEN_LENGTH = 24
# The local part's token: `<local>+t<thread id>.<hex signature>` (hex: some mail systems fold case).
TOKEN_PATTERN = re.compile(rf"\+t(\d+)\.([0-9a-f]{{{TOKEN_LENGTH}}})@", re.IGNORECASE)
NOISE_PRECEDENCE = frozenset({"bulk", "list", "junk"})
MAILER_DAEMONS = frozenset({"mailer-daemon", "postmaster"})
QUOTE_HEADER_WRAPPED = re.compile(r"^((?:Le|On) [^\n]*)\n([^\n]*(?:écrit|wrote)\s?:)[ \t]*$", re.MULTILINE)
HARD_BOUNCE = re.compile(r"^5\.\d{1,3}\.\d{1,3}$")


class _CachingHeaderRegistry(HeaderRegistry):
    """The stdlib's header objects, made once per distinct (name, value) of one email: the
    email API parses a header again on every read, and reading one email asks for its parts'
    Content-Type a score of times (a quarter of its parsing time). One registry per email, so
    that no email's headers outlive its reading."""

    def __init__(self):
        super().__init__()
        self.made = {}

    def __call__(self, name, value):
        key = (name, value)
        if key not in self.made:
            self.made[key] = super().__call__(name, value)
        return self.made[key]


def _policy() -> email.policy.EmailPolicy:
    """email.policy.default, reading headers through a cache of its own (one email's)."""
    return email.policy.default.clone(header_factory=_CachingHeaderRegistry())


class EmailRejected(Exception):
    """An email we cannot file (no usable sender); `reason` is safe to log and show."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class EmailPart:
    filename: str
    content_type: str
    content: bytes
    content_id: str = ""


@dataclass(frozen=True)
class DeliveryReport:
    """A delivery status notification (RFC 3464) about a message of ours."""

    original_message_id: str
    action: str
    status: str
    diagnostic: str

    @property
    def hard(self) -> bool:
        return self.action == "failed" and bool(HARD_BOUNCE.match(self.status))


@dataclass(frozen=True)
class ParsedEmail:
    sender: str
    sender_name: str
    recipients: tuple[str, ...]
    message_id: str
    in_reply_to: str
    references: tuple[str, ...]
    subject: str
    from_header: str
    to_header: str
    cc_header: str
    reply_to: str
    text: str
    full_text: str
    html: str
    parts: tuple[EmailPart, ...] = ()
    noise: str = ""
    report: DeliveryReport | None = None
    extra: dict = field(default_factory=dict)


def provider_message_id(message_id: str) -> str:
    """The key an email is stored under (Message.provider_message_id holds 64 characters,
    a Message-ID up to 998): the same email from a webhook and from IMAP is one message."""
    return hashlib.sha256(message_id.strip().strip("<>").lower().encode()).hexdigest()


def normalize_address(raw: str) -> str:
    """`Camille.Martin@EXAMPLE.fr` → `camille.martin@example.fr`; an internationalised domain
    in its ASCII (IDNA) form, so that both spellings are one contact point."""
    value = (raw or "").strip().strip("<>").strip()
    local, at, domain = value.rpartition("@")
    if not at or not local or not domain or any(c.isspace() for c in value):
        raise EmailRejected(_("“%(address)s” is not an email address.") % {"address": value[:100]})
    try:
        domain = domain.rstrip(".").encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise EmailRejected(_("“%(address)s” has a domain that is not valid.") % {"address": value[:100]}) from exc
    return f"{local}@{domain}".lower()


# --- Reply addresses -----------------------------------------------------------------


def _token_signature(thread_id: int) -> str:
    signature = signing.Signer(salt=TOKEN_SALT).signature(str(thread_id))
    return base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)).hex()[:TOKEN_LENGTH]


def reply_address(thread_id: int) -> str:
    """The per-thread Reply-To: `conseil+t12.<signature>@banque.example`."""
    local, _at, domain = settings.EMAIL_REPLY_ADDRESS.rpartition("@")
    return f"{local}+t{thread_id}.{_token_signature(thread_id)}@{domain}"


def thread_id_from_recipients(recipients) -> int | None:
    """The thread a reply address among `recipients` names, if its signature is ours."""
    for recipient in recipients:
        match = TOKEN_PATTERN.search(recipient or "")
        if match and constant_time_compare(match.group(2).lower(), _token_signature(int(match.group(1)))):
            return int(match.group(1))
    return None


# --- Reading -------------------------------------------------------------------------


def _header(message: EmailMessage, name: str) -> str:
    try:
        value = message.get(name, "")
    except (ValueError, IndexError, TypeError):  # a header the parser cannot decode: its raw form
        value = next((raw for key, raw in message.raw_items() if key.lower() == name.lower()), "")
    return re.sub(r"\s+", " ", str(value or "")).strip()


def _ids(value: str) -> tuple[str, ...]:
    return tuple(found.strip() for found in re.findall(r"<([^<>\s]+)>", value or ""))


def _noise(message: EmailMessage, sender: str) -> str:
    auto = _header(message, "Auto-Submitted").lower()
    if auto and auto != "no":
        return "auto_reply"
    if _header(message, "X-Autoreply") or _header(message, "X-Autorespond"):
        return "auto_reply"
    if _header(message, "Precedence").lower() in NOISE_PRECEDENCE or _header(message, "List-Id"):
        return "bulk"
    if sender.partition("@")[0] in MAILER_DAEMONS:
        return "mailer_daemon"
    return ""


def _delivery_report(message: EmailMessage) -> DeliveryReport | None:
    if message.get_content_type() != "multipart/report":
        return None
    action = status = diagnostic = original = ""
    for part in message.walk():
        kind = part.get_content_type()
        if kind == "message/delivery-status":
            # Its body is groups of header fields: the first is the message's, then one per recipient.
            for group in part.get_payload() if part.is_multipart() else []:
                action = action or str(group.get("Action", "")).strip().lower()
                status = status or str(group.get("Status", "")).strip()
                diagnostic = diagnostic or str(group.get("Diagnostic-Code", "")).strip()
                original = original or _ids(str(group.get("Original-Envelope-Id", "")))
        elif kind in ("message/rfc822", "text/rfc822-headers"):
            inner = part.get_payload()[0] if part.is_multipart() else email.message_from_string(part.get_content())
            original = _ids(_header(inner, "Message-ID")) or original
    if not original:
        return None
    return DeliveryReport(original_message_id=original[0], action=action, status=status, diagnostic=diagnostic[:300])


def _text_of(part) -> str:
    try:
        return part.get_content()
    except (LookupError, UnicodeError, KeyError):  # an unknown or lying charset
        return (part.get_payload(decode=True) or b"").decode("utf-8", errors="replace")


def html_to_text(html: str) -> str:
    """A readable text of an HTML-only email, for the timeline and the preview."""
    marked = re.sub(r"(?i)<br\s*/?>|</(p|div|li|tr|h\d|blockquote)>", "\n", html)
    marked = re.sub(r"(?is)<(style|script|head)[^>]*>.*?</\1>", "", marked)
    text = html_lib.unescape(nh3.clean(marked, tags=set()))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(line.strip() for line in text.splitlines())).strip()


def sanitise_html(html: str, *, inline_urls: dict[str, str] | None = None) -> str:
    """The sender's HTML made safe to show: no script, no event handler, no style (CSS
    expressions), no `javascript:` URL, and no remote image (it would tell the sender the
    email was read); `cid:` images point at our copies (`inline_urls`: content id → URL)."""
    inline_urls = inline_urls or {}

    def attribute(element: str, name: str, value: str) -> str | None:
        if element == "img" and name == "src":
            if value.lower().startswith("cid:"):
                return inline_urls.get(value[4:].strip("<>"))
            return None
        return value

    return nh3.clean(
        html,
        # cid: is let through to the filter above, which maps it to our copy or drops it.
        url_schemes={"http", "https", "mailto", "cid", INLINE_SCHEME},
        attribute_filter=attribute,
        link_rel="noopener noreferrer nofollow",
        set_tag_attribute_values={"a": {"target": "_blank"}},
    )


@functools.cache
def _reply_header_pattern() -> re.Pattern:
    """mail-parser-reply's pattern of a quote's header ("Le … a écrit :", "On … wrote:",
    "De :", Outlook's separators), French and English, built once (it is long)."""
    return ReplyParserMessage(text="", languages=["fr", "en"]).HEADER_REGEX


def _header_matches(pattern: re.Pattern, text: str):
    """`pattern.finditer(text)`, tried only where one of its matches can begin: every
    alternative of the quote-header pattern starts at a line's start (`^`) or on a newline
    (`\n`), so trying those few hundred places finds the same matches, in the same order, as
    trying all 20,000 of a long reply (a tenth of the server's time per email, measured)."""
    starts = [0]
    for newline in re.finditer("\n", text):
        starts += (newline.start(), newline.start() + 1)
    position = 0
    for start in starts:
        if start < position:
            continue
        match = pattern.match(text, start)
        if match is not None:
            yield match
            position = max(match.end(), start + 1)


def strip_quoted(text: str) -> str:
    """The latest reply of a text, without the quoted message and the signature (French
    and English headers: "Le … a écrit :", "On … wrote:", Outlook's separators)."""
    # Gmail wraps its long "Le …, X <x@…> a écrit :" line in two: joined, the parser knows it.
    text = QUOTE_HEADER_WRAPPED.sub(r"\1 \2", text)
    # mail-parser-reply's reading of the latest reply (EmailMessage.read().latest_reply): the
    # text up to the first quote header with text before it. Its reading of the fragments
    # after that one (their signatures and disclaimers, by long patterns) is not needed here:
    # it cost more than half of a 20 KB reply's time.
    normalized = ReplyParserMessage(text=text, languages=["fr", "en"]).text
    current = 0
    for match in _header_matches(_reply_header_pattern(), normalized):
        for header in match.groups():
            if not header:
                continue
            position = normalized.find(header, current + 1 if current > 0 else current)
            reply = normalized[current:position].strip()
            if reply:
                return reply
            current = position if position >= 0 else 0
    return normalized[current:].strip() or text.strip()


def parse_email(
    raw: bytes, *, envelope_recipients: tuple[str, ...] = (), message: EmailMessage | None = None
) -> ParsedEmail:
    """Read one raw email; `envelope_recipients` are those the ESP or the mailbox says it was
    delivered to (RCPT TO), which headers may not show; `message`, the same email already
    parsed (anymail parses it before its signal: not parsed twice). Raises EmailRejected
    when it has no usable sender."""
    policy = _policy()
    if message is None:
        message = email.message_from_bytes(raw, policy=policy)
    else:
        for part in message.walk():
            part.policy = policy
    addresses = getaddresses([_header(message, "From")])
    if not addresses or not addresses[0][1]:
        raise EmailRejected(_("The email has no sender address (From)."))
    sender_name, sender_raw = addresses[0]
    sender = normalize_address(sender_raw)
    recipients = tuple(
        address
        for header in ("To", "Cc", "Delivered-To", "X-Original-To", "Envelope-To")
        for _name, address in getaddresses([str(value) for value in message.get_all(header) or []])
        if address
    ) + tuple(recipient for recipient in envelope_recipients if recipient)
    message_ids = _ids(_header(message, "Message-ID"))
    # No Message-ID (rare, but legal): the content names it, so a redelivery is still the same email.
    message_id = message_ids[0] if message_ids else f"{hashlib.sha256(raw).hexdigest()}@no-message-id"

    plain, html, parts = "", "", []
    body = message.get_body(preferencelist=("plain", "html"))
    if body is not None and body.get_content_type() == "text/plain":
        plain = _text_of(body)
    html_part = message.get_body(preferencelist=("html",))
    if html_part is not None:
        html = _text_of(html_part)
    for part in message.iter_attachments() if message.is_multipart() else ():
        if part.is_multipart() or part.get_content_type() in ("message/delivery-status", "text/rfc822-headers"):
            continue
        content = part.get_payload(decode=True)
        if content is None:
            continue
        parts.append(
            EmailPart(
                filename=(part.get_filename() or "")[:200],
                content_type=part.get_content_type().lower(),
                content=content,
                content_id=_header(part, "Content-ID").strip("<>"),
            )
        )
    # Inline images of a multipart/related body come through iter_parts of the related part.
    if html_part is not None:
        for related in message.walk():
            if related.get_content_type() != "multipart/related":
                continue
            for part in related.iter_parts():
                cid = _header(part, "Content-ID").strip("<>")
                if part is html_part or not cid or any(p.content_id == cid for p in parts):
                    continue
                content = part.get_payload(decode=True)
                if content is not None:
                    parts.append(
                        EmailPart(
                            filename=(part.get_filename() or cid)[:200],
                            content_type=part.get_content_type().lower(),
                            content=content,
                            content_id=cid,
                        )
                    )

    full_text = plain if plain.strip() else (html_to_text(html) if html else "")
    return ParsedEmail(
        sender=sender,
        sender_name=sender_name[:200],
        recipients=recipients,
        message_id=message_id[:998],
        in_reply_to=(_ids(_header(message, "In-Reply-To")) or ("",))[0][:998],
        references=_ids(_header(message, "References")),
        subject=_header(message, "Subject")[:998],
        from_header=_header(message, "From")[:998],
        to_header=_header(message, "To"),
        cc_header=_header(message, "Cc"),
        reply_to=_header(message, "Reply-To")[:998],
        text=strip_quoted(full_text) if full_text else "",
        full_text=full_text.strip(),
        html=html,
        parts=tuple(parts),
        noise=_noise(message, sender),
        report=_delivery_report(message),
    )


# --- Sending -------------------------------------------------------------------------


def new_message_id() -> str:
    """A Message-ID on our domain, without its angle brackets."""
    domain = settings.EMAIL_FROM_ADDRESS.rpartition("@")[2] or "localhost"
    return make_msgid(domain=domain).strip("<>")


def reply_subject(subject: str) -> str:
    subject = (subject or "").strip()
    if re.match(r"(?i)^(re|tr|fwd?|aw)\s*:", subject):
        return subject
    return f"Re: {subject}" if subject else subject


@dataclass(frozen=True)
class EmailChannel:
    """Sends a reply through Django's email backend (settings.EMAIL_BACKEND): anymail's ESP
    backend in production, SMTP otherwise. An accepted message is `sent`; the ESP's tracking
    webhooks move it on. A call the server did not answer is never made again (at most once)."""

    name: str = PROVIDER
    confirms_by_callback: bool = False

    def send(self, request: OutboundRequest) -> SendAccepted:
        envelope = request.email
        sender = str(Address(display_name=envelope.from_name, addr_spec=settings.EMAIL_FROM_ADDRESS))
        headers = {"Message-ID": f"<{envelope.message_id}>"}
        if envelope.in_reply_to:
            headers["In-Reply-To"] = f"<{envelope.in_reply_to}>"
        if envelope.references:
            headers["References"] = " ".join(f"<{ref}>" for ref in envelope.references)
        connection = mail.get_connection(timeout=settings.EMAIL_TIMEOUT)
        message = mail.EmailMultiAlternatives(
            subject=envelope.subject,
            body=request.body,
            from_email=sender,
            to=[request.address],
            reply_to=[envelope.reply_to],
            headers=headers,
            connection=connection,
        )
        if envelope.html:
            message.attach_alternative(envelope.html, "text/html")
        for file in envelope.files:
            with default_storage.open(file.path, "rb") as handle:
                message.attach(file.name, handle.read(), file.content_type)
        try:
            message.send()
        except smtplib.SMTPRecipientsRefused as exc:
            code, reason = next(iter(exc.recipients.values()), (550, b""))
            raise _smtp_failure(code, reason) from exc
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
            raise _smtp_failure(exc.smtp_code, exc.smtp_error) from exc
        except (smtplib.SMTPConnectError, ConnectionRefusedError, socket.gaierror) as exc:
            raise SendFailed(
                code="", message=_("The mail server could not be reached; retrying."), retryable=True
            ) from exc
        except (TimeoutError, smtplib.SMTPServerDisconnected, ConnectionError) as exc:
            raise SendFailed(
                code="",
                message=_("The mail server did not answer; the email may have been sent. Check before sending again."),
                ambiguous=True,
            ) from exc
        except Exception as exc:
            raise _esp_failure(exc) from exc
        status = getattr(message, "anymail_status", None)
        esp_id = getattr(status, "message_id", None) if status is not None else None
        return SendAccepted(
            provider=PROVIDER,
            provider_message_id=str(esp_id).strip().strip("<>")[:64]
            if esp_id
            else provider_message_id(envelope.message_id),
            status="sent",
        )


def _smtp_failure(code: int, reason) -> SendFailed:
    if 400 <= int(code or 0) < 500:
        return SendFailed(
            code=f"smtp {code}",
            message=_("The mail server is busy (%(code)s); retrying.") % {"code": code},
            retryable=True,
        )
    # Never the server's text: it may quote the address, and it is not for the advisor.
    logger.info("The mail server refused an email (SMTP %s).", code)
    return SendFailed(
        code=f"smtp {code}",
        message=_("The mail server refused this email (SMTP %(code)s): check the customer's address.") % {"code": code},
    )


def _esp_failure(exc: Exception) -> SendFailed:
    """anymail's errors, read by their class name and status so that this module alone knows anymail."""
    from anymail.exceptions import AnymailAPIError, AnymailRecipientsRefused

    if isinstance(exc, AnymailRecipientsRefused):
        return SendFailed(code="refused", message=_("The email service refused the customer's address."))
    if isinstance(exc, AnymailAPIError):
        status = getattr(exc, "status_code", None)
        cause = exc.__cause__
        if (
            status is None
            and cause is not None
            and "Timeout" in type(cause).__name__
            and "Connect" not in type(cause).__name__
        ):
            return SendFailed(
                code="",
                message=_(
                    "The email service did not answer; the email may have been sent. Check before sending again."
                ),
                ambiguous=True,
            )
        if status is None or status == 429 or status >= 500:
            return SendFailed(
                code=str(status or ""), message=_("The email service is unavailable; retrying."), retryable=True
            )
        return SendFailed(
            code=str(status),
            message=_("The email service refused this email (HTTP %(status)s).") % {"status": status},
        )
    raise exc


# --- ESP webhooks (anymail) ------------------------------------------------------------

# anymail's tracking events → our delivery statuses (forward only, as Twilio's callbacks).
TRACKING_STATUSES = {
    "queued": "sent",
    "sent": "sent",
    "delivered": "delivered",
    "opened": "read",
    "clicked": "read",
    "bounced": "undelivered",
    "rejected": "failed",
    "failed": "failed",
}
# Tracking events that withdraw consent to email.
TRACKING_OPT_OUTS = frozenset({"complained", "unsubscribed"})


@dataclass(frozen=True)
class TrackingEvent:
    provider_message_id: str
    event_type: str
    status: str
    reason: str


# The form field in which an ESP that posts the email as it came (a form post) puts it.
RAW_MIME_FIELDS = {"mailgun": "body-mime", "sendgrid": "email"}


def _original_mime(event, esp_name: str) -> bytes | None:
    """The email exactly as the ESP received it, where the ESP posts it whole: kept for audit
    as it came, and not written out again from anymail's parse (a few ms for 200 KB)."""
    field_name = RAW_MIME_FIELDS.get(esp_name)
    post = getattr(event.esp_event, "POST", None)
    if field_name is None or post is None or field_name not in post:
        return None
    # anymail parses the same str encoded as UTF-8 (the form's charset).
    return post[field_name].encode("utf-8")


def connect_webhooks(*, on_inbound, on_tracking) -> None:
    """Hand anymail's `inbound` signal to `on_inbound(raw: bytes, source: str, envelope_recipient: str,
    message: EmailMessage)` (`message`: `raw` as anymail parsed it) and its
    `tracking` signal to `on_tracking(event: TrackingEvent)`. anymail has verified the
    request (basic auth, the ESP's signature) before either is sent; what they raise
    becomes a 500, which the ESP retries."""
    from anymail.exceptions import AnymailWebhookValidationFailure
    from anymail.signals import inbound, tracking

    def require_secret():
        # anymail only warns when the webhook secret is missing, and some ESPs sign nothing:
        # without it, anyone could post an email into a customer's thread.
        if not getattr(settings, "ANYMAIL", {}).get("WEBHOOK_SECRET"):
            raise AnymailWebhookValidationFailure("ANYMAIL_WEBHOOK_SECRET is not set: email webhooks are refused.")

    def inbound_received(sender, event, esp_name, **kwargs):
        require_secret()
        message = event.message
        on_inbound(
            _original_mime(event, str(esp_name).lower()) or message.as_bytes(),
            str(esp_name).lower(),
            getattr(message, "envelope_recipient", None) or "",
            message,
        )

    def tracking_received(sender, event, esp_name, **kwargs):
        require_secret()
        if not event.message_id:
            return
        on_tracking(
            TrackingEvent(
                # Mailgun's ids come in angle brackets, as anymail's send status has them: both stripped.
                provider_message_id=str(event.message_id).strip().strip("<>")[:64],
                event_type=str(event.event_type),
                status=TRACKING_STATUSES.get(str(event.event_type), ""),
                # The ESP's category (e.g. "bounced", "spam"), never the MTA's text: it may quote the address.
                reason=str(event.reject_reason or ""),
            )
        )

    inbound.connect(inbound_received, weak=False, dispatch_uid="attitre.email.inbound")
    tracking.connect(tracking_received, weak=False, dispatch_uid="attitre.email.tracking")
