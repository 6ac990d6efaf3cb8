"""Every page of the admin, for a supervisor of another agency: nothing of Lyon Bellecour.

A security report said a supervisor of *en-ligne* searching `?q=Camille` got Lyon
Bellecour's customers and opened `/admin/crm/agency/1/change/`. These tests go over
every registered model admin and every way in (list, search, filters, autocomplete,
change, history and delete pages, actions, the choices of forms) and look at what is
listed, not at the page's text: the search box echoes the term back, and opening an
object out of reach redirects to the index, whose page is a 200 too.
"""

import pytest
from django.contrib import admin
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.models import Group, Permission
from django.urls import reverse
from django_q.models import Failure, OrmQ, Schedule, Success

from crm.models import Advisor, Agency, ClosedDay, Customer, OpeningHours
from integrations.models import ApiKey, WebhookDelivery, WebhookEndpoint
from integrations.services import api_key_create
from journal.models import JournalEntry
from journal.retention import legal_hold_place, retention_policy_set
from tests.crm.admin_factories import EventFactory, InboundMessageFactory, MessageTemplateFactory, ThreadFactory
from tests.factories import (
    PASSWORD,
    AdvisorFactory,
    AgencyFactory,
    ContactPointFactory,
    CustomerFactory,
    SupervisorFactory,
    UserFactory,
    add_deputy,
)

pytestmark = pytest.mark.django_db

# Agency-scoped: a supervisor sees their own agency's rows only.
SCOPED = (
    "crm.agency",
    "crm.advisor",
    "crm.customer",
    "integrations.apikey",
    "integrations.webhookendpoint",
    "integrations.webhookdelivery",
)
SCOPED += ("conversations.thread", "events.event")
SCOPED += ("journal.journalentry", "journal.legalhold", "journal.retentionpolicy")
# Shared by the whole bank on purpose: WhatsApp approves templates for the bank's sender.
SHARED = ("conversations.messagetemplate",)
# Not ours and not scoped: superusers only.
SUPERUSER_ONLY = ("auth.user", "auth.group", "django_q.schedule", "django_q.success", "django_q.failure")
SUPERUSER_ONLY += ("django_q.ormq",)
# django-axes' records of sign-ins (supervisors unlock their advisors from the advisor list).
SUPERUSER_ONLY += ("axes.accessattempt", "axes.accesslog", "axes.accessfailurelog")
SEARCHES = ("", "Camille", "Martin", "+33612345678", "06 12 34 56 78", "FR12345678", "alice", "lyon", "Bellecour", "a")


def label(model) -> str:
    return model._meta.label_lower


@pytest.fixture
def lyon(agency, alice, bob, sam):
    """Everything Lyon Bellecour has that the admin shows, one row each at least."""
    camille = CustomerFactory(
        customer_number="FR12345678", first_name="Camille", last_name="Martin", dedicated_advisor=alice, agency=agency
    )
    ContactPointFactory(customer=camille, kind="whatsapp", address="+33612345678")
    add_deputy(alice, bob)
    OpeningHours.objects.create(agency=agency, weekday=0, opens_at="09:00", closes_at="17:00")
    ClosedDay.objects.create(agency=agency, date="2026-12-25", label="Noël")
    thread = ThreadFactory(customer=camille)
    InboundMessageFactory(thread=thread)
    event = EventFactory(thread=thread)
    api_key, _key = api_key_create(name="Lyon CRM", scopes=["customers:read"], agency=agency)
    endpoint = WebhookEndpoint.objects.create(url="https://hooks.example.com/lyon", secret="s", agency=agency)
    delivery = WebhookDelivery.objects.create(endpoint=endpoint, event=event)
    hold = legal_hold_place(agency=agency, reason="Enquête", by=sam.user, customer=camille)
    policy = retention_policy_set(agency=agency, years=7, by=sam.user)
    return {
        "crm.agency": [agency],
        "crm.advisor": [alice, bob, sam],
        "crm.customer": [camille],
        "integrations.apikey": [api_key],
        "integrations.webhookendpoint": [endpoint],
        "integrations.webhookdelivery": [delivery],
        "conversations.thread": [thread],
        "events.event": [event],
        "journal.journalentry": list(JournalEntry.objects.filter(agency=agency)),
        "journal.legalhold": [hold],
        "journal.retentionpolicy": [policy],
    }


