"""The email edge for tests: real MIME fixtures, ESP webhooks signed as the ESP signs
them (Mailgun's HMAC, Postmark's basic auth), and a real SMTP server (aiosmtpd)."""

import base64
import hashlib
import hmac
import json
import secrets
import time
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "email"
MAILGUN_SIGNING_KEY = "key-mailgun-webhook-signing-0123456789"
WEBHOOK_SECRET = "attitre-esp:correct-horse-webhook"
SMTP_PORT = 18725


def fixture(name: str, **replacements: str) -> bytes:
    """A fixture with its placeholders (PREVIOUS_ID, TO_ADDRESS…) filled."""
    raw = (FIXTURES / name).read_bytes()
    for placeholder, value in replacements.items():
        raw = raw.replace(placeholder.encode(), value.encode())
    return raw


def mailgun_form(raw: bytes, *, recipient: str = "conseiller@attitre.example", key=MAILGUN_SIGNING_KEY) -> dict:
    """The form Mailgun's forward() route posts to a `…/inbound_mime/` URL, signed."""
    timestamp, token = str(int(time.time())), secrets.token_hex(25)
    signature = hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    message = message_from_bytes(raw, policy=policy.default)
    return {
        "recipient": recipient,
        "sender": str(message.get("From", "")),
        "subject": str(message.get("Subject", "")),
        "from": str(message.get("From", "")),
        "body-mime": raw.decode("utf-8"),
        "timestamp": timestamp,
        "token": token,
        "signature": signature,
    }


def mailgun_inbound(client, raw: bytes, *, recipient: str = "conseiller@attitre.example", key=MAILGUN_SIGNING_KEY):
    """POST a raw email as Mailgun's forward() route does, signed."""
    return client.post(
        "/anymail/mailgun/inbound_mime/",
        mailgun_form(raw, recipient=recipient, key=key),
        headers={"authorization": basic_auth(WEBHOOK_SECRET)},
    )


def postmark_inbound(client, raw: bytes, *, auth: str | None = WEBHOOK_SECRET):
    """POST a raw email as Postmark's inbound webhook does (JSON, "include raw email content")."""
    message = message_from_bytes(raw, policy=policy.default)
    payload = {
        "FromFull": {"Email": str(message.get("From", "")), "Name": ""},
        "ToFull": [{"Email": "conseiller@attitre.example", "Name": ""}],
        "Subject": str(message.get("Subject", "")),
        "MessageID": "22c74902-a0c1-4511-804f-341342852c90",
        "Headers": [],
        "RawEmail": raw.decode("utf-8"),
    }
    headers = {"authorization": basic_auth(auth)} if auth else {}
    return client.post(
        "/anymail/postmark/inbound/", json.dumps(payload), content_type="application/json", headers=headers
    )


def sendgrid_inbound(client, raw: bytes, *, auth: str | None = WEBHOOK_SECRET):
    """POST as SendGrid's Inbound Parse does with "POST the raw, full MIME message" on
    (multipart form: `email`, `to`, `from`, `subject`, `envelope`, `charsets`)."""
    message = message_from_bytes(raw, policy=policy.default)
    data = {
        "email": raw.decode("utf-8"),
        "to": str(message.get("To", "")),
        "from": str(message.get("From", "")),
        "subject": str(message.get("Subject", "")),
        "envelope": json.dumps({"to": ["conseiller@attitre.example"], "from": message["From"].addresses[0].addr_spec}),
        "charsets": json.dumps({"to": "UTF-8", "from": "UTF-8", "subject": "UTF-8"}),
        "spam_score": "0.1",
    }
    headers = {"authorization": basic_auth(auth)} if auth else {}
    return client.post("/anymail/sendgrid/inbound/", data, headers=headers)


