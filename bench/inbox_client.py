"""What the inbox benchmarks share: a logged-in advisor's websocket, signed webhooks."""

import json
from urllib.parse import urlencode

import aiohttp
from django.conf import settings
from django.contrib.auth import get_user_model
from django.http import QueryDict
from django.test import Client

from conversations.providers.twilio import sign

MESSAGES_PATH = "/webhooks/twilio/messages/"


def session_cookie(username: str) -> str:
    """A real Django session for `username`, stored in the database the server reads."""
    client = Client()
    client.force_login(get_user_model().objects.get(username=username))
    return client.cookies[settings.SESSION_COOKIE_NAME].value


async def open_inbox(session: aiohttp.ClientSession, base_url: str, cookie: str, since: int | None = None):
    ws_url = base_url.replace("http", "ws", 1) + "/ws/inbox/" + (f"?since={since}" if since is not None else "")
    return await session.ws_connect(
        ws_url,
        headers={"Cookie": f"{settings.SESSION_COOKIE_NAME}={cookie}", "Origin": base_url},
        autoping=True,
        heartbeat=None,
    )


async def drain(ws) -> None:
    """Read and drop every frame, as an open browser tab does: reading is what answers the
    server's websocket pings, without which the server closes the socket (uvicorn: 20 s
    ping, 20 s timeout). Returns when the socket closes."""
    try:
        async for _frame in ws:
            pass
    except aiohttp.ClientError:
        pass  # the connection broke: the caller sees the reader done


def signed_whatsapp(*, base_url: str, sid: str, sender: str, body: str) -> tuple[bytes, dict]:
    params = {
        "MessageSid": sid,
        "SmsMessageSid": sid,
        "SmsSid": sid,
        "AccountSid": settings.TWILIO_ACCOUNT_SID or "AC" + "0" * 32,
        "From": f"whatsapp:{sender}",
        "To": "whatsapp:+33180000000",
        "Body": body,
        "NumMedia": "0",
        "ProfileName": "Bench",
        "WaId": sender.lstrip("+"),
        "SmsStatus": "received",
        "ApiVersion": "2010-04-01",
    }
    query = QueryDict(mutable=True)
    query.update(params)
    signature = sign(url=settings.PUBLIC_BASE_URL + MESSAGES_PATH, params=query)
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature}
    return urlencode(params).encode(), headers


def parse(frame) -> dict | None:
    if frame.type != aiohttp.WSMsgType.TEXT:
        return None
    return json.loads(frame.data)
