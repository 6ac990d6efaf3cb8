"""Where Redis is: one server, or the master that Redis Sentinel names.

`REDIS_URL` alone is one server (`redis://[:password@]host:port/db`). With `REDIS_SENTINELS`
(`host:port,host:port,…`), the URL's host is the name of the master the Sentinels monitor, as
django-redis and Sentinel itself call it (`redis://[:password@]attitre/0`, no port): every
client asks the Sentinels where that master is now and asks again after a failover, when its
connection to the old master breaks or the old master, demoted, refuses a write.

Three clients follow this: the channel layer (channels-redis builds a Sentinel pool from
`channel_layer_host`), Django's cache (`SentinelPool`, its `pool_class`) and presence
(`sync_client`, its own client with its own timeouts).
"""

from dataclasses import dataclass
from urllib.parse import urlsplit

import redis
from django.conf import settings
from redis.connection import parse_url
from redis.sentinel import Sentinel, SentinelConnectionPool

# How long a client waits for a Sentinel: it is asked at each new connection.
SENTINEL_TIMEOUT_SECONDS = 0.5


class RedisConfigError(ValueError):
    """The Redis variables contradict each other; the message says how to write them."""


@dataclass(frozen=True)
class RedisLocation:
    url: str
    sentinels: tuple[tuple[str, int], ...] = ()
    sentinel_password: str = ""

    @property
    def master_name(self) -> str:
        return urlsplit(self.url).hostname or ""

    def connection_kwargs(self) -> dict:
        """What the URL says besides where: db, username, password, TLS."""
        kwargs = parse_url(self.url)
        kwargs.pop("host", None)
        kwargs.pop("port", None)
        # rediss://: the Sentinel pools pick their own TLS connection class (sync or asyncio).
        if kwargs.pop("connection_class", None) is not None:
            kwargs["ssl"] = True
        return kwargs

    def sentinel_kwargs(self) -> dict:
        kwargs = {"socket_connect_timeout": SENTINEL_TIMEOUT_SECONDS, "socket_timeout": SENTINEL_TIMEOUT_SECONDS}
        if self.sentinel_password:
            kwargs["password"] = self.sentinel_password
        return kwargs


def redis_location(*, url: str, sentinels: str | list[str] = "", sentinel_password: str = "") -> RedisLocation | None:
    """The location the variables describe, None without REDIS_URL."""
    if isinstance(sentinels, str):
        sentinels = [item for item in sentinels.split(",") if item.strip()]
    if not url:
        if sentinels:
            raise RedisConfigError(
                "REDIS_SENTINELS is set but REDIS_URL is not: set REDIS_URL=redis://[:password@]<master name>/<db>, "
                "the master's name being the one in the Sentinels' `sentinel monitor` line."
            )
        return None
    if not sentinels:
        return RedisLocation(url=url)
    parts = urlsplit(url)
    if parts.port is not None or not parts.hostname:
        raise RedisConfigError(
            f"With REDIS_SENTINELS, REDIS_URL names the master the Sentinels monitor, without a port: "
            f"redis://[:password@]<master name>/<db> (got a URL with host {parts.hostname!r} and port {parts.port})."
        )
    return RedisLocation(
        url=url, sentinels=tuple(_host_port(item) for item in sentinels), sentinel_password=sentinel_password
    )


def settings_redis_location() -> RedisLocation | None:
    """The location Django's settings give (REDIS_URL, REDIS_SENTINELS, REDIS_SENTINEL_PASSWORD)."""
    return redis_location(
        url=settings.REDIS_URL,
        sentinels=getattr(settings, "REDIS_SENTINELS", ""),
        sentinel_password=getattr(settings, "REDIS_SENTINEL_PASSWORD", ""),
    )


def _host_port(item: str) -> tuple[str, int]:
    host, sep, port = item.strip().rpartition(":")
    if not sep or not host or not port.isdigit():
        raise RedisConfigError(
            f"REDIS_SENTINELS lists host:port pairs separated by commas; {item.strip()!r} is not one."
        )
    return host.strip("[]"), int(port)


def channel_layer_host(location: RedisLocation, **options) -> dict:
    """One entry of channels-redis's `hosts`."""
    if not location.sentinels:
        return {"address": location.url, **options}
    return {
        "master_name": location.master_name,
        "sentinels": list(location.sentinels),
        "sentinel_kwargs": location.sentinel_kwargs(),
        **location.connection_kwargs(),
        **options,
    }


def cache_options(location: RedisLocation, **options) -> dict:
    """OPTIONS of Django's RedisCache, whose LOCATION is the URL."""
    if not location.sentinels:
        return options
    return {
        "pool_class": "core.redis_config.SentinelPool",
        "sentinels": list(location.sentinels),
        "sentinel_kwargs": location.sentinel_kwargs(),
        **options,
    }


class SentinelPool(SentinelConnectionPool):
    """A pool of connections to the master the URL names, found through the Sentinels: Django's
    RedisCache builds its pools with `pool_class.from_url(LOCATION, **OPTIONS)`."""

    @classmethod
    def from_url(cls, url, *, sentinels, sentinel_kwargs=None, **options):
        location = RedisLocation(url=url, sentinels=tuple(tuple(item) for item in sentinels))
        manager = Sentinel(location.sentinels, sentinel_kwargs=sentinel_kwargs)
        return cls(location.master_name, manager, **location.connection_kwargs(), **options)


def sync_client(location: RedisLocation, **options) -> redis.Redis:
    """A redis-py client of the location's server (its master, with Sentinels)."""
    if not location.sentinels:
        return redis.Redis.from_url(location.url, **options)
    manager = Sentinel(location.sentinels, sentinel_kwargs=location.sentinel_kwargs())
    return manager.master_for(location.master_name, **location.connection_kwargs(), **options)
