"""The production shape as separate processes, for the deployment tests: uvicorn servers and
django-q2 clusters on the test database, HAProxy with deploy/haproxy.cfg in front of them,
Redis with a replica and Sentinels. Each process writes to its own log file, whose end a
failing wait shows."""

import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from django.conf import settings
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.sync.client import connect

from tests.servers import self_signed_certificate

ROOT = Path(__file__).resolve().parents[1]
HAPROXY_CONFIG = ROOT / "deploy" / "haproxy.cfg"
HAPROXY = "/usr/sbin/haproxy"
# Long enough for Django's start on a busy two-core machine; a wait past it fails the test.
START_SECONDS = 30
PASSWORD = "several-servers-password"
# Every process of a deployment shares it: it signs sessions and django-q2's task payloads.
SECRET_KEY = "several-servers-secret-key-" + "x" * 40


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url() -> str:
    """The test database, for processes of their own."""
    database = settings.DATABASES["default"]
    return (
        f"postgres://{database['USER']}:{database['PASSWORD'] or ''}@{database['HOST'] or '127.0.0.1'}:"
        f"{database['PORT'] or 5432}/{database['NAME']}"
    )


def wait_until(predicate: Callable[[], object], *, seconds: float, what: str, logs=()) -> object:
    """Poll until `predicate` answers something true; fail naming `what`, with the logs' ends."""
    deadline = time.monotonic() + seconds
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            tails = "\n".join(process.tail() for process in logs)
            raise AssertionError(f"{what}: not within {seconds} s.\n{tails}")
        time.sleep(0.05)


def pbkdf2_password(password: str) -> str:
    """A hash the servers' default hashers check (the tests' own settings hash with MD5)."""
    return PBKDF2PasswordHasher().encode(password, PBKDF2PasswordHasher().salt(), iterations=1000)


