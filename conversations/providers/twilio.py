"""The Twilio adapter: webhook signatures, webhook payloads, media downloads, templates,
and sending on the channels it carries (`TwilioChannel`, set up in registry.py).

This package is the only place that imports `twilio`.
"""

import functools
import json
import logging
import re
import ssl
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from urllib.parse import urlencode, urljoin, urlsplit

import requests
import urllib3
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http import HttpClient
from twilio.http.response import Response
from twilio.request_validator import SIGNATURE_SETTINGS_HEADER, RequestValidator, get_signature_algorithm
from twilio.rest import Client
from twilio.rest.content.v1.content import ContentList
from urllib3.exceptions import ConnectTimeoutError

from conversations.providers.base import (
    ContentTemplate,
    InboundMedia,
    InboundMessage,
    MediaRefused,
    MediaUnavailable,
    OutboundRequest,
    SendAccepted,
    SendFailed,
    StatusUpdate,
    WebhookRejected,
)
from crm.addresses import parse_twilio_address
from crm.models import ContactPoint

logger = logging.getLogger(__name__)

PROVIDER = "twilio"
SIGNATURE_HEADER = "X-Twilio-Signature"
SIGNATURE_SETTINGS = SIGNATURE_SETTINGS_HEADER
MAX_MEDIA_ITEMS = 10

# What WhatsApp accepts (Twilio's and Meta's lists); SMS/MMS media outside it is refused too.
ALLOWED_MEDIA_TYPES = frozenset(
    {
        "image/jpeg",
        "image/png",
        "image/webp",
        "audio/ogg",
        "audio/amr",
        "audio/3gpp",
        "audio/aac",
        "audio/mpeg",
        "audio/mp4",
        "video/mp4",
        "video/3gpp",
        "application/pdf",
        "application/msword",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.ms-excel",
        "application/vnd.ms-powerpoint",
        "text/vcard",
        "text/x-vcard",
    }
)


def public_url(path: str, query_string: str = "") -> str:
    """The URL Twilio called, rebuilt from PUBLIC_BASE_URL (we may sit behind a TLS proxy)."""
    url = settings.PUBLIC_BASE_URL + path
    return f"{url}?{query_string}" if query_string else url


def signature_is_valid(*, url: str, params, signature: str, signature_settings: str = "") -> bool:
    """Check X-Twilio-Signature with the twilio library over the public URL and POST params."""
    if not signature:
        return False
    algorithm = get_signature_algorithm(signature_settings)
    secret = settings.TWILIO_AUTH_TOKEN
    if signature_settings and settings.TWILIO_WEBHOOK_SHARED_KEY:
        secret = settings.TWILIO_WEBHOOK_SHARED_KEY
    if not secret:
        logger.error("Twilio webhook refused: TWILIO_AUTH_TOKEN is not configured.")
        return False
    return RequestValidator(secret).validate(url, params, signature, algorithm)


def sign(*, url: str, params, auth_token: str | None = None) -> str:
    """X-Twilio-Signature for a request, as Twilio computes it (used by the simulator and tests)."""
    return RequestValidator(auth_token or settings.TWILIO_AUTH_TOKEN).compute_signature(url, params)


def _decimal(value: str) -> Decimal | None:
    if not value:
        return None
    try:
        number = Decimal(value)
    except InvalidOperation:
        return None
    return number if number.is_finite() and abs(number) <= 180 else None


def _printable(value: str | None) -> str | None:
    return value.replace("\x00", "\ufffd") if value and "\x00" in value else value


# Twilio's identifiers: two letters naming the kind, then 32 hexadecimal digits. Checked
# before anything is stored, because Twilio's signature concatenates names and values
# without separators: a captured request re-cut as `MessageSid=SM…MessageTypetext` keeps
# its signature, and only the identifier's format tells it from Twilio's.
_SID_FORMATS = {
    "MessageSid": re.compile(r"(SM|MM)[0-9a-fA-F]{32}"),
    "SmsMessageSid": re.compile(r"(SM|MM)[0-9a-fA-F]{32}"),
    "SmsSid": re.compile(r"(SM|MM)[0-9a-fA-F]{32}"),
    "AccountSid": re.compile(r"AC[0-9a-fA-F]{32}"),
    "MessagingServiceSid": re.compile(r"MG[0-9a-fA-F]{32}"),
    "OriginalRepliedMessageSid": re.compile(r"(SM|MM)[0-9a-fA-F]{32}"),
    "ChannelInstallSid": re.compile(r"XE[0-9a-fA-F]{32}"),
}
_WA_ID = re.compile(r"[0-9]{1,32}")


