from django.conf import settings
from django.db import models
from django.db.models import Q, Value
from django.db.models.functions import Concat
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Agency(models.Model):
    class Kind(models.TextChoices):
        BRANCH = "branch", _("Branch")
        ONLINE = "online", _("Online centre")

    name = models.CharField(_("name"), max_length=200)
    code = models.SlugField(_("code"), max_length=32, unique=True)
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices, default=Kind.BRANCH)
    timezone = models.CharField(_("time zone"), max_length=64, default="Europe/Paris")
    pool_name = models.CharField(
        _("pool name"),
        max_length=200,
        blank=True,
        help_text=_("Shown to advisors for the agency's shared queue of unassigned conversations."),
    )
    # Out of hours (issue #18): whose public holidays close the agency, what the customer is
    # told to call meanwhile, and when the triage menu is offered.
    country = models.CharField(
        _("country"), max_length=2, default="FR", help_text=_("ISO code whose public holidays close the agency.")
    )
    subdivision = models.CharField(
        _("region"), max_length=8, blank=True, help_text=_("Region whose own holidays apply too, e.g. 57 (Moselle).")
    )
    emergency_card_number = models.CharField(_("card opposition number"), max_length=40, blank=True)
    emergency_fraud_number = models.CharField(_("fraud number"), max_length=40, blank=True)

    class TriageMode(models.TextChoices):
        OFF = "off", _("Off")
        UNKNOWN = "unknown", _("Unknown numbers only")
        UNKNOWN_AND_CLOSED = "closed", _("Unknown numbers, and everyone when closed")

    triage_mode = models.CharField(_("triage menu"), max_length=16, choices=TriageMode.choices, default=TriageMode.OFF)
    urgent_pool = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("urgent pool"),
        help_text=_("The agency (e.g. the call centre) whose pool takes urgent topics; empty: this agency's pool."),
    )

    class Meta:
        verbose_name = _("agency")
        verbose_name_plural = _("agencies")
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=["branch", "online"]), name="agency_kind_valid"),
            models.CheckConstraint(
                condition=Q(triage_mode__in=["off", "unknown", "closed"]), name="agency_triage_mode_valid"
            ),
        ]

    def __str__(self):
        return self.name


class OpeningHours(models.Model):
    class Weekday(models.IntegerChoices):
        MONDAY = 0, _("Monday")
        TUESDAY = 1, _("Tuesday")
        WEDNESDAY = 2, _("Wednesday")
        THURSDAY = 3, _("Thursday")
        FRIDAY = 4, _("Friday")
        SATURDAY = 5, _("Saturday")
        SUNDAY = 6, _("Sunday")

    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="opening_hours")
    weekday = models.PositiveSmallIntegerField(_("weekday"), choices=Weekday.choices)
    opens_at = models.TimeField(_("opens at"))
    closes_at = models.TimeField(_("closes at"))

    class Meta:
        verbose_name = _("opening hours")
        verbose_name_plural = _("opening hours")
        ordering = ["agency", "weekday", "opens_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(closes_at__gt=models.F("opens_at")),
                name="opening_hours_ordered",
                violation_error_message=_("The closing time must come after the opening time."),
                violation_error_code="opening_hours_order",
            ),
            models.CheckConstraint(condition=Q(weekday__lte=6), name="opening_hours_weekday_valid"),
            models.UniqueConstraint(fields=["agency", "weekday", "opens_at"], name="opening_hours_unique_slot"),
        ]

    def __str__(self):
        return f"{self.get_weekday_display()} {self.opens_at:%H:%M}–{self.closes_at:%H:%M}"


