"""What each endpoint does, how bad input is answered, and constant query counts."""

from datetime import timedelta

import pytest
from django.utils import timezone

from conversations.models import Message, MessageTemplate, Thread
from crm.models import AdvisorAssignment, ContactPoint, Customer, Deputyship
from events.models import Event
from tests.conftest import ON_POSTGRES
from tests.factories import AdvisorFactory, ContactPointFactory, CustomerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def thread(camille, alice):
    return Thread.objects.create(
        customer=camille,
        dedicated_advisor=camille.dedicated_advisor,
        agency=camille.agency,
        handler=alice,
        last_inbound_channel="whatsapp",
        last_whatsapp_inbound_at=timezone.now(),
        waiting_since=timezone.now(),
    )


# --- Customers ------------------------------------------------------------------------------


def test_create_customer_with_normalised_contact_points(key_client, alice):
    """Phone numbers are stored in E.164 and the assignment history starts."""
    response = key_client.post(
        "/api/v1/customers/",
        {
            "customer_number": "C42",
            "first_name": " Léa ",
            "last_name": "Roux",
            "dedicated_advisor": alice.pk,
            "contact_points": [
                {"kind": "whatsapp", "address": "06 12 34 56 79"},
                {"kind": "email", "address": "Lea.Roux@Example.com"},
            ],
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["first_name"] == "Léa"
    assert body["agency"] == alice.agency.code
    assert sorted(c["address"] for c in body["contact_points"]) == ["+33612345679", "lea.roux@example.com"]
    assert AdvisorAssignment.objects.get(customer_id=body["id"]).advisor == alice


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"contact_points": [{"kind": "sms", "address": "12"}]}, "contact_points.0.address"),
        ({"contact_points": [{"kind": "email", "address": "not-an-email"}]}, "contact_points.0.address"),
        ({"contact_points": [{"kind": "pigeon", "address": "x"}]}, "contact_points.0.kind"),
        ({"dedicated_advisor": 999999}, "dedicated_advisor"),
        ({"dedicated_advisor": "abc"}, "dedicated_advisor"),
        ({"segment": "ultra"}, "segment"),
        ({"agency": "nowhere"}, "agency"),
        ({"first_name": ""}, "first_name"),
        ({"contact_points": "nope"}, "contact_points"),
    ],
)
def test_bad_customer_input_is_a_400_naming_the_field(key_client, alice, body, field):
    """Every kind of bad input gets a 400 with the field's error, and nothing is created."""
    payload = {"customer_number": "C43", "first_name": "Léa", "last_name": "Roux", "dedicated_advisor": alice.pk}
    response = key_client.post("/api/v1/customers/", {**payload, **body}, format="json")
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "invalid"
    assert field in response.json()["fields"]
    assert not Customer.objects.filter(customer_number="C43").exists()


def test_a_taken_number_rolls_back_the_customer(key_client, camille, alice):
    """A phone number already registered refuses the whole creation (409)."""
    response = key_client.post(
        "/api/v1/customers/",
        {
            "customer_number": "C44",
            "first_name": "Léa",
            "last_name": "Roux",
            "dedicated_advisor": alice.pk,
            "contact_points": [{"kind": "whatsapp", "address": "+33612345678"}],
        },
        format="json",
    )
    assert response.status_code == 409
    assert response.json()["code"] == "address_taken"
    assert not Customer.objects.filter(customer_number="C44").exists()


def test_a_taken_customer_number_is_a_409(key_client, camille, alice):
    """A customer number already taken is a 409 naming the field, and nothing is created."""
    before = Customer.objects.count()
    response = key_client.post(
        "/api/v1/customers/",
        {
            "customer_number": camille.customer_number,
            "first_name": "Léa",
            "last_name": "Roux",
            "dedicated_advisor": alice.pk,
        },
        format="json",
    )
    assert response.status_code == 409
    assert response.json() == {
        "code": "customer_number_taken",
        "detail": f"Customer number {camille.customer_number} is already taken.",
        "fields": {"customer_number": [f"Customer number {camille.customer_number} is already taken."]},
    }
    assert Customer.objects.count() == before