def _check_identifiers(raw: dict) -> None:
    """Every identifier Twilio sends, when present, in Twilio's format; else a 400 naming it."""
    for name, pattern in _SID_FORMATS.items():
        value = raw.get(name)
        if value and not pattern.fullmatch(value):
            raise WebhookRejected(400, f"{name} is not a Twilio identifier.")
    wa_id = raw.get("WaId")
    if wa_id and not _WA_ID.fullmatch(wa_id):
        raise WebhookRejected(400, "WaId is not a WhatsApp number.")


def parse_inbound(params) -> InboundMessage:
    """Twilio's inbound-message webhook parameters → InboundMessage; unknown ones are kept in `raw`.

    A NUL character, which PostgreSQL cannot store in text, becomes U+FFFD: the message is
    kept, with a visible mark where the customer's phone sent something unprintable.
    """
    raw = {_printable(key): _printable(params.get(key)) for key in params.keys()}
    sid = (raw.get("MessageSid") or raw.get("SmsMessageSid") or "").strip()
    if not sid:
        raise WebhookRejected(400, "MessageSid is missing.")
    _check_identifiers(raw)
    sender = raw.get("From") or ""
    if not sender.strip():
        raise WebhookRejected(400, "From is missing.")
    try:
        channel, address = parse_twilio_address(sender)
    except ValidationError as exc:
        raise WebhookRejected(400, f"From is not a phone number: {exc.messages[0]}") from exc

    try:
        num_media = int(raw.get("NumMedia") or 0)
    except ValueError as exc:
        raise WebhookRejected(400, "NumMedia is not a number.") from exc
    media = []
    for index in range(min(max(num_media, 0), MAX_MEDIA_ITEMS)):
        url = raw.get(f"MediaUrl{index}") or ""
        if url:
            media.append(InboundMedia(url=url, content_type=(raw.get(f"MediaContentType{index}") or "").lower()))

    return InboundMessage(
        provider=PROVIDER,
        provider_message_id=sid,
        channel=channel,
        address=address,
        body=raw.get("Body") or "",
        profile_name=(raw.get("ProfileName") or "")[:200],
        wa_id=(raw.get("WaId") or "")[:32],
        media=tuple(media),
        latitude=_decimal(raw.get("Latitude") or ""),
        longitude=_decimal(raw.get("Longitude") or ""),
        location_address=(raw.get("Address") or "")[:500],
        location_label=(raw.get("Label") or "")[:200],
        # A quick reply's tap carries ButtonText/ButtonPayload; a list picker's, ListTitle/ListId.
        button_text=(raw.get("ButtonText") or raw.get("ListTitle") or "")[:200],
        button_payload=(raw.get("ButtonPayload") or raw.get("ListId") or "")[:500],
        replied_to_provider_id=(raw.get("OriginalRepliedMessageSid") or "")[:64],
        raw=raw,
    )


def parse_status(params, query) -> StatusUpdate:
    """A status callback → StatusUpdate. `query` may carry our own message id as `m`."""
    raw = {key: params.get(key) for key in params.keys()}
    sid = (raw.get("MessageSid") or raw.get("SmsSid") or "").strip()
    status = (raw.get("MessageStatus") or raw.get("SmsStatus") or "").strip().lower()
    if not sid and not query.get("m"):
        raise WebhookRejected(400, "MessageSid is missing.")
    if not status:
        raise WebhookRejected(400, "MessageStatus is missing.")
    _check_identifiers(raw)
    our_id = query.get("m") or ""
    error_code = (raw.get("ErrorCode") or "").strip()
    return StatusUpdate(
        provider=PROVIDER,
        provider_message_id=sid[:64],
        status=status,
        our_message_id=int(our_id) if our_id.isdigit() else None,
        error_code=error_code[:16],
        error_message=(raw.get("ChannelStatusMessage") or raw.get("ErrorMessage") or _callback_reason(raw, error_code))[
            :500
        ],
        raw=raw,
    )


def _callback_reason(raw: dict, error_code: str) -> str:
    if not error_code.isdigit():
        return ""
    # The channel is the prefix of Twilio's address (`whatsapp:+33…`); a bare number is SMS.
    prefix = (raw.get("From") or "").rpartition(":")[0]
    channel = raw.get("ChannelPrefix") or prefix or ContactPoint.Kind.SMS
    return error_reason(code=int(error_code), channel=channel)


