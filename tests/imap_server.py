"""A real IMAP server for the tests: Debian's Dovecot (`dovecot-imapd`, installed by
`make test`), run in the foreground from a configuration of its own in a temporary
directory, on IMAP_PORT, with one mailbox user; or (`imap_tls_server`) with TLS, IMAPS
and STARTTLS on free ports, with a throwaway certificate for 127.0.0.1."""

import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers import self_signed_certificate


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Free when the tests start, not a fixed number: another checkout's test run on this machine
# may have its own Dovecot listening, and the tests would read its mailbox.
IMAP_PORT = free_port()
IMAP_USER, IMAP_PASSWORD = "conseiller", "imap-test-password"
DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"

CONFIG = """
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
{ssl}
auth_mechanisms = plain login
{users}
first_valid_uid = 0
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root}/home/%u
}}
mail_location = maildir:~/Maildir
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {imaps_port}
  }}
}}
service stats {{
  unix_listener stats-writer {{
    mode = 0666
  }}
}}
"""


def _accounts() -> tuple[str, int, int]:
    """Who Dovecot runs as: as root, its own package users; otherwise whoever we are."""
    if os.geteuid() == 0:
        entry = pwd.getpwnam("dovecot")
        return "default_login_user = dovenull\ndefault_internal_user = dovecot", entry.pw_uid, entry.pw_gid
    me = pwd.getpwuid(os.geteuid()).pw_name
    return f"default_login_user = {me}\ndefault_internal_user = {me}", os.geteuid(), os.getegid()


NO_TLS = "ssl = no\ndisable_plaintext_auth = no"
# TLS offered on the IMAP port (STARTTLS) and on the IMAPS port; no password without it.
TLS = "ssl = required\nssl_cert = <{cert}\nssl_key = <{key}\ndisable_plaintext_auth = yes"


@contextlib.contextmanager
def _dovecot(*, port: int, imaps_port: int = 0, tls: bool = False):
    """Dovecot in the foreground until the block ends; yields its directory."""
    # Not under pytest's temporary directory: Dovecot's own users must reach the files (0700 there).
    root = Path(tempfile.mkdtemp(prefix="attitre-dovecot-"))
    users, uid, gid = _accounts()
    (root / "users").write_text(f"{IMAP_USER}:{{PLAIN}}{IMAP_PASSWORD}\n")
    for directory in ("run", "state", "home"):
        (root / directory).mkdir()
    os.chown(root / "home", uid, gid)
    os.chmod(root, 0o755)  # noqa: S103 (Dovecot's users read their configuration and mail here)
    ssl = NO_TLS
    if tls:
        key, cert = self_signed_certificate(root)
        ssl = TLS.format(cert=cert, key=key)
    config = root / "dovecot.conf"
    config.write_text(
        CONFIG.format(root=root, users=users, uid=uid, gid=gid, port=port, imaps_port=imaps_port, ssl=ssl)
    )
    command = [DOVECOT, "-F", "-c", str(config)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # noqa: S603 (ours)
    try:
        for listening in (port, imaps_port) if imaps_port else (port,):
            _wait_for_port(process, root, listening)
        yield root
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def imap_server():
    """Dovecot on IMAP_PORT; yields its EMAIL_IMAP_URL (imap://, INBOX)."""
    with _dovecot(port=IMAP_PORT):
        yield f"imap://{IMAP_USER}:{IMAP_PASSWORD}@127.0.0.1:{IMAP_PORT}/INBOX"


@dataclass(frozen=True)
class TlsMailbox:
    imaps_url: str
    starttls_url: str
    plain_url: str
    cafile: str  # the throwaway certificate, which is its own authority
    imaps_port: int


@pytest.fixture
def imap_tls_server():
    """Dovecot with TLS required: IMAPS and STARTTLS, on ports free now."""
    port, imaps_port = free_port(), free_port()
    with _dovecot(port=port, imaps_port=imaps_port, tls=True) as root:
        credentials = f"{IMAP_USER}:{IMAP_PASSWORD}@127.0.0.1"
        yield TlsMailbox(
            imaps_url=f"imaps://{credentials}:{imaps_port}/INBOX",
            starttls_url=f"imap+starttls://{credentials}:{port}/INBOX",
            plain_url=f"imap://{credentials}:{port}/INBOX",
            cafile=str(root / "cert.pem"),
            imaps_port=imaps_port,
        )


def _wait_for_port(process, root: Path, port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = (root / "dovecot.log").read_text() if (root / "dovecot.log").exists() else ""
            raise RuntimeError(f"dovecot exited: {process.stdout.read().decode()} {log}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("dovecot did not start listening")
