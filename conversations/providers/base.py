"""What a messaging provider hands the rest of the system: plain, provider-neutral data."""

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol


class WebhookRejected(Exception):
    """A webhook we refuse; `status` is the HTTP answer, `reason` is safe to show and log."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class InboundMedia:
    """A file of an inbound message: at `url`, to download; or, for a provider that hands
    over the content itself (an email's parts), already written to storage as `stored_name`."""

    url: str
    content_type: str
    stored_name: str = ""
    size: int | None = None
    # Why the file was not kept (type or size), in words an advisor can act on; nothing stored.
    refused: str = ""
    file_name: str = ""


@dataclass(frozen=True)
class InboundEmail:
    """What an email adds to an inbound message: its threading headers, subject, sanitised
    HTML, the text before quotes were stripped, and where its raw MIME is stored."""

    message_id: str
    in_reply_to: str = ""
    references: tuple[str, ...] = ()
    subject: str = ""
    from_header: str = ""
    to_header: str = ""
    cc_header: str = ""
    reply_to: str = ""
    full_text: str = ""
    html: str = ""
    raw_name: str = ""
    raw_size: int | None = None
    # Why it is automatic mail (EmailHeaders.Noise): never answered, never "customer waiting".
    noise: str = ""


@dataclass(frozen=True)
class InboundMessage:
    provider: str
    provider_message_id: str
    channel: str
    address: str
    body: str = ""
    profile_name: str = ""
    wa_id: str = ""
    media: tuple[InboundMedia, ...] = ()
    latitude: Decimal | None = None
    longitude: Decimal | None = None
    location_address: str = ""
    location_label: str = ""
    button_text: str = ""
    button_payload: str = ""
    replied_to_provider_id: str = ""
    raw: dict = field(default_factory=dict)
    email: InboundEmail | None = None
    # The thread the message answers, when the channel names one (an email's reply token or
    # References): it lands there, whoever the sender's address belongs to.
    answers_thread_id: int | None = None


@dataclass(frozen=True)
class StatusUpdate:
    provider: str
    provider_message_id: str
    status: str
    our_message_id: int | None = None
    error_code: str = ""
    error_message: str = ""
    raw: dict = field(default_factory=dict)


class MediaRefused(Exception):
    """A media file we will not fetch or keep (host, type or size); never retried."""


class MediaUnavailable(Exception):
    """A media file we could not fetch this time (network, 5xx); worth retrying."""


@dataclass(frozen=True)
class OutboundRequest:
    """One message to hand to a provider: free text (and media) or an approved template."""

    channel: str
    address: str
    body: str = ""
    content_sid: str = ""
    content_variables: dict = field(default_factory=dict)
    media_urls: tuple[str, ...] = ()
    status_callback: str = ""
    email: "OutboundEmail | None" = None


@dataclass(frozen=True)
class OutboundFile:
    name: str
    content_type: str
    path: str


@dataclass(frozen=True)
class OutboundEmail:
    """The envelope of an email reply, decided and stored before it is sent."""

    message_id: str
    subject: str
    from_name: str
    reply_to: str
    in_reply_to: str = ""
    references: tuple[str, ...] = ()
    html: str = ""
    files: tuple[OutboundFile, ...] = ()


@dataclass(frozen=True)
class SendAccepted:
    provider: str
    provider_message_id: str
    status: str


class SendFailed(Exception):
    """The provider did not take the message.

    `code` is the provider's error code ("" without one), `message` says what happened
    in words an advisor can act on (translated). `retryable`: nothing was sent, trying
    later may work. `ambiguous`: the provider may have taken it (no answer in time).
    """

    def __init__(self, *, code: str, message: str, retryable: bool = False, ambiguous: bool = False):
        super().__init__(f"{code or 'no code'}: {message}")
        self.code = code
        self.message = message
        self.retryable = retryable
        self.ambiguous = ambiguous


@dataclass(frozen=True)
class ContentTemplate:
    """An approved template as the provider lists it; {{1}}, {{2}}… are its variables."""

    content_sid: str
    name: str
    language: str
    body: str


class ChannelAdapter(Protocol):
    """What sending on a channel needs of its provider (conversations/providers/registry.py)."""

    # Stored as Message.provider: the provider whose ids the message's status callbacks carry.
    name: str
    # Whether a status callback can tell, after an unanswered call, that the provider took the
    # message (Twilio's ?m=<id>): if not, an unanswered call is never retried (at most once).
    confirms_by_callback: bool

    def send(self, request: OutboundRequest) -> SendAccepted:
        """Hand one message over; raises SendFailed."""
