"""Liveness and readiness probes for the orchestrator."""

import logging

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)


@require_GET
def healthz(request):
    """The process is alive; touches nothing."""
    return JsonResponse({"status": "ok"})


def _check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:  # any driver error means "not ready"
        logger.warning("readyz: database unreachable: %s", type(exc).__name__)
        return type(exc).__name__
    return None


def _check_redis() -> str | None:
    try:
        # A real round trip through the configured Redis cache client.
        cache.get("readyz-probe")
    except Exception as exc:
        logger.warning("readyz: redis unreachable: %s", type(exc).__name__)
        return type(exc).__name__
    return None


@require_GET
def readyz(request):
    """The database, and Redis when configured, answer. Without the database this server can
    serve nothing: 503. Without Redis it still stores webhooks and serves pages (the live push
    waits for the replay): 200, "degraded", naming it. Redis is shared by every server, so
    failing readiness for it would have the proxy take them all out at once."""
    checks = {"database": _check_database()}
    if settings.REDIS_URL:
        checks["redis"] = _check_redis()
    failed = sorted(name for name, error in checks.items() if error)
    unavailable = checks["database"] is not None
    body = {
        "status": "unavailable" if unavailable else "degraded" if failed else "ok",
        "checks": {name: ("ok" if error is None else f"failed: {error}") for name, error in checks.items()},
    }
    if failed:
        body["failed"] = failed
    return JsonResponse(body, status=503 if unavailable else 200)
