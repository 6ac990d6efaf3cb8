"""Web chat in the bank's own site: the bank's token, and the adapter that "sends" a reply.

The bank's backend has signed its customer in; it vouches for them with a short-lived JWT
(docs/webchat.md), which the widget hands over as the first frame of its socket. PyJWT
checks it here and nowhere else. A reply needs no provider call: its `message.created`
event reaches the customer's open widget (channels_app.chat) the moment it commits, and a
widget that opens later reads the history; `send` only gives it an id and says `sent`.
"""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import jwt
from django.conf import settings
from django.utils.translation import gettext as _

from conversations.providers.base import OutboundRequest, SendAccepted
from crm.models import ContactPoint

PROVIDER = "webchat"
CHANNEL = ContactPoint.Kind.WEBCHAT
# The bank keeps tokens short: one valid longer than this is refused, whatever it says.
MAX_TOKEN_LIFETIME_SECONDS = 3600
# What the two clocks may disagree by.
LEEWAY_SECONDS = 30
ASYMMETRIC_ALGORITHMS = ("RS256", "ES256")


class TokenRefused(Exception):
    """A token we do not accept; `code` is machine-readable, the message is safe to show and log."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ChatClaims:
    customer_number: str
    expires_at: datetime
    name: str = ""
    locale: str = ""
    page: str = ""


def _key_and_algorithms() -> tuple[str, list[str]]:
    if settings.CHAT_JWT_PUBLIC_KEY:
        return settings.CHAT_JWT_PUBLIC_KEY, list(ASYMMETRIC_ALGORITHMS)
    if settings.CHAT_JWT_SECRET:
        return settings.CHAT_JWT_SECRET, ["HS256"]
    raise TokenRefused("chat_disabled", _("Web chat is not configured: set CHAT_JWT_SECRET or CHAT_JWT_PUBLIC_KEY."))


def verify_token(token: str, *, now: datetime | None = None) -> ChatClaims:
    """The claims of a token the bank signed, checked: signature and algorithm (never `none`,
    never one the key is not for), `exp` present and at most an hour ahead, `iat` not in the
    future, `sub` a string."""
    key, algorithms = _key_and_algorithms()
    at = (now or datetime.now(UTC)).timestamp()
    if not isinstance(token, str) or not token or len(token) > 4096:
        raise TokenRefused("token_malformed", _("The chat token is missing or malformed."))
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=algorithms,
            options={"require": ["exp", "iat", "sub"], "verify_exp": False, "verify_iat": False},
        )
    except jwt.MissingRequiredClaimError as error:
        refusal = TokenRefused(
            "token_claims", _("The chat token lacks the “%(claim)s” claim.") % {"claim": error.claim}
        )
    except jwt.InvalidSignatureError:
        refusal = TokenRefused("token_signature", _("The chat token's signature is not the bank's."))
    except jwt.InvalidAlgorithmError:
        refusal = TokenRefused("token_algorithm", _("The chat token is signed with an algorithm we do not accept."))
    except jwt.InvalidTokenError:
        refusal = TokenRefused("token_malformed", _("The chat token is missing or malformed."))
    else:
        refusal = None
    if refusal is not None:
        raise refusal
    exp, iat, sub = claims["exp"], claims["iat"], claims["sub"]
    if not all(isinstance(value, int | float) for value in (exp, iat)) or not isinstance(sub, str) or not sub:
        raise TokenRefused("token_claims", _("The chat token's claims are not of the expected types."))
    if exp <= at - LEEWAY_SECONDS:
        raise TokenRefused("token_expired", _("The chat token has expired; ask the bank's site for a new one."))
    if iat > at + LEEWAY_SECONDS:
        raise TokenRefused("token_future", _("The chat token is dated in the future."))
    if exp - min(iat, at) > MAX_TOKEN_LIFETIME_SECONDS + LEEWAY_SECONDS:
        raise TokenRefused("token_too_long", _("The chat token is valid for more than an hour; keep it shorter."))

    def text(name: str, limit: int) -> str:
        value = claims.get(name, "")
        return value[:limit] if isinstance(value, str) else ""

    return ChatClaims(
        customer_number=sub[:32],
        expires_at=datetime.fromtimestamp(exp, UTC),
        name=text("name", 200),
        locale=text("locale", 16),
        page=text("page", 500),
    )


def chat_token(customer_number: str, *, lifetime: int = 600, locale: str = "") -> str:
    """What a bank's backend hands its signed-in customer's widget: for the simulator's bank
    site and the benchmark (a real bank signs with its own code, docs/webchat.md)."""
    now = int(datetime.now(UTC).timestamp())
    claims = {"sub": customer_number, "iat": now, "exp": now + lifetime, **({"locale": locale} if locale else {})}
    return jwt.encode(claims, settings.CHAT_JWT_SECRET, algorithm="HS256")


class WebChatChannel:
    """The adapter behind the registry's web chat spec."""

    name = PROVIDER
    confirms_by_callback = False

    def send(self, request: OutboundRequest) -> SendAccepted:
        return SendAccepted(provider=PROVIDER, provider_message_id=f"out-{uuid.uuid4()}", status="sent")