class ClosedDay(models.Model):
    agency = models.ForeignKey(Agency, on_delete=models.CASCADE, related_name="closed_days")
    date = models.DateField(_("date"))
    label = models.CharField(_("label"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("closed day")
        verbose_name_plural = _("closed days")
        ordering = ["agency", "date"]
        constraints = [models.UniqueConstraint(fields=["agency", "date"], name="closed_day_unique")]

    def __str__(self):
        return f"{self.date:%Y-%m-%d} {self.label}".strip()


class Advisor(models.Model):
    class Role(models.TextChoices):
        ADVISOR = "advisor", _("Advisor")
        SUPERVISOR = "supervisor", _("Supervisor")

    class Availability(models.TextChoices):
        AVAILABLE = "available", _("Available")
        AWAY = "away", _("Away")

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="advisor")
    agency = models.ForeignKey(Agency, on_delete=models.PROTECT, related_name="advisors")
    role = models.CharField(_("role"), max_length=16, choices=Role.choices, default=Role.ADVISOR)
    is_active = models.BooleanField(_("active"), default=True)
    availability = models.CharField(
        _("availability"), max_length=16, choices=Availability.choices, default=Availability.AVAILABLE
    )
    out_of_office_from = models.DateTimeField(_("out of office from"), null=True, blank=True)
    out_of_office_until = models.DateTimeField(_("out of office until"), null=True, blank=True)
    out_of_office_message = models.CharField(_("out-of-office message"), max_length=500, blank=True)
    deputies = models.ManyToManyField(
        "self",
        through="Deputyship",
        through_fields=("advisor", "deputy"),
        symmetrical=False,
        related_name="covered_advisors",
        blank=True,
    )

    class Meta:
        verbose_name = _("advisor")
        verbose_name_plural = _("advisors")
        ordering = ["user__username"]
        constraints = [
            models.CheckConstraint(condition=Q(role__in=["advisor", "supervisor"]), name="advisor_role_valid"),
            models.CheckConstraint(
                condition=Q(availability__in=["available", "away"]), name="advisor_availability_valid"
            ),
            models.CheckConstraint(
                condition=Q(out_of_office_from__isnull=True)
                | Q(out_of_office_until__isnull=True)
                | Q(out_of_office_until__gt=models.F("out_of_office_from")),
                name="advisor_out_of_office_ordered",
                violation_error_message=_("The absence must end after it starts."),
                violation_error_code="absence_order",
            ),
        ]

    def __str__(self):
        return self.display_name

    @property
    def display_name(self) -> str:
        return self.user.get_full_name() or self.user.get_username()

    @property
    def is_supervisor(self) -> bool:
        return self.role == self.Role.SUPERVISOR

    def is_out_of_office(self, at=None) -> bool:
        at = at or timezone.now()
        if self.out_of_office_from is None and self.out_of_office_until is None:
            return False
        started = self.out_of_office_from is None or self.out_of_office_from <= at
        not_ended = self.out_of_office_until is None or at < self.out_of_office_until
        return started and not_ended

    def is_present(self, at=None) -> bool:
        """Whether the advisor can take conversations now (active, available, not out of office)."""
        return (
            self.is_active
            and self.user.is_active
            and self.availability == self.Availability.AVAILABLE
            and not self.is_out_of_office(at)
        )


class Deputyship(models.Model):
    """An advisor's deputy, in the order in which deputies are tried."""

    advisor = models.ForeignKey(Advisor, on_delete=models.CASCADE, related_name="deputyships")
    deputy = models.ForeignKey(Advisor, on_delete=models.CASCADE, related_name="deputy_for")
    position = models.PositiveSmallIntegerField(_("order"), default=0)

    class Meta:
        verbose_name = _("deputy")
        verbose_name_plural = _("deputies")
        ordering = ["advisor", "position", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["advisor", "deputy"],
                name="deputyship_unique",
                violation_error_message=_("A deputy can be listed only once."),
                violation_error_code="deputy_duplicate",
            ),
            models.CheckConstraint(
                condition=~Q(advisor=models.F("deputy")),
                name="deputyship_not_self",
                violation_error_message=_("An advisor cannot be their own deputy."),
                violation_error_code="deputy_self",
            ),
        ]

    def __str__(self):
        return f"{self.deputy} → {self.advisor}"


class Customer(models.Model):
    class Typology(models.TextChoices):
        TRADITIONAL = "traditional", _("Traditional")
        ONLINE = "online", _("Online only")

    class Segment(models.TextChoices):
        MASS = "mass", _("Mass market")
        AFFLUENT = "affluent", _("Affluent")
        PRIVATE = "private", _("Private banking")
        PROFESSIONAL = "professional", _("Professional")

    class Language(models.TextChoices):
        FRENCH = "fr", _("French")
        ENGLISH = "en", _("English")
        DUTCH = "nl", _("Dutch")

    customer_number = models.CharField(_("customer number"), max_length=32, unique=True)
    first_name = models.CharField(_("first name"), max_length=150)
    last_name = models.CharField(_("last name"), max_length=150)
    preferred_language = models.CharField(
        _("preferred language"), max_length=8, choices=Language.choices, default=Language.FRENCH
    )
    typology = models.CharField(_("typology"), max_length=16, choices=Typology.choices, default=Typology.TRADITIONAL)
    segment = models.CharField(_("segment"), max_length=16, choices=Segment.choices, default=Segment.MASS)
    agency = models.ForeignKey(Agency, on_delete=models.PROTECT, related_name="customers")
    # Written only by customer_reassign (conversations.services.customers), which keeps
    # AdvisorAssignment in step.
    dedicated_advisor = models.ForeignKey(
        Advisor, on_delete=models.PROTECT, null=True, blank=True, related_name="customers"
    )
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    # What a search by name or customer number reads, in one column the database keeps:
    # on PostgreSQL a trigram index on its upper case answers `icontains` (migration 0006).
    search_text = models.GeneratedField(
        expression=Concat("first_name", Value(" "), "last_name", Value(" "), "customer_number"),
        output_field=models.CharField(max_length=340),
        db_persist=True,
    )

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        ordering = ["last_name", "first_name"]
        indexes = [
            models.Index(fields=["last_name", "first_name"]),
            # The admin's list of a supervisor's agency, in name order.
            models.Index(fields=["agency", "last_name", "first_name"], name="customer_agency_name"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(typology__in=["traditional", "online"]), name="customer_typology_valid"),
        ]

    def __str__(self):
        return self.full_name

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


