import json

from django import forms
from django.contrib import admin
from django.contrib.admin import helpers
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.template.response import TemplateResponse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from conversations.models import AutoReplyText, Message, MessageTemplate, Note, Thread, TriageTopic
from conversations.providers.registry import LAST_INBOUND_FIELDS
from conversations.services.auto_replies import PLACEHOLDERS, agency_setups_forget, check_placeholders
from conversations.services.customers import customer_reassign
from crm.addresses import normalize_address
from crm.admin import AgencyAdmin as CrmAgencyAdmin
from crm.admin_site import (
    EDIT_ROWS,
    AdvisorListFilter,
    AgencyScopedAdminMixin,
    ReadOnlyAdminMixin,
    SupervisedAdminMixin,
    limit_to_agency,
)
from crm.models import Advisor, AdvisorAssignment, Agency, ContactPoint, Customer
from crm.search import search_parse
from crm.services import contact_point_create, customer_create
from events.models import Event
from events.publish import THREAD_READ, record_fact

VIEW_ONLY = frozenset({"view"})


class MessageInline(ReadOnlyAdminMixin, SupervisedAdminMixin, admin.TabularInline):
    model = Message
    fields = (
        "created_at",
        "direction",
        "channel",
        "contact_point",
        "author",
        "automatic",
        "body",
        "status",
        "error_message",
    )
    readonly_fields = fields
    supervisor_actions = VIEW_ONLY

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("author__user", "contact_point")


class NoteInline(ReadOnlyAdminMixin, SupervisedAdminMixin, admin.TabularInline):
    model = Note
    fields = ("created_at", "author", "body")
    readonly_fields = fields
    supervisor_actions = VIEW_ONLY

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("author__user")


class HandlerFilter(AdvisorListFilter):
    title = _("handler")
    parameter_name = "handler"
    field_name = "handler"
    none_label = _("Agency pool")


@admin.register(Thread)
class ThreadAdmin(ReadOnlyAdminMixin, AgencyScopedAdminMixin, SupervisedAdminMixin, admin.ModelAdmin):
    supervisor_actions = VIEW_ONLY
    list_display = ("contact", "agency", "handler", "status", "last_activity_at", "unread_count", "routing_reason")
    list_select_related = ("customer", "prospect", "agency", "handler__user")
    list_filter = ("status", HandlerFilter, "routing_reason_code")
    search_fields = ("customer__customer_number", "customer__first_name", "customer__last_name", "prospect__address")
    readonly_fields = ("routing_reason",)
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "customer",
                    "prospect",
                    "agency",
                    "status",
                    "handler",
                    "routing_reason",
                    "routed_at",
                    "topic",
                    "urgent",
                    "triage_state",
                )
            },
        ),
        (
            _("Activity"),
            {
                "fields": (
                    "last_activity_at",
                    "last_message_preview",
                    "waiting_since",
                    "unread_count",
                    "last_inbound_channel",
                    *LAST_INBOUND_FIELDS,
                    "created_at",
                )
            },
        ),
    )
    inlines = (MessageInline, NoteInline)

    @admin.display(description=_("customer or prospect"))
    def contact(self, obj):
        return obj.customer or obj.prospect

    @admin.display(description=_("routing reason"), ordering="routing_reason_code")
    def routing_reason(self, obj):
        return str(obj.routing_reason)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        # A conversation opened in the admin (a supervisor's read, with its messages) is on the
        # record: who, which, when (docs/journal.md), in the change view's transaction.
        if obj is not None:
            record_fact(
                type=THREAD_READ,
                agency_id=obj.agency_id,
                actor=f"user:{request.user.pk}",
                data={"via": "admin"},
                thread_id=obj.pk,
            )
        return super().render_change_form(request, context, add, change, form_url, obj)


class MessageTemplateAdminForm(forms.ModelForm):
    class Meta:
        model = MessageTemplate
        fields = ["name", "language", "content_sid", "body", "variables", "is_active"]

    def clean_variables(self):
        variables = self.cleaned_data["variables"]
        if variables is None:
            return {}
        well_formed = isinstance(variables, dict) and all(
            key.isdigit() and isinstance(value, str) for key, value in variables.items()
        )
        if not well_formed:
            raise ValidationError(
                _('Map each variable number to what fills it, e.g. {"1": "customer.first_name"}.'),
                code="variables_invalid",
            )
        return variables


# --- An agency's out-of-hours replies and triage menu (conversations.services.auto_replies) ---


class TriageTopicInline(SupervisedAdminMixin, admin.TabularInline):
    model = TriageTopic
    fields = ("position", "label_fr", "label_en", "keywords", "urgent", "is_active")
    extra = 0
    supervisor_actions = EDIT_ROWS


class AutoReplyTextForm(forms.ModelForm):
    class Meta:
        model = AutoReplyText
        fields = ["kind", "language", "body"]

    def clean_body(self):
        body = self.cleaned_data["body"].strip()
        unknown = check_placeholders(body)
        if unknown:
            raise ValidationError(
                _("Nothing fills {{%(name)s}}. Use one of: %(known)s."),
                code="placeholder_unknown",
                params={"name": unknown[0], "known": ", ".join("{{" + name + "}}" for name in PLACEHOLDERS)},
            )
        return body


