"""Sign-in fit for a bank: failed sign-ins lock out the account from that address, and
sessions end after their idle and absolute limits (issue #21, defect 3 and sessions)."""

import pytest
from axes.models import AccessAttempt
from django.contrib.auth import SESSION_KEY

from core import signin
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("path", ["/accounts/login/", "/admin/login/"])
def test_wrong_passwords_lock_the_account_then_even_the_right_one_is_refused(client, alice, settings, path):
    """After AUTH_LOCKOUT_FAILURES wrong passwords, the next attempts — the right password
    included — get a 429 page saying for how long; nothing signs in."""
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        response = client.post(path, {"username": "alice", "password": "wrong"})
        assert response.status_code == 200  # the form again, with its error
    assert client.post(path, {"username": "alice", "password": "wrong"}).status_code == 429
    response = client.post(path, {"username": "alice", "password": PASSWORD})
    assert response.status_code == 429
    assert "15 minutes" in response.content.decode()
    assert SESSION_KEY not in client.session
    assert AccessAttempt.objects.filter(username="alice").exists()


def test_the_lockout_is_per_account_and_address(client, alice, bob, settings):
    """Another advisor, or the same one from another address, still signs in."""
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/accounts/login/", {"username": "alice", "password": "wrong"})
    assert client.post("/accounts/login/", {"username": "bob", "password": PASSWORD}).status_code == 302
    client.logout()
    elsewhere = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD}, REMOTE_ADDR="10.9.8.7")
    assert elsewhere.status_code == 302


def test_a_success_resets_the_count(client, alice, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        client.post("/accounts/login/", {"username": "alice", "password": "wrong"})
    assert client.post("/accounts/login/", {"username": "alice", "password": PASSWORD}).status_code == 302
    client.logout()
    client.post("/accounts/login/", {"username": "alice", "password": "wrong"})
    assert client.post("/accounts/login/", {"username": "alice", "password": PASSWORD}).status_code == 302


def test_a_supervisor_unlocks_an_advisor_of_their_agency_from_the_admin(client, alice, sam, settings):
    """Advisors › "Unlock sign-in": the lock goes, and alice signs in again at once."""
    for _ in range(settings.AXES_FAILURE_LIMIT):
        client.post("/accounts/login/", {"username": "alice", "password": "wrong"})
    supervisor = client.__class__()
    supervisor.force_login(sam.user)
    response = supervisor.post(
        "/admin/crm/advisor/", {"action": "unlock_sign_in", "_selected_action": [alice.pk]}, follow=True
    )
    assert response.status_code == 200
    assert not AccessAttempt.objects.filter(username="alice").exists()
    assert client.post("/accounts/login/", {"username": "alice", "password": PASSWORD}).status_code == 302


@pytest.fixture
def moment(monkeypatch):
    """The clock sessions are measured by, moved by the test."""
    now = [1_800_000_000.0]
    monkeypatch.setattr(signin, "clock", lambda: now[0])
    return now


def test_a_session_idle_for_its_limit_ends(client, alice, settings, moment):
    assert client.post("/accounts/login/", {"username": "alice", "password": PASSWORD}).status_code == 302
    assert client.get("/inbox/").status_code == 200
    moment[0] += settings.SESSION_IDLE_MINUTES * 60 - 5
    assert client.get("/inbox/").status_code == 200  # activity within the limit keeps it
    moment[0] += settings.SESSION_IDLE_MINUTES * 60
    response = client.get("/inbox/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    assert SESSION_KEY not in client.session


def test_a_busy_session_still_ends_at_its_absolute_limit(client, alice, settings, moment):
    assert client.post("/accounts/login/", {"username": "alice", "password": PASSWORD}).status_code == 302
    for _ in range(settings.SESSION_MAX_HOURS * 3):
        assert client.get("/inbox/").status_code == 200
        moment[0] += 20 * 60
    response = client.get("/inbox/")
    assert response.status_code == 302
    assert SESSION_KEY not in client.session


def test_the_stores_expiry_follows_the_nearer_limit(client, alice, settings, moment):
    """The session row expires at the idle limit, never past the absolute one: the open
    sockets' refresh, which reads the store, closes them when it passes."""
    client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    client.get("/inbox/")
    assert client.session.get_expiry_age() == settings.SESSION_IDLE_MINUTES * 60
    for _ in range(settings.SESSION_MAX_HOURS * 3 - 1):  # a request every 20 minutes
        moment[0] += 20 * 60
        assert client.get("/inbox/").status_code == 200
    assert client.session.get_expiry_age() == 20 * 60  # the absolute limit is 20 minutes away
