"""The lean ASGI route for Twilio's webhooks.

Twilio's webhooks are the hot path: Django's full request pipeline (thread hop,
sync middleware, signals) costs more CPU than the work itself. This route, the only
one serving them (Django's URLs do not), reads the form, then makes one thread hop
into `conversations.webhooks`' handlers. Everything else goes to Django.

Inbound messages and status callbacks are stored with group commit: the requests
that arrive while a batch is in the database wait for the next one, which stores
them all in one transaction (`handle_twilio_inbound_batch`,
`handle_twilio_status_batch`). An idle server thus stores each at once, alone; a
busy one pays one transaction for many. A request is answered only once its own
batch has committed.
"""

import asyncio
import functools
import logging
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections
from django.http import QueryDict

from conversations.webhooks import (
    INTERNAL_ERROR,
    MESSAGES_PATH,
    STATUS_PATH,
    WebhookAnswer,
    WebhookRequest,
    handle_twilio_inbound_batch,
    handle_twilio_status_batch,
    log_failure,
)
from core.loops import loop_local
from events.publish import bind_server_loop

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 256 * 1024


def _handle_batch_in_thread(handler, requests: list[tuple[str, str, bytes, dict]]) -> list[WebhookAnswer]:
    close_old_connections()
    try:
        batch = [
            WebhookRequest(path, query, QueryDict(body, encoding="utf-8"), headers)
            for path, query, body, headers in requests
        ]
        return handler(batch)
    except Exception as exc:
        log_failure(f"A batch of {len(requests)} Twilio webhooks failed", exc)
        return [INTERNAL_ERROR] * len(requests)
    finally:
        close_old_connections()


@functools.cache
def _executor() -> ThreadPoolExecutor:
    """The route's own threads, made on first use: a pool is sized once, by the setting
    then. Each path's batches take at most TWILIO_WEBHOOK_BATCHES of them at once."""
    return ThreadPoolExecutor(max_workers=settings.TWILIO_WEBHOOK_THREADS, thread_name_prefix="webhook")


async def _handle_batch(handler, requests: list[tuple[str, str, bytes, dict]]) -> list[WebhookAnswer]:
    hop = sync_to_async(_handle_batch_in_thread, thread_sensitive=False, executor=_executor())
    return await hop(handler, requests)


class _GroupCommit:
    """Group commit for one kind of webhook, on one event loop: `store` takes the
    requests queued meanwhile and returns their answers, in order."""

    def __init__(self, store):
        self.store = store
        self.pending: list[tuple[tuple, asyncio.Future]] = []
        self.draining = 0  # drains started and not finished
        self.tasks: set[asyncio.Task] = set()  # strong references, until each is done

    async def submit(self, request: tuple[str, str, bytes, dict]) -> WebhookAnswer:
        future = asyncio.get_running_loop().create_future()
        self.pending.append((request, future))
        if self.draining < settings.TWILIO_WEBHOOK_BATCHES:
            self.draining += 1
            task = asyncio.create_task(self._drain())
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
        return await future

    async def _drain(self) -> None:
        try:
            while self.pending:
                size = settings.TWILIO_WEBHOOK_BATCH_SIZE
                batch, self.pending = self.pending[:size], self.pending[size:]
                try:
                    answers = await self.store([request for request, _ in batch])
                except BaseException:  # cancelled (server stopping): Twilio retries what was not answered
                    _resolve(batch, [INTERNAL_ERROR] * len(batch))
                    raise
                _resolve(batch, answers)
        finally:
            # In the same step as the last look at `pending` (a done-callback would run
            # a step later): a request queued after this look always starts a drain.
            self.draining -= 1


def _resolve(batch: list[tuple[tuple, asyncio.Future]], answers: list[WebhookAnswer]) -> None:
    for (_, future), answer in zip(batch, answers, strict=True):
        if not future.done():  # its client may have gone
            future.set_result(answer)


async def _store_inbound(requests: list[tuple]) -> list[WebhookAnswer]:
    return await _handle_batch(handle_twilio_inbound_batch, requests)


async def _store_statuses(requests: list[tuple]) -> list[WebhookAnswer]:
    return await _handle_batch(handle_twilio_status_batch, requests)


_batchers = {
    MESSAGES_PATH: loop_local(lambda: _GroupCommit(_store_inbound)),
    STATUS_PATH: loop_local(lambda: _GroupCommit(_store_statuses)),
}


class TwilioWebhookRoute:
    def __init__(self, fallback):
        self.fallback = fallback

    async def __call__(self, scope, receive, send):
        bind_server_loop(asyncio.get_running_loop())
        if scope["type"] != "http" or scope.get("path", "") not in _batchers:
            return await self.fallback(scope, receive, send)
        if scope["method"] != "POST":
            return await _send(send, WebhookAnswer(405, b"Use POST."), extra_headers=[(b"allow", b"POST")])
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":
            return await _send(send, WebhookAnswer(415, b"Expected application/x-www-form-urlencoded."))
        body = await _read_body(receive)
        if body is None:
            # The client went away mid-body: nobody to answer, and half a form is not a webhook.
            return None
        if body is _TOO_LARGE:
            return await _send(send, WebhookAnswer(413, b"Request body too large."))
        query_string = scope.get("query_string", b"").decode("latin-1")
        answer = await _batchers[scope["path"]]().submit((scope["path"], query_string, body, headers))
        await _send(send, answer)


_TOO_LARGE = object()


async def _read_body(receive) -> bytes | object | None:
    """The whole body; _TOO_LARGE past MAX_BODY_BYTES (not read further); None when the
    client disconnects first."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            return _TOO_LARGE
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _send(send, answer: WebhookAnswer, extra_headers=()) -> None:
    headers = [(b"content-type", answer.content_type.encode()), (b"content-length", str(len(answer.body)).encode())]
    await send({"type": "http.response.start", "status": answer.status, "headers": [*headers, *extra_headers]})
    await send({"type": "http.response.body", "body": answer.body})
