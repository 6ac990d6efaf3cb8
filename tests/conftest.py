import os

import pytest
from django.conf import settings

from conversations.services.auto_replies import agency_setups_forget
from integrations.services import webhook_endpoints_forget
from tests.factories import AdvisorFactory, AgencyFactory, ContactPointFactory, CustomerFactory, SupervisorFactory

ON_POSTGRES = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")


def pytest_collection_modifyitems(config, items):
    skip_postgres = pytest.mark.skip(reason="needs PostgreSQL; runs in the DATABASE_URL pass of CI")
    skip_redis = pytest.mark.skip(reason="needs Redis; runs in the REDIS_URL pass of CI")
    for item in items:
        if "postgres" in item.keywords and not ON_POSTGRES:
            item.add_marker(skip_postgres)
        if "redis" in item.keywords and not settings.REDIS_URL:
            item.add_marker(skip_redis)


@pytest.fixture(autouse=True)
def _fresh_webhook_endpoints():
    """Each test sees the webhook endpoints it makes: integrations caches them per process."""
    webhook_endpoints_forget()
    yield
    webhook_endpoints_forget()


@pytest.fixture(autouse=True)
def _fresh_agency_setups():
    """Each test sees the opening hours and menus it makes: auto-replies keep them per process."""
    agency_setups_forget()
    yield
    agency_setups_forget()


@pytest.fixture(autouse=True)
def _isolated_media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def pytest_configure(config):
    # Hashing demo-strength passwords with PBKDF2 would dominate the suite's time.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Threads the tests start (ASGI route, races) must not keep connections open past a request.
    settings.DATABASES["default"]["CONN_MAX_AGE"] = 0
    _flush_empties_the_journal()


def _flush_empties_the_journal():
    """The journal's triggers refuse DELETE and TRUNCATE; a transactional test's flush passes
    them (journal.db.journal_unlocked), nothing else does."""
    from django.core.management.commands import flush

    from journal.db import journal_unlocked

    handle = flush.Command.handle

    def unlocked_handle(self, *args, **options):
        with journal_unlocked():
            return handle(self, *args, **options)

    flush.Command.handle = unlocked_handle


@pytest.fixture
def agency(db):
    return AgencyFactory(name="Agence Lyon Bellecour", code="lyon-bellecour")


@pytest.fixture
def alice(agency):
    return AdvisorFactory(user__username="alice", user__first_name="Alice", user__last_name="Durand", agency=agency)


@pytest.fixture
def bob(agency):
    return AdvisorFactory(user__username="bob", user__first_name="Bob", user__last_name="Leroy", agency=agency)


@pytest.fixture
def sam(agency):
    return SupervisorFactory(user__username="sam", user__first_name="Sam", user__last_name="Bernard", agency=agency)


@pytest.fixture
def camille(alice):
    customer = CustomerFactory(first_name="Camille", last_name="Martin", dedicated_advisor=alice, agency=alice.agency)
    ContactPointFactory(customer=customer, kind="whatsapp", address="+33612345678")
    ContactPointFactory(customer=customer, kind="sms", address="+33612345678")
    return customer


@pytest.fixture(autouse=True)
def _twilio_settings(settings):
    # The public URL differs from the test client's host, as behind a TLS proxy.
    settings.PUBLIC_BASE_URL = "https://attitre.example.com"
    settings.TWILIO_ACCOUNT_SID = "AC" + "0" * 32
    settings.TWILIO_AUTH_TOKEN = "test-auth-token-0123456789abcdef"


def pytest_sessionfinish(session, exitstatus):
    # Django removes the SQLite test database file but not its WAL companions.
    name = settings.DATABASES["default"].get("TEST", {}).get("NAME") or ""
    for suffix in ("-wal", "-shm"):
        if name and os.path.exists(name + suffix):
            os.remove(name + suffix)
