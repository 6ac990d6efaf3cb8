"""Statements compiled once from a model's metadata, for the inbound hot path.

On this project's 2-core reference machine the ORM spends 1–2 ms of Python per
statement building SQL, against 0.3 ms for running it (see bench/inbound.py and
docs/benchmarks.md). These helpers build the SQL once per database from the model's own
fields and adapt values with each field's `get_db_prep_save`, so they follow the
model when it changes; they are used only where the benchmark showed the cost.

On PostgreSQL they run, like the ORM's own statements, through Django's cursor with the
project's `OPTIONS` (`server_side_binding`, psycopg's `prepare_threshold`: config/settings.py),
so a statement that recurs is planned once per connection: planning the contact lookup's
four-table join cost more than running it. A preparing cursor of our own did the same for
one- and two-row statements only; measured against these `OPTIONS` it bought nothing
(docs/design.md, docs/benchmarks.md).
"""

from django.db import connections
from django.db.models import Model
from django.db.models.query import get_related_populators


class CompiledInsert:
    """`INSERT … [ON CONFLICT DO NOTHING] RETURNING pk` for every concrete field but the pk
    and those the database fills (`db_default`), for one row or many in one statement."""

    def __init__(self, model: type[Model], *, ignore_conflicts: bool = False, returning: tuple[str, ...] = ()):
        self.model = model
        self.fields = [f for f in model._meta.concrete_fields if not f.primary_key and not f.has_db_default()]
        self.ignore_conflicts = ignore_conflicts
        # Columns returned beside the pk, so that rows skipped on a conflict can be told apart.
        self.returning = [model._meta.get_field(name) for name in returning]
        self._sql: dict[tuple[str, int], str] = {}

    def _compile(self, using: str, rows: int) -> str:
        if (using, rows) not in self._sql:
            quote = connections[using].ops.quote_name
            columns = ", ".join(quote(f.column) for f in self.fields)
            row = "(" + ", ".join(["%s"] * len(self.fields)) + ")"
            conflict = " ON CONFLICT DO NOTHING" if self.ignore_conflicts else ""
            returned = ", ".join(quote(f.column) for f in [self.model._meta.pk, *self.returning])
            # Identifiers come from model metadata, quoted; every value is a parameter.
            self._sql[using, rows] = (
                f"INSERT INTO {quote(self.model._meta.db_table)} ({columns}) VALUES {', '.join([row] * rows)}"
                f"{conflict} RETURNING {returned}"
            )  # noqa: S608
        return self._sql[using, rows]

    def __call__(self, obj: Model, using: str = "default") -> bool:
        """Insert `obj`; False (and no pk) when a unique constraint already holds its twin."""
        return bool(self.many([obj], using=using))

    def many(self, objs: list[Model], using: str = "default") -> list[Model]:
        """Insert `objs` in one statement, in order; returns those inserted, their pk set.

        Without conflicts, PostgreSQL and SQLite return the rows in the order given (Django's
        own bulk_create relies on it). With `ignore_conflicts`, skipped rows return nothing:
        the rows returned are matched back by the `returning` columns, which must then be
        the unique key that can conflict.
        """
        if not objs:
            return []
        connection = connections[using]
        params = [f.get_db_prep_save(f.pre_save(obj, True), connection) for obj in objs for f in self.fields]
        with connection.cursor() as cursor:
            cursor.execute(self._compile(using, len(objs)), params)
            rows = cursor.fetchall()
        if self.ignore_conflicts and len(rows) != len(objs):
            if not self.returning:
                raise ValueError("Rows skipped on a conflict can only be matched back by `returning` columns.")
            by_key = {tuple(getattr(obj, f.attname) for f in self.returning): obj for obj in objs}
            inserted = [(by_key[tuple(row[1:])], row[0]) for row in rows]
        else:
            inserted = [(obj, row[0]) for obj, row in zip(objs, rows, strict=True)]
        for obj, pk in inserted:
            obj.pk = pk
            obj._state.adding = False
            obj._state.db = using
        return [obj for obj, _ in inserted]


