"""django-q2 entry points for integrations: take ids, call a service."""

from integrations.services import webhook_deliver as deliver


def webhook_deliver(delivery_id: int) -> None:
    deliver(delivery_id=int(delivery_id))
