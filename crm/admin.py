from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Count
from django.utils.translation import gettext_lazy as _

from crm.admin_site import (
    EDIT_ROWS,
    AgencyScopedAdminMixin,
    ReadOnlyAdminMixin,
    SupervisedAdminMixin,
    supervisor_of,
)
from crm.integrations import api_key_create, api_key_revoke, webhook_endpoint_enable, webhook_url_check
from crm.models import (
    Advisor,
    Agency,
    ApiKey,
    ClosedDay,
    Deputyship,
    OpeningHours,
    WebhookDelivery,
    WebhookEndpoint,
)
from events.inbox_access import inbox_access_changed
from events.models import Event

# --- Agencies ---------------------------------------------------------------------


class AgencyAdminForm(forms.ModelForm):
    class Meta:
        model = Agency
        fields = ["name", "code", "kind", "timezone", "pool_name"]

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

    def clean(self):
        cleaned = super().clean()
        opens_at, closes_at = cleaned.get("opens_at"), cleaned.get("closes_at")
        if opens_at and closes_at and closes_at <= opens_at:
            self.add_error("closes_at", _("The closing time must come after the opening time."))
        return cleaned


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

    def clean(self):
        cleaned = super().clean()
        starts, ends = cleaned.get("out_of_office_from"), cleaned.get("out_of_office_until")
        if starts and ends and ends <= starts:
            self.add_error("out_of_office_until", _("The absence must end after it starts."))
        return cleaned


class DeputyshipForm(forms.ModelForm):
    class Meta:
        model = Deputyship
        fields = ["position", "deputy"]

    def clean(self):
        cleaned = super().clean()
        deputy = cleaned.get("deputy")
        if deputy is not None and deputy.pk == self.instance.advisor_id:
            self.add_error("deputy", _("An advisor cannot be their own deputy."))
        return cleaned


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

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(customer_count=Count("customers"))

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


# --- Integrations: API keys and webhooks ----------------------------------------------------------


class ApiKeyAdminForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        label=_("scopes"), choices=ApiKey.Scope.choices, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = ApiKey
        fields = ["name", "scopes", "agency"]


@admin.register(ApiKey)
class ApiKeyAdmin(AgencyScopedAdminMixin, SupervisedAdminMixin, admin.ModelAdmin):
    supervisor_actions = frozenset({"view", "add", "change"})
    form = ApiKeyAdminForm
    list_display = ("name", "prefix", "agency", "scope_list", "created_by", "created_at", "last_used_at", "revoked_at")
    list_select_related = ("agency", "created_by")
    list_filter = ("revoked_at",)
    search_fields = ("name", "prefix")
    actions = ("revoke_selected",)

    def get_readonly_fields(self, request, obj=None):
        # A key's reach is fixed when its secret is handed out: revoke it and create another.
        if obj is not None:
            return ("name", "prefix", "scopes", "agency", "created_by", "created_at", "last_used_at", "revoked_at")
        return ()

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["name", "scopes", "agency"]
        return ["name", "prefix", "scopes", "agency", "created_by", "created_at", "last_used_at", "revoked_at"]

    @admin.display(description=_("scopes"))
    def scope_list(self, obj):
        return ", ".join(obj.scopes)

    def save_model(self, request, obj, form, change):
        if change:
            return
        agency = form.cleaned_data.get("agency")
        supervisor = supervisor_of(request.user)
        if agency is None and not request.user.is_superuser and supervisor is not None:
            agency = supervisor.agency
        api_key, key = api_key_create(
            name=form.cleaned_data["name"], scopes=form.cleaned_data["scopes"], agency=agency, created_by=request.user
        )
        obj.pk = api_key.pk
        obj._state.adding = False
        obj.refresh_from_db()
        self.message_user(
            request,
            _("API key “%(name)s” created. Copy it now, it will not be shown again: %(key)s")
            % {"name": api_key.name, "key": key},
            messages.WARNING,
        )

    @admin.action(description=_("Revoke the selected API keys"), permissions=["change"])
    def revoke_selected(self, request, queryset):
        for api_key in queryset.filter(revoked_at__isnull=True):
            api_key_revoke(api_key=api_key)
        self.message_user(request, _("The selected keys are revoked."))


class WebhookEndpointAdminForm(forms.ModelForm):
    url = forms.URLField(label=_("URL"), max_length=500, assume_scheme="https")
    event_types = forms.MultipleChoiceField(
        label=_("event types"),
        choices=Event.Type.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text=_("Leave empty to receive every event type."),
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["url", "secret", "event_types", "agency", "active"]

    def clean_url(self):
        url = self.cleaned_data["url"]
        try:
            webhook_url_check(url, resolve=False)
        except ValidationError as exc:
            raise ValidationError(exc.messages) from exc
        return url


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(AgencyScopedAdminMixin, SupervisedAdminMixin, admin.ModelAdmin):
    supervisor_actions = EDIT_ROWS
    form = WebhookEndpointAdminForm
    list_display = ("url", "agency", "active", "failure_count", "disabled_reason")
    list_select_related = ("agency",)
    list_filter = ("active",)
    readonly_fields = ("disabled_reason", "failure_count", "failing_since", "created_by", "created_at")

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
            supervisor = supervisor_of(request.user)
            if obj.agency_id is None and not request.user.is_superuser and supervisor is not None:
                obj.agency = supervisor.agency
        reenabled = change and "active" in form.changed_data and obj.active
        obj.save()
        if reenabled:
            webhook_endpoint_enable(endpoint=obj)


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdminMixin, AgencyScopedAdminMixin, SupervisedAdminMixin, admin.ModelAdmin):
    agency_lookup = "endpoint__agency"
    supervisor_actions = frozenset({"view"})
    list_display = (
        "created_at",
        "endpoint",
        "event",
        "attempt",
        "state",
        "status_code",
        "duration_ms",
        "error",
        "next_retry_at",
    )
    list_select_related = ("endpoint", "event")
    list_filter = ("state",)
    search_fields = ("endpoint__url", "error")
