import json
import logging

import pytest

from conversations.models import Attachment, Message, Thread
from conversations.webhooks import STATUS_PATH
from crm.models import ContactPoint
from events.models import Event
from tests import twilio
from tests.queue import queued_funcs

MESSAGES = "/webhooks/twilio/messages/"
# Through the ASGI application, whose webhook route stores from its own threads: committed rows.
pytestmark = pytest.mark.django_db(transaction=True)


def test_whatsapp_text_lands_in_the_dedicated_advisors_thread(camille, alice):
    """A signed WhatsApp message is stored once, in the customer's thread, handled by their advisor."""
    params = twilio.whatsapp_text(body="Bonjour Alice, ma carte est bloquée")
    response = twilio.post_signed(MESSAGES, params)

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/xml"
    assert b"<Response/>" in response.content
    message = Message.objects.get()
    assert message.body == "Bonjour Alice, ma carte est bloquée"
    assert message.channel == "whatsapp"
    assert message.direction == "inbound"
    assert message.status == "received"
    assert message.provider_message_id == params["MessageSid"]
    assert message.profile_name == "Camille"
    assert message.thread.dedicated_advisor == alice, "the new thread carries its customer's advisor"
    assert message.wa_id == "33612345678"
    assert message.raw["ChannelMetadata"].startswith("{")
    assert message.contact_point.customer == camille
    thread = message.thread
    assert thread.customer == camille
    assert thread.handler == alice
    assert str(thread.routing_reason) == "dedicated advisor"
    assert thread.unread_count == 1
    assert thread.last_inbound_channel == "whatsapp"
    assert thread.last_whatsapp_inbound_at == message.created_at
    assert thread.waiting_since == message.created_at
    assert thread.last_message_preview == "Bonjour Alice, ma carte est bloquée"


def test_sms_and_whatsapp_share_one_thread(camille):
    """The customer switches channel at will: SMS and WhatsApp land in one thread."""
    twilio.post_signed(MESSAGES, twilio.whatsapp_text(body="Bonjour"))
    twilio.post_signed(MESSAGES, twilio.sms(body="Je vous écris par SMS"))

    thread = Thread.objects.get()
    assert [m.channel for m in thread.messages.order_by("id")] == ["whatsapp", "sms"]
    assert thread.unread_count == 2
    assert thread.last_inbound_channel == "sms"
    assert thread.last_sms_inbound_at is not None and thread.last_whatsapp_inbound_at is not None


def test_duplicate_message_sid_is_stored_once_and_still_answered_200(camille):
    """Duplicate MessageSid is stored once; the replay still gets a 200 and TwiML."""
    params = twilio.whatsapp_text(body="Bonjour")
    first = twilio.post_signed(MESSAGES, params)
    second = twilio.post_signed(MESSAGES, params)

    assert first.status_code == second.status_code == 200
    assert b"<Response/>" in second.content
    assert Message.objects.count() == 1
    assert Thread.objects.get().unread_count == 1
    assert Event.objects.filter(type="message.created").count() == 1


def test_unknown_extra_parameters_are_kept_not_fatal(camille):
    """Parameters Twilio adds later never break the webhook; they are kept for audit."""
    params = twilio.whatsapp_text(body="Bonjour", SomethingTwilioAddsIn2027="yes", ReferralBody="Pub")
    assert twilio.post_signed(MESSAGES, params).status_code == 200
    assert Message.objects.get().raw["SomethingTwilioAddsIn2027"] == "yes"


def test_whatsapp_image_stores_a_pending_attachment_and_enqueues_its_download(camille):
    """Media rows are stored at once; the download is a task enqueued with the message."""
    params = twilio.whatsapp_image()
    assert twilio.post_signed(MESSAGES, params).status_code == 200

    attachment = Attachment.objects.get()
    assert attachment.state == "pending"
    assert attachment.content_type == "image/jpeg"
    assert attachment.original_url == params["MediaUrl0"]
    assert queued_funcs() == ["conversations.tasks.attachment_download"]
    assert Thread.objects.get().last_message_preview == "📎 Attachment"


