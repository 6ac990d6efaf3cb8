"""The JSON shapes of messages and threads carried by events (the inbox renders them as is)."""

from conversations.models import Attachment, Message, Thread


def thread_summary(thread: Thread) -> dict:
    customer = thread.customer if thread.customer_id else None
    return {
        "id": thread.pk,
        "customer": customer.pk if customer else None,
        "name": customer.full_name if customer else (thread.prospect.display_name or thread.prospect.address),
        "status": thread.status,
        "handler": thread.handler_id,
        "agency": thread.agency_id,
        "routing_reason_code": thread.routing_reason_code,
        "routing_reason_params": thread.routing_reason_params,
        "unread_count": thread.unread_count,
        "last_activity_at": thread.last_activity_at,
        "last_message_preview": thread.last_message_preview,
        "last_inbound_channel": thread.last_inbound_channel,
        "waiting_since": thread.waiting_since,
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
        "body": message.body,
        "status": message.status,
        "error_code": message.error_code,
        "error_message": message.error_message,
        "author": message.author_id,
        "created_at": message.created_at,
        "profile_name": message.profile_name,
        "location": (
            {
                "latitude": message.latitude,
                "longitude": message.longitude,
                "address": message.location_address,
                "label": message.location_label,
            }
            if message.latitude is not None
            else None
        ),
        "button": {"text": message.button_text, "payload": message.button_payload} if message.button_text else None,
        "replied_to": message.replied_to_id,
        "consent_change": message.consent_change,
        "attachments": [attachment_payload(a) for a in (attachments or [])],
    }


def message_status_payload(message: Message) -> dict:
    return {
        "message": message.pk,
        "status": message.status,
        "error_code": message.error_code,
        "error_message": message.error_message,
    }
