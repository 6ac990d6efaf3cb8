"""anymail's webhooks (`/anymail/…`: inbound email, tracking) served by Django's own
request handling, in this route's threads.

Django's ASGI handler runs each request's sync view in a thread made for that request:
its database connection is opened for it and never reused (CONN_MAX_AGE cannot apply),
which for email webhooks cost a connection per email and, at 16 at once on two workers,
ran the server out of them ("too many clients"). Here a fixed pool of threads
(EMAIL_WEBHOOK_THREADS per process) runs the same middleware, URLs and anymail views,
each thread keeping its connection as CONN_MAX_AGE says.
"""

import functools
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core import signals
from django.core.exceptions import RequestAborted, RequestDataTooBig
from django.core.handlers.asgi import ASGIHandler, ASGIRequest, get_script_prefix
from django.core.handlers.base import BaseHandler
from django.http import HttpResponse, HttpResponseBadRequest
from django.urls import set_script_prefix

PREFIX = "/anymail/"


@functools.cache
def _handler() -> BaseHandler:
    handler = BaseHandler()
    handler.load_middleware(is_async=False)
    return handler


@functools.cache
def _executor() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=settings.EMAIL_WEBHOOK_THREADS, thread_name_prefix="email-webhook")


def _serve(scope: dict, body_file) -> HttpResponse:
    """One request, as Django's handlers serve it: the request_started and request_finished
    signals (which close a connection past its age or broken), middleware, URL, view."""
    set_script_prefix(get_script_prefix(scope))
    signals.request_started.send(sender=ASGIHandler, scope=scope)
    try:
        try:
            request = ASGIRequest(scope, body_file)
        except UnicodeDecodeError:
            response = HttpResponseBadRequest()
        except RequestDataTooBig:
            response = HttpResponse("413 Payload too large", status=413)
        else:
            response = _handler().get_response(request)
        if response.streaming:  # anymail's views answer plainly; read one whole if not
            response = HttpResponse(b"".join(response), status=response.status_code, headers=response.headers)
    finally:
        body_file.close()
    response.close()  # request_finished, in this thread: its connection is the one to look at
    return response


class EmailWebhookRoute:
    """`/anymail/…` through `_serve` in the route's threads; everything else to `fallback`
    (Django's ASGI handler, whose body reading and response writing are used here too)."""

    def __init__(self, fallback: ASGIHandler):
        self.fallback = fallback

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope.get("path", "").startswith(PREFIX):
            return await self.fallback(scope, receive, send)
        try:
            body_file = await self.fallback.read_body(receive)
        except RequestAborted:  # the client went away mid-body: nobody to answer
            return None
        response = await sync_to_async(_serve, thread_sensitive=False, executor=_executor())(scope, body_file)
        await self.fallback.send_response(response, send)
