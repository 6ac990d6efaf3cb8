"""The live inbox websocket, end to end: the ASGI application with its origin check and
session login, real events from the inbound service, the real channel layer."""

import asyncio
import itertools
import json
import time
from datetime import datetime, timedelta
from urllib.parse import urlencode

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, connections
from django.http import QueryDict
from django.test import Client
from django.utils import timezone

from channels_app import consumers
from config.asgi import application
from conversations.models import Message
from conversations.providers.twilio import parse_inbound
from conversations.services import inbound_message_receive
from crm.models import Advisor
from crm.services import advisor_update
from events import presence
from events.groups import advisor_group
from events.log import horizon
from events.models import Event
from events.presence import PRESENCE_TTL_SECONDS, Socket, advisors_online
from events.publish import pushes_sent
from tests import twilio
from tests.concurrency import transaction_held_open
from tests.factories import ContactPointFactory, CustomerFactory, add_deputy
from tests.presence import forget_presence

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://127.0.0.1:8000")
HOST = (b"host", b"127.0.0.1:8000")
CAMILLE = "+33612345678"
DORA = "+33698765432"


@pytest.fixture(autouse=True)
async def _fresh_layer_and_connections():
    await get_channel_layer().flush()
    yield
    await get_channel_layer().flush()
    # The consumers' ORM calls ran in asgiref's thread; their connections must not outlive the test.
    await sync_to_async(connections.close_all)()


@pytest.fixture
def dora(alice):
    customer = CustomerFactory(first_name="Dora", last_name="Petit", dedicated_advisor=alice, agency=alice.agency)
    ContactPointFactory(customer=customer, kind="whatsapp", address=DORA)
    return customer


def signed_in_browser(user) -> Client:
    """A browser signed in as `user`: its own session."""
    client = Client()
    client.force_login(user)
    return client


def _session_cookie(user) -> str:
    return signed_in_browser(user).cookies[settings.SESSION_COOKIE_NAME].value


@pytest.fixture
async def open_inbox():
    """Opens a signed-in inbox tab; closes what is left open and forgets presence at the end."""
    opened: list[tuple[WebsocketCommunicator, int]] = []

    async def open_(
        advisor: Advisor, *, since: int | None = None, browser: Client | None = None
    ) -> WebsocketCommunicator:
        """A tab of `browser` (by default, of a browser of its own)."""
        browser = browser or await database_sync_to_async(signed_in_browser)(advisor.user)
        cookie = browser.cookies[settings.SESSION_COOKIE_NAME].value
        headers = [ORIGIN, HOST, (b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode())]
        path = "/ws/inbox/" + (f"?since={since}" if since is not None else "")
        communicator = WebsocketCommunicator(application, path, headers=headers)
        connected, _ = await communicator.connect()
        assert connected
        communicator.advisor = advisor  # whose group `frames` sends its barrier to
        # Past the handshake, the consumer goes on connecting (replay, presence): it handles
        # the barrier once that is done, and what it sent meanwhile waits for `frames`.
        communicator.received = await _until_barrier(communicator)
        opened.append((communicator, advisor.pk))
        return communicator

    yield open_
    for communicator, _advisor_id in opened:
        if not communicator.future.done():
            await communicator.disconnect()
    await sync_to_async(forget_presence)()


_barriers = itertools.count()


async def frames(communicator: WebsocketCommunicator) -> list[dict]:
    """Every frame the tab received since the last call: once the pushes handed over until
    now have reached the channel layer, a barrier goes to the tab's advisor's own group, and
    the frames before it are what the layer delivered before it and what the tab sent on its
    own (a consumer handles one message at a time, in order). Waits for nothing but that."""
    received, communicator.received = communicator.received, []
    return received + await _until_barrier(communicator)


async def _until_barrier(communicator: WebsocketCommunicator) -> list[dict]:
    await pushes_sent()
    barrier = {"type": "barrier", "n": next(_barriers)}
    group = advisor_group(communicator.advisor.pk)
    await get_channel_layer().group_send(group, {"type": "inbox.events", "events": [barrier]})
    received = []
    while (frame := await communicator.receive_json_from(timeout=10)) != barrier:
        received.append(frame)
    return received


