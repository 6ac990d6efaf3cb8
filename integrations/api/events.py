"""REST API for the event feed: what happened, after a cursor, within the caller's reach."""

from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework.response import Response

from events.models import Event
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
            "Events after `since`, oldest first, limited to what the caller may see. Store `next_since` and pass "
            "it back. Events are handed out once they are a couple of seconds old, so that one committed late "
            "is never skipped."
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
        settled = timezone.now() - timedelta(seconds=settings.ATTITRE_EVENT_FEED_SETTLE_SECONDS)
        events = list(
            Event.objects.filter(
                caller_of(request).events_q(), pk__gt=filters["since"], created_at__lte=settled
            ).order_by("pk")[: filters["limit"]]
        )
        next_since = events[-1].pk if events else filters["since"]
        return Response(EventPageOutput({"results": events, "next_since": next_since}).data)
