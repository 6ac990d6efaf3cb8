"""The customer's side of the web chat: who they are, what they send, what they read.

A customer's message lands through the same receive service as a WhatsApp, SMS or email
one (`inbound_message_receive`: routing, deputies, pool, events, unread counts), on a
`webchat` contact point whose address is their customer number; the widget's `client_id`
makes its provider id, so a resend stores nothing twice. The advisor answers through
`message_send` like on any channel.
"""

import logging
import re
import uuid
from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from conversations.access import thread_audience
from conversations.models import ChatSocket, Message, Thread
from conversations.providers.base import InboundMessage, StatusUpdate
from conversations.providers.registry import REPLY_CHANNELS
from conversations.providers.webchat import CHANNEL, PROVIDER, ChatClaims, TokenRefused, verify_token
from conversations.services.inbound import inbound_message_receive, message_statuses_apply
from conversations.services.outbound import SendRefused, message_send
from conversations.webchat_selectors import chat_customer_online, chat_offline_notify_due
from crm.models import ContactPoint, Customer

logger = logging.getLogger(__name__)

CLIENT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
BODY_MAX_LENGTH = 4000


class ChatRefused(Exception):
    """A frame the widget sent that we do not act on; `code` for the widget, the message for the customer."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ChatIdentity:
    """Who a widget speaks for: a customer the bank vouched for, or a visitor (customer None)."""

    customer: Customer | None
    # The web chat address: the customer number, or "visitor-<id>" (a prospect's).
    address: str
    # What keeps this party's client ids and rate apart from everyone else's.
    key: str
    claims: ChatClaims | None = None
    locale: str = ""


def chat_identify(*, token: str) -> ChatIdentity:
    """The customer the bank's token vouches for, with their web chat address (made on their
    first visit). Raises TokenRefused: nothing is stored for a token refused."""
    claims = verify_token(token)
    customer = (
        Customer.objects.select_related("dedicated_advisor__user")
        .filter(customer_number=claims.customer_number)
        .first()
    )
    if customer is None:
        raise TokenRefused("customer_unknown", _("The bank's token names a customer we do not know."))
    point = _chat_address(customer)
    return ChatIdentity(
        customer=customer, address=point.address, key=str(customer.pk), claims=claims, locale=claims.locale
    )


VISITOR_SALT = "attitre.chat.visitor"


def chat_visitor_identify(*, visitor: str | None, locale: str = "") -> tuple[ChatIdentity, str]:
    """A visitor without a token (CHAT_ALLOW_VISITORS): the one their signed id names, or a new
    one; and the signed id for the widget to keep. A forged or altered id is a new visitor."""
    if not settings.CHAT_ALLOW_VISITORS:
        raise TokenRefused("visitors_disabled", _("Sign in to the bank's site to chat with your advisor."))
    signer = signing.Signer(salt=VISITOR_SALT)
    try:
        visitor_id = signer.unsign(visitor) if isinstance(visitor, str) else ""
    except signing.BadSignature:
        visitor_id = ""
    if not re.fullmatch(r"[0-9a-f]{32}", visitor_id):
        visitor_id = uuid.uuid4().hex
    identity = ChatIdentity(
        customer=None, address=f"visitor-{visitor_id}", key=f"v{visitor_id}", locale=locale[:16] if locale else ""
    )
    return identity, signer.sign(visitor_id)


def _chat_address(customer: Customer) -> ContactPoint:
    address = customer.customer_number
    point = ContactPoint.objects.filter(kind=CHANNEL, address=address).first()
    if point is None:
        try:
            with transaction.atomic():
                point = ContactPoint.objects.create(
                    customer=customer,
                    kind=CHANNEL,
                    address=address,
                    consent_changed_at=timezone.now(),
                    consent_source=_("signed in to the bank's site"),
                )
        except IntegrityError:  # the customer's other tab made it first
            point = ContactPoint.objects.get(kind=CHANNEL, address=address)
    if point.customer_id != customer.pk:
        # The address is the customer number, which is unique: only an address typed by hand
        # in the admin for someone else could be here. Refused rather than joined to them.
        raise TokenRefused("customer_unknown", _("The bank's token names a customer we do not know."))
    return point


def chat_thread(*, identity: ChatIdentity) -> Thread | None:
    if identity.customer is not None:
        return Thread.objects.filter(customer_id=identity.customer.pk).first()
    return Thread.objects.filter(prospect__kind=CHANNEL, prospect__address=identity.address).first()


def chat_message_receive(*, identity: ChatIdentity, client_id: str, body: str) -> Message:
    """Store what the customer typed, once per client id; returns the stored message (the
    first one for a resend). Raises ChatRefused for a frame that cannot be a message."""
    if not isinstance(client_id, str) or not CLIENT_ID.fullmatch(client_id):
        raise ChatRefused("client_id_invalid", _("The message has no valid client id."))
    body = body.strip() if isinstance(body, str) else ""
    if not body:
        raise ChatRefused("empty_body", _("Write a message before sending."))
    if len(body) > BODY_MAX_LENGTH:
        raise ChatRefused(
            "body_too_long",
            _("Your message is %(length)d characters long; the limit is %(max)d.")
            % {"length": len(body), "max": BODY_MAX_LENGTH},
        )
    result = inbound_message_receive(
        inbound=InboundMessage(
            provider=PROVIDER,
            # The customer's own key: one customer's client id can never name another's message.
            provider_message_id=f"{identity.key}:{client_id}",
            channel=CHANNEL,
            address=identity.address,
            body=body,
            profile_name=identity.claims.name if identity.claims else "",
            raw={"page": identity.claims.page} if identity.claims and identity.claims.page else {},
        )
    )
    return result.message


def chat_messages_read(*, thread_id: int, up_to_id: int) -> int:
    """The customer saw the bank's messages of their thread up to `up_to_id` in the widget:
    those sent on web chat become `read`. Returns how many were still unread."""
    unread = list(
        Message.objects.filter(
            thread_id=thread_id,
            pk__lte=up_to_id,
            direction=Message.Direction.OUTBOUND,
            provider=PROVIDER,
            status__in=[Message.Status.QUEUED, Message.Status.SENDING, Message.Status.SENT, Message.Status.DELIVERED],
        ).values_list("pk", "provider_message_id")[:200]
    )
    if unread:
        message_statuses_apply(
            updates=[
                StatusUpdate(provider=PROVIDER, provider_message_id=sid or "", status="read", our_message_id=pk)
                for pk, sid in unread
            ]
        )
    return len(unread)


def chat_socket_open(*, thread_id: int, channel_name: str) -> bool:
    """Record an open widget; True when the customer was offline until now."""
    was_online = chat_customer_online(thread_id=thread_id)
    ChatSocket.objects.update_or_create(
        channel_name=channel_name, defaults={"thread_id": thread_id, "seen_at": timezone.now()}
    )
    return not was_online


def chat_socket_close(*, channel_name: str) -> int | None:
    """Forget a widget; the thread id when its customer has no other widget open now."""
    socket = ChatSocket.objects.filter(channel_name=channel_name).first()
    if socket is None:
        return None
    socket.delete()
    return None if chat_customer_online(thread_id=socket.thread_id) else socket.thread_id


def chat_sockets_stamp(*, channel_names: list[str]) -> None:
    """One process's open widgets are still there (every CHAT_PRESENCE_REFRESH_SECONDS)."""
    ChatSocket.objects.filter(channel_name__in=channel_names).update(seen_at=timezone.now())


