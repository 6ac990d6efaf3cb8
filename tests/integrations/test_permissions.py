"""Who reaches what: scopes, agencies, inbox visibility; out of reach is a 404."""

import pytest

from conversations.models import Thread
from integrations.models import ApiKey
from integrations.services import api_key_revoke
from tests.integrations.conftest import ALL_SCOPES

pytestmark = pytest.mark.django_db
S = ApiKey.Scope


@pytest.fixture
def world(camille, alice, bob, supervisor, dora):
    thread = Thread.objects.create(
        customer=camille, dedicated_advisor=camille.dedicated_advisor, agency=camille.agency, handler=alice
    )
    other_thread = Thread.objects.create(
        customer=dora, dedicated_advisor=dora.dedicated_advisor, agency=dora.agency, handler=dora.dedicated_advisor
    )
    return {
        "customer": camille,
        "contact": camille.contact_points.first(),
        "advisor": alice,
        "thread": thread,
        "other_customer": dora,
        "other_thread": other_thread,
    }


# (name, method, path, scope, body, is_detail)
ENDPOINTS = [
    ("customers list", "get", lambda w: "/api/v1/customers/", S.CUSTOMERS_READ, None, False),
    ("customer create", "post", lambda w: "/api/v1/customers/", S.CUSTOMERS_WRITE, {}, False),
    ("customer", "get", lambda w: f"/api/v1/customers/{w['customer'].pk}/", S.CUSTOMERS_READ, None, True),
    ("customer update", "patch", lambda w: f"/api/v1/customers/{w['customer'].pk}/", S.CUSTOMERS_WRITE, {}, True),
    (
        "customer reassign",
        "post",
        lambda w: f"/api/v1/customers/{w['customer'].pk}/reassign/",
        S.CUSTOMERS_WRITE,
        {},
        True,
    ),
    (
        "contact points",
        "get",
        lambda w: f"/api/v1/customers/{w['customer'].pk}/contact-points/",
        S.CUSTOMERS_READ,
        None,
        True,
    ),
    (
        "contact point add",
        "post",
        lambda w: f"/api/v1/customers/{w['customer'].pk}/contact-points/",
        S.CUSTOMERS_WRITE,
        {},
        True,
    ),
    (
        "consent",
        "patch",
        lambda w: f"/api/v1/customers/{w['customer'].pk}/contact-points/{w['contact'].pk}/",
        S.CUSTOMERS_WRITE,
        {},
        True,
    ),
    ("advisors", "get", lambda w: "/api/v1/advisors/", S.ADVISORS_READ, None, False),
    ("advisor", "get", lambda w: f"/api/v1/advisors/{w['advisor'].pk}/", S.ADVISORS_READ, None, True),
    ("advisor update", "patch", lambda w: f"/api/v1/advisors/{w['advisor'].pk}/", S.ADVISORS_WRITE, {}, True),
    ("threads", "get", lambda w: "/api/v1/threads/", S.THREADS_READ, None, False),
    ("thread", "get", lambda w: f"/api/v1/threads/{w['thread'].pk}/", S.THREADS_READ, None, True),
    ("thread status", "patch", lambda w: f"/api/v1/threads/{w['thread'].pk}/", S.THREADS_WRITE, {}, True),
    (
        "thread transfer",
        "post",
        lambda w: f"/api/v1/threads/{w['thread'].pk}/transfer/",
        S.THREADS_WRITE,
        {},
        True,
    ),
    ("thread claim", "post", lambda w: f"/api/v1/threads/{w['thread'].pk}/claim/", S.THREADS_WRITE, {}, True),
    ("messages", "get", lambda w: f"/api/v1/threads/{w['thread'].pk}/messages/", S.MESSAGES_READ, None, True),
    ("send", "post", lambda w: f"/api/v1/threads/{w['thread'].pk}/messages/", S.MESSAGES_SEND, {}, True),
    ("templates", "get", lambda w: "/api/v1/templates/", S.TEMPLATES_READ, None, False),
    ("events", "get", lambda w: "/api/v1/events/", S.EVENTS_READ, None, False),
]
IDS = [endpoint[0] for endpoint in ENDPOINTS]
DETAIL = [endpoint for endpoint in ENDPOINTS if endpoint[5]]


def call(client, method, path, body):
    return getattr(client, method)(path, body, format="json") if body is not None else getattr(client, method)(path)


