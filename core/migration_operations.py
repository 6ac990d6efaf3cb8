"""Migration operations for what only PostgreSQL has (pg_trgm indexes, pattern operator
classes): run there, skipped elsewhere (SQLite, the laptop default), where the queries
they speed up still work, by scanning."""

from django.db import migrations


class PostgreSQLOnlySQL(migrations.RunSQL):
    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)
