import asyncio
import itertools

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from conversations.models import MessageTemplate
from crm.models import AdvisorAssignment, ContactPoint, Customer, OpeningHours
from crm.services import customer_create
from events.groups import advisor_group
from integrations.models import WebhookDelivery, WebhookEndpoint
from integrations.services import api_key_create
from tests.crm.admin_factories import (
    EventFactory,
    InboundMessageFactory,
    MessageTemplateFactory,
    NoteFactory,
    ThreadFactory,
)
from tests.factories import (
    PASSWORD,
    AgencyFactory,
    ContactPointFactory,
    CustomerFactory,
    SupervisorFactory,
    UserFactory,
    add_deputy,
)

pytestmark = pytest.mark.django_db

CUSTOMERS = reverse("admin:crm_customer_changelist")
_numbers = itertools.count(1)


def admin_url(obj, view="change"):
    opts = obj._meta
    args = (obj.pk,) if view in ("change", "delete") else ()
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=args)


def login(client, advisor):
    assert client.login(username=advisor.user.username, password=PASSWORD)
    return client


def change_form_data(response) -> dict:
    """What the browser would post back from a rendered change form, inlines included."""
    data = {}
    forms = [response.context["adminform"].form]
    for inline in response.context["inline_admin_formsets"]:
        forms += [inline.formset.management_form, *inline.formset.forms]
    for form in forms:
        for name in form.fields:
            value = form[name].value()
            if value is None or value is False:
                continue
            data[form.add_prefix(name)] = "on" if value is True else value
    return data


def customers_of(advisor, count):
    return [
        customer_create(
            customer_number=f"T{n:06d}",
            first_name="Client",
            last_name=f"N{n:06d}",
            agency=advisor.agency,
            advisor=advisor,
        )
        for n in itertools.islice(_numbers, count)
    ]


@pytest.fixture
def sam_client(client, sam):
    return login(client, sam)


@pytest.fixture
def thread(camille, alice):
    thread = ThreadFactory(
        customer=camille,
        routing_reason_code="transferred",
        routing_reason_params={"by": "bob", "reason": "crédit immobilier"},
    )
    InboundMessageFactory(thread=thread)
    NoteFactory(thread=thread, author=alice)
    EventFactory(thread=thread)
    return thread


def test_supervisor_opens_every_changelist_and_change_page(sam_client, sam, alice, bob, camille, thread):
    """A supervisor without any Django model permission opens every CRM and conversation page."""
    add_deputy(alice, bob)
    OpeningHours.objects.create(agency=alice.agency, weekday=0, opens_at="09:00", closes_at="17:00")
    alice.agency.closed_days.create(date="2025-12-25", label="Noël")
    template = MessageTemplateFactory()
    event = thread.events.get()
    api_key, _key = api_key_create(name="CRM sync", scopes=["customers:read"], agency=alice.agency)
    endpoint = WebhookEndpoint.objects.create(url="https://hooks.example.com/a", secret="s", agency=alice.agency)
    delivery = WebhookDelivery.objects.create(endpoint=endpoint, event=event)
    objects = [alice.agency, alice, camille, thread, template, event, api_key, endpoint, delivery]
    registered = {
        model
        for model in admin.site._registry
        if model._meta.app_label in ("crm", "conversations", "events", "integrations")
    }
    assert registered == {type(obj) for obj in objects}

    assert sam_client.get(reverse("admin:index")).status_code == 200
    for obj in objects:
        for url in (admin_url(obj, "changelist"), admin_url(obj)):
            assert sam_client.get(url).status_code == 200, url
    for model_with_add in (camille, template):
        assert sam_client.get(admin_url(model_with_add, "add")).status_code == 200
    for superuser_only in (alice.agency, alice):
        assert sam_client.get(admin_url(superuser_only, "add")).status_code == 403


def test_superuser_opens_every_page(client, alice, camille, thread):
    """A superuser opens every changelist and change page, and may add agencies and advisors."""
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    for obj in (alice.agency, alice, camille, thread, MessageTemplateFactory(), thread.events.get()):
        for url in (admin_url(obj, "changelist"), admin_url(obj)):
            assert client.get(url).status_code == 200, url
    for obj in (alice.agency, alice, camille):
        assert client.get(admin_url(obj, "add")).status_code == 200


