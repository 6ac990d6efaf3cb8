"""What the REST API reads and writes for conversations: threads, messages, templates, events."""

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from conversations.models import Attachment, Channel, Message, MessageTemplate, Thread
from conversations.services.outbound import SENDABLE_CHANNELS
from events.models import Event

ACTING_ADVISOR_HELP = _(
    "The advisor on whose behalf an API key acts (required with a key). With a session, omit it: you act as yourself."
)


class ThreadOutput(serializers.ModelSerializer):
    name = serializers.SerializerMethodField()
    agency = serializers.SlugRelatedField(slug_field="code", read_only=True, help_text=_("The agency's code."))
    prospect_address = serializers.SerializerMethodField(
        help_text=_("The unknown number that wrote, until it is linked to a customer.")
    )

    class Meta:
        model = Thread
        fields = [
            "id",
            "customer",
            "name",
            "prospect_address",
            "agency",
            "status",
            "handler",
            "routing_reason",
            "routed_at",
            "last_activity_at",
            "last_message_preview",
            "last_inbound_channel",
            "last_whatsapp_inbound_at",
            "waiting_since",
            "unread_count",
            "created_at",
        ]

    def get_name(self, thread) -> str:
        if thread.customer_id:
            return thread.customer.full_name
        return thread.prospect.display_name or thread.prospect.address

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_prospect_address(self, thread) -> str | None:
        return thread.prospect.address if thread.prospect_id else None


class ThreadFilter(serializers.Serializer):
    handler = serializers.RegexField(
        r"^(\d+|none)$",
        required=False,
        max_length=20,
        help_text=_("An advisor's id, or `none` for the agency pool."),
    )
    status = serializers.ChoiceField(choices=Thread.Status.choices, required=False)
    channel = serializers.ChoiceField(
        choices=Channel.choices, required=False, help_text=_("The channel the customer last wrote on.")
    )
    customer = serializers.IntegerField(required=False, min_value=1)
    waiting_since_before = serializers.DateTimeField(required=False)
    waiting_since_after = serializers.DateTimeField(required=False)


class ThreadStatusInput(serializers.Serializer):
    status = serializers.ChoiceField(choices=Thread.Status.choices)
    as_advisor = serializers.IntegerField(required=False, min_value=1, help_text=ACTING_ADVISOR_HELP)


class ThreadTransferInput(serializers.Serializer):
    to = serializers.IntegerField(min_value=1, help_text=_("The colleague who takes the conversation."))
    reason = serializers.CharField(max_length=300)
    as_advisor = serializers.IntegerField(required=False, min_value=1, help_text=ACTING_ADVISOR_HELP)


class ThreadClaimInput(serializers.Serializer):
    as_advisor = serializers.IntegerField(required=False, min_value=1, help_text=ACTING_ADVISOR_HELP)


class AttachmentOutput(serializers.ModelSerializer):
    class Meta:
        model = Attachment
        fields = ["id", "content_type", "size", "state", "error"]


class MessageOutput(serializers.ModelSerializer):
    attachments = AttachmentOutput(many=True, read_only=True)

    class Meta:
        model = Message
        fields = [
            "id",
            "thread",
            "direction",
            "channel",
            "body",
            "status",
            "error_code",
            "error_message",
            "author",
            "template",
            "created_at",
            "sent_at",
            "delivered_at",
            "read_at",
            "failed_at",
            "consent_change",
            "attachments",
        ]


class MessageFilter(serializers.Serializer):
    order = serializers.ChoiceField(
        choices=[("oldest", _("Oldest first")), ("newest", _("Newest first"))], required=False, default="oldest"
    )


class MessageSendInput(serializers.Serializer):
    body = serializers.CharField(required=False, default="", allow_blank=True, max_length=4096)
    channel = serializers.ChoiceField(
        choices=[(channel.value, channel.label) for channel in SENDABLE_CHANNELS],
        required=False,
        allow_null=True,
        default=None,
        help_text=_("Defaults to the channel the customer last wrote on."),
    )
    template = serializers.IntegerField(
        required=False, allow_null=True, default=None, min_value=1, help_text=_("An approved template's id.")
    )
    variables = serializers.DictField(
        child=serializers.CharField(max_length=1000, allow_blank=True),
        required=False,
        allow_null=True,
        default=None,
        help_text=_('The template\'s variables by number, e.g. {"1": "Camille"}; pre-filled from the CRM if left out.'),
    )
    as_advisor = serializers.IntegerField(required=False, min_value=1, help_text=ACTING_ADVISOR_HELP)


class TemplateOutput(serializers.ModelSerializer):
    class Meta:
        model = MessageTemplate
        fields = ["id", "name", "language", "body", "variables", "is_active"]


class TemplateFilter(serializers.Serializer):
    language = serializers.CharField(required=False, max_length=16)
    include_inactive = serializers.BooleanField(required=False, default=False)


class EventOutput(serializers.ModelSerializer):
    payload = serializers.JSONField(help_text=_("The event's data, as the live inbox receives it."))

    class Meta:
        model = Event
        fields = ["id", "type", "thread", "created_at", "payload"]


class EventFilter(serializers.Serializer):
    since = serializers.IntegerField(
        required=False, default=0, min_value=0, help_text=_("The last event id you processed (`next_since`).")
    )
    limit = serializers.IntegerField(required=False, default=100, min_value=1, max_value=500)


class EventPageOutput(serializers.Serializer):
    results = EventOutput(many=True)
    next_since = serializers.IntegerField(help_text=_("Pass it as `since` to get the following events."))
