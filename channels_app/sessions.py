"""A socket lives no longer than the session it was opened with.

Signing out closes the session's sockets at once (`events.inbox_access.inbox_session_ended`,
a group per session). A login saved with anything else changed (its password, its
activity) makes its sockets re-check at once; and every access refresh checks that each
socket's session still exists, has not expired and still signs its user in with their
current password (Django's session auth hash), which catches expiry and a session ended
any other way. The receivers are connected in `apps.py`.
"""

from importlib import import_module

from django.conf import settings
from django.contrib.auth import HASH_SESSION_KEY, SESSION_KEY
from django.utils import timezone
from django.utils.crypto import constant_time_compare

from crm.models import Advisor
from events.inbox_access import inbox_access_changed, inbox_session_ended


def sessions_holding(*, users_by_session: dict[str, object]) -> set[str]:
    """The keys among these whose session still signs in that user: one query on the
    database session engines (db, cached_db) however many; one load per session on others."""
    engine = import_module(settings.SESSION_ENGINE).SessionStore
    if hasattr(engine, "get_model_class"):
        rows = engine.get_model_class().objects.filter(
            session_key__in=list(users_by_session), expire_date__gt=timezone.now()
        )
        decode = engine().decode
        sessions = {row.session_key: decode(row.session_data) for row in rows}
    else:
        sessions = {key: engine(key).load() for key in users_by_session}
    return {key for key, user in users_by_session.items() if _signs_in(sessions.get(key) or {}, user)}


def _signs_in(session: dict, user) -> bool:
    """What django.contrib.auth.get_user checks: the session's user, with the hash of their
    current password (or of one made with a SECRET_KEY_FALLBACKS key)."""
    stored = session.get(HASH_SESSION_KEY)
    if not stored or str(session.get(SESSION_KEY)) != str(user.pk):
        return False
    hashes = [user.get_session_auth_hash(), *user.get_session_auth_fallback_hash()]
    return any(constant_time_compare(stored, current) for current in hashes)


def signed_out(sender, request, user, **kwargs) -> None:
    """`user_logged_out`: the session's open inboxes close."""
    session_key = request.session.session_key if request is not None else None
    if session_key:
        inbox_session_ended(session_key=session_key)


def user_saved(sender, instance, created=False, update_fields=None, **kwargs) -> None:
    """`post_save` of the user model: a password changed or a login deactivated ends
    sessions, so the user's open inboxes re-check theirs at once. A login recording its
    time (the only save of a sign-in) changes nothing."""
    if created or (update_fields is not None and set(update_fields) <= {"last_login"}):
        return
    inbox_access_changed(advisor_ids=Advisor.objects.filter(user_id=instance.pk).values_list("pk", flat=True))
