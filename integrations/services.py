"""Services for integrators: API keys, and event webhooks out (queued with each event,
signed delivery, retries).

Each event's deliveries are written, with their tasks, in the transaction that appends the
event (`webhooks_queue`, the event log's append hook): `events.publish.publish_event` stays
the one way events are made, and the receiver is called by a task after commit, so a slow
receiver never touches that transaction, and with Redis down webhooks still go out.
"""

import hashlib
import hmac
import ipaddress
import itertools
import json
import logging
import secrets
import socket
import time
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from core.tasks import enqueue
from crm.models import Agency
from events.models import Event
from integrations import pinned
from integrations.models import ApiKey, WebhookDelivery, WebhookEndpoint

logger = logging.getLogger(__name__)

KEY_BYTES = 32
PREFIX_LENGTH = 8
PREFIX_ATTEMPTS = 5
DELIVER_TASK = "integrations.tasks.webhook_deliver"


def _field_error(field: str, message: str, *, code: str) -> ValidationError:
    # The code goes on the inner error: Django drops a dict-shaped error's own code.
    return ValidationError({field: ValidationError(message, code=code)})


# --- API keys -------------------------------------------------------------------------


def hash_key(key: str) -> str:
    # Keys are 256-bit random strings: a fast hash is enough, no salt or stretching needed.
    return hashlib.sha256(key.encode()).hexdigest()


def api_key_create(
    *, name: str, scopes: list[str], agency: Agency | None = None, created_by: AbstractBaseUser | None = None
) -> tuple[ApiKey, str]:
    """A new key and its secret, which is shown once and never stored."""
    name = (name or "").strip()
    if not name:
        raise _field_error("name", _("Name the key after the system that will use it."), code="name_required")
    unknown = sorted(set(scopes) - set(ApiKey.Scope.values))
    if unknown:
        raise _field_error(
            "scopes",
            _("Unknown scopes: %(unknown)s. Choose among %(known)s.")
            % {"unknown": ", ".join(unknown), "known": ", ".join(ApiKey.Scope.values)},
            code="scope_invalid",
        )
    if not scopes:
        raise _field_error("scopes", _("Give the key at least one scope."), code="scope_required")
    # The prefix (48 random bits) finds the key on each request, so it is unique; the
    # constraint decides, and a key drawn with a taken prefix is drawn again.
    for attempt in itertools.count(1):
        key = secrets.token_urlsafe(KEY_BYTES)
        try:
            with transaction.atomic():
                api_key = ApiKey.objects.create(
                    name=name,
                    prefix=key[:PREFIX_LENGTH],
                    hashed_key=hash_key(key),
                    scopes=sorted(set(scopes)),
                    agency=agency,
                    created_by=created_by,
                )
            return api_key, key
        except IntegrityError:
            if attempt == PREFIX_ATTEMPTS or not ApiKey.objects.filter(prefix=key[:PREFIX_LENGTH]).exists():
                raise


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    api_key.refresh_from_db(fields=["revoked_at"])
    return api_key


# --- Webhooks out: addresses -----------------------------------------------------------------


class WebhookRefused(ValidationError):
    """An endpoint URL we will not call (scheme, or an address inside our network)."""


def webhook_url_check(url: str, *, resolve: bool = True) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """Only http(s); and, unless ATTITRE_WEBHOOKS_ALLOW_PRIVATE, only public addresses:
    every address the host resolves to is checked, so a name pointing inside the
    network is refused as well as a literal one. Returns the addresses checked, which
    the delivery connects to (no second lookup: DNS rebinding reaches nothing); none
    when `resolve` is off and the host is a name."""
    parts = urlsplit(url or "")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookRefused(_("Only http:// and https:// URLs can receive webhooks."), code="url_scheme")
    try:
        addresses = [ipaddress.ip_address(parts.hostname)]
    except ValueError:
        if not resolve:
            return []
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
            infos = socket.getaddrinfo(parts.hostname, port, proto=socket.IPPROTO_TCP)
        except (socket.gaierror, UnicodeError, ValueError) as exc:
            raise WebhookRefused(
                _("The host %(host)s does not resolve.") % {"host": parts.hostname}, code="url_unresolvable"
            ) from exc
        addresses = list(dict.fromkeys(ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos))
    if settings.ATTITRE_WEBHOOKS_ALLOW_PRIVATE:
        return addresses
    for address in addresses:
        mapped = getattr(address, "ipv4_mapped", None)
        checked = mapped or address
        if not checked.is_global or checked.is_multicast:
            raise WebhookRefused(
                _("%(host)s resolves to %(address)s, an internal address; webhooks only go to public addresses.")
                % {"host": parts.hostname, "address": address},
                code="url_private",
            )
    return addresses


