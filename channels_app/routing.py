"""Websocket routes, mounted by config.asgi: the advisors' inbox behind the exact-origin
check (WEBSOCKET_ALLOWED_ORIGINS) and the session login; the customers' chat behind the bank's sites' origins,
without cookies (the bank's token signs the customer in)."""

from channels.auth import AuthMiddlewareStack
from channels.routing import URLRouter
from channels.security.websocket import OriginValidator
from django.conf import settings
from django.urls import path

from channels_app.chat import ChatConsumer, ChatOriginValidator
from channels_app.consumers import InboxConsumer

inbox_urlpatterns = [path("ws/inbox/", InboxConsumer.as_asgi())]
chat_urlpatterns = [path("ws/chat/", ChatConsumer.as_asgi())]
# The inbox's routes alone, as they were: what tests and benchmarks mount.
websocket_urlpatterns = inbox_urlpatterns


class _ConfiguredOrigins:
    """WEBSOCKET_ALLOWED_ORIGINS as it is when a socket connects (tests and embedding
    projects change settings after this module loads)."""

    def __iter__(self):
        return iter(settings.WEBSOCKET_ALLOWED_ORIGINS)

    def __contains__(self, origin):
        return origin in settings.WEBSOCKET_ALLOWED_ORIGINS


def websocket_application():
    # The Origin check stops another site's page from opening a socket with the user's
    # cookie: the exact origins configured (scheme, host and port), not any port of a host.
    inbox = OriginValidator(AuthMiddlewareStack(URLRouter(inbox_urlpatterns)), _ConfiguredOrigins())
    chat = ChatOriginValidator(URLRouter(chat_urlpatterns))

    async def route(scope, receive, send):
        application = chat if scope.get("path", "").startswith("/ws/chat/") else inbox
        return await application(scope, receive, send)

    return route
