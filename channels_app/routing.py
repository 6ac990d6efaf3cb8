"""Websocket routes, mounted by config.asgi behind the origin check and the session login."""

from django.urls import path

from channels_app.consumers import InboxConsumer

websocket_urlpatterns = [path("ws/inbox/", InboxConsumer.as_asgi())]
