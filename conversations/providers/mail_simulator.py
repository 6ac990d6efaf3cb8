"""The customers' mailbox for the simulator: an email service provider's two ends, for a
laptop without one.

- **Outbound**: a real SMTP server (aiosmtpd, on `smtp_port`) that `make run` points
  Django's SMTP backend at; every email it receives shows in the mailbox page.
- **Inbound**: the page composes an email (a reply keeps the thread: To the Reply-To,
  In-Reply-To and References the email answered) and posts it to the app's inbound
  webhook as Mailgun's forward() route does (`body-mime`), signed with the Mailgun
  webhook signing key and with the webhook secret's basic auth, as anymail checks them.
"""

import base64
import hashlib
import hmac
import secrets
import threading
import time
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr

import aiohttp
from aiosmtpd.controller import Controller

INBOUND_PATH = "/anymail/mailgun/inbound_mime/"


class _Collect:
    def __init__(self, mailbox: "Mailbox"):
        self.mailbox = mailbox

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook)
        self.mailbox.received(envelope.content, list(envelope.rcpt_tos))
        return "250 Message accepted for delivery"


class Mailbox:
    """One customer's mailbox: what the bank sent them over SMTP, and what they wrote."""

    def __init__(
        self,
        *,
        address: str,
        name: str,
        bank_address: str,
        signing_key: str,
        webhook_secret: str,
        smtp_port: int | None = None,
    ):
        self.address = address.lower()
        self.name = name
        self.bank_address = bank_address
        self.signing_key = signing_key
        self.webhook_secret = webhook_secret
        self.smtp_port = smtp_port
        self.messages: list[dict] = []
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    def start(self) -> None:
        if self.smtp_port is not None and self._controller is None:
            self._controller = Controller(_Collect(self), hostname="127.0.0.1", port=self.smtp_port)
            self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def received(self, raw: bytes, recipients: list[str]) -> None:
        message = message_from_bytes(raw, policy=policy.default)
        body = message.get_body(("plain",))
        entry = {
            "direction": "received",
            "to": recipients,
            "from": str(message.get("From", "")),
            "reply_to": str(message.get("Reply-To", "")),
            "subject": str(message.get("Subject", "")),
            "message_id": str(message.get("Message-ID", "")).strip("<>"),
            "references": str(message.get("References", "")),
            "body": body.get_content() if body is not None else "",
            "attachments": [part.get_filename() or part.get_content_type() for part in message.iter_attachments()],
            "at": time.time(),
        }
        with self._lock:
            self.messages.append(entry)

    def compose(self, *, subject: str, body: str, in_reply_to: str = "") -> tuple[bytes, str]:
        """The customer's email as their mail client writes it, and where it goes; a reply threads on
        the email it answers, to its Reply-To."""
        answered = next((m for m in self.messages if in_reply_to and m["message_id"] == in_reply_to), None)
        message = EmailMessage()
        message["From"] = f"{self.name} <{self.address}>"
        to = parseaddr(answered["reply_to"] or answered["from"])[1] if answered else self.bank_address
        message["To"] = to
        message["Subject"] = subject or (f"Re: {answered['subject']}" if answered else "")
        message["Date"] = format_datetime(datetime.now(UTC))
        message["Message-ID"] = make_msgid(domain=self.address.rpartition("@")[2])
        if answered:
            message["In-Reply-To"] = f"<{answered['message_id']}>"
            message["References"] = " ".join(filter(None, [answered["references"], f"<{answered['message_id']}>"]))
        message.set_content(body)
        raw = message.as_bytes()
        with self._lock:
            self.messages.append(
                {
                    "direction": "sent",
                    "to": [to],
                    "from": self.address,
                    "subject": str(message["Subject"]),
                    "message_id": str(message["Message-ID"]).strip("<>"),
                    "body": body,
                    "attachments": [],
                    "at": time.time(),
                }
            )
        return raw, to

    async def post(self, client: aiohttp.ClientSession, app_base_url: str, raw: bytes, recipient: str) -> int | None:
        """POST the raw email as Mailgun does, signed with its webhook signing key."""
        timestamp, token = str(int(time.time())), secrets.token_hex(25)
        signature = hmac.new(self.signing_key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
        form = aiohttp.FormData()
        for name, value in (
            ("recipient", recipient),
            ("sender", self.address),
            ("from", f"{self.name} <{self.address}>"),
            ("body-mime", raw.decode("utf-8")),
            ("timestamp", timestamp),
            ("token", token),
            ("signature", signature),
        ):
            form.add_field(name, value)
        headers = {"user-agent": "mailgun/treq (Attitre simulator)"}
        if self.webhook_secret:
            headers["authorization"] = "Basic " + base64.b64encode(self.webhook_secret.encode()).decode()
        try:
            async with client.post(app_base_url + INBOUND_PATH, data=form, headers=headers) as response:
                await response.read()
                return response.status
        except (aiohttp.ClientError, TimeoutError):
            return None

    def snapshot(self) -> dict:
        with self._lock:
            return {"address": self.address, "name": self.name, "messages": list(self.messages)}