@pytest.fixture
def online(db):
    """The other agency, with a supervisor (Eve) and rows of its own, so that lists are not empty."""
    agency = AgencyFactory(name="Centre 100 % en ligne", code="en-ligne")
    eve = SupervisorFactory(user__username="eve", user__first_name="Eve", user__last_name="Moreau", agency=agency)
    chloe = AdvisorFactory(user__username="chloe", agency=agency)
    petit = CustomerFactory(first_name="Jules", last_name="Petit", dedicated_advisor=chloe, agency=agency)
    ContactPointFactory(customer=petit, kind="whatsapp", address="+33687654321")
    thread = ThreadFactory(customer=petit)
    EventFactory(thread=thread)
    api_key, _key = api_key_create(name="Online CRM", scopes=["customers:read"], agency=agency)
    WebhookEndpoint.objects.create(url="https://hooks.example.com/online", secret="s", agency=agency)
    MessageTemplateFactory()
    return eve


@pytest.fixture
def eve_client(client, online):
    assert client.login(username="eve", password=PASSWORD)
    return client


@pytest.fixture
def sam_client(client, sam):
    assert client.login(username="sam", password=PASSWORD)
    return client


def model_admins():
    return list(admin.site._registry.items())


def test_every_registered_model_is_classified():
    """A model newly registered in the admin fails here until it is declared scoped, shared or
    superuser-only (and, if scoped, covered by the tests below)."""
    assert sorted(label(model) for model, _admin in model_admins()) == sorted(SCOPED + SHARED + SUPERUSER_ONLY)


def _listed(client, model, **params) -> tuple[set, str]:
    response = client.get(reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist"), params)
    assert response.status_code == 200, (model, params)
    return {obj.pk for obj in response.context["cl"].result_list}, response.content.decode()


@pytest.mark.parametrize("name", SCOPED)
def test_lists_and_searches_show_nothing_of_another_agency(lyon, eve_client, client, name):
    """Eve's lists, whatever she searches or filters, hold no row of Lyon Bellecour and no link
    to one; the same searches by Sam, Lyon's supervisor, do find them (the test can fail)."""
    model = next(model for model, _ in model_admins() if label(model) == name)
    foreign = {obj.pk for obj in lyon[name]}
    links = [reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_change", args=[pk]) for pk in foreign]
    searchable = bool(admin.site._registry[model].search_fields)
    for search in SEARCHES if searchable else ("",):
        pks, html = _listed(eve_client, model, q=search)
        assert not pks & foreign, (name, search)
        assert not any(f'href="{link}"' in html for link in links), (name, search)
    # The advisor filters, given a Lyon advisor's id by hand.
    advisor_filter = {"crm.customer": "advisor", "conversations.thread": "handler"}.get(name)
    if advisor_filter:
        pks, _html = _listed(eve_client, model, **{advisor_filter: str(lyon["crm.advisor"][0].pk)})
        assert not pks & foreign

    client.logout()
    assert client.login(username="sam", password=PASSWORD)
    seen = set()
    for search in SEARCHES if searchable else ("",):
        seen |= _listed(client, model, q=search)[0]
    assert foreign <= seen


def test_filters_offer_only_the_agencys_advisors(lyon, eve_client):
    """The advisor and handler filters list Eve's colleagues, never Lyon's advisors."""
    for url in (reverse("admin:crm_customer_changelist"), reverse("admin:conversations_thread_changelist")):
        response = eve_client.get(url)
        offered = {
            choice["display"]
            for spec in response.context["cl"].filter_specs
            for choice in spec.choices(response.context["cl"])
        }
        assert {"Alice Durand", "Bob Leroy", "Sam Bernard"}.isdisjoint(offered)
        assert "Eve Moreau" in offered


@pytest.mark.parametrize("name", SCOPED)
def test_pages_of_another_agencys_rows_do_not_open(lyon, eve_client, name):
    """Change, history and delete pages of a Lyon row send Eve back to the index (as for a row
    that does not exist), and a POST to the change page changes nothing."""
    for obj in lyon[name]:
        opts = obj._meta
        for view in ("change", "history", "delete"):
            url = reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=[obj.pk])
            response = eve_client.get(url)
            assert response.status_code in (302, 403, 404), (name, view)
            if response.status_code == 302:
                assert response["Location"] == reverse("admin:index")
        before = {field.attname: getattr(obj, field.attname) for field in opts.concrete_fields}
        eve_client.post(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk]), {"name": "x"})
        obj.refresh_from_db()
        assert {field.attname: getattr(obj, field.attname) for field in opts.concrete_fields} == before


