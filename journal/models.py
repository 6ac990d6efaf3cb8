from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

# The previous hash of an agency's first entry.
GENESIS = "0" * 64


class JournalHead(models.Model):
    """The last entry of an agency's chain: locked by every append, so that two transactions
    writing for the same agency take turns and never fork the chain."""

    agency = models.OneToOneField("crm.Agency", on_delete=models.PROTECT, primary_key=True, related_name="+")
    seq = models.PositiveBigIntegerField(default=0)
    hash = models.CharField(max_length=64, default=GENESIS)

    class Meta:
        verbose_name = _("journal head")

    def __str__(self):
        return f"{self.agency_id}#{self.seq}"


class JournalEntry(models.Model):
    """One thing that happened, as canonical JSON (`entry`, exactly the text hashed), chained:
    `hash = SHA-256(prev_hash ‖ entry)`. Append-only: the database refuses UPDATE and DELETE
    (migration 0002). The other columns repeat what `entry` says, for finding rows."""

    agency = models.ForeignKey("crm.Agency", on_delete=models.PROTECT, related_name="journal_entries")
    seq = models.PositiveBigIntegerField(_("sequence"))
    type = models.CharField(_("type"), max_length=48)
    at = models.DateTimeField(_("at"))
    actor = models.CharField(_("actor"), max_length=64)
    # Plain ids, not foreign keys: the journal outlives the rows it speaks of (pruned events).
    thread_id = models.BigIntegerField(_("thread"), null=True, blank=True)
    event_id = models.BigIntegerField(_("event"), null=True, blank=True)
    message_id = models.BigIntegerField(_("message"), null=True, blank=True)
    entry = models.TextField(_("canonical entry"))
    prev_hash = models.CharField(_("previous hash"), max_length=64)
    hash = models.CharField(_("hash"), max_length=64)

    class Meta:
        verbose_name = _("journal entry")
        verbose_name_plural = _("journal entries")
        ordering = ["agency", "seq"]
        constraints = [models.UniqueConstraint(fields=["agency", "seq"], name="journal_entry_agency_seq")]
        indexes = [
            models.Index(fields=["message_id"], condition=Q(message_id__isnull=False), name="journal_entry_message"),
            models.Index(fields=["thread_id", "seq"], name="journal_entry_thread"),
            models.Index(fields=["agency", "at"], name="journal_entry_agency_at"),
        ]

    def __str__(self):
        return f"{self.agency_id}#{self.seq} {self.type}"


class RetentionPolicy(models.Model):
    """How long an agency keeps what its customers and advisors wrote, counted from the
    relationship's last message. Without a row: ATTITRE_RETENTION_YEARS (5)."""

    agency = models.OneToOneField("crm.Agency", on_delete=models.CASCADE, related_name="retention_policy")
    years = models.PositiveSmallIntegerField(
        _("years after the last message"), default=5, validators=[MinValueValidator(5), MaxValueValidator(10)]
    )

    class Meta:
        verbose_name = _("retention policy")
        verbose_name_plural = _("retention policies")
        constraints = [
            models.CheckConstraint(
                condition=Q(years__gte=5, years__lte=10),
                name="retention_years_5_to_10",
                violation_error_message=_("Keep records between 5 and 10 years."),
            )
        ]

    def __str__(self):
        return f"{self.agency}: {self.years}"


class LegalHold(models.Model):
    """Nothing it covers is purged or erased while it holds: one customer, one thread or
    everything an advisor wrote or handled."""

    agency = models.ForeignKey("crm.Agency", on_delete=models.PROTECT, related_name="legal_holds")
    customer = models.ForeignKey(
        "crm.Customer", on_delete=models.PROTECT, null=True, blank=True, related_name="legal_holds"
    )
    thread = models.ForeignKey(
        "conversations.Thread", on_delete=models.PROTECT, null=True, blank=True, related_name="legal_holds"
    )
    advisor = models.ForeignKey(
        "crm.Advisor", on_delete=models.PROTECT, null=True, blank=True, related_name="legal_holds"
    )
    reason = models.CharField(_("reason"), max_length=500)
    placed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    placed_at = models.DateTimeField(_("placed at"), default=timezone.now)
    until = models.DateField(_("until"), null=True, blank=True, help_text=_("Empty: until released."))
    released_at = models.DateTimeField(_("released at"), null=True, blank=True)

    class Meta:
        verbose_name = _("legal hold")
        verbose_name_plural = _("legal holds")
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(customer__isnull=False, thread__isnull=True, advisor__isnull=True)
                    | Q(customer__isnull=True, thread__isnull=False, advisor__isnull=True)
                    | Q(customer__isnull=True, thread__isnull=True, advisor__isnull=False)
                ),
                name="legal_hold_covers_one_thing",
                violation_error_message=_("A legal hold covers exactly one customer, one thread or one advisor."),
            )
        ]

    def __str__(self):
        covered = self.customer or self.thread or self.advisor
        return f"{covered}: {self.reason[:60]}"