def test_non_json_and_malformed_bodies_are_400(key_client):
    """Bad JSON is a 400 in the same shape, not a 500."""
    response = key_client.generic("POST", "/api/v1/customers/", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert set(response.json()) >= {"code", "detail"}


def test_filters_phone_and_search(key_client, camille, alice):
    """A phone typed the French way finds the E.164 number; search matches names and numbers."""
    other = CustomerFactory(last_name="Zola", dedicated_advisor=alice, agency=alice.agency)
    assert [c["id"] for c in key_client.get("/api/v1/customers/?phone=06 12 34 56 78").json()["results"]] == [
        camille.pk
    ]
    assert [c["id"] for c in key_client.get("/api/v1/customers/?search=zola").json()["results"]] == [other.pk]
    assert [c["id"] for c in key_client.get("/api/v1/customers/?search=0612345678").json()["results"]] == [camille.pk]
    response = key_client.get("/api/v1/customers/?phone=123&segment=nope&advisor=x")
    assert response.status_code == 400
    assert set(response.json()["fields"]) == {"phone", "segment", "advisor"}


def test_bad_cursor_is_a_400(key_client):
    """A forged cursor is a field error, not a 404 or 500."""
    response = key_client.get("/api/v1/customers/?cursor=garbage")
    assert response.status_code == 400
    assert "cursor" in response.json()["fields"]


def test_cursor_pages_walk_every_customer_once(key_client, alice):
    """Following `next` returns each customer exactly once."""
    created = {CustomerFactory(dedicated_advisor=alice, agency=alice.agency).pk for _ in range(7)}
    seen, url = [], "/api/v1/customers/?page_size=3"
    while url:
        page = key_client.get(url).json()
        seen += [c["id"] for c in page["results"]]
        url = page["next"]
    assert sorted(seen) == sorted(created)


def test_update_customer_does_not_touch_the_advisor(key_client, camille, bob):
    """PATCH changes names and segment; the dedicated advisor is not writable here."""
    response = key_client.patch(
        f"/api/v1/customers/{camille.pk}/",
        {"last_name": "Martin-Roux", "segment": "affluent", "dedicated_advisor": bob.pk},
        format="json",
    )
    assert response.status_code == 200
    camille.refresh_from_db()
    assert (camille.last_name, camille.segment) == ("Martin-Roux", "affluent")
    assert camille.dedicated_advisor_id != bob.pk


def test_reassign_keeps_history_and_requires_a_reason(key_client, camille, alice, bob):
    """Reassigning needs a reason, names an advisor within reach, and keeps the history."""
    url = f"/api/v1/customers/{camille.pk}/reassign/"
    assert key_client.post(url, {"advisor": bob.pk, "reason": ""}, format="json").status_code == 400
    assert key_client.post(url, {"advisor": 999999, "reason": "x"}, format="json").json()["fields"] == {
        "advisor": ["No advisor 999999 within your reach."]
    }
    response = key_client.post(url, {"advisor": bob.pk, "reason": "Alice leaves"}, format="json")
    assert response.status_code == 200
    assert response.json()["changed"] is True
    assert response.json()["previous_advisor"] == alice.pk
    assert AdvisorAssignment.objects.get(customer=camille, ended_at__isnull=True).reason == "Alice leaves"


def test_contact_points_add_and_consent(key_client, camille):
    """Adding a contact point normalises it; consent changes record the key as source."""
    url = f"/api/v1/customers/{camille.pk}/contact-points/"
    response = key_client.post(url, {"kind": "sms", "address": "06 98 76 54 32"}, format="json")
    assert response.status_code == 201, response.content
    contact_id = response.json()["id"]
    assert response.json()["address"] == "+33698765432"
    response = key_client.patch(f"{url}{contact_id}/", {"consent": "opted_out"}, format="json")
    assert response.status_code == 200
    assert response.json()["consent_source"] == "API key CRM sync"
    assert ContactPoint.objects.get(pk=contact_id).consent == "opted_out"
    assert key_client.patch(f"{url}{contact_id}/", {"consent": "maybe"}, format="json").status_code == 400


# --- Advisors ------------------------------------------------------------------------------------


def test_advisor_absence_and_deputies(key_client, alice, bob, sam):
    """Out of office with a message, and an ordered list of deputies."""
    starts = timezone.now() + timedelta(days=1)
    response = key_client.patch(
        f"/api/v1/advisors/{alice.pk}/",
        {
            "out_of_office_from": starts.isoformat(),
            "out_of_office_until": (starts + timedelta(days=7)).isoformat(),
            "out_of_office_message": "Back next week",
            "deputies": [sam.pk, bob.pk],
        },
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["deputies"] == [sam.pk, bob.pk]
    assert list(Deputyship.objects.filter(advisor=alice).values_list("deputy_id", flat=True)) == [sam.pk, bob.pk]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"deputies": [999999]}, "deputies"),
        ({"deputies": ["self"]}, "deputies.0"),
        ({"availability": "sleeping"}, "availability"),
        ({"out_of_office_from": "2026-12-02T00:00:00Z", "out_of_office_until": "2026-12-01T00:00:00Z"}, None),
        ({"out_of_office_from": "tomorrow"}, "out_of_office_from"),
    ],
)
def test_bad_advisor_input_is_a_400(key_client, alice, body, field):
    """Unknown deputies, bad enums, reversed or unparseable dates: 400 with the field."""
    response = key_client.patch(f"/api/v1/advisors/{alice.pk}/", body, format="json")
    assert response.status_code == 400, response.content
    if field:
        assert field in response.json()["fields"]