def test_location_is_kept(camille):
    """A shared location keeps its coordinates, address and label."""
    twilio.post_signed(MESSAGES, twilio.whatsapp_location())
    message = Message.objects.get()
    assert (float(message.latitude), float(message.longitude)) == (45.757814, 4.832011)
    assert message.location_address == "Place Bellecour, 69002 Lyon"
    assert message.location_label == "Agence Bellecour"


def test_button_reply_is_kept(camille):
    """A quick-reply button keeps its text and payload."""
    twilio.post_signed(MESSAGES, twilio.whatsapp_button())
    message = Message.objects.get()
    assert (message.button_text, message.button_payload) == ("Oui, rappelez-moi", "callback_yes")


def test_reply_to_a_known_message_is_linked(camille):
    """OriginalRepliedMessageSid links to our message when we have it."""
    first = twilio.whatsapp_text(body="Première question")
    twilio.post_signed(MESSAGES, first)
    twilio.post_signed(
        MESSAGES,
        twilio.whatsapp_text(
            body="Suite", OriginalRepliedMessageSid=first["MessageSid"], OriginalRepliedMessageSender="x"
        ),
    )
    reply = Message.objects.get(body="Suite")
    assert reply.replied_to == Message.objects.get(body="Première question")


def test_forged_signature_is_refused_and_nothing_is_stored(camille, caplog):
    """A wrong signature is a 403, nothing is stored, and the warning never contains the body."""
    params = twilio.whatsapp_text(body="secret banking details")
    with caplog.at_level(logging.WARNING):
        response = twilio.post_signed(MESSAGES, params, signature="bm90IGEgc2lnbmF0dXJl")
    assert response.status_code == 403
    assert Message.objects.count() == 0
    assert "signature" in caplog.text
    assert "secret banking details" not in caplog.text


def test_missing_signature_is_refused(camille):
    """No X-Twilio-Signature header at all is a 403."""
    params = twilio.whatsapp_text()
    response = twilio.request("POST", MESSAGES, params)
    assert response.status_code == 403
    assert Message.objects.count() == 0


def test_signature_from_another_auth_token_is_refused(camille):
    """A request signed with someone else's auth token is refused."""
    params = twilio.whatsapp_text()
    signature = twilio.signature_for(MESSAGES, params, token="another-accounts-token")
    assert twilio.post_signed(MESSAGES, params, signature=signature).status_code == 403


def test_signature_over_another_url_is_refused(camille, settings):
    """A signature computed for another URL (a replay to us) is refused."""
    params = twilio.whatsapp_text()
    signature = twilio.signature_for("/webhooks/twilio/other/", params)
    assert twilio.post_signed(MESSAGES, params, signature=signature).status_code == 403


def test_tampered_body_is_refused(camille):
    """Changing one parameter after signing breaks the signature."""
    params = twilio.whatsapp_text(body="Virement de 10 €")
    signature = twilio.signature_for(MESSAGES, params)
    params["Body"] = "Virement de 10 000 €"
    assert twilio.post_signed(MESSAGES, params, signature=signature).status_code == 403


def test_signature_covers_the_public_url_behind_a_proxy(camille, settings):
    """The URL is rebuilt from PUBLIC_BASE_URL, so a request through a TLS proxy verifies."""
    settings.PUBLIC_BASE_URL = "https://banque.example.fr/attitre-proxy"
    params = twilio.whatsapp_text()
    # The proxy strips its prefix; the app sees /webhooks/…; Twilio signed the public URL.
    assert twilio.post_signed(MESSAGES, params).status_code == 200


