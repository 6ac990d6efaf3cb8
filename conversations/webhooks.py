"""What Twilio calls: its webhooks, and the route it fetches our outbound attachments from.

The webhooks are served by the lean ASGI route alone (conversations/asgi.py, mounted by
the project's ASGI application at MESSAGES_PATH and STATUS_PATH), not by Django's URLs:
`handle_*` take what the route has (path, query string, form parameters, headers) and
return the answers; they verify the signature before reading anything.
"""

import logging
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePath

from django.http import FileResponse, Http404, HttpRequest, QueryDict
from django.views.decorators.http import require_safe

from conversations.media import attachment_for_media_token
from conversations.providers import twilio
from conversations.providers.base import WebhookRejected
from conversations.services import (
    InboundResult,
    inbound_message_receive,
    inbound_messages_receive,
    message_status_apply,
    message_statuses_apply,
)

logger = logging.getLogger(__name__)

EMPTY_TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response/>'
# Where Twilio posts, from the root of the site: the incoming-message webhook and the status callback.
MESSAGES_PATH = "/webhooks/twilio/messages/"
STATUS_PATH = "/webhooks/twilio/status/"


@dataclass(frozen=True)
class WebhookAnswer:
    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"


# Twilio retries on a 5xx, so a message that could not be stored is not lost.
INTERNAL_ERROR = WebhookAnswer(500, b"Internal error; Twilio will retry.")


def _verify(*, path: str, query_string: str, params: QueryDict, headers: Mapping[str, str]) -> None:
    url = twilio.public_url(path, query_string)
    signature = headers.get("x-twilio-signature", "")
    if not twilio.signature_is_valid(
        url=url,
        params=params,
        signature=signature,
        signature_settings=headers.get(twilio.SIGNATURE_SETTINGS.lower(), ""),
    ):
        # Never the body: only what identifies the request.
        logger.warning(
            "Twilio webhook refused: %s signature on %s (MessageSid %s).",
            "wrong" if signature else "missing",
            path,
            (params.get("MessageSid") or "?")[:64],
        )
        raise WebhookRejected(403, "Invalid or missing X-Twilio-Signature.")


@dataclass(frozen=True)
class WebhookRequest:
    """What the route has of a webhook request."""

    path: str
    query_string: str
    params: QueryDict
    headers: Mapping[str, str]


def handle_twilio_inbound_batch(requests: Sequence[WebhookRequest]) -> list[WebhookAnswer]:
    """Answer several inbound webhooks, storing their messages in one transaction.

    Each request is verified and parsed on its own: a forged or malformed one gets its
    403 or 400 and does not touch the others. If the shared transaction fails, each
    message is stored again on its own, so one bad message costs only its own answer
    (a 500, which Twilio retries). A batch of one that fails raises: the route answers 500.
    """

    def answer(inbound, result: InboundResult) -> WebhookAnswer:
        if not result.created:
            logger.info("Twilio message %s received again; stored once.", inbound.provider_message_id)
        return WebhookAnswer(200, EMPTY_TWIML, "text/xml")

    return _handle_batch(
        requests,
        parse=lambda request: twilio.parse_inbound(request.params),
        store_many=lambda inbounds: inbound_messages_receive(inbounds=inbounds),
        store_one=lambda inbound: inbound_message_receive(inbound=inbound),
        answer=answer,
        what="message",
    )


def handle_twilio_status_batch(requests: Sequence[WebhookRequest]) -> list[WebhookAnswer]:
    """Answer several status callbacks, applying them in one transaction, as
    `handle_twilio_inbound_batch` does for messages. A callback for a message we do not
    know is answered 204 too (logged by the service): Twilio must not retry it."""
    return _handle_batch(
        requests,
        parse=lambda request: twilio.parse_status(request.params, QueryDict(request.query_string)),
        store_many=lambda updates: message_statuses_apply(updates=updates),
        store_one=lambda update: message_status_apply(update=update),
        answer=lambda update, result: WebhookAnswer(204, b""),
        what="status callback",
    )


_FAILED = object()


def _handle_batch(requests: Sequence[WebhookRequest], *, parse, store_many, store_one, answer, what: str):
    """Verify and `parse` each request, store the accepted ones together with `store_many`
    (one by one with `store_one` if that fails), and return each request's answer in order."""
    answers: list[WebhookAnswer | None] = [None] * len(requests)
    accepted = []
    for index, request in enumerate(requests):
        try:
            _verify(
                path=request.path, query_string=request.query_string, params=request.params, headers=request.headers
            )
            accepted.append((index, parse(request)))
        except WebhookRejected as rejected:
            answers[index] = WebhookAnswer(rejected.status, rejected.reason.encode())
    if accepted:
        items = [item for _, item in accepted]
        try:
            results = store_many(items)
        except Exception:
            if len(items) == 1:
                raise
            logger.warning("A batch of %d Twilio %ss failed; storing them one by one.", len(items), what)
            results = [_store_alone(store_one, item, what) for item in items]
        for (index, item), result in zip(accepted, results, strict=True):
            answers[index] = INTERNAL_ERROR if result is _FAILED else answer(item, result)
    return answers


def _store_alone(store_one, item, what: str):
    try:
        return store_one(item)
    except Exception as exc:
        log_failure(f"Twilio {what} {item.provider_message_id} could not be stored", exc)
        return _FAILED


def log_failure(what: str, exc: BaseException) -> None:
    """Log a failure with its type and where it happened, never its message: a database
    error's message can quote the row, and with it a customer's text."""
    logger.error("%s: %s\n%s", what, type(exc).__name__, "".join(traceback.format_tb(exc.__traceback__)).rstrip())


@require_safe
def twilio_media(request: HttpRequest, token: str, filename: str) -> FileResponse:
    """An outbound attachment for Twilio to fetch: no session, the signed token is the access.
    The file name in the URL is only for the recipient's phone; the token names the file."""
    attachment = attachment_for_media_token(token=token)
    try:
        file = attachment.file.open("rb")
    except FileNotFoundError:
        raise Http404("No such attachment.") from None
    response = FileResponse(
        file, as_attachment=True, filename=PurePath(attachment.file.name).name, content_type=attachment.content_type
    )
    response.headers["Cache-Control"] = "private"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
