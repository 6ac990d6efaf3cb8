"""What the REST API reads and writes for the CRM, and the shapes every endpoint shares
(cursor pages, errors)."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema_field
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.exceptions import ValidationError as ApiValidationError
from rest_framework.pagination import CursorPagination

from crm.addresses import normalize_address, normalize_phone
from crm.models import Advisor, ContactPoint, Customer

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
