import io
import re
from datetime import date
from itertools import takewhile

import pytest
from django.apps import apps
from django.contrib.auth import authenticate, get_user_model
from django.core import serializers
from django.core.management import CommandError, call_command
from django.utils import timezone

from conversations.demo import DEFAULT_PASSWORD
from conversations.models import Message, MessageTemplate, Thread
from conversations.providers.registry import CHANNELS
from crm.addresses import normalize_phone
from crm.models import Advisor, AdvisorAssignment, Agency, ClosedDay, ContactPoint, Customer


@pytest.fixture(autouse=True)
def _development_run(settings):
    # demo is a development tool; the test runner forces DEBUG off.
    settings.DEBUG = True


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings, monkeypatch):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    monkeypatch.delenv("DEMO_PASSWORD", raising=False)


def run_demo() -> str:
    out = io.StringIO()
    call_command("demo", stdout=out)
    return out.getvalue()


def database_snapshot() -> tuple[dict[str, int], dict[str, str]]:
    """Row counts and a full serialized dump of the CRM, the conversations and the users."""
    models = [
        *apps.get_app_config("crm").get_models(),
        *apps.get_app_config("conversations").get_models(),
        get_user_model(),
    ]
    counts = {model._meta.label: model.objects.count() for model in models}
    dump = {model._meta.label: serializers.serialize("json", model.objects.order_by("pk")) for model in models}
    return counts, dump


@pytest.mark.django_db
def test_demo_builds_a_branch_and_an_online_centre_with_hours_and_closed_days():
    """The demo has one branch and one online centre, each with weekly hours and public holidays."""
    run_demo()

    branch = Agency.objects.get(code="lyon-bellecour")
    online = Agency.objects.get(code="en-ligne")
    assert Agency.objects.count() == 2
    assert (branch.name, branch.kind) == ("Agence Lyon Bellecour", Agency.Kind.BRANCH)
    assert (online.name, online.kind) == ("Centre 100 % en ligne", Agency.Kind.ONLINE)
    assert sorted(set(branch.opening_hours.values_list("weekday", flat=True))) == [1, 2, 3, 4, 5]
    assert sorted(set(online.opening_hours.values_list("weekday", flat=True))) == [0, 1, 2, 3, 4, 5]
    for agency in (branch, online):
        closed = set(ClosedDay.objects.filter(agency=agency).values_list("date", flat=True))
        assert {date(2026, 12, 25), date(2027, 1, 1)} <= closed


@pytest.mark.django_db
def test_demo_creates_supervisor_sam_and_three_advisors():
    """sam supervises the branch; alice and bob work there, chloe at the online centre; alice's deputy is bob."""
    run_demo()

    advisors = {advisor.user.username: advisor for advisor in Advisor.objects.select_related("user", "agency")}
    assert sorted(advisors) == ["alice", "bob", "chloe", "sam"]
    assert advisors["sam"].role == Advisor.Role.SUPERVISOR
    assert advisors["sam"].user.is_staff
    assert {name: advisors[name].role for name in ("alice", "bob", "chloe")} == dict.fromkeys(
        ("alice", "bob", "chloe"), Advisor.Role.ADVISOR
    )
    assert {name: advisors[name].agency.code for name in advisors} == {
        "sam": "lyon-bellecour",
        "alice": "lyon-bellecour",
        "bob": "lyon-bellecour",
        "chloe": "en-ligne",
    }
    assert advisors["chloe"].display_name == "Chloé Petit"
    assert [(d.deputy.user.username, d.position) for d in advisors["alice"].deputyships.all()] == [("bob", 0)]


@pytest.mark.django_db
def test_supervisor_can_view_everything_in_the_admin_but_edit_only_configuration():
    """sam views customers and threads, edits agencies and templates, but not customers (services own them)."""
    run_demo()

    sam = get_user_model().objects.get(username="sam")
    assert sam.has_perm("crm.view_customer")
    assert sam.has_perm("conversations.view_thread")
    assert sam.has_perm("crm.change_agency")
    assert sam.has_perm("conversations.change_messagetemplate")
    assert not sam.has_perm("crm.change_customer")
    assert not sam.has_perm("conversations.delete_message")


