"""REDIS_URL and REDIS_SENTINELS: one server, or the master Sentinel names, for the channel layer,
the cache and presence alike."""

import pytest
from django.core.cache.backends.redis import RedisCacheClient
from redis.sentinel import SentinelConnectionPool

from core.redis_config import (
    RedisConfigError,
    SentinelPool,
    cache_options,
    channel_layer_host,
    redis_location,
    sync_client,
)
from tests.test_settings import start

SENTINELS = "10.0.0.1:26379, 10.0.0.2:26379,[::1]:26380"


def test_one_server_is_its_url():
    """Without Sentinels the layer, the cache and presence connect to REDIS_URL itself."""
    location = redis_location(url="redis://redis.internal:6380/2")
    assert channel_layer_host(location, socket_timeout=20) == {
        "address": "redis://redis.internal:6380/2",
        "socket_timeout": 20,
    }
    assert cache_options(location, socket_timeout=1) == {"socket_timeout": 1}
    assert sync_client(location).connection_pool.connection_kwargs["port"] == 6380
    assert redis_location(url="") is None


def test_sentinels_name_the_master_in_the_urls_host():
    """With REDIS_SENTINELS, REDIS_URL's host is the master's name; db and password still come from it."""
    location = redis_location(url="redis://:s3cret@attitre/3", sentinels=SENTINELS, sentinel_password="watch")
    host = channel_layer_host(location, socket_timeout=20)
    assert host["master_name"] == "attitre"
    assert host["sentinels"] == [("10.0.0.1", 26379), ("10.0.0.2", 26379), ("::1", 26380)]
    assert (host["db"], host["password"], host["socket_timeout"]) == (3, "s3cret", 20)
    assert host["sentinel_kwargs"]["password"] == "watch"
    assert "address" not in host

    client = sync_client(location, socket_timeout=1)
    assert isinstance(client.connection_pool, SentinelConnectionPool)
    assert client.connection_pool.service_name == "attitre"
    assert client.connection_pool.connection_kwargs["db"] == 3


def test_the_cache_builds_a_sentinel_pool_through_djangos_own_client():
    """Django's RedisCache makes its pool with pool_class.from_url(LOCATION, **OPTIONS)."""
    location = redis_location(url="redis://attitre/1", sentinels=SENTINELS)
    client = RedisCacheClient(["redis://attitre/1"], **cache_options(location, socket_timeout=1))
    pool = client._get_connection_pool(write=True)
    assert isinstance(pool, SentinelPool)
    assert (pool.service_name, pool.connection_kwargs["db"]) == ("attitre", 1)
    assert [s.connection_pool.connection_kwargs["port"] for s in pool.sentinel_manager.sentinels] == [
        26379,
        26379,
        26380,
    ]


@pytest.mark.parametrize(
    ("url", "sentinels", "says"),
    [
        ("redis://attitre:6379/0", SENTINELS, "without a port"),
        ("", SENTINELS, "REDIS_URL is not"),
        ("redis://attitre/0", "10.0.0.1", "host:port pairs"),
    ],
)
def test_contradictory_variables_are_refused_with_the_fix(url, sentinels, says):
    with pytest.raises(RedisConfigError, match=says):
        redis_location(url=url, sentinels=sentinels)


def test_settings_configure_the_layer_and_the_cache_from_the_sentinels():
    """A production start with REDIS_SENTINELS gives the layer and the cache Sentinel pools."""
    code = (
        "from django.conf import settings;"
        "print(settings.CHANNEL_LAYERS['default']['CONFIG']['hosts'][0]['master_name'],"
        " settings.CACHES['default']['OPTIONS']['pool_class'])"
    )
    result = start({"REDIS_URL": "redis://attitre/0", "REDIS_SENTINELS": SENTINELS}, code=code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["attitre", "core.redis_config.SentinelPool"]


def test_settings_refuse_a_sentinel_url_with_a_port():
    result = start({"REDIS_URL": "redis://127.0.0.1:6379/0", "REDIS_SENTINELS": SENTINELS})
    assert result.returncode != 0
    assert "names the master the Sentinels monitor" in result.stderr
