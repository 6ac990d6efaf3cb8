"""The live inbox: one websocket per browser tab, push-only.

A tab joins the groups its advisor may hear, accepts, replays from the Event log
what it missed since its cursor (`/ws/inbox/?since=<position>`: the log's horizon when
the page was rendered or at the last replay, events.log), tells the tab its new cursor
(`{"type": "cursor", "since": <position>}`), then forwards the live pushes of
`events.publish` (or, on a layer of this process only, what `relay.py` relays from the log),
each event once per connection. It lives no longer than the session it was opened with
(`sessions.py`): it is closed with 4401 when that session signs out, expires, or stops
signing its user in.

While tabs stay open, `_OpenTabs` keeps all those of a server process with two
tasks: their heartbeats, spread over the interval, and every ACCESS_REFRESH_SECONDS
one read, for all their advisors at once, of who may still connect and which groups
each may hear (a covered colleague going away or coming back), which also stamps
their presence and sweeps what dead processes left (events.presence). No task and
no periodic query per socket.
"""

import asyncio
import itertools
import json
import logging
import time
from collections import defaultdict, deque
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.http import HttpRequest
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from channels_app.relay import relay_follow, relay_unfollow
from channels_app.sessions import sessions_holding
from conversations import access, selectors
from conversations.models import Thread
from core.loops import loop_local
from crm.models import Advisor
from events.groups import chat_group, session_group
from events.log import horizon
from events.presence import Socket, presence_connect, presence_disconnect, presence_refresh
from events.publish import event_message

logger = logging.getLogger(__name__)

# Under the 60 s idle timeout of common proxies (nginx, load balancers), with margin.
HEARTBEAT_SECONDS = 25
# How soon an open tab follows a change of access: deactivation, a covered colleague
# going away or coming back. Also stamps presence (lapsed after events.presence.PRESENCE_TTL_SECONDS).
ACCESS_REFRESH_SECONDS = 30
# Past this many missed events, reloading the page is cheaper than replaying them.
REPLAY_MAX_EVENTS = 2000
SENT_IDS_KEPT = 5000
# Not signed in, or not (any more) an active advisor: the page sends the user to the login page.
CLOSE_UNAUTHORIZED = 4401
CLIENT_FRAME_MAX_LENGTH = 256
# An advisor's "typing" reaches the customer's widget at most this often per thread.
TYPING_EVERY_SECONDS = 3

