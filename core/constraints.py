"""What a model constraint says when the database refuses a row.

A rule the database enforces is written once, as a constraint with its
`violation_error_message` and `violation_error_code`. Django's ModelForms already show
that message (they validate constraints); a service that lets the database decide turns
the IntegrityError back into the same ValidationError with `violation`."""

import re
from functools import cache

from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import IntegrityError, models

# SQLite names a failed CHECK, and a failed UNIQUE by its columns ("table.column, …");
# PostgreSQL names the constraint (psycopg's diag).
_SQLITE_CHECK = re.compile(r"CHECK constraint failed: (\w+)")
_SQLITE_UNIQUE = re.compile(r"UNIQUE constraint failed: (.+)")


@cache
def _constraints() -> tuple[dict, dict]:
    """The constraints that say something of their own, by name and, for unique ones, by
    their table's columns."""
    by_name, by_columns = {}, {}
    for model in apps.get_models():
        for constraint in model._meta.constraints:
            if constraint.violation_error_message == constraint.default_violation_error_message:
                continue
            by_name[constraint.name] = constraint
            if isinstance(constraint, models.UniqueConstraint) and constraint.fields:
                table = model._meta.db_table
                columns = tuple(f"{table}.{model._meta.get_field(name).column}" for name in constraint.fields)
                by_columns[columns] = constraint
    return by_name, by_columns


def violation(exc: IntegrityError) -> ValidationError | None:
    """The ValidationError of the constraint the database refused the row for, with its
    message and code; None when it is not one that says something of its own."""
    by_name, by_columns = _constraints()
    diag = getattr(exc.__cause__, "diag", None)
    if diag is not None:
        constraint = by_name.get(diag.constraint_name)
    elif match := _SQLITE_CHECK.search(str(exc)):
        constraint = by_name.get(match[1])
    elif match := _SQLITE_UNIQUE.search(str(exc)):
        constraint = by_columns.get(tuple(column.strip() for column in match[1].split(",")))
    else:
        constraint = None
    if constraint is None:
        return None
    return ValidationError(constraint.get_violation_error_message(), code=constraint.violation_error_code)
