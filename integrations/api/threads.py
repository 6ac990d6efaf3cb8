"""REST API for conversations and their messages: parse, check access
(integrations.api.auth.Caller), call one service."""

from django.shortcuts import get_object_or_404
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response

from conversations.models import Message, MessageTemplate, Thread
from conversations.services import message_send, thread_claim, thread_set_status, thread_transfer
from crm.models import Advisor
from integrations.api.auth import Caller, caller_of
from integrations.api.base import ApiView, advisor_in_reach, paginated, valid_input
from integrations.api.serializers import (
    ApiCursorPagination,
    MessageFilter,
    MessageOutput,
    MessageSendInput,
    ThreadClaimInput,
    ThreadFilter,
    ThreadOutput,
    ThreadStatusInput,
    ThreadTransferInput,
    error_responses,
)
from integrations.models import ApiKey

Scope = ApiKey.Scope

THREAD_EXAMPLE = OpenApiExample(
    "Thread",
    value={
        "id": 12,
        "customer": 42,
        "name": "Camille Martin",
        "prospect_address": None,
        "agency": "lyon-bellecour",
        "status": "open",
        "handler": 7,
        "routing_reason": "dedicated advisor",
        "routing_reason_code": "dedicated",
        "routing_reason_params": {},
        "routed_at": "2026-11-23T09:00:00+01:00",
        "last_activity_at": "2026-11-23T09:00:00+01:00",
        "last_message_preview": "Bonjour, ma carte est bloquée",
        "last_inbound_channel": "whatsapp",
        "last_whatsapp_inbound_at": "2026-11-23T09:00:00+01:00",
        "waiting_since": "2026-11-23T09:00:00+01:00",
        "unread_count": 1,
        "created_at": "2026-10-01T10:00:00+02:00",
    },
    response_only=True,
)


def _threads(caller: Caller):
    return Thread.objects.filter(caller.threads_q()).select_related("customer", "prospect", "agency")


def _thread_output(thread_id: int) -> dict:
    # After a transfer the thread may be out of the caller's sight: the answer still shows it once.
    thread = Thread.objects.select_related("customer", "prospect", "agency").get(pk=thread_id)
    return ThreadOutput(thread).data


def _acting_advisor(caller: Caller, advisor_id: int | None) -> Advisor:
    """Who does it: the signed-in advisor, or the advisor an API key names in `as_advisor`."""
    if caller.api_key is None:
        if advisor_id not in (None, caller.advisor.pk):
            raise serializers.ValidationError({"as_advisor": [_("With a session you act as yourself only.")]})
        return caller.advisor
    if advisor_id is None:
        raise serializers.ValidationError(
            {"as_advisor": [_("Say on whose behalf the key acts: an advisor's id is required.")]}
        )
    return advisor_in_reach(caller, advisor_id, "as_advisor")


# --- Threads ---------------------------------------------------------------------------------------


class ThreadListApi(ApiView):
    scopes = {"GET": Scope.THREADS_READ}
    pagination_class = ApiCursorPagination

    @extend_schema(
        operation_id="threads_list",
        summary=_("List conversations"),
        description=_("Newest conversations first (by id). An advisor's session sees what their inbox shows."),
        parameters=[ThreadFilter],
        responses={200: ThreadOutput(many=True), **error_responses(400)},
        examples=[THREAD_EXAMPLE],
        tags=["threads"],
    )
    def get(self, request):
        filters = valid_input(ThreadFilter, request.query_params)
        threads = _threads(caller_of(request))
        handler = filters.get("handler")
        if handler == "none":
            threads = threads.filter(handler__isnull=True)
        elif handler:
            threads = threads.filter(handler_id=int(handler))
        if "status" in filters:
            threads = threads.filter(status=filters["status"])
        if "channel" in filters:
            threads = threads.filter(last_inbound_channel=filters["channel"])
        if "customer" in filters:
            threads = threads.filter(customer_id=filters["customer"])
        if "waiting_since_before" in filters:
            threads = threads.filter(waiting_since__lt=filters["waiting_since_before"])
        if "waiting_since_after" in filters:
            threads = threads.filter(waiting_since__gte=filters["waiting_since_after"])
        return paginated(self, request, threads, ThreadOutput)


class ThreadDetailApi(ApiView):
    scopes = {"GET": Scope.THREADS_READ, "PATCH": Scope.THREADS_WRITE}

    @extend_schema(
        operation_id="threads_retrieve",
        summary=_("A conversation"),
        responses={200: ThreadOutput, **error_responses(404)},
        examples=[THREAD_EXAMPLE],
        tags=["threads"],
    )
    def get(self, request, pk: int):
        return Response(ThreadOutput(get_object_or_404(_threads(caller_of(request)), pk=pk)).data)

    @extend_schema(
        operation_id="threads_set_status",
        summary=_("Close, reopen or mark a conversation as waiting"),
        request=ThreadStatusInput,
        responses={200: ThreadOutput, **error_responses(400, 404)},
        examples=[OpenApiExample("Close", value={"status": "closed", "as_advisor": 7}, request_only=True)],
        tags=["threads"],
    )
    def patch(self, request, pk: int):
        caller = caller_of(request)
        thread = get_object_or_404(_threads(caller), pk=pk)
        data = valid_input(ThreadStatusInput, request.data)
        by = _acting_advisor(caller, data.get("as_advisor"))
        thread_set_status(thread=thread, by=by, status=data["status"])
        return Response(_thread_output(thread.pk))