def _media_hosts() -> set[str]:
    hosts = set(settings.TWILIO_MEDIA_HOSTS)
    hosts.add(urlsplit(settings.TWILIO_API_BASE_URL).hostname or "")
    return {host.lower() for host in hosts if host}


def check_media_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or (parts.hostname or "").lower() not in _media_hosts():
        raise MediaRefused(f"media host {parts.hostname or '?'} is not Twilio's")
    if parts.scheme == "http" and parts.hostname != urlsplit(settings.TWILIO_API_BASE_URL).hostname:
        raise MediaRefused("media URL is not https")


@functools.cache
def _tls_context() -> ssl.SSLContext:
    # Loading the CA bundle costs ~0.1 s: once per process, not once per connection pool.
    return ssl.create_default_context()


def download_media(*, url: str, declared_type: str) -> tuple[bytes, str]:
    """Fetch one media file with the account's credentials; returns (content, content type).

    Refuses hosts other than Twilio's, types WhatsApp does not accept and files over
    TWILIO_MEDIA_MAX_BYTES, reading no more than that limit.
    """
    check_media_url(url)
    limit = settings.TWILIO_MEDIA_MAX_BYTES
    try:
        with _media_response(url) as response:
            if response.status_code in (404, 410):
                raise MediaRefused(f"media is gone (HTTP {response.status_code})")
            if response.status_code >= 400:
                raise MediaUnavailable(f"HTTP {response.status_code}")
            content_type = (response.headers.get("content-type") or declared_type).split(";")[0].strip().lower()
            if content_type not in ALLOWED_MEDIA_TYPES:
                raise MediaRefused(f"content type {content_type or '?'} is not accepted")
            declared_length = response.headers.get("content-length")
            if declared_length and declared_length.isdigit() and int(declared_length) > limit:
                raise MediaRefused(f"file is larger than {limit // (1024 * 1024)} MB")
            chunks, size = [], 0
            for chunk in response.iter_content(chunk_size=64 * 1024):
                size += len(chunk)
                if size > limit:
                    raise MediaRefused(f"file is larger than {limit // (1024 * 1024)} MB")
                chunks.append(chunk)
    except requests.RequestException as exc:
        raise MediaUnavailable(type(exc).__name__) from exc
    return b"".join(chunks), content_type


MAX_MEDIA_REDIRECTS = 3


def _media_response(url: str) -> requests.Response:
    """The media file's response, following Twilio's redirect to its CDN by hand: each hop
    is checked as the first was (Twilio's hosts only, https), so an allowed host answering
    `302 → http://localhost/…` leads nowhere; the credentials go to the first host only."""
    first_host = urlsplit(url).hostname
    auth = (settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN)
    for _hop in range(MAX_MEDIA_REDIRECTS + 1):
        response = requests.get(
            url,
            auth=auth if urlsplit(url).hostname == first_host else None,
            timeout=(5, 10),
            stream=True,
            allow_redirects=False,
        )
        if not response.is_redirect:
            return response
        response.close()
        url = urljoin(url, response.headers["location"])
        try:
            check_media_url(url)
        except MediaRefused as exc:
            raise MediaRefused(f"redirected: {exc}") from exc
    raise MediaRefused(f"more than {MAX_MEDIA_REDIRECTS} redirects")


# --- Sending ----------------------------------------------------------------------

DEFAULT_API_BASE_URL = "https://api.twilio.com"
DEFAULT_CONTENT_BASE_URL = "https://content.twilio.com"
RETRYABLE_CODES = frozenset({63018, 20429})
RECIPIENT_CODES = frozenset({21211, 63003, 63024})


class _Urllib3HttpClient(HttpClient):
    """The SDK's HTTP calls, made with urllib3 (under requests, which the SDK uses by default).

    requests spends about 1.8 ms of CPU per call to Twilio, urllib3 alone 0.8 ms, on the
    reference machine: a tenth of a delivered message's CPU in bench/outbound.py. What
    requests added that we need is kept: the environment's proxy (read once), TLS
    verification, basic auth, form encoding with repeated keys (MediaUrl). Nothing is
    retried here and redirects are not followed: the delivery task decides what a failure
    means. Requests are never logged (they carry the message's text).
    """

    def __init__(self, *, timeout: float, proxies: dict[str, str]):
        super().__init__(logging.getLogger(f"{__name__}.sdk"), False, timeout)
        proxy = proxies.get("https") or proxies.get("http")
        options = {"retries": False, "maxsize": 8, "ssl_context": _tls_context()}
        self.pool = urllib3.ProxyManager(proxy, **options) if proxy else urllib3.PoolManager(**options)

    def request(
        self, method, url, params=None, data=None, headers=None, auth=None, timeout=None, allow_redirects=False
    ) -> Response:
        headers = dict(headers or {})
        if auth:
            headers.update(urllib3.util.make_headers(basic_auth=f"{auth[0]}:{auth[1]}"))
        if params:
            url = f"{url}?{urlencode(params, doseq=True)}"
        body = None
        if data:
            if headers.get("Content-Type") == "application/json":
                body = json.dumps(data)
            else:
                body = urlencode(data, doseq=True)
                headers["Content-Type"] = "application/x-www-form-urlencoded"
        timeout = timeout or self.timeout
        answer = self.pool.request(
            method.upper(),
            url,
            body=body,
            headers=headers,
            timeout=urllib3.Timeout(connect=timeout, read=timeout),
            redirect=allow_redirects,
        )
        return Response(answer.status, answer.data.decode("utf-8", errors="replace"), dict(answer.headers))


