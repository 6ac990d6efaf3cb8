"""The advisors' inbox through the HTTP client: access, tabs, search, actions, escaping,
security headers and the exact number of queries of each page."""

import re
from datetime import timedelta
from html import unescape

import pytest
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from conversations.models import Attachment, Message, MessageTemplate, Note, Thread
from conversations.selectors import INBOX_PAGE_SIZE, TIMELINE_EVENT_TYPES, TIMELINE_PAGE_SIZE
from crm.models import Advisor, ContactPoint, Customer
from events.log import horizon
from events.models import Event
from tests import twilio
from tests.factories import AdvisorFactory, AgencyFactory, CustomerFactory, add_deputy
from tests.queue import queued_funcs

pytestmark = pytest.mark.django_db

CAMILLE = "+33612345678"
UNKNOWN = "+33699000001"
DELIVER = "conversations.tasks.message_deliver"
XSS = "<img src=x onerror=alert(1)>"


def receive(body: str = "Bonjour, ma carte est bloquée", sender: str = CAMILLE) -> Message:
    """A WhatsApp message arrives, through the inbound service."""
    twilio.receive(twilio.whatsapp_text(body=body, sender=sender))
    return Message.objects.select_related("thread").latest("pk")


def signed_in(client, advisor):
    client.force_login(advisor.user)
    return client


def row_ids(response) -> set[int]:
    return {int(value) for value in re.findall(r'id="thread-row-(\d+)"', response.content.decode())}


def flashes(response) -> list[str]:
    return [str(message) for message in response.context["messages"]] if response.context else []


@pytest.fixture
def camille_thread(camille) -> Thread:
    return receive().thread


@pytest.fixture
def pool_thread(agency) -> Thread:
    """An unknown number: a prospect thread in the (only, hence default) agency's pool."""
    thread = receive(body="Bonjour, je voudrais ouvrir un compte", sender=UNKNOWN).thread
    assert thread.prospect_id and thread.handler_id is None
    return thread


# --- Pages and access -------------------------------------------------------------------


def test_login_page_renders(client):
    """The login page has labelled fields, a language switcher and the page language."""
    response = client.get("/accounts/login/")
    assert response.status_code == 200
    html = response.content.decode()
    assert '<html lang="en">' in html
    assert 'for="id_username"' in html and 'for="id_password"' in html
    assert 'action="/i18n/setlang/"' in html and 'value="fr"' in html


def test_login_with_a_password_leads_to_the_inbox(client, alice):
    """Signing in with the login form goes to the inbox."""
    response = client.post("/accounts/login/", {"username": "alice", "password": "correct-horse-battery"})
    assert response.status_code == 302 and response["Location"] == "/inbox/"


def test_language_switcher_changes_the_page_language(client, alice, camille_thread):
    signed_in(client, alice)
    response = client.post("/i18n/setlang/", {"language": "fr", "next": "/inbox/"})
    assert response["Location"] == "/inbox/"
    assert '<html lang="fr">' in client.get("/inbox/").content.decode()


def test_root_redirects_to_the_inbox(client):
    assert client.get("/")["Location"] == "/inbox/"