@pytest.mark.django_db
def test_demo_customers_have_valid_french_mobiles_and_one_current_assignment():
    """About sixty customers, split between the three advisors, each with a valid French mobile on WhatsApp
    and exactly one current assignment to their dedicated advisor."""
    run_demo()

    customers = list(Customer.objects.select_related("dedicated_advisor__user", "agency"))
    assert 50 <= len(customers) <= 70
    assert {c.dedicated_advisor.user.username for c in customers} == {"alice", "bob", "chloe"}
    assert len({c.segment for c in customers}) > 1
    assert len({c.preferred_language for c in customers}) > 1
    for customer in customers:
        assert re.fullmatch(r"FR\d{8}", customer.customer_number)
        assert customer.agency_id == customer.dedicated_advisor.agency_id
        whatsapp = customer.contact_points.get(kind=ContactPoint.Kind.WHATSAPP)
        assert whatsapp.address[:4] in {"+336", "+337"}
        assert normalize_phone(whatsapp.address) == whatsapp.address
        current = AdvisorAssignment.objects.filter(customer=customer, ended_at__isnull=True)
        assert [a.advisor_id for a in current] == [customer.dedicated_advisor_id]
    assert ContactPoint.objects.filter(kind=ContactPoint.Kind.SMS).count() > len(customers) / 2
    assert ContactPoint.objects.filter(kind=ContactPoint.Kind.EMAIL).exists()


@pytest.mark.django_db
def test_camille_martin_reaches_alice_on_whatsapp_sms_and_email():
    """Camille Martin has +33612345678 on WhatsApp and SMS, an email address, alice as dedicated
    advisor, and one conversation that goes from WhatsApp to email, the emails threaded."""
    run_demo()

    camille = Customer.objects.get(first_name="Camille", last_name="Martin")
    assert camille.dedicated_advisor.user.username == "alice"
    assert set(camille.contact_points.values_list("kind", "address")) >= {
        ("whatsapp", "+33612345678"),
        ("sms", "+33612345678"),
        ("email", "camille.martin@example.com"),
    }
    thread = Thread.objects.get(customer=camille)
    assert thread.handler == camille.dedicated_advisor
    messages = list(thread.messages.select_related("email"))
    assert [m.channel for m in messages][-3:] == ["whatsapp", "email", "email"]
    assert {m.direction for m in messages} == {"inbound", "outbound"}
    ours, hers = messages[-2].email, messages[-1].email
    assert (hers.subject, hers.in_reply_to) == ("Re: Code de carte oublié", ours.header_message_id)
    assert thread.last_inbound_channel == "email"


@pytest.mark.django_db
def test_demo_threads_agree_with_their_messages():
    """Each demo thread's summary fields (activity, preview, waiting, unread, last inbound) match its messages;
    inbound messages are received from Twilio, outbound ones delivered and written by the handler."""
    run_demo()

    threads = list(Thread.objects.select_related("customer"))
    assert 5 <= len(threads) <= 8
    now = timezone.now()
    for thread in threads:
        messages = list(thread.messages.order_by("created_at", "id"))
        inbound = [m for m in messages if m.direction == Message.Direction.INBOUND]
        trailing = list(takewhile(lambda m: m.direction == Message.Direction.INBOUND, reversed(messages)))
        assert thread.handler_id == thread.customer.dedicated_advisor_id
        assert thread.agency_id == thread.customer.agency_id
        assert str(thread.routing_reason) == "dedicated advisor"
        assert thread.last_activity_at == messages[-1].created_at < now
        assert thread.last_message_preview == messages[-1].body
        assert thread.unread_count == len(trailing)
        assert thread.waiting_since == (trailing[-1].created_at if trailing else None)
        assert thread.last_inbound_channel == inbound[-1].channel
        for channel in ("whatsapp", "sms"):
            expected = max((m.created_at for m in inbound if m.channel == channel), default=None)
            assert getattr(thread, CHANNELS[channel].last_inbound_field) == expected
        for message in messages:
            assert message.contact_point.customer_id == thread.customer_id
            assert message.contact_point.kind == message.channel
            assert message.provider == CHANNELS[message.channel].provider.name
            assert message.provider_message_id.startswith("SMdemo")
            if message.direction == Message.Direction.INBOUND:
                assert (message.status, message.author_id) == (Message.Status.RECEIVED, None)
            else:
                assert (message.status, message.author_id) == (Message.Status.DELIVERED, thread.handler_id)