@functools.lru_cache(maxsize=4)
def _client(account_sid: str, auth_token: str, api_base: str, content_base: str, timeout: float) -> Client:
    # One client (and its HTTP connection pool) per process and configuration. The proxy
    # comes from the environment (HTTPS_PROXY, NO_PROXY), read here once.
    http_client = _Urllib3HttpClient(timeout=timeout, proxies=_environment_proxies(api_base, content_base))
    client = Client(account_sid, auth_token, http_client=http_client)
    client.api.base_url = api_base
    client.content.base_url = content_base
    return client


def preload() -> None:
    """Import what the SDK imports lazily on a client's first use (about a hundred modules:
    the Messages and Content resources), without any network call. Called at start-up,
    so that django-q2's workers, forked from the cluster's process, inherit them instead
    of each paying the import on its first delivery, and again after every recycle."""
    preloading = Client("AC" + "0" * 32, "preload", http_client=HttpClient(logger, False))
    _ = preloading.api.v2010.account.messages, preloading.content.v1.contents


def _environment_proxies(*urls: str) -> dict[str, str]:
    """The proxies the environment sets (HTTPS_PROXY…), unless NO_PROXY exempts every URL."""
    proxies = {}
    for url in urls:
        proxies.update(requests.utils.get_environ_proxies(url))
    return proxies


def client() -> Client:
    """The twilio SDK's client, pointed at TWILIO_API_BASE_URL, with an explicit timeout."""
    api_base = settings.TWILIO_API_BASE_URL
    content_base = settings.TWILIO_CONTENT_BASE_URL or (
        DEFAULT_CONTENT_BASE_URL if api_base == DEFAULT_API_BASE_URL else api_base
    )
    return _client(
        settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN, api_base, content_base, settings.TWILIO_API_TIMEOUT
    )


@dataclass(frozen=True)
class TwilioChannel:
    """A channel Twilio carries, as the channel registry sets it up: how Twilio writes its
    addresses (`whatsapp:+33…`, a bare number for SMS) and which setting names the bank's
    number on it."""

    address_prefix: str
    sender_setting: str
    name: str = PROVIDER
    confirms_by_callback: bool = True

    def send(self, request: OutboundRequest) -> SendAccepted:
        return send_message(request, via=self)


def send_message(request: OutboundRequest, *, via: TwilioChannel) -> SendAccepted:
    """Hand one message to Twilio (Messages.json through the SDK) on the channel `via`;
    raises SendFailed. It goes from the Messaging Service when one is set, else from the
    channel's own number."""
    params = {"to": f"{via.address_prefix}{request.address}", "status_callback": request.status_callback}
    if settings.TWILIO_MESSAGING_SERVICE_SID:
        params["messaging_service_sid"] = settings.TWILIO_MESSAGING_SERVICE_SID
    else:
        params["from_"] = getattr(settings, via.sender_setting)
    if request.content_sid:
        params["content_sid"] = request.content_sid
        params["content_variables"] = json.dumps(request.content_variables, ensure_ascii=False)
    else:
        params["body"] = request.body
    if request.media_urls:
        params["media_url"] = list(request.media_urls)
    try:
        created = client().messages.create(**params)
    except TwilioRestException as exc:
        raise _rest_failure(exc, request.channel) from exc
    except urllib3.exceptions.HTTPError as exc:
        # Refused, unresolvable or timed out while connecting: nothing reached Twilio.
        if isinstance(exc, ConnectTimeoutError):
            raise SendFailed(code="", message=_("Twilio could not be reached; retrying."), retryable=True) from exc
        # The request may have reached Twilio (no answer in time, connection broken): never resend blindly.
        raise SendFailed(
            code="", message=_("Twilio did not answer; checking before sending again."), ambiguous=True
        ) from exc
    except TwilioException as exc:
        raise SendFailed(code="", message=_("Twilio refused the request; check the TWILIO_* settings.")) from exc
    return SendAccepted(provider=PROVIDER, provider_message_id=created.sid, status=created.status or "queued")