# Joining and leaving groups at once, per server process: a thousand tabs dropping or
# reconnecting together (a network blip, a deploy) would otherwise open a Redis
# connection each, past the connect timeout, and leave stale group memberships.
MEMBERSHIP_CONCURRENCY = 32


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
        self.session_key: str | None = None
        self.sent = _RecentIds(SENT_IDS_KEPT)
        self.open_tabs: _OpenTabs | None = None
        self.counted_present = False
        self.relayed = False
        self.typing_sent: dict[int, float] = {}

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
        self.session_key = self.scope["session"].session_key
        # Joined before the replay, so an event is either in the replay or queued live,
        # never in between. A channel-layer failure here fails the connection: the page
        # reconnects and catches up, instead of showing an inbox that is silently not live.
        self.inbox_groups = groups
        async with membership_slot():
            for group in [*groups, session_group(self.session_key)]:
                await self.channel_layer.group_add(group, self.channel_name)
        # Before the replay too: with a layer of this process only, what other processes
        # append from now on is relayed from the log (relay.py).
        self.relayed = await relay_follow(self.channel_layer)
        await self.accept()
        since = self._since()
        if since is not None:
            await self._catch_up(since)
        self.open_tabs = _open_tabs()
        self.open_tabs.add(self)
        self.counted_present = True
        async with membership_slot():
            await presence_connect(socket=self.socket())

    async def disconnect(self, code):
        if self.open_tabs is not None:
            self.open_tabs.discard(self)
        if self.relayed:
            self.relayed = False
            relay_unfollow()
        async with membership_slot():
            session = [session_group(self.session_key)] if self.session_key else []
            for group in [*self.inbox_groups, *session]:
                try:
                    await self.channel_layer.group_discard(group, self.channel_name)
                except Exception:
                    logger.warning("Leaving group %s failed.", group, exc_info=True)
            if self.counted_present:
                await presence_disconnect(socket=self.socket())

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        """Push-only but for "ping", answered "pong", and "typing {thread}", which reaches that
        thread's customer's open web chat (throttled, and only on a thread the advisor may see);
        anything else is ignored."""
        if self.advisor is None or not text_data or len(text_data) > CLIENT_FRAME_MAX_LENGTH:
            return
        try:
            frame = json.loads(text_data)
        except ValueError:
            return
        if not isinstance(frame, dict):
            return
        if frame.get("type") == "ping":
            await self.send_json({"type": "pong"})
        elif frame.get("type") == "typing" and isinstance(frame.get("thread"), int):
            await self._typing(frame["thread"])

    async def _typing(self, thread_id: int) -> None:
        now = time.monotonic()
        if now - self.typing_sent.get(thread_id, float("-inf")) < TYPING_EVERY_SECONDS:
            return
        self.typing_sent[thread_id] = now
        if await self._may_see(thread_id):
            await self.channel_layer.group_send(chat_group(thread_id), {"type": "chat.typing"})

    @database_sync_to_async
    def _may_see(self, thread_id: int) -> bool:
        return Thread.objects.filter(access.thread_visibility_q(advisor=self.advisor), pk=thread_id).exists()

    async def inbox_events(self, message):
        """Each event as its own frame, in id order, once per connection; presence (no id) always."""
        for event in sorted(message["events"], key=lambda event: event.get("id") or 0):
            event_id = event.get("id")
            if event_id is not None and not self.sent.add(event_id):
                continue
            await self.send_json(event)

    def _since(self) -> int | None:
        """The tab's cursor; None (no replay) when absent or not a number."""
        values = parse_qs(self.scope.get("query_string", b"").decode("latin-1")).get("since") or [""]
        try:
            return max(int(values[-1]), 0)
        except ValueError:
            return None

    async def _catch_up(self, since: int) -> None:
        """Every visible event of a transaction at or past `since`, then the new cursor: the
        horizon read before them (the tab has every event below it now). The events past that
        horizon come again at the next replay; the tab drops those it has."""
        position, events = await self._events_from(since)
        if len(events) > REPLAY_MAX_EVENTS:
            with translation.override(self.language):
                text = _("Too much happened while you were disconnected: reload the page to see your inbox.")
            await self.send_json({"type": "resync", "message": text})
            return
        for event in events:
            self.sent.add(event["id"])
            await self.send_json(event)
        await self.send_json({"type": "cursor", "since": position})

    def socket(self) -> Socket:
        return Socket(self.channel_name, self.advisor.pk, self.advisor.agency_id)

    async def beat(self) -> None:
        try:
            await self.send_json({"type": "heartbeat", "at": timezone.now().isoformat()})
        except Exception as error:
            # The connection is gone (the server's ping timed out, the client left); its
            # disconnect follows and cleans up.
            logger.info("Inbox of advisor %s no longer writable (%s).", self.advisor.pk, type(error).__name__)

    async def apply_access(self, advisor: Advisor | None, groups: list[str]) -> None:
        """Follow the advisor's current access: join the groups they may now hear, leave the
        others; close with 4401 when they may no longer connect."""
        if advisor is None:
            try:
                await self.close(code=CLOSE_UNAUTHORIZED)
            finally:
                if self.open_tabs is not None:
                    self.open_tabs.discard(self)  # nothing more to beat or refresh on this tab
            return
        self.advisor = advisor
        joined = self.inbox_groups
        for group in groups:
            if group not in joined:
                await self.channel_layer.group_add(group, self.channel_name)
        self.inbox_groups = list(dict.fromkeys([*joined, *groups]))
        for group in joined:
            if group not in groups:
                await self.channel_layer.group_discard(group, self.channel_name)
        self.inbox_groups = groups

    async def inbox_access(self, message) -> None:
        """The advisor's availability, absence or deputies changed, or their login did
        (`events.inbox_access`): their access, and this socket's session, are read again."""
        if self.advisor is None:
            return
        await self.apply_access(*await self._load(self.advisor.user_id, session_key=self.session_key))

    async def inbox_session_ended(self, message) -> None:
        """The session this socket was opened with signed out (`events.inbox_access`)."""
        if self.advisor is not None:
            await self.apply_access(None, [])

    @database_sync_to_async
    def _load(self, user_id: int, *, session_key: str | None = None) -> tuple[Advisor | None, list[str]]:
        """The advisor who may connect and the groups they may hear; with `session_key`, only
        while that session still signs them in (at connect, the auth middleware just checked)."""
        advisor = (
            Advisor.objects.select_related("user").filter(user_id=user_id, is_active=True, user__is_active=True).first()
        )
        if advisor is None:
            return None, []
        if session_key is not None and not sessions_holding(users_by_session={session_key: advisor.user}):
            return None, []
        return advisor, access.inbox_groups_for(advisor=advisor)

    @database_sync_to_async
    def _events_from(self, since: int) -> tuple[int, list[dict]]:
        position = horizon()
        events = selectors.events_visible_from(advisor=self.advisor, position=since, limit=REPLAY_MAX_EVENTS + 1)
        return position, [event_message(event) for event in events]


