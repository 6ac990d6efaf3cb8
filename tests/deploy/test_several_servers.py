"""Production's shape on one machine: two uvicorn servers and two django-q2 clusters as separate
processes on one PostgreSQL and one Redis, behind HAProxy running deploy/haproxy.cfg (TLS,
websockets, /readyz health checks). An advisor signs in and listens through the proxy, Twilio's
signed webhooks come through it, and one server dies by kill -9."""

import itertools
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import httpx
import pytest
from django_q.conf import Conf
from django_q.tasks import async_task

from conversations.models import Message
from crm.models import ContactPoint
from tests import twilio
from tests.factories import AdvisorFactory, AgencyFactory, ContactPointFactory, CustomerFactory
from tests.stack import (
    PASSWORD,
    SECRET_KEY,
    HAProxy,
    InboxTab,
    app_env,
    free_port,
    log_in,
    pbkdf2_password,
    qcluster,
    sign_and_post,
    unit_graceful_seconds,
    uvicorn_server,
    wait_ready,
    wait_until,
)

MESSAGES = "/webhooks/twilio/messages/"
pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]
NUMBERS = ["+33611000001", "+33611000002", "+33611000003", "+33611000004"]


@pytest.fixture
def bank():
    agency = AgencyFactory(name="Agence Lyon Bellecour", code="lyon-bellecour")
    alice = AdvisorFactory(user__username="alice", agency=agency)
    alice.user.password = pbkdf2_password(PASSWORD)
    alice.user.save(update_fields=["password"])
    for number in NUMBERS:
        customer = CustomerFactory(dedicated_advisor=alice, agency=agency)
        ContactPointFactory(customer=customer, kind=ContactPoint.Kind.WHATSAPP, address=number)
    return alice


def _stack(tmp_path, settings, monkeypatch, *, clusters: int):
    ports = {"web1": free_port(), "web2": free_port()}
    proxy = HAProxy(ports, log_dir=tmp_path)
    # Signatures are computed over the public URL, the proxy's: as Twilio's would be.
    settings.PUBLIC_BASE_URL = proxy.url
    # This process enqueues tasks too, as one more host of the deployment.
    settings.SECRET_KEY = SECRET_KEY
    monkeypatch.setattr(Conf, "SECRET_KEY", SECRET_KEY)  # django-q2 reads it once, at import
    env = app_env(PUBLIC_BASE_URL=proxy.url, ALLOWED_HOSTS="127.0.0.1", FORWARDED_ALLOW_IPS="127.0.0.1")
    servers = {name: uvicorn_server(name, port, env=env, log_dir=tmp_path) for name, port in ports.items()}
    workers = [
        qcluster(
            f"cluster{n}",
            env={**env, "Q_WORKERS": "1", "Q_BULK": "1", "ATTITRE_TEST_CLUSTER": str(n)},
            log_dir=tmp_path,
        )
        for n in range(1, clusters + 1)
    ]
    processes = [*servers.values(), *workers]
    try:
        for name, port in ports.items():
            wait_ready(f"http://127.0.0.1:{port}", process=servers[name])
        proxy.start()
        processes.append(proxy.process)
        proxy.wait_status({"web1": "UP", "web2": "UP"})
    except BaseException:
        for process in processes:
            process.kill()
        raise
    return SimpleNamespace(proxy=proxy, servers=servers, workers=workers, processes=processes)


@pytest.fixture
def stack(tmp_path, settings, monkeypatch, bank):
    stack = _stack(tmp_path, settings, monkeypatch, clusters=2)
    yield stack
    for process in stack.processes:
        process.kill()


@pytest.fixture
def servers_only(tmp_path, settings, monkeypatch, bank):
    stack = _stack(tmp_path, settings, monkeypatch, clusters=0)
    yield stack
    for process in stack.processes:
        process.kill()


def test_a_webhook_on_one_server_reaches_an_advisor_on_the_other(stack):
    """Alice signs in and listens on web2 (web1 drained); a webhook then served by web1
    (web2 drained) reaches her socket on web2, through the channel layer they share."""
    proxy = stack.proxy
    proxy.set_state("web1", "drain")
    session = log_in(proxy.url, username="alice", ssl_context=proxy.ssl)
    with InboxTab(proxy.url, session=session, ssl_context=proxy.ssl) as tab:
        assert (proxy.servers()["web1"]["current"], proxy.servers()["web2"]["current"]) == (0, 1)
        proxy.set_state("web1", "ready")
        proxy.set_state("web2", "drain")
        webhooks_on_web1 = proxy.servers("webhooks")["web1"]["total"]

        with httpx.Client(verify=proxy.ssl, timeout=10) as client:
            params = twilio.whatsapp_text(body="Bonjour depuis web1", sender=NUMBERS[0])
            answer = sign_and_post(client, proxy.url, MESSAGES, params)

        assert answer.status_code == 200, answer.text
        assert proxy.servers("webhooks")["web1"]["total"] == webhooks_on_web1 + 1
        message = Message.objects.get(provider_message_id=params["MessageSid"])
        wait_until(lambda: message.pk in tab.message_ids(), seconds=10, what="the message on alice's socket")
        assert tab.connections == 1