class AutoReplyTextInline(SupervisedAdminMixin, admin.TabularInline):
    model = AutoReplyText
    form = AutoReplyTextForm
    extra = 0
    supervisor_actions = EDIT_ROWS
    verbose_name_plural = _("automatic reply texts (empty: the default text in the customer's language)")


admin.site.unregister(Agency)


@admin.register(Agency)
class AgencyAdmin(CrmAgencyAdmin):
    inlines = (*CrmAgencyAdmin.inlines, TriageTopicInline, AutoReplyTextInline)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        # This process sees the change at once; the others within a minute (SETUP_TTL_SECONDS).
        agency_setups_forget(form.instance.pk)


@admin.register(MessageTemplate)
class MessageTemplateAdmin(SupervisedAdminMixin, admin.ModelAdmin):
    supervisor_actions = frozenset({"view", "add", "change"})
    form = MessageTemplateAdminForm
    list_display = ("name", "language", "content_sid", "is_active")
    list_filter = ("is_active", "language")
    search_fields = ("name", "content_sid", "body")


@admin.register(Event)
class EventAdmin(ReadOnlyAdminMixin, AgencyScopedAdminMixin, SupervisedAdminMixin, admin.ModelAdmin):
    supervisor_actions = VIEW_ONLY
    list_display = ("id", "created_at", "type", "agency", "thread")
    list_select_related = ("agency", "thread__customer", "thread__prospect")
    list_filter = ("type",)
    ordering = ("-id",)
    fields = ("type", "created_at", "agency", "thread", "payload_json")
    readonly_fields = fields
    # The log only grows; counting all of it on every page is wasted work.
    show_full_result_count = False

    @admin.display(description=_("payload"))
    def payload_json(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.payload, indent=2, ensure_ascii=False, sort_keys=True))


# --- Customers --------------------------------------------------------------------
# Registered here, above crm, because saving a change of advisor and the bulk action call
# customer_reassign, which moves the customer's thread (conversations.services.customers).


class ContactPointForm(forms.ModelForm):
    class Meta:
        model = ContactPoint
        fields = ["kind", "address", "display_name", "confirmed"]

    def clean(self):
        cleaned = super().clean()
        kind, address = cleaned.get("kind"), cleaned.get("address")
        if kind and address:
            # Normalised before the model's uniqueness checks run, so "06 12 34 56 78"
            # and "+33612345678" are recognised as the same number.
            try:
                cleaned["address"] = normalize_address(kind=kind, address=address)
            except ValidationError as exc:
                self.add_error("address", exc)
        return cleaned


class ContactPointInline(SupervisedAdminMixin, admin.TabularInline):
    model = ContactPoint
    form = ContactPointForm
    # A supervisor may confirm a number linked from the pool, or withdraw a confirmation.
    fields = (
        "kind",
        "address",
        "display_name",
        "confirmed",
        "consent",
        "consent_changed_at",
        "consent_source",
        "bouncing_since",
        "bounce_reason",
    )
    # Consent is the customer's to give (STOP/START), recorded by the messaging services; a
    # bounce is the mail system's word, cleared when the address writes again.
    readonly_fields = ("consent", "consent_changed_at", "consent_source", "bouncing_since", "bounce_reason")
    extra = 0
    supervisor_actions = EDIT_ROWS


class AdvisorAssignmentInline(ReadOnlyAdminMixin, SupervisedAdminMixin, admin.TabularInline):
    model = AdvisorAssignment
    fields = ("advisor", "started_at", "ended_at", "reason", "changed_by")
    readonly_fields = fields
    verbose_name_plural = _("assignment history")
    supervisor_actions = frozenset({"view"})

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("advisor__user", "changed_by")