@pytest.mark.parametrize(("name", "method", "path", "scope", "body", "detail"), ENDPOINTS, ids=IDS)
def test_a_key_without_the_scope_gets_403_naming_it(world, make_key, name, method, path, scope, body, detail):
    """A missing scope is a 403 that says which scope the call needs."""
    client = make_key(scopes=[s for s in ALL_SCOPES if s != scope])
    response = call(client, method, path(world), body)
    assert response.status_code == 403
    assert response.json()["code"] == "scope_missing"
    assert scope in response.json()["detail"]


@pytest.mark.parametrize(("name", "method", "path", "scope", "body", "detail"), ENDPOINTS, ids=IDS)
def test_a_key_with_only_the_scope_gets_past_the_permission(world, make_key, name, method, path, scope, body, detail):
    """The one scope an endpoint needs is enough: the answer is never 401, 403 or 404."""
    response = call(make_key(scopes=[scope]), method, path(world), body)
    assert response.status_code not in (401, 403, 404, 500), response.content


@pytest.mark.parametrize(("name", "method", "path", "scope", "body", "detail"), ENDPOINTS, ids=IDS)
def test_revoked_and_unknown_keys_and_anonymous_calls_get_401(world, make_key, name, method, path, scope, body, detail):
    """A revoked or unknown key is a 401 with a Bearer challenge, as is no key at all."""
    client = make_key()
    api_key_revoke(api_key=client.api_key)
    for candidate in (client, make_key().__class__()):
        response = call(candidate, method, path(world), body)
        assert response.status_code == 401
        assert response["WWW-Authenticate"].startswith("Bearer")
    unknown = make_key()
    unknown.credentials(HTTP_AUTHORIZATION="Bearer " + "x" * 43)
    assert call(unknown, method, path(world), body).status_code == 401


@pytest.mark.parametrize(("name", "method", "path", "scope", "body", "detail"), DETAIL, ids=[e[0] for e in DETAIL])
def test_a_key_of_another_agency_gets_404(world, make_key, other_agency, name, method, path, scope, body, detail):
    """Objects of another agency do not exist for a key limited to one agency."""
    response = call(make_key(agency=other_agency), method, path(world), body)
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


THREAD_AND_CUSTOMER = [e for e in DETAIL if "advisor" not in e[0]]


@pytest.mark.parametrize(
    ("name", "method", "path", "scope", "body", "detail"), THREAD_AND_CUSTOMER, ids=[e[0] for e in THREAD_AND_CUSTOMER]
)
def test_another_advisor_gets_404_for_what_their_inbox_does_not_show(
    world, bob, session_client, name, method, path, scope, body, detail
):
    """Bob does not see Alice's customer or her conversation: 404, or 403 for a scope he lacks."""
    response = call(session_client(bob), method, path(world), body)
    if scope == S.CUSTOMERS_WRITE:
        assert response.status_code == 403
    else:
        assert response.status_code == 404


@pytest.mark.parametrize(
    ("name", "method", "path", "scope", "body", "detail"), THREAD_AND_CUSTOMER, ids=[e[0] for e in THREAD_AND_CUSTOMER]
)
def test_the_dedicated_advisor_and_the_supervisor_reach_them(
    world, alice, supervisor, session_client, name, method, path, scope, body, detail
):
    """Alice (her customer) and the agency's supervisor get past the access checks."""
    for advisor in (alice, supervisor):
        response = call(session_client(advisor), method, path(world), body)
        if advisor == alice and scope == S.CUSTOMERS_WRITE:
            assert response.status_code == 403
        else:
            assert response.status_code not in (401, 403, 404, 500), (advisor, response.content)


def test_a_supervisor_does_not_see_another_agency(world, supervisor, session_client):
    """Sam sees his agency's customers and conversations only."""
    client = session_client(supervisor)
    assert client.get(f"/api/v1/customers/{world['other_customer'].pk}/").status_code == 404
    assert client.get(f"/api/v1/threads/{world['other_thread'].pk}/").status_code == 404
    ids = [row["id"] for row in client.get("/api/v1/customers/").json()["results"]]
    assert ids == [world["customer"].pk]


def test_lists_show_only_what_is_within_reach(world, bob, alice, make_key, other_agency, session_client):
    """Lists are filtered the same way: Bob sees none of Alice's, a Paris key only Paris."""
    assert session_client(bob).get("/api/v1/threads/").json()["results"] == []
    assert [t["id"] for t in session_client(alice).get("/api/v1/threads/").json()["results"]] == [world["thread"].pk]
    paris = make_key(agency=other_agency)
    assert [c["id"] for c in paris.get("/api/v1/customers/").json()["results"]] == [world["other_customer"].pk]


