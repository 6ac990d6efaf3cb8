"""REST API for the approved WhatsApp templates a message may be sent with."""

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema

from conversations.models import MessageTemplate
from integrations.api.base import ApiView, paginated, valid_input
from integrations.api.serializers import (
    ApiCursorPagination,
    TemplateFilter,
    TemplateOutput,
    error_responses,
)
from integrations.models import ApiKey

Scope = ApiKey.Scope


class TemplateListApi(ApiView):
    scopes = {"GET": Scope.TEMPLATES_READ}
    pagination_class = ApiCursorPagination

    @extend_schema(
        operation_id="templates_list",
        summary=_("Approved WhatsApp templates"),
        parameters=[TemplateFilter],
        responses={200: TemplateOutput(many=True), **error_responses(400)},
        tags=["templates"],
    )
    def get(self, request):
        filters = valid_input(TemplateFilter, request.query_params)
        templates = MessageTemplate.objects.all()
        if not filters["include_inactive"]:
            templates = templates.filter(is_active=True)
        if filters.get("language"):
            templates = templates.filter(language=filters["language"])
        return paginated(self, request, templates, TemplateOutput)