class Process:
    def __init__(self, name: str, args: list[str], *, env: dict, log_dir: Path):
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.popen = subprocess.Popen(  # noqa: S603
            args, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        """kill -9: no chance to close anything."""
        if self.alive():
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(timeout=10)

    def terminate(self, timeout: float = 15) -> float:
        """SIGTERM, then SIGKILL past `timeout` (returncode -9 then): how long it took to exit."""
        started = time.monotonic()
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()
        return time.monotonic() - started

    def tail(self, lines: int = 30) -> str:
        if not self._log.closed:
            self._log.flush()
        text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        return f"--- {self.name} (exit {self.popen.poll()}) ---\n" + "\n".join(text)


def app_env(**extra) -> dict:
    """What a production process of the app gets: DEBUG off, the test database, the run's Redis."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTEST_", "DJANGO_")) and key not in {"REDIS_URL", "DATABASE_URL"}
    }
    env.update(
        DEBUG="0",
        # Some tests reach a server over plain http, without the TLS proxy in front.
        SECURE_SSL_REDIRECT="0",
        SECRET_KEY=SECRET_KEY,
        DATABASE_URL=database_url(),
        TWILIO_ACCOUNT_SID=settings.TWILIO_ACCOUNT_SID,
        TWILIO_AUTH_TOKEN=settings.TWILIO_AUTH_TOKEN,
        LOG_LEVEL="WARNING",
    )
    if settings.REDIS_URL:
        env["REDIS_URL"] = settings.REDIS_URL
    env.update(extra)
    return env


def unit_graceful_seconds() -> int:
    """uvicorn's --timeout-graceful-shutdown in deploy/attitre-web.service."""
    unit = (ROOT / "deploy" / "attitre-web.service").read_text()
    return int(re.search(r"--timeout-graceful-shutdown (\d+)", unit).group(1))


def uvicorn_server(name: str, port: int, *, env: dict, log_dir: Path) -> Process:
    """One server with the options deploy/attitre-web.service starts it with."""
    args = [
        sys.executable,
        "-m",
        "uvicorn",
        "config.asgi:application",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--lifespan",
        "off",
        "--no-access-log",
        "--proxy-headers",
    ]
    args += ["--timeout-graceful-shutdown", str(unit_graceful_seconds())]
    return Process(name, args, env=env, log_dir=log_dir)


def qcluster(name: str, *, env: dict, log_dir: Path) -> Process:
    return Process(name, [sys.executable, "manage.py", "qcluster"], env=env, log_dir=log_dir)


def wait_ready(url: str, *, process: Process) -> None:
    def ready():
        if not process.alive():
            raise AssertionError(f"{process.name} exited.\n{process.tail()}")
        try:
            return httpx.get(f"{url}/readyz", timeout=2, headers={"Host": "127.0.0.1"}).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(ready, seconds=START_SECONDS, what=f"{process.name} ready at {url}", logs=[process])


class HAProxy:
    """HAProxy running deploy/haproxy.cfg, TLS on a self-signed certificate, and its admin socket."""

    def __init__(self, servers: dict[str, int], *, log_dir: Path):
        key, cert = self_signed_certificate(log_dir)
        self.pem = log_dir / "haproxy.pem"
        self.pem.write_text(Path(cert).read_text() + Path(key).read_text())
        self.port, self.http_port = free_port(), free_port()
        self.url = f"https://127.0.0.1:{self.port}"
        self.socket = log_dir / "haproxy.sock"
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "ATTITRE_PUBLIC_HOST": "127.0.0.1",
            "ATTITRE_TLS_CERT": str(self.pem),
            "ATTITRE_HTTPS_BIND": f"127.0.0.1:{self.port}",
            "ATTITRE_HTTP_BIND": f"127.0.0.1:{self.http_port}",
            "ATTITRE_HAPROXY_SOCKET": str(self.socket),
            "ATTITRE_HAPROXY_LOG": "stdout",
            "ATTITRE_HAPROXY_MAXCONN": "2000",
        }
        for name, port in servers.items():
            env[f"ATTITRE_{name.upper()}"] = f"127.0.0.1:{port}"
        self.env, self.log_dir = env, log_dir
        self.ssl = ssl.create_default_context(cafile=cert)
        self.process: Process | None = None

    def start(self) -> "HAProxy":
        if not os.access(HAPROXY, os.X_OK):
            raise AssertionError(
                f"HAProxy is missing ({HAPROXY}): run `make test`, which installs Debian's haproxy package."
            )
        self.process = Process(
            "haproxy", [HAPROXY, "-db", "-f", str(HAPROXY_CONFIG)], env=self.env, log_dir=self.log_dir
        )
        return self

    def command(self, line: str) -> str:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(str(self.socket))
            sock.sendall(line.encode() + b"\n")
            chunks = []
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        return b"".join(chunks).decode()

    def servers(self, backend: str = "web") -> dict[str, dict]:
        """Each server of `backend`: its status (UP, DOWN, MAINT…), current and total sessions."""
        lines = self.command("show stat").lstrip("# ").splitlines()
        header = lines[0].split(",")
        rows = [dict(zip(header, line.split(","), strict=False)) for line in lines[1:] if line]
        return {
            row["svname"]: {"status": row["status"], "current": int(row["scur"]), "total": int(row["stot"])}
            for row in rows
            if row["pxname"] == backend and row["svname"] not in ("FRONTEND", "BACKEND")
        }

    def set_state(self, server: str, state: str) -> None:
        """ready, drain or maint, as an operator would (docs/deployment.md)."""
        answer = self.command(f"set server web/{server} state {state}")
        assert answer.strip() == "", answer

    def wait_status(self, statuses: dict[str, str], *, seconds: float = START_SECONDS) -> None:
        def reached():
            if not self.process.alive():
                raise AssertionError(f"HAProxy exited.\n{self.process.tail()}")
            try:
                current = self.servers()
            except OSError:
                return False
            return all(current.get(name, {}).get("status") == status for name, status in statuses.items())

        wait_until(reached, seconds=seconds, what=f"HAProxy's servers {statuses}", logs=[self.process])


def sign_and_post(client: httpx.Client, base_url: str, path: str, params: dict) -> httpx.Response:
    """POST a webhook as Twilio does: signed over the public URL it was configured with."""
    from tests.twilio import signature_for

    return client.post(base_url + path, data=params, headers={"X-Twilio-Signature": signature_for(path, params)})


def log_in(base_url: str, *, username: str, ssl_context) -> str:
    """Sign in through the login form (CSRF and all), as a browser does: the session cookie."""
    with httpx.Client(verify=ssl_context, timeout=10) as client:
        page = client.get(f"{base_url}/accounts/login/")
        page.raise_for_status()
        token = client.cookies["csrftoken"]
        answer = client.post(
            f"{base_url}/accounts/login/",
            data={"username": username, "password": PASSWORD, "csrfmiddlewaretoken": token},
            headers={"Origin": base_url, "Referer": f"{base_url}/accounts/login/"},
        )
        assert answer.status_code == 302, (answer.status_code, answer.text[:500])
        return client.cookies["sessionid"]


