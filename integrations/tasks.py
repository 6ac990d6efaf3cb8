"""django-q2 entry points for integrations: take ids, call a service."""

from django.conf import settings

from integrations.services import webhook_deliver as deliver
from integrations.services import webhook_dispatch_loop


def webhook_dispatch() -> int:
    """Run by the minutely `webhook-dispatch` schedule (see `manage.py ensure_schedules`)."""
    return webhook_dispatch_loop(
        seconds=settings.ATTITRE_WEBHOOK_DISPATCH_LOOP_SECONDS, poll=settings.ATTITRE_WEBHOOK_DISPATCH_POLL_SECONDS
    )


def webhook_deliver(delivery_id: int) -> None:
    deliver(delivery_id=int(delivery_id))
