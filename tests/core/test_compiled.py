"""The hot path's compiled statements give what the ORM gives, for one row or many."""

import inspect
import runpy
from pathlib import Path

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from core.compiled import CompiledInsert, PreparedQuery
from crm.models import ContactPoint
from events.models import Event
from tests.factories import ContactPointFactory
from tests.pins import assert_tested_version

pytestmark = pytest.mark.django_db

contacts_by_address = PreparedQuery(
    lambda addresses: ContactPoint.objects.select_related("customer__dedicated_advisor__user").filter(
        address__in=addresses, display_name__contains="100%"
    ),
    sentinels=(["\x00address"],),
)


def test_a_list_argument_widens_its_in_lookup_and_keeps_other_parameters(camille):
    """Each call's list gets its own placeholders, a literal % in the query survives, and
    the related objects come loaded as with select_related."""
    wanted = [ContactPointFactory(address=f"+3361100000{i}", display_name="client 100% fidèle") for i in range(3)]
    ContactPointFactory(address="+33611000009", display_name="autre")

    for count in (1, 3, 2):
        addresses = [contact.address for contact in wanted[:count]]
        found = contacts_by_address.all(addresses)
        assert sorted(contact.address for contact in found) == sorted(addresses)
        with CaptureQueriesContext(connection) as queries:
            assert found[0].customer.dedicated_advisor.user.username  # loaded: no query
        assert len(queries) == 0
    assert contacts_by_address.all([]) == []
    assert contacts_by_address.first(["+33699999999"]) is None


def test_many_inserts_in_order_and_sets_each_pk(camille):
    events = [Event(type="thread.updated", agency_id=camille.agency_id, payload={"n": n}) for n in range(5)]
    inserted = CompiledInsert(Event).many(events)
    assert inserted == events
    assert [Event.objects.get(pk=event.pk).payload["n"] for event in events] == list(range(5))


events_by_type = PreparedQuery(lambda kind: Event.objects.filter(type=kind).order_by("pk"), sentinels=("\x00type",))


def test_values_come_converted_as_the_orm_converts_them(camille):
    """Each column's converters are worked out once, then applied to every call's rows: a
    JSON payload is a dict and a time an aware datetime, equal to what the ORM reads."""
    for n in range(2):
        Event.objects.create(type="thread.updated", agency_id=camille.agency_id, payload={"n": n, "nested": [n]})
    for _ in range(2):  # the second call reuses what the first compiled
        found = events_by_type.all("thread.updated")
        expected = list(Event.objects.filter(type="thread.updated").order_by("pk"))
        assert [(e.pk, e.payload, e.created_at) for e in found] == [(e.pk, e.payload, e.created_at) for e in expected]
        assert found[1].payload == {"n": 1, "nested": [1]}
        assert found[0].created_at.tzinfo is not None


contacts_at = PreparedQuery(
    lambda addresses: ContactPoint.objects.filter(address__in=addresses).order_by("pk"), sentinels=(["\x00address"],)
)


def _prepared_statements() -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


@pytest.mark.postgres
def test_a_statement_that_recurs_is_prepared_on_the_server(camille):
    """Through Django's OPTIONS (server_side_binding, prepare_threshold): the contact lookup
    is planned once per connection after its fifth run, one row or a batch alike."""
    assert connection.settings_dict["OPTIONS"]["server_side_binding"] is True
    # A shape no other test runs, so that this connection has never counted it.
    query = PreparedQuery(
        lambda addresses: ContactPoint.objects.filter(address__in=addresses).order_by("-pk", "address"),
        sentinels=(["\x00address"],),
    )
    for _ in range(5):
        query.all(["+33612345678"])
    assert not any('"address" ASC' in sql for sql in _prepared_statements())
    found = query.all(["+33612345678"])
    assert [c.pk for c in found] == [c.pk for c in camille.contact_points.order_by("-pk")]
    assert sum('"address" ASC' in sql and "IN ($1)" in sql for sql in _prepared_statements()) == 1


@pytest.mark.postgres
def test_prepared_statements_can_be_turned_off(monkeypatch):
    """For a pooler that cannot carry prepared statements between transactions; parameters
    are still bound on the server."""
    monkeypatch.setenv("DATABASE_PREPARED_STATEMENTS", "0")
    settings = runpy.run_path(str(Path(__file__).resolve().parents[2] / "config" / "settings.py"))
    assert settings["DATABASES"]["default"]["OPTIONS"] == {"server_side_binding": True, "prepare_threshold": None}


def test_the_query_log_still_sees_every_statement(camille):
    """Prepared or not, a statement goes through Django's cursor wrapper: query counts in
    tests and execute wrappers see it."""
    with CaptureQueriesContext(connection) as queries:
        contacts_at.all(["+33612345678"])
        CompiledInsert(Event).many([Event(type="thread.updated", agency_id=camille.agency_id, payload={})])
    assert len(queries) == 2
    assert queries[0]["sql"].startswith("SELECT") and 'FROM "crm_contactpoint"' in queries[0]["sql"]
    assert queries[1]["sql"].startswith('INSERT INTO "conversations_event"')


def test_canary_django_is_the_version_and_shape_prepared_query_builds_on():
    """Canary for core/compiled.py: PreparedQuery builds rows with the parts of Django's
    compiler that ModelIterable uses, which are not public API. An upgrade fails here first."""
    from django.db.models import query
    from django.db.models.sql.compiler import SQLCompiler

    assert_tested_version("django", ">=5.2,<5.3", piece="core/compiled.py (PreparedQuery)")
    for method in ("as_sql", "get_converters", "apply_converters", "has_composite_fields"):
        assert callable(getattr(SQLCompiler, method, None)), f"Django's SQLCompiler has no {method}() any more"
    assert list(inspect.signature(query.get_related_populators).parameters) == ["klass_info", "select", "db"]
    # What ModelIterable does with them, and PreparedQuery repeats.
    source = inspect.getsource(query.ModelIterable.__iter__)
    for step in ('klass_info["select_fields"]', "get_related_populators(", "model_cls.from_db(", "populator.populate("):
        assert step in source, f"Django's ModelIterable no longer does {step}"
