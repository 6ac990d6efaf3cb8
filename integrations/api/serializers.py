"""What the REST API reads and writes: the shapes every endpoint shares (cursor pages,
errors), then each resource's, in the order of the endpoints (customers, advisors,
threads and messages, templates, events)."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.exceptions import ValidationError as ApiValidationError
from rest_framework.pagination import CursorPagination

from conversations.models import Attachment, Channel, EmailHeaders, Message, MessageTemplate, Thread
from conversations.providers.registry import REPLY_CHANNELS
from crm.addresses import normalize_address, normalize_phone
from crm.models import Advisor, ContactPoint, Customer
from events.models import Event

# --- Pages and errors ----------------------------------------------------------------------


class ApiCursorPagination(CursorPagination):
    """Stable pages whatever is inserted meanwhile; one query per page."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200
    ordering = "-id"

    def decode_cursor(self, request):
        try:
            return super().decode_cursor(request)
        except NotFound as exc:
            raise ApiValidationError(
                {self.cursor_query_param: [_("This cursor is not valid; use the “next” link of a page.")]}
            ) from exc


class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField(help_text=_("Machine-readable reason, e.g. `not_found`, `scope_missing`."))
    detail = serializers.CharField(help_text=_("What went wrong and what to do, for people."))
    fields = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        help_text=_("Errors per field (dotted path for nested fields); empty when no field is at fault."),
    )


def error_responses(*statuses: int) -> dict:
    """The error responses of an endpoint, for the schema, with examples."""
    catalogue = {
        400: OpenApiResponse(
            ErrorSerializer,
            description=_("Invalid input; `fields` names each invalid field."),
            examples=[
                OpenApiExample(
                    "Invalid phone number",
                    value={
                        "code": "invalid",
                        "detail": "Some fields are invalid: contact_points.0.address.",
                        "fields": {"contact_points.0.address": ["“12” is not a phone number."]},
                    },
                    status_codes=["400"],
                    response_only=True,
                )
            ],
        ),
        401: OpenApiResponse(
            ErrorSerializer,
            description=_("Missing, unknown or revoked API key."),
            examples=[
                OpenApiExample(
                    "Revoked key",
                    value={"code": "authentication_failed", "detail": "This API key was revoked.", "fields": {}},
                    status_codes=["401"],
                    response_only=True,
                )
            ],
        ),
        403: OpenApiResponse(
            ErrorSerializer,
            description=_("The key lacks the scope this call needs."),
            examples=[
                OpenApiExample(
                    "Missing scope",
                    value={
                        "code": "scope_missing",
                        "detail": "This call needs the “customers:write” scope.",
                        "fields": {},
                    },
                    status_codes=["403"],
                    response_only=True,
                )
            ],
        ),
        404: OpenApiResponse(
            ErrorSerializer,
            description=_("No such object within the caller's reach."),
            examples=[
                OpenApiExample(
                    "Not found",
                    value={"code": "not_found", "detail": "Not found, or not yours to see.", "fields": {}},
                    status_codes=["404"],
                    response_only=True,
                )
            ],
        ),
        409: OpenApiResponse(
            ErrorSerializer,
            description=_("The request is valid but the current state refuses it."),
            examples=[
                OpenApiExample(
                    "Outside the WhatsApp window",
                    value={
                        "code": "outside_whatsapp_window",
                        "detail": "Camille Martin's last WhatsApp message is 26 h old; "
                        "WhatsApp only allows an approved template now.",
                        "fields": {},
                    },
                    status_codes=["409"],
                    response_only=True,
                )
            ],
        ),
        429: OpenApiResponse(
            ErrorSerializer,
            description=_("Too many requests; retry after the number of seconds in `Retry-After`."),
            examples=[
                OpenApiExample(
                    "Throttled",
                    value={
                        "code": "throttled",
                        "detail": "Request was throttled. Expected available in 12 seconds.",
                        "fields": {},
                    },
                    status_codes=["429"],
                    response_only=True,
                )
            ],
        ),
    }
    return {status: catalogue[status] for status in (401, 403, 429, *statuses)}


def _normalized_phone(value: str) -> str:
    try:
        return normalize_phone(value)
    except DjangoValidationError as exc:
        raise serializers.ValidationError(exc.messages) from exc


# --- Contact points -----------------------------------------------------------------------


class ContactPointOutput(serializers.ModelSerializer):
    class Meta:
        model = ContactPoint
        fields = [
            "id",
            "kind",
            "address",
            "display_name",
            "consent",
            "consent_changed_at",
            "consent_source",
            "confirmed",
            "created_at",
        ]


class ContactPointInput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=ContactPoint.Kind.choices)
    address = serializers.CharField(
        max_length=254, help_text=_("Phone numbers are stored in E.164 (+33612345678); emails in lower case.")
    )
    display_name = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)

    def validate(self, attrs):
        try:
            attrs["address"] = normalize_address(kind=attrs["kind"], address=attrs["address"])
        except DjangoValidationError as exc:
            raise serializers.ValidationError({"address": exc.messages}) from exc
        return attrs


