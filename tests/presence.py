"""Presence entries in tests: wherever events.presence keeps them in this run."""

from django.conf import settings

from core.redis_config import settings_redis_location
from events import presence
from events.models import Presence


def forget_presence(advisor_ids: list[int] | None = None) -> None:
    """These advisors' entries (everyone's by default) are gone, as after a Redis restart."""
    if settings.REDIS_URL:
        client = presence._redis_client(settings_redis_location())
        if advisor_ids is None:
            keys = list(client.scan_iter(f"{presence.REDIS_PREFIX}:*"))
        else:
            keys = [f"{presence.REDIS_PREFIX}:advisor:{advisor_id}" for advisor_id in advisor_ids]
            sockets = f"{presence.REDIS_PREFIX}:sockets"
            members = [m for m in client.zrange(sockets, 0, -1) if int(m.split(":", 1)[0]) in advisor_ids]
            if members:
                client.zrem(sockets, *members)
        if keys:
            client.delete(*keys)
    else:
        rows = Presence.objects.all()
        if advisor_ids is not None:
            rows = rows.filter(advisor_id__in=advisor_ids)
        rows.delete()
