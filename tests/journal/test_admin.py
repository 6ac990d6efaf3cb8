"""The journal's admin pages: holds placed and released, policies set, exports downloaded —
each through its service, so each journalled; all scoped to the supervisor's agency."""

import io
import json
import zipfile
from datetime import date

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from journal.models import JournalEntry, LegalHold, RetentionPolicy
from tests.factories import PASSWORD, AgencyFactory, CustomerFactory, SupervisorFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def sam_client(client, sam):
    assert client.login(username="sam", password=PASSWORD)
    return client


def test_a_supervisor_places_and_releases_a_legal_hold(sam_client, sam, camille, agency):
    response = sam_client.post(
        reverse("admin:journal_legalhold_add"), {"customer": camille.pk, "reason": "Enquête AMF", "until": ""}
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    hold = LegalHold.objects.get()
    assert (hold.agency, hold.customer, hold.placed_by) == (agency, camille, sam.user)
    assert JournalEntry.objects.filter(type="legal_hold.placed", actor=f"user:{sam.user.pk}").count() == 1
    listed = sam_client.get(reverse("admin:journal_legalhold_changelist"))
    assert [h.pk for h in listed.context["cl"].result_list] == [hold.pk]

    sam_client.post(
        reverse("admin:journal_legalhold_changelist"), {"action": "release_selected", ACTION_CHECKBOX_NAME: [hold.pk]}
    )
    hold.refresh_from_db()
    assert hold.released_at is not None
    assert JournalEntry.objects.filter(type="legal_hold.released").count() == 1


def test_a_hold_on_nothing_or_on_another_agencys_customer_is_refused(sam_client, camille, agency):
    """A form error, no hold: nothing covered, two things, a customer of another agency."""
    stranger = CustomerFactory(agency=AgencyFactory(code="en-ligne"), dedicated_advisor=None)
    url = reverse("admin:journal_legalhold_add")
    for data in ({"reason": "x"}, {"customer": stranger.pk, "reason": "x"}, {"customer": camille.pk, "reason": " "}):
        response = sam_client.post(url, data)
        assert response.status_code == 200 and response.context["adminform"].form.errors, data
    past = {"customer": camille.pk, "reason": "x", "until": "2020-01-01"}
    assert "past" in str(sam_client.post(url, past).context["adminform"].form.errors)
    assert not LegalHold.objects.exists()


def test_a_supervisor_sets_the_retention_policy_of_their_agency_only(sam_client, agency):
    other = AgencyFactory(code="en-ligne")
    url = reverse("admin:journal_retentionpolicy_add")
    assert sam_client.post(url, {"agency": other.pk, "years": 7}).status_code == 200
    response = sam_client.post(url, {"agency": agency.pk, "years": 12})
    assert response.status_code == 200 and response.context["adminform"].form.errors
    assert sam_client.post(url, {"agency": agency.pk, "years": 7}).status_code == 302
    assert RetentionPolicy.objects.get().years == 7 and RetentionPolicy.objects.get().agency == agency
    assert JournalEntry.objects.filter(type="retention.policy_changed").count() == 1


def test_the_export_page_downloads_the_agencys_archive_and_journals_it(sam_client, sam, camille_thread, agency):
    """Sam's export is of his agency, whatever agency is posted; another agency's customer is refused."""
    url = reverse("admin:journal_journalentry_export")
    assert "Export for a regulator" in sam_client.get(reverse("admin:journal_journalentry_changelist")).content.decode()
    today = date.today().isoformat()
    response = sam_client.post(url, {"start": today, "end": today, "customer": camille_thread.customer.pk})
    assert response.status_code == 200 and response["Content-Type"] == "application/zip"
    manifest = json.loads(zipfile.ZipFile(io.BytesIO(response.content)).read("manifest.json"))
    assert manifest["agency"] == agency.code and len(manifest["messages"]) == 1
    assert JournalEntry.objects.get(type="export.made").actor == f"user:{sam.user.pk}"

    stranger = CustomerFactory(agency=AgencyFactory(code="en-ligne"), dedicated_advisor=None)
    refused = sam_client.post(url, {"start": today, "end": today, "customer": stranger.pk})
    assert refused.status_code == 200 and refused.context["form"].errors
    assert JournalEntry.objects.filter(type="export.made").count() == 1


def test_another_agencys_supervisor_sees_none_of_its_journal(client, camille_thread, agency):
    eve = SupervisorFactory(user__username="eve", agency=AgencyFactory(code="en-ligne"))
    assert client.login(username=eve.user.username, password=PASSWORD)
    listed = client.get(reverse("admin:journal_journalentry_changelist"))
    assert list(listed.context["cl"].result_list) == []
    assert JournalEntry.objects.filter(agency=agency).exists()


def test_a_conversation_opened_in_the_admin_is_journalled_as_a_read(sam_client, sam, camille_thread):
    """Sam reading Camille's thread in the admin: a thread.read entry by him."""
    response = sam_client.get(reverse("admin:conversations_thread_change", args=[camille_thread.pk]))
    assert response.status_code == 200
    read = JournalEntry.objects.get(type="thread.read")
    assert (read.actor, read.thread_id) == (f"user:{sam.user.pk}", camille_thread.pk)
    assert json.loads(read.entry)["data"] == {"via": "admin"}


def test_a_consent_change_without_a_conversation_is_journalled(camille, agency):
    """No thread, so no event: the opt-out is journalled all the same."""
    from conversations.services.customers import contact_point_set_consent

    contact = camille.contact_points.get(kind="sms")
    assert contact_point_set_consent(contact_point=contact, consent="opted_out", source="API CRM")
    entry = JournalEntry.objects.get(type="consent.changed")
    assert (entry.agency_id, entry.actor, entry.thread_id) == (agency.pk, f"contact:{contact.pk}", None)
    assert json.loads(entry.entry)["data"]["consent"] == "opted_out"