class ConsentInput(serializers.Serializer):
    consent = serializers.ChoiceField(choices=ContactPoint.Consent.choices)


# --- Customers ------------------------------------------------------------------------------


class CustomerOutput(serializers.ModelSerializer):
    agency = serializers.SlugRelatedField(slug_field="code", read_only=True, help_text=_("The agency's code."))
    contact_points = ContactPointOutput(many=True, read_only=True)

    class Meta:
        model = Customer
        fields = [
            "id",
            "customer_number",
            "first_name",
            "last_name",
            "preferred_language",
            "segment",
            "typology",
            "agency",
            "dedicated_advisor",
            "contact_points",
            "created_at",
        ]


class CustomerFilter(serializers.Serializer):
    advisor = serializers.IntegerField(required=False, min_value=1, help_text=_("Dedicated advisor's id."))
    agency = serializers.SlugField(required=False, help_text=_("Agency code."))
    segment = serializers.ChoiceField(choices=Customer.Segment.choices, required=False)
    typology = serializers.ChoiceField(choices=Customer.Typology.choices, required=False)
    phone = serializers.CharField(
        required=False, max_length=40, help_text=_("A phone number in any usual form (06 12 34 56 78, +33…).")
    )
    search = serializers.CharField(
        required=False, max_length=200, help_text=_("Words matching a name, customer number or address.")
    )

    def validate_phone(self, value):
        return _normalized_phone(value)


class CustomerCreateInput(serializers.Serializer):
    customer_number = serializers.CharField(max_length=32)
    first_name = serializers.CharField(max_length=150)
    last_name = serializers.CharField(max_length=150)
    preferred_language = serializers.ChoiceField(
        choices=Customer.Language.choices, required=False, default=Customer.Language.FRENCH
    )
    segment = serializers.ChoiceField(choices=Customer.Segment.choices, required=False, default=Customer.Segment.MASS)
    typology = serializers.ChoiceField(
        choices=Customer.Typology.choices, required=False, default=Customer.Typology.TRADITIONAL
    )
    agency = serializers.SlugField(
        required=False, help_text=_("Agency code; defaults to the key's agency, or the dedicated advisor's.")
    )
    dedicated_advisor = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    reason = serializers.CharField(required=False, max_length=500, default="", allow_blank=True)
    contact_points = ContactPointInput(many=True, required=False, default=list)


class CustomerUpdateInput(serializers.Serializer):
    first_name = serializers.CharField(max_length=150, required=False)
    last_name = serializers.CharField(max_length=150, required=False)
    preferred_language = serializers.ChoiceField(choices=Customer.Language.choices, required=False)
    segment = serializers.ChoiceField(choices=Customer.Segment.choices, required=False)
    typology = serializers.ChoiceField(choices=Customer.Typology.choices, required=False)


class CustomerReassignInput(serializers.Serializer):
    advisor = serializers.IntegerField(
        allow_null=True, min_value=1, help_text=_("The new dedicated advisor; null leaves the customer without one.")
    )
    reason = serializers.CharField(max_length=500, help_text=_("Kept in the assignment history."))


class AssignmentOutput(serializers.Serializer):
    customer = serializers.IntegerField()
    advisor = serializers.IntegerField(allow_null=True)
    previous_advisor = serializers.IntegerField(allow_null=True)
    changed = serializers.BooleanField(help_text=_("False when the customer already had this advisor."))
    reason = serializers.CharField()
    started_at = serializers.DateTimeField(allow_null=True)


# --- Advisors ---------------------------------------------------------------------------------


class AdvisorOutput(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)
    name = serializers.CharField(source="display_name", read_only=True)
    agency = serializers.SlugRelatedField(slug_field="code", read_only=True, help_text=_("The agency's code."))
    out_of_office_now = serializers.SerializerMethodField()
    deputies = serializers.SerializerMethodField(help_text=_("Deputies' ids, in the order they are tried."))

    class Meta:
        model = Advisor
        fields = [
            "id",
            "username",
            "name",
            "agency",
            "role",
            "is_active",
            "availability",
            "out_of_office_from",
            "out_of_office_until",
            "out_of_office_message",
            "out_of_office_now",
            "deputies",
        ]

    def get_out_of_office_now(self, advisor) -> bool:
        return advisor.is_out_of_office(self.context.get("now") or timezone.now())

    @extend_schema_field(serializers.ListField(child=serializers.IntegerField()))
    def get_deputies(self, advisor) -> list[int]:
        return [deputyship.deputy_id for deputyship in advisor.deputyships.all()]


class AdvisorFilter(serializers.Serializer):
    agency = serializers.SlugField(required=False, help_text=_("Agency code."))
    availability = serializers.ChoiceField(choices=Advisor.Availability.choices, required=False)
    role = serializers.ChoiceField(choices=Advisor.Role.choices, required=False)
    is_active = serializers.BooleanField(required=False, allow_null=True, default=None)


