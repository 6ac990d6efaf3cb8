"""django-q2 entry points of the journal (schedules made by `manage.py ensure_schedules`)."""

from journal import retention, services


def journal_anchor() -> int:
    return len(services.journal_anchor())


def retention_purge() -> int:
    return retention.retention_purge()