def test_a_task_runs_once_on_either_of_two_clusters(stack, tmp_path):
    """Tasks in the queue both clusters poll each run exactly once, on one cluster or the other:
    each cluster has one worker, and a task waits until the other cluster has run one too."""
    traces = tmp_path / "ran"
    traces.mkdir()
    for number in range(12):
        async_task("tests.tasks_for_cluster.rendezvous", str(traces), number, 2)

    def all_ran():
        return len(list(traces.iterdir())) == 12 and all(path.read_text() for path in traces.iterdir())

    wait_until(all_ran, seconds=40, what="12 tasks run", logs=stack.workers)
    runs = {int(path.name): path.read_text().split() for path in traces.iterdir()}
    assert all(len(clusters) == 1 for clusters in runs.values()), runs
    assert {clusters[0] for clusters in runs.values()} == {"1", "2"}


def test_kill_9_of_a_server_loses_no_message_and_its_sockets_catch_up_on_the_other(servers_only, bank):
    """web1 dies by kill -9 in the middle of a stream of webhooks: every webhook is answered 200
    (the proxy sends one web1 never answered to web2) and stored once, and alice's socket, which
    was on web1, reconnects through the proxy to web2 and catches up on every message."""
    proxy = servers_only.proxy
    proxy.set_state("web2", "drain")
    session = log_in(proxy.url, username="alice", ssl_context=proxy.ssl)
    with InboxTab(proxy.url, session=session, ssl_context=proxy.ssl) as tab:
        assert (proxy.servers()["web1"]["current"], proxy.servers()["web2"]["current"]) == (1, 0)
        proxy.set_state("web2", "ready")

        total, kill_after = 80, 25
        sids = [twilio.new_sid() for _ in range(total)]
        answered: list[int] = []
        lock = threading.Lock()
        numbers = itertools.cycle(NUMBERS)

        def post(sid: str, number: str) -> None:
            params = twilio.whatsapp_text(body=f"Message {sid}", sender=number, sid=sid)
            with httpx.Client(verify=proxy.ssl, timeout=30) as client:
                status = sign_and_post(client, proxy.url, MESSAGES, params).status_code
            with lock:
                answered.append(status)

        with ThreadPoolExecutor(max_workers=4) as pool:
            futures = [pool.submit(post, sid, next(numbers)) for sid in sids]
            wait_until(lambda: len(answered) >= kill_after, seconds=30, what=f"{kill_after} webhooks answered")
            servers_only.servers["web1"].kill()
            for future in futures:
                future.result()

        assert answered == [200] * total
        stored = dict(Message.objects.filter(provider_message_id__in=sids).values_list("provider_message_id", "pk"))
        assert sorted(stored) == sorted(sids)
        wait_until(
            lambda: set(stored.values()) <= tab.message_ids(),
            seconds=30,
            what="every stored message on alice's socket",
            logs=servers_only.processes,
        )
        assert tab.drops >= 1 and tab.connections >= 2
        assert proxy.servers()["web2"]["current"] == 1


def test_sigterm_drains_a_server_its_sockets_move_to_the_other(servers_only):
    """The restart of docs/deployment.md: web1 drained at the proxy, then SIGTERM. uvicorn, as
    the unit starts it, closes alice's socket (1012) and exits by itself, well before systemd's
    SIGKILL; her tab reopens through the proxy on web2. Without --timeout-graceful-shutdown,
    uvicorn with open inbox sockets never exited (bench/drain.py)."""
    proxy = servers_only.proxy
    proxy.set_state("web2", "drain")
    session = log_in(proxy.url, username="alice", ssl_context=proxy.ssl)
    with InboxTab(proxy.url, session=session, ssl_context=proxy.ssl) as tab:
        assert proxy.servers()["web1"]["current"] == 1
        proxy.set_state("web2", "ready")
        proxy.set_state("web1", "drain")
        web1 = servers_only.servers["web1"]
        web1.terminate(timeout=unit_graceful_seconds() + 10)
        # Shut down by itself, then ends as SIGTERM asked (uvicorn re-raises it); -9 would be our SIGKILL.
        assert web1.popen.returncode == -signal.SIGTERM, web1.tail()
        wait_until(lambda: tab.connections == 2 and tab.is_open(), seconds=20, what="alice's tab on web2")
        assert proxy.servers()["web2"]["current"] == 1
