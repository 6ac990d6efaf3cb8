"""Attitré settings: one code path, configured only by environment variables.

Nothing set gives the embedded laptop default (SQLite in WAL mode, in-memory
channel layer, local-memory cache, django-q2 on the ORM broker). DATABASE_URL and
REDIS_URL switch to the production shape (PostgreSQL, Redis).
"""

import os
import tempfile
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from core.redis_config import RedisConfigError, cache_options, channel_layer_host, redis_location

BASE_DIR = Path(__file__).resolve().parent.parent

# Only ever used with DEBUG on; a production start refuses it (below).
INSECURE_SECRET_KEY = "django-insecure-attitre-development-key-do-not-use-in-production"  # noqa: S105


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if not value:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


DEBUG = env_bool("DEBUG", True)
SECRET_KEY = os.environ.get("SECRET_KEY", INSECURE_SECRET_KEY)
if not DEBUG and SECRET_KEY == INSECURE_SECRET_KEY:
    raise ImproperlyConfigured(
        "Refusing to start with DEBUG off and the built-in development SECRET_KEY. "
        "Set the SECRET_KEY environment variable to a long random value "
        '(python -c "import secrets; print(secrets.token_urlsafe(50))").'
    )

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
# The public https URL Twilio calls; webhook signatures are checked against it so
# that they still verify behind a TLS-terminating proxy.
PUBLIC_BASE_URL = os.environ.get("PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/")


def _loopback_aliases(origin: str) -> list[str]:
    """http://127.0.0.1:8000 → the same scheme and port on localhost and [::1] too."""
    parts = urlsplit(origin)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        return [origin]
    port = f":{parts.port}" if parts.port else ""
    return [f"{parts.scheme}://{host}{port}" for host in ("127.0.0.1", "localhost", "[::1]")]


# The exact origins (scheme, host and port) whose pages may open the advisors' websocket with
# their cookie: our own public origin and the trusted ones; in DEBUG also its loopback names.
_PUBLIC_ORIGIN = "{0.scheme}://{0.netloc}".format(urlsplit(PUBLIC_BASE_URL))
WEBSOCKET_ALLOWED_ORIGINS = env_list(
    "WEBSOCKET_ALLOWED_ORIGINS",
    list(dict.fromkeys((_loopback_aliases(_PUBLIC_ORIGIN) if DEBUG else [_PUBLIC_ORIGIN]) + CSRF_TRUSTED_ORIGINS)),
)

INSTALLED_APPS = [
    # Ours before Django's admin: their templates (registration/logged_out.html) come first.
    "core",
    "events",
    "crm",
    "conversations",
    "integrations",
    "journal",
    "channels_app",
    "config.apps.AttitreAdminConfig",
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
    "anymail",
    "axes",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "config.middleware.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "core.signin.SessionLifetimeMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a locked-out sign-in into its 429 page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

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

# --- Database -----------------------------------------------------------------
DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL:
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)}
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # Parameters bound on the server, and a statement that has run five times on a connection
        # prepared there (psycopg's default threshold): planning the webhooks' contact lookup
        # cost more than running it (docs/design.md). Prepared statements off for a pooler
        # that cannot carry them from one transaction to the next (PgBouncer in transaction
        # mode before 1.21); binding on the server needs no more than PgBouncer has.
        DATABASES["default"].setdefault("OPTIONS", {}).update(
            server_side_binding=True,
            prepare_threshold=5 if env_bool("DATABASE_PREPARED_STATEMENTS", True) else None,
        )
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("SQLITE_PATH", str(BASE_DIR / "db.sqlite3")),
            "OPTIONS": {
                # WAL lets the web process read while the task worker writes; IMMEDIATE
                # transactions plus a busy timeout make concurrent writers wait, not fail.
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
            },
            # A file, not shared-cache memory, so tests see the same WAL locking as a deployment.
            # One file per test process, so concurrent test runs never share it.
            "TEST": {"NAME": str(Path(tempfile.gettempdir()) / f"attitre-test-{os.getpid()}.sqlite3")},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: channel layer and cache -------------------------------------------
# One server (REDIS_URL), or with REDIS_SENTINELS the master that Sentinel names in REDIS_URL's
# host (core/redis_config.py): the channel layer, the cache and presence follow a failover.
REDIS_URL = os.environ.get("REDIS_URL", "")
REDIS_SENTINELS = env_list("REDIS_SENTINELS", [])
REDIS_SENTINEL_PASSWORD = os.environ.get("REDIS_SENTINEL_PASSWORD", "")
try:
    REDIS_LOCATION = redis_location(url=REDIS_URL, sentinels=REDIS_SENTINELS, sentinel_password=REDIS_SENTINEL_PASSWORD)
