from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from crm.admin_site import EDIT_ROWS, AgencyScopedAdminMixin, ReadOnlyAdminMixin, SupervisedAdminMixin, supervisor_of
from events.models import Event
from integrations.models import ApiKey, WebhookDelivery, WebhookEndpoint
from integrations.services import api_key_create, api_key_revoke, webhook_endpoint_enable, webhook_url_check


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