class ContactPoint(models.Model):
    """A customer's (or a not-yet-known prospect's) address on one channel."""

    class Kind(models.TextChoices):
        WHATSAPP = "whatsapp", _("WhatsApp")
        SMS = "sms", _("SMS")
        EMAIL = "email", _("Email")
        WEBCHAT = "webchat", _("Web chat")

    class Consent(models.TextChoices):
        OPTED_IN = "opted_in", _("Opted in")
        OPTED_OUT = "opted_out", _("Opted out")

    customer = models.ForeignKey(
        Customer, on_delete=models.CASCADE, null=True, blank=True, related_name="contact_points"
    )
    kind = models.CharField(_("channel"), max_length=16, choices=Kind.choices)
    address = models.CharField(_("address"), max_length=254)
    display_name = models.CharField(
        _("display name"),
        max_length=200,
        blank=True,
        help_text=_("The name the customer's app shows (WhatsApp profile)."),
    )
    consent = models.CharField(_("consent"), max_length=16, choices=Consent.choices, default=Consent.OPTED_IN)
    consent_changed_at = models.DateTimeField(_("consent changed at"), null=True, blank=True)
    consent_source = models.CharField(_("consent changed by"), max_length=200, blank=True)
    # An unknown number linked to a customer from the pool is only someone's word that it is
    # theirs: nothing is sent there until the customer's dedicated advisor confirms it.
    confirmed = models.BooleanField(
        _("confirmed"),
        default=True,
        help_text=_("Unticked for a number linked to the customer from the pool: replies never go there by default."),
    )
    # Email: a hard bounce (a delivery status notification saying the address does not
    # exist) marks the address bouncing until the advisor or a new message from it says otherwise.
    bouncing_since = models.DateTimeField(_("bouncing since"), null=True, blank=True)
    bounce_reason = models.CharField(_("bounce reason"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)

    class Meta:
        verbose_name = _("contact point")
        verbose_name_plural = _("contact points")
        ordering = ["kind", "address"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "address"], name="contact_point_unique_address"),
            models.CheckConstraint(
                condition=Q(kind__in=["whatsapp", "sms", "email", "webchat"]), name="contact_point_kind_valid"
            ),
            models.CheckConstraint(
                condition=Q(consent__in=["opted_in", "opted_out"]), name="contact_point_consent_valid"
            ),
            models.CheckConstraint(condition=~Q(address=""), name="contact_point_address_not_empty"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} {self.address}"

    @property
    def is_prospect(self) -> bool:
        return self.customer_id is None


class AdvisorAssignment(models.Model):
    """Who was a customer's dedicated advisor, from when to when, and why."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="assignments")
    advisor = models.ForeignKey(Advisor, on_delete=models.PROTECT, null=True, blank=True, related_name="assignments")
    started_at = models.DateTimeField(_("from"), default=timezone.now)
    ended_at = models.DateTimeField(_("until"), null=True, blank=True)
    reason = models.CharField(_("reason"), max_length=500)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        verbose_name = _("advisor assignment")
        verbose_name_plural = _("advisor assignments")
        ordering = ["customer", "-started_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["customer"], condition=Q(ended_at__isnull=True), name="assignment_one_current_per_customer"
            ),
            models.CheckConstraint(
                condition=Q(ended_at__isnull=True) | Q(ended_at__gte=models.F("started_at")),
                name="assignment_period_ordered",
            ),
        ]

    def __str__(self):
        return f"{self.customer} → {self.advisor or '—'}"
