"""REST API for advisors: their availability, absence and deputies. Parse, check access,
call one service. What the caller may reach comes from integrations.api.auth.Caller."""

from django.db.models import Prefetch
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from crm.models import Advisor, Deputyship
from crm.services import advisor_update
from integrations.api.auth import Caller, caller_of
from integrations.api.base import ApiView, paginated, valid_input
from integrations.api.serializers import (
    AdvisorFilter,
    AdvisorOutput,
    AdvisorUpdateInput,
    ApiCursorPagination,
    error_responses,
)
from integrations.models import ApiKey

Scope = ApiKey.Scope


def _advisors(caller: Caller):
    return (
        Advisor.objects.filter(caller.advisors_q())
        .select_related("user", "agency")
        .prefetch_related(Prefetch("deputyships", queryset=Deputyship.objects.order_by("position", "id")))
    )


class AdvisorListApi(ApiView):
    scopes = {"GET": Scope.ADVISORS_READ}
    pagination_class = ApiCursorPagination

    @extend_schema(
        operation_id="advisors_list",
        summary=_("List advisors"),
        parameters=[AdvisorFilter],
        responses={200: AdvisorOutput(many=True), **error_responses(400)},
        tags=["advisors"],
    )
    def get(self, request):
        filters = valid_input(AdvisorFilter, request.query_params)
        advisors = _advisors(caller_of(request))
        if "agency" in filters:
            advisors = advisors.filter(agency__code=filters["agency"])
        for name in ("availability", "role"):
            if name in filters:
                advisors = advisors.filter(**{name: filters[name]})
        if filters.get("is_active") is not None:
            advisors = advisors.filter(is_active=filters["is_active"])
        return paginated(self, request, advisors, AdvisorOutput)


class AdvisorDetailApi(ApiView):
    scopes = {"GET": Scope.ADVISORS_READ, "PATCH": Scope.ADVISORS_WRITE}

    @extend_schema(
        operation_id="advisors_retrieve",
        summary=_("An advisor"),
        responses={200: AdvisorOutput, **error_responses(404)},
        tags=["advisors"],
    )
    def get(self, request, pk: int):
        return Response(AdvisorOutput(get_object_or_404(_advisors(caller_of(request)), pk=pk)).data)

    @extend_schema(
        operation_id="advisors_update",
        summary=_("Update availability, absence and deputies"),
        description=_(
            "Fields left out keep their value. `deputies` replaces the ordered list of deputies. "
            "With a session, an advisor may change only their own record; a supervisor, their agency's."
        ),
        request=AdvisorUpdateInput,
        responses={200: AdvisorOutput, **error_responses(400, 404)},
        examples=[
            OpenApiExample(
                "Holidays",
                value={
                    "out_of_office_from": "2026-12-20T18:00:00+01:00",
                    "out_of_office_until": "2027-01-04T08:00:00+01:00",
                    "out_of_office_message": "Back on 4 January; Bob answers meanwhile.",
                    "deputies": [9, 12],
                },
                request_only=True,
            )
        ],
        tags=["advisors"],
    )
    def patch(self, request, pk: int):
        caller = caller_of(request)
        advisor = get_object_or_404(_advisors(caller), pk=pk)
        if caller.advisor is not None and not caller.is_supervisor and advisor.pk != caller.advisor.pk:
            raise PermissionDenied(_("Only a supervisor can change a colleague's record."), code="not_yours")
        advisor_update(advisor=advisor, **valid_input(AdvisorUpdateInput, request.data))
        return Response(AdvisorOutput(_advisors(caller).get(pk=advisor.pk)).data)
