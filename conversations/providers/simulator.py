"""A customer's phone and a Twilio-compatible API in one small ASGI app, for laptops and tests.

It plays both ends Attitré talks to, over real HTTP:

- **Twilio's REST API**: `POST /2010-04-01/Accounts/{sid}/Messages.json` (basic auth,
  Twilio's form fields, Twilio-shaped answers and error JSON: 21211 unknown number,
  21610 opted out, 63016 WhatsApp free text outside the 24-hour window), then signed
  status callbacks (sent, delivered; read once the phone's page shows the message);
  `GET /v1/ContentAndApprovals` serves approved templates like the Content API.
- **The customer's phone**: a page (`/`) where a person writes as the customer; each
  message is posted, signed exactly as Twilio signs, to the app's inbound webhook.

It keeps every message it was asked to send in memory (`GET`/`DELETE /api/log`) and
lets tests change a phone's state (`POST /api/phones/<number>/state`). It refuses to
exist with DEBUG off: it must never stand in for Twilio in production.
"""

import asyncio
import base64
import binascii
import hashlib
import json
import logging
import re
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlencode

import aiohttp
import phonenumbers
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from conversations.providers.mail_simulator import Mailbox
from conversations.providers.twilio import sign
from conversations.providers.webchat import chat_token

logger = logging.getLogger(__name__)

ASSETS = Path(__file__).resolve().parent / "simulator_assets"
STATIC_FILES = {
    "/static/phone.js": ("phone.js", "text/javascript; charset=utf-8"),
    "/static/phone.css": ("phone.css", "text/css; charset=utf-8"),
    "/static/mailbox.js": ("mailbox.js", "text/javascript; charset=utf-8"),
    "/static/bank.js": ("bank.js", "text/javascript; charset=utf-8"),
}
CSP = (b"content-security-policy", b"default-src 'self'")
NO_STORE = (b"cache-control", b"no-store")
WINDOW_SECONDS = 24 * 3600
MORE_INFO = "https://www.twilio.com/docs/errors/{code}"
ERRORS = {
    20003: (401, "Authenticate"),
    21211: (400, "Invalid 'To' Phone Number: {to}"),
    21602: (400, "Message body is required."),
    21603: (400, "A 'From' phone number is required."),
    21604: (400, "A 'To' phone number is required."),
    21610: (400, "Attempt to send to unsubscribed recipient"),
    21655: (400, "The ContentSid is Invalid."),
    63016: (
        400,
        "Failed to send freeform message because you are outside the allowed window. "
        "If you are using WhatsApp, please use a Message Template.",
    ),
}
# The demo's templates, under the content SIDs `python manage.py demo` gives them.
DEMO_TEMPLATES = (
    ("reprise_contact", "Bonjour {{1}}, c'est {{2}}, votre conseiller {{3}}. Pouvons-nous reprendre notre échange ?"),
    (
        "suivi_demande",
        "Bonjour {{1}}, {{2}} ({{3}}) a une réponse à votre demande. Répondez à ce message pour la consulter.",
    ),
)


def demo_templates() -> list[dict]:
    templates = [
        {
            "sid": "HX" + hashlib.sha256(f"attitre-demo:{name}".encode()).hexdigest()[:32],
            "friendly_name": name,
            "language": "fr",
            "body": body,
            "status": "approved",
        }
        for name, body in DEMO_TEMPLATES
    ]
    templates.append(
        {
            "sid": "HX" + hashlib.sha256(b"attitre-demo:offre_en_attente").hexdigest()[:32],
            "friendly_name": "offre_en_attente",
            "language": "fr",
            "body": "Bonjour {{1}}, découvrez notre offre.",
            "status": "pending",
        }
    )
    return templates


@dataclass
class Phone:
    number: str
    name: str = ""
    # When this phone last wrote on WhatsApp (epoch seconds): WhatsApp's 24-hour window.
    last_whatsapp_at: float | None = None
    opted_out: bool = False
    # Injected failures, consumed in order: {"code": 63014} (Twilio error JSON, HTTP 400),
    # {"http_status": 503}, {"delay": 3.0} (answer late), {"drop": true} (close without answering).
    faults: list = field(default_factory=list)
    shown: bool = True
    conversation: list = field(default_factory=list)