def test_unconfigured_auth_token_refuses_everything(camille, settings):
    """Without TWILIO_AUTH_TOKEN no request can be verified, so all are refused."""
    params = twilio.whatsapp_text()
    signature = twilio.signature_for(MESSAGES, params)
    settings.TWILIO_AUTH_TOKEN = ""
    assert twilio.post_signed(MESSAGES, params, signature=signature).status_code == 403


@pytest.mark.parametrize(
    ("missing", "reason"),
    [("MessageSid", b"MessageSid is missing."), ("From", b"From is missing.")],
)
def test_signed_but_malformed_request_is_a_400_with_its_reason(camille, missing, reason):
    """A signed request without MessageSid or From is a 400 that says what is missing."""
    params = twilio.whatsapp_text()
    for key in [missing, "SmsMessageSid", "SmsSid"] if missing == "MessageSid" else [missing]:
        params.pop(key)
    response = twilio.post_signed(MESSAGES, params)
    assert response.status_code == 400
    assert response.content == reason
    assert Message.objects.count() == 0


def test_unparseable_sender_is_a_400(camille):
    """A From that is no phone number is refused with a reason, nothing stored."""
    params = twilio.whatsapp_text(From="whatsapp:not-a-number")
    response = twilio.post_signed(MESSAGES, params)
    assert response.status_code == 400
    assert response.content.startswith(b"From is not a phone number")
    assert ContactPoint.objects.filter(customer=None).count() == 0


def test_get_is_not_allowed(db):
    """Only POST reaches the webhook."""
    assert twilio.request("GET", MESSAGES).status_code == 405


@pytest.mark.parametrize(
    ("body", "consent", "change"),
    [
        ("STOP", "opted_out", "opted_out"),
        ("stop", "opted_out", "opted_out"),
        (" Arrêt ", "opted_out", "opted_out"),
        ("ARRET", "opted_out", "opted_out"),
        ("unsubscribe", "opted_out", "opted_out"),
        ("STOPALL", "opted_out", "opted_out"),
        ("End", "opted_out", "opted_out"),
        ("QUIT", "opted_out", "opted_out"),
        ("cancel", "opted_out", "opted_out"),
        ("OPTOUT", "opted_out", "opted_out"),
        ("Stop sending me the old card please", "opted_in", ""),
    ],
)
def test_opt_out_keywords(camille, body, consent, change):
    """A whole-message opt-out keyword, in any case, opts the contact point out; the message still lands."""
    twilio.post_signed(MESSAGES, twilio.whatsapp_text(body=body))
    contact = ContactPoint.objects.get(customer=camille, kind="whatsapp")
    message = Message.objects.get()
    assert contact.consent == consent
    assert message.consent_change == change
    assert message.body == body
    if change:
        assert message.provider_message_id in contact.consent_source
        assert Event.objects.filter(type="consent.changed").count() == 1
        # The SMS contact point is not touched by a WhatsApp STOP.
        assert ContactPoint.objects.get(customer=camille, kind="sms").consent == "opted_in"


@pytest.mark.parametrize("body", ["START", "unstop", "Yes"])
def test_opt_in_keywords(camille, body):
    """START, UNSTOP or YES opts a previously opted-out contact point back in."""
    twilio.post_signed(MESSAGES, twilio.sms(body="STOP"))
    twilio.post_signed(MESSAGES, twilio.sms(body=body))
    contact = ContactPoint.objects.get(customer=camille, kind="sms")
    assert contact.consent == "opted_in"
    assert list(Message.objects.values_list("consent_change", flat=True).order_by("id")) == ["opted_out", "opted_in"]


def test_yes_from_an_opted_in_customer_changes_nothing(camille):
    """YES from someone already opted in is just a message."""
    twilio.post_signed(MESSAGES, twilio.sms(body="YES"))
    assert Message.objects.get().consent_change == ""
    assert Event.objects.filter(type="consent.changed").count() == 0


