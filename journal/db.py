"""The database's side of append-only: triggers refusing UPDATE and DELETE on the journal,
and the one way past them, for a superuser flushing a test database.

In production the binding rule is the application role's privileges (migration 0002 says
which REVOKE to run): the triggers guard against our own code and anyone who edits the
tables by hand without first disabling them, which the chain and the anchors then reveal."""

import threading
from contextlib import contextmanager

from django.db import connection

_unlocked = threading.local()


def sqlite_register_unlock(sender, connection, **kwargs):
    """SQLite's triggers ask `attitre_journal_unlocked()`, a function of this process: a tool
    that opens the file without it (the sqlite3 shell) fails the trigger, and is refused."""
    if connection.vendor == "sqlite":
        connection.connection.create_function(
            "attitre_journal_unlocked", 0, lambda: int(getattr(_unlocked, "on", False)), deterministic=False
        )


@contextmanager
def journal_unlocked():
    """Let this connection empty the journal (a test database's flush). On PostgreSQL only a
    superuser's session passes the trigger's check."""
    _unlocked.on = True
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('attitre.journal_unlocked', 'on', false)")
    try:
        yield
    finally:
        _unlocked.on = False
        if connection.vendor == "postgresql" and connection.connection is not None:
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('attitre.journal_unlocked', '', false)")


# Literal SQL, the table's name and the refusal spelled out (no formatting into SQL).
POSTGRESQL_TRIGGERS = """
CREATE OR REPLACE FUNCTION journal_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('attitre.journal_unlocked', true) = 'on'
       AND (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        RETURN COALESCE(OLD, NEW);
    END IF;
    RAISE EXCEPTION 'The journal is append-only: entries are never updated or deleted. (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER journal_entry_append_only BEFORE UPDATE OR DELETE ON journal_journalentry
    FOR EACH ROW EXECUTE FUNCTION journal_refuse_change();
CREATE TRIGGER journal_entry_no_truncate BEFORE TRUNCATE ON journal_journalentry
    FOR EACH STATEMENT EXECUTE FUNCTION journal_refuse_change();
"""
POSTGRESQL_TRIGGERS_REVERSE = """
DROP TRIGGER IF EXISTS journal_entry_no_truncate ON journal_journalentry;
DROP TRIGGER IF EXISTS journal_entry_append_only ON journal_journalentry;
DROP FUNCTION IF EXISTS journal_refuse_change();
"""
SQLITE_TRIGGERS = [
    """CREATE TRIGGER journal_entry_no_update BEFORE UPDATE ON journal_journalentry
    WHEN NOT attitre_journal_unlocked()
    BEGIN SELECT RAISE(ABORT, 'The journal is append-only: entries are never updated or deleted.'); END""",
    """CREATE TRIGGER journal_entry_no_delete BEFORE DELETE ON journal_journalentry
    WHEN NOT attitre_journal_unlocked()
    BEGIN SELECT RAISE(ABORT, 'The journal is append-only: entries are never updated or deleted.'); END""",
]
SQLITE_TRIGGERS_REVERSE = [
    "DROP TRIGGER IF EXISTS journal_entry_no_update",
    "DROP TRIGGER IF EXISTS journal_entry_no_delete",
]