def test_supervisor_cannot_edit_conversations_or_the_event_log(sam_client, thread):
    """Threads and events are read-only: no add page, no saving, no delete."""
    event = thread.events.get()
    for obj in (thread, event):
        assert sam_client.get(admin_url(obj, "add")).status_code == 403
        assert sam_client.post(admin_url(obj), {}).status_code == 403
        assert sam_client.post(admin_url(obj, "delete")).status_code == 403
    page = sam_client.get(admin_url(thread)).content.decode()
    assert 'name="_save"' not in page
    assert "transferred by bob: crédit immobilier" in page  # the routing reason, written when shown


@pytest.mark.parametrize("url", [reverse("admin:index"), CUSTOMERS])
def test_advisor_is_refused_the_admin(client, alice, url):
    """An advisor is refused the admin, even with is_staff set."""
    alice.user.is_staff = True
    alice.user.save()
    response = login(client, alice).get(url)
    assert response.status_code == 302
    assert response.url.startswith(reverse("admin:login"))


def test_inactive_supervisor_is_refused_the_admin(client, sam):
    """A supervisor whose advisor record is deactivated is refused the admin."""
    sam.is_active = False
    sam.save()
    assert login(client, sam).get(CUSTOMERS).status_code == 302


def test_staff_user_without_advisor_record_is_refused_the_admin(client):
    """A staff user who is neither a supervisor nor a superuser is refused the admin."""
    user = UserFactory(is_staff=True)
    client.force_login(user)
    assert client.get(reverse("admin:index")).status_code == 302


def test_superuser_sees_every_agency(client, camille):
    """A superuser without an advisor record sees the customers of every agency."""
    other = CustomerFactory(agency=AgencyFactory())
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    listed = set(client.get(CUSTOMERS).context["cl"].result_list)
    assert listed == {camille, other}


def test_supervisor_of_another_agency_does_not_see_camille(client, camille):
    """A supervisor sees only their own agency's customers, and cannot open another's."""
    elsewhere = SupervisorFactory(agency=AgencyFactory(name="Agence Paris Opéra", code="paris-opera"))
    CustomerFactory(agency=elsewhere.agency, dedicated_advisor=None, last_name="Petit")
    login(client, elsewhere)

    listed = client.get(CUSTOMERS).context["cl"].result_list
    assert [customer.last_name for customer in listed] == ["Petit"]
    assert client.get(admin_url(camille)).status_code == 302
    assert client.get(reverse("admin:crm_advisor_changelist")).context["cl"].result_count == 1


@pytest.mark.parametrize("query", ["+33612345678", "06 12 34 56 78", "Martin", "camille mart"])
def test_search_finds_camille_by_phone_or_name(sam_client, camille, query):
    """Searching customers by phone number, in any common spelling, or by name finds Camille."""
    CustomerFactory(
        agency=camille.agency, dedicated_advisor=camille.dedicated_advisor, first_name="Jean", last_name="Autre"
    )
    listed = sam_client.get(CUSTOMERS, {"q": query}).context["cl"].result_list
    assert list(listed) == [camille]


def test_bulk_reassign_asks_for_an_advisor_and_a_reason(sam_client, alice, bob):
    """The move action shows a confirmation form; without a reason nobody moves."""
    first, second = customers_of(alice, 2)
    selected = {"action": "reassign_selected", ACTION_CHECKBOX_NAME: [first.pk, second.pk]}

    confirmation = sam_client.post(CUSTOMERS, selected)
    assert confirmation.status_code == 200
    assert "admin/crm/customer/reassign_selected.html" in [t.name for t in confirmation.templates]
    assert set(confirmation.context["customers"]) == {first, second}

    refused = sam_client.post(CUSTOMERS, {**selected, "post": "yes", "advisor": bob.pk, "reason": "  "})
    assert refused.status_code == 200
    assert refused.context["form"].errors["reason"]
    assert Customer.objects.filter(dedicated_advisor=alice).count() == 2


