"""Redis high availability: a server configured with REDIS_SENTINELS (channel layer, cache and
presence) keeps storing webhooks while Sentinel fails the Redis master over to its replica, and
the advisor's socket catches up on every message."""

import itertools
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import redis

from conversations.models import Message
from crm.models import ContactPoint
from events.presence import REDIS_PREFIX
from tests import twilio
from tests.factories import AdvisorFactory, AgencyFactory, ContactPointFactory, CustomerFactory
from tests.stack import (
    PASSWORD,
    InboxTab,
    RedisWithSentinels,
    app_env,
    free_port,
    log_in,
    pbkdf2_password,
    sign_and_post,
    uvicorn_server,
    wait_ready,
    wait_until,
)

MESSAGES = "/webhooks/twilio/messages/"
NUMBERS = ["+33612000001", "+33612000002"]
pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def alice():
    agency = AgencyFactory(code="lyon-bellecour")
    alice = AdvisorFactory(user__username="alice", agency=agency)
    alice.user.password = pbkdf2_password(PASSWORD)
    alice.user.save(update_fields=["password"])
    for number in NUMBERS:
        customer = CustomerFactory(dedicated_advisor=alice, agency=agency)
        ContactPointFactory(customer=customer, kind=ContactPoint.Kind.WHATSAPP, address=number)
    return alice


@pytest.fixture
def sentinel_pair(tmp_path):
    pair = RedisWithSentinels(tmp_path)
    try:
        pair.wait_watched()
        yield pair
    finally:
        pair.stop()


@pytest.fixture
def server(tmp_path, settings, sentinel_pair, alice):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings.PUBLIC_BASE_URL = url
    env = app_env(
        DEBUG="1",
        PUBLIC_BASE_URL=url,
        REDIS_URL=f"redis://{RedisWithSentinels.MASTER}/0",
        REDIS_SENTINELS=sentinel_pair.sentinels,
    )
    process = uvicorn_server("web", port, env=env, log_dir=tmp_path)
    try:
        wait_ready(url, process=process)
        yield url, process
    finally:
        process.kill()


def test_a_sentinel_failover_during_webhooks_loses_no_message_and_the_socket_catches_up(sentinel_pair, server):
    """The master dies (kill -9) in the middle of a stream of webhooks: every one is answered
    200 and stored; Sentinel promotes the replica, the server's layer, cache and presence follow
    it, and alice's socket ends up with every message."""
    url, process = server
    first_master, replica = sentinel_pair.ports
    assert httpx.get(f"{url}/readyz").json()["checks"]["redis"] == "ok"
    session = log_in(url, username="alice", ssl_context=None)
    with InboxTab(url, session=session, ssl_context=None) as tab:
        total, kill_after = 60, 15
        sids = [twilio.new_sid() for _ in range(total)]
        answered: list[int] = []
        lock = threading.Lock()
        numbers = itertools.cycle(NUMBERS)

        def post(sid: str, number: str) -> None:
            params = twilio.whatsapp_text(body=f"Message {sid}", sender=number, sid=sid)
            with httpx.Client(timeout=30) as client:
                status = sign_and_post(client, url, MESSAGES, params).status_code
            with lock:
                answered.append(status)

        with ThreadPoolExecutor(max_workers=2) as pool:
            futures = [pool.submit(post, sid, next(numbers)) for sid in sids]
            wait_until(lambda: len(answered) >= kill_after, seconds=30, what=f"{kill_after} webhooks answered")
            sentinel_pair.processes[first_master].kill()
            wait_until(
                lambda: sentinel_pair.master_port() == replica,
                seconds=30,
                what="the replica promoted",
                logs=sentinel_pair.processes.values(),
            )
            for future in futures:
                future.result()

        assert answered == [200] * total
        stored = dict(Message.objects.filter(provider_message_id__in=sids).values_list("provider_message_id", "pk"))
        assert sorted(stored) == sorted(sids)
        wait_until(
            lambda: set(stored.values()) <= tab.message_ids(),
            seconds=30,
            what="every stored message on alice's socket",
            logs=[process],
        )
        # Live again on the new master: a message now arrives without a reconnection.
        connections = tab.connections
        params = twilio.whatsapp_text(body="Après la bascule", sender=NUMBERS[0])
        assert sign_and_post(httpx.Client(), url, MESSAGES, params).status_code == 200
        late = Message.objects.get(provider_message_id=params["MessageSid"])
        wait_until(lambda: late.pk in tab.message_ids(), seconds=10, what="a message after the failover")
        assert tab.connections == connections

        # The cache and presence write to the new master.
        assert httpx.get(f"{url}/readyz").json()["checks"]["redis"] == "ok"
        new_master = redis.Redis(port=replica, decode_responses=True)
        wait_until(
            lambda: new_master.zcard(f"{REDIS_PREFIX}:sockets") >= 1,
            seconds=40,
            what="alice's presence on the new master",
            logs=[process],
        )
