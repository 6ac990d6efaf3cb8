"""The JSON shapes of messages and threads carried by events: ids and metadata only, never
what a customer or an advisor wrote (bodies, previews, names, locations, button texts). Events
are pushed to sockets, handed to integrators and delivered to webhooks, and kept for weeks:
a reader fetches the text itself, as the one it may see (the inbox's fragments, the API's
messages). Nothing here may need erasing with a customer's data."""

from conversations.models import Attachment, Message, Thread


def thread_summary(thread: Thread) -> dict:
    customer = thread.customer if thread.customer_id else None
    return {
        "id": thread.pk,
        "customer": customer.pk if customer else None,
        "status": thread.status,
        "handler": thread.handler_id,
        "agency": thread.agency_id,
        "routing_reason_code": thread.routing_reason_code,
        "routing_reason_params": thread.routing_reason_params,
        "unread_count": thread.unread_count,
        "last_activity_at": thread.last_activity_at,
        "last_inbound_channel": thread.last_inbound_channel,
        "waiting_since": thread.waiting_since,
        "topic": thread.topic_id,
        "urgent": thread.urgent,
    }


def attachment_payload(attachment: Attachment) -> dict:
    return {
        "id": attachment.pk,
        "content_type": attachment.content_type,
        "state": attachment.state,
        "size": attachment.size,
        "error": attachment.error,
    }


def message_payload(message: Message, attachments: list[Attachment] | None = None) -> dict:
    return {
        "id": message.pk,
        "thread": message.thread_id,
        "direction": message.direction,
        "channel": message.channel,
        "status": message.status,
        "error_code": message.error_code,
        "error_message": message.error_message,
        "author": message.author_id,
        "created_at": message.created_at,
        "has_location": message.latitude is not None,
        "has_button": bool(message.button_text),
        "replied_to": message.replied_to_id,
        "consent_change": message.consent_change,
        "automatic": message.automatic,
        "attachments": [attachment_payload(a) for a in (attachments or [])],
    }


def message_status_payload(message: Message) -> dict:
    return {
        "message": message.pk,
        "status": message.status,
        "error_code": message.error_code,
        "error_message": message.error_message,
    }