except RedisConfigError as exc:
    raise ImproperlyConfigured(str(exc)) from exc
if REDIS_LOCATION:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_app.layers.RedisChannelLayer",
            "CONFIG": {
                # Short timeouts: a dead Redis must never stall a webhook; the durable
                # Event log is the source of truth and the inbox replays from it.
                # socket_timeout must exceed channels-redis's 5 s blocking receive by a wide
                # margin: a busy event loop that reads the answer a second late would fail the
                # process's shared receive, and with it every open inbox socket at once
                # (seen with 5,000 sockets at 6 s). Pushes run on the loop, never in a webhook
                # thread, so a slow Redis does not stall webhooks; a dead one is caught fast
                # by the connect timeout.
                # redis-py's pool holds 100 connections and raises past that: a burst of inbox
                # tabs reconnecting after a restart (bench/sockets.py) needs far more.
                "hosts": [
                    channel_layer_host(
                        REDIS_LOCATION,
                        socket_connect_timeout=0.5,
                        socket_timeout=20,
                        max_connections=int(os.environ.get("REDIS_MAX_CONNECTIONS", "2000")),
                    )
                ],
                "capacity": 1000,
                "expiry": 30,
            },
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "OPTIONS": cache_options(REDIS_LOCATION, socket_connect_timeout=0.5, socket_timeout=1),
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Task queue ---------------------------------------------------------------
# The ORM broker is deliberate: a task enqueued in the same transaction as the row
# it acts on commits or rolls back with it (our outbox). `retry` must exceed
# `timeout`, or a slow task would be handed to a second worker while still running.
Q_WORKERS = int(os.environ.get("Q_WORKERS", "2"))
Q_CLUSTER = {
    "name": "attitre",
    "orm": "default",
    "workers": Q_WORKERS,
    # Tasks claimed ahead of the workers: one waiting per worker (django-q2's default is
    # workers², 64 for 8), plus at most one claim of `bulk` in the pusher's hand. A cluster
    # runs what it claimed before stopping, and a task waiting past `retry` is claimed again
    # by another cluster: docs/deployment.md.
    "queue_limit": Q_WORKERS,
    "timeout": 60,
    "retry": 90,
    "max_attempts": 5,
    "ack_failures": True,
    "catch_up": False,
    "poll": 0.2,
    # django-q2's ORM broker with one statement per claim and per acknowledgement
    # (core/task_broker.py); `bulk` tasks claimed at once when the queue is busy.
    "broker_class": "core.task_broker.OrmBroker",
    "bulk": int(os.environ.get("Q_BULK", "8")),
    # Successes kept (only the tasks that ask: core.tasks.enqueue saves none, the schedules'
    # runs are). Failures are all kept, for ATTITRE_TASK_RESULT_RETENTION_DAYS (core.tasks).
    "save_limit": 1000,
    "label": _("Task queue"),
}
ATTITRE_TASK_RESULT_RETENTION_DAYS = int(os.environ.get("ATTITRE_TASK_RESULT_RETENTION_DAYS", "30"))

# --- Auth, i18n, static ---------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/accounts/login/"