def test_inbox_needs_a_signed_in_user(client):
    response = client.get("/inbox/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_user_without_advisor_is_forbidden(client, db):
    """A signed-in user who is not an advisor gets a 403, not an empty inbox."""
    client.force_login(get_user_model().objects.create_user("visitor", password="x"))
    assert client.get("/inbox/").status_code == 403


def test_inactive_advisor_is_forbidden(client, alice):
    Advisor.objects.filter(pk=alice.pk).update(is_active=False)
    assert signed_in(client, alice).get("/inbox/").status_code == 403


def test_inbox_lists_the_advisors_thread(client, alice, camille_thread):
    """Alice's inbox lists Camille's thread with name, channel, preview, unread badge, waiting time, handler."""
    before = horizon()
    response = signed_in(client, alice).get("/inbox/")
    after = horizon()
    assert response.status_code == 200
    html = response.content.decode()
    assert row_ids(response) == {camille_thread.pk}
    assert "Camille Martin" in html
    assert "Bonjour, ma carte est bloquée" in html
    assert 'alt="WhatsApp"' in html
    assert '<span class="badge">1<span class="visually-hidden"> unread message</span></span>' in html
    assert "data-waiting-since=" in html and "Waiting for" in html
    assert "Alice Durand" in html
    assert "<title>(1) Attitré</title>" in html
    # The socket replays from the event log's horizon, read with the page (events.log).
    assert before <= int(re.search(r'data-since="(\d+)"', html).group(1)) <= after


def test_colleague_neither_lists_nor_opens_the_thread(client, bob, camille_thread):
    """Bob (same agency, not a deputy) does not see Alice's customer's thread: a 404, never a 403."""
    signed_in(client, bob)
    for tab in ("mine", "pool", "covering", "closed"):
        assert camille_thread.pk not in row_ids(client.get("/inbox/", {"tab": tab}))
    base = f"/inbox/threads/{camille_thread.pk}/"
    assert client.get(base).status_code == 404
    assert client.get(base + "row/").status_code == 404
    assert client.get(base + "parts/header/").status_code == 404
    event = Event.objects.filter(thread=camille_thread).latest("pk")
    assert client.get(f"{base}events/{event.pk}/").status_code == 404
    for action, data in [
        ("note/", {"body": "hello"}),
        ("read/", {}),
        ("status/", {"status": "closed"}),
        ("claim/", {}),
        ("transfer/", {"to": bob.pk, "reason": "x"}),
        ("link/", {"customer_number": "X"}),
        ("reply/", {"body": "Bonjour", "channel": "whatsapp"}),
    ]:
        assert client.post(base + action, data).status_code == 404, action
    assert not Note.objects.exists()
    assert not Message.objects.filter(direction="outbound").exists()
    assert Thread.objects.get(pk=camille_thread.pk).status == Thread.Status.OPEN


def test_supervisor_sees_the_thread(client, sam, camille_thread):
    response = signed_in(client, sam).get(f"/inbox/threads/{camille_thread.pk}/")
    assert response.status_code == 200
    assert "Camille Martin" in response.content.decode()


def test_thread_of_another_agency_is_a_404(client, camille_thread):
    elsewhere = AdvisorFactory(agency=AgencyFactory(code="paris"), role=Advisor.Role.SUPERVISOR)
    assert signed_in(client, elsewhere).get(f"/inbox/threads/{camille_thread.pk}/").status_code == 404


# --- Tabs and search --------------------------------------------------------------------


def test_pool_tab_shows_pooled_threads_to_the_agencys_advisors(client, alice, bob, pool_thread):
    for advisor in (alice, bob):
        signed_in(client, advisor)
        pool = client.get("/inbox/", {"tab": "pool"})
        assert row_ids(pool) == {pool_thread.pk}
        assert UNKNOWN in pool.content.decode() and "Unknown number" in pool.content.decode()
        assert pool_thread.pk not in row_ids(client.get("/inbox/"))


def test_covering_tab_shows_the_threads_of_an_absent_colleague(client, alice, bob, camille_thread):
    """Bob, Alice's deputy, sees her threads under Covering while she is away, and not before."""
    add_deputy(alice, bob)
    signed_in(client, bob)
    assert row_ids(client.get("/inbox/", {"tab": "covering"})) == set()
    Advisor.objects.filter(pk=alice.pk).update(availability=Advisor.Availability.AWAY)
    assert row_ids(client.get("/inbox/", {"tab": "covering"})) == {camille_thread.pk}
    assert client.get(f"/inbox/threads/{camille_thread.pk}/").status_code == 200


def test_closed_tab(client, alice, camille_thread):
    Thread.objects.filter(pk=camille_thread.pk).update(status=Thread.Status.CLOSED)
    signed_in(client, alice)
    assert row_ids(client.get("/inbox/", {"tab": "closed"})) == {camille_thread.pk}
    assert row_ids(client.get("/inbox/")) == set()


def test_unknown_tab_shows_my_conversations(client, alice, camille_thread):
    assert row_ids(signed_in(client, alice).get("/inbox/", {"tab": "everything"})) == {camille_thread.pk}


@pytest.mark.parametrize(
    "search", ["Camille", "martin", "CAMILLE MARTIN", "+33612345678", "06 12 34 56 78", "0612345678", "06.12.34"]
)
def test_search_finds_by_name_number_and_phone(client, alice, camille, camille_thread, search):
    """By name (any case, every word), by phone in E.164 or written the French way, whole or in part."""
    assert row_ids(signed_in(client, alice).get("/inbox/", {"q": search})) == {camille_thread.pk}


def test_search_finds_by_customer_number(client, alice, camille, camille_thread):
    signed_in(client, alice)
    assert row_ids(client.get("/inbox/", {"q": camille.customer_number})) == {camille_thread.pk}
    assert row_ids(client.get("/inbox/", {"q": camille.customer_number.lower()})) == {camille_thread.pk}


def test_search_without_match_says_so(client, alice, camille_thread):
    response = signed_in(client, alice).get("/inbox/", {"q": "Zorro"})
    assert row_ids(response) == set()
    assert 'id="thread-list-empty" class="empty">' in response.content.decode()


def test_search_of_the_pool_by_prospect_number(client, alice, pool_thread):
    assert row_ids(signed_in(client, alice).get("/inbox/", {"tab": "pool", "q": "06 99 00 00 01"})) == {pool_thread.pk}


# --- Live fragments ---------------------------------------------------------------------


def test_row_fragment(client, alice, camille_thread):
    """The live list fetches one row: 200 in the tab, 204 when the thread has left it."""
    signed_in(client, alice)
    response = client.get(f"/inbox/threads/{camille_thread.pk}/row/", {"tab": "mine"})
    assert response.status_code == 200
    assert row_ids(response) == {camille_thread.pk}
    assert "<html" not in response.content.decode()
    assert client.get(f"/inbox/threads/{camille_thread.pk}/row/", {"tab": "closed"}).status_code == 204
    assert client.get(f"/inbox/threads/{camille_thread.pk}/row/", {"q": "Zorro"}).status_code == 204


def test_event_fragment_renders_the_item_the_event_is_about(client, alice, camille_thread):
    signed_in(client, alice)
    created = Event.objects.get(thread=camille_thread, type=Event.Type.MESSAGE_CREATED)
    message = Message.objects.get(thread=camille_thread)
    response = client.get(f"/inbox/threads/{camille_thread.pk}/events/{created.pk}/")
    assert response.status_code == 200
    assert f'id="item-message-{message.pk}"' in response.content.decode()
    assigned = Event.objects.get(thread=camille_thread, type=Event.Type.THREAD_ASSIGNED)
    response = client.get(f"/inbox/threads/{camille_thread.pk}/events/{assigned.pk}/")
    assert f'id="item-event-{assigned.pk}"' in response.content.decode()
    assert "Assigned to Alice Durand" in response.content.decode()


def test_parts_fragments(client, alice, camille_thread):
    signed_in(client, alice)
    assert 'id="thread-header"' in client.get(f"/inbox/threads/{camille_thread.pk}/parts/header/").content.decode()
    assert 'id="customer-card"' in client.get(f"/inbox/threads/{camille_thread.pk}/parts/card/").content.decode()
    assert client.get(f"/inbox/threads/{camille_thread.pk}/parts/timeline/").status_code == 404


# --- The thread page --------------------------------------------------------------------


def test_thread_page_shows_timeline_card_and_composer(client, alice, bob, camille, camille_thread):
    add_deputy(alice, bob)
    Note.objects.create(thread=camille_thread, author=bob, body="Déjà appelée hier")
    response = signed_in(client, alice).get(f"/inbox/threads/{camille_thread.pk}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Bonjour, ma carte est bloquée" in html
    assert "Internal note — never sent" in html and "Déjà appelée hier" in html
    assert "dedicated advisor" in html  # the routing reason
    assert camille.customer_number in html and "Mass market" in html and "Traditional" in html
    assert "Agence Lyon Bellecour" in html and "Bob Leroy" in html
    assert html.count("Opted in") == 2  # WhatsApp and SMS contact points
    assert f'action="/inbox/threads/{camille_thread.pk}/reply/"' in html
    textarea = re.search(r"<textarea id=\"reply-body\"[^>]*>", html).group(0)
    assert 'name="body"' in textarea and 'maxlength="1600"' in textarea and "disabled" not in textarea
    assert '<label for="reply-body">Reply to the customer</label>' in html
    assert 'data-count-for="reply-body" data-text="{count} / {max} characters"' in html
    # The channel Camille last wrote on is the default; both of her numbers are offered.
    assert '<option value="whatsapp" selected>WhatsApp · +33612345678</option>' in html
    assert '<option value="sms">SMS · +33612345678</option>' in html


def test_the_routing_reason_is_shown_in_the_readers_language(client, alice, camille_thread):
    """Routed while English was active, the reason reads in French for a French reader."""
    html = signed_in(client, alice).get(f"/inbox/threads/{camille_thread.pk}/", HTTP_ACCEPT_LANGUAGE="fr").content
    assert re.search(r"<dt>Attribution</dt><dd>conseiller attitré</dd>", html.decode())


def test_opening_a_thread_writes_nothing(client, alice, camille_thread):
    """A GET never writes: the handler opening their unread thread changes no row and
    appends no event; the page says it is unread until it reports being shown."""
    events = Event.objects.count()
    signed_in(client, alice)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(f"/inbox/threads/{camille_thread.pk}/")
    assert response.status_code == 200
    writes = [q["sql"] for q in queries if not q["sql"].lstrip().upper().startswith(("SELECT", "SAVEPOINT", "RELEASE"))]
    assert writes == []
    assert Thread.objects.get(pk=camille_thread.pk).unread_count == 1
    assert Event.objects.count() == events
    assert f'data-read-url="/inbox/threads/{camille_thread.pk}/read/"' in response.content.decode()


def test_the_page_shown_reads_the_thread_for_its_handler_only(client, alice, sam, camille_thread):
    """The thread page, once shown, posts `shown` to the read URL (inbox.js): for its handler
    that reads it and publishes the change; a supervisor glancing at it reads nothing. Both
    get a 204 and no message on their next page."""
    url = f"/inbox/threads/{camille_thread.pk}/read/"
    page = signed_in(client, sam).get(f"/inbox/threads/{camille_thread.pk}/")
    assert "data-read-url" not in page.content.decode()
    assert client.post(url, {"shown": "1"}).status_code == 204
    assert Thread.objects.get(pk=camille_thread.pk).unread_count == 1

    assert signed_in(client, alice).post(url, {"shown": "1"}).status_code == 204
    assert Thread.objects.get(pk=camille_thread.pk).unread_count == 0
    read = Event.objects.filter(type="thread.updated").latest("pk")
    assert (read.payload["change"], read.payload["by"]) == ("read", alice.pk)
    assert flashes(client.get(f"/inbox/threads/{camille_thread.pk}/")) == []


def test_thread_page_shows_media_location_consent_and_delivery(client, alice, camille, camille_thread):
    contact = ContactPoint.objects.get(customer=camille, kind="whatsapp")
    common = {"thread": camille_thread, "contact_point": contact, "channel": "whatsapp"}
    image = Message.objects.create(direction="inbound", status="received", **common)
    stored = Attachment.objects.create(message=image, content_type="image/jpeg", state=Attachment.State.STORED)
    stored.file.save("photo.jpg", ContentFile(b"\xff\xd8\xff jpeg"), save=True)
    document = Message.objects.create(direction="inbound", status="received", **common)
    pdf = Attachment.objects.create(message=document, content_type="application/pdf", state="stored", size=2048)
    pdf.file.save("releve.pdf", ContentFile(b"%PDF-1.4"), save=True)
    Message.objects.create(direction="inbound", status="received", latitude="45.757814", longitude="4.832011", **common)
    Message.objects.create(direction="inbound", status="received", body="STOP", consent_change="opted_out", **common)
    Message.objects.create(direction="outbound", status="delivered", author=alice, body="Bien reçu", **common)
    Message.objects.create(
        direction="outbound",
        status="failed",
        author=alice,
        body="Rappel",
        error_code="63016",
        error_message="Outside the 24-hour window",
        **common,
    )
    html = signed_in(client, alice).get(f"/inbox/threads/{camille_thread.pk}/").content.decode()
    assert f'<img src="/inbox/attachments/{stored.pk}/"' in html
    assert f'href="/inbox/attachments/{pdf.pk}/" download hx-boost="false"' in html
    assert "https://www.openstreetmap.org/?mlat=45.757814&amp;mlon=4.832011" in html
    assert "opted out on this channel" in html
    assert "✓✓</span>\n      Delivered" in html
    assert "Failed: Outside the 24-hour window (error 63016)" in html


def test_attachment_is_served_only_to_who_sees_the_thread(client, alice, bob, camille, camille_thread):
    message = Message.objects.get(thread=camille_thread)
    attachment = Attachment.objects.create(message=message, content_type="image/png", state="stored")
    attachment.file.save("a.png", ContentFile(b"\x89PNG fake"), save=True)
    response = signed_in(client, alice).get(f"/inbox/attachments/{attachment.pk}/")
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    assert b"".join(response.streaming_content) == b"\x89PNG fake"
    assert signed_in(client, bob).get(f"/inbox/attachments/{attachment.pk}/").status_code == 404


# --- Actions ----------------------------------------------------------------------------


def test_add_note(client, alice, camille_thread):
    response = signed_in(client, alice).post(
        f"/inbox/threads/{camille_thread.pk}/note/", {"body": "Carte à refaire"}, follow=True
    )
    assert Note.objects.get().body == "Carte à refaire"
    assert "Note added. It stays internal and is never sent to the customer." in flashes(response)
    assert "Carte à refaire" in response.content.decode()


def test_empty_note_is_refused_with_a_message(client, alice, camille_thread):
    response = signed_in(client, alice).post(f"/inbox/threads/{camille_thread.pk}/note/", {"body": "  "}, follow=True)
    assert response.status_code == 200
    assert "A note cannot be empty." in flashes(response)
    assert not Note.objects.exists()


def test_mark_read(client, sam, camille_thread):
    response = signed_in(client, sam).post(f"/inbox/threads/{camille_thread.pk}/read/", follow=True)
    assert Thread.objects.get(pk=camille_thread.pk).unread_count == 0
    assert "Marked as read." in flashes(response)


def test_close_and_reopen(client, alice, camille_thread):
    signed_in(client, alice)
    response = client.post(f"/inbox/threads/{camille_thread.pk}/status/", {"status": "closed"}, follow=True)
    assert Thread.objects.get(pk=camille_thread.pk).status == Thread.Status.CLOSED
    assert "Conversation closed." in flashes(response)
    assert "Reopen" in response.content.decode()
    response = client.post(f"/inbox/threads/{camille_thread.pk}/status/", {"status": "open"}, follow=True)
    assert Thread.objects.get(pk=camille_thread.pk).status == Thread.Status.OPEN
    assert "Conversation reopened." in flashes(response)


def test_unknown_status_is_refused_with_a_message(client, alice, camille_thread):
    response = signed_in(client, alice).post(
        f"/inbox/threads/{camille_thread.pk}/status/", {"status": "archived"}, follow=True
    )
    assert response.status_code == 200
    assert any("archived" in text for text in flashes(response))
    assert Thread.objects.get(pk=camille_thread.pk).status == Thread.Status.OPEN


def test_claim_from_the_pool(client, alice, bob, pool_thread):
    response = signed_in(client, bob).post(f"/inbox/threads/{pool_thread.pk}/claim/", follow=True)
    assert Thread.objects.get(pk=pool_thread.pk).handler_id == bob.pk
    assert "You handle this conversation now." in flashes(response)
    assert "claimed from the pool by bob" in response.content.decode()


def test_claim_of_a_handled_thread_is_refused_with_a_message(client, alice, bob, sam, pool_thread):
    Thread.objects.filter(pk=pool_thread.pk).update(handler=bob)
    response = signed_in(client, sam).post(f"/inbox/threads/{pool_thread.pk}/claim/", follow=True)
    assert response.status_code == 200
    assert "Bob Leroy is handling this conversation; ask them to transfer it." in flashes(response)
    assert Thread.objects.get(pk=pool_thread.pk).handler_id == bob.pk


def test_transfer_with_a_reason(client, alice, bob, camille_thread):
    response = signed_in(client, alice).post(
        f"/inbox/threads/{camille_thread.pk}/transfer/", {"to": bob.pk, "reason": "Crédit immobilier"}, follow=True
    )
    thread = Thread.objects.get(pk=camille_thread.pk)
    assert thread.handler_id == bob.pk
    assert str(thread.routing_reason) == "transferred by alice: Crédit immobilier"
    assert "Conversation transferred to Bob Leroy." in flashes(response)
    # Alice is still Camille's dedicated advisor: she stays on the thread page.
    assert response.redirect_chain[-1][0] == f"/inbox/threads/{camille_thread.pk}/"


def test_transfer_out_of_sight_goes_back_to_the_inbox(client, alice, bob, pool_thread):
    Thread.objects.filter(pk=pool_thread.pk).update(handler=alice)
    response = signed_in(client, alice).post(
        f"/inbox/threads/{pool_thread.pk}/transfer/", {"to": bob.pk, "reason": "Il connaît ce dossier"}, follow=True
    )
    assert Thread.objects.get(pk=pool_thread.pk).handler_id == bob.pk
    assert response.redirect_chain[-1][0] == "/inbox/"


def test_transfer_without_a_reason_is_refused_with_a_message(client, alice, bob, camille_thread):
    response = signed_in(client, alice).post(
        f"/inbox/threads/{camille_thread.pk}/transfer/", {"to": bob.pk, "reason": "  "}, follow=True
    )
    assert response.status_code == 200
    assert "Say why you transfer this conversation." in flashes(response)
    assert Thread.objects.get(pk=camille_thread.pk).handler_id == alice.pk


def test_transfer_to_another_agency_is_refused_with_a_message(client, alice, camille_thread):
    stranger = AdvisorFactory(agency=AgencyFactory(code="paris"))
    response = signed_in(client, alice).post(
        f"/inbox/threads/{camille_thread.pk}/transfer/", {"to": stranger.pk, "reason": "x"}, follow=True
    )
    assert "That colleague cannot take this conversation; choose one of the list." in flashes(response)
    assert Thread.objects.get(pk=camille_thread.pk).handler_id == alice.pk


def link(client, thread, number):
    return client.post(f"/inbox/threads/{thread.pk}/link/", {"customer_number": number}, follow=True)


def link_refused(number: str) -> str:
    return (
        f"None of the customers you look after is numbered “{number}”. Check the number on the customer's file, "
        "or transfer the conversation to the customer's advisor."
    )


def test_link_prospect_to_customer(client, alice, agency, pool_thread):
    """The dedicated advisor links an unknown number to their customer: the conversation joins
    theirs and the number becomes theirs, unconfirmed."""
    dora = CustomerFactory(first_name="Dora", last_name="Petit", dedicated_advisor=alice, agency=agency)
    response = link(signed_in(client, alice), pool_thread, f" {dora.customer_number.lower()} ")
    thread = Thread.objects.get(customer=dora)
    assert thread.prospect_id is None and thread.handler_id == alice.pk
    linked = ContactPoint.objects.get(address=UNKNOWN)
    assert (linked.customer_id, linked.confirmed) == (dora.pk, False)
    assert (
        "This contact is now Dora Petit's; the conversation joined theirs. The number stays unconfirmed, and "
        "replies go to Dora Petit's own numbers, until their dedicated advisor confirms it." in flashes(response)
    )
    assert response.redirect_chain[-1][0] == f"/inbox/threads/{thread.pk}/"
    html = response.content.decode()
    assert "Not confirmed: linked from the pool, replies never go there" in html
    assert "Confirm this number is Dora Petit's" in html


def test_link_to_a_customer_the_advisor_does_not_look_after_is_refused_like_an_unknown_number(
    client, alice, bob, agency, pool_thread
):
    """Bob sees the pool but not Alice's customers: linking the pool's number to one of them is
    refused with the very answer a number that does not exist gets, and nothing changes."""
    dora = CustomerFactory(customer_number="FR00000001", dedicated_advisor=alice, agency=agency)
    CustomerFactory(customer_number="FR00000002", agency=AgencyFactory(code="paris"), dedicated_advisor=None)
    signed_in(client, bob)
    answers = {}
    for number in ("FR99999999", dora.customer_number, "FR00000002"):
        response = link(client, pool_thread, number)
        assert response.status_code == 200
        answers[number] = [text.replace(number, "<number>") for text in flashes(response)]
    assert list(answers.values()) == [[link_refused("<number>")]] * 3
    assert Thread.objects.get(pk=pool_thread.pk).prospect_id is not None
    assert ContactPoint.objects.get(address=UNKNOWN).customer_id is None


def test_a_deputy_covering_the_absent_advisor_and_a_supervisor_may_link(client, alice, bob, sam, agency):
    """Those who see the customer may link to them: the deputy while the advisor is away, a supervisor."""
    add_deputy(alice, bob)
    alice.availability = Advisor.Availability.AWAY
    alice.save()
    for who, sender in ((bob, "+33699000011"), (sam, "+33699000012")):
        dora = CustomerFactory(dedicated_advisor=alice, agency=agency)
        thread = receive(sender=sender).thread
        link(signed_in(client, who), thread, dora.customer_number)
        assert ContactPoint.objects.get(address=sender).customer_id == dora.pk


def test_a_linked_number_never_receives_the_customers_replies_until_confirmed(client, alice, camille, camille_thread):
    """A stranger writes from a new number claiming to be Camille and is linked to her: the next
    reply still goes to Camille's own number; the stranger's message opened no window there."""
    camille_thread.last_whatsapp_inbound_at = timezone.now() - timedelta(hours=30)
    camille_thread.save(update_fields=["last_whatsapp_inbound_at"])
    stranger = receive(body="C'est Camille, mon nouveau numéro", sender=UNKNOWN).thread
    signed_in(client, alice)
    link(client, stranger, camille.customer_number)
    thread = Thread.objects.get(pk=camille_thread.pk)
    assert thread.last_whatsapp_inbound_at < timezone.now() - timedelta(hours=29)

    response = client.post(f"/inbox/threads/{thread.pk}/reply/", {"body": "Bonjour Camille", "channel": "sms"})
    assert response.status_code == 302
    reply = Message.objects.get(direction="outbound")
    assert reply.contact_point.address == CAMILLE and reply.contact_point.kind == "sms"
    html = client.get(f"/inbox/threads/{thread.pk}/").content.decode()
    assert f"from {UNKNOWN}, not confirmed" in html
    # The composer offers only Camille's own numbers.
    assert re.search(rf"<option[^>]*>[^<]*{re.escape(UNKNOWN)}", html) is None


def test_a_customer_whose_only_number_on_a_channel_is_unconfirmed_cannot_be_sent_there(
    client, alice, agency, pool_thread
):
    """With the linked number the only one on WhatsApp, a reply there is refused, saying who
    must confirm it; once Alice confirms it, the reply goes."""
    dora = CustomerFactory(first_name="Dora", last_name="Petit", dedicated_advisor=alice, agency=agency)
    signed_in(client, alice)
    link(client, pool_thread, dora.customer_number)
    thread = Thread.objects.get(customer=dora)
    thread.last_whatsapp_inbound_at = timezone.now()
    thread.save(update_fields=["last_whatsapp_inbound_at"])
    response = client.post(f"/inbox/threads/{thread.pk}/reply/", {"body": "Bonjour", "channel": "whatsapp"})
    assert response.status_code == 200
    refusal = (
        f"Dora Petit's WhatsApp number {UNKNOWN} was linked to them from the pool and is not confirmed yet; their "
        "dedicated advisor must confirm it is theirs before anything is sent there."
    )
    assert refusal in unescape(response.content.decode())
    assert not Message.objects.filter(direction="outbound").exists()

    contact = ContactPoint.objects.get(address=UNKNOWN)
    response = client.post(f"/inbox/threads/{thread.pk}/contact-points/{contact.pk}/confirm/", follow=True)
    assert f"{UNKNOWN} is confirmed as Dora Petit's; replies may go there now." in flashes(response)
    assert ContactPoint.objects.get(pk=contact.pk).confirmed
    assert Event.objects.filter(type="contact_point.confirmed", thread=thread).count() == 1
    client.post(f"/inbox/threads/{thread.pk}/reply/", {"body": "Bonjour", "channel": "whatsapp"})
    assert Message.objects.get(direction="outbound").contact_point_id == contact.pk


def test_only_the_dedicated_advisor_confirms_a_linked_number(client, alice, bob, agency, pool_thread):
    """Bob, who handles the conversation, cannot confirm the number of Alice's customer; a
    contact point of another customer is a 404."""
    dora = CustomerFactory(first_name="Dora", last_name="Petit", dedicated_advisor=alice, agency=agency)
    link(signed_in(client, alice), pool_thread, dora.customer_number)
    thread = Thread.objects.get(customer=dora)
    thread.handler = bob
    thread.save(update_fields=["handler"])
    contact = ContactPoint.objects.get(address=UNKNOWN)
    signed_in(client, bob)
    assert "Confirm this number" not in client.get(f"/inbox/threads/{thread.pk}/").content.decode()
    response = client.post(f"/inbox/threads/{thread.pk}/contact-points/{contact.pk}/confirm/", follow=True)
    assert "Only Dora Petit's dedicated advisor can confirm that this number is theirs." in flashes(response)
    assert not ContactPoint.objects.get(pk=contact.pk).confirmed
    other = CustomerFactory(agency=agency, dedicated_advisor=bob)
    others = ContactPoint.objects.create(customer=other, kind="sms", address="+33611112222", confirmed=False)
    assert client.post(f"/inbox/threads/{thread.pk}/contact-points/{others.pk}/confirm/").status_code == 404
    assert not ContactPoint.objects.get(pk=others.pk).confirmed


def test_link_of_a_customer_thread_is_refused_with_a_message(client, alice, camille, camille_thread):
    response = signed_in(client, alice).post(
        f"/inbox/threads/{camille_thread.pk}/link/", {"customer_number": camille.customer_number}, follow=True
    )
    assert "This conversation already belongs to a customer." in flashes(response)


# --- Replies ----------------------------------------------------------------------------


@pytest.fixture
def template(db) -> MessageTemplate:
    return MessageTemplate.objects.create(
        name="reprise_contact",
        language="fr",
        content_sid="HX" + "a" * 32,
        body="Bonjour {{1}}, c'est {{2}}, votre conseiller {{3}}. Pouvons-nous reprendre notre échange ?",
        variables={"1": "customer.first_name", "2": "advisor.name", "3": "agency.name"},
    )


def outbound() -> list[Message]:
    return list(Message.objects.filter(direction="outbound").order_by("pk"))


def test_reply_queues_a_message_and_enqueues_its_delivery(client, alice, camille_thread):
    """A reply is stored queued on the chosen channel, its delivery enqueued, and shown in the timeline."""
    response = signed_in(client, alice).post(
        f"/inbox/threads/{camille_thread.pk}/reply/", {"body": "  Je regarde tout de suite.  ", "channel": "sms"}
    )
    assert response.status_code == 302 and response["Location"] == f"/inbox/threads/{camille_thread.pk}/"
    [message] = outbound()
    assert (message.body, message.channel, message.status, message.author) == (
        "Je regarde tout de suite.",
        "sms",
        "queued",
        alice,
    )
    assert queued_funcs().count(DELIVER) == 1
    html = client.get(response["Location"]).content.decode()
    item = html[html.index(f'id="item-message-{message.pk}"') :]
    assert "Je regarde tout de suite." in item and '<p class="delivery delivery-queued">' in item
    assert "Reply queued for sending" in html


def test_reply_without_a_channel_goes_where_the_customer_last_wrote(client, alice, camille_thread):
    signed_in(client, alice).post(f"/inbox/threads/{camille_thread.pk}/reply/", {"body": "Bonjour"})
    assert [message.channel for message in outbound()] == ["whatsapp"]


def test_reply_to_an_opted_out_contact_point_is_refused_next_to_the_composer(client, alice, camille, camille_thread):
    """The service's refusal shows inline with the draft kept; nothing is stored or enqueued."""
    ContactPoint.objects.filter(customer=camille, kind="sms").update(consent="opted_out", consent_source="STOP")
    html = signed_in(client, alice).get(f"/inbox/threads/{camille_thread.pk}/").content.decode()
    assert '<option value="sms">SMS · +33612345678 (opted out)</option>' in html
    response = client.post(f"/inbox/threads/{camille_thread.pk}/reply/", {"body": "Votre carte", "channel": "sms"})
    assert response.status_code == 200
    assert response["HX-Replace-Url"] == f"/inbox/threads/{camille_thread.pk}/"
    html = response.content.decode()
    assert re.search(
        r'<div id="reply-errors" class="composer-errors" role="alert">\s*<p class="error-text">'
        r"Camille Martin opted out of SMS messages \(STOP\); nothing can be sent there until they write START.</p>",
        html,
    )
    assert ">Votre carte</textarea>" in html
    assert '<option value="sms" selected>' in html
    assert outbound() == [] and DELIVER not in queued_funcs()


def test_empty_reply_is_refused(client, alice, camille_thread):
    response = signed_in(client, alice).post(f"/inbox/threads/{camille_thread.pk}/reply/", {"body": "   "})
    assert response.status_code == 200
    assert "Write a message or attach a file before sending." in response.content.decode()
    assert outbound() == [] and DELIVER not in queued_funcs()


def test_unknown_channel_is_refused(client, alice, camille_thread):
    response = signed_in(client, alice).post(
        f"/inbox/threads/{camille_thread.pk}/reply/", {"body": "Bonjour", "channel": "fax"}
    )
    assert "Choose one of the channels offered for this reply." in response.content.decode()
    assert outbound() == []


def test_outside_the_whatsapp_window_the_composer_offers_templates(client, alice, camille_thread, template):
    """Past 24 h free text is refused and the approved templates open, pre-filled from the CRM; one is sent."""
    Thread.objects.filter(pk=camille_thread.pk).update(last_whatsapp_inbound_at=timezone.now() - timedelta(hours=26))
    MessageTemplate.objects.create(name="ancien", content_sid="HX" + "b" * 32, body="Old {{1}}", is_active=False)
    english = MessageTemplate.objects.create(
        name="follow_up", language="en", content_sid="HX" + "c" * 32, body="Hello {{1}}", variables={"1": "x.y"}
    )
    signed_in(client, alice)
    html = client.get(f"/inbox/threads/{camille_thread.pk}/").content.decode()
    # Outside the window the templates are all that can be sent: offered at once.
    assert '<details id="reply-templates" class="panel" open>' in html
    assert "Old " not in html
    # Camille's language (French) first; a variable without a known source is left to fill.
    assert html.index("reprise_contact") < html.index("follow_up")
    assert (
        'Bonjour <mark data-variable="1">Camille</mark>, c&#x27;est <mark data-variable="2">Alice Durand</mark>, '
        'votre conseiller <mark data-variable="3">Agence Lyon Bellecour</mark>.'
    ) in html
    assert 'name="variable_1" type="text" value="Camille"' in html
    assert (
        f'id="template-preview-{english.pk}" data-template-preview>Hello <mark data-variable="1">{{{{1}}}}</mark>'
        in html
    )

    response = client.post(f"/inbox/threads/{camille_thread.pk}/reply/", {"body": "Bonjour", "channel": "whatsapp"})
    html = response.content.decode()
    assert "Camille Martin&#x27;s last WhatsApp message is 26 h old" in html
    assert '<details id="reply-templates" class="panel" open>' in html
    assert outbound() == []

    response = client.post(
        f"/inbox/threads/{camille_thread.pk}/reply/template/",
        {"template": template.pk, "variable_1": "Camille", "variable_2": "Alice", "variable_3": "Bellecour"},
    )
    assert response.status_code == 302
    [message] = outbound()
    assert (message.template, message.channel, message.status) == (template, "whatsapp", "queued")
    assert message.body.startswith("Bonjour Camille, c'est Alice, votre conseiller Bellecour.")
    assert queued_funcs().count(DELIVER) == 1


def test_template_with_a_blank_variable_is_refused(client, alice, camille_thread, template):
    response = signed_in(client, alice).post(
        f"/inbox/threads/{camille_thread.pk}/reply/template/",
        {"template": template.pk, "variable_1": "Camille", "variable_2": " ", "variable_3": "Bellecour"},
    )
    html = response.content.decode()
    assert "Fill in {{2}} of the template “reprise_contact” before sending." in html
    assert '<details id="reply-templates" class="panel" open>' in html
    assert outbound() == []


def test_retry_of_a_failed_message_sends_a_new_one(client, alice, camille, camille_thread):
    """Retry sends the same body on the same channel as a new queued message; the failed one stays."""
    contact = ContactPoint.objects.get(customer=camille, kind="sms")
    failed = Message.objects.create(
        thread=camille_thread,
        direction="outbound",
        status="failed",
        channel="sms",
        contact_point=contact,
        author=alice,
        body="Rappel de rendez-vous",
        error_code="30007",
        error_message="Filtered by the carrier",
    )
    signed_in(client, alice)
    html = client.get(f"/inbox/threads/{camille_thread.pk}/").content.decode()
    item = html[html.index(f'id="item-message-{failed.pk}"') :]
    assert "Failed: Filtered by the carrier (error 30007)" in item
    assert f'action="/inbox/threads/{camille_thread.pk}/messages/{failed.pk}/retry/"' in item
    assert ">Retry</button>" in item

    response = client.post(f"/inbox/threads/{camille_thread.pk}/messages/{failed.pk}/retry/")
    assert response.status_code == 302
    first, retried = outbound()
    assert first.pk == failed.pk and first.status == "failed"
    assert (retried.body, retried.channel, retried.status, retried.author) == (
        "Rappel de rendez-vous",
        "sms",
        "queued",
        alice,
    )
    assert queued_funcs().count(DELIVER) == 1
    # Only a failed reply is retried, and only by someone who sees the thread.
    assert client.post(f"/inbox/threads/{camille_thread.pk}/messages/{retried.pk}/retry/").status_code == 404


def test_retry_of_a_failed_template_sends_the_template_again(client, alice, camille, camille_thread, template):
    contact = ContactPoint.objects.get(customer=camille, kind="whatsapp")
    Thread.objects.filter(pk=camille_thread.pk).update(last_whatsapp_inbound_at=timezone.now() - timedelta(days=3))
    variables = {"1": "Camille", "2": "Alice", "3": "Bellecour"}
    failed = Message.objects.create(
        thread=camille_thread,
        direction="outbound",
        status="undelivered",
        channel="whatsapp",
        contact_point=contact,
        author=alice,
        body="Bonjour Camille, …",
        template=template,
        template_variables=variables,
    )
    signed_in(client, alice).post(f"/inbox/threads/{camille_thread.pk}/messages/{failed.pk}/retry/")
    retried = outbound()[-1]
    assert (retried.template, retried.template_variables, retried.status) == (template, variables, "queued")


def test_retry_refused_shows_why(client, alice, bob, camille, camille_thread):
    contact = ContactPoint.objects.get(customer=camille, kind="whatsapp")
    Thread.objects.filter(pk=camille_thread.pk).update(last_whatsapp_inbound_at=timezone.now() - timedelta(days=3))
    failed = Message.objects.create(
        thread=camille_thread,
        direction="outbound",
        status="failed",
        channel="whatsapp",
        contact_point=contact,
        author=alice,
        body="Rappel",
    )
    url = f"/inbox/threads/{camille_thread.pk}/messages/{failed.pk}/retry/"
    assert signed_in(client, bob).post(url).status_code == 404
    html = signed_in(client, alice).post(url).content.decode()
    assert "Camille Martin&#x27;s last WhatsApp message is 3 days old" in html
    assert outbound() == [failed]


def test_reply_to_a_prospect(client, alice, pool_thread):
    """A prospect is answered on the number they wrote from."""
    signed_in(client, alice)
    html = client.get(f"/inbox/threads/{pool_thread.pk}/").content.decode()
    assert f'<option value="whatsapp" selected>WhatsApp · {UNKNOWN}</option>' in html
    client.post(
        f"/inbox/threads/{pool_thread.pk}/reply/", {"body": "Bonjour, je vous rappelle.", "channel": "whatsapp"}
    )
    [message] = outbound()
    assert (message.contact_point_id, message.status) == (pool_thread.prospect_id, "queued")
    assert queued_funcs().count(DELIVER) == 1


def test_actions_need_post(client, alice, camille_thread):
    assert signed_in(client, alice).get(f"/inbox/threads/{camille_thread.pk}/note/").status_code == 405


# --- Security ---------------------------------------------------------------------------


def test_customer_text_is_escaped(client, alice, camille):
    thread = receive(body=XSS).thread
    Customer.objects.filter(pk=camille.pk).update(first_name="<script>alert(2)</script>")
    signed_in(client, alice)
    for url in ("/inbox/", f"/inbox/threads/{thread.pk}/row/", f"/inbox/threads/{thread.pk}/"):
        html = client.get(url).content.decode()
        assert XSS not in html, url
        assert "&lt;img src=x onerror=alert(1)&gt;" in html, url
        assert "<script>alert(2)" not in html and "&lt;script&gt;alert(2)&lt;/script&gt;" in html, url


def test_content_security_policy(client, alice, camille_thread):
    signed_in(client, alice)
    for url in ("/inbox/", f"/inbox/threads/{camille_thread.pk}/", "/accounts/login/"):
        policy = client.get(url)["Content-Security-Policy"]
        directives = dict(directive.strip().split(" ", 1) for directive in policy.split(";"))
        assert directives["script-src"] == "'self'"
        assert directives["style-src"] == "'self'"
        assert directives["frame-ancestors"] == "'none'"
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    admin_policy = client.get("/admin/login/")["Content-Security-Policy"]
    admin_directives = dict(directive.strip().split(" ", 1) for directive in admin_policy.split(";"))
    assert admin_directives["script-src"] == "'self'"  # Django's admin runs no inline script


def test_pages_have_no_inline_script_or_style(client, alice, camille_thread, pool_thread):
    """What the CSP forbids is not used: every script is a file, no style attribute."""
    signed_in(client, alice)
    for url in (
        "/inbox/",
        "/inbox/?tab=pool",
        f"/inbox/threads/{camille_thread.pk}/",
        f"/inbox/threads/{pool_thread.pk}/",
    ):
        html = client.get(url).content.decode()
        assert all('src="' in tag for tag in re.findall(r"<script[^>]*>", html)), url
        assert not re.search(r"\sstyle=", html), url
        assert "<style" not in html, url
        assert re.search(r'<html lang="en">', html)
    client.logout()
    assert not re.search(r"\sstyle=|<script>", client.get("/accounts/login/").content.decode())


# --- Query counts -----------------------------------------------------------------------


def make_threads(advisor: Advisor, count: int) -> None:
    """`count` customers of the advisor, each with an open thread they handle, in four queries."""
    stamp = timezone.now().strftime("%H%M%S%f")
    customers = Customer.objects.bulk_create(
        Customer(
            customer_number=f"B{stamp}{n:05d}",
            first_name=f"Client{n}",
            last_name="Test",
            agency_id=advisor.agency_id,
            dedicated_advisor=advisor,
        )
        for n in range(count)
    )
    now = timezone.now()
    Thread.objects.bulk_create(
        Thread(
            customer=customer,
            dedicated_advisor=advisor,
            agency_id=advisor.agency_id,
            handler=advisor,
            last_inbound_channel="whatsapp",
            last_message_preview=f"Message {n}",
            last_activity_at=now - timedelta(minutes=n),
            waiting_since=now - timedelta(minutes=n),
            unread_count=n % 3,
        )
        for n, customer in enumerate(customers)
    )


# Session, user, advisor, covered colleagues, newest event, the threads, the unread counts.
INBOX_QUERIES = 7


@pytest.mark.parametrize("count", [5, 500])
def test_inbox_list_query_count_does_not_grow_with_threads(client, alice, django_assert_num_queries, count):
    make_threads(alice, count)
    signed_in(client, alice)
    with django_assert_num_queries(INBOX_QUERIES):
        response = client.get("/inbox/")
    assert len(row_ids(response)) == min(count, INBOX_PAGE_SIZE)


def row_order(response) -> list[int]:
    return [int(pk) for pk in re.findall(r'id="thread-row-(\d+)"', response.content.decode())]


def more_link(response) -> str | None:
    match = re.search(r'<p id="thread-list-more"[^>]*><a href="([^"]+)"', response.content.decode())
    return unescape(match.group(1)) if match else None


def test_inbox_pages_follow_each_other_to_the_last_thread(client, alice, django_assert_num_queries):
    """The list shows INBOX_PAGE_SIZE rows and a link to the next ones, which start where the
    page ended (ties on the activity broken by id), at the same cost, until none is left."""
    make_threads(alice, INBOX_PAGE_SIZE * 2 + 7)
    tied = timezone.now() - timedelta(minutes=INBOX_PAGE_SIZE - 1)
    Thread.objects.filter(last_activity_at__gte=tied - timedelta(minutes=3)).filter(
        last_activity_at__lte=tied + timedelta(minutes=3)
    ).update(last_activity_at=tied)
    expected = list(
        Thread.objects.filter(handler=alice).order_by("-last_activity_at", "-pk").values_list("pk", flat=True)
    )
    signed_in(client, alice)
    response = client.get("/inbox/")
    seen = row_order(response)
    assert len(seen) == INBOX_PAGE_SIZE
    pages = 1
    while link := more_link(response):
        # The page's queries but the unread counts, which the page has already.
        with django_assert_num_queries(INBOX_QUERIES - 1):
            response = client.get(link + "&part=rows")
        assert "<html" not in response.content.decode()
        seen += row_order(response)
        pages += 1
    assert seen == expected
    assert pages == 3


def test_a_later_page_without_script_is_the_whole_page(client, alice):
    make_threads(alice, INBOX_PAGE_SIZE + 3)
    signed_in(client, alice)
    response = client.get(more_link(client.get("/inbox/")))
    assert "<html" in response.content.decode()
    assert len(row_order(response)) == 3
    assert more_link(response) is None


def test_a_bad_page_position_shows_the_first_page(client, alice):
    make_threads(alice, 3)
    signed_in(client, alice)
    assert len(row_order(client.get("/inbox/", {"after": "yesterday.12"}))) == 3


@pytest.mark.parametrize("tab", ["pool", "covering", "closed"])
def test_other_tabs_cost_the_same(client, alice, bob, django_assert_num_queries, tab):
    """With a colleague to cover (with none, Django skips the covering query altogether)."""
    make_threads(alice, 20)
    add_deputy(bob, alice)
    Advisor.objects.filter(pk=bob.pk).update(availability=Advisor.Availability.AWAY)
    signed_in(client, alice)
    with django_assert_num_queries(INBOX_QUERIES):
        client.get("/inbox/", {"tab": tab, "q": "Client"})


def make_timeline(thread: Thread, author: Advisor, count: int) -> None:
    contact = thread.customer.contact_points.get(kind="whatsapp")
    now = timezone.now()
    messages = Message.objects.bulk_create(
        Message(
            thread=thread,
            direction="inbound" if n % 2 else "outbound",
            status="received" if n % 2 else "delivered",
            author=None if n % 2 else author,
            channel="whatsapp" if n % 3 else "sms",
            contact_point=contact,
            body=f"Message {n}",
            created_at=now - timedelta(minutes=count - n),
        )
        for n in range(count)
    )
    Attachment.objects.bulk_create(
        Attachment(message=message, content_type="image/jpeg", state="pending") for message in messages[::5]
    )
    Note.objects.bulk_create(
        Note(thread=thread, author=author, body=f"Note {n}", created_at=now - timedelta(minutes=n))
        for n in range(count // 10)
    )


# Session, user, advisor, newest event, covered colleagues, thread, messages, attachments,
# notes, timeline events, their advisors, contact points, deputies, colleagues, unread counts,
# the composer's templates.
THREAD_QUERIES = 16


@pytest.mark.parametrize("count", [10, 100])
def test_thread_page_query_count_does_not_grow_with_messages(
    client, alice, bob, camille_thread, django_assert_num_queries, count
):
    add_deputy(alice, bob)
    Thread.objects.filter(pk=camille_thread.pk).update(unread_count=0)
    make_timeline(camille_thread, alice, count)
    for n in range(count // 10):
        MessageTemplate.objects.create(
            name=f"modele_{n}",
            content_sid=f"HX{n:032d}",
            body="Bonjour {{1}}, c'est {{2}} ({{3}}).",
            variables={"1": "customer.first_name", "2": "advisor.name", "3": "agency.name"},
        )
    signed_in(client, alice)
    with django_assert_num_queries(THREAD_QUERIES):
        response = client.get(f"/inbox/threads/{camille_thread.pk}/")
    assert response.content.decode().count('class="item message') == min(count + 1, TIMELINE_PAGE_SIZE)
    assert response.content.decode().count('class="template-form"') == count // 10


def item_ids(response) -> list[str]:
    return re.findall(r'<li id="(item-[a-z]+-\d+)"', response.content.decode())


def earlier_link(response) -> str | None:
    match = re.search(r'<li id="timeline-earlier"[^>]*><a href="([^"]+)"', response.content.decode())
    return unescape(match.group(1)) if match else None


def test_the_timeline_pages_back_to_the_first_message(client, alice, camille_thread, django_assert_num_queries):
    """The page shows the last TIMELINE_PAGE_SIZE messages with the notes among them, and a
    link to the earlier ones; each earlier part (same cost) meets the next without overlap,
    down to the first message."""
    make_timeline(camille_thread, alice, TIMELINE_PAGE_SIZE * 2 + 5)
    expected = {
        f"item-message-{pk}" for pk in Message.objects.filter(thread=camille_thread).values_list("pk", flat=True)
    }
    expected |= {f"item-note-{pk}" for pk in Note.objects.filter(thread=camille_thread).values_list("pk", flat=True)}
    events = Event.objects.filter(thread=camille_thread, type__in=TIMELINE_EVENT_TYPES)
    expected |= {f"item-event-{pk}" for pk in events.values_list("pk", flat=True)}
    signed_in(client, alice)
    response = client.get(f"/inbox/threads/{camille_thread.pk}/")
    seen = item_ids(response)
    parts = 1
    while link := earlier_link(response):
        # Session, user, advisor, covered colleagues, thread, messages, attachments, notes, events.
        with django_assert_num_queries(9):
            response = client.get(link + "&part=timeline")
        assert "<html" not in response.content.decode()
        seen = item_ids(response) + seen
        parts += 1
    assert parts == 3
    assert len(seen) == len(set(seen))
    assert set(seen) == expected
    assert [item for item in seen if item.startswith("item-message")] == [
        f"item-message-{pk}"
        for pk in Message.objects.filter(thread=camille_thread)
        .order_by("created_at", "pk")
        .values_list("pk", flat=True)
    ]


def test_row_fragment_query_count(client, alice, camille_thread, django_assert_num_queries):
    signed_in(client, alice)
    # Session, user, advisor, covered colleagues, the row.
    with django_assert_num_queries(5):
        client.get(f"/inbox/threads/{camille_thread.pk}/row/")


def test_inside_the_whatsapp_window_templates_stay_folded(client, alice, camille_thread, template):
    """Within 24 h of the customer's last WhatsApp message, free text is the default: templates stay folded."""
    Thread.objects.filter(pk=camille_thread.pk).update(last_whatsapp_inbound_at=timezone.now() - timedelta(hours=1))
    signed_in(client, alice)
    html = client.get(f"/inbox/threads/{camille_thread.pk}/").content.decode()
    assert '<details id="reply-templates" class="panel">' in html


def test_a_new_messages_notice_is_read_by_who_may_see_it(client, alice, bob, camille_thread, django_assert_num_queries):
    """The browser notification's text comes from the server (events carry none), to an advisor
    who may see the thread; anyone else gets a 404."""
    message = Message.objects.get(thread=camille_thread)
    signed_in(client, alice)
    client.get(f"/inbox/messages/{message.pk}/notice/")  # the session is read once
    with django_assert_num_queries(5):  # session, user, advisor, whom they cover, the message with its thread
        response = client.get(f"/inbox/messages/{message.pk}/notice/")
    assert response.json() == {"thread": camille_thread.pk, "title": "Camille Martin", "body": message.body}
    assert response.headers["Cache-Control"] == "private, no-store"
    assert signed_in(Client(), bob).get(f"/inbox/messages/{message.pk}/notice/").status_code == 404
