# Event payloads carry ids and metadata only (conversations/payloads.py): the text already
# copied into the log (message and note bodies, previews, names, locations, button texts) is
# taken out of every stored event, so that erasing a customer's messages leaves none behind.

from django.db import migrations

BATCH = 2000


def without_text(payload):
    """The payload without the text the events of the old shape carried; None when it has none."""
    changed = False
    message = payload.get("message")
    if isinstance(message, dict):
        for key in ("body", "profile_name"):
            if key in message:
                del message[key]
                changed = True
        if "location" in message:
            message["has_location"] = message.pop("location") is not None
            changed = True
        if "button" in message:
            message["has_button"] = message.pop("button") is not None
            changed = True
    for part in ("thread_summary", "note"):
        value = payload.get(part)
        if isinstance(value, dict):
            for key in ("name", "last_message_preview", "body"):
                if key in value:
                    del value[key]
                    changed = True
    return payload if changed else None


def strip_text(apps, schema_editor):
    Event = apps.get_model("events", "Event")
    last = 0
    while batch := list(Event.objects.filter(pk__gt=last).order_by("pk").only("pk", "payload")[:BATCH]):
        last = batch[-1].pk
        stripped = []
        for event in batch:
            payload = without_text(event.payload) if isinstance(event.payload, dict) else None
            if payload is not None:
                event.payload = payload
                stripped.append(event)
        Event.objects.bulk_update(stripped, ["payload"])


class Migration(migrations.Migration):

    dependencies = [
        ("conversations", "0007_thread_routing_reason_code"),
        ("events", "0003_event_txid"),
    ]

    operations = [
        migrations.RunPython(strip_text, migrations.RunPython.noop),
    ]
