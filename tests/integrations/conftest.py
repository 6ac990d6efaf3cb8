import pytest
from rest_framework.test import APIClient

from integrations.models import ApiKey
from integrations.services import api_key_create
from tests.factories import AdvisorFactory, AgencyFactory, CustomerFactory, SupervisorFactory

ALL_SCOPES = list(ApiKey.Scope.values)


@pytest.fixture(autouse=True)
def _api_settings(settings):
    settings.ATTITRE_WEBHOOKS_ALLOW_PRIVATE = True


@pytest.fixture
def other_agency(db):
    return AgencyFactory(name="Agence Paris Opéra", code="paris-opera")


@pytest.fixture
def olga(other_agency):
    return AdvisorFactory(user__username="olga", agency=other_agency)


@pytest.fixture
def dora(olga):
    return CustomerFactory(first_name="Dora", last_name="Petit", dedicated_advisor=olga, agency=olga.agency)


@pytest.fixture
def make_key(db):
    def make(scopes=ALL_SCOPES, agency=None, name="CRM sync"):
        api_key, key = api_key_create(name=name, scopes=list(scopes), agency=agency)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
        client.api_key = api_key
        client.key = key
        return client

    return make


@pytest.fixture
def key_client(make_key):
    """A key with every scope and no agency restriction."""
    return make_key()


@pytest.fixture
def session_client():
    def make(advisor):
        client = APIClient()
        client.force_login(advisor.user)
        return client

    return make


@pytest.fixture
def supervisor(agency):
    return SupervisorFactory(user__username="sam", agency=agency)