def test_forms_offer_only_the_agency_and_its_advisors(lyon, eve_client, online):
    """The add and change forms' agency and advisor choices are Eve's agency and colleagues only."""
    lyon_agency, lyon_advisors = lyon["crm.agency"][0], lyon["crm.advisor"]
    pages = [
        reverse("admin:crm_customer_add"),
        reverse("admin:integrations_apikey_add"),
        reverse("admin:integrations_webhookendpoint_add"),
        reverse("admin:crm_advisor_change", args=[online.pk]),
        reverse("admin:crm_customer_change", args=[Customer.objects.get(last_name="Petit").pk]),
    ]
    for url in pages:
        response = eve_client.get(url)
        assert response.status_code == 200, url
        forms = [response.context["adminform"].form]
        forms += [form for inline in response.context["inline_admin_formsets"] for form in inline.formset.forms]
        for form in forms:
            for field in form.fields.values():
                queryset = getattr(field, "queryset", None)
                if queryset is None:
                    continue
                if queryset.model is Agency:
                    assert lyon_agency not in queryset, url
                if queryset.model is Advisor:
                    assert not set(lyon_advisors) & set(queryset), url


def test_autocomplete_finds_nothing_of_another_agency(lyon, eve_client):
    """Every autocomplete field of every admin answers Eve without Lyon's rows (or refuses her)."""
    asked = 0
    for model, model_admin in model_admins():
        for field_name in model_admin.autocomplete_fields:
            for term in ("", "alice", "a"):
                response = eve_client.get(
                    reverse("admin:autocomplete"),
                    {
                        "term": term,
                        "app_label": model._meta.app_label,
                        "model_name": model._meta.model_name,
                        "field_name": field_name,
                    },
                )
                asked += 1
                assert response.status_code in (200, 403)
                if response.status_code == 200:
                    texts = [result["text"] for result in response.json()["results"]]
                    assert not {"alice", "bob", "sam"} & set(texts)
    assert asked


def test_actions_on_another_agencys_rows_do_nothing(lyon, eve_client, online):
    """Eve posting Lyon's ids to the bulk actions moves no customer and revokes no key."""
    camille, api_key = lyon["crm.customer"][0], lyon["integrations.apikey"][0]
    chloe = Advisor.objects.get(user__username="chloe")
    eve_client.post(
        reverse("admin:crm_customer_changelist"),
        {
            "action": "reassign_selected",
            ACTION_CHECKBOX_NAME: [camille.pk],
            "post": "yes",
            "advisor": chloe.pk,
            "reason": "x",
        },
    )
    eve_client.post(
        reverse("admin:integrations_apikey_changelist"),
        {"action": "revoke_selected", ACTION_CHECKBOX_NAME: [api_key.pk]},
    )
    camille.refresh_from_db()
    api_key.refresh_from_db()
    assert camille.dedicated_advisor.user.username == "alice"
    assert api_key.revoked_at is None
    assert ApiKey.objects.filter(agency=online.agency, revoked_at__isnull=True).count() == 1


def test_logins_groups_and_the_task_queue_are_for_superusers_only(lyon, eve_client, online):
    """Not scoped by agency, so not a supervisor's, even one granted Django's permissions."""
    online.user.user_permissions.add(*Permission.objects.filter(content_type__app_label__in=["auth", "django_q"]))
    Group.objects.create(name="Lyon supervisors")
    Schedule.objects.create(func="crm.tasks.nothing", name="lyon")
    for name in SUPERUSER_ONLY:
        app_label, model_name = name.split(".")
        assert eve_client.get(reverse(f"admin:{app_label}_{model_name}_changelist")).status_code == 403, name
    alice_user = lyon["crm.advisor"][0].user
    assert eve_client.get(reverse("admin:auth_user_change", args=[alice_user.pk])).status_code in (302, 403)
    app_labels = {app["app_label"] for app in eve_client.get(reverse("admin:index")).context["app_list"]}
    assert app_labels == {"crm", "conversations", "events", "integrations", "journal"}
    assert {Success, Failure, OrmQ} <= set(admin.site._registry)


def test_superusers_keep_the_pages_of_the_other_apps(client):
    """A superuser still manages logins, groups and the task queue."""
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    for name in SUPERUSER_ONLY:
        app_label, model_name = name.split(".")
        assert client.get(reverse(f"admin:{app_label}_{model_name}_changelist")).status_code == 200, name