def test_bulk_reassign_moves_customers_and_writes_history(sam_client, sam, alice, bob):
    """Moving two customers from Alice to Bob ends Alice's periods and opens Bob's, with the reason and who did it."""
    first, second, untouched = customers_of(alice, 3)
    response = sam_client.post(
        CUSTOMERS,
        {
            "action": "reassign_selected",
            ACTION_CHECKBOX_NAME: [first.pk, second.pk],
            "post": "yes",
            "advisor": bob.pk,
            "reason": "Alice part en congé maternité",
        },
    )
    assert response.status_code == 302

    assert set(Customer.objects.filter(dedicated_advisor=bob)) == {first, second}
    assert Customer.objects.get(pk=untouched.pk).dedicated_advisor == alice
    for customer in (first, second):
        ended, current = AdvisorAssignment.objects.filter(customer=customer).order_by("started_at", "id")
        assert ended.advisor == alice
        assert ended.ended_at is not None
        assert current.advisor == bob
        assert current.ended_at is None
        assert current.reason == "Alice part en congé maternité"
        assert current.changed_by == sam.user


def test_changing_the_advisor_on_the_change_form_needs_a_reason_and_writes_history(sam_client, sam, alice, bob):
    """Picking another dedicated advisor on a customer's page requires a reason and goes into the history."""
    (customer,) = customers_of(alice, 1)
    data = change_form_data(sam_client.get(admin_url(customer)))

    refused = sam_client.post(admin_url(customer), {**data, "dedicated_advisor": bob.pk})
    assert refused.status_code == 200
    assert refused.context["adminform"].form.errors["assignment_reason"]
    assert Customer.objects.get(pk=customer.pk).dedicated_advisor == alice

    data.update(dedicated_advisor=bob.pk, assignment_reason="Demande du client", segment="affluent")
    assert sam_client.post(admin_url(customer), data).status_code == 302
    customer.refresh_from_db()
    assert (customer.dedicated_advisor, customer.segment) == (bob, "affluent")
    current = AdvisorAssignment.objects.get(customer=customer, ended_at__isnull=True)
    assert (current.advisor, current.reason, current.changed_by) == (bob, "Demande du client", sam.user)


def test_creating_a_customer_opens_the_assignment_history(sam_client, sam, agency, alice):
    """A customer added in the admin gets their first assignment period, credited to the supervisor."""
    data = change_form_data(sam_client.get(admin_url(Customer(), "add")))
    data.update(
        customer_number="C-NEW-1",
        first_name="Léa",
        last_name="Moreau",
        agency=agency.pk,
        dedicated_advisor=alice.pk,
        **{"contact_points-TOTAL_FORMS": "1", "contact_points-0-kind": "sms", "contact_points-0-address": "0698765432"},
    )
    response = sam_client.post(admin_url(Customer(), "add"), data)
    assert response.status_code == 302, response.context["adminform"].form.errors

    customer = Customer.objects.get(customer_number="C-NEW-1")
    assert customer.dedicated_advisor == alice
    assignment = customer.assignments.get()
    assert (assignment.advisor, assignment.ended_at, assignment.changed_by) == (alice, None, sam.user)
    contact = customer.contact_points.get()
    assert (contact.address, contact.consent_source) == ("+33698765432", "admin:sam")


def test_contact_point_inline_normalises_phone_numbers(sam_client, camille):
    """A number typed in national form is stored in E.164."""
    data = change_form_data(sam_client.get(admin_url(camille)))
    data.update(
        {
            "contact_points-TOTAL_FORMS": "3",
            "contact_points-2-kind": "sms",
            "contact_points-2-address": "06 98 76 54 32",
        }
    )
    assert sam_client.post(admin_url(camille), data).status_code == 302
    assert camille.contact_points.filter(kind="sms", address="+33698765432").exists()