# --- Sign-in and sessions (core/signin.py) ---------------------------------------------
# Failed sign-ins (the inbox's and the admin's) lock the account from that address after
# AUTH_LOCKOUT_FAILURES in a row, for AUTH_LOCKOUT_MINUTES; a supervisor unlocks an advisor
# from the admin (Advisors › "Unlock sign-in"). A success resets the count.
AUTHENTICATION_BACKENDS = ["core.signin.LockoutBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = int(os.environ.get("AUTH_LOCKOUT_FAILURES", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=int(os.environ.get("AUTH_LOCKOUT_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_HTTP_RESPONSE_CODE = 429
AXES_LOCKOUT_CALLABLE = "core.signin.locked_out"
# The client's address is REMOTE_ADDR, which uvicorn sets from X-Forwarded-For for the proxies
# FORWARDED_ALLOW_IPS trusts (docs/deployment.md): nothing a client sends decides it.
AXES_CLIENT_IP_CALLABLE = "core.signin.client_ip"
# Passwords and the CSRF token never reach axes' logs.
AXES_SENSITIVE_PARAMETERS = ["password", "csrfmiddlewaretoken"]
# A session ends after SESSION_IDLE_MINUTES without a request, and SESSION_MAX_HOURS after
# sign-in whatever happens; its row in the store expires with it.
SESSION_IDLE_MINUTES = int(os.environ.get("SESSION_IDLE_MINUTES", "30"))
SESSION_MAX_HOURS = int(os.environ.get("SESSION_MAX_HOURS", "10"))
SESSION_COOKIE_AGE = SESSION_IDLE_MINUTES * 60
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_REFERRER_POLICY = "same-origin"
LOGIN_REDIRECT_URL = "/inbox/"

LANGUAGE_CODE = os.environ.get("LANGUAGE_CODE", "en")
LANGUAGES = [("en", _("English")), ("fr", _("French"))]
LOCALE_PATHS = [BASE_DIR / "core" / "locale"]
TIME_ZONE = "Europe/Paris"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
MEDIA_URL = "media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", str(BASE_DIR / "media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

SECURE_CONTENT_TYPE_NOSNIFF = True
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    # Browsers keep to https for a year once they have seen us; plain http is redirected,
    # except the health checks the proxy makes on the servers' own port.
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", str(365 * 24 * 3600)))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]

# --- Twilio and messaging --------------------------------------------------------
TWILIO_ACCOUNT_SID = os.environ.get("TWILIO_ACCOUNT_SID", "")
TWILIO_AUTH_TOKEN = os.environ.get("TWILIO_AUTH_TOKEN", "")
TWILIO_API_BASE_URL = os.environ.get("TWILIO_API_BASE_URL", "https://api.twilio.com").rstrip("/")
# Hosts a MediaUrl may point at; anything else is refused (no SSRF via a forged URL).
TWILIO_MEDIA_HOSTS = env_list("TWILIO_MEDIA_HOSTS", ["api.twilio.com", "media.twiliocdn.com"])
TWILIO_MEDIA_MAX_BYTES = int(os.environ.get("TWILIO_MEDIA_MAX_BYTES", str(16 * 1024 * 1024)))
# How long the signed URL Twilio fetches an outbound attachment from stays valid: Twilio fetches
# it when the message leaves its queue, where a message may wait up to 10 hours.
ATTITRE_MEDIA_URL_MAX_AGE_SECONDS = int(os.environ.get("ATTITRE_MEDIA_URL_MAX_AGE_SECONDS", str(12 * 3600)))
# The Content API (templates): next to TWILIO_API_BASE_URL when that points at a
# Twilio-compatible server (the simulator), Twilio's own host otherwise.
TWILIO_CONTENT_BASE_URL = os.environ.get("TWILIO_CONTENT_BASE_URL", "").rstrip("/")
# Outbound senders: a Messaging Service when set, else the WhatsApp and SMS numbers.
TWILIO_MESSAGING_SERVICE_SID = os.environ.get("TWILIO_MESSAGING_SERVICE_SID", "")
TWILIO_WHATSAPP_FROM = os.environ.get("TWILIO_WHATSAPP_FROM", "")
TWILIO_SMS_FROM = os.environ.get("TWILIO_SMS_FROM", "")
# The SDK has no timeout by default; a hung call would hold a worker forever.
TWILIO_API_TIMEOUT = float(os.environ.get("TWILIO_API_TIMEOUT", "10"))
# Unknown numbers land in this agency's pool (its code); the first agency if unset.
ATTITRE_DEFAULT_AGENCY_CODE = os.environ.get("ATTITRE_DEFAULT_AGENCY_CODE", "")
# Out-of-hours and away replies: at most one per thread in this many hours (docs/out-of-hours.md).
AUTO_REPLY_COOLDOWN_HOURS = float(os.environ.get("AUTO_REPLY_COOLDOWN_HOURS", "12"))
# Phone numbers written without a country prefix are read in this region.
ATTITRE_DEFAULT_PHONE_REGION = os.environ.get("ATTITRE_DEFAULT_PHONE_REGION", "FR")

# --- Email --------------------------------------------------------------------------
# Sending: Django's backend. anymail's ESP backend in production
# (EMAIL_BACKEND=anymail.backends.postmark.EmailBackend, its keys in ANYMAIL_*), SMTP otherwise.
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
# A hung mail server would hold a worker forever.
EMAIL_TIMEOUT = float(os.environ.get("EMAIL_TIMEOUT", "10"))
# Replies go out From "<advisor> — <agency>" <EMAIL_FROM_ADDRESS>, with a per-thread Reply-To on
# EMAIL_REPLY_ADDRESS's mailbox (`conseil+t<thread>.<signature>@…`, which must reach our inbound).
EMAIL_FROM_ADDRESS = os.environ.get("EMAIL_FROM_ADDRESS", "conseiller@attitre.example")
EMAIL_REPLY_ADDRESS = os.environ.get("EMAIL_REPLY_ADDRESS", EMAIL_FROM_ADDRESS)
DEFAULT_FROM_EMAIL = EMAIL_FROM_ADDRESS
EMAIL_MAX_ATTACHMENT_BYTES = int(os.environ.get("EMAIL_MAX_ATTACHMENT_BYTES", str(20 * 1024 * 1024)))
# IMAP polling of the bank's own mailbox (imaps://user:pass@host/INBOX); off when empty.
EMAIL_IMAP_URL = os.environ.get("EMAIL_IMAP_URL", "")
# After storing a message: flag it \Seen (empty) or move it to this folder.
EMAIL_IMAP_MOVE_TO = os.environ.get("EMAIL_IMAP_MOVE_TO", "")
EMAIL_IMAP_TIMEOUT = float(os.environ.get("EMAIL_IMAP_TIMEOUT", "20"))
# The authority that signed the IMAP server's certificate, when it is the bank's own (a PEM file).
EMAIL_IMAP_CA_FILE = os.environ.get("EMAIL_IMAP_CA_FILE", "")
# --- Web chat in the bank's own site (docs/webchat.md) ---
# The bank's backend signs each customer's token: HS256 with the shared secret, or RS256/ES256
# with the private key whose public half (PEM) is here. Web chat is off while neither is set.
CHAT_JWT_SECRET = os.environ.get("CHAT_JWT_SECRET", "")
CHAT_JWT_PUBLIC_KEY = os.environ.get("CHAT_JWT_PUBLIC_KEY", "").replace("\\n", "\n")
# The bank's sites ("https://www.bank.example"): a chat socket from any other Origin is refused.
CHAT_ALLOWED_ORIGINS = env_list("CHAT_ALLOWED_ORIGINS", [])
# A customer who left the page hears of the advisor's answer on another channel, at most this often.
CHAT_OFFLINE_NOTIFY_MINUTES = int(os.environ.get("CHAT_OFFLINE_NOTIFY_MINUTES", "30"))
# Visitors without a token may chat too, as prospects in the default agency's pool.
CHAT_ALLOW_VISITORS = env_bool("CHAT_ALLOW_VISITORS", False)
# Messages a customer may send per minute on web chat; past it the socket is closed (4429).
CHAT_RATE_PER_MINUTE = int(os.environ.get("CHAT_RATE_PER_MINUTE", "30"))
# Inbound webhooks at /anymail/<esp>/inbound/ and tracking at /anymail/<esp>/tracking/: HTTP basic
# auth with ANYMAIL_WEBHOOK_SECRET ("user:password"), and each ESP's signature where it has one.
ANYMAIL = {
    key.removeprefix("ANYMAIL_"): value
    for key, value in os.environ.items()
    if key.startswith("ANYMAIL_") and key != "ANYMAIL_WEBHOOK_SECRET"
}
if os.environ.get("ANYMAIL_WEBHOOK_SECRET"):
    ANYMAIL["WEBHOOK_SECRET"] = os.environ["ANYMAIL_WEBHOOK_SECRET"]
# Large inbound emails come whole in one POST (anymail reads them into memory).
DATA_UPLOAD_MAX_MEMORY_SIZE = int(os.environ.get("DATA_UPLOAD_MAX_MEMORY_SIZE", str(60 * 1024 * 1024)))

# --- Logging: never message bodies, never tokens ---------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django_q": {"level": os.environ.get("Q_LOG_LEVEL", "WARNING")}},
}

# --- Integrators' REST API (/api/v1/) -------------------------------------------
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
    "DEFAULT_THROTTLE_RATES": {
        "api_key": os.environ.get("API_KEY_RATE", "600/min"),
        "api_user": os.environ.get("API_USER_RATE", "300/min"),
    },
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "integrations.api.base.api_exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Attitré integrators' API",
    "DESCRIPTION": (
        "Customers, advisors, conversations, messages and the event feed of Attitré. "
        "Authenticate with `Authorization: Bearer <API key>`; each key carries scopes and may be "
        "limited to one agency. Errors are JSON objects `{code, detail, fields}`."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema and Swagger UI need a signed-in user or an API key, unless API_SCHEMA_PUBLIC.
    "SERVE_PERMISSIONS": [
        "rest_framework.permissions.AllowAny"
        if env_bool("API_SCHEMA_PUBLIC", False)
        else "rest_framework.permissions.IsAuthenticated"
    ],
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
# Events older than this are pruned daily (conversations.tasks.events_prune), but for the
# lines the thread timeline shows: longer than any reader's replay (webhook retries: 24 h).
ATTITRE_EVENT_RETENTION_DAYS = int(os.environ.get("ATTITRE_EVENT_RETENTION_DAYS", "30"))

# The tamper-evident journal (docs/journal.md). Off only for the benchmark's comparison.
ATTITRE_JOURNAL_ENABLED = env_bool("ATTITRE_JOURNAL_ENABLED", True)
# Where the daily anchor (each agency's head hash) is POSTed, besides the log; empty: log only.
ATTITRE_JOURNAL_ANCHOR_URL = os.environ.get("ATTITRE_JOURNAL_ANCHOR_URL", "")
# Base64 of a 32-byte Ed25519 seed signing regulator exports; empty: derived from SECRET_KEY.
ATTITRE_JOURNAL_SIGNING_KEY = os.environ.get("ATTITRE_JOURNAL_SIGNING_KEY", "")
# Years content is kept after a relationship's last message, for agencies without a policy (5-10).
ATTITRE_RETENTION_YEARS = int(os.environ.get("ATTITRE_RETENTION_YEARS", "5"))

# --- Event webhooks out -----------------------------------------------------------
# Deliveries to loopback, private and link-local addresses are refused unless this is on.
ATTITRE_WEBHOOKS_ALLOW_PRIVATE = env_bool("ATTITRE_WEBHOOKS_ALLOW_PRIVATE", False)
ATTITRE_WEBHOOK_TIMEOUT_SECONDS = float(os.environ.get("ATTITRE_WEBHOOK_TIMEOUT_SECONDS", "10"))
# Retries back off exponentially from the first delay, for at most the retry window.
ATTITRE_WEBHOOK_FIRST_RETRY_SECONDS = int(os.environ.get("ATTITRE_WEBHOOK_FIRST_RETRY_SECONDS", "30"))
ATTITRE_WEBHOOK_RETRY_WINDOW_SECONDS = int(os.environ.get("ATTITRE_WEBHOOK_RETRY_WINDOW_SECONDS", str(24 * 3600)))
# An endpoint failing this many times in a row, or for this long, is disabled.
ATTITRE_WEBHOOK_DISABLE_AFTER_FAILURES = int(os.environ.get("ATTITRE_WEBHOOK_DISABLE_AFTER_FAILURES", "20"))
ATTITRE_WEBHOOK_DISABLE_AFTER_SECONDS = int(os.environ.get("ATTITRE_WEBHOOK_DISABLE_AFTER_SECONDS", str(24 * 3600)))

# Twilio's newer shared-key webhook signing (X-Twilio-Webhooks-Signature-Settings); optional.
TWILIO_WEBHOOK_SHARED_KEY = os.environ.get("TWILIO_WEBHOOK_SHARED_KEY", "")

# Threads per process serving anymail's email webhooks (conversations/email_asgi.py), each
# keeping its database connection.
EMAIL_WEBHOOK_THREADS = int(os.environ.get("EMAIL_WEBHOOK_THREADS", "4"))

# --- Twilio's webhooks in: the lean ASGI route (conversations/asgi.py), per web process ---
# Threads for the route's database work.
TWILIO_WEBHOOK_THREADS = int(os.environ.get("WEBHOOK_THREADS", "8"))
# At most this many batches of each kind (inbound messages, status callbacks) in the
# database at once, and this many requests each. One measured best on two cores with two
# workers (bench/inbound.py: 467-503 msgs/s against 425-448 with two): larger batches,
# fewer statements per message.
TWILIO_WEBHOOK_BATCHES = int(os.environ.get("WEBHOOK_BATCHES", "1"))
TWILIO_WEBHOOK_BATCH_SIZE = int(os.environ.get("WEBHOOK_BATCH_SIZE", "64"))
