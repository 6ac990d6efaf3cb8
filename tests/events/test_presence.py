"""Presence entries, one per open socket, in each store: Redis's sorted sets and the
embedded default's rows. Time is a number the tests move."""

import threading

import pytest
from django.db import connections

from core.redis_config import settings_redis_location
from events import presence
from events.models import Presence
from events.presence import PRESENCE_TTL_SECONDS, Socket
from tests.presence import forget_presence

T0 = 1_800_000_000.0


@pytest.fixture(params=["database", pytest.param("redis", marks=pytest.mark.redis)])
def store(request, db):
    if request.param == "database":
        yield presence._DatabasePresence()
        return
    forget_presence()
    yield presence._RedisPresence(presence._redis_client(settings_redis_location()))
    forget_presence()


def tab(advisor_id: int, n: int, agency_id: int) -> Socket:
    return Socket(f"specific.tab{n}!{advisor_id}", advisor_id, agency_id)


def test_two_tabs_then_one_then_none(store, alice):
    """The first tab brings the advisor online, the second changes nothing; closing one
    leaves her online, closing the last takes her offline."""
    first, second = tab(alice.pk, 1, alice.agency_id), tab(alice.pk, 2, alice.agency_id)
    assert store.connect(first, T0) is True
    assert store.connect(second, T0 + 1) is False
    assert store.live_counts([alice.pk], T0 + 2) == {alice.pk: 2}
    assert store.disconnect(first, T0 + 3) is False
    assert store.live_counts([alice.pk], T0 + 3) == {alice.pk: 1}
    assert store.disconnect(second, T0 + 4) is True
    assert store.live_counts([alice.pk], T0 + 4) == {alice.pk: 0}


def test_an_entry_not_stamped_lapses_and_is_swept_once(store, alice, bob):
    """A dead process's entry counts until PRESENCE_TTL_SECONDS after its last stamp, then
    not; one sweep takes it, a second (another process's) finds nothing. Stamped entries stay."""
    dead, live = tab(alice.pk, 1, alice.agency_id), tab(bob.pk, 1, bob.agency_id)
    store.connect(dead, T0)
    store.connect(live, T0)
    later = T0 + PRESENCE_TTL_SECONDS
    store.refresh([live], later)
    assert store.sweep(later) == []
    assert store.live_counts([alice.pk, bob.pk], later) == {alice.pk: 1, bob.pk: 1}

    lapsed = later + 1
    assert store.live_counts([alice.pk], lapsed) == {alice.pk: 0}
    assert store.sweep(lapsed) == [dead]
    assert store.sweep(lapsed) == []
    assert store.live_counts([alice.pk, bob.pk], lapsed) == {alice.pk: 0, bob.pk: 1}
    # Its process is gone: closing it is nobody's to announce any more.
    assert store.disconnect(dead, lapsed) is False


def test_a_new_tab_beside_a_lapsed_one_is_the_first(store, alice):
    """An advisor whose only entry lapsed (not swept yet) opening a tab comes online again;
    sweeping the lapsed entry afterwards leaves her online."""
    old, new = tab(alice.pk, 1, alice.agency_id), tab(alice.pk, 2, alice.agency_id)
    store.connect(old, T0)
    now = T0 + PRESENCE_TTL_SECONDS + 1
    assert store.connect(new, now) is True
    assert store.sweep(now) == [old]
    assert store.live_counts([alice.pk], now) == {alice.pk: 1}


def test_a_refresh_records_again_an_entry_that_vanished(store, alice):
    """A tab whose entry was swept or lost is recorded again by its process's next refresh,
    which says so; one still there is only stamped."""
    kept, lost = tab(alice.pk, 1, alice.agency_id), tab(alice.pk, 2, alice.agency_id)
    store.connect(kept, T0)
    assert store.refresh([kept, lost], T0 + 30) == [lost]
    assert store.refresh([kept, lost], T0 + 60) == []
    assert store.live_counts([alice.pk], T0 + 60 + PRESENCE_TTL_SECONDS) == {alice.pk: 2}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("kind", ["database", pytest.param("redis", marks=pytest.mark.redis)])
def test_two_processes_sweeping_at_once_take_each_entry_once(kind, alice, bob, settings):
    """Two live processes sweeping the same lapsed entries at the same moment: every entry
    is taken by exactly one of them, so each lapse is announced by one process."""
    forget_presence()
    if kind == "database":
        stores = [presence._DatabasePresence(), presence._DatabasePresence()]
    else:
        stores = [presence._RedisPresence(presence._redis_client(settings_redis_location())) for _ in range(2)]
    sockets = [tab(advisor.pk, n, advisor.agency_id) for advisor in (alice, bob) for n in range(20)]
    for socket in sockets:
        stores[0].connect(socket, T0)
    now = T0 + PRESENCE_TTL_SECONDS + 1
    barrier = threading.Barrier(2)
    taken: list[list[Socket]] = [[], []]

    def sweep(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            taken[index] = stores[index].sweep(now)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=sweep, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(taken[0] + taken[1], key=lambda s: s.channel) == sorted(sockets, key=lambda s: s.channel)
    assert not set(taken[0]) & set(taken[1])
    # Nothing is left behind.
    if kind == "redis":
        assert list(presence._redis_client(settings_redis_location()).scan_iter(f"{presence.REDIS_PREFIX}:*")) == []
    else:
        assert not Presence.objects.exists()
