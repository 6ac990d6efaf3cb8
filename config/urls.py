from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from config import health
from conversations import webhooks

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="inbox:list", permanent=False), name="home"),
    path("inbox/", include("conversations.urls")),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    # Twilio's webhooks are not here: config.asgi serves them on the lean route (conversations/asgi.py).
    # Outbound attachments, fetched by Twilio through a signed, expiring token.
    path("webhooks/twilio/media/<str:token>/<str:filename>", webhooks.twilio_media, name="twilio-media"),
    # Email service providers' inbound and tracking webhooks (anymail: basic auth, their signatures).
    path("anymail/", include("anymail.urls")),
    path("admin/", admin.site.urls),
    path("api/", include("integrations.api.urls")),
    path("accounts/", include("django.contrib.auth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
]