# --- Webhooks out: queued with each event --------------------------------------------------------

# How long a process trusts its list of active endpoints. A process that changes an endpoint
# forgets its list at once; the others follow within this many seconds.
ENDPOINTS_CACHE_SECONDS = 5.0


@dataclass(frozen=True)
class _Subscription:
    endpoint_id: int
    event_types: frozenset[str]
    agency_id: int | None

    def wants(self, event: Event) -> bool:
        return (not self.event_types or event.type in self.event_types) and self.agency_id in (None, event.agency_id)


_subscriptions: tuple[float, tuple[_Subscription, ...]] | None = None


def _active_subscriptions() -> tuple[_Subscription, ...]:
    global _subscriptions
    cached, now = _subscriptions, time.monotonic()
    if cached is not None and now - cached[0] < ENDPOINTS_CACHE_SECONDS:
        return cached[1]
    rows = WebhookEndpoint.objects.filter(active=True).values_list("pk", "event_types", "agency_id")
    subscriptions = tuple(_Subscription(pk, frozenset(types or ()), agency_id) for pk, types, agency_id in rows)
    _subscriptions = (now, subscriptions)
    return subscriptions


def webhook_endpoints_changed() -> None:
    """An endpoint was created, changed or deleted: this process reads them again, now and
    once the change commits (a read in between would cache what is being replaced)."""
    global _subscriptions
    _subscriptions = None
    transaction.on_commit(webhook_endpoints_forget)


def webhook_endpoints_forget() -> None:
    """This process reads the active endpoints again at the next event."""
    global _subscriptions
    _subscriptions = None


def webhooks_queue(events: list[Event]) -> None:
    """The event log's append hook (registered by IntegrationsConfig.ready): one delivery row
    per (active endpoint, event it wants), and its task, in the events' own transaction;
    django-q2's ORM broker is the outbox. An event nobody wants costs no query.

    No reader follows the log: a transaction that commits late brings its deliveries with it,
    and one that rolls back sends nothing."""
    subscriptions = _active_subscriptions()
    wanted = [(sub.endpoint_id, event) for event in events for sub in subscriptions if sub.wants(event)]
    if not wanted:
        return
    # The cached list may be seconds old: only endpoints still active in this transaction.
    active = set(
        WebhookEndpoint.objects.filter(pk__in={endpoint_id for endpoint_id, _ in wanted}, active=True).values_list(
            "pk", flat=True
        )
    )
    deliveries = WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(endpoint_id=endpoint_id, event=event)
            for endpoint_id, event in wanted
            if endpoint_id in active
        ]
    )
    for delivery in deliveries:
        enqueue(DELIVER_TASK, delivery.pk, group="webhooks")


# --- Webhooks out: delivery ----------------------------------------------------------------------


def webhook_body(event: Event) -> bytes:
    document = {
        "id": event.pk,
        "type": event.type,
        "created_at": event.created_at,
        "thread": event.thread_id,
        "agency": event.agency_id,
        "data": event.payload,
    }
    return json.dumps(document, cls=DjangoJSONEncoder, separators=(",", ":")).encode()


