"""A bank's own Django project around the installed package, as docs/embedding.md says:
only what `pip install` ships, never this repository's tree or its config/."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What building the package reads; copied so that the build leaves nothing in the tree.
PACKAGE_SOURCES = (
    "pyproject.toml",
    "README.md",
    "core",
    "events",
    "crm",
    "conversations",
    "integrations",
    "journal",
    "channels_app",
)

SETTINGS = """
from datetime import timedelta
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SECRET_KEY = "a-bank-of-its-own"
DEBUG = True
ALLOWED_HOSTS = ["testserver"]
INSTALLED_APPS = [
    "core",
    "events",
    "crm",
    "conversations",
    "integrations",
    "journal",
    "channels_app",
    "bank.apps.BankAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "django_q",
    "axes",  # failed sign-ins locked out (core/signin.py)
]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "core.signin.SessionLifetimeMiddleware",  # idle and absolute session limits
    "django.contrib.messages.middleware.MessageMiddleware",
    "axes.middleware.AxesMiddleware",  # last: a locked-out sign-in's 429 page
]
AUTHENTICATION_BACKENDS = ["core.signin.LockoutBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = 5
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "core.signin.locked_out"
AXES_CLIENT_IP_CALLABLE = "core.signin.client_ip"
SESSION_IDLE_MINUTES = 30
SESSION_MAX_HOURS = 10
SESSION_COOKIE_AGE = SESSION_IDLE_MINUTES * 60
ROOT_URLCONF = "bank.urls"
ASGI_APPLICATION = "bank.asgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
            ],
        },
    },
]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / "bank.sqlite3"}}
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "static-root"
MEDIA_ROOT = BASE_DIR / "media"
LANGUAGES = [("en", "English"), ("fr", "French")]
USE_TZ = True
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
Q_CLUSTER = {
    "name": "attitre", "orm": "default", "workers": 2, "timeout": 60, "retry": 90,
    "max_attempts": 5, "ack_failures": True, "catch_up": False, "poll": 0.2,
    "broker_class": "core.task_broker.OrmBroker", "bulk": 8, "save_limit": 1000,
}
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "integrations.api.auth.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": [
        "integrations.api.auth.ApiKeyRateThrottle",
        "integrations.api.auth.ApiUserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {"api_key": "600/min", "api_user": "300/min"},
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "integrations.api.base.api_exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Attitré integrators' API",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "ThreadStatusEnum": "conversations.models.Thread.Status",
        "MessageStatusEnum": "conversations.models.Message.Status",
        "ChannelEnum": "crm.models.ContactPoint.Kind",
        "ConsentEnum": "crm.models.ContactPoint.Consent",
        "AvailabilityEnum": "crm.models.Advisor.Availability",
        "EventTypeEnum": "events.models.Event.Type",
    },
}
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/inbox/"
REDIS_URL = ""
PUBLIC_BASE_URL = "https://attitre.bank.example"
TWILIO_ACCOUNT_SID = ""
TWILIO_AUTH_TOKEN = ""
TWILIO_API_BASE_URL = "https://api.twilio.com"
TWILIO_CONTENT_BASE_URL = ""
TWILIO_MEDIA_HOSTS = ["api.twilio.com", "media.twiliocdn.com"]
TWILIO_MEDIA_MAX_BYTES = 16 * 1024 * 1024
TWILIO_MESSAGING_SERVICE_SID = ""
TWILIO_WHATSAPP_FROM = ""
TWILIO_SMS_FROM = ""
TWILIO_API_TIMEOUT = 10.0
TWILIO_WEBHOOK_SHARED_KEY = ""
TWILIO_WEBHOOK_THREADS = 8
TWILIO_WEBHOOK_BATCHES = 1
TWILIO_WEBHOOK_BATCH_SIZE = 64
ATTITRE_MEDIA_URL_MAX_AGE_SECONDS = 12 * 3600
ATTITRE_DEFAULT_AGENCY_CODE = ""
ATTITRE_DEFAULT_PHONE_REGION = "FR"
ATTITRE_EVENT_RETENTION_DAYS = 30
ATTITRE_WEBHOOKS_ALLOW_PRIVATE = False
ATTITRE_WEBHOOK_TIMEOUT_SECONDS = 10.0
ATTITRE_WEBHOOK_FIRST_RETRY_SECONDS = 30
ATTITRE_WEBHOOK_RETRY_WINDOW_SECONDS = 24 * 3600
ATTITRE_WEBHOOK_DISABLE_AFTER_FAILURES = 20
ATTITRE_WEBHOOK_DISABLE_AFTER_SECONDS = 24 * 3600
ATTITRE_JOURNAL_ENABLED = True
ATTITRE_JOURNAL_ANCHOR_URL = ""  # where the daily anchor is POSTed (docs/journal.md)
ATTITRE_JOURNAL_SIGNING_KEY = ""  # base64 of a 32-byte Ed25519 seed; set it in production
ATTITRE_RETENTION_YEARS = 5
"""

APPS = """
from django.contrib.admin.apps import AdminConfig


