"""REST API for customers and their contact points: parse, check access, call one
service. What the caller may reach comes from integrations.api.auth.Caller."""

from django.shortcuts import get_object_or_404
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from conversations.services.customers import contact_point_set_consent, customer_reassign
from crm.addresses import PHONE_KINDS
from crm.models import Agency, ContactPoint, Customer
from crm.search import search_parse
from crm.services import contact_point_add, customer_create_with_contact_points, customer_update
from integrations.api.auth import Caller, caller_of
from integrations.api.base import ApiView, advisor_in_reach, paginated, valid_input
from integrations.api.serializers import (
    ApiCursorPagination,
    AssignmentOutput,
    ConsentInput,
    ContactPointInput,
    ContactPointOutput,
    CustomerCreateInput,
    CustomerFilter,
    CustomerOutput,
    CustomerReassignInput,
    CustomerUpdateInput,
    error_responses,
)
from integrations.models import ApiKey

Scope = ApiKey.Scope


def _customers(caller: Caller):
    return Customer.objects.filter(caller.customers_q()).select_related("agency").prefetch_related("contact_points")


def _agency_in_reach(caller: Caller, code: str, field: str = "agency") -> Agency:
    agency = Agency.objects.filter(code=code).first()
    if agency is None or caller.agency_id not in (None, agency.pk):
        raise serializers.ValidationError({field: [_("No agency “%(code)s” within your reach.") % {"code": code}]})
    return agency


CUSTOMER_EXAMPLE = OpenApiExample(
    "Customer",
    value={
        "id": 42,
        "customer_number": "C00000042",
        "first_name": "Camille",
        "last_name": "Martin",
        "preferred_language": "fr",
        "segment": "mass",
        "typology": "traditional",
        "agency": "lyon-bellecour",
        "dedicated_advisor": 7,
        "contact_points": [
            {
                "id": 3,
                "kind": "whatsapp",
                "address": "+33612345678",
                "display_name": "Camille",
                "consent": "opted_in",
                "consent_changed_at": "2026-11-02T09:12:00+01:00",
                "consent_source": "API key CRM sync",
                "created_at": "2026-11-02T09:12:00+01:00",
            }
        ],
        "created_at": "2026-11-02T09:12:00+01:00",
    },
    response_only=True,
)


# --- Customers ---------------------------------------------------------------------------------


class CustomerListCreateApi(ApiView):
    scopes = {"GET": Scope.CUSTOMERS_READ, "POST": Scope.CUSTOMERS_WRITE}
    pagination_class = ApiCursorPagination

    @extend_schema(
        operation_id="customers_list",
        summary=_("List customers"),
        parameters=[CustomerFilter],
        responses={200: CustomerOutput(many=True), **error_responses(400)},
        examples=[CUSTOMER_EXAMPLE],
        tags=["customers"],
    )
    def get(self, request):
        caller = caller_of(request)
        filters = valid_input(CustomerFilter, request.query_params)
        customers = _customers(caller)
        if "advisor" in filters:
            customers = customers.filter(dedicated_advisor_id=filters["advisor"])
        if "agency" in filters:
            customers = customers.filter(agency__code=filters["agency"])
        for name in ("segment", "typology"):
            if name in filters:
                customers = customers.filter(**{name: filters[name]})
        if "phone" in filters:
            # By the kinds a phone number is stored under: the (kind, address) unique index answers.
            numbers = ContactPoint.objects.filter(kind__in=PHONE_KINDS, address=filters["phone"])
            customers = customers.filter(pk__in=numbers.values("customer_id"))
        search = search_parse(filters.get("search", ""))
        if search is not None:
            customers = customers.filter(search.customers_q())
        return paginated(self, request, customers, CustomerOutput)

    @extend_schema(
        operation_id="customers_create",
        summary=_("Create a customer"),
        description=_(
            "Creates the customer and, optionally, their contact points (phone numbers normalised to E.164), "
            "all or nothing. The assignment history starts with the dedicated advisor."
        ),
        request=CustomerCreateInput,
        responses={201: CustomerOutput, **error_responses(400, 409)},
        examples=[
            OpenApiExample(
                "New customer with WhatsApp",
                value={
                    "customer_number": "C00000042",
                    "first_name": "Camille",
                    "last_name": "Martin",
                    "agency": "lyon-bellecour",
                    "dedicated_advisor": 7,
                    "contact_points": [{"kind": "whatsapp", "address": "06 12 34 56 78"}],
                },
                request_only=True,
            ),
            CUSTOMER_EXAMPLE,
        ],
        tags=["customers"],
    )
    def post(self, request):
        caller = caller_of(request)
        data = valid_input(CustomerCreateInput, request.data)
        advisor = advisor_in_reach(caller, data.pop("dedicated_advisor", None), "dedicated_advisor")
        code = data.pop("agency", None)
        if code:
            agency = _agency_in_reach(caller, code)
        elif caller.agency_id is not None:
            agency = Agency.objects.get(pk=caller.agency_id)
        elif advisor is not None:
            agency = advisor.agency
        else:
            raise serializers.ValidationError({"agency": [_("Say which agency the customer belongs to.")]})
        if advisor is not None and advisor.agency_id != agency.pk:
            raise serializers.ValidationError(
                {"dedicated_advisor": [_("%(advisor)s works in another agency.") % {"advisor": advisor}]}
            )
        customer = customer_create_with_contact_points(
            agency=agency, advisor=advisor, created_by=caller.user, source=caller.label, **data
        )
        return Response(CustomerOutput(_customers(caller).get(pk=customer.pk)).data, status=status.HTTP_201_CREATED)


