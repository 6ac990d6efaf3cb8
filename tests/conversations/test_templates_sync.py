"""`manage.py sync_twilio_templates`: approved templates from the Content API (served by the simulator)."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from conversations.models import MessageTemplate
from tests.servers import closed_port_url

pytestmark = pytest.mark.django_db


def sync() -> str:
    out = StringIO()
    call_command("sync_twilio_templates", stdout=out)
    return out.getvalue()


def test_approved_templates_are_imported(simulator):
    """Each approved template becomes a MessageTemplate: content SID, name, language, body; pending ones do not."""
    assert "2 created" in sync()
    templates = {t.name: t for t in MessageTemplate.objects.all()}
    assert set(templates) == {"reprise_contact", "suivi_demande"}
    reprise = templates["reprise_contact"]
    assert reprise.content_sid == simulator.templates[0]["sid"]
    assert reprise.content_sid.startswith("HX")
    assert reprise.language == "fr"
    assert reprise.body.startswith("Bonjour {{1}}, c'est {{2}}")
    assert reprise.is_active


def test_sync_is_idempotent(simulator):
    """A second run changes nothing."""
    sync()
    before = list(MessageTemplate.objects.order_by("pk").values())
    assert "0 created, 0 updated, 2 unchanged, 0 deactivated" in sync()
    assert list(MessageTemplate.objects.order_by("pk").values()) == before


def test_changed_template_is_updated_and_our_variable_mapping_kept(simulator):
    """A body changed at Twilio is updated; the mapping of variables to CRM fields is ours and stays."""
    sync()
    MessageTemplate.objects.filter(name="reprise_contact").update(variables={"1": "customer.first_name"})
    simulator.templates[0]["body"] = "Bonjour {{1}}, nouvelle version."
    assert "1 updated" in sync()
    template = MessageTemplate.objects.get(name="reprise_contact")
    assert (template.body, template.variables) == ("Bonjour {{1}}, nouvelle version.", {"1": "customer.first_name"})


def test_demo_template_of_the_same_name_takes_twilios_sid(simulator):
    """A template known by name and language (the demo's) adopts the content SID Twilio gives it."""
    MessageTemplate.objects.create(name="suivi_demande", language="fr", content_sid="HXlocal", body="old")
    sync()
    assert MessageTemplate.objects.get(name="suivi_demande").content_sid == simulator.templates[1]["sid"]
    assert MessageTemplate.objects.count() == 2


def test_template_no_longer_approved_is_deactivated(simulator):
    """Withdrawn at Twilio: kept for the history, no longer offered."""
    sync()
    simulator.templates[1]["status"] = "rejected"
    assert "1 deactivated" in sync()
    assert not MessageTemplate.objects.get(name="suivi_demande").is_active


def test_unreachable_twilio_is_a_clear_command_error(simulator, settings):
    """Twilio down: the command says so and changes nothing."""
    settings.TWILIO_API_BASE_URL = closed_port_url()
    with pytest.raises(CommandError, match="not synchronised"):
        sync()
    assert MessageTemplate.objects.count() == 0