class Simulator:
    """The ASGI application. Its state lives in this object (one process, one event loop)."""

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        app_base_url: str,
        phones: list[Phone],
        templates: list[dict] | None = None,
        bank_whatsapp: str = "whatsapp:+33180000000",
        bank_sms: str = "+33180000000",
        callback_delay: float = 0.3,
        callback_concurrency: int = 32,
        mailbox: Mailbox | None = None,
        bank_customer: str = "",
    ):
        if not settings.DEBUG:
            raise ImproperlyConfigured(
                "Refusing to start the Twilio simulator with DEBUG off: it accepts any message and "
                "must never stand in for Twilio in production."
            )
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.app_base_url = app_base_url.rstrip("/")
        self.phones = {phone.number: phone for phone in phones}
        self.templates = demo_templates() if templates is None else templates
        self.bank_whatsapp = bank_whatsapp
        self.bank_sms = bank_sms
        self.callback_delay = callback_delay
        self.callback_concurrency = callback_concurrency
        self.log: list[dict] = []
        self.callbacks: list[dict] = []
        self._by_sid: dict[str, dict] = {}
        self._http: aiohttp.ClientSession | None = None
        self._semaphore: asyncio.Semaphore | None = None
        self._tasks: set[asyncio.Task] = set()
        # The customer's mailbox (an SMTP server and a page), when email is simulated too.
        self.mailbox = mailbox
        # The customer number the bank's site (/bank) signs in, as the bank's backend would.
        self.bank_customer = bank_customer

    # --- ASGI -------------------------------------------------------------------

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            return await self._lifespan(receive, send)
        if scope["type"] != "http":
            return None
        body = await _read_body(receive)
        method, path = scope["method"], scope["path"]
        headers = {name.decode("latin-1").lower(): value.decode("latin-1") for name, value in scope["headers"]}
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        try:
            status, content_type, payload, extra = await self._route(method, path, headers, query, body)
        except _Drop:
            # Headers, then silence and a closed connection: the request was received, its answer lost.
            await send({"type": "http.response.start", "status": 201, "headers": [(b"content-length", b"1000")]})
            return None
        # A page may widen the policy (the bank's site loads the app's chat widget).
        policy = [] if any(name == b"content-security-policy" for name, _ in extra) else [CSP]
        response_headers = [
            (b"content-type", content_type.encode()),
            (b"content-length", str(len(payload)).encode()),
            *policy,
            *extra,
        ]
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": payload})

    async def _lifespan(self, receive, send):
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                if self.mailbox is not None:
                    self.mailbox.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def aclose(self) -> None:
        if self.mailbox is not None:
            self.mailbox.stop()
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def _route(self, method, path, headers, query, body):
        parts = [unquote(part) for part in path.strip("/").split("/")]
        if method == "POST" and len(parts) == 4 and parts[:2] == ["2010-04-01", "Accounts"]:
            if parts[3] == "Messages.json":
                return await self._create_message(parts[2], headers, body)
        if method == "GET" and path in ("/v1/ContentAndApprovals", "/v1/Content"):
            return self._content(path, headers, query)
        if method == "POST" and path == "/v1/Content":
            return self._create_content(headers, body)
        if method == "GET" and path == "/":
            return 200, "text/html; charset=utf-8", (ASSETS / "phone.html").read_bytes(), []
        if method == "GET" and path == "/mailbox" and self.mailbox is not None:
            return 200, "text/html; charset=utf-8", (ASSETS / "mailbox.html").read_bytes(), []
        if method == "GET" and path == "/bank" and self.bank_customer:
            return self._bank_page()
        if method == "GET" and path == "/bank/chat-token" and self.bank_customer:
            return 200, "text/plain; charset=utf-8", chat_token(self.bank_customer).encode(), [NO_STORE]
        if method == "GET" and path in STATIC_FILES:
            name, content_type = STATIC_FILES[path]
            return 200, content_type, (ASSETS / name).read_bytes(), []
        if parts[:1] == ["api"]:
            return await self._api(method, parts[1:], query, body)
        return _json(404, {"detail": "not found"})

    def _bank_page(self):
        """The bank's website, Camille signed in: its own origin (this server), the app's widget."""
        app = self.app_base_url
        websocket = "ws" + app.removeprefix("http")
        page = (ASSETS / "bank.html").read_text().replace("{{ app }}", app)
        policy = f"default-src 'self'; script-src 'self' {app}; connect-src 'self' {websocket}"
        return 200, "text/html; charset=utf-8", page.encode(), [(b"content-security-policy", policy.encode())]

    # --- Twilio's REST API ---------------------------------------------------------

    def _authenticated(self, account_sid: str, headers: dict) -> bool:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        given = headers.get("authorization", "").removeprefix("Basic ").strip()
        return account_sid == self.account_sid and secrets.compare_digest(given, expected)

    async def _create_message(self, account_sid: str, headers: dict, body: bytes):
        if not self._authenticated(account_sid, headers):
            return _twilio_error(20003)
        fields = parse_qsl(body.decode("utf-8"), keep_blank_values=True)
        form = dict(fields)
        media = [value for key, value in fields if key == "MediaUrl"]
        to = form.get("To", "")
        if not to:
            return _twilio_error(21604)
        if not form.get("From") and not form.get("MessagingServiceSid"):
            return _twilio_error(21603)
        if not form.get("Body") and not form.get("ContentSid") and not media:
            return _twilio_error(21602)
        channel = "whatsapp" if to.startswith("whatsapp:") else "sms"
        number = to.removeprefix("whatsapp:")
        phone = self.phones.get(number)
        if phone is None or not _is_valid_number(number):
            return _twilio_error(21211, to=to)
        if phone.faults:
            fault = phone.faults.pop(0)
            answer = await self._fault(fault)
            if answer is not None:
                return answer
        if phone.opted_out:
            return _twilio_error(21610)
        template = None
        outside_window = phone.last_whatsapp_at is None or time.time() - phone.last_whatsapp_at > WINDOW_SECONDS
        if form.get("ContentSid"):
            template = next((t for t in self.templates if t["sid"] == form["ContentSid"]), None)
            if template is None:
                return _twilio_error(21655)
            # A session menu (quick reply, list picker) needs no approval, only the open window.
            if template.get("choices"):
                if channel == "whatsapp" and outside_window:
                    return _twilio_error(63016)
            elif template.get("status") != "approved":
                return _twilio_error(21655)
        elif channel == "whatsapp" and outside_window:
            return _twilio_error(63016)

        sid = "SM" + uuid.uuid4().hex
        variables = json.loads(form.get("ContentVariables") or "{}") if template else {}
        text = _render(template["body"], variables) if template else form.get("Body", "")
        now = datetime.now(UTC)
        entry = {
            "sid": sid,
            "to": to,
            "from": form.get("From", ""),
            "messaging_service_sid": form.get("MessagingServiceSid", ""),
            "body": form.get("Body", ""),
            "content_sid": form.get("ContentSid", ""),
            "content_variables": variables,
            "media_url": media,
            "status_callback": form.get("StatusCallback", ""),
            "status": "queued",
            "at": now.isoformat(),
        }
        self.log.append(entry)
        self._by_sid[sid] = entry
        shown = {"id": sid, "from_customer": False, "channel": channel, "body": text, "media": media, "at": entry["at"]}
        if template and template.get("choices"):
            shown["choices"] = template["choices"]
        phone.conversation.append(shown)
        sender = form.get("From") or (self.bank_whatsapp if channel == "whatsapp" else self.bank_sms)
        if entry["status_callback"]:
            self._spawn(self._report(entry, sender, ("sent", "delivered")))
        status = "accepted" if form.get("MessagingServiceSid") and not form.get("From") else "queued"
        return _json(201, _message_resource(entry, self.account_sid, sender, status, now))

    async def _fault(self, fault: dict):
        if fault.get("delay"):
            await asyncio.sleep(float(fault["delay"]))
            return None
        if fault.get("drop"):
            raise _Drop
        if fault.get("http_status"):
            status = int(fault["http_status"])
            return _json(status, {"code": 20000 + status, "message": "Service unavailable", "status": status})
        if fault.get("code"):
            code = int(fault["code"])
            status = int(fault.get("status", 400))
            message = fault.get("message") or f"Simulated Twilio error {code}"
            return _json(
                status, {"code": code, "message": message, "more_info": MORE_INFO.format(code=code), "status": status}
            )
        return None

    def _content(self, path: str, headers: dict, query: dict):
        if not self._authenticated(self.account_sid, headers):
            return _twilio_error(20003)
        contents = [
            {
                "sid": template["sid"],
                "account_sid": self.account_sid,
                "friendly_name": template["friendly_name"],
                "language": template["language"],
                "variables": {number: f"value {number}" for number in _numbers(template["body"])},
                "types": {"twilio/text": {"body": template["body"]}},
                "url": f"https://content.twilio.com/v1/Content/{template['sid']}",
                "date_created": "2026-01-05T09:00:00Z",
                "date_updated": "2026-01-05T09:00:00Z",
                "approval_requests": {
                    "name": template["friendly_name"],
                    "category": "UTILITY",
                    "content_type": "twilio/text",
                    "status": template.get("status", "approved"),
                    "rejection_reason": "",
                    "allow_category_change": True,
                },
            }
            for template in self.templates
        ]
        page_size = int(query.get("PageSize") or 50)
        meta = {
            "page": 0,
            "page_size": page_size,
            "first_page_url": path,
            "previous_page_url": None,
            "url": path,
            "next_page_url": None,
            "key": "contents",
        }
        return _json(200, {"contents": contents, "meta": meta})

    def _create_content(self, headers: dict, body: bytes):
        """Content API's create, for the session menus Attitré makes (quick reply, list picker)."""
        if not self._authenticated(self.account_sid, headers):
            return _twilio_error(20003)
        data = _json_body(body)
        types = {kind: value for kind, value in (data.get("types") or {}).items() if value}
        if len(types) != 1 or next(iter(types)) not in ("twilio/quick-reply", "twilio/list-picker"):
            return _json(400, {"code": 20001, "message": "Invalid types", "status": 400})
        kind, content = next(iter(types.items()))
        if kind == "twilio/quick-reply":
            choices = [{"id": a["id"], "title": a["title"]} for a in content.get("actions") or []]
        else:
            choices = [{"id": i["id"], "title": i["item"]} for i in content.get("items") or []]
        if not choices or not content.get("body"):
            return _json(400, {"code": 20001, "message": "body and choices are required", "status": 400})
        sid = "HX" + uuid.uuid4().hex
        self.templates.append(
            {
                "sid": sid,
                "friendly_name": data.get("friendly_name") or sid,
                "language": data.get("language") or "fr",
                "body": content["body"],
                "status": "unsubmitted",
                "kind": kind,
                "button": content.get("button", ""),
                "choices": choices,
            }
        )
        return _json(
            201,
            {
                "sid": sid,
                "account_sid": self.account_sid,
                "friendly_name": data.get("friendly_name"),
                "language": data.get("language"),
                "variables": data.get("variables") or {},
                "types": types,
                "url": f"https://content.twilio.com/v1/Content/{sid}",
                "date_created": datetime.now(UTC).isoformat(),
                "date_updated": datetime.now(UTC).isoformat(),
                "links": {},
            },
        )

    # --- Callbacks and webhooks to the app ---------------------------------------------

    def _spawn(self, coroutine) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _client(self) -> aiohttp.ClientSession:
        # aiohttp rather than httpx: a third of the CPU per request, and the benchmark posts thousands.
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15, connect=5))
            self._semaphore = asyncio.Semaphore(self.callback_concurrency)
        return self._http

    async def _post_signed(self, url: str, params: dict) -> int | None:
        """POST form-encoded and signed as Twilio does: X-Twilio-Signature over the URL and params."""
        client = self._client()
        signature = sign(url=url, params=params, auth_token=self.auth_token)
        attempt = {"url": url, "params": params, "signature": signature, "status": None}
        self.callbacks.append(attempt)
        async with self._semaphore:
            try:
                async with client.post(
                    url,
                    data=urlencode(params),
                    headers={
                        "content-type": "application/x-www-form-urlencoded",
                        "x-twilio-signature": signature,
                        "i-twilio-idempotency-token": uuid.uuid4().hex,
                        "user-agent": "TwilioProxy/1.1 (Attitre simulator)",
                    },
                ) as response:
                    await response.read()
                    status = response.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                logger.warning("Simulator: posting to %s failed (%s).", url.split("?")[0], type(exc).__name__)
                return None
        attempt["status"] = status
        return status

    async def _report(self, entry: dict, sender: str, statuses: tuple[str, ...]) -> None:
        for status in statuses:
            if self.callback_delay:
                await asyncio.sleep(self.callback_delay)
            entry["status"] = status
            params = {
                "MessageSid": entry["sid"],
                "SmsSid": entry["sid"],
                "MessageStatus": status,
                "SmsStatus": status,
                "AccountSid": self.account_sid,
                "From": sender,
                "To": entry["to"],
                "ApiVersion": "2010-04-01",
            }
            if entry["to"].startswith("whatsapp:"):
                params["ChannelPrefix"] = "whatsapp"
                if status == "read":
                    params["EventType"] = "READ"
            await self._post_signed(entry["status_callback"], params)

    async def _customer_writes(self, phone: Phone, body: str, channel: str, choice: dict | None = None) -> dict:
        sid = "SM" + uuid.uuid4().hex
        digits = phone.number.removeprefix("+")
        params = {
            "MessageSid": sid,
            "SmsMessageSid": sid,
            "SmsSid": sid,
            "AccountSid": self.account_sid,
            "From": f"whatsapp:{phone.number}" if channel == "whatsapp" else phone.number,
            "To": self.bank_whatsapp if channel == "whatsapp" else self.bank_sms,
            "Body": body,
            "NumMedia": "0",
            "NumSegments": "1",
            "SmsStatus": "received",
            "ApiVersion": "2010-04-01",
        }
        if channel == "whatsapp":
            params.update(ProfileName=phone.name.split(" ")[0] or digits, WaId=digits, MessageType="text")
            phone.last_whatsapp_at = time.time()
            if choice is not None:
                # As Twilio reports a tap: a quick reply's button, or a list picker's row.
                names = (
                    ("ListId", "ListTitle")
                    if choice["kind"] == "twilio/list-picker"
                    else ("ButtonPayload", "ButtonText")
                )
                params.update({names[0]: choice["id"], names[1]: choice["title"], "MessageType": "interactive"})
        elif body.strip().upper() in {"STOP", "ARRET", "ARRÊT", "UNSUBSCRIBE"}:
            phone.opted_out = True
        elif body.strip().upper() in {"START", "UNSTOP"}:
            phone.opted_out = False
        at = datetime.now(UTC).isoformat()
        phone.conversation.append({"id": sid, "from_customer": True, "channel": channel, "body": body, "at": at})
        status = await self._post_signed(f"{self.app_base_url}/webhooks/twilio/messages/", params)
        return {"sid": sid, "app_status": status}

    # --- The phone page's API and the test controls ------------------------------------

    async def _api(self, method: str, parts: list[str], query: dict, body: bytes):
        if parts == ["log"]:
            if method == "DELETE":
                self.log.clear()
                self.callbacks.clear()
                self._by_sid.clear()
                return _json(200, {"messages": []})
            return _json(200, {"messages": self.log, "callbacks": len(self.callbacks)})
        if parts == ["callbacks"]:
            return _json(200, {"callbacks": self.callbacks})
        if parts == ["mailbox"] and self.mailbox is not None:
            if method == "GET":
                return _json(200, self.mailbox.snapshot())
            data = _json_body(body)
            text = str(data.get("body", "")).strip()
            if not text:
                return _json(400, {"detail": "empty email"})
            raw, recipient = self.mailbox.compose(
                subject=str(data.get("subject", "")).strip(),
                body=text,
                in_reply_to=str(data.get("in_reply_to", "")),
            )
            status = await self.mailbox.post(self._client(), self.app_base_url, raw, recipient)
            return _json(202, {"status": status})
        if parts == ["phones"] and method == "GET":
            shown = [phone for phone in self.phones.values() if phone.shown]
            return _json(200, {"phones": [{"number": p.number, "name": p.name} for p in shown]})
        if len(parts) >= 2 and parts[0] == "phones":
            phone = self.phones.get(parts[1])
            if phone is None:
                if method == "POST" and parts[2:] == ["state"] and _is_valid_number(parts[1]):
                    phone = self.phones.setdefault(parts[1], Phone(number=parts[1], shown=False))
                else:
                    return _json(404, {"detail": "unknown phone"})
            data = _json_body(body)
            if parts[2:] == ["messages"] and method == "GET":
                return _json(200, {"number": phone.number, "name": phone.name, "messages": self._seen(phone)})
            if parts[2:] == ["messages"] and method == "POST":
                channel = "sms" if data.get("channel") == "sms" else "whatsapp"
                if data.get("choice"):
                    choice = self._choice(phone, str(data.get("message", "")), str(data["choice"]))
                    if choice is None:
                        return _json(400, {"detail": "no such button"})
                    return _json(202, await self._customer_writes(phone, choice["title"], "whatsapp", choice))
                text = str(data.get("body", "")).strip()
                if not text:
                    return _json(400, {"detail": "empty message"})
                return _json(202, await self._customer_writes(phone, text, channel))
            if parts[2:] == ["state"] and method == "POST":
                self._set_state(phone, data)
                return _json(200, _phone_state(phone))
        return _json(404, {"detail": "not found"})

    def _choice(self, phone: Phone, message_sid: str, choice_id: str) -> dict | None:
        """The button `choice_id` of the menu message `message_sid` this phone received."""
        for item in phone.conversation:
            if item["id"] == message_sid and item.get("choices"):
                entry = self._by_sid.get(message_sid) or {}
                template = next((t for t in self.templates if t["sid"] == entry.get("content_sid")), {})
                for choice in item["choices"]:
                    if choice["id"] == choice_id:
                        return {**choice, "kind": template.get("kind", "twilio/quick-reply")}
        return None

    def _seen(self, phone: Phone) -> list[dict]:
        """The conversation as the phone shows it; showing a delivered message means it was read."""
        for item in phone.conversation:
            entry = self._by_sid.get(item["id"])
            if entry is not None and not item["from_customer"]:
                item["status"] = entry["status"]
                if entry["status"] == "delivered" and entry["status_callback"] and not item.get("read"):
                    item["read"] = True
                    sender = entry["from"] or self.bank_whatsapp
                    self._spawn(self._report(entry, sender, ("read",)))
        return phone.conversation

    def _set_state(self, phone: Phone, data: dict) -> None:
        if "opted_out" in data:
            phone.opted_out = bool(data["opted_out"])
        if "last_whatsapp_at" in data:
            value = data["last_whatsapp_at"]
            if value == "now":
                phone.last_whatsapp_at = time.time()
            elif value is None:
                phone.last_whatsapp_at = None
            else:
                phone.last_whatsapp_at = datetime.fromisoformat(str(value)).timestamp()
        if "faults" in data:
            phone.faults = list(data["faults"] or [])
        if "name" in data:
            phone.name = str(data["name"])


