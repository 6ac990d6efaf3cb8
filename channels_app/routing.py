"""Websocket routes, mounted by config.asgi: the advisors' inbox behind the allowed-hosts
origin check and the session login; the customers' chat behind the bank's sites' origins,
without cookies (the bank's token signs the customer in)."""

from channels.auth import AuthMiddlewareStack
from channels.routing import URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from django.urls import path

from channels_app.chat import ChatConsumer, ChatOriginValidator
from channels_app.consumers import InboxConsumer

inbox_urlpatterns = [path("ws/inbox/", InboxConsumer.as_asgi())]
chat_urlpatterns = [path("ws/chat/", ChatConsumer.as_asgi())]
# The inbox's routes alone, as they were: what tests and benchmarks mount.
websocket_urlpatterns = inbox_urlpatterns


def websocket_application():
    # The Origin check stops another site's page from opening a socket with the user's cookie.
    inbox = AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(inbox_urlpatterns)))
    chat = ChatOriginValidator(URLRouter(chat_urlpatterns))

    async def route(scope, receive, send):
        application = chat if scope.get("path", "").startswith("/ws/chat/") else inbox
        return await application(scope, receive, send)

    return route