class _OpenTabs:
    """The open inbox tabs of one server process (one event loop), kept by two tasks
    whatever their number, instead of a task and periodic queries per tab:

    - heartbeats: each tab beats once every HEARTBEAT_SECONDS, the tabs spread evenly
      over the interval, so thousands opened together do not beat together;
    - access: every ACCESS_REFRESH_SECONDS, who may still connect, whether each tab's
      session still holds and the groups each advisor may hear are read for all of them
      at once, and their presence is stamped.

    The tasks run while there are tabs, and start again with the next one.
    """

    BEAT_SLOTS = 25
    # What the two tasks wait with between rounds; tests move the time themselves.
    sleep = staticmethod(asyncio.sleep)

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.tabs: dict[int, set[InboxConsumer]] = defaultdict(set)
        self.beat_slots: list[set[InboxConsumer]] = [set() for _ in range(self.BEAT_SLOTS)]
        self.added = 0
        self.tasks: list[asyncio.Task] = []

    def add(self, tab: InboxConsumer) -> None:
        self.tabs[tab.advisor.pk].add(tab)
        self.beat_slots[self.added % self.BEAT_SLOTS].add(tab)
        self.added += 1
        if not self.tasks:
            self.tasks = [self.loop.create_task(self._beat()), self.loop.create_task(self._refresh())]

    def discard(self, tab: InboxConsumer) -> None:
        tabs = self.tabs.get(tab.advisor.pk)
        if tabs is not None:
            tabs.discard(tab)
            if not tabs:
                del self.tabs[tab.advisor.pk]
        for slot in self.beat_slots:
            slot.discard(tab)
        if not self.tabs:
            # Not the task calling (a refresh closing the last tab): it ends at its next turn,
            # seeing that it is no longer one of the tasks.
            current = asyncio.current_task()
            for task in self.tasks:
                if task is not current:
                    task.cancel()
            self.tasks = []

    async def _beat(self) -> None:
        for tick in itertools.count():
            interval = HEARTBEAT_SECONDS / self.BEAT_SLOTS
            await self.sleep(interval)
            beats = [self.loop.create_task(tab.beat()) for tab in self.beat_slots[tick % self.BEAT_SLOTS]]
            if beats:
                # A client that reads slowly holds only its own beat, not the others' next ones.
                await asyncio.wait(beats, timeout=interval)

    async def _refresh(self) -> None:
        this = asyncio.current_task()
        while True:
            await self.sleep(ACCESS_REFRESH_SECONDS)
            if this not in self.tasks:
                return
            try:
                await self.refresh()
            except Exception:
                logger.warning(
                    "Refreshing the access of %s open inboxes failed; retrying.", len(self.tabs), exc_info=True
                )

    async def refresh(self) -> None:
        advisor_ids = list(self.tabs)
        access = await _access_of(advisor_ids)
        holding = await _sessions_holding(
            {
                tab.session_key: access[advisor_id][0].user
                for advisor_id in advisor_ids
                if advisor_id in access
                for tab in self.tabs.get(advisor_id, ())
            }
        )
        for advisor_id in advisor_ids:
            advisor, groups = access.get(advisor_id, (None, []))
            for tab in list(self.tabs.get(advisor_id, ())):
                try:
                    if tab.session_key in holding:
                        await tab.apply_access(advisor, groups)
                    else:
                        await tab.apply_access(None, [])
                except Exception:
                    logger.warning("Access of an inbox of advisor %s not refreshed.", advisor_id, exc_info=True)
        await presence_refresh(sockets=[tab.socket() for tabs in self.tabs.values() for tab in tabs])


# This event loop's open tabs (a server process runs one loop; tests start many).
_open_tabs = loop_local(lambda: _OpenTabs(asyncio.get_running_loop()))

# This event loop's limit on sockets (inbox tabs, chat widgets) joining or leaving groups at the same moment.
membership_slot = loop_local(lambda: asyncio.Semaphore(MEMBERSHIP_CONCURRENCY))


@database_sync_to_async
def _access_of(advisor_ids: list[int]) -> dict[int, tuple[Advisor, list[str]]]:
    return access.inbox_access_for(advisor_ids=advisor_ids)


@database_sync_to_async
def _sessions_holding(users_by_session: dict) -> set[str]:
    return sessions_holding(users_by_session=users_by_session) if users_by_session else set()
