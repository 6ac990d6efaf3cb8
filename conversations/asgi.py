"""The lean ASGI route for Twilio's webhooks.

Twilio's webhooks are the hot path: Django's full request pipeline (thread hop,
sync middleware, signals) costs more CPU than the work itself. This route parses
the form, then makes one thread hop into the same `handle_*` functions the Django
views call, so checks and behaviour are identical. Everything else goes to Django.
"""

import asyncio
import logging
import os
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import sync_to_async
from django.db import close_old_connections
from django.http import QueryDict

from channels_app.events import bind_server_loop
from conversations.webhooks import (
    MESSAGES_PATH,
    STATUS_PATH,
    WebhookAnswer,
    handle_twilio_inbound,
    handle_twilio_status,
)

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 256 * 1024
HANDLERS = {MESSAGES_PATH: handle_twilio_inbound, STATUS_PATH: handle_twilio_status}


def _handle_in_thread(handler, path: str, query_string: str, body: bytes, headers: dict) -> WebhookAnswer:
    close_old_connections()
    try:
        params = QueryDict(body, encoding="utf-8")
        return handler(path=path, query_string=query_string, params=params, headers=headers)
    except Exception:
        # Twilio retries on a 5xx, so the message is not lost; the body is not logged.
        logger.exception("Twilio webhook failed on %s.", path)
        return WebhookAnswer(500, b"Internal error; Twilio will retry.")
    finally:
        close_old_connections()


# Own threads, more than asgiref's default of cpu+4: each mostly waits on the
# database (commit fsync), so more of them overlap more transactions.
_executor = ThreadPoolExecutor(max_workers=int(os.environ.get("WEBHOOK_THREADS", "16")), thread_name_prefix="webhook")
_handle = sync_to_async(_handle_in_thread, thread_sensitive=False, executor=_executor)


class TwilioWebhookRoute:
    def __init__(self, fallback):
        self.fallback = fallback

    async def __call__(self, scope, receive, send):
        bind_server_loop(asyncio.get_running_loop())
        handler = HANDLERS.get(scope.get("path", "")) if scope["type"] == "http" else None
        if handler is None:
            return await self.fallback(scope, receive, send)
        if scope["method"] != "POST":
            return await _send(send, WebhookAnswer(405, b"Use POST."), extra_headers=[(b"allow", b"POST")])
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":
            return await _send(send, WebhookAnswer(415, b"Expected application/x-www-form-urlencoded."))
        body = await _read_body(receive)
        if body is None:
            return await _send(send, WebhookAnswer(413, b"Request body too large."))
        query_string = scope.get("query_string", b"").decode("latin-1")
        answer = await _handle(handler, scope["path"], query_string, body, headers)
        await _send(send, answer)


async def _read_body(receive) -> bytes | None:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b""
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _send(send, answer: WebhookAnswer, extra_headers=()) -> None:
    headers = [(b"content-type", answer.content_type.encode()), (b"content-length", str(len(answer.body)).encode())]
    await send({"type": "http.response.start", "status": answer.status, "headers": [*headers, *extra_headers]})
    await send({"type": "http.response.body", "body": answer.body})
