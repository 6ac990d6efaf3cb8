"""What Twilio calls: its webhooks, and the route it fetches our outbound attachments from.

Webhooks have one code path for the Django views and the lean ASGI route: `handle_*`
take what both transports have (path, query string, form parameters, headers) and
return the answer; they verify the signature before reading anything.
"""

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import PurePath

from django.http import FileResponse, Http404, HttpRequest, HttpResponse, QueryDict
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST, require_safe

from conversations.media import attachment_for_media_token
from conversations.providers import twilio
from conversations.providers.base import WebhookRejected
from conversations.services import inbound_message_receive, message_status_apply

logger = logging.getLogger(__name__)

EMPTY_TWIML = b'<?xml version="1.0" encoding="UTF-8"?><Response/>'
MESSAGES_PATH = "/webhooks/twilio/messages/"
STATUS_PATH = "/webhooks/twilio/status/"


@dataclass(frozen=True)
class WebhookAnswer:
    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"


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


def _answer(handler: Callable[[], WebhookAnswer]) -> WebhookAnswer:
    try:
        return handler()
    except WebhookRejected as rejected:
        return WebhookAnswer(rejected.status, rejected.reason.encode())


def handle_twilio_inbound(*, path: str, query_string: str, params: QueryDict, headers) -> WebhookAnswer:
    def handle():
        _verify(path=path, query_string=query_string, params=params, headers=headers)
        inbound = twilio.parse_inbound(params)
        result = inbound_message_receive(inbound=inbound)
        if not result.created:
            logger.info("Twilio message %s received again; stored once.", inbound.provider_message_id)
        return WebhookAnswer(200, EMPTY_TWIML, "text/xml")

    return _answer(handle)


def handle_twilio_status(*, path: str, query_string: str, params: QueryDict, headers) -> WebhookAnswer:
    def handle():
        _verify(path=path, query_string=query_string, params=params, headers=headers)
        update = twilio.parse_status(params, QueryDict(query_string))
        message_status_apply(update=update)
        return WebhookAnswer(204, b"")

    return _answer(handle)


def _django_view(handler):
    @csrf_exempt
    @require_POST
    def view(request):
        answer = handler(
            path=request.path,
            query_string=request.META.get("QUERY_STRING", ""),
            params=request.POST,
            headers=request.headers,
        )
        return HttpResponse(answer.body, status=answer.status, content_type=answer.content_type)

    return view


twilio_messages = _django_view(handle_twilio_inbound)
twilio_status = _django_view(handle_twilio_status)


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