def test_an_advisor_changes_only_their_own_record(world, alice, bob, session_client):
    """Alice may go away; she may not send Bob away."""
    client = session_client(alice)
    assert client.patch(f"/api/v1/advisors/{alice.pk}/", {"availability": "away"}, format="json").status_code == 200
    response = client.patch(f"/api/v1/advisors/{bob.pk}/", {"availability": "away"}, format="json")
    assert response.status_code == 403


def test_a_session_user_without_advisor_record_is_refused(db, django_user_model):
    """Logging in is not enough: the API is for advisors and supervisors."""
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_login(django_user_model.objects.create(username="visitor"))
    response = client.get("/api/v1/customers/")
    assert response.status_code == 403
    assert response.json()["code"] == "not_an_advisor"


# --- Every method of every endpoint ---------------------------------------------------------

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "TRACE", "OPTIONS")
HANDLERS = ("get", "post", "put", "patch", "delete")
PATHS = {endpoint[2] for endpoint in ENDPOINTS}


def api_views():
    """Every view of /api/v1/, from the URLconf itself (so that a new one is covered at once)."""
    from integrations.api.urls import v1

    return {pattern.pattern.name: pattern.callback.view_class for pattern in v1}


def endpoint_paths(world) -> dict[str, type]:
    from django.urls import resolve

    return {path(world): resolve(path(world)).func.view_class for path in PATHS}


def test_every_endpoint_of_the_urlconf_is_in_the_matrix(world):
    """A new endpoint fails here until ENDPOINTS lists its methods."""
    assert set(endpoint_paths(world).values()) == set(api_views().values())


@pytest.mark.parametrize("view", list(api_views().values()), ids=list(api_views()))
def test_every_method_a_view_handles_needs_a_scope(view):
    """No handler without a scope: HasScope refuses unmapped methods, and this keeps it honest."""
    handled = {name.upper() for name in HANDLERS if hasattr(view, name)}
    assert handled == set(view.scopes), view


def test_every_method_of_every_endpoint_without_the_scope(world, make_key):
    """With every scope but the one a method needs, each mapped method (HEAD as GET) is a 403;
    OPTIONS is a 200; any other method is a 405, whatever the scopes."""
    without = {scope: make_key(scopes=[s for s in ALL_SCOPES if s != scope]) for scope in ALL_SCOPES}
    everything = make_key()
    for path, view in endpoint_paths(world).items():
        for method in METHODS:
            mapped = view.scopes.get("GET" if method == "HEAD" else method)
            response = (without[mapped] if mapped else everything).generic(method, path)
            if method == "OPTIONS":
                assert response.status_code == 200, (path, method)
            elif mapped is None:
                assert response.status_code == 405, (path, method, response.status_code)
            else:
                assert response.status_code == 403, (path, method, response.status_code)


def test_options_does_not_tell_which_ids_exist(world, make_key):
    """OPTIONS answers a real customer's URL and a made-up one alike."""
    client = make_key()
    real = client.options(f"/api/v1/customers/{world['customer'].pk}/")
    made_up = client.options("/api/v1/customers/999999/")
    assert real.status_code == made_up.status_code == 200
    assert real.json() == made_up.json()


def test_head_needs_the_scope_of_get(world, make_key, other_agency):
    """The reported bypass: a templates-only key got 200 with a Content-Length on HEAD of the
    customer list, and 200 or 404 on HEAD of a customer, telling which customers exist."""
    templates_only = make_key(scopes=[S.TEMPLATES_READ])
    for path in ("/api/v1/customers/", f"/api/v1/customers/{world['customer'].pk}/", "/api/v1/customers/999999/"):
        response = templates_only.head(path)
        assert response.status_code == 403, path
        assert response.content == b""
    assert templates_only.head("/api/v1/templates/").status_code == 200
    # With the scope, HEAD answers as GET does, within the key's reach.
    readers = make_key(scopes=[S.CUSTOMERS_READ])
    assert readers.head(f"/api/v1/customers/{world['customer'].pk}/").status_code == 200
    paris = make_key(scopes=[S.CUSTOMERS_READ], agency=other_agency)
    assert paris.head(f"/api/v1/customers/{world['customer'].pk}/").status_code == 404