class Clock:
    """Stands for asyncio.sleep in the open tabs' two tasks (heartbeats, access refresh):
    a task's sleep ends when the test ticks it, and `tick` returns once that task has done
    its round and sleeps again. Nothing waits on the wall clock."""

    def __init__(self):
        self.sleepers: list[tuple[float, asyncio.Future]] = []
        self.changed = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        entry = (seconds, asyncio.get_running_loop().create_future())
        self.sleepers.append(entry)
        self.changed.set()
        try:
            await entry[1]
        finally:
            if entry in self.sleepers:
                self.sleepers.remove(entry)

    async def _sleeper(self, seconds: float) -> tuple[float, asyncio.Future]:
        async with asyncio.timeout(10):  # a broken test fails instead of hanging; nothing is timed
            while (entry := next((entry for entry in self.sleepers if entry[0] == seconds), None)) is None:
                self.changed.clear()
                await self.changed.wait()
        return entry

    async def tick(self, seconds: float, times: int = 1) -> None:
        """The task sleeping `seconds` does `times` rounds."""
        for _ in range(times):
            entry = await self._sleeper(seconds)
            self.sleepers.remove(entry)
            entry[1].set_result(None)
            await self._sleeper(seconds)


@pytest.fixture
def clock(monkeypatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(consumers._OpenTabs, "sleep", staticmethod(clock.sleep))
    return clock


def beat_interval() -> float:
    return consumers.HEARTBEAT_SECONDS / consumers._OpenTabs.BEAT_SLOTS


def events_of(received: list[dict]) -> list[dict]:
    """The Event-log frames, without presence, heartbeats and the replay's cursor."""
    return [frame for frame in received if frame["type"] not in ("presence", "heartbeat", "cursor")]


def _receive(body: str, sender: str):
    params = QueryDict(urlencode(twilio.whatsapp_text(body=body, sender=sender)))
    return inbound_message_receive(inbound=parse_inbound(params))


async def customer_writes(body: str, sender: str = CAMILLE):
    """A WhatsApp message through the real inbound service; its events are pushed after commit."""
    return await database_sync_to_async(_receive)(body, sender)


async def set_availability(advisor: Advisor, availability: str) -> None:
    advisor.availability = availability
    await database_sync_to_async(advisor.save)(update_fields=["availability"])


def created(received: list[dict]) -> list[dict]:
    return [frame for frame in received if frame["type"] == "message.created"]


@database_sync_to_async
def bodies(received: list[dict]) -> list[str]:
    """What the messages of these message.created frames say: frames carry their ids, not their text."""
    ids = [frame["message"]["id"] for frame in created(received)]
    texts = dict(Message.objects.filter(pk__in=ids).values_list("pk", "body"))
    return [texts[message_id] for message_id in ids]


def cursor_of(received: list[dict]) -> int:
    """The position the replay ends with: where the tab replays from next time."""
    [cursor] = [frame["since"] for frame in received if frame["type"] == "cursor"]
    return cursor


async def test_anonymous_is_refused_with_4401():
    """Without a session the socket is accepted then closed with 4401, so the page can send the user
    to the login page instead of retrying."""
    communicator = WebsocketCommunicator(application, "/ws/inbox/", headers=[ORIGIN, HOST])
    connected, _ = await communicator.connect()
    assert connected
    closing = await communicator.receive_output()
    assert closing["type"] == "websocket.close"
    assert closing["code"] == 4401
    assert closing["reason"]
    await communicator.wait()


async def test_user_without_an_active_advisor_is_refused_with_4401(alice):
    """A signed-in user who is not an active advisor gets 4401 too."""
    user = await database_sync_to_async(get_user_model().objects.create_user)("visitor", password="x-y-z-12345")
    cookie = await database_sync_to_async(_session_cookie)(user)
    headers = [ORIGIN, HOST, (b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode())]
    communicator = WebsocketCommunicator(application, "/ws/inbox/", headers=headers)
    assert (await communicator.connect())[0]
    assert (await communicator.receive_output())["code"] == 4401
    await communicator.wait()


@pytest.mark.parametrize(
    "origin",
    [
        b"https://evil.example.com",
        b"http://127.0.0.1:8001",  # the same host, another port: another site's page
        b"https://127.0.0.1:8000",  # another scheme
        b"https://localhost",
        b"http://127.0.0.1.evil.example.com:8000",
        b"null",
    ],
)
async def test_wrong_origin_is_refused_at_the_handshake(alice, origin):
    """A page of another origin cannot open the inbox with the advisor's cookie, even on our
    host name with another port or scheme: only the exact configured origins are accepted."""
    cookie = await database_sync_to_async(_session_cookie)(alice.user)
    headers = [
        (b"origin", origin),
        HOST,
        (b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()),
    ]
    communicator = WebsocketCommunicator(application, "/ws/inbox/", headers=headers)
    connected, _ = await communicator.connect()
    assert not connected


async def test_dedicated_advisor_receives_the_message_live(open_inbox, alice, camille):
    """Camille writes: alice's open inbox receives message.created with the message's id (never
    its text), once."""
    inbox = await open_inbox(alice)
    await frames(inbox)
    result = await customer_writes("Bonjour Alice, ma carte est bloquée")
    received = events_of(await frames(inbox))
    assert [frame["type"] for frame in received] == ["thread.assigned", "message.created"]
    message = created(received)[0]
    assert message["message"]["id"] == result.message.pk
    assert "Bonjour" not in json.dumps(received) and "Camille" not in json.dumps(received)
    assert message["thread"] == result.message.thread_id
    assert [frame["id"] for frame in received] == sorted(frame["id"] for frame in received)


async def test_colleague_who_is_not_deputy_receives_nothing(open_inbox, alice, bob, camille):
    """Bob, same agency but not alice's deputy, hears nothing of Camille's thread that alice handles."""
    inbox = await open_inbox(bob)
    await frames(inbox)
    await customer_writes("Pour Alice seulement")
    assert events_of(await frames(inbox)) == []


async def test_supervisor_receives_the_message(open_inbox, alice, sam, camille):
    """Sam, supervisor of the agency, receives every message of the agency."""
    inbox = await open_inbox(sam)
    await frames(inbox)
    await customer_writes("Bonjour")
    assert await bodies(await frames(inbox)) == ["Bonjour"]


async def test_covering_deputy_receives_an_absent_advisors_message(open_inbox, alice, bob, camille):
    """Alice away, bob her deputy: bob's inbox receives the message, once."""
    await database_sync_to_async(add_deputy)(alice, bob)
    await set_availability(alice, "away")
    inbox = await open_inbox(bob)
    await frames(inbox)
    await customer_writes("Alice est absente ?")
    # And the automatic reply telling Camille who covers, once too.
    assert await bodies(await frames(inbox)) == [
        "Alice est absente ?",
        "Alice Durand n’est pas disponible. Bob Leroy (Agence Lyon Bellecour) vous répondra.",
    ]


async def test_pool_thread_reaches_every_advisor_of_the_agency(open_inbox, alice, bob, sam, camille):
    """Alice away without a deputy: the thread goes to the pool and reaches every advisor of the
    agency, each exactly once though some hear it through two groups."""
    await set_availability(alice, "away")
    inboxes = [await open_inbox(advisor) for advisor in (alice, bob, sam)]
    for inbox in inboxes:
        await frames(inbox)
    await customer_writes("Quelqu'un ?")
    for inbox in inboxes:
        # And the automatic reply (Alice is away), once each.
        assert await bodies(await frames(inbox)) == [
            "Quelqu'un ?",
            "Alice Durand n’est pas disponible. Un collègue (Agence Lyon Bellecour) vous répondra.",
        ]


async def test_catch_up_replays_exactly_the_missed_events(open_inbox, alice, camille):
    """Reconnecting with ?since=<the cursor of the last replay> brings the 3 messages missed
    meanwhile, in order, each once, then the next cursor; anything else replayed is an event the
    tab already had."""
    inbox = await open_inbox(alice, since=await database_sync_to_async(horizon)())
    since = cursor_of(await frames(inbox))
    await customer_writes("Avant la coupure")
    seen = events_of(await frames(inbox))
    await inbox.disconnect()

    for body in ("Un", "Deux", "Trois"):
        await customer_writes(body)

    inbox = await open_inbox(alice, since=since)
    received = await frames(inbox)
    assert cursor_of(received) >= since
    types = [frame["type"] for frame in received if frame["type"] != "presence"]
    assert types.index("cursor") == len(events_of(received)), "the cursor after the replay"
    replayed = events_of(received)
    ids = [frame["id"] for frame in replayed]
    assert len(ids) == len(set(ids)), "no duplicates"
    seen_ids = {frame["id"] for frame in seen}
    new = [frame for frame in replayed if frame["id"] not in seen_ids]
    assert [frame["type"] for frame in new] == ["message.created"] * 3
    assert await bodies(new) == ["Un", "Deux", "Trois"]


@pytest.mark.postgres
async def test_catch_up_replays_a_transaction_that_committed_out_of_order(open_inbox, alice, camille, dora, settings):
    """Two real transactions: Camille's draws the smaller ids but commits after Dora's, whose events
    the tab saw before going away. Reconnecting with the cursor it was given replays Camille's,
    however long her transaction took to commit (its events are dated a minute back)."""
    # The journal serialises an agency's commits (its chain head is locked until each commits):
    # off here, for the log's own handling of out-of-order commits (other agencies, journal off).
    settings.ATTITRE_JOURNAL_ENABLED = False
    inbox = await open_inbox(alice, since=await database_sync_to_async(horizon)())
    await frames(inbox)

    def slow() -> list[int]:
        _receive("Validé en retard", CAMILLE)
        Event.objects.filter(thread__customer=camille).update(created_at=timezone.now() - timedelta(minutes=1))
        return list(Event.objects.filter(thread__customer=camille).values_list("pk", flat=True))

    with transaction_held_open(slow) as late:
        await customer_writes("Validé tout de suite", DORA)
        live = events_of(await frames(inbox))
        assert await bodies(live) == ["Validé tout de suite"]
        assert max(late.result) < min(frame["id"] for frame in live), "Camille's events drew smaller ids"
        await inbox.disconnect()
        inbox = await open_inbox(alice, since=0)  # a fresh tab's replay, before Camille's commit
        since = cursor_of(await frames(inbox))
        await inbox.disconnect()

    inbox = await open_inbox(alice, since=since)
    replayed = events_of(await frames(inbox))
    assert set(late.result) <= {frame["id"] for frame in replayed}
    assert "Validé en retard" in await bodies(replayed)


async def test_too_many_missed_events_ask_the_page_to_reload(open_inbox, alice, camille, monkeypatch):
    """More missed events than the replay bound: one resync frame instead of the events."""
    monkeypatch.setattr(consumers, "REPLAY_MAX_EVENTS", 2)
    await customer_writes("Un")
    await customer_writes("Deux")
    inbox = await open_inbox(alice, since=0)
    received = events_of(await frames(inbox))
    assert [frame["type"] for frame in received] == ["resync"]
    assert received[0]["message"]


async def test_heartbeat_keeps_an_idle_connection_alive(open_inbox, alice, clock):
    """An idle tab receives a heartbeat frame with the server time at every interval."""
    inbox = await open_inbox(alice)
    await frames(inbox)
    await clock.tick(beat_interval(), times=2 * consumers._OpenTabs.BEAT_SLOTS)
    heartbeats = [frame for frame in await frames(inbox) if frame["type"] == "heartbeat"]
    await inbox.disconnect()
    assert len(heartbeats) == 2
    assert datetime.fromisoformat(heartbeats[0]["at"]).tzinfo is not None


async def test_deputy_tab_follows_a_colleague_going_away_and_coming_back(open_inbox, alice, bob, clock):
    """Bob's open tab joins alice's group at the next access refresh after she goes away, and
    leaves it when she is back: no reload needed, and no access kept."""
    await database_sync_to_async(add_deputy)(alice, bob)
    inbox = await open_inbox(bob)
    await frames(inbox)
    probe = {"type": "inbox.events", "events": [{"id": 10**9, "type": "thread.updated", "thread": 1}]}

    await set_availability(alice, "away")
    await get_channel_layer().group_send(advisor_group(alice.pk), probe)
    assert events_of(await frames(inbox)) == []  # not before the refresh
    await clock.tick(consumers.ACCESS_REFRESH_SECONDS)
    probe["events"][0]["id"] += 1
    await get_channel_layer().group_send(advisor_group(alice.pk), probe)
    assert [frame["id"] for frame in events_of(await frames(inbox))] == [10**9 + 1]

    await set_availability(alice, "available")
    await clock.tick(consumers.ACCESS_REFRESH_SECONDS)
    probe["events"][0]["id"] += 1
    await get_channel_layer().group_send(advisor_group(alice.pk), probe)
    assert events_of(await frames(inbox)) == []


async def test_deactivated_advisor_is_disconnected_at_the_next_access_refresh(open_inbox, alice, clock):
    """An advisor deactivated while connected is closed with 4401 at the next access refresh."""
    inbox = await open_inbox(alice)
    await frames(inbox)
    alice.is_active = False
    await database_sync_to_async(alice.save)(update_fields=["is_active"])
    await clock.tick(consumers.ACCESS_REFRESH_SECONDS)
    while (output := await inbox.receive_output(timeout=10))["type"] == "websocket.send":
        pass
    assert output == {"type": "websocket.close", "code": 4401}


async def test_one_refresh_reads_the_access_of_every_open_tab_in_three_queries(open_inbox, alice, bob, sam):
    """However many tabs and advisors are connected, refreshing their access costs the same
    three queries (the advisors, the deputyships, the tabs' sessions): no per-socket
    database work."""
    await database_sync_to_async(add_deputy)(alice, bob)
    for advisor in (alice, alice, bob, sam):
        await open_inbox(advisor)
    watcher = consumers._open_tabs()
    assert {advisor_id: len(tabs) for advisor_id, tabs in watcher.tabs.items()} == {alice.pk: 2, bob.pk: 1, sam.pk: 1}

    def count_queries() -> tuple[int, int]:
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as queries:
            found = consumers.access.inbox_access_for(advisor_ids=list(watcher.tabs))
        with CaptureQueriesContext(connection) as session_queries:
            users = {tab.session_key: found[id_][0].user for id_, tabs in watcher.tabs.items() for tab in tabs}
            assert consumers.sessions_holding(users_by_session=users) == set(users)
        return len(queries), len(session_queries)

    assert await database_sync_to_async(count_queries)() == (2, 1)
    await set_availability(alice, "away")
    await sync_to_async(forget_presence)([bob.pk])  # as if Redis had restarted
    await watcher.refresh()
    bob_tab = next(iter(watcher.tabs[bob.pk]))
    assert advisor_group(alice.pk) in bob_tab.inbox_groups
    # The same refresh stamps presence, and records again a tab whose entry vanished.
    assert await sync_to_async(advisors_online)(advisor_ids=[alice.pk, bob.pk, sam.pk]) == {alice.pk, bob.pk, sam.pk}


async def test_presence_reaches_the_supervisor_on_first_tab_and_last_tab_only(open_inbox, alice, bob, sam):
    """Alice's first tab makes her online and her last tab closing makes her offline, pushed to
    the supervisor; a second tab opening or closing changes nothing; bob hears none of it."""
    supervisor = await open_inbox(sam)
    colleague = await open_inbox(bob)
    await frames(supervisor)
    await frames(colleague)

    def presence(received):
        return [(frame["advisor"], frame["online"]) for frame in received if frame["type"] == "presence"]

    first = await open_inbox(alice)
    assert presence(await frames(supervisor)) == [(alice.pk, True)]
    second = await open_inbox(alice)
    assert presence(await frames(supervisor)) == []
    assert await sync_to_async(advisors_online)(advisor_ids=[alice.pk, bob.pk]) == {alice.pk, bob.pk}

    await first.disconnect()
    assert presence(await frames(supervisor)) == []
    await second.disconnect()
    assert presence(await frames(supervisor)) == [(alice.pk, False)]
    assert await sync_to_async(advisors_online)(advisor_ids=[alice.pk, bob.pk]) == {bob.pk}
    assert presence(await frames(colleague)) == []


def presence_frames(received: list[dict]) -> list[tuple[int, bool]]:
    return [(frame["advisor"], frame["online"]) for frame in received if frame["type"] == "presence"]


async def test_an_advisor_whose_server_died_goes_offline_when_her_entry_lapses(open_inbox, alice, sam, monkeypatch):
    """Alice's tab was on a server process that died: its entry is never stamped again. She
    stays online until it lapses; then the next refresh of a live process sweeps it and
    pushes "offline" to the supervisor, once, while the supervisor's own tab, stamped by
    that refresh, stays online. The clock is moved, not waited for."""
    now = [time.time()]
    monkeypatch.setattr(presence, "clock", lambda: now[0])
    supervisor = await open_inbox(sam)
    await frames(supervisor)
    await presence.presence_connect(socket=Socket("specific.dead-process!1", alice.pk, alice.agency_id))
    assert presence_frames(await frames(supervisor)) == [(alice.pk, True)]
    this_process = consumers._open_tabs()

    now[0] += PRESENCE_TTL_SECONDS - 1
    await this_process.refresh()
    assert presence_frames(await frames(supervisor)) == []
    assert await sync_to_async(advisors_online)(advisor_ids=[alice.pk, sam.pk]) == {alice.pk, sam.pk}

    now[0] += 2
    await this_process.refresh()
    assert presence_frames(await frames(supervisor)) == [(alice.pk, False)]
    assert await sync_to_async(advisors_online)(advisor_ids=[alice.pk, sam.pk]) == {sam.pk}
    await this_process.refresh()
    assert presence_frames(await frames(supervisor)) == []


async def test_a_tab_whose_entry_was_swept_comes_back_online(open_inbox, alice, sam, monkeypatch):
    """A process that stalled past the expiry had its tabs swept (offline announced); its
    next refresh records them again and announces the advisor online again."""
    now = [time.time()]
    monkeypatch.setattr(presence, "clock", lambda: now[0])
    supervisor = await open_inbox(sam)
    await open_inbox(alice)
    await frames(supervisor)
    await sync_to_async(forget_presence)([alice.pk])  # swept by another process meanwhile

    await consumers._open_tabs().refresh()
    assert presence_frames(await frames(supervisor)) == [(alice.pk, True)]
    assert await sync_to_async(advisors_online)(advisor_ids=[alice.pk]) == {alice.pk}


async def test_client_frames_are_ignored_except_ping(open_inbox, alice):
    """The socket is push-only: ping is answered pong; anything else, even invalid JSON, is ignored."""
    inbox = await open_inbox(alice)
    await frames(inbox)
    await inbox.send_to(text_data="not json")
    await inbox.send_json_to({"type": "message.send", "body": "Hello"})
    # The client's frames are handled in order: what the two before the ping caused comes before the pong.
    assert await until_pong(inbox) == []


async def test_a_tab_that_stalls_does_not_hold_the_other_tabs_heartbeats(monkeypatch, clock):
    """Heartbeats are sent side by side: a client whose socket stops draining (its beat never
    completes) leaves the other tabs of the process beating at every round."""
    # A round with a stalled beat ends after the interval (the rounds' own pacing): a short one.
    monkeypatch.setattr(consumers, "HEARTBEAT_SECONDS", 0.25)
    beats: list[int] = []

    class Tab:
        def __init__(self, advisor_id: int, *, stalls: bool = False):
            self.advisor = Advisor(pk=advisor_id)
            self.stalls = stalls

        async def beat(self):
            if self.stalls:
                await asyncio.Event().wait()
            beats.append(self.advisor.pk)

    open_tabs = consumers._OpenTabs(asyncio.get_running_loop())
    tabs = [Tab(1, stalls=True), *(Tab(advisor_id) for advisor_id in range(2, 6))]
    for tab in tabs:
        open_tabs.add(tab)
    await clock.tick(beat_interval(), times=2 * consumers._OpenTabs.BEAT_SLOTS)
    for tab in tabs:
        open_tabs.discard(tab)
    assert all(beats.count(advisor_id) == 2 for advisor_id in range(2, 6))
    assert 1 not in beats


async def test_deputy_tab_follows_an_absence_set_through_the_api_at_once(open_inbox, alice, bob):
    """An absence recorded by the API's service reaches bob's open tab (her deputy) at once:
    he hears alice's group without waiting for the periodic refresh, and stops when she is back."""
    await database_sync_to_async(add_deputy)(alice, bob)
    inbox = await open_inbox(bob)
    await frames(inbox)
    probe = {"type": "inbox.events", "events": [{"id": 10**9, "type": "thread.updated", "thread": 1}]}

    # The service tells bob's tab (his own group) before it returns: the barrier follows it.
    await database_sync_to_async(advisor_update)(advisor=alice, availability="away")
    await frames(inbox)
    await get_channel_layer().group_send(advisor_group(alice.pk), probe)
    assert [frame["id"] for frame in events_of(await frames(inbox))] == [10**9]

    await database_sync_to_async(advisor_update)(advisor=alice, availability="available")
    await frames(inbox)
    probe["events"][0]["id"] += 1
    await get_channel_layer().group_send(advisor_group(alice.pk), probe)
    assert events_of(await frames(inbox)) == []


async def closed_with(inbox: WebsocketCommunicator, timeout: float = 1) -> int:
    """The code the server closes `inbox` with, within `timeout` (heartbeats skipped)."""
    while (output := await inbox.receive_output(timeout=timeout))["type"] == "websocket.send":
        pass
    assert output["type"] == "websocket.close"
    return output["code"]


async def until_pong(inbox: WebsocketCommunicator) -> list[dict]:
    """Pings the tab; the frames it sent before the pong. Fails if it closes instead."""
    await inbox.send_json_to({"type": "ping"})
    received = []
    while (output := await inbox.receive_output(timeout=10))["type"] == "websocket.send":
        if (frame := json.loads(output["text"])) == {"type": "pong"}:
            return received
        received.append(frame)
    raise AssertionError(f"closed with {output.get('code')} instead of answering")


async def still_open(inbox: WebsocketCommunicator) -> bool:
    try:
        await until_pong(inbox)
    except AssertionError:
        return False
    return True


async def test_signing_out_closes_that_sessions_sockets_at_once(open_inbox, alice):
    """POST /accounts/logout/ closes every socket of that session with 4401 at once (no
    waiting for a refresh); her socket in another browser stays open."""
    browser = await database_sync_to_async(signed_in_browser)(alice.user)
    tabs = [await open_inbox(alice, browser=browser) for _ in range(2)]
    elsewhere = await open_inbox(alice)

    response = await database_sync_to_async(browser.post)("/accounts/logout/")
    assert response.status_code == 200
    assert [await closed_with(tab) for tab in tabs] == [4401, 4401]
    assert await still_open(elsewhere)


async def test_a_password_change_closes_the_users_sockets_at_once(open_inbox, alice):
    """Alice changes her password in one browser: her other browser's session is over, its
    socket closes at once with 4401. So does the changing browser's: its session key was
    renewed, and the page reloads on 4401 (inbox.js), reconnecting with the new one."""
    alice.user.set_password("old-password-1234")
    await database_sync_to_async(alice.user.save)()
    changing, other = [await database_sync_to_async(signed_in_browser)(alice.user) for _ in range(2)]
    changing_tab, other_tab = await open_inbox(alice, browser=changing), await open_inbox(alice, browser=other)

    form = {
        "old_password": "old-password-1234",
        "new_password1": "n3w-Passw0rd-5678",
        "new_password2": "n3w-Passw0rd-5678",
    }
    response = await database_sync_to_async(changing.post)("/accounts/password_change/", form)
    assert response.status_code == 302
    assert await closed_with(other_tab) == 4401
    assert await closed_with(changing_tab) == 4401
    assert await still_open(await open_inbox(alice, browser=changing))


async def test_a_deactivated_login_closes_its_sockets_at_once(open_inbox, alice, bob):
    """Alice's login deactivated (the user admin, a script): her sockets close at once;
    bob's stays open."""
    tab, colleague = await open_inbox(alice), await open_inbox(bob)
    user = alice.user
    user.is_active = False
    await database_sync_to_async(user.save)()
    assert await closed_with(tab) == 4401
    assert await still_open(colleague)


async def test_the_access_refresh_closes_sockets_whose_session_expired_or_is_gone(open_inbox, alice):
    """At the periodic refresh, a socket whose session expired, or was deleted (cleared,
    ended elsewhere), is closed with 4401; one whose session holds stays open."""
    from django.contrib.sessions.models import Session

    expired, deleted, valid = [await database_sync_to_async(signed_in_browser)(alice.user) for _ in range(3)]
    tabs = {
        name: await open_inbox(alice, browser=b)
        for name, b in (("expired", expired), ("deleted", deleted), ("valid", valid))
    }
    past = timezone.now() - timedelta(seconds=1)
    key = settings.SESSION_COOKIE_NAME
    await Session.objects.filter(session_key=expired.cookies[key].value).aupdate(expire_date=past)
    await Session.objects.filter(session_key=deleted.cookies[key].value).adelete()
    assert await still_open(tabs["expired"])  # nothing happens before the refresh

    await consumers._open_tabs().refresh()
    assert await closed_with(tabs["expired"]) == 4401
    assert await closed_with(tabs["deleted"]) == 4401
    assert await still_open(tabs["valid"])
