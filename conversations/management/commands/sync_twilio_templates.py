from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from conversations.providers.base import SendFailed
from conversations.services.templates import message_templates_sync


class Command(BaseCommand):
    # A plain string: argparse cannot format a lazy translation.
    help = (
        "Import the WhatsApp templates approved in Twilio's Content API into Attitré's message templates "
        "(content SID, name, language, body). Safe to run again: it changes only what changed at Twilio."
    )

    def handle(self, *args, **options):
        try:
            summary = message_templates_sync()
        except SendFailed as exc:
            raise CommandError(_("Templates not synchronised: %(error)s") % {"error": exc.message}) from exc
        self.stdout.write(
            self.style.SUCCESS(
                _(
                    "Templates synchronised: %(created)d created, %(updated)d updated, %(unchanged)d unchanged, "
                    "%(deactivated)d deactivated (no longer approved)."
                )
                % {
                    "created": summary.created,
                    "updated": summary.updated,
                    "unchanged": summary.unchanged,
                    "deactivated": summary.deactivated,
                }
            )
        )