@pytest.mark.parametrize(
    ("kind", "address", "message"),
    [
        ("sms", "12", "is not a valid phone number"),
        ("whatsapp", "not a number", "is not a phone number"),
        ("email", "camille@", "is not a valid email address"),
        ("sms", "+33 6 12 34 56 78", "already exists"),
    ],
)
def test_contact_point_inline_refuses_bad_addresses(sam_client, camille, kind, address, message):
    """A bad phone number or email shows a validation error on the form and stores nothing."""
    before = list(ContactPoint.objects.values_list("kind", "address"))
    data = change_form_data(sam_client.get(admin_url(camille)))
    data.update({"contact_points-TOTAL_FORMS": "3", "contact_points-2-kind": kind, "contact_points-2-address": address})

    response = sam_client.post(admin_url(camille), data)
    assert response.status_code == 200
    assert message in response.content.decode()
    assert list(ContactPoint.objects.values_list("kind", "address")) == before


def test_advisor_form_refuses_an_absence_that_ends_before_it_starts(sam_client, alice):
    """The absence rule's message is its constraint's, shown by the admin form."""
    data = change_form_data(sam_client.get(admin_url(alice)))
    data.update(
        {
            "out_of_office_from_0": "2026-12-20",
            "out_of_office_from_1": "18:00:00",
            "out_of_office_until_0": "2026-12-01",
            "out_of_office_until_1": "08:00:00",
        }
    )
    response = sam_client.post(admin_url(alice), data)
    assert response.status_code == 200
    assert "The absence must end after it starts." in response.content.decode()
    alice.refresh_from_db()
    assert alice.out_of_office_from is None


def test_opening_hours_inline_refuses_closing_before_opening(sam_client, alice):
    """So is the opening hours' rule, on an agency's inline row."""
    data = change_form_data(sam_client.get(admin_url(alice.agency)))
    data.update(
        {
            "opening_hours-TOTAL_FORMS": "1",
            "opening_hours-0-weekday": "0",
            "opening_hours-0-opens_at": "17:00",
            "opening_hours-0-closes_at": "09:00",
        }
    )
    response = sam_client.post(admin_url(alice.agency), data)
    assert response.status_code == 200
    assert "The closing time must come after the opening time." in response.content.decode()
    assert not OpeningHours.objects.exists()


def test_deputy_inline_refuses_the_advisor_themselves(sam_client, alice):
    """An advisor cannot be made their own deputy."""
    data = change_form_data(sam_client.get(admin_url(alice)))
    data.update({"deputyships-TOTAL_FORMS": "1", "deputyships-0-deputy": alice.pk, "deputyships-0-position": "0"})
    response = sam_client.post(admin_url(alice), data)
    assert response.status_code == 200
    assert "cannot be their own deputy" in response.content.decode()
    assert not alice.deputies.exists()


def _changelist_queries(client, url) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries)


def test_customer_changelist_runs_a_constant_number_of_queries(sam_client, alice, bob, django_assert_num_queries):
    """Listing 3 or 30 customers takes the same 6 queries: session, user, supervisor, the
    advisor filter, one count (no count of every customer: show_full_result_count is off)
    and one page of customers joined to their agency and advisor (the other apps of the
    sidebar are superusers' only: no permission lookup)."""
    ContactPointFactory(customer=customers_of(alice, 1)[0])
    customers_of(bob, 2)
    with django_assert_num_queries(6):
        assert sam_client.get(CUSTOMERS).status_code == 200
    customers_of(alice, 14)
    customers_of(bob, 13)
    with django_assert_num_queries(6):
        response = sam_client.get(CUSTOMERS)
    assert response.context["cl"].result_count == 30


def test_thread_and_event_changelists_run_a_constant_number_of_queries(sam_client, alice, bob):
    """Listing threads and events takes the same queries for 2 rows and for 20."""
    urls = (reverse("admin:conversations_thread_changelist"), reverse("admin:events_event_changelist"))
    for customer in customers_of(alice, 1) + customers_of(bob, 1):
        EventFactory(thread=ThreadFactory(customer=customer))
    few = [_changelist_queries(sam_client, url) for url in urls]
    for customer in customers_of(alice, 9) + customers_of(bob, 9):
        EventFactory(thread=ThreadFactory(customer=customer))
    assert [_changelist_queries(sam_client, url) for url in urls] == few