class InboxTab:
    """An advisor's open inbox as the page keeps it: one socket, opened again after a drop
    with `?since=` the last event id it saw, every event kept once."""

    def __init__(self, base_url: str, *, session: str, ssl_context, since: int = 0):
        parts = urlsplit(base_url)
        self.socket_url = f"{'wss' if parts.scheme == 'https' else 'ws'}://{parts.netloc}/ws/inbox/"
        self.origin = base_url
        self.session = session
        self.ssl = ssl_context if parts.scheme == "https" else None
        self.cursor = since
        self.events: dict[int, dict] = {}
        self.connections = 0
        self.drops = 0
        self._open = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._socket = None
        self._thread = threading.Thread(target=self._run, name="inbox-tab", daemon=True)

    def __enter__(self):
        self._thread.start()
        wait_until(self._open.is_set, seconds=START_SECONDS, what="the inbox socket open")
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self._socket is not None:
            self._socket.close()
        self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with connect(
                    f"{self.socket_url}?since={self.cursor}",
                    ssl=self.ssl,
                    origin=self.origin,
                    additional_headers={"Cookie": f"sessionid={self.session}"},
                    open_timeout=5,
                    close_timeout=1,
                ) as websocket:
                    self._socket = websocket
                    self.connections += 1
                    self._open.set()
                    for frame in websocket:
                        self._receive(json.loads(frame))
            except (ConnectionClosed, InvalidHandshake, InvalidStatus, OSError, TimeoutError):
                pass
            self._open.clear()
            self._socket = None
            if not self._stop.is_set():
                self.drops += 1
                self._stop.wait(0.2)

    def _receive(self, event: dict) -> None:
        if event.get("id") is None:
            return
        with self._lock:
            self.events.setdefault(event["id"], event)
            self.cursor = max(self.cursor, event["id"])

    def is_open(self) -> bool:
        return self._open.is_set()

    def message_ids(self) -> set[int]:
        with self._lock:
            return {event["message"]["id"] for event in self.events.values() if event["type"] == "message.created"}


class RedisWithSentinels:
    """A Redis master, its replica and three Sentinels (quorum 2) watching them as `attitre`, on
    free ports: Debian's redis-server and redis-sentinel, as in production."""

    MASTER = "attitre"

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.ports = [free_port(), free_port()]
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.processes: dict[int, Process] = {}
        for index, port in enumerate(self.ports):
            args = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
            args += ["--dir", str(log_dir)] + (["--replicaof", "127.0.0.1", str(self.ports[0])] if index else [])
            self.processes[port] = Process(f"redis-{port}", args, env=dict(os.environ), log_dir=log_dir)
        for port in self.sentinel_ports:
            config = log_dir / f"sentinel-{port}.conf"
            config.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {log_dir}\n"
                f"sentinel monitor {self.MASTER} 127.0.0.1 {self.ports[0]} 2\n"
                f"sentinel down-after-milliseconds {self.MASTER} 1000\n"
                f"sentinel failover-timeout {self.MASTER} 10000\n"
            )
            self.processes[port] = Process(
                f"sentinel-{port}", ["redis-sentinel", str(config)], env=dict(os.environ), log_dir=log_dir
            )

    @property
    def sentinels(self) -> str:
        return ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)

    def sentinel(self, port: int):
        import redis

        return redis.Redis(port=port, socket_timeout=1, decode_responses=True)

    def master_port(self) -> int | None:
        try:
            return int(self.sentinel(self.sentinel_ports[0]).sentinel_get_master_addr_by_name(self.MASTER)[1])
        except Exception:
            return None

    def wait_watched(self) -> None:
        """Every Sentinel knows the master, its replica and the other Sentinels."""

        def watched():
            try:
                for port in self.sentinel_ports:
                    state = self.sentinel(port).sentinel_master(self.MASTER)
                    if state["num-slaves"] < 1 or state["num-other-sentinels"] < 2:
                        return False
                return True
            except Exception:
                return False

        wait_until(watched, seconds=START_SECONDS, what="Sentinels watching the pair", logs=self.processes.values())

    def stop(self) -> None:
        for process in self.processes.values():
            process.kill()
