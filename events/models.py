from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class CurrentTransactionId(models.Func):
    """The id of the transaction writing the row (PostgreSQL's `pg_current_xact_id()`, 64 bits
    with its epoch, so it never wraps); NULL on SQLite, whose writes are serialised (events.log)."""

    output_field = models.BigIntegerField()

    def as_sql(self, compiler, connection, **extra_context):
        return "NULL", []

    def as_postgresql(self, compiler, connection, **extra_context):
        return "(pg_current_xact_id()::text::bigint)", []


class Event(models.Model):
    """The durable log of what happened, read in commit order (events.log): the live inbox
    replays from it, the API's feed hands it out.

    Ids are drawn at insert time and transactions commit in any order, so "every id above
    the last one seen" is not complete; `txid`, the writing transaction, is what orders it.
    """

    class Type(models.TextChoices):
        MESSAGE_CREATED = "message.created", _("Message created")
        MESSAGE_STATUS = "message.status", _("Message status changed")
        ATTACHMENT_UPDATED = "attachment.updated", _("Attachment downloaded or refused")
        THREAD_UPDATED = "thread.updated", _("Thread updated")
        THREAD_ASSIGNED = "thread.assigned", _("Thread assigned")
        NOTE_CREATED = "note.created", _("Note created")
        CONSENT_CHANGED = "consent.changed", _("Consent changed")
        CONTACT_POINT_CONFIRMED = "contact_point.confirmed", _("Contact point confirmed")
        CUSTOMER_REASSIGNED = "customer.reassigned", _("Customer reassigned")
        THREAD_TRIAGED = "thread.triaged", _("Topic chosen or handed over")
        THREAD_URGENT = "thread.urgent", _("Urgent conversation alert")

    type = models.CharField(_("type"), max_length=32, choices=Type.choices)
    # Named, not imported: the event log sits below the apps whose rows it points at.
    thread = models.ForeignKey(
        "conversations.Thread", on_delete=models.PROTECT, null=True, blank=True, related_name="events"
    )
    agency = models.ForeignKey("crm.Agency", on_delete=models.PROTECT, related_name="events")
    payload = models.JSONField(default=dict)
    created_at = models.DateTimeField(_("created at"), default=timezone.now, db_index=True)
    # Filled by the database in the INSERT itself, whatever writes the row.
    txid = models.BigIntegerField(_("transaction"), null=True, editable=False, db_default=CurrentTransactionId())

    class Meta:
        # The table it had in conversations, where it began: moved without copying a row.
        db_table = "conversations_event"
        verbose_name = _("event")
        verbose_name_plural = _("events")
        ordering = ["id"]
        indexes = [
            models.Index(fields=["txid", "id"], name="event_commit_order"),
            # A thread page's timeline shows these as lines of their own: found without
            # reading the thread's every message event.
            models.Index(
                fields=["thread", "id"],
                condition=models.Q(
                    type__in=[
                        "thread.assigned",
                        "consent.changed",
                        "customer.reassigned",
                        "contact_point.confirmed",
                        "thread.triaged",
                    ]
                ),
                name="event_timeline",
            ),
        ]

    def __str__(self):
        return f"#{self.pk} {self.type}"


class Presence(models.Model):
    """An open inbox socket, for presence on the embedded default, which has no Redis
    (events.presence): whose it is, and when its server process last stamped it."""

    channel_name = models.CharField(_("channel name"), max_length=100, primary_key=True)
    # Named, not imported, as on Event.
    advisor = models.ForeignKey("crm.Advisor", on_delete=models.CASCADE, related_name="+")
    agency = models.ForeignKey("crm.Agency", on_delete=models.CASCADE, related_name="+")
    last_seen = models.DateTimeField(_("last seen"), db_index=True)

    class Meta:
        verbose_name = _("open inbox")
        verbose_name_plural = _("open inboxes")
        indexes = [models.Index(fields=["advisor", "last_seen"], name="events_presence_advisor_seen")]

    def __str__(self):
        return self.channel_name
