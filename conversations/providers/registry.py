"""The channels, in one place: what each allows and which provider adapter carries it.

The receive and send services, the reply composer, the inbox views and the API read a
channel's `ChannelSpec` instead of testing which channel they hold. A new channel is
a new spec here (and its adapter in this package, its address kind in crm): see
docs/architecture.md, "Where a new channel goes".
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings

from conversations.providers import email, twilio, webchat
from conversations.providers.base import ChannelAdapter
from crm.models import ContactPoint

Channel = ContactPoint.Kind
MB = 1024 * 1024


@dataclass(frozen=True)
class MediaRule:
    """The files one message may carry: their types, how many, how large in all, and
    lower limits for some types."""

    types: frozenset[str]
    max_files: int
    max_total: int
    max_per_type: dict[str, int]
    # A setting that holds max_total instead (read when checked, never at import).
    max_total_setting: str = ""

    def total_limit(self) -> int:
        return getattr(settings, self.max_total_setting) if self.max_total_setting else self.max_total


@dataclass(frozen=True)
class FreeTextWindow:
    """Free text only this long after the customer's last message on the channel; after
    it, only an approved template. `refusal_code` is SendRefused's (and the API's) code."""

    length: timedelta
    refusal_code: str


@dataclass(frozen=True)
class ChannelSpec:
    channel: str
    # The Thread column holding when the customer last wrote on this channel.
    last_inbound_field: str
    # Sends advisors' replies; None: advisors cannot reply on this channel (yet).
    provider: ChannelAdapter | None = None
    # The files a reply may carry; None: none.
    media: MediaRule | None = None
    free_text_window: FreeTextWindow | None = None
    # Approved templates (the provider's, e.g. WhatsApp's through Twilio's Content API) go out on it.
    templates: bool = False
    # The longest reply it carries, in characters.
    max_body_length: int = 1600
    # Its messages carry headers of their own (an email's subject, Message-ID, References),
    # stored with each message (EmailHeaders) and decided before it is sent.
    envelope: bool = False
    # How a triage menu shows on it: "buttons" (the provider's quick replies or list picker,
    # the text kept as the timeline's copy and fallback) or "numbered" (a number per topic).
    menu: str = "numbered"
    # A task (a dotted path taking the message id) run once a reply was handed over.
    after_send: str = ""

    @property
    def label(self) -> str:
        return Channel(self.channel).label

    @property
    def icon(self) -> str:
        """Its icon among the inbox's static files."""
        return f"inbox/icons/{self.channel}.svg"

    @property
    def replies(self) -> bool:
        return self.provider is not None

    def free_text_allowed(self, *, last_inbound_at: datetime | None, now: datetime) -> bool:
        if self.free_text_window is None:
            return True
        return last_inbound_at is not None and now - last_inbound_at <= self.free_text_window.length


WHATSAPP_IMAGES = frozenset({"image/jpeg", "image/png", "image/webp"})

# In the order replies prefer them: a reply with no channel and no inbound one to follow
# goes on the first that replies.
CHANNELS: dict[str, ChannelSpec] = {
    spec.channel: spec
    for spec in (
        ChannelSpec(
            channel=Channel.WHATSAPP,
            last_inbound_field="last_whatsapp_inbound_at",
            provider=twilio.TwilioChannel(address_prefix="whatsapp:", sender_setting="TWILIO_WHATSAPP_FROM"),
            # One file per message; images up to 5 MB, anything else up to 16 MB.
            media=MediaRule(
                types=twilio.ALLOWED_MEDIA_TYPES,
                max_files=1,
                max_total=16 * MB,
                max_per_type=dict.fromkeys(WHATSAPP_IMAGES, 5 * MB),
            ),
            free_text_window=FreeTextWindow(length=timedelta(hours=24), refusal_code="outside_whatsapp_window"),
            templates=True,
            menu="buttons",
        ),
        ChannelSpec(
            channel=Channel.SMS,
            last_inbound_field="last_sms_inbound_at",
            provider=twilio.TwilioChannel(address_prefix="", sender_setting="TWILIO_SMS_FROM"),
            # MMS: the images every carrier renders, 5 MB in all.
            media=MediaRule(
                types=frozenset({"image/jpeg", "image/png", "image/gif"}),
                max_files=10,
                max_total=5 * MB,
                max_per_type={},
            ),
        ),
        ChannelSpec(
            channel=Channel.EMAIL,
            last_inbound_field="last_email_inbound_at",
            provider=email.EmailChannel(),
            # Documents and images, EMAIL_MAX_ATTACHMENT_BYTES in all (20 MB by default).
            media=MediaRule(
                types=email.ALLOWED_MEDIA_TYPES,
                max_files=10,
                max_total=20 * MB,
                max_per_type={},
                max_total_setting="EMAIL_MAX_ATTACHMENT_BYTES",
            ),
            max_body_length=20_000,
            envelope=True,
        ),
        # Text only for now: the widget's uploads come with their own type checks (docs/webchat.md).
        ChannelSpec(
            channel=Channel.WEBCHAT,
            last_inbound_field="last_webchat_inbound_at",
            provider=webchat.WebChatChannel(),
            max_body_length=4000,
            # The customer may have left the page: told on another channel (docs/webchat.md).
            after_send="conversations.tasks.chat_offline_notify",
        ),
    )
}
REPLY_CHANNELS: tuple[ChannelSpec, ...] = tuple(spec for spec in CHANNELS.values() if spec.replies)
LAST_INBOUND_FIELDS: tuple[str, ...] = tuple(spec.last_inbound_field for spec in CHANNELS.values())
WINDOW_REFUSALS = frozenset(spec.free_text_window.refusal_code for spec in CHANNELS.values() if spec.free_text_window)


def channel_spec(channel: str) -> ChannelSpec | None:
    """The spec of a channel; None for a name that is not one."""
    return CHANNELS.get(channel)


def default_reply_channel() -> ChannelSpec:
    """Where a reply goes when nothing says otherwise."""
    return REPLY_CHANNELS[0]


def template_channel() -> ChannelSpec:
    """Where the approved templates go, whatever channel the customer last used."""
    return next(spec for spec in REPLY_CHANNELS if spec.templates)
