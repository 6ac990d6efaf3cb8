"""Webhook payloads shaped like Twilio's documented examples, signed with the real
RequestValidator (through the provider adapter), and posted to the ASGI application
production serves."""

import asyncio
import itertools
import json
from urllib.parse import urlencode

import httpx
from asgiref.sync import async_to_sync
from django.conf import settings
from django.http import QueryDict

from conversations.providers.twilio import parse_inbound, sign
from conversations.services import InboundResult, inbound_message_receive

ACCOUNT_SID = "AC" + "0" * 32
BANK_WHATSAPP = "whatsapp:+33180000000"
BANK_SMS = "+33180000000"
_sids = itertools.count(1)


def new_sid(prefix: str = "SM") -> str:
    return f"{prefix}{next(_sids):032x}"


def whatsapp_text(*, body: str = "Bonjour", sender: str = "+33612345678", sid: str | None = None, **extra) -> dict:
    number = sender.removeprefix("+")
    params = {
        "SmsMessageSid": sid or "",
        "NumMedia": "0",
        "ProfileName": "Camille",
        "MessageType": "text",
        "SmsSid": sid or "",
        "WaId": number,
        "SmsStatus": "received",
        "Body": body,
        "To": BANK_WHATSAPP,
        "NumSegments": "1",
        "ReferralNumMedia": "0",
        "MessageSid": sid or "",
        "AccountSid": ACCOUNT_SID,
        "ChannelMetadata": json.dumps(
            {"type": "whatsapp", "data": {"context": {"ProfileName": "Camille", "WaId": number}}}
        ),
        "From": f"whatsapp:{sender}",
        "ApiVersion": "2010-04-01",
    }
    sid = sid or new_sid()
    for key in ("SmsMessageSid", "SmsSid", "MessageSid"):
        params[key] = sid
    params.update(extra)
    return params


def whatsapp_image(*, sender: str = "+33612345678", url: str | None = None, content_type: str = "image/jpeg", **extra):
    sid = extra.pop("sid", None) or new_sid("MM")
    url = url or f"https://api.twilio.com/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}/Media/ME{'1' * 32}"
    return whatsapp_text(
        body="",
        sender=sender,
        sid=sid,
        NumMedia="1",
        MessageType="image",
        MediaUrl0=url,
        MediaContentType0=content_type,
        **extra,
    )


def whatsapp_location(*, sender: str = "+33612345678", **extra) -> dict:
    return whatsapp_text(
        body="",
        sender=sender,
        MessageType="location",
        Latitude="45.757814",
        Longitude="4.832011",
        Address="Place Bellecour, 69002 Lyon",
        Label="Agence Bellecour",
        **extra,
    )


def whatsapp_button(*, sender: str = "+33612345678", text: str = "Oui, rappelez-moi", **extra) -> dict:
    return whatsapp_text(
        body=text, sender=sender, MessageType="button", ButtonText=text, ButtonPayload="callback_yes", **extra
    )


def sms(*, body: str = "Bonjour", sender: str = "+33612345678", sid: str | None = None, **extra) -> dict:
    sid = sid or new_sid()
    params = {
        "ToCountry": "FR",
        "SmsMessageSid": sid,
        "NumMedia": "0",
        "FromCountry": "FR",
        "SmsSid": sid,
        "SmsStatus": "received",
        "Body": body,
        "To": BANK_SMS,
        "NumSegments": "1",
        "MessageSid": sid,
        "AccountSid": ACCOUNT_SID,
        "From": sender,
        "ApiVersion": "2010-04-01",
    }
    params.update(extra)
    return params


def status_callback(*, sid: str, status: str, channel: str = "whatsapp", **extra) -> dict:
    params = {
        "MessageSid": sid,
        "SmsSid": sid,
        "MessageStatus": status,
        "SmsStatus": status,
        "AccountSid": ACCOUNT_SID,
        "From": BANK_WHATSAPP if channel == "whatsapp" else BANK_SMS,
        "To": "whatsapp:+33612345678" if channel == "whatsapp" else "+33612345678",
        "ApiVersion": "2010-04-01",
    }
    if channel == "whatsapp":
        params["ChannelPrefix"] = "whatsapp"
    params.update(extra)
    return params


def signature_for(path: str, params: dict, query: str = "", token: str | None = None) -> str:
    url = settings.PUBLIC_BASE_URL + path + (f"?{query}" if query else "")
    query_dict = QueryDict(mutable=True)
    for key, value in params.items():
        query_dict[key] = value
    return sign(url=url, params=query_dict, auth_token=token)


def post_signed(path: str, params: dict, *, query: str = "", signature: str | None = None) -> httpx.Response:
    """POST form-encoded as Twilio does, with X-Twilio-Signature over the public URL."""
    if signature is None:
        signature = signature_for(path, params, query)
    return request("POST", path, params, query=query, headers={"x-twilio-signature": signature})


def request(method: str, path: str, params: dict | None = None, *, query: str = "", headers=None) -> httpx.Response:
    """A request to config.asgi's application, which serves Twilio's webhooks on the lean route
    (conversations/asgi.py), as in production. The route stores them from its own threads,
    with their own database connections: the rows a test relies on must be committed
    (`django_db(transaction=True)`)."""
    url = path + (f"?{query}" if query else "")
    body = urlencode(params) if params is not None else None
    headers = {"content-type": "application/x-www-form-urlencoded", **(headers or {})}
    return async_to_sync(_request)(method, url, body, headers)


async def _request(method: str, url: str, body: str | None, headers: dict) -> httpx.Response:
    from config.asgi import application

    before = asyncio.all_tasks()
    transport = httpx.ASGITransport(app=application)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8000") as client:
        response = await client.request(method, url, content=body, headers=headers)
    # A server's event loop outlives its requests: what a request leaves running there (the
    # live push after its commit) finishes before this loop is closed.
    left = asyncio.all_tasks() - before - {asyncio.current_task()}
    if left:
        await asyncio.wait(left, timeout=10)
    return response


def receive(params: dict) -> InboundResult:
    """The inbound service with a webhook's parameters, in the caller's transaction: for
    tests that need a customer's message rather than a webhook."""
    return inbound_message_receive(inbound=parse_inbound(QueryDict(urlencode(params))))
