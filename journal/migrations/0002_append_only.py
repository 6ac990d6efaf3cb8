"""The journal is append-only, by trigger (journal.db) on PostgreSQL and SQLite.

A trigger stops the application and hand edits; the database's privileges are what binds
an attacker holding the application's credentials. In production the tables are owned by
a migration role, and the application's role (here `attitre_app`) is granted no more than:

    REVOKE UPDATE, DELETE, TRUNCATE ON journal_journalentry FROM attitre_app;
    GRANT SELECT, INSERT ON journal_journalentry TO attitre_app;
    GRANT SELECT, INSERT, UPDATE ON journal_journalhead TO attitre_app;

(docs/journal.md). This migration does not run them: the role's name is the deployment's."""

from django.db import migrations

from journal import db


class Triggers(migrations.RunSQL):
    def __init__(self):
        super().__init__(sql="", reverse_sql="")

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        statements = (
            [db.POSTGRESQL_TRIGGERS] if schema_editor.connection.vendor == "postgresql" else db.SQLITE_TRIGGERS
        )
        for statement in statements:
            schema_editor.execute(statement, params=None)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        statements = (
            [db.POSTGRESQL_TRIGGERS_REVERSE]
            if schema_editor.connection.vendor == "postgresql"
            else db.SQLITE_TRIGGERS_REVERSE
        )
        for statement in statements:
            schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):
    dependencies = [("journal", "0001_initial")]

    operations = [Triggers()]
