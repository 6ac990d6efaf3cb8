import socket

import pytest


def test_healthz_touches_nothing(client, db, django_assert_num_queries):
    """/healthz answers without any query."""
    with django_assert_num_queries(0):
        response = client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


@pytest.mark.django_db
def test_readyz_reports_the_database(client, settings):
    """/readyz checks the database (and Redis when configured)."""
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"]["database"] == "ok"
    assert ("redis" in response.json()["checks"]) == bool(settings.REDIS_URL)


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.django_db
def test_readyz_reports_a_dead_redis_but_stays_ready(client, settings):
    """With Redis unreachable, /readyz names it, degraded, and still answers 200: every server
    shares that Redis and stores webhooks without it, so a proxy must not take them all out."""
    url = f"redis://127.0.0.1:{_closed_port()}/0"
    settings.REDIS_URL = url
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    }
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["failed"]) == ("degraded", ["redis"])
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["redis"].startswith("failed: ")