class AdvisorUpdateInput(serializers.Serializer):
    availability = serializers.ChoiceField(choices=Advisor.Availability.choices, required=False)
    out_of_office_from = serializers.DateTimeField(allow_null=True, required=False)
    out_of_office_until = serializers.DateTimeField(allow_null=True, required=False)
    out_of_office_message = serializers.CharField(max_length=500, required=False, allow_blank=True)
    deputies = serializers.ListField(
        child=serializers.IntegerField(min_value=1),
        required=False,
        max_length=20,
        help_text=_("Deputies' ids, in the order they are tried; replaces the current list."),
    )


# --- Threads and messages -----------------------------------------------------------------


ACTING_ADVISOR_HELP = _(
    "The advisor on whose behalf an API key acts (required with a key). With a session, omit it: you act as yourself."
)


class ThreadOutput(serializers.ModelSerializer):
    name = serializers.SerializerMethodField()
    agency = serializers.SlugRelatedField(slug_field="code", read_only=True, help_text=_("The agency's code."))
    prospect_address = serializers.SerializerMethodField(
        help_text=_("The unknown number that wrote, until it is linked to a customer.")
    )
    routing_reason = serializers.CharField(
        read_only=True, help_text=_("Why the thread is where it is, in the caller's language (Accept-Language).")
    )
    routing_reason_params = serializers.DictField(
        read_only=True,
        help_text=_(
            "What the reason names: advisors' usernames, a customer number, the text given with a transfer, "
            "the end of an absence."
        ),
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
            "routing_reason_code",
            "routing_reason_params",
            "routed_at",
            "last_activity_at",
            "last_message_preview",
            "last_inbound_channel",
            "last_whatsapp_inbound_at",
            "waiting_since",
            "unread_count",
            "topic",
            "urgent",
            "created_at",
        ]
        extra_kwargs = {
            "topic": {"help_text": _("The triage menu's topic the customer chose; null: none.")},
            "routing_reason_code": {"help_text": _("What decided the routing, for programs; blank: never routed.")},
        }

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


class EmailHeadersOutput(serializers.ModelSerializer):
    message_id = serializers.CharField(source="header_message_id", read_only=True)
    references = serializers.ListField(source="reference_ids", child=serializers.CharField(), read_only=True)

    class Meta:
        model = EmailHeaders
        fields = [
            "message_id",
            "in_reply_to",
            "references",
            "subject",
            "from_header",
            "to_header",
            "cc_header",
            "reply_to",
            "full_text",
            "html",
            "noise",
        ]


class MessageOutput(serializers.ModelSerializer):
    attachments = AttachmentOutput(many=True, read_only=True)
    email = serializers.SerializerMethodField(
        help_text=_("An email's headers, sanitised HTML and full text; null otherwise.")
    )

    @extend_schema_field(EmailHeadersOutput(allow_null=True))
    def get_email(self, message: Message) -> dict | None:
        # The reverse one-to-one raises (an AttributeError) for a message without headers.
        headers = getattr(message, "email", None)
        return EmailHeadersOutput(headers).data if headers is not None else None

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
            "automatic",
            "attachments",
            "email",
        ]
        extra_kwargs = {
            "automatic": {
                "help_text": _(
                    "Why Attitré wrote it itself (away, closed, menu…); blank: an advisor's or the customer's."
                )
            }
        }


class MessageFilter(serializers.Serializer):
    order = serializers.ChoiceField(
        choices=[("oldest", _("Oldest first")), ("newest", _("Newest first"))], required=False, default="oldest"
    )


class MessageSendInput(serializers.Serializer):
    body = serializers.CharField(required=False, default="", allow_blank=True, max_length=4096)
    channel = serializers.ChoiceField(
        choices=[(spec.channel, spec.label) for spec in REPLY_CHANNELS],
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
    subject = serializers.CharField(
        required=False,
        default="",
        allow_blank=True,
        max_length=998,
        help_text=_("Email only: the subject of a new email; empty answers Re: the customer's last one."),
    )
    as_advisor = serializers.IntegerField(required=False, min_value=1, help_text=ACTING_ADVISOR_HELP)


# --- Templates ---------------------------------------------------------------------------------


class TemplateOutput(serializers.ModelSerializer):
    class Meta:
        model = MessageTemplate
        fields = ["id", "name", "language", "body", "variables", "is_active"]


class TemplateFilter(serializers.Serializer):
    language = serializers.CharField(required=False, max_length=16)
    include_inactive = serializers.BooleanField(required=False, default=False)


# --- Events ------------------------------------------------------------------------------------


class EventOutput(serializers.ModelSerializer):
    payload = serializers.JSONField(
        help_text=_(
            "The event's data, as the live inbox receives it: ids and metadata, never what was written "
            "(read a message through its thread's messages)."
        )
    )

    class Meta:
        model = Event
        fields = ["id", "type", "thread", "created_at", "payload"]


class EventFilter(serializers.Serializer):
    since = serializers.IntegerField(
        required=False,
        default=0,
        min_value=0,
        help_text=_("The id of the last event you processed (`next_since`); events come in commit order."),
    )
    limit = serializers.IntegerField(required=False, default=100, min_value=1, max_value=500)


class EventPageOutput(serializers.Serializer):
    results = EventOutput(many=True)
    next_since = serializers.IntegerField(help_text=_("Pass it as `since` to get the following events."))
