from django.core.management.base import BaseCommand
from django.utils.translation import gettext as _
from django_q.models import Schedule

SCHEDULES = [
    {
        "name": "events-prune",
        "func": "conversations.tasks.events_prune",
        "schedule_type": Schedule.DAILY,
        "repeats": -1,
    },
    # django-q2's results (failures, the schedules' successes) past their retention.
    {
        "name": "task-results-prune",
        "func": "core.tasks.task_results_prune",
        "schedule_type": Schedule.DAILY,
        "repeats": -1,
    },
    # IMAP polling of EMAIL_IMAP_URL (does nothing without it).
    {
        "name": "email-mailbox-poll",
        "func": "conversations.tasks.mailbox_poll",
        "schedule_type": Schedule.MINUTES,
        "minutes": 1,
        "repeats": -1,
    },
    # The journal (docs/journal.md): each agency's head hash, logged and sent out; content
    # past its agency's retention purged, what a legal hold covers excepted.
    {
        "name": "journal-anchor",
        "func": "journal.tasks.journal_anchor",
        "schedule_type": Schedule.DAILY,
        "repeats": -1,
    },
    {
        "name": "retention-purge",
        "func": "journal.tasks.retention_purge",
        "schedule_type": Schedule.DAILY,
        "repeats": -1,
    },
]


class Command(BaseCommand):
    help = (
        "Create or update the recurring django-q2 schedules (pruning the event log and the task results, IMAP "
        "polling, journal anchors, retention purges). Safe to run again."
    )

    def handle(self, *args, **options):
        for spec in SCHEDULES:
            fields = {key: value for key, value in spec.items() if key != "name"}
            schedule, created = Schedule.objects.update_or_create(name=spec["name"], defaults=fields)
            message = _("Created schedule %(name)s.") if created else _("Schedule %(name)s is up to date.")
            self.stdout.write(message % {"name": schedule.name})