def chat_presence_audience(*, thread_id: int) -> list[str]:
    """Who hears that the customer came online or left: whoever may see the thread."""
    thread = Thread.objects.filter(pk=thread_id).first()
    return thread_audience(thread) if thread is not None else []


def chat_offline_notify(*, message_id: int) -> Message | None:
    """The advisor answered on web chat and the customer has left the page: tell them on a
    channel they consented to (the first that takes free text now), at most once per
    CHAT_OFFLINE_NOTIFY_MINUTES. Returns the notification sent, or None."""
    message = Message.objects.select_related("thread__customer", "author__user").filter(pk=message_id).first()
    if message is None or message.author is None or message.thread.customer is None:
        return None
    if chat_customer_online(thread_id=message.thread_id):
        return None
    now = timezone.now()
    with transaction.atomic():
        thread = Thread.objects.select_for_update().get(pk=message.thread_id)
        if not chat_offline_notify_due(thread=thread, at=now):
            return None
        customer = message.thread.customer
        with translation.override(customer.preferred_language):
            text = _("%(advisor)s answered you in your bank's online space: sign in to read it.") % {
                "advisor": message.author.user.get_full_name() or message.author.user.get_username()
            }
            subject = _("Your advisor answered you")
        for spec in REPLY_CHANNELS:
            if spec.provider.name == PROVIDER:
                continue
            try:
                with transaction.atomic():
                    sent = message_send(
                        thread=thread, author=message.author, body=text, channel=spec.channel, subject=subject
                    )
            except SendRefused as refusal:
                logger.info("Offline notice of thread %s not sent on %s (%s).", thread.pk, spec.channel, refusal.code)
                continue
            thread.chat_offline_notified_at = now
            thread.save(update_fields=["chat_offline_notified_at"])
            return sent
    return None