def test_closed_thread_reopens(camille):
    """A new message reopens a closed thread."""
    twilio.post_signed(MESSAGES, twilio.whatsapp_text())
    Thread.objects.update(status="closed")
    twilio.post_signed(MESSAGES, twilio.whatsapp_text(body="Encore moi"))
    assert Thread.objects.get().status == "open"


def test_events_are_appended_in_the_same_transaction(camille, alice):
    """Storing a message appends message.created (and thread.assigned on first routing) to the log,
    with the message's id and metadata but not what the customer wrote."""
    twilio.post_signed(MESSAGES, twilio.whatsapp_text(body="Bonjour"))
    events = list(Event.objects.order_by("id"))
    assert [e.type for e in events] == ["thread.assigned", "message.created"]
    created = events[1]
    message = Message.objects.get()
    assert created.payload["message"]["id"] == message.pk
    assert "Bonjour" not in json.dumps(created.payload)
    assert "Camille" not in json.dumps(created.payload)
    assert created.payload["thread_summary"]["handler"] == alice.pk
    assert created.thread == Thread.objects.get()


def test_nul_character_in_a_message_is_kept_visibly(camille):
    """PostgreSQL cannot store NUL in text: it becomes U+FFFD, and the message is stored
    (before, the webhook failed with a 500 on PostgreSQL and the message was lost)."""
    params = twilio.whatsapp_text(body="Avant\x00après")
    params["Bizarre\x00"] = "valeur\x00"
    response = twilio.post_signed(MESSAGES, params)

    assert response.status_code == 200
    message = Message.objects.get()
    assert message.body == "Avant\ufffdaprès"
    assert message.raw["Bizarre\ufffd"] == "valeur\ufffd"


def test_a_request_recut_across_a_parameter_boundary_is_refused(camille):
    """Twilio's signature concatenates names and values without separators: a captured
    request re-cut as `MessageSid=SM…MessageTypetext` (MessageType removed) keeps its
    signature. Its identifier is no Twilio identifier: a 400 naming it, and the message
    stays stored once."""
    params = twilio.whatsapp_text(body="Virement de 500 €")
    assert twilio.post_signed(MESSAGES, params).status_code == 200
    signature = twilio.signature_for(MESSAGES, params)

    recut = {key: value for key, value in params.items() if key != "MessageType"}
    recut["MessageSid"] = params["MessageSid"] + "MessageType" + params["MessageType"]
    assert twilio.signature_for(MESSAGES, recut) == signature  # the signature alone cannot tell

    response = twilio.post_signed(MESSAGES, recut, signature=signature)
    assert response.status_code == 400
    assert response.content == b"MessageSid is not a Twilio identifier."
    assert Message.objects.filter(body="Virement de 500 €").count() == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("MessageSid", "SM123"),
        ("MessageSid", "XX" + "0" * 32),
        ("AccountSid", "AC" + "0" * 31 + "z"),
        ("MessagingServiceSid", "MGnot-hex"),
        ("OriginalRepliedMessageSid", "SM" + "0" * 32 + "Body"),
        ("WaId", "33612345678Body"),
    ],
)
def test_every_identifier_is_checked_against_twilios_format(camille, field, value):
    """Each identifier Twilio sends, when present, has Twilio's format (two letters and 32
    hexadecimal digits, digits for a WhatsApp id); anything else is a 400 that names it,
    nothing stored."""
    params = twilio.whatsapp_text(**{field: value})
    response = twilio.post_signed(MESSAGES, params)
    assert response.status_code == 400
    assert field.encode() in response.content
    assert Message.objects.count() == 0


def test_a_status_callback_with_a_malformed_identifier_is_refused(camille):
    """The same check on status callbacks: a re-cut MessageSid is a 400."""
    params = twilio.status_callback(sid=twilio.new_sid() + "MessageStatusread", status="delivered")
    response = twilio.post_signed(STATUS_PATH, params)
    assert response.status_code == 400
    assert response.content == b"MessageSid is not a Twilio identifier."
