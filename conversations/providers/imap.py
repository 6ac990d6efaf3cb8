"""Reading a mailbox the bank runs itself (Exchange, Dovecot…) over IMAP, with imap-tools:
the only code that imports it. UID-based: the caller keeps the folder's UIDVALIDITY and the
last UID it stored, and marks each message done only after storing it."""

import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from django.utils.translation import gettext as _
from imap_tools import MailBox, MailBoxUnencrypted
from imap_tools.errors import MailboxLoginError


class MailboxUnavailable(Exception):
    """The mailbox could not be read this time (network, login, folder); `reason` is safe to log."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class MailboxAddress:
    secure: bool
    host: str
    port: int
    user: str
    password: str
    folder: str

    @property
    def name(self) -> str:
        """What identifies the folder, without the password: the cursor's key and the logs'."""
        return f"{'imaps' if self.secure else 'imap'}://{self.user}@{self.host}:{self.port}/{self.folder}"


def parse_mailbox_url(url: str) -> MailboxAddress:
    """`imaps://user:pass@host[:port]/FOLDER` (`imap://` without TLS, for a mailbox on this host)."""
    parts = urlsplit(url)
    if parts.scheme not in ("imap", "imaps") or not parts.hostname or not parts.username:
        raise MailboxUnavailable(_("EMAIL_IMAP_URL must look like imaps://user:password@host/INBOX."))
    secure = parts.scheme == "imaps"
    return MailboxAddress(
        secure=secure,
        host=parts.hostname,
        port=parts.port or (993 if secure else 143),
        user=unquote(parts.username),
        password=unquote(parts.password or ""),
        folder=unquote(parts.path.lstrip("/")) or "INBOX",
    )


class OpenMailbox:
    def __init__(self, box, address: MailboxAddress):
        self.box = box
        self.address = address

    def uid_validity(self) -> int:
        return int(self.box.folder.status(self.address.folder, ["UIDVALIDITY"])["UIDVALIDITY"])

    def uids_after(self, last_uid: int) -> list[int]:
        # `n:*` always names the last message, even below n: filtered here.
        return sorted(uid for uid in map(int, self.box.uids(f"UID {last_uid + 1}:*")) if uid > last_uid)

    def raw(self, uid: int) -> bytes | None:
        """The message exactly as the server holds it (for audit), without marking it seen."""
        status, data = self.box.client.uid("FETCH", str(uid), "(BODY.PEEK[])")
        if status != "OK":
            raise MailboxUnavailable(_("The IMAP server would not return message %(uid)s.") % {"uid": uid})
        for item in data:
            if isinstance(item, tuple) and len(item) == 2:
                return bytes(item[1])
        return None  # expunged meanwhile

    def done(self, uid: int, *, move_to: str = "") -> None:
        if move_to:
            self.box.move(str(uid), move_to)
        else:
            self.box.flag(str(uid), "\\Seen", True)


@contextmanager
def open_mailbox(address: MailboxAddress, *, timeout: float) -> Iterator[OpenMailbox]:
    try:
        if address.secure:
            box = MailBox(address.host, address.port, timeout=timeout, ssl_context=ssl.create_default_context())
        else:
            box = MailBoxUnencrypted(address.host, address.port, timeout=timeout)
        box.login(address.user, address.password, initial_folder=address.folder)
    except MailboxLoginError as exc:
        raise MailboxUnavailable(_("The IMAP server refused the login of %(user)s.") % {"user": address.user}) from exc
    except (OSError, ssl.SSLError) as exc:
        raise MailboxUnavailable(
            _("The IMAP server %(host)s could not be reached (%(error)s).")
            % {"host": address.host, "error": type(exc).__name__}
        ) from exc
    try:
        yield OpenMailbox(box, address)
    finally:
        try:
            box.logout()
        except Exception:  # noqa: S110 (the connection is going away either way)
            pass