def webhook_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_deliver(*, delivery_id: int) -> WebhookDelivery | None:
    """Make one attempt; on failure schedule the next one (exponential backoff within
    the retry window) or disable an endpoint that keeps failing."""
    now = timezone.now()
    # Claimed by a conditional UPDATE: a duplicated task never sends twice.
    claimed = WebhookDelivery.objects.filter(
        pk=delivery_id, state=WebhookDelivery.State.PENDING, attempted_at__isnull=True
    ).update(attempted_at=now)
    delivery = WebhookDelivery.objects.select_related("endpoint", "event").filter(pk=delivery_id).first()
    if not claimed or delivery is None:
        return delivery
    endpoint = delivery.endpoint
    if not endpoint.active:
        return _finish(delivery, state=WebhookDelivery.State.FAILED, error=_("The endpoint is disabled."))

    body = webhook_body(delivery.event)
    started = time.monotonic()
    status_code, error = None, ""
    try:
        addresses = webhook_url_check(endpoint.url)
        status_code = pinned.post(
            endpoint.url,
            addresses=addresses,
            body=body,
            headers={
                "Content-Type": "application/json",
                "User-Agent": "Attitre-Webhooks/1.0",
                "X-Attitre-Event-Id": str(delivery.event_id),
                "X-Attitre-Event-Type": delivery.event.type,
                "X-Attitre-Delivery-Attempt": str(delivery.attempt),
                "X-Attitre-Signature": webhook_signature(endpoint.secret, body),
            },
            timeout=settings.ATTITRE_WEBHOOK_TIMEOUT_SECONDS,
        )
        if not 200 <= status_code < 300:
            error = _("The receiver answered HTTP %(status)d.") % {"status": status_code}
    except WebhookRefused as exc:
        error = exc.messages[0]
    except pinned.PinnedRequestError as exc:
        error = _("%(kind)s: the receiver could not be reached.") % {"kind": str(exc)}
    delivery.status_code = status_code
    delivery.duration_ms = int((time.monotonic() - started) * 1000)
    if not error:
        if endpoint.failure_count or endpoint.failing_since:
            WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failure_count=0, failing_since=None)
        return _finish(delivery, state=WebhookDelivery.State.SUCCEEDED, error="")
    return _after_failure(delivery, error)


def _finish(delivery: WebhookDelivery, *, state: str, error: str, next_retry_at=None) -> WebhookDelivery:
    delivery.state, delivery.error, delivery.next_retry_at = state, error[:500], next_retry_at
    delivery.save(update_fields=["state", "error", "status_code", "duration_ms", "next_retry_at"])
    return delivery


def _after_failure(delivery: WebhookDelivery, error: str) -> WebhookDelivery:
    now = timezone.now()
    with transaction.atomic():
        endpoint = WebhookEndpoint.objects.select_for_update().get(pk=delivery.endpoint_id)
        endpoint.failure_count += 1
        endpoint.failing_since = endpoint.failing_since or now
        fields = ["failure_count", "failing_since"]
        too_many = endpoint.failure_count >= settings.ATTITRE_WEBHOOK_DISABLE_AFTER_FAILURES
        too_long = now - endpoint.failing_since >= timedelta(seconds=settings.ATTITRE_WEBHOOK_DISABLE_AFTER_SECONDS)
        next_retry_at = None
        if endpoint.active and (too_many or too_long):
            endpoint.active = False
            endpoint.disabled_reason = _(
                "Disabled on %(date)s after %(count)d failed deliveries in a row (failing since %(since)s). "
                "Last error: %(error)s Fix the receiver, then tick “active” again."
            ) % {
                "date": timezone.localtime(now).strftime("%Y-%m-%d %H:%M"),
                "count": endpoint.failure_count,
                "since": timezone.localtime(endpoint.failing_since).strftime("%Y-%m-%d %H:%M"),
                "error": error,
            }
            fields += ["active", "disabled_reason"]
            logger.warning("Webhook endpoint %s disabled after %s failures.", endpoint.pk, endpoint.failure_count)
        elif endpoint.active:
            next_retry_at = _next_retry_at(delivery, now)
        endpoint.save(update_fields=fields)
        if next_retry_at is not None:
            retry = WebhookDelivery.objects.create(
                endpoint_id=delivery.endpoint_id, event_id=delivery.event_id, attempt=delivery.attempt + 1
            )
            enqueue(DELIVER_TASK, retry.pk, group="webhooks", delay=next_retry_at - now)
        return _finish(delivery, state=WebhookDelivery.State.FAILED, error=error, next_retry_at=next_retry_at)


def _next_retry_at(delivery: WebhookDelivery, now):
    """30 s, 1 min, 2 min, 4 min… after each failure, until the event is a day old."""
    delay = timedelta(seconds=settings.ATTITRE_WEBHOOK_FIRST_RETRY_SECONDS * 2 ** (delivery.attempt - 1))
    give_up_at = delivery.event.created_at + timedelta(seconds=settings.ATTITRE_WEBHOOK_RETRY_WINDOW_SECONDS)
    if now >= give_up_at:
        return None
    return min(now + delay, give_up_at)


def webhook_endpoint_enable(*, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """A supervisor turns a disabled endpoint back on: its failure streak starts over."""
    WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
        active=True, failure_count=0, failing_since=None, disabled_reason=""
    )
    webhook_endpoints_changed()
    endpoint.refresh_from_db()
    return endpoint
