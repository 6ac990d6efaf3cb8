"""REST API for the event feed: what happened, after a cursor, within the caller's reach."""

from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework.response import Response

from events.log import events_after
from integrations.api.auth import caller_of
from integrations.api.base import ApiView, valid_input
from integrations.api.serializers import (
    EventFilter,
    EventPageOutput,
    error_responses,
)
from integrations.models import ApiKey

Scope = ApiKey.Scope


class EventFeedApi(ApiView):
    scopes = {"GET": Scope.EVENTS_READ}

    @extend_schema(
        operation_id="events_list",
        summary=_("The event feed"),
        description=_(
            "Events after `since`, in the order they were committed, limited to what the caller may see. Pass "
            "back `next_since` (the last event's id, or `since` on an empty page): every event comes once, "
            "however late its transaction committed. Ids are not increasing in this order; an event is handed "
            "out once no transaction begun before it is still running. Payloads carry ids and metadata, never "
            "what was written: read a message or a note through its endpoint."
        ),
        parameters=[EventFilter],
        responses={200: EventPageOutput, **error_responses(400)},
        examples=[
            OpenApiExample(
                "Events",
                value={
                    "results": [
                        {
                            "id": 1001,
                            "type": "thread.updated",
                            "thread": 12,
                            "created_at": "2026-11-23T09:00:00+01:00",
                            "payload": {"change": "status", "by": 7},
                        }
                    ],
                    "next_since": 1001,
                },
                response_only=True,
            )
        ],
        tags=["events"],
    )
    def get(self, request):
        filters = valid_input(EventFilter, request.query_params)
        events = events_after(since=filters["since"], visible=caller_of(request).events_q(), limit=filters["limit"])
        next_since = events[-1].pk if events else filters["since"]
        return Response(EventPageOutput({"results": events, "next_since": next_since}).data)