class BankAdminConfig(AdminConfig):
    default_site = "crm.admin_site.AttitreAdminSite"
"""

URLS = """
from django.contrib import admin
from django.urls import include, path

from conversations import webhooks

urlpatterns = [
    path("inbox/", include("conversations.urls")),
    path("webhooks/twilio/media/<str:token>/<str:filename>", webhooks.twilio_media, name="twilio-media"),
    path("api/", include("integrations.api.urls")),
    path("accounts/", include("django.contrib.auth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
]
"""

ASGI = """
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bank.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import OriginValidator  # noqa: E402

from channels_app.routing import websocket_urlpatterns  # noqa: E402
from conversations.asgi import TwilioWebhookRoute  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": TwilioWebhookRoute(fallback=django_asgi_app),
        # Only the exact origins (scheme, host and port) of the pages that open the inbox.
        "websocket": OriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns)), ["https://attitre.bank.example"]
        ),
    }
)
"""

MANAGE = """
import os
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bank.settings")
from django.core.management import execute_from_command_line

execute_from_command_line(sys.argv)
"""

# Run in the host project: where each piece comes from, and a few requests through it.
PROBE = """
import asyncio
import json

import httpx
from django.contrib.staticfiles import finders
from django.template.loader import get_template
from django.test import Client
from django.test.utils import setup_test_environment
from django.utils import translation

import bank.asgi
import conversations
import crm

setup_test_environment()
client = Client()
login = client.get("/accounts/login/")
schema = client.get("/api/schema/")
with translation.override("fr"):
    french = translation.gettext("dedicated advisor")


async def unsigned_webhook():
    transport = httpx.ASGITransport(app=bank.asgi.application)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as asgi:
        response = await asgi.post("/webhooks/twilio/messages/", data={"MessageSid": "SM" + "0" * 32})
    return [response.status_code, response.text]


print(json.dumps({
    "packages": [crm.__file__, conversations.__file__],
    "inbox": [client.get("/inbox/").status_code, client.get("/inbox/")["Location"]],
    "login": [login.status_code, get_template("registration/login.html").origin.name],
    "login_page_links_static": "/static/inbox/" in login.content.decode(),
    "static": [finders.find("inbox/inbox.js"), finders.find("vendor/htmx/htmx.min.js")],
    "schema": [schema.status_code, "customers_list" in schema.content.decode()],
    "admin_login": client.get("/admin/login/").status_code,
    "asgi": type(bank.asgi.application).__name__,
    "webhook": asyncio.run(unsigned_webhook()),
    "french": french,
}))
"""


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")


def test_a_host_project_runs_on_the_installed_package(tmp_path):
    """Installed (not imported from this tree), the apps pass Django's checks, migrate,
    need no migration of their own in the host, serve the login page from their
    templates, find their static files and French catalogue, and publish the API schema."""
    source, site, host = tmp_path / "source", tmp_path / "site", tmp_path / "host"
    source.mkdir()
    for name in PACKAGE_SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(ROOT / name, source / name)
    subprocess.run(  # noqa: S603 (the test's own interpreter and temporary paths)
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site), str(source)],
        check=True,
        capture_output=True,
    )
    for name, text in {
        "manage.py": MANAGE,
        "bank/__init__.py": "",
        "bank/settings.py": SETTINGS,
        "bank/apps.py": APPS,
        "bank/urls.py": URLS,
        "bank/asgi.py": ASGI,
    }.items():
        _write(host / name, text)

    # The venv's interpreter for the dependencies; the package and the host from the temp dir only.
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "REDIS_URL")}
    env.update(PYTHONPATH=f"{site}{os.pathsep}{host}", DJANGO_SETTINGS_MODULE="bank.settings")

    def manage(*args: str) -> str:
        command = [sys.executable, "manage.py", *args]
        result = subprocess.run(command, cwd=host, env=env, capture_output=True, text=True)  # noqa: S603
        assert result.returncode == 0, result.stderr
        return result.stdout

    manage("check", "--fail-level", "WARNING")
    manage("migrate", "--noinput", "-v", "0")
    manage("makemigrations", "--check", "--dry-run")
    probe = json.loads(manage("shell", "-c", PROBE).strip().splitlines()[-1])

    assert all(path.startswith(str(site)) for path in probe["packages"]), probe["packages"]
    assert probe["inbox"] == [302, "/accounts/login/?next=/inbox/"]
    assert probe["login"] == [200, str(site / "conversations" / "templates" / "registration" / "login.html")]
    assert probe["login_page_links_static"]
    assert probe["static"] == [
        str(site / "conversations" / "static" / "inbox" / "inbox.js"),
        str(site / "conversations" / "static" / "vendor" / "htmx" / "htmx.min.js"),
    ]
    assert probe["schema"] == [200, True]
    assert probe["admin_login"] == 200
    assert probe["asgi"] == "ProtocolTypeRouter"
    # Twilio's webhook is served by the host's ASGI application (the lean route), signature checked.
    assert probe["webhook"] == [403, "Invalid or missing X-Twilio-Signature."]
    assert probe["french"] == "conseiller attitré"