def test_a_reversed_absence_is_refused_with_its_constraints_code(key_client, alice):
    """The database's rule answers: its message and code, nothing written."""
    body = {"out_of_office_from": "2026-12-02T00:00:00Z", "out_of_office_until": "2026-12-01T00:00:00Z"}
    response = key_client.patch(f"/api/v1/advisors/{alice.pk}/", body, format="json")
    assert (response.status_code, response.json()["code"]) == (400, "absence_order")
    assert response.json()["detail"] == "The absence must end after it starts."
    alice.refresh_from_db()
    assert alice.out_of_office_from is None


def test_a_deputy_listed_twice_is_refused(key_client, alice, bob):
    response = key_client.patch(f"/api/v1/advisors/{alice.pk}/", {"deputies": [bob.pk, bob.pk]}, format="json")
    assert (response.status_code, response.json()["code"]) == (400, "deputy_duplicate")
    assert not Deputyship.objects.filter(advisor=alice).exists()


def test_own_deputy_is_refused(key_client, alice):
    response = key_client.patch(f"/api/v1/advisors/{alice.pk}/", {"deputies": [alice.pk]}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "deputy_self"


# --- Threads and messages ----------------------------------------------------------------------


def test_thread_status_transfer_and_claim(key_client, thread, alice, bob):
    """A key acts on behalf of the advisor it names."""
    url = f"/api/v1/threads/{thread.pk}/"
    assert key_client.patch(url, {"status": "closed"}, format="json").json()["fields"] == {
        "as_advisor": ["Say on whose behalf the key acts: an advisor's id is required."]
    }
    assert key_client.patch(url, {"status": "done", "as_advisor": alice.pk}, format="json").status_code == 400
    response = key_client.patch(url, {"status": "closed", "as_advisor": alice.pk}, format="json")
    assert response.json()["status"] == "closed"
    response = key_client.post(f"{url}transfer/", {"to": bob.pk, "reason": "", "as_advisor": alice.pk}, format="json")
    assert response.status_code == 400
    response = key_client.post(
        f"{url}transfer/", {"to": bob.pk, "reason": "loans", "as_advisor": alice.pk}, format="json"
    )
    assert response.json()["handler"] == bob.pk
    response = key_client.post(f"{url}claim/", {"as_advisor": alice.pk}, format="json")
    assert response.status_code == 200  # Alice is the dedicated advisor: she takes it back
    other = AdvisorFactory(agency=alice.agency)
    response = key_client.post(f"{url}claim/", {"as_advisor": other.pk}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "already_handled"


def test_thread_routing_reason_as_a_code_its_parameters_and_a_sentence(key_client, thread, alice, bob):
    """The API gives the routing decision as a code and parameters (for programs) and as a
    sentence in the caller's language (for people)."""
    url = f"/api/v1/threads/{thread.pk}/"
    key_client.post(f"{url}transfer/", {"to": bob.pk, "reason": "Crédit", "as_advisor": alice.pk}, format="json")
    body = key_client.get(url).json()
    assert body["routing_reason_code"] == "transferred"
    assert body["routing_reason_params"] == {"by": alice.user.username, "reason": "Crédit"}
    assert body["routing_reason"] == f"transferred by {alice.user.username}: Crédit"
    french = key_client.get(url, HTTP_ACCEPT_LANGUAGE="fr").json()
    assert french["routing_reason"] == f"transférée par {alice.user.username} : Crédit"


def test_thread_filters(key_client, thread, alice):
    assert [t["id"] for t in key_client.get(f"/api/v1/threads/?handler={alice.pk}").json()["results"]] == [thread.pk]
    assert key_client.get("/api/v1/threads/?handler=none").json()["results"] == []
    later = (timezone.now() + timedelta(minutes=1)).isoformat()
    assert len(key_client.get("/api/v1/threads/", {"waiting_since_before": later}).json()["results"]) == 1
    assert key_client.get("/api/v1/threads/", {"waiting_since_after": later}).json()["results"] == []
    response = key_client.get("/api/v1/threads/?handler=me&status=x&waiting_since_before=yesterday")
    assert set(response.json()["fields"]) == {"handler", "status", "waiting_since_before"}


def test_send_message_answers_202_and_refusals_carry_a_code(key_client, thread, alice, camille):
    """A reply is queued (202); outside the WhatsApp window it is a 409 with its code."""
    url = f"/api/v1/threads/{thread.pk}/messages/"
    response = key_client.post(url, {"body": "Bonjour", "as_advisor": alice.pk}, format="json")
    assert response.status_code == 202, response.content
    assert response.json()["status"] == "queued"
    Thread.objects.filter(pk=thread.pk).update(last_whatsapp_inbound_at=timezone.now() - timedelta(hours=30))
    response = key_client.post(url, {"body": "Encore", "as_advisor": alice.pk}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "outside_whatsapp_window"
    ContactPoint.objects.filter(customer=camille, kind="sms").update(consent="opted_out")
    response = key_client.post(url, {"body": "SMS", "channel": "sms", "as_advisor": alice.pk}, format="json")
    assert (response.status_code, response.json()["code"]) == (409, "opted_out")
    response = key_client.post(url, {"body": "", "as_advisor": alice.pk}, format="json")
    assert (response.status_code, response.json()["code"]) == (400, "empty_body")
    response = key_client.post(url, {"body": "x", "channel": "fax", "as_advisor": alice.pk}, format="json")
    assert response.status_code == 400
    response = key_client.post(url, {"template": 999, "as_advisor": alice.pk}, format="json")
    assert response.json()["fields"] == {"template": ["No template 999."]}


def test_messages_order(key_client, thread, alice):
    for body in ("one", "two", "three"):
        key_client.post(f"/api/v1/threads/{thread.pk}/messages/", {"body": body, "as_advisor": alice.pk}, format="json")
    url = f"/api/v1/threads/{thread.pk}/messages/"
    assert [m["body"] for m in key_client.get(url).json()["results"]] == ["one", "two", "three"]
    assert [m["body"] for m in key_client.get(url + "?order=newest").json()["results"]] == ["three", "two", "one"]
    assert key_client.get(url + "?order=sideways").status_code == 400


def test_event_feed_pages_with_next_since(key_client, thread, alice, make_key, other_agency):
    """Events come in commit order (ids within one transaction) after `since`; another agency's
    key sees none of them."""
    for status in ("waiting", "closed", "open"):
        key_client.patch(f"/api/v1/threads/{thread.pk}/", {"status": status, "as_advisor": alice.pk}, format="json")
    page = key_client.get("/api/v1/events/?limit=2").json()
    ids = [event["id"] for event in page["results"]]
    assert ids == sorted(ids) and len(ids) == 2 and page["next_since"] == ids[-1]
    rest = key_client.get(f"/api/v1/events/?since={page['next_since']}").json()
    assert len(rest["results"]) == 1
    assert make_key(agency=other_agency).get("/api/v1/events/").json()["results"] == []
    assert key_client.get("/api/v1/events/?since=-1&limit=0").status_code == 400


def test_templates_list(key_client):
    MessageTemplate.objects.create(name="rdv", content_sid="HX1", body="Bonjour {{1}}")
    MessageTemplate.objects.create(name="old", content_sid="HX2", body="x", is_active=False)
    assert [t["name"] for t in key_client.get("/api/v1/templates/").json()["results"]] == ["rdv"]


# --- Throttling --------------------------------------------------------------------------------------


def test_throttling_answers_429_with_retry_after(settings, make_key):
    """Past its rate a key gets 429 and is told when to come back."""
    from django.core.cache import cache

    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"api_key": "2/min", "api_user": "2/min"},
    }
    client = make_key()
    cache.delete(f"throttle_api_key_{client.api_key.pk}")
    assert client.get("/api/v1/templates/").status_code == 200
    assert client.get("/api/v1/templates/").status_code == 200
    response = client.get("/api/v1/templates/")
    assert response.status_code == 429
    assert int(response["Retry-After"]) > 0
    assert response.json()["code"] == "throttled"
    cache.delete(f"throttle_api_key_{client.api_key.pk}")


# --- Constant query counts ------------------------------------------------------------------------------


def _fill(alice, camille, thread, n):
    for index in range(n):
        customer = CustomerFactory(dedicated_advisor=alice, agency=alice.agency)
        ContactPointFactory(customer=customer)
        Thread.objects.create(
            customer=customer, dedicated_advisor=customer.dedicated_advisor, agency=alice.agency, handler=alice
        )
        AdvisorFactory(agency=alice.agency)
        MessageTemplate.objects.create(name=f"t{index}", content_sid=f"HX{index}", body="x")
        message = Message.objects.create(
            thread=thread,
            direction="inbound",
            channel="whatsapp",
            contact_point=camille.contact_points.first(),
            body=str(index),
            status="received",
        )
        Event.objects.create(type="message.created", thread=thread, agency=alice.agency, payload={"m": message.pk})


LISTS = {
    # path → queries with a key: key lookup, page, then one per prefetched relation
    "/api/v1/customers/": 3,
    "/api/v1/advisors/": 3,
    "/api/v1/threads/": 2,
    "/api/v1/templates/": 2,
    # and on PostgreSQL the log's horizon with the cursor's position, in one statement (events.log)
    "/api/v1/events/": 3 if ON_POSTGRES else 2,
    "messages": 4,
    "contact-points": 3,
}


@pytest.mark.parametrize("path", list(LISTS))
@pytest.mark.parametrize("size", [1, 12])
def test_lists_run_a_constant_number_of_queries(
    key_client, alice, camille, thread, django_assert_num_queries, path, size
):
    """However full the page, a list costs the same queries (no N+1)."""
    _fill(alice, camille, thread, size)
    url = {
        "messages": f"/api/v1/threads/{thread.pk}/messages/",
        "contact-points": f"/api/v1/customers/{camille.pk}/contact-points/",
    }.get(path, path)
    key_client.get(url)  # the first call records the key's last use
    with django_assert_num_queries(LISTS[path]):
        response = key_client.get(url)
    assert response.status_code == 200
    assert len(response.json()["results"]) >= 1


@pytest.mark.parametrize("size", [1, 12])
def test_an_advisors_thread_list_runs_a_constant_number_of_queries(
    session_client, alice, camille, thread, django_assert_num_queries, size
):
    """With a session: session, user, advisor, covered colleagues, page."""
    _fill(alice, camille, thread, size)
    client = session_client(alice)
    with django_assert_num_queries(5):
        response = client.get("/api/v1/threads/")
    assert len(response.json()["results"]) == size + 1