class CompiledUpdate:
    """`UPDATE … SET <fields> WHERE pk = %s` for a fixed set of fields."""

    def __init__(self, model: type[Model], fields: list[str]):
        self.model = model
        self.fields = [model._meta.get_field(name) for name in fields]
        self._sql: dict[str, str] = {}

    def _compile(self, using: str) -> str:
        if using not in self._sql:
            quote = connections[using].ops.quote_name
            assignments = [f"{quote(f.column)} = %s" for f in self.fields]
            self._sql[using] = (
                f"UPDATE {quote(self.model._meta.db_table)} SET {', '.join(assignments)} "
                f"WHERE {quote(self.model._meta.pk.column)} = %s"
            )  # noqa: S608
        return self._sql[using]

    def __call__(self, pk, values: dict, using: str = "default") -> int:
        connection = connections[using]
        params = [f.get_db_prep_save(values[f.name], connection) for f in self.fields]
        with connection.cursor() as cursor:
            cursor.execute(self._compile(using), [*params, pk])
            return cursor.rowcount

    def many(self, rows: list[tuple], using: str = "default") -> None:
        """The same update for several rows: `rows` holds (pk, values) pairs. psycopg sends
        them in one pipeline, so one round trip however many rows."""
        connection = connections[using]
        params = [[*(f.get_db_prep_save(values[f.name], connection) for f in self.fields), pk] for pk, values in rows]
        if len(params) == 1:
            with connection.cursor() as cursor:
                cursor.execute(self._compile(using), params[0])
        elif params:
            with connection.cursor() as cursor:
                cursor.executemany(self._compile(using), params)


class PreparedQuery:
    """A model query compiled once by Django's own compiler, then run with new parameters.

    `build` is called once with `sentinels` (distinct values of the arguments' types
    that no real call uses) to find where each argument lands among the parameters;
    rows become instances exactly as Django's ModelIterable builds them, select_related
    objects and field converters included. Only the SQL building is skipped.

    A sentinel given as a one-item list stands for a list argument of an `__in` lookup:
    its `IN (%s)` is widened to as many placeholders as the call's list has items.
    """

    def __init__(self, build, *, sentinels: tuple):
        self.build = build
        self.sentinels = sentinels
        self._compiled: dict[str, tuple] = {}

    def _compile(self, using: str):
        if using not in self._compiled:
            queryset = self.build(*self.sentinels).using(using)
            compiler = queryset.query.get_compiler(using=using)
            sql, params = compiler.as_sql()
            markers = [sentinel[0] if isinstance(sentinel, list) else sentinel for sentinel in self.sentinels]
            positions = [params.index(marker) for marker in markers]
            # Django writes every parameter as %s and escapes a literal % as %%.
            parts = sql.replace("%%", "\x00percent").split("%s")
            if len(parts) != len(params) + 1:
                raise ValueError(f"Cannot place the parameters of {sql!r}.")
            parts = [part.replace("\x00percent", "%%") for part in parts]
            klass_info, select = compiler.klass_info, compiler.select
            start, end = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
            init_list = [column[0].target.attname for column in select[start:end]]
            populators = get_related_populators(klass_info, select, using)
            # What results_iter would work out again for every call: each column's converters.
            fields = [column[0] for column in select[0 : compiler.col_count]]
            if compiler.has_composite_fields(fields):
                raise ValueError("PreparedQuery does not read composite fields.")
            converters = compiler.get_converters(fields)
            self._compiled[using] = (
                compiler, parts, list(params), positions, start, end, init_list, populators, converters
            )  # fmt: skip
        return self._compiled[using]

    def _run(self, args: tuple, using: str, *, one: bool) -> list:
        compiler, parts, params, positions, start, end, init_list, populators, converters = self._compile(using)
        params = [[value] for value in params]
        for sentinel, position, value in zip(self.sentinels, positions, args, strict=True):
            params[position] = list(value) if isinstance(sentinel, list) else [value]
        if any(not values for values in params):
            return []  # `IN ()` matches nothing
        sql = parts[0] + "".join(
            ", ".join(["%s"] * len(values)) + part for values, part in zip(params, parts[1:], strict=True)
        )
        with connections[using].cursor() as cursor:
            cursor.execute(sql, [value for values in params for value in values])
            rows = [cursor.fetchone()] if one else cursor.fetchall()
        rows = [row for row in rows if row is not None]
        if converters:
            rows = compiler.apply_converters(rows, converters)
        objs = []
        for row in rows:
            obj = compiler.klass_info["model"].from_db(using, init_list, row[start:end])
            for populator in populators:
                populator.populate(row, obj)
            objs.append(obj)
        return objs

    def first(self, *args, using: str = "default"):
        objs = self._run(args, using, one=True)
        return objs[0] if objs else None

    def all(self, *args, using: str = "default") -> list:
        return self._run(args, using, one=False)
