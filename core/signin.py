"""Sign-in fit for a bank: failed sign-ins locked out (django-axes) and sessions that end.

- `LockoutBackend`: django-axes' check, first of AUTHENTICATION_BACKENDS. A web sign-in
  (`/accounts/login/`, the admin's) carries its request and is counted; an `authenticate()`
  without one (a management command, a test client's `login()`) is no web sign-in and is
  let through to the password check.
- `SessionLifetimeMiddleware`: a session ends after SESSION_IDLE_MINUTES without a request
  and SESSION_MAX_HOURS after sign-in, whatever its activity. Its expiry date in the session
  store follows (the advisors' open sockets close when it passes: channels_app/sessions.py).
"""

import time
from collections.abc import Callable

from axes.backends import AxesStandaloneBackend
from axes.utils import reset
from django.conf import settings
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

STARTED_KEY = "_attitre_signed_in_at"
SEEN_KEY = "_attitre_seen_at"
# The expiry is pushed forward at most once per this many seconds: not a session write per request.
TOUCH_SECONDS = 60


def clock() -> float:
    """The time sessions are measured by (tests move it)."""
    return time.time()


class LockoutBackend(AxesStandaloneBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


def session_remaining_seconds(session, now: float) -> int:
    """Seconds until the session ends: its idle limit from now, capped by its absolute one."""
    idle = settings.SESSION_IDLE_MINUTES * 60
    started = session.get(STARTED_KEY, now)
    return max(0, int(min(now + idle, started + settings.SESSION_MAX_HOURS * 3600) - now))


def session_expired(session, now: float) -> bool:
    started, seen = session.get(STARTED_KEY), session.get(SEEN_KEY)
    if started is not None and now - started >= settings.SESSION_MAX_HOURS * 3600:
        return True
    return seen is not None and now - seen >= settings.SESSION_IDLE_MINUTES * 60


def session_started(sender, request, user, **kwargs) -> None:
    """`user_logged_in`: the session's absolute and idle limits count from now."""
    session = getattr(request, "session", None)
    if session is None:
        return
    now = clock()
    session[STARTED_KEY] = now
    _seen(session, now)


def _seen(session, now: float) -> None:
    """A request now: the idle limit counts from here, the store's expiry follows."""
    session[SEEN_KEY] = now
    session.set_expiry(session_remaining_seconds(session, now))


class SessionLifetimeMiddleware:
    """After AuthenticationMiddleware: signs out a session past its idle or absolute limit
    (the request goes on as anonymous: pages ask to sign in, the API answers 403), and keeps
    the store's expiry date at the nearer of the two limits."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            now = clock()
            session = request.session
            if session_expired(session, now):
                logout(request)
            else:
                session.setdefault(STARTED_KEY, now)
                if now - session.get(SEEN_KEY, 0) >= TOUCH_SECONDS:
                    _seen(session, now)
        return self.get_response(request)


def client_ip(request: HttpRequest) -> str | None:
    """The address a sign-in came from, as the ASGI server saw it (behind the proxy, from the
    X-Forwarded-For of a trusted proxy only)."""
    return request.META.get("REMOTE_ADDR")


def locked_out(request: HttpRequest, credentials: dict | None, *args, **kwargs) -> HttpResponse:
    """django-axes' answer to a locked-out sign-in: a 429 page saying for how long, never
    whether the password was right."""
    minutes = max(1, int(settings.AXES_COOLOFF_TIME.total_seconds() // 60))
    return render(request, "registration/locked_out.html", {"cooloff_minutes": minutes}, status=429)


def signin_unlock(*, usernames: list[str]) -> int:
    """Lift the lockouts of these accounts, from every address; how many locks went."""
    return sum(reset(username=username) for username in usernames)