class CustomerDetailApi(ApiView):
    scopes = {"GET": Scope.CUSTOMERS_READ, "PATCH": Scope.CUSTOMERS_WRITE}

    @extend_schema(
        operation_id="customers_retrieve",
        summary=_("A customer"),
        responses={200: CustomerOutput, **error_responses(404)},
        examples=[CUSTOMER_EXAMPLE],
        tags=["customers"],
    )
    def get(self, request, pk: int):
        return Response(CustomerOutput(get_object_or_404(_customers(caller_of(request)), pk=pk)).data)

    @extend_schema(
        operation_id="customers_update",
        summary=_("Update a customer"),
        description=_(
            "Names, language, segment and typology. The dedicated advisor changes only through "
            "`POST /customers/{id}/reassign/`, which keeps the history."
        ),
        request=CustomerUpdateInput,
        responses={200: CustomerOutput, **error_responses(400, 404)},
        tags=["customers"],
    )
    def patch(self, request, pk: int):
        caller = caller_of(request)
        customer = get_object_or_404(_customers(caller), pk=pk)
        customer_update(customer=customer, **valid_input(CustomerUpdateInput, request.data))
        return Response(CustomerOutput(customer).data)


class CustomerReassignApi(ApiView):
    scopes = {"POST": Scope.CUSTOMERS_WRITE}

    @extend_schema(
        operation_id="customers_reassign",
        summary=_("Give a customer another dedicated advisor"),
        description=_(
            "Closes the current period of the assignment history and opens a new one with the reason. "
            "A conversation the previous advisor was handling follows the customer."
        ),
        request=CustomerReassignInput,
        responses={200: AssignmentOutput, **error_responses(400, 404, 409)},
        examples=[
            OpenApiExample(
                "Reassign",
                value={"advisor": 9, "reason": "Alice leaves the agency"},
                request_only=True,
            )
        ],
        tags=["customers"],
    )
    def post(self, request, pk: int):
        caller = caller_of(request)
        customer = get_object_or_404(_customers(caller), pk=pk)
        data = valid_input(CustomerReassignInput, request.data)
        advisor = advisor_in_reach(caller, data["advisor"], "advisor")
        previous = customer.dedicated_advisor_id
        assignment = customer_reassign(
            customer=customer, advisor=advisor, reason=data["reason"], changed_by=caller.user
        )
        output = {
            "customer": customer.pk,
            "advisor": advisor.pk if advisor else None,
            "previous_advisor": previous,
            "changed": assignment is not None,
            "reason": assignment.reason if assignment else data["reason"],
            "started_at": assignment.started_at if assignment else None,
        }
        return Response(AssignmentOutput(output).data)


# --- Contact points ------------------------------------------------------------------------------


class ContactPointListCreateApi(ApiView):
    scopes = {"GET": Scope.CUSTOMERS_READ, "POST": Scope.CUSTOMERS_WRITE}
    pagination_class = ApiCursorPagination

    @extend_schema(
        operation_id="contact_points_list",
        summary=_("A customer's contact points"),
        responses={200: ContactPointOutput(many=True), **error_responses(400, 404)},
        tags=["customers"],
    )
    def get(self, request, pk: int):
        customer = get_object_or_404(Customer.objects.filter(caller_of(request).customers_q()), pk=pk)
        return paginated(self, request, ContactPoint.objects.filter(customer=customer), ContactPointOutput)

    @extend_schema(
        operation_id="contact_points_create",
        summary=_("Add a contact point"),
        request=ContactPointInput,
        responses={201: ContactPointOutput, **error_responses(400, 404, 409)},
        examples=[
            OpenApiExample("SMS number", value={"kind": "sms", "address": "+33 6 12 34 56 78"}, request_only=True)
        ],
        tags=["customers"],
    )
    def post(self, request, pk: int):
        caller = caller_of(request)
        customer = get_object_or_404(Customer.objects.filter(caller.customers_q()), pk=pk)
        data = valid_input(ContactPointInput, request.data)
        contact = contact_point_add(customer=customer, source=caller.label, **data)
        return Response(ContactPointOutput(contact).data, status=status.HTTP_201_CREATED)


class ContactPointConsentApi(ApiView):
    scopes = {"PATCH": Scope.CUSTOMERS_WRITE}

    @extend_schema(
        operation_id="contact_points_set_consent",
        summary=_("Record a customer's opt-in or opt-out"),
        description=_("The change is recorded with the caller as its source and appears in the event feed."),
        request=ConsentInput,
        responses={200: ContactPointOutput, **error_responses(400, 404)},
        examples=[OpenApiExample("Opt out", value={"consent": "opted_out"}, request_only=True)],
        tags=["customers"],
    )
    def patch(self, request, pk: int, contact_point_id: int):
        caller = caller_of(request)
        customer = get_object_or_404(Customer.objects.filter(caller.customers_q()), pk=pk)
        contact = get_object_or_404(ContactPoint.objects.filter(customer=customer), pk=contact_point_id)
        data = valid_input(ConsentInput, request.data)
        contact_point_set_consent(contact_point=contact, consent=data["consent"], source=caller.label)
        return Response(ContactPointOutput(contact).data)