def test_supervisor_edits_message_templates(sam_client):
    """A supervisor adds a template; variables that do not map numbers to fields are refused."""
    url = reverse("admin:conversations_messagetemplate_add")
    data = {"name": "relance", "language": "fr", "content_sid": "HX123", "body": "Bonjour {{1}}", "is_active": "on"}

    refused = sam_client.post(url, {**data, "variables": '["customer.first_name"]'})
    assert refused.status_code == 200
    assert refused.context["adminform"].form.errors["variables"]

    assert sam_client.post(url, {**data, "variables": '{"1": "customer.first_name"}'}).status_code == 302
    assert MessageTemplate.objects.get(content_sid="HX123").variables == {"1": "customer.first_name"}


def test_saving_an_advisor_tells_the_open_inboxes_of_the_advisor_and_their_deputies(
    sam_client, alice, bob, django_capture_on_commit_callbacks
):
    """Marking alice away in the admin makes the open tabs of alice and of bob, her deputy,
    re-read their access at once (bob starts covering her), not at the next 30 s refresh."""
    add_deputy(alice, bob)
    layer = get_channel_layer()
    listeners = {name: async_to_sync(layer.new_channel)() for name in ("alice", "bob", "other")}
    for name, advisor_id in (("alice", alice.pk), ("bob", bob.pk), ("other", bob.pk + alice.pk + 1000)):
        async_to_sync(layer.group_add)(advisor_group(advisor_id), listeners[name])

    data = change_form_data(sam_client.get(admin_url(alice)))
    data["availability"] = "away"
    with django_capture_on_commit_callbacks(execute=True):
        assert sam_client.post(admin_url(alice), data).status_code == 302

    alice.refresh_from_db()
    assert alice.availability == "away"
    for name in ("alice", "bob"):
        assert async_to_sync(asyncio.wait_for)(layer.receive(listeners[name]), 1) == {"type": "inbox.access"}
    with pytest.raises(asyncio.TimeoutError):
        async_to_sync(asyncio.wait_for)(layer.receive(listeners["other"]), 0.2)


def test_supervisor_sets_the_triage_menu_and_a_reply_text_on_the_agency_page(sam_client, agency):
    """The agency's change form carries its topics and reply texts; what the supervisor saves
    is what the next message sees (the kept settings are dropped at once)."""
    from conversations.models import AutoReplyText, TriageTopic
    from conversations.services.auto_replies import agency_setup

    agency_setup(agency.pk)  # kept before the edit
    response = sam_client.get(admin_url(agency))
    assert response.status_code == 200
    data = change_form_data(response)
    data.update(
        {
            "triage_mode": "closed",
            "emergency_card_number": "09 69 39 77 77",
            "triage_topics-TOTAL_FORMS": "1",
            "triage_topics-0-position": "0",
            "triage_topics-0-label_fr": "Mon crédit",
            "triage_topics-0-label_en": "My loan",
            "triage_topics-0-keywords": "crédit, loan",
            "triage_topics-0-is_active": "on",
            "auto_reply_texts-TOTAL_FORMS": "1",
            "auto_reply_texts-0-kind": "closed",
            "auto_reply_texts-0-language": "fr",
            "auto_reply_texts-0-body": "Fermé. Urgence carte : {{agency.emergency_numbers}}",
        }
    )
    response = sam_client.post(admin_url(agency), data)
    assert response.status_code == 302, response.context["errors"] if response.context else response
    [topic] = TriageTopic.objects.filter(agency=agency)
    assert (topic.label_fr, topic.keyword_list()) == ("Mon crédit", ["crédit", "loan"])
    assert AutoReplyText.objects.get(agency=agency).kind == "closed"
    setup = agency_setup(agency.pk)
    assert [t.pk for t in setup.topics] == [topic.pk] and setup.agency.triage_mode == "closed"
    assert setup.text("closed", "fr").startswith("Fermé.")