class ThreadTransferApi(ApiView):
    scopes = {"POST": Scope.THREADS_WRITE}

    @extend_schema(
        operation_id="threads_transfer",
        summary=_("Hand a conversation to a colleague"),
        request=ThreadTransferInput,
        responses={200: ThreadOutput, **error_responses(400, 404, 409)},
        examples=[
            OpenApiExample(
                "Transfer", value={"to": 9, "reason": "Mortgage question", "as_advisor": 7}, request_only=True
            )
        ],
        tags=["threads"],
    )
    def post(self, request, pk: int):
        caller = caller_of(request)
        thread = get_object_or_404(_threads(caller), pk=pk)
        data = valid_input(ThreadTransferInput, request.data)
        by = _acting_advisor(caller, data.get("as_advisor"))
        to = advisor_in_reach(caller, data["to"], "to")
        thread_transfer(thread=thread, by=by, to=to, reason=data["reason"])
        return Response(_thread_output(thread.pk))


class ThreadClaimApi(ApiView):
    scopes = {"POST": Scope.THREADS_WRITE}

    @extend_schema(
        operation_id="threads_claim",
        summary=_("Take a conversation from the agency pool"),
        request=ThreadClaimInput,
        responses={200: ThreadOutput, **error_responses(400, 404, 409)},
        tags=["threads"],
    )
    def post(self, request, pk: int):
        caller = caller_of(request)
        thread = get_object_or_404(_threads(caller), pk=pk)
        data = valid_input(ThreadClaimInput, request.data)
        thread_claim(thread=thread, advisor=_acting_advisor(caller, data.get("as_advisor")))
        return Response(_thread_output(thread.pk))


# --- Messages ----------------------------------------------------------------------------------------


class MessageListSendApi(ApiView):
    scopes = {"GET": Scope.MESSAGES_READ, "POST": Scope.MESSAGES_SEND}
    pagination_class = ApiCursorPagination

    @extend_schema(
        operation_id="messages_list",
        summary=_("A conversation's messages"),
        parameters=[MessageFilter],
        responses={200: MessageOutput(many=True), **error_responses(400, 404)},
        tags=["messages"],
    )
    def get(self, request, pk: int):
        thread = get_object_or_404(Thread.objects.filter(caller_of(request).threads_q()), pk=pk)
        filters = valid_input(MessageFilter, request.query_params)
        paginator = self.pagination_class()
        paginator.ordering = "id" if filters["order"] == "oldest" else "-id"
        messages = Message.objects.filter(thread=thread).select_related("email").prefetch_related("attachments")
        page = paginator.paginate_queryset(messages, request, view=self)
        return paginator.get_paginated_response(MessageOutput(page, many=True).data)

    @extend_schema(
        operation_id="messages_send",
        summary=_("Send a message to the customer"),
        description=_(
            "Checks what the provider would refuse (consent, WhatsApp's 24-hour window, template variables), "
            "then queues the message and answers 202; its delivery statuses arrive in the event feed. "
            "Refusals carry a machine-readable `code`: 409 for the state of the conversation "
            "(`outside_whatsapp_window`, `opted_out`, `no_contact_point`), 400 for bad input."
        ),
        request=MessageSendInput,
        responses={202: MessageOutput, **error_responses(400, 404, 409)},
        examples=[
            OpenApiExample(
                "Free text", value={"body": "Bonjour Camille, c'est réglé.", "as_advisor": 7}, request_only=True
            ),
            OpenApiExample(
                "Template", value={"template": 3, "variables": {"1": "Camille"}, "as_advisor": 7}, request_only=True
            ),
        ],
        tags=["messages"],
    )
    def post(self, request, pk: int):
        caller = caller_of(request)
        thread = get_object_or_404(Thread.objects.filter(caller.threads_q()), pk=pk)
        data = valid_input(MessageSendInput, request.data)
        author = _acting_advisor(caller, data.get("as_advisor"))
        template = None
        if data["template"] is not None:
            template = MessageTemplate.objects.filter(pk=data["template"]).first()
            if template is None:
                raise serializers.ValidationError({"template": [_("No template %(id)s.") % {"id": data["template"]}]})
        message = message_send(
            thread=thread,
            author=author,
            body=data["body"],
            template=template,
            variables=data["variables"],
            channel=data["channel"],
            subject=data["subject"],
        )
        return Response(MessageOutput(message).data, status=status.HTTP_202_ACCEPTED)
