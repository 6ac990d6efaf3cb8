from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays
from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from core.signin import signin_unlock
from crm.admin_site import (
    EDIT_ROWS,
    AgencyScopedAdminMixin,
    SupervisedAdminMixin,
)
from crm.models import Advisor, Agency, ClosedDay, Deputyship, OpeningHours
from events.inbox_access import inbox_access_changed

# --- Agencies ---------------------------------------------------------------------


class AgencyAdminForm(forms.ModelForm):
    class Meta:
        model = Agency
        fields = [
            "name",
            "code",
            "kind",
            "timezone",
            "pool_name",
            "country",
            "subdivision",
            "emergency_card_number",
            "emergency_fraud_number",
            "triage_mode",
            "urgent_pool",
        ]

    def clean(self):
        cleaned = super().clean()
        country = (cleaned.get("country") or "").strip().upper()
        subdivision = (cleaned.get("subdivision") or "").strip().upper()
        if country:
            try:
                holidays.country_holidays(country, subdiv=subdivision or None)
            except NotImplementedError:
                self.add_error(
                    "subdivision" if subdivision else "country",
                    ValidationError(
                        _("No public holidays are known for “%(code)s”. Use an ISO code such as FR, or FR with 57."),
                        code="holidays_unknown",
                        params={"code": f"{country} {subdivision}".strip()},
                    ),
                )
            cleaned["country"], cleaned["subdivision"] = country, subdivision
        return cleaned

    def clean_timezone(self):
        name = self.cleaned_data["timezone"].strip()
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValidationError(
                _("“%(name)s” is not a time zone. Use a name such as Europe/Paris."),
                code="timezone_invalid",
                params={"name": name},
            ) from exc
        return name


class OpeningHoursForm(forms.ModelForm):
    class Meta:
        model = OpeningHours
        fields = ["weekday", "opens_at", "closes_at"]


class OpeningHoursInline(SupervisedAdminMixin, admin.TabularInline):
    model = OpeningHours
    form = OpeningHoursForm
    extra = 0
    supervisor_actions = EDIT_ROWS


class ClosedDayInline(SupervisedAdminMixin, admin.TabularInline):
    model = ClosedDay
    fields = ("date", "label")
    extra = 0
    supervisor_actions = EDIT_ROWS


@admin.register(Agency)
class AgencyAdmin(AgencyScopedAdminMixin, SupervisedAdminMixin, admin.ModelAdmin):
    agency_lookup = "pk"
    form = AgencyAdminForm
    list_display = ("name", "code", "kind", "timezone", "pool_name")
    list_filter = ("kind",)
    search_fields = ("name", "code")
    inlines = (OpeningHoursInline, ClosedDayInline)


# --- Advisors ---------------------------------------------------------------------


class AdvisorAdminForm(forms.ModelForm):
    class Meta:
        model = Advisor
        fields = [
            "user",
            "agency",
            "role",
            "is_active",
            "availability",
            "out_of_office_from",
            "out_of_office_until",
            "out_of_office_message",
        ]


class DeputyshipForm(forms.ModelForm):
    class Meta:
        model = Deputyship
        fields = ["position", "deputy"]

    def validate_unique(self):
        # Django leaves an inline's foreign key (the advisor) out of the constraint checks,
        # the parent row may not exist yet; Deputyship's constraints are about it, so they run here.
        super().validate_unique()
        try:
            self.instance.validate_constraints(exclude=self._get_validation_exclusions())
        except ValidationError as exc:
            self._update_errors(exc)


class DeputyshipInline(SupervisedAdminMixin, admin.TabularInline):
    model = Deputyship
    fk_name = "advisor"
    form = DeputyshipForm
    extra = 0
    verbose_name = _("deputy")
    verbose_name_plural = _("deputies, in the order they are tried")
    supervisor_actions = EDIT_ROWS


@admin.register(Advisor)
class AdvisorAdmin(AgencyScopedAdminMixin, SupervisedAdminMixin, admin.ModelAdmin):
    form = AdvisorAdminForm
    list_display = ("name", "agency", "role", "is_active", "availability", "out_of_office_now", "customer_count")
    list_select_related = ("user", "agency")
    list_filter = ("role", "availability", "is_active")
    search_fields = ("user__username", "user__first_name", "user__last_name", "user__email")
    autocomplete_fields = ("user",)
    fieldsets = (
        (None, {"fields": ("user", "agency", "role", "is_active")}),
        (
            _("Availability"),
            {"fields": ("availability", "out_of_office_from", "out_of_office_until", "out_of_office_message")},
        ),
    )
    inlines = (DeputyshipInline,)
    actions = ("unlock_sign_in",)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(customer_count=Count("customers"))

    @admin.action(description=_("Unlock sign-in (after too many failed attempts)"))
    def unlock_sign_in(self, request, queryset):
        usernames = list(queryset.values_list("user__username", flat=True))
        unlocked = signin_unlock(usernames=usernames)
        self.message_user(
            request,
            ngettext("%(count)d lock lifted.", "%(count)d locks lifted.", unlocked) % {"count": unlocked},
        )

    def save_related(self, request, form, formsets, change):
        # The deputies before and after the inlines are saved: open inboxes follow at once.
        advisor = form.instance
        before = list(Deputyship.objects.filter(advisor=advisor).values_list("deputy_id", flat=True))
        super().save_related(request, form, formsets, change)
        after = list(Deputyship.objects.filter(advisor=advisor).values_list("deputy_id", flat=True))
        inbox_access_changed(advisor_ids=[advisor.pk, *before, *after])

    def get_readonly_fields(self, request, obj=None):
        # An advisor record belongs to one login for good.
        return ("user",) if obj is not None else ()

    @admin.display(description=_("name"), ordering="user__last_name")
    def name(self, obj):
        return obj.display_name

    @admin.display(description=_("out of office now"), boolean=True)
    def out_of_office_now(self, obj):
        return obj.is_out_of_office()

    @admin.display(description=_("customers"), ordering="customer_count")
    def customer_count(self, obj):
        return obj.customer_count