@pytest.mark.django_db
def test_demo_adds_two_approved_french_whatsapp_templates():
    """Two active French templates exist, reprise_contact among them, with a Twilio-shaped content SID."""
    run_demo()

    templates = {t.name: t for t in MessageTemplate.objects.all()}
    assert len(templates) == 2
    assert all(t.is_active and t.language == "fr" for t in templates.values())
    assert all(re.fullmatch(r"HX[0-9a-f]{32}", t.content_sid) for t in templates.values())
    assert templates["reprise_contact"].variables == {
        "1": "customer.first_name",
        "2": "advisor.name",
        "3": "agency.name",
    }


@pytest.mark.django_db
def test_demo_users_log_in_with_the_default_password():
    """Without DEMO_PASSWORD, every demo account's password is attitre-demo."""
    run_demo()

    for username in ("sam", "alice", "bob", "chloe"):
        assert authenticate(username=username, password=DEFAULT_PASSWORD) is not None


@pytest.mark.django_db
def test_rerunning_with_a_new_demo_password_resets_it(monkeypatch):
    """Alice logs in with DEMO_PASSWORD; changing it and running demo again moves her to the new one."""
    monkeypatch.setenv("DEMO_PASSWORD", "first-demo-secret")
    run_demo()
    assert authenticate(username="alice", password="first-demo-secret") is not None

    monkeypatch.setenv("DEMO_PASSWORD", "second-demo-secret")
    run_demo()

    assert authenticate(username="alice", password="second-demo-secret") is not None
    assert authenticate(username="alice", password="first-demo-secret") is None
    assert get_user_model().objects.filter(username="alice").count() == 1


@pytest.mark.django_db
def test_running_demo_twice_changes_nothing_the_second_time():
    """Running demo twice changes nothing the second time: same rows, same values, password hashes included."""
    run_demo()
    counts, dump = database_snapshot()

    run_demo()

    assert database_snapshot() == (counts, dump)


@pytest.mark.django_db
def test_demo_prints_how_to_log_in(monkeypatch):
    """The output gives the inbox and admin URLs, each username with its role, and the password's origin."""
    monkeypatch.setenv("DEMO_PASSWORD", "shown-demo-secret")

    output = run_demo()

    assert "http://127.0.0.1:8000/inbox/" in output
    assert "http://127.0.0.1:8000/admin/" in output
    assert re.search(r"sam\s+Supervisor", output)
    for username in ("alice", "bob", "chloe"):
        assert re.search(rf"{username}\s+Advisor", output)
    assert "shown-demo-secret" in output
    assert "DEMO_PASSWORD" in output


@pytest.mark.django_db
def test_demo_address_held_by_someone_else_stops_the_command_and_writes_nothing():
    """When Camille's number already belongs to an unknown prospect, demo stops with the reason and writes nothing."""
    ContactPoint.objects.create(kind=ContactPoint.Kind.WHATSAPP, address="+33612345678")

    with pytest.raises(CommandError, match=r"\+33612345678 is already registered on WhatsApp"):
        run_demo()

    assert not Agency.objects.exists()
    assert not Customer.objects.exists()


@pytest.mark.django_db
def test_demo_refuses_to_run_with_debug_off(settings):
    """With DEBUG off, demo refuses unless --allow-production is given, and writes nothing."""
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG off"):
        call_command("demo", stdout=io.StringIO())
    assert Agency.objects.count() == 0
    call_command("demo", "--allow-production", stdout=io.StringIO())
    assert Agency.objects.count() == 2