class CustomerAdminForm(forms.ModelForm):
    assignment_reason = forms.CharField(
        label=_("Reason for the assignment"),
        required=False,
        max_length=500,
        help_text=_("Required when you change the dedicated advisor; kept in the assignment history."),
    )

    class Meta:
        model = Customer
        fields = [
            "customer_number",
            "first_name",
            "last_name",
            "preferred_language",
            "agency",
            "segment",
            "typology",
            "dedicated_advisor",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        advisor_field = self.fields.get("dedicated_advisor")
        if advisor_field is not None:
            # Only active advisors take customers; the current one stays listed so that
            # an untouched form does not read as a change of advisor.
            advisor_field.queryset = advisor_field.queryset.filter(
                Q(is_active=True) | Q(pk=self.instance.dedicated_advisor_id)
            )

    def clean(self):
        cleaned = super().clean()
        changes_advisor = self.instance.pk is not None and "dedicated_advisor" in self.changed_data
        if changes_advisor and not cleaned.get("assignment_reason", "").strip():
            self.add_error(
                "assignment_reason",
                _("Say why %(customer)s changes advisor; the reason is kept in the assignment history.")
                % {"customer": self.instance},
            )
        return cleaned


class CustomerReassignForm(forms.Form):
    advisor = forms.ModelChoiceField(label=_("New dedicated advisor"), queryset=Advisor.objects.none())
    reason = forms.CharField(
        label=_("Reason"), max_length=500, help_text=_("Kept in each customer's assignment history.")
    )

    def __init__(self, *args, advisors, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["advisor"].queryset = advisors


class DedicatedAdvisorFilter(AdvisorListFilter):
    title = _("dedicated advisor")
    parameter_name = "advisor"
    field_name = "dedicated_advisor"
    none_label = _("No dedicated advisor")


@admin.register(Customer)
class CustomerAdmin(AgencyScopedAdminMixin, SupervisedAdminMixin, admin.ModelAdmin):
    supervisor_actions = frozenset({"view", "add", "change"})
    form = CustomerAdminForm
    list_display = ("customer_number", "name", "agency", "dedicated_advisor", "segment", "typology")
    list_display_links = ("customer_number", "name")
    list_select_related = ("agency", "dedicated_advisor__user")
    list_filter = ("segment", "typology", DedicatedAdvisorFilter)
    search_fields = ("customer_number", "first_name", "last_name", "contact_points__address")
    search_help_text = _("Name, customer number, phone number or address.")
    # Counting a million customers on every page is not worth the "(of 1,000,000)".
    show_full_result_count = False
    readonly_fields = ("created_at",)
    fieldsets = (
        (None, {"fields": ("customer_number", "first_name", "last_name", "preferred_language")}),
        (
            _("Relationship with the bank"),
            {"fields": ("agency", "segment", "typology", "dedicated_advisor", "assignment_reason", "created_at")},
        ),
    )
    inlines = (ContactPointInline, AdvisorAssignmentInline)
    actions = ("reassign_selected",)

    @admin.display(description=_("name"), ordering="last_name")
    def name(self, obj):
        return obj.full_name

    def get_search_results(self, request, queryset, search_term):
        # The inbox's reading of a search (crm.search): "06 12 34 56 78" finds +33612345678,
        # and each condition is an indexed lookup, never a join that needs DISTINCT.
        search = search_parse(search_term)
        if search is None:
            return queryset, False
        return queryset.filter(search.customers_q()), False

    def save_model(self, request, obj, form, change):
        reason = form.cleaned_data.get("assignment_reason", "")
        if not change:
            customer = customer_create(
                customer_number=obj.customer_number,
                first_name=obj.first_name,
                last_name=obj.last_name,
                agency=obj.agency,
                advisor=obj.dedicated_advisor,
                created_by=request.user,
                reason=reason,
                preferred_language=obj.preferred_language,
                segment=obj.segment,
                typology=obj.typology,
            )
            # The inline formsets already hold `obj`: it takes over the saved row.
            obj.pk = customer.pk
            obj._state.adding = False
            obj.refresh_from_db()
            return
        fields = [name for name in form.changed_data if name not in ("dedicated_advisor", "assignment_reason")]
        if fields:
            obj.save(update_fields=fields)
        if "dedicated_advisor" in form.changed_data:
            customer_reassign(
                customer=obj, advisor=form.cleaned_data["dedicated_advisor"], reason=reason, changed_by=request.user
            )

    def save_formset(self, request, form, formset, change):
        if formset.model is not ContactPoint:
            super().save_formset(request, form, formset, change)
            return
        for contact in formset.save(commit=False):
            if contact.pk is None:
                contact_point_create(
                    customer=form.instance,
                    kind=contact.kind,
                    address=contact.address,
                    display_name=contact.display_name,
                    source=f"admin:{request.user.get_username()}",
                )
            else:
                contact.save()
        for contact in formset.deleted_objects:
            contact.delete()

    @admin.action(description=_("Move the selected customers to another advisor"), permissions=["change"])
    def reassign_selected(self, request, queryset):
        advisors = limit_to_agency(request, Advisor.objects.filter(is_active=True).select_related("user"))
        form = CustomerReassignForm(request.POST if request.POST.get("post") else None, advisors=advisors)
        if form.is_valid():
            advisor, reason = form.cleaned_data["advisor"], form.cleaned_data["reason"]
            customers = list(queryset)
            with transaction.atomic():
                moved = sum(
                    customer_reassign(customer=customer, advisor=advisor, reason=reason, changed_by=request.user)
                    is not None
                    for customer in customers
                )
            message = ngettext(
                "Moved %(count)d customer to %(advisor)s.", "Moved %(count)d customers to %(advisor)s.", moved
            ) % {"count": moved, "advisor": advisor}
            if unchanged := len(customers) - moved:
                message += " " + ngettext(
                    "%(count)d already had this advisor.", "%(count)d already had this advisor.", unchanged
                ) % {"count": unchanged}
            self.message_user(request, message)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": _("Move customers to another advisor"),
            "subtitle": None,
            "opts": self.opts,
            "form": form,
            "customers": queryset.select_related("dedicated_advisor__user"),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "action_name": "reassign_selected",
            "media": self.media + form.media,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/crm/customer/reassign_selected.html", context)