def mailjet_inbound(client, raw: bytes, *, auth: str | None = WEBHOOK_SECRET):
    """POST as Mailjet's Parse API does (JSON: Headers, Text-part, Html-part; attachments as
    Parts with their content in `Attachment<N>`, base64)."""
    message = message_from_bytes(raw, policy=policy.default)
    headers: dict = {}
    for name, value in message.items():
        if name.lower().startswith("content-") or name.lower() == "mime-version":
            continue
        previous = headers.get(name)
        headers[name] = (
            [*previous, str(value)]
            if isinstance(previous, list)
            else [previous, str(value)]
            if previous
            else str(value)
        )
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    payload = {
        "Sender": message["From"].addresses[0].addr_spec,
        "Recipient": "conseiller@attitre.example",
        "Date": "20261201T101502",
        "From": str(message["From"]),
        "Subject": str(message.get("Subject", "")),
        "Headers": headers,
        "Parts": [],
        "Text-part": text.get_content() if text else "",
        "Html-part": html.get_content() if html else "",
        "SpamAssassinScore": "0.1",
        "CustomID": "",
        "Payload": "",
    }
    for index, part in enumerate(message.iter_attachments(), start=1):
        payload["Parts"].append(
            {
                "Headers": {
                    "Content-Type": f'{part.get_content_type()}; name="{part.get_filename()}"',
                    "Content-Disposition": f'attachment; filename="{part.get_filename()}"',
                },
                "ContentRef": f"Attachment{index}",
            }
        )
        payload[f"Attachment{index}"] = base64.b64encode(part.get_payload(decode=True)).decode()
    headers_out = {"authorization": basic_auth(auth)} if auth else {}
    return client.post(
        "/anymail/mailjet/inbound/", json.dumps(payload), content_type="application/json", headers=headers_out
    )


def brevo_inbound(client, raw: bytes, *, auth: str | None = WEBHOOK_SECRET):
    """POST as Brevo's inbound parsing webhook does (JSON `items`, one per email: headers,
    RawTextBody, RawHtmlBody; no attachments here: anymail fetches those from Brevo's API)."""
    message = message_from_bytes(raw, policy=policy.default)
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    item = {
        "Uuid": ["b6b1f3c2-0d3e-4a63-9d8e-8f2f0a1c9e01"],
        "MessageId": str(message.get("Message-ID", "")),
        "InReplyTo": str(message.get("In-Reply-To", "")) or None,
        "From": {"Name": message["From"].addresses[0].display_name, "Address": message["From"].addresses[0].addr_spec},
        "To": [{"Name": None, "Address": "conseiller@attitre.example"}],
        "Subject": str(message.get("Subject", "")),
        "SentAtDate": "Tue, 1 Dec 2026 10:15:02 +0100",
        "RawHtmlBody": html.get_content() if html else "",
        "RawTextBody": text.get_content() if text else "",
        "Headers": {
            name: str(value)
            for name, value in message.items()
            if not name.lower().startswith("content-") and name.lower() != "mime-version"
        },
        "Attachments": [],
    }
    headers = {"authorization": basic_auth(auth)} if auth else {}
    return client.post(
        "/anymail/brevo/inbound/", json.dumps({"items": [item]}), content_type="application/json", headers=headers
    )


def mailgun_tracking(client, *, event: str, message_id: str, key=MAILGUN_SIGNING_KEY, **event_data):
    timestamp, token = str(int(time.time())), secrets.token_hex(25)
    signature = hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    payload = {
        "signature": {"timestamp": timestamp, "token": token, "signature": signature},
        "event-data": {
            "event": event,
            "timestamp": float(timestamp),
            "id": secrets.token_hex(8),
            "recipient": "camille.martin@gmail.com",
            "message": {"headers": {"message-id": message_id}},
            **event_data,
        },
    }
    return client.post(
        "/anymail/mailgun/tracking/",
        json.dumps(payload),
        content_type="application/json",
        headers={"authorization": basic_auth(WEBHOOK_SECRET)},
    )


def basic_auth(credentials: str) -> str:
    return "Basic " + base64.b64encode(credentials.encode()).decode()


@pytest.fixture
def anymail_settings(settings):
    settings.ANYMAIL = {"WEBHOOK_SECRET": WEBHOOK_SECRET, "MAILGUN_WEBHOOK_SIGNING_KEY": MAILGUN_SIGNING_KEY}
    settings.EMAIL_FROM_ADDRESS = "conseiller@attitre.example"
    settings.EMAIL_REPLY_ADDRESS = "conseiller@attitre.example"
    return settings


class Mailbox:
    """What a real SMTP server received: each message's envelope and its parsed content."""

    def __init__(self):
        self.received = []
        self.refuse_recipients: dict[str, tuple[int, str]] = {}

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 (aiosmtpd's hook)
        if address in self.refuse_recipients:
            code, text = self.refuse_recipients[address]
            return f"{code} {text}"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook)
        self.received.append(
            (envelope.mail_from, list(envelope.rcpt_tos), message_from_bytes(envelope.content, policy=policy.default))
        )
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server(settings):
    """aiosmtpd on SMTP_PORT; Django's SMTP backend points at it."""
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=SMTP_PORT)
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", SMTP_PORT
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_TIMEOUT = 5
    try:
        yield mailbox
    finally:
        controller.stop()
