from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class JournalConfig(AppConfig):
    name = "journal"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = _("Journal")

    def ready(self):
        from django.db.backends.signals import connection_created

        from events.publish import on_append, on_record
        from journal.db import sqlite_register_unlock
        from journal.services import journal_events, journal_facts

        # Every event, of every channel present or to come, is journalled in its own transaction;
        # so is what is on the record without being an event (events.publish.record_fact).
        on_append(journal_events)
        on_record(journal_facts)
        connection_created.connect(sqlite_register_unlock, dispatch_uid="journal-sqlite-unlock")
