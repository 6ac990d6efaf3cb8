"""The customer's chat socket, `/ws/chat/`: the widget embedded in the bank's own site.

Separate from the advisors' inbox consumer, and it shares nothing with it but the channel
layer. The bank's site is another origin: the handshake is refused unless its Origin is
one of CHAT_ALLOWED_ORIGINS (config.asgi). The socket proves who it is with its first
frame, `{"type": "auth", "token": <the bank's JWT>, "since": <cursor>}` (never in the URL,
which access logs keep), then joins its customer's thread group, and that one only.

Frames in: `message.send {client_id, body}` → `message.ack {client_id, id}` (or
`message.refused {client_id, code, message}`), `message.read {id}`, `typing`, `ping`.
Frames out: `ready`, `history`, `message.created`, `message.status`, `advisor.status`,
`cursor`, `pong`, `error`. Each message is read as the customer may see it
(conversations.webchat_selectors); an event's own payload is never forwarded.

Close codes, each with a reason a developer can read (docs/webchat.md):
4400 a frame that is not ours, 4401 the token refused or expired (fetch a new one),
4403 no such customer, or web chat not configured (do not retry), 4408 no auth frame in time,
4413 a frame larger than CHAT_FRAME_MAX_BYTES, 4429 too many messages (wait a minute).
"""

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Callable
from urllib.parse import urlsplit

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.utils import timezone, translation

from channels_app.consumers import membership_slot
from channels_app.relay import relay_follow, relay_unfollow
from conversations import webchat_selectors as chat
from conversations.providers.webchat import TokenRefused
from conversations.services import webchat
from core.loops import loop_local
from events.groups import chat_group
from events.log import horizon

logger = logging.getLogger(__name__)

AUTH_TIMEOUT_SECONDS = 10
CHAT_FRAME_MAX_BYTES = 16 * 1024
REPLAY_MAX_EVENTS = 500
TYPING_EVERY_SECONDS = 3

CLOSE_BAD_FRAME = 4400
CLOSE_TOKEN = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_AUTH_TIMEOUT = 4408
CLOSE_TOO_LARGE = 4413
CLOSE_RATE = 4429
FATAL_TOKEN_CODES = {"customer_unknown", "chat_disabled", "visitors_disabled"}

# Seconds, for the rate limit and the typing throttle; tests move it.
clock: Callable[[], float] = time.monotonic


def origin_allowed(scope) -> bool:
    """The handshake's Origin is one of the bank's sites (scheme, host and port exactly)."""
    origin = next((value for name, value in scope.get("headers", []) if name == b"origin"), b"").decode("latin-1")
    parts = urlsplit(origin)
    if not parts.scheme or not parts.netloc:
        return False
    wanted = f"{parts.scheme}://{parts.netloc}".lower()
    return wanted in {allowed.rstrip("/").lower() for allowed in settings.CHAT_ALLOWED_ORIGINS}


class ChatOriginValidator:
    """Refuses the handshake of a chat socket from any site but the bank's."""

    def __init__(self, application):
        self.application = application

    async def __call__(self, scope, receive, send):
        if scope["type"] == "websocket" and not origin_allowed(scope):
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": CLOSE_FORBIDDEN})
            return
        return await self.application(scope, receive, send)


class _RateLimit:
    """At most `per_minute` messages per customer per minute, for every socket of this process."""

    def __init__(self):
        self.sent: dict[str, deque[float]] = {}

    def allow(self, key: str, per_minute: int) -> bool:
        now = clock()
        times = self.sent.setdefault(key, deque())
        while times and now - times[0] >= 60:
            times.popleft()
        if len(times) >= per_minute:
            return False
        times.append(now)
        return True


_rate_limit = loop_local(_RateLimit)


