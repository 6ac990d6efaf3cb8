"""The ASGI entry point: Channels' ProtocolTypeRouter with HTTP served by Django,
except Twilio's webhooks, which take a lean route into the same handlers, and anymail's
(email), served by Django in a fixed pool of threads (conversations/email_asgi.py);
websockets for the live inbox (exact Origin checked, Django session read) and the customers'
chat (channels_app.chat)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Django must be set up before anything imports models.
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402

from channels_app.routing import websocket_application  # noqa: E402
from conversations.asgi import TwilioWebhookRoute  # noqa: E402
from conversations.email_asgi import EmailWebhookRoute  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": TwilioWebhookRoute(fallback=EmailWebhookRoute(fallback=django_asgi_app)),
        # The inbox checks the Origin against WEBSOCKET_ALLOWED_ORIGINS (exactly: scheme, host and
        # port), the chat against CHAT_ALLOWED_ORIGINS.
        "websocket": websocket_application(),
    }
)
