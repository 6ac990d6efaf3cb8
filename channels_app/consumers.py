"""The live inbox: one websocket per browser tab, push-only.

A tab joins the groups its advisor may hear, accepts, replays from the Event log
what it missed since its last event id (`/ws/inbox/?since=<id>`), then forwards
the live pushes of `channels_app.events`, each event once per connection.
"""

import asyncio
import json
import logging
from collections import deque
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.http import HttpRequest
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from channels_app.events import event_message
from channels_app.presence import presence_connect, presence_disconnect, presence_refresh
from conversations import selectors
from crm.models import Advisor

logger = logging.getLogger(__name__)

# Under the 60 s idle timeout of common proxies (nginx, load balancers), with margin.
HEARTBEAT_SECONDS = 25
# How far behind its cursor a reconnecting tab replays: longer than any transaction
# that appends an event takes to commit, plus the clock skew between servers.
INBOX_REPLAY_OVERLAP_SECONDS = 30
# Past this many missed events, reloading the page is cheaper than replaying them.
REPLAY_MAX_EVENTS = 2000
SENT_IDS_KEPT = 5000
# Not signed in, or not (any more) an active advisor: the page sends the user to the login page.
CLOSE_UNAUTHORIZED = 4401
CLIENT_FRAME_MAX_LENGTH = 256


class _RecentIds:
    """The last `size` event ids sent on a connection."""

    def __init__(self, size: int):
        self.size = size
        self.order: deque[int] = deque()
        self.ids: set[int] = set()

    def add(self, event_id: int) -> bool:
        """Remember `event_id`; False when it was already sent."""
        if event_id in self.ids:
            return False
        self.ids.add(event_id)
        self.order.append(event_id)
        if len(self.order) > self.size:
            self.ids.discard(self.order.popleft())
        return True


def _language(scope) -> str:
    """The language the page would use: Django's cookie, else the browser's Accept-Language."""
    request = HttpRequest()
    request.COOKIES = scope.get("cookies", {})
    for name, value in scope.get("headers", []):
        if name == b"accept-language":
            request.META["HTTP_ACCEPT_LANGUAGE"] = value.decode("latin-1")
    return translation.get_language_from_request(request)


class InboxConsumer(AsyncJsonWebsocketConsumer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.advisor: Advisor | None = None
        self.language: str | None = None
        self.inbox_groups: list[str] = []
        self.sent = _RecentIds(SENT_IDS_KEPT)
        self.keep_alive: asyncio.Task | None = None
        self.counted_present = False

    async def connect(self):
        self.language = _language(self.scope)
        user = self.scope.get("user")
        advisor, groups = (None, []) if user is None or not user.is_authenticated else await self._load(user.pk)
        if advisor is None:
            # Accepted then closed with 4401 rather than refused: a browser sees a refused
            # handshake only as 1006, like a network failure, and would retry forever.
            await self.accept()
            with translation.override(self.language):
                reason = _("Sign in as an advisor to see your inbox.")
            await self.close(code=CLOSE_UNAUTHORIZED, reason=reason)
            return
        self.advisor = advisor
        # Joined before the replay, so an event is either in the replay or queued live,
        # never in between. A channel-layer failure here fails the connection: the page
        # reconnects and catches up, instead of showing an inbox that is silently not live.
        self.inbox_groups = groups
        for group in groups:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        since = self._since()
        if since is not None:
            await self._catch_up(since)
        self.keep_alive = asyncio.create_task(self._keep_alive())
        self.counted_present = True
        await presence_connect(advisor_id=advisor.pk, agency_id=advisor.agency_id)

    async def disconnect(self, code):
        if self.keep_alive is not None:
            self.keep_alive.cancel()
            await asyncio.wait([self.keep_alive])
        for group in self.inbox_groups:
            try:
                await self.channel_layer.group_discard(group, self.channel_name)
            except Exception:
                logger.warning("Leaving group %s failed.", group, exc_info=True)
        if self.counted_present:
            await presence_disconnect(advisor_id=self.advisor.pk, agency_id=self.advisor.agency_id)

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        """Push-only: a client may only ask "ping", answered "pong"; anything else is ignored."""
        if self.advisor is None or not text_data or len(text_data) > CLIENT_FRAME_MAX_LENGTH:
            return
        try:
            frame = json.loads(text_data)
        except ValueError:
            return
        if isinstance(frame, dict) and frame.get("type") == "ping":
            await self.send_json({"type": "pong"})

    async def inbox_events(self, message):
        """Each event as its own frame, in id order, once per connection; presence (no id) always."""
        for event in sorted(message["events"], key=lambda event: event.get("id") or 0):
            event_id = event.get("id")
            if event_id is not None and not self.sent.add(event_id):
                continue
            await self.send_json(event)

    def _since(self) -> int | None:
        """The last event id the tab saw; None (no replay) when absent or not a number."""
        values = parse_qs(self.scope.get("query_string", b"").decode("latin-1")).get("since") or [""]
        try:
            return max(int(values[-1]), 0)
        except ValueError:
            return None

    async def _catch_up(self, since: int) -> None:
        events = await self._events_after(since)
        if len(events) > REPLAY_MAX_EVENTS:
            with translation.override(self.language):
                text = _("Too much happened while you were disconnected: reload the page to see your inbox.")
            await self.send_json({"type": "resync", "message": text})
            return
        for event in events:
            self.sent.add(event["id"])
            await self.send_json(event)

    async def _keep_alive(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            try:
                if not await self._refresh_access():
                    await self.close(code=CLOSE_UNAUTHORIZED)
                    return
                await self.send_json({"type": "heartbeat", "at": timezone.now().isoformat()})
                await presence_refresh(advisor_id=self.advisor.pk)
            except Exception:
                logger.warning("Inbox keep-alive of advisor %s failed; retrying.", self.advisor.pk, exc_info=True)

    async def _refresh_access(self) -> bool:
        """The groups follow the advisor's situation while connected: a covered colleague going
        away adds theirs, coming back removes it. False when the advisor may no longer connect."""
        advisor, groups = await self._load(self.advisor.user_id)
        if advisor is None:
            return False
        self.advisor = advisor
        joined, self.inbox_groups = self.inbox_groups, list(dict.fromkeys([*self.inbox_groups, *groups]))
        for group in groups:
            if group not in joined:
                await self.channel_layer.group_add(group, self.channel_name)
        for group in joined:
            if group not in groups:
                await self.channel_layer.group_discard(group, self.channel_name)
        self.inbox_groups = groups
        return True

    @database_sync_to_async
    def _load(self, user_id: int) -> tuple[Advisor | None, list[str]]:
        advisor = (
            Advisor.objects.select_related("user").filter(user_id=user_id, is_active=True, user__is_active=True).first()
        )
        if advisor is None:
            return None, []
        return advisor, selectors.inbox_groups_for(advisor=advisor)

    @database_sync_to_async
    def _events_after(self, since: int) -> list[dict]:
        events = selectors.events_visible_after(
            advisor=self.advisor,
            since=since,
            overlap_seconds=INBOX_REPLAY_OVERLAP_SECONDS,
            limit=REPLAY_MAX_EVENTS + 1,
        )
        return [event_message(event) for event in events]
