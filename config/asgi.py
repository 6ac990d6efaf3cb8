"""The ASGI entry point: Channels' ProtocolTypeRouter with HTTP served by Django,
except Twilio's webhooks, which take a lean route into the same handlers, and the
live inbox's websocket, which checks the Origin and reads the Django session."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Django must be set up before anything imports models.
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import OriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402

from channels_app.routing import websocket_urlpatterns  # noqa: E402
from conversations.asgi import TwilioWebhookRoute  # noqa: E402


class _ConfiguredOrigins:
    """WEBSOCKET_ALLOWED_ORIGINS as it is when a socket connects (tests and embedding
    projects change settings after this module loads)."""

    def __iter__(self):
        return iter(settings.WEBSOCKET_ALLOWED_ORIGINS)

    def __contains__(self, origin):
        return origin in settings.WEBSOCKET_ALLOWED_ORIGINS


application = ProtocolTypeRouter(
    {
        "http": TwilioWebhookRoute(fallback=django_asgi_app),
        # The Origin check stops another site's page from opening a socket with the user's
        # cookie: the exact origins configured (scheme, host and port), not any port of a host.
        "websocket": OriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)), _ConfiguredOrigins()),
    }
)