def error_reason(*, code: int, channel: str) -> str:
    """What an advisor reads for a Twilio error code, whether the API refused the send
    or a status callback reported the failure later."""
    if code == 63016:
        return _("Outside WhatsApp's 24-hour window: send an approved template.")
    if code == 21610:
        return _("The customer opted out of messages from this number (STOP); they must write START first.")
    if code in RECIPIENT_CODES:
        label = ContactPoint.Kind(channel).label if channel in ContactPoint.Kind.values else channel
        return _("Not a valid %(channel)s recipient: check the customer's number.") % {"channel": label}
    if code == 63014:
        return _("The customer has blocked messages from this number.")
    if code == 30007:
        return _("Filtered by the carrier as unwanted; rephrase it, or call the customer.")
    return _("failed (Twilio error %(code)s)") % {"code": code}


def _rest_failure(exc: TwilioRestException, channel: str) -> SendFailed:
    status = exc.status or 0
    try:
        code = int(exc.code) if exc.code is not None else 0
    except (TypeError, ValueError):
        code = 0
    code_text = str(code) if code and code != status else ""
    if code in RETRYABLE_CODES or status == 429 or status >= 500:
        return SendFailed(
            code=code_text or str(status),
            message=_("Twilio is busy or unavailable (HTTP %(status)s); retrying.") % {"status": status},
            retryable=True,
        )
    if code_text:
        message = error_reason(code=code, channel=channel)
    else:
        message = _("failed (Twilio answered HTTP %(status)s)") % {"status": status}
    return SendFailed(code=code_text, message=message)


# --- Templates (Content API) ---------------------------------------------------------


def _template_body(types: dict) -> str:
    for kind in ("twilio/text", *sorted(types or {})):
        content = (types or {}).get(kind) or {}
        if isinstance(content, dict) and (content.get("body") or content.get("title")):
            return content.get("body") or content.get("title")
    return ""


def _is_approved(approval_requests) -> bool:
    approval = approval_requests or {}
    if isinstance(approval.get("whatsapp"), dict):
        approval = approval["whatsapp"]
    return str(approval.get("status", "")).lower() == "approved"


def approved_templates() -> list[ContentTemplate]:
    """Every template of the account that WhatsApp approved, from the Content API."""
    try:
        records = client().content.v1.content_and_approvals.list(page_size=500)
    except TwilioRestException as exc:
        raise SendFailed(code=str(exc.code or exc.status), message=_("Twilio refused to list the templates.")) from exc
    except (urllib3.exceptions.HTTPError, TwilioException) as exc:
        raise SendFailed(code="", message=_("Twilio could not be reached."), retryable=True) from exc
    templates = []
    for record in records:
        body = _template_body(record.types)
        if record.sid and body and _is_approved(record.approval_requests):
            templates.append(
                ContentTemplate(
                    content_sid=record.sid,
                    name=(record.friendly_name or record.sid)[:200],
                    language=(record.language or "")[:16],
                    body=body,
                )
            )
    return templates


def create_menu_content(*, friendly_name: str, language: str, kind: str, body: str, button: str, items: list) -> str:
    """Create a session menu in the Content API (`twilio/quick-reply` or `twilio/list-picker`,
    which WhatsApp shows inside the 24-hour window without approval); returns its SID.
    `items` are {"id", "title"}: the id comes back as the tapped button's payload."""
    if kind == "twilio/quick-reply":
        content = {
            "body": body,
            "actions": [{"type": "QUICK_REPLY", "id": i["id"], "title": i["title"]} for i in items],
        }
    else:
        content = {"body": body, "button": button, "items": [{"id": i["id"], "item": i["title"]} for i in items]}
    request = ContentList.ContentCreateRequest(
        {"friendly_name": friendly_name, "language": language, "variables": {}, "types": {kind: content}}
    )
    try:
        created = client().content.v1.contents.create(request)
    except TwilioRestException as exc:
        raise SendFailed(code=str(exc.code or exc.status), message=_("Twilio refused to create the menu.")) from exc
    except (urllib3.exceptions.HTTPError, TwilioException) as exc:
        raise SendFailed(code="", message=_("Twilio could not be reached."), retryable=True) from exc
    return created.sid
