"""Approved message templates, imported from the provider (Twilio's Content API)."""

import logging
from dataclasses import dataclass

from django.db import transaction

from conversations.models import MessageTemplate
from conversations.providers import twilio

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TemplateSyncSummary:
    created: int
    updated: int
    unchanged: int
    deactivated: int


def message_templates_sync() -> TemplateSyncSummary:
    """Make MessageTemplate mirror the provider's approved templates: create new ones,
    update changed ones (found by content SID, else by name and language), deactivate
    those no longer approved. Running it twice changes nothing the second time. The
    mapping of variables to CRM fields is ours and is never overwritten."""
    approved = twilio.approved_templates()
    created = updated = unchanged = 0
    with transaction.atomic():
        existing = {template.content_sid: template for template in MessageTemplate.objects.select_for_update()}
        by_name = {(template.name, template.language): template for template in existing.values()}
        for item in approved:
            template = existing.get(item.content_sid) or by_name.get((item.name, item.language))
            if template is None:
                MessageTemplate.objects.create(
                    content_sid=item.content_sid, name=item.name, language=item.language, body=item.body
                )
                created += 1
                continue
            wanted = {
                "content_sid": item.content_sid,
                "name": item.name,
                "language": item.language,
                "body": item.body,
                "is_active": True,
            }
            changed = [name for name, value in wanted.items() if getattr(template, name) != value]
            if changed:
                for name in changed:
                    setattr(template, name, wanted[name])
                template.save(update_fields=changed)
                updated += 1
            else:
                unchanged += 1
        approved_sids = {item.content_sid for item in approved}
        deactivated = (
            MessageTemplate.objects.filter(is_active=True)
            .exclude(content_sid__in=approved_sids)
            .update(is_active=False)
        )
    logger.info(
        "Templates synchronised: %s created, %s updated, %s unchanged, %s deactivated.",
        created,
        updated,
        unchanged,
        deactivated,
    )
    return TemplateSyncSummary(created=created, updated=updated, unchanged=unchanged, deactivated=deactivated)
