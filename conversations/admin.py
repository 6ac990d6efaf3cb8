import json

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from conversations.models import Message, MessageTemplate, Note, Thread
from crm.admin_site import AdvisorListFilter, AgencyScopedAdminMixin, ReadOnlyAdminMixin, SupervisedAdminMixin
from events.models import Event

VIEW_ONLY = frozenset({"view"})


class MessageInline(ReadOnlyAdminMixin, SupervisedAdminMixin, admin.TabularInline):
    model = Message
    fields = ("created_at", "direction", "channel", "contact_point", "author", "body", "status", "error_message")
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
    list_filter = ("status", HandlerFilter)
    search_fields = (
        "customer__customer_number",
        "customer__first_name",
        "customer__last_name",
        "prospect__address",
        "routing_reason",
    )
    fieldsets = (
        (None, {"fields": ("customer", "prospect", "agency", "status", "handler", "routing_reason", "routed_at")}),
        (
            _("Activity"),
            {
                "fields": (
                    "last_activity_at",
                    "last_message_preview",
                    "waiting_since",
                    "unread_count",
                    "last_inbound_channel",
                    "last_whatsapp_inbound_at",
                    "last_sms_inbound_at",
                    "last_email_inbound_at",
                    "last_webchat_inbound_at",
                    "created_at",
                )
            },
        ),
    )
    inlines = (MessageInline, NoteInline)

    @admin.display(description=_("customer or prospect"))
    def contact(self, obj):
        return obj.customer or obj.prospect


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