class _Drop(Exception):
    """Close the connection without answering (a network break after the request was sent)."""


def _phone_state(phone: Phone) -> dict:
    return {
        "number": phone.number,
        "name": phone.name,
        "opted_out": phone.opted_out,
        "last_whatsapp_at": phone.last_whatsapp_at,
        "faults": phone.faults,
    }


def _message_resource(entry: dict, account_sid: str, sender: str, status: str, now: datetime) -> dict:
    stamp = now.strftime("%a, %d %b %Y %H:%M:%S +0000")
    uri = f"/2010-04-01/Accounts/{account_sid}/Messages/{entry['sid']}.json"
    return {
        "account_sid": account_sid,
        "api_version": "2010-04-01",
        "body": entry["body"],
        "date_created": stamp,
        "date_sent": None,
        "date_updated": stamp,
        "direction": "outbound-api",
        "error_code": None,
        "error_message": None,
        "from": sender,
        "messaging_service_sid": entry["messaging_service_sid"] or None,
        "num_media": str(len(entry["media_url"])),
        "num_segments": "1",
        "price": None,
        "price_unit": "EUR",
        "sid": entry["sid"],
        "status": status,
        "subresource_uris": {"media": uri.replace(".json", "/Media.json")},
        "to": entry["to"],
        "uri": uri,
    }


def _twilio_error(code: int, **values):
    status, message = ERRORS[code]
    return _json(
        status,
        {"code": code, "message": message.format(**values), "more_info": MORE_INFO.format(code=code), "status": status},
    )


def _json(status: int, payload) -> tuple:
    return status, "application/json", json.dumps(payload).encode(), []


def _json_body(body: bytes) -> dict:
    if not body:
        return {}
    try:
        data = json.loads(body)
    except (ValueError, binascii.Error):
        data = dict(parse_qsl(body.decode("utf-8", "replace")))
    return data if isinstance(data, dict) else {}


def _numbers(body: str) -> list[str]:
    return list(dict.fromkeys(re.findall(r"\{\{\s*(\d+)\s*\}\}", body)))


def _render(body: str, values: dict) -> str:
    for number, value in values.items():
        body = body.replace("{{" + str(number) + "}}", str(value))
    return body


def _is_valid_number(number: str) -> bool:
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(number, None))
    except phonenumbers.NumberParseException:
        return False


async def _read_body(receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b""
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)
