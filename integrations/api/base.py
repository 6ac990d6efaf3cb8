"""What every /api/v1/ view shares: the base view, input parsing, cursor pages, the
reach check on advisor ids sent in a body, and the one JSON shape of errors."""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django.utils.translation import gettext as _
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.settings import api_settings
from rest_framework.views import APIView, exception_handler

from crm.models import Advisor
from integrations.api.auth import Caller, HasScope

# Service refusals that describe the state of things rather than bad input: 409.
CONFLICT_CODES = frozenset(
    {
        "already_handled",
        "address_taken",
        "outside_whatsapp_window",
        "opted_out",
        "advisor_inactive",
        "not_a_prospect",
        "thread_closed",
        "no_contact_point",
        "template_inactive",
        "customer_number_taken",
    }
)


# Base of every /api/v1/ view: authenticated, and `scopes` maps each method to its scope.
# (A comment, not a docstring: the schema would show it as every operation's description.)
class ApiView(APIView):
    permission_classes = [IsAuthenticated, HasScope]
    scopes: dict[str, str] = {}


# --- Helpers shared by the API views ---------------------------------------------------------


def valid_input(serializer_class, data, **kwargs) -> dict:
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


def paginated(view, request, queryset, serializer_class, **context):
    paginator = view.pagination_class()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response(serializer_class(page, many=True, context=context).data)


def advisor_in_reach(caller: Caller, advisor_id: int | None, field: str) -> Advisor | None:
    """An advisor id sent in a body: unknown or out of reach is a 400 on that field."""
    if advisor_id is None:
        return None
    advisor = Advisor.objects.filter(caller.advisors_q(), pk=advisor_id).select_related("user").first()
    if advisor is None:
        raise serializers.ValidationError({field: [_("No advisor %(id)s within your reach.") % {"id": advisor_id}]})
    return advisor


# --- Errors: one JSON shape -----------------------------------------------------------------


class ServiceRefused(exceptions.APIException):
    """A service's ValidationError, carried to the client with its machine-readable code."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid"

    def __init__(self, exc: DjangoValidationError):
        code = _first_code(exc)
        self.code = code
        self.fields = {}
        if hasattr(exc, "error_dict"):
            self.fields = {
                name: [message for error in errors for message in error.messages]
                for name, errors in exc.error_dict.items()
            }
        self.status_code = status.HTTP_409_CONFLICT if code in CONFLICT_CODES else status.HTTP_400_BAD_REQUEST
        super().__init__(detail=" ".join(exc.messages), code=code)


def _first_code(exc: DjangoValidationError) -> str:
    if getattr(exc, "code", None):
        return exc.code
    if hasattr(exc, "error_dict"):
        for errors in exc.error_dict.values():
            for error in errors:
                if getattr(error, "code", None):
                    return error.code
    if hasattr(exc, "error_list"):
        for error in exc.error_list:
            if getattr(error, "code", None):
                return error.code
    return "invalid"


def _flatten(detail, prefix: str = "") -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    if isinstance(detail, dict):
        for name, value in detail.items():
            if prefix and name == api_settings.NON_FIELD_ERRORS_KEY:
                key = prefix  # an error about the nested object as a whole
            else:
                key = f"{prefix}.{name}" if prefix else str(name)
            fields.update(_flatten(value, key))
    elif isinstance(detail, list) and detail and all(isinstance(item, dict | list) for item in detail):
        for index, value in enumerate(detail):
            fields.update(_flatten(value, f"{prefix}.{index}" if prefix else str(index)))
    else:
        items = detail if isinstance(detail, list) else [detail]
        fields[prefix or api_settings.NON_FIELD_ERRORS_KEY] = [str(item) for item in items]
    return fields


def api_exception_handler(exc, context):
    """Every error as {"code", "detail", "fields"} ("fields" is empty unless input is
    invalid); never a 500 for input a client got wrong."""
    if isinstance(exc, DjangoValidationError):
        exc = ServiceRefused(exc)
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound(_("Not found, or not yours to see."))
    response = exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, ServiceRefused):
        response.data = {"code": exc.code, "detail": str(exc.detail), "fields": exc.fields}
    elif isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        response.data = {
            "code": "invalid",
            "detail": _("Some fields are invalid: %(fields)s.") % {"fields": ", ".join(fields)},
            "fields": fields,
        }
    else:
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        codes = exc.get_codes()
        code = codes if isinstance(codes, str) else exc.default_code
        response.data = {"code": code, "detail": detail, "fields": {}}
    return response
