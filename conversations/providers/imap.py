"""Reading a mailbox the bank runs itself (Exchange, Dovecot…) over IMAP, with imap-tools:
the only code that imports it. UID-based: the caller keeps the folder's UIDVALIDITY and the
last UID it stored, and marks each message done only after storing it."""

import imaplib
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from django.utils.translation import gettext as _
from imap_tools import MailBox, MailBoxStartTls, MailBoxUnencrypted
from imap_tools.errors import MailboxLoginError, MailboxStarttlsError


class MailboxUnavailable(Exception):
    """The mailbox could not be read this time (network, login, folder); `reason` is safe to log."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# URL scheme → how the connection is protected, and its default port.
SCHEMES = {"imaps": ("tls", 993), "imap+starttls": ("starttls", 143), "imap": ("", 143)}


@dataclass(frozen=True)
class MailboxAddress:
    scheme: str
    host: str
    port: int
    user: str
    password: str
    folder: str

    @property
    def tls(self) -> str:
        """ "tls" (on connecting, IMAPS), "starttls" (upgraded before the login) or "" (none)."""
        return SCHEMES[self.scheme][0]

    @property
    def name(self) -> str:
        """What identifies the folder, without the password: the cursor's key and the logs'."""
        return f"{self.scheme}://{self.user}@{self.host}:{self.port}/{self.folder}"


def parse_mailbox_url(url: str) -> MailboxAddress:
    """`imaps://user:pass@host[:port]/FOLDER` (TLS from the start), `imap+starttls://…` (TLS
    by STARTTLS before the login) or `imap://…` (no TLS: only for a mailbox on this host)."""
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES or not parts.hostname or not parts.username:
        raise MailboxUnavailable(_("EMAIL_IMAP_URL must look like imaps://user:password@host/INBOX."))
    return MailboxAddress(
        scheme=parts.scheme,
        host=parts.hostname,
        port=parts.port or SCHEMES[parts.scheme][1],
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
def open_mailbox(address: MailboxAddress, *, timeout: float, cafile: str = "") -> Iterator[OpenMailbox]:
    """The folder, logged in. With TLS the server's certificate is verified, against the
    system's authorities or those of `cafile` (a bank's own authority), and its name checked."""
    try:
        if address.tls:
            context = ssl.create_default_context(cafile=cafile or None)
            if address.tls == "tls":
                box = MailBox(address.host, address.port, timeout=timeout, ssl_context=context)
            else:
                box = MailBoxStartTls(address.host, address.port, timeout=timeout, ssl_context=context)
        else:
            box = MailBoxUnencrypted(address.host, address.port, timeout=timeout)
        box.login(address.user, address.password, initial_folder=address.folder)
    except MailboxLoginError as exc:
        raise MailboxUnavailable(_("The IMAP server refused the login of %(user)s.") % {"user": address.user}) from exc
    except ssl.SSLCertVerificationError as exc:
        raise MailboxUnavailable(
            _(
                "The IMAP server %(host)s's certificate could not be verified (%(error)s); if the bank's own "
                "authority signed it, set EMAIL_IMAP_CA_FILE to that authority's certificate."
            )
            % {"host": address.host, "error": exc.verify_message or type(exc).__name__}
        ) from exc
    except (MailboxStarttlsError, imaplib.IMAP4.error) as exc:
        raise MailboxUnavailable(
            _("The IMAP server %(host)s would not start TLS (STARTTLS); the password was not sent.")
            % {"host": address.host}
        ) from exc
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
