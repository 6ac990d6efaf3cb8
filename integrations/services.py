"""Services for integrators: API keys, and event webhooks out (dispatch from the event
log, signed delivery, retries).

Webhooks read the durable Event log behind a cursor instead of being called by the
publishing helper: `events.publish.publish_event` stays the one way events are
made, and a dead Redis or a slow receiver never touches the transaction that wrote
the event. The log commits out of order (ids are drawn at insert), so each scan
rereads a few seconds behind the cursor; attempt 1 of a (endpoint, event) pair is
unique in the database, which makes a reread harmless.
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
from datetime import timedelta
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone
from django.utils.translation import gettext as _
from django_q.tasks import async_task

from core.tasks import enqueue
from crm.models import Agency
from events.models import Event
from integrations.models import ApiKey, WebhookCursor, WebhookDelivery, WebhookEndpoint

logger = logging.getLogger(__name__)

KEY_BYTES = 32
PREFIX_LENGTH = 8
PREFIX_ATTEMPTS = 5
DELIVER_TASK = "integrations.tasks.webhook_deliver"
CURSOR_NAME = "events"
DISPATCH_BATCH = 500


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


def webhook_url_check(url: str, *, resolve: bool = True) -> None:
    """Only http(s); and, unless ATTITRE_WEBHOOKS_ALLOW_PRIVATE, only public addresses:
    every address the host resolves to is checked, so a name pointing inside the
    network is refused as well as a literal one."""
    parts = urlsplit(url or "")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookRefused(_("Only http:// and https:// URLs can receive webhooks."), code="url_scheme")
    if settings.ATTITRE_WEBHOOKS_ALLOW_PRIVATE:
        return
    try:
        literal = ipaddress.ip_address(parts.hostname)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    elif not resolve:
        return
    else:
        try:
            infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
        except (socket.gaierror, UnicodeError) as exc:
            raise WebhookRefused(
                _("The host %(host)s does not resolve.") % {"host": parts.hostname}, code="url_unresolvable"
            ) from exc
        addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    for address in addresses:
        mapped = getattr(address, "ipv4_mapped", None)
        checked = mapped or address
        if not checked.is_global or checked.is_multicast:
            raise WebhookRefused(
                _("%(host)s resolves to %(address)s, an internal address; webhooks only go to public addresses.")
                % {"host": parts.hostname, "address": address},
                code="url_private",
            )


# --- Webhooks out: dispatch ----------------------------------------------------------------------


def webhook_dispatch_pending(*, batch_size: int = DISPATCH_BATCH) -> int:
    """Enqueue one delivery per (active endpoint, new event it wants); returns how many.

    Reads the events above the cursor plus those of the last few seconds below it
    (late commits), skips pairs already enqueued, and moves the cursor, all in one
    transaction with the enqueued tasks (django-q2's ORM broker is our outbox).
    """
    overlap = timedelta(seconds=settings.ATTITRE_WEBHOOK_OVERLAP_SECONDS)
    with transaction.atomic():
        cursor = WebhookCursor.objects.select_for_update().filter(name=CURSOR_NAME).first()
        if cursor is None:
            # Endpoints receive what happens from now on, not the whole history.
            latest = Event.objects.aggregate(latest=Max("pk"))["latest"] or 0
            WebhookCursor.objects.get_or_create(name=CURSOR_NAME, defaults={"last_event_id": latest})
            return 0
        endpoints = list(WebhookEndpoint.objects.filter(active=True))
        fresh = list(Event.objects.filter(pk__gt=cursor.last_event_id).order_by("pk")[:batch_size])
        if fresh:
            cursor.last_event_id = fresh[-1].pk
            cursor.updated_at = timezone.now()
            cursor.save(update_fields=["last_event_id", "updated_at"])
        if not endpoints:
            return 0
        anchor = Event.objects.filter(pk=cursor.last_event_id).values_list("created_at", flat=True).first()
        late = []
        if anchor is not None:
            below = fresh[0].pk if fresh else cursor.last_event_id + 1
            late = list(Event.objects.filter(pk__lt=below, created_at__gte=anchor - overlap))
        events = {event.pk: event for event in [*late, *fresh]}
        wanted = {
            (endpoint.pk, event.pk)
            for event in events.values()
            for endpoint in endpoints
            if event.created_at >= endpoint.created_at and endpoint.wants(event.type, event.agency_id)
        }
        if not wanted:
            return 0
        existing = set(
            WebhookDelivery.objects.filter(attempt=1, event_id__in=list(events)).values_list("endpoint_id", "event_id")
        )
        new = wanted - existing
        # A concurrent dispatcher may insert the same pairs: the unique constraint keeps one,
        # and the delivery's conditional claim makes a task enqueued twice send once.
        WebhookDelivery.objects.bulk_create(
            [WebhookDelivery(endpoint_id=endpoint_id, event_id=event_id, attempt=1) for endpoint_id, event_id in new],
            ignore_conflicts=True,
        )
        created = WebhookDelivery.objects.filter(
            attempt=1, attempted_at__isnull=True, event_id__in={event_id for _, event_id in new}
        ).values_list("pk", "endpoint_id", "event_id")
        ids = [pk for pk, endpoint_id, event_id in created if (endpoint_id, event_id) in new]
        for delivery_id in ids:
            _enqueue(delivery_id)
    return len(ids)


def _enqueue(delivery_id: int) -> None:
    async_task(DELIVER_TASK, delivery_id, q_options={"group": "webhooks", "save": False})


def webhook_dispatch_loop(*, seconds: float, poll: float) -> int:
    """Dispatch every `poll` seconds for `seconds`: a minutely schedule becomes a feed
    with a latency of a few seconds (django-q2 schedules go down to one minute)."""
    deadline = time.monotonic() + seconds
    total = 0
    while True:
        total += webhook_dispatch_pending()
        if time.monotonic() + poll >= deadline:
            return total
        time.sleep(poll)


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
        webhook_url_check(endpoint.url)
        # Redirects are not followed: they could lead to an address we refuse.
        response = requests.post(
            endpoint.url,
            data=body,
            headers={
                "Content-Type": "application/json",
                "User-Agent": "Attitre-Webhooks/1.0",
                "X-Attitre-Event-Id": str(delivery.event_id),
                "X-Attitre-Event-Type": delivery.event.type,
                "X-Attitre-Delivery-Attempt": str(delivery.attempt),
                "X-Attitre-Signature": webhook_signature(endpoint.secret, body),
            },
            timeout=settings.ATTITRE_WEBHOOK_TIMEOUT_SECONDS,
            allow_redirects=False,
        )
        status_code = response.status_code
        if not 200 <= status_code < 300:
            error = _("The receiver answered HTTP %(status)d.") % {"status": status_code}
    except WebhookRefused as exc:
        error = exc.messages[0]
    except requests.RequestException as exc:
        error = _("%(kind)s: %(error)s") % {"kind": type(exc).__name__, "error": str(exc) or type(exc).__name__}
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
    endpoint.refresh_from_db()
    return endpoint
