"""A real IMAP server for the tests: Debian's Dovecot (`dovecot-imapd`, installed by
`make test`), run in the foreground from a configuration of its own in a temporary
directory, on IMAP_PORT, with one mailbox user."""

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

IMAP_PORT = 18743
IMAP_USER, IMAP_PASSWORD = "conseiller", "imap-test-password"
DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"

CONFIG = """
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
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
    port = 0
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


@pytest.fixture
def imap_server():
    """Dovecot on IMAP_PORT; yields its EMAIL_IMAP_URL (imap://, INBOX)."""
    # Not under pytest's temporary directory: Dovecot's own users must reach the files (0700 there).
    root = Path(tempfile.mkdtemp(prefix="attitre-dovecot-"))
    users, uid, gid = _accounts()
    (root / "users").write_text(f"{IMAP_USER}:{{PLAIN}}{IMAP_PASSWORD}\n")
    for directory in ("run", "state", "home"):
        (root / directory).mkdir()
    os.chown(root / "home", uid, gid)
    os.chmod(root, 0o755)  # noqa: S103 (Dovecot's users read their configuration and mail here)
    config = root / "dovecot.conf"
    config.write_text(CONFIG.format(root=root, users=users, uid=uid, gid=gid, port=IMAP_PORT))
    command = [DOVECOT, "-F", "-c", str(config)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # noqa: S603 (ours)
    try:
        _wait_for_port(process, root)
        yield f"imap://{IMAP_USER}:{IMAP_PASSWORD}@127.0.0.1:{IMAP_PORT}/INBOX"
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(root, ignore_errors=True)


def _wait_for_port(process, root: Path) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log = (root / "dovecot.log").read_text() if (root / "dovecot.log").exists() else ""
            raise RuntimeError(f"dovecot exited: {process.stdout.read().decode()} {log}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", IMAP_PORT)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("dovecot did not start listening")
