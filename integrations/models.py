"""What integrators' systems use: API keys for the REST API, and the endpoints our events
are delivered to, with each delivery.

Moved from crm with their tables, which keep their names (db_table): no row was copied."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from crm.models import Agency


class ApiKey(models.Model):
    """A secret that lets an integrator's system call the REST API, limited to its scopes
    (and to one agency when set). Only a SHA-256 of the whole key is stored: keys are
    long random strings, so a fast hash is enough, and the key cannot be shown again."""

    class Scope(models.TextChoices):
        CUSTOMERS_READ = "customers:read", _("Read customers and contact points")
        CUSTOMERS_WRITE = "customers:write", _("Create, update and reassign customers")
        ADVISORS_READ = "advisors:read", _("Read advisors")
        ADVISORS_WRITE = "advisors:write", _("Update advisors' availability and deputies")
        THREADS_READ = "threads:read", _("Read conversations")
        THREADS_WRITE = "threads:write", _("Claim, transfer, close and reopen conversations")
        MESSAGES_READ = "messages:read", _("Read messages")
        MESSAGES_SEND = "messages:send", _("Send messages")
        TEMPLATES_READ = "templates:read", _("Read message templates")
        EVENTS_READ = "events:read", _("Read the event feed")

    name = models.CharField(_("name"), max_length=100)
    prefix = models.CharField(_("prefix"), max_length=8, unique=True)
    hashed_key = models.CharField(_("hashed key"), max_length=64)
    scopes = models.JSONField(_("scopes"), default=list)
    agency = models.ForeignKey(
        Agency,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="api_keys",
        help_text=_("When set, the key reaches only this agency's customers, advisors and conversations."),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    last_used_at = models.DateTimeField(_("last used at"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True)

    class Meta:
        db_table = "crm_apikey"
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")
        ordering = ["name", "id"]

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None


class WebhookEndpoint(models.Model):
    """An integrator's URL that receives our events, signed with its secret."""

    url = models.URLField(_("URL"), max_length=500)
    secret = models.CharField(
        _("signing secret"), max_length=200, help_text=_("Used to sign each delivery (HMAC-SHA256).")
    )
    event_types = models.JSONField(
        _("event types"), default=list, blank=True, help_text=_("Leave empty to receive every event type.")
    )
    agency = models.ForeignKey(
        Agency,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="webhook_endpoints",
        help_text=_("When set, only this agency's events are delivered."),
    )
    active = models.BooleanField(_("active"), default=True)
    disabled_reason = models.CharField(_("why it was disabled"), max_length=500, blank=True)
    failure_count = models.PositiveIntegerField(_("consecutive failures"), default=0)
    failing_since = models.DateTimeField(_("failing since"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        db_table = "crm_webhookendpoint"
        verbose_name = _("webhook endpoint")
        verbose_name_plural = _("webhook endpoints")
        ordering = ["url", "id"]

    def __str__(self):
        return self.url


class WebhookDelivery(models.Model):
    """One attempt at delivering one event to one endpoint."""

    class State(models.TextChoices):
        PENDING = "pending", _("Pending")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")

    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries")
    event = models.ForeignKey("events.Event", on_delete=models.CASCADE, related_name="+")
    attempt = models.PositiveSmallIntegerField(_("attempt"), default=1)
    state = models.CharField(_("state"), max_length=16, choices=State.choices, default=State.PENDING)
    status_code = models.PositiveSmallIntegerField(_("HTTP status"), null=True, blank=True)
    duration_ms = models.PositiveIntegerField(_("duration (ms)"), null=True, blank=True)
    error = models.CharField(_("error"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    attempted_at = models.DateTimeField(_("attempted at"), null=True, blank=True)
    next_retry_at = models.DateTimeField(_("next retry at"), null=True, blank=True)

    class Meta:
        db_table = "crm_webhookdelivery"
        verbose_name = _("webhook delivery")
        verbose_name_plural = _("webhook deliveries")
        ordering = ["-id"]
        indexes = [models.Index(fields=["endpoint", "-id"], name="webhook_delivery_endpoint")]
        constraints = [
            # One row per attempt: a retry is a new row, never a second try of the same one.
            models.UniqueConstraint(fields=["endpoint", "event", "attempt"], name="webhook_delivery_attempt_unique"),
            models.CheckConstraint(
                condition=Q(state__in=["pending", "succeeded", "failed"]), name="webhook_delivery_state_valid"
            ),
        ]

    def __str__(self):
        return f"{self.endpoint} · event {self.event_id} · attempt {self.attempt}"