class _OpenChats:
    """This process's open widgets, stamped together by one task (the customer's presence)."""

    sleep = staticmethod(asyncio.sleep)

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.names: set[str] = set()
        self.task: asyncio.Task | None = None

    def add(self, name: str) -> None:
        self.names.add(name)
        if self.task is None:
            self.task = self.loop.create_task(self._stamp())

    def discard(self, name: str) -> None:
        self.names.discard(name)
        if not self.names and self.task is not None:
            self.task.cancel()
            self.task = None

    async def _stamp(self) -> None:
        while True:
            await self.sleep(chat.CHAT_PRESENCE_REFRESH_SECONDS)
            try:
                await database_sync_to_async(webchat.chat_sockets_stamp)(channel_names=list(self.names))
            except Exception:
                logger.warning("Stamping %s open chat widgets failed; retrying.", len(self.names), exc_info=True)


_open_chats = loop_local(lambda: _OpenChats(asyncio.get_running_loop()))


class ChatConsumer(AsyncWebsocketConsumer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.identity: webchat.ChatIdentity | None = None
        self.thread_id: int | None = None
        self.language = settings.LANGUAGE_CODE
        self.auth_timer: asyncio.TimerHandle | None = None
        self.expiry_timer: asyncio.TimerHandle | None = None
        self.last_typing = float("-inf")
        self.present = False
        self.relayed = False  # following the relay (relay.py): without Redis only
        self.sent_ids: set[int] = set()

    async def connect(self):
        await self.accept()
        loop = asyncio.get_running_loop()
        self.auth_timer = loop.call_later(
            AUTH_TIMEOUT_SECONDS, lambda: loop.create_task(self._close(CLOSE_AUTH_TIMEOUT, "no auth frame"))
        )

    async def disconnect(self, code):
        for timer in (self.auth_timer, self.expiry_timer):
            if timer is not None:
                timer.cancel()
        if self.relayed:
            self.relayed = False
            relay_unfollow()
        if self.thread_id is not None:
            try:
                async with membership_slot():
                    await self.channel_layer.group_discard(chat_group(self.thread_id), self.channel_name)
            except Exception:
                logger.warning("Leaving the chat group of thread %s failed.", self.thread_id, exc_info=True)
        if self.present:
            _open_chats().discard(self.channel_name)
            left = await database_sync_to_async(webchat.chat_socket_close)(channel_name=self.channel_name)
            if left is not None:
                await self._tell_advisors(left, online=False)

    async def receive(self, text_data=None, bytes_data=None):
        size = len(text_data.encode()) if text_data is not None else len(bytes_data or b"")
        if size > CHAT_FRAME_MAX_BYTES:
            await self._close(CLOSE_TOO_LARGE, f"frame larger than {CHAT_FRAME_MAX_BYTES} bytes")
            return
        try:
            frame = json.loads(text_data) if text_data is not None else None
        except ValueError:
            frame = None
        if not isinstance(frame, dict) or not isinstance(frame.get("type"), str):
            await self._close(CLOSE_BAD_FRAME, "frames are JSON objects with a type")
            return
        kind = frame["type"]
        if self.identity is None:
            if kind != "auth":
                await self._close(CLOSE_TOKEN, "the first frame must be auth")
                return
            await self._authenticate(frame)
            return
        handler = {
            "message.send": self._send_message,
            "message.read": self._read,
            "typing": self._typing,
            "ping": self._ping,
            "history": self._older,
        }.get(kind)
        if handler is None:
            await self._close(CLOSE_BAD_FRAME, f"unknown frame type {kind[:40]}")
            return
        with translation.override(self.language):
            await handler(frame)

    async def _authenticate(self, frame: dict) -> None:
        if self.auth_timer is not None:
            self.auth_timer.cancel()
        try:
            if "token" not in frame and "visitor" in frame:
                identity, thread_id, visitor = await self._identify_visitor(frame.get("visitor"), frame.get("locale"))
                await self._send({"type": "visitor", "id": visitor})
            else:
                identity, thread_id = await self._identify(frame.get("token"))
        except TokenRefused as refusal:
            code = CLOSE_FORBIDDEN if refusal.code in FATAL_TOKEN_CODES else CLOSE_TOKEN
            await self._send({"type": "error", "code": refusal.code, "message": refusal.message})
            await self._close(code, refusal.code)
            return
        self.identity = identity
        self.language = _language(identity)
        if identity.claims is not None:
            remaining = (identity.claims.expires_at - timezone.now()).total_seconds()
            loop = asyncio.get_running_loop()
            self.expiry_timer = loop.call_later(
                max(remaining, 0), lambda: loop.create_task(self._close(CLOSE_TOKEN, "token_expired"))
            )
        with translation.override(self.language):
            await self._join(thread_id, since=frame.get("since"))

    async def _join(self, thread_id: int | None, *, since) -> None:
        """Join the thread's group, then replay what the widget missed, or its history: an
        event is either in the replay or queued live, never in between (the inbox's rule)."""
        if thread_id is not None:
            self.thread_id = thread_id
            async with membership_slot():
                await self.channel_layer.group_add(chat_group(thread_id), self.channel_name)
            # Before the replay: without Redis, other processes' events come from the log (relay.py).
            self.relayed = self.relayed or await relay_follow(self.channel_layer)
            if await database_sync_to_async(webchat.chat_socket_open)(
                thread_id=thread_id, channel_name=self.channel_name
            ):
                await self._tell_advisors(thread_id, online=True)
            self.present = True
            _open_chats().add(self.channel_name)
        status = await self._advisor_status()
        await self._send(
            {
                "type": "ready",
                "customer": self.identity.customer.first_name if self.identity.customer else "",
                "language": self.language,
                "advisor": status.frame(),
            }
        )
        position, frames, history = await self._catch_up(since if isinstance(since, int) and since >= 0 else None)
        if history is not None:
            await self._send({"type": "history", "messages": history, "complete": len(history) < chat.HISTORY_PAGE})
        elif frames is None:
            await self._send({"type": "resync"})
            position, _, history = await self._catch_up(None)
            await self._send({"type": "history", "messages": history, "complete": len(history) < chat.HISTORY_PAGE})
        else:
            await self._send_frames(frames)
        await self._send({"type": "cursor", "since": position})

    async def _send_message(self, frame: dict) -> None:
        client_id = frame.get("client_id")
        if not _rate_limit().allow(self.identity.key, settings.CHAT_RATE_PER_MINUTE):
            await self._close(CLOSE_RATE, "too many messages; wait a minute")
            return
        try:
            message = await self._receive_message(client_id, frame.get("body"))
        except webchat.ChatRefused as refusal:
            await self._send(
                {"type": "message.refused", "client_id": client_id, "code": refusal.code, "message": refusal.message}
            )
            return
        if self.thread_id is None:  # the customer's first message made their thread
            await self._join_first_thread(message.thread_id)
        # The widget has its own message: the push of its message.created needs no read.
        self.sent_ids.add(message.pk)
        await self._send({"type": "message.ack", "client_id": client_id, "id": message.pk})

    async def _join_first_thread(self, thread_id: int) -> None:
        self.thread_id = thread_id
        async with membership_slot():
            await self.channel_layer.group_add(chat_group(thread_id), self.channel_name)
        self.relayed = self.relayed or await relay_follow(self.channel_layer)
        await database_sync_to_async(webchat.chat_socket_open)(thread_id=thread_id, channel_name=self.channel_name)
        self.present = True
        _open_chats().add(self.channel_name)
        await self._tell_advisors(thread_id, online=True)

    async def _read(self, frame: dict) -> None:
        up_to = frame.get("id")
        if self.thread_id is not None and isinstance(up_to, int):
            await database_sync_to_async(webchat.chat_messages_read)(thread_id=self.thread_id, up_to_id=up_to)

    async def _typing(self, frame: dict) -> None:
        now = clock()
        if self.thread_id is None or now - self.last_typing < TYPING_EVERY_SECONDS:
            return
        self.last_typing = now
        event = {"type": "customer.typing", "thread": self.thread_id}
        for group in await database_sync_to_async(webchat.chat_presence_audience)(thread_id=self.thread_id):
            await self.channel_layer.group_send(group, {"type": "inbox.events", "events": [event]})

    async def _ping(self, frame: dict) -> None:
        await self._send({"type": "pong"})

    async def _older(self, frame: dict) -> None:
        before = frame.get("before")
        if self.thread_id is None or not isinstance(before, int):
            return
        messages = await database_sync_to_async(chat.chat_history)(thread_id=self.thread_id, before_id=before)
        await self._send({"type": "history", "messages": messages, "complete": len(messages) < chat.HISTORY_PAGE})

    async def inbox_events(self, message) -> None:
        """Pushes for the thread's group: its customer-facing events, read as the customer sees them."""
        events = [
            event
            for event in message["events"]
            if not (event.get("type") == "message.created" and event["message"]["id"] in self.sent_ids)
        ]
        if self.thread_id is None or not events:
            return
        frames = await database_sync_to_async(chat.chat_frames_for)(thread_id=self.thread_id, events=events)
        await self._send_frames(frames)

    async def chat_typing(self, message) -> None:
        """The advisor is typing in the thread's composer (channels_app.consumers)."""
        await self._send({"type": "typing", "from": "advisor"})

    async def _send_frames(self, frames: list[dict]) -> None:
        for frame in frames:
            if frame["type"] == "message.created":
                # Once per connection: a replayed message may also come live.
                if frame["message"]["id"] in self.sent_ids:
                    continue
                self.sent_ids.add(frame["message"]["id"])
            await self._send(frame)

    async def _send(self, frame: dict) -> None:
        await self.send(text_data=json.dumps(frame))

    async def _close(self, code: int, reason: str) -> None:
        try:
            await self.close(code=code, reason=reason[:120])
        except Exception:
            logger.info("Chat socket already closed (%s).", code)

    async def _tell_advisors(self, thread_id: int, *, online: bool) -> None:
        """The inboxes that may see the thread show the customer online or not (pushed, not logged)."""
        event = {"type": "customer.presence", "thread": thread_id, "online": online}
        try:
            for group in await database_sync_to_async(webchat.chat_presence_audience)(thread_id=thread_id):
                await self.channel_layer.group_send(group, {"type": "inbox.events", "events": [event]})
        except Exception:
            logger.warning("Customer presence of thread %s not pushed.", thread_id, exc_info=True)

    @database_sync_to_async
    def _identify(self, token) -> tuple[webchat.ChatIdentity, int | None]:
        identity = webchat.chat_identify(token=token)
        thread = webchat.chat_thread(identity=identity)
        return identity, thread.pk if thread else None

    @database_sync_to_async
    def _identify_visitor(self, visitor, locale) -> tuple[webchat.ChatIdentity, int | None, str]:
        identity, signed = webchat.chat_visitor_identify(
            visitor=visitor, locale=locale if isinstance(locale, str) else ""
        )
        thread = webchat.chat_thread(identity=identity)
        return identity, thread.pk if thread else None, signed

    @database_sync_to_async
    def _receive_message(self, client_id, body):
        return webchat.chat_message_receive(identity=self.identity, client_id=client_id, body=body)

    @database_sync_to_async
    def _advisor_status(self) -> chat.AdvisorStatus:
        with translation.override(self.language):
            thread = webchat.chat_thread(identity=self.identity)
            return chat.chat_advisor_status(customer=self.identity.customer, thread=thread)

    @database_sync_to_async
    def _catch_up(self, since: int | None) -> tuple[int, list[dict] | None, list[dict] | None]:
        """(cursor, frames since `since` or None when too many, history when no `since`)."""
        position = horizon()
        if self.thread_id is None:
            return position, [], [] if since is None else None
        if since is None:
            return position, None, chat.chat_history(thread_id=self.thread_id)
        events = chat.chat_events_from(thread_id=self.thread_id, position=since, limit=REPLAY_MAX_EVENTS + 1)
        if len(events) > REPLAY_MAX_EVENTS:
            return position, None, None
        messages = [{"id": e.pk, "type": e.type, "thread": e.thread_id, **e.payload} for e in events]
        return position, chat.chat_frames_for(thread_id=self.thread_id, events=messages), None


def _language(identity: webchat.ChatIdentity) -> str:
    """The token's locale when we ship it, else the customer's preferred language."""
    preferred = identity.customer.preferred_language if identity.customer else ""
    for candidate in (identity.locale, preferred):
        code = (candidate or "").split("-")[0].lower()
        if code in {language for language, _ in settings.LANGUAGES}:
            return code
    return settings.LANGUAGE_CODE
