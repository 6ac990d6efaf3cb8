"""The ASGI entry point: Channels' ProtocolTypeRouter with HTTP served by Django,
except Twilio's webhooks, which take a lean route into the same handlers, anymail's
(email), served by Django in a fixed pool of threads (conversations/email_asgi.py), and the
live inbox's websocket, which checks the Origin and reads the Django session."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Django must be set up before anything imports models.
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from channels_app.routing import websocket_urlpatterns  # noqa: E402
from conversations.asgi import TwilioWebhookRoute  # noqa: E402
from conversations.email_asgi import EmailWebhookRoute  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": TwilioWebhookRoute(fallback=EmailWebhookRoute(fallback=django_asgi_app)),
        # The Origin check stops another site's page from opening a socket with the user's cookie.
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
