import json

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from conversations.models import Thread
from crm.admin_site import (
    AgencyScopedAdminMixin,
    ReadOnlyAdminMixin,
    SupervisedAdminMixin,
    limit_to_agency,
    supervisor_of,
)
from crm.models import Advisor, Agency, Customer
from journal.export import journal_export
from journal.models import JournalEntry, LegalHold, RetentionPolicy
from journal.retention import legal_hold_check, legal_hold_place, legal_hold_release, retention_policy_set


def _agency_of(request, chosen: Agency | None) -> Agency | None:
    """A supervisor acts for their own agency; a superuser for the one they chose."""
    supervisor = supervisor_of(request.user)
    if supervisor is not None and not request.user.is_superuser:
        return supervisor.agency
    return chosen


class ExportForm(forms.Form):
    agency = forms.ModelChoiceField(label=_("agency"), queryset=Agency.objects.none(), required=False)
    customer = forms.ModelChoiceField(label=_("customer"), queryset=Customer.objects.none(), required=False)
    advisor = forms.ModelChoiceField(label=_("advisor"), queryset=Advisor.objects.none(), required=False)
    start = forms.DateField(label=_("from"), widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label=_("to"), widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, request, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["agency"].queryset = limit_to_agency(request, Agency.objects.all(), "pk")
        self.fields["customer"].queryset = limit_to_agency(request, Customer.objects.all())
        self.fields["advisor"].queryset = limit_to_agency(request, Advisor.objects.select_related("user"))
        if not request.user.is_superuser:
            del self.fields["agency"]

    def clean(self):
        data = super().clean()
        if data.get("customer") and data.get("advisor"):
            raise ValidationError(_("Export one customer or one advisor, not both."))
        return data


@admin.register(JournalEntry)
class JournalEntryAdmin(ReadOnlyAdminMixin, AgencyScopedAdminMixin, SupervisedAdminMixin, admin.ModelAdmin):
    supervisor_actions = frozenset({"view"})
    list_display = ("seq", "at", "type", "actor", "thread_id", "short_hash")
    list_filter = ("type",)
    search_fields = ("hash",)
    ordering = ("-agency", "-seq")
    fields = ("agency", "seq", "at", "type", "actor", "thread_id", "message_id", "event_id", "entry_json")
    fields += ("prev_hash", "hash")
    readonly_fields = fields
    show_full_result_count = False

    @admin.display(description=_("hash"))
    def short_hash(self, obj):
        return obj.hash[:16]

    @admin.display(description=_("canonical entry"))
    def entry_json(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(json.loads(obj.entry), indent=2, ensure_ascii=False))

    def get_urls(self):
        return [
            path("export/", self.admin_site.admin_view(self.export_view), name="journal_journalentry_export"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "export_url": reverse("admin:journal_journalentry_export")}
        return super().changelist_view(request, extra_context)

    def export_view(self, request):
        """A regulator's export (journal.export), as a download; journalled by the service."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        form = ExportForm(request.POST or None, request=request)
        if request.method == "POST" and form.is_valid():
            agency = _agency_of(request, form.cleaned_data.get("agency"))
            if agency is None:
                form.add_error("agency", _("Choose the agency to export."))
            else:
                try:
                    export = journal_export(
                        agency=agency,
                        customer=form.cleaned_data["customer"],
                        advisor=form.cleaned_data["advisor"],
                        start=form.cleaned_data["start"],
                        end=form.cleaned_data["end"],
                        by=request.user,
                    )
                except ValidationError as exc:
                    form.add_error(None, exc)
                else:
                    name = f"attitre-{agency.code}-{timezone.localdate():%Y%m%d}-{export.entry.seq}.zip"
                    response = HttpResponse(export.archive, content_type="application/zip")
                    response["Content-Disposition"] = f'attachment; filename="{name}"'
                    return response
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "form": form,
            "title": _("Export for a regulator"),
        }
        return TemplateResponse(request, "admin/journal/journalentry/export.html", context)


HOLD_FIELDS = ("agency", "reason", "customer", "thread", "advisor", "until")


def _agency_for_hold(request, data: dict) -> Agency | None:
    covered = [data[name] for name in ("customer", "thread", "advisor") if data.get(name)]
    return _agency_of(request, covered[0].agency if covered else None)


class LegalHoldForm(forms.ModelForm):
    class Meta:
        model = LegalHold
        fields = ["customer", "thread", "advisor", "reason", "until"]


@admin.register(LegalHold)
class LegalHoldAdmin(AgencyScopedAdminMixin, SupervisedAdminMixin, admin.ModelAdmin):
    """Placed and released through the services, which journal them; never edited or deleted."""

    supervisor_actions = frozenset({"view", "add"})
    form = LegalHoldForm
    list_display = ("__str__", "agency", "placed_by", "placed_at", "until", "released_at")
    list_select_related = ("agency", "customer", "thread__customer", "thread__prospect", "advisor__user", "placed_by")
    list_filter = ("released_at",)
    search_fields = ("reason",)
    # Advisors are few: a select of the agency's (SupervisedAdminMixin); customers and threads are many.
    autocomplete_fields = ("customer", "thread")
    actions = ("release_selected",)

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_readonly_fields(self, request, obj=None):
        if obj is not None:
            return ("agency", "customer", "thread", "advisor", "reason", "until", "placed_by", "placed_at")
        return ()

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.related_model is Customer:
            kwargs["queryset"] = limit_to_agency(request, Customer.objects.all())
        elif db_field.related_model is Thread:
            kwargs["queryset"] = limit_to_agency(request, Thread.objects.select_related("customer", "prospect"))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form_class = super().get_form(request, obj, change, **kwargs)

        class Checked(form_class):
            def clean(self):
                data = super().clean()
                if not self.errors:
                    data["agency"] = _agency_for_hold(request, data)
                    legal_hold_check(**{name: data.get(name) for name in HOLD_FIELDS})
                return data

        return Checked

    def save_model(self, request, obj, form, change):
        placed = legal_hold_place(by=request.user, **{name: form.cleaned_data.get(name) for name in HOLD_FIELDS})
        obj.pk = placed.pk
        obj._state.adding = False
        obj.refresh_from_db()

    def save_related(self, request, form, formsets, change):
        pass  # no inlines, no many-to-many: the service wrote everything

    @admin.action(description=_("Release the selected legal holds"))
    def release_selected(self, request, queryset):
        held = queryset.filter(released_at__isnull=True)
        count = 0
        for hold in held:
            legal_hold_release(hold=hold, by=request.user)
            count += 1
        self.message_user(
            request,
            ngettext("%(count)d legal hold released.", "%(count)d legal holds released.", count) % {"count": count},
            messages.SUCCESS,
        )


class RetentionPolicyForm(forms.ModelForm):
    class Meta:
        model = RetentionPolicy
        fields = ["agency", "years"]


@admin.register(RetentionPolicy)
class RetentionPolicyAdmin(AgencyScopedAdminMixin, SupervisedAdminMixin, admin.ModelAdmin):
    supervisor_actions = frozenset({"view", "add", "change"})
    form = RetentionPolicyForm
    list_display = ("agency", "years")
    list_select_related = ("agency",)

    def get_readonly_fields(self, request, obj=None):
        return ("agency",) if obj is not None else ()

    def save_model(self, request, obj, form, change):
        agency = obj.agency if change else form.cleaned_data["agency"]
        policy = retention_policy_set(agency=agency, years=form.cleaned_data["years"], by=request.user)
        obj.pk = policy.pk
        obj._state.adding = False
