import itertools
import logging

import pytest

from conversations.models import Message, Thread
from conversations.services import SendRefused, message_send
from conversations.services.customers import contact_point_set_consent
from crm.models import ContactPoint
from events.models import Event
from tests import twilio

STATUS = "/webhooks/twilio/status/"
# Through the ASGI application, whose webhook route stores from its own threads: committed rows.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def outbound(camille, alice):
    thread = Thread.objects.create(
        customer=camille, dedicated_advisor=camille.dedicated_advisor, agency=camille.agency, handler=alice
    )
    return Message.objects.create(
        thread=thread,
        direction="outbound",
        channel="whatsapp",
        contact_point=camille.contact_points.get(kind="whatsapp"),
        author=alice,
        body="Bonjour Camille, votre carte est débloquée.",
        provider="twilio",
        provider_message_id=twilio.new_sid(),
        status="sent",
    )


def callback(message, status, query="", **extra):
    params = twilio.status_callback(sid=message.provider_message_id, status=status, **extra)
    return twilio.post_signed(STATUS, params, query=query)


def test_status_moves_forward(outbound):
    """delivered then read: the message ends read, with both timestamps."""
    assert callback(outbound, "delivered").status_code == 204
    assert callback(outbound, "read").status_code == 204
    outbound.refresh_from_db()
    assert outbound.status == "read"
    assert outbound.delivered_at is not None and outbound.read_at is not None
    assert list(Event.objects.filter(type="message.status").values_list("payload__status", flat=True)) == [
        "delivered",
        "read",
    ]


@pytest.mark.parametrize("order", list(itertools.permutations(["sent", "delivered", "read"])))
def test_callbacks_in_any_order_end_at_the_furthest_status(outbound, order):
    """Twilio does not order callbacks: whatever the order, the message ends at 'read'."""
    Message.objects.filter(pk=outbound.pk).update(status="sending")
    for status in order:
        assert callback(outbound, status).status_code == 204
    outbound.refresh_from_db()
    assert outbound.status == "read"
    assert outbound.read_at is not None and outbound.delivered_at is not None and outbound.sent_at is not None


def test_late_sent_after_read_changes_nothing(outbound):
    """A late 'sent' after 'read' leaves the message read and publishes nothing."""
    callback(outbound, "read")
    events_before = Event.objects.count()
    callback(outbound, "sent")
    outbound.refresh_from_db()
    assert outbound.status == "read"
    assert Event.objects.count() == events_before


def test_failure_is_terminal_and_keeps_its_error_code(outbound):
    """failed keeps ErrorCode and the channel's reason; later callbacks don't resurrect it."""
    callback(outbound, "failed", ErrorCode="63016", ChannelStatusMessage="Outside the 24h window")
    callback(outbound, "delivered")
    outbound.refresh_from_db()
    assert outbound.status == "failed"
    assert outbound.error_code == "63016"
    assert outbound.error_message == "Outside the 24h window"
    assert outbound.failed_at is not None


def test_undelivered_is_terminal(outbound):
    """undelivered is terminal too."""
    callback(outbound, "undelivered", ErrorCode="30008")
    callback(outbound, "read")
    outbound.refresh_from_db()
    assert (outbound.status, outbound.error_code) == ("undelivered", "30008")


def test_failed_after_read_is_ignored(outbound):
    """A message the customer read cannot fail afterwards."""
    callback(outbound, "read")
    callback(outbound, "failed", ErrorCode="30008")
    outbound.refresh_from_db()
    assert outbound.status == "read"
    assert outbound.error_code == ""


def test_unknown_message_sid_is_answered_and_logged(db, caplog):
    """A callback for a MessageSid we never sent is a 2xx (so Twilio stops) and a log line."""
    params = twilio.status_callback(sid=twilio.new_sid(), status="delivered")
    with caplog.at_level(logging.INFO):
        response = twilio.post_signed(STATUS, params)
    assert response.status_code == 204
    assert "unknown message" in caplog.text


def test_callback_before_the_sid_was_saved_matches_our_id(outbound):
    """Our own message id in the callback URL matches a message whose SID we never saved."""
    sid = outbound.provider_message_id
    Message.objects.filter(pk=outbound.pk).update(provider_message_id=None, status="sending")
    params = twilio.status_callback(sid=sid, status="delivered")
    response = twilio.post_signed(STATUS, params, query=f"m={outbound.pk}")
    assert response.status_code == 204
    outbound.refresh_from_db()
    assert (outbound.status, outbound.provider_message_id) == ("delivered", sid)


def test_our_id_with_a_different_sid_is_not_applied(outbound):
    """A callback naming our id but another message's SID touches nothing."""
    params = twilio.status_callback(sid=twilio.new_sid(), status="failed", ErrorCode="30008")
    twilio.post_signed(STATUS, params, query=f"m={outbound.pk}")
    outbound.refresh_from_db()
    assert outbound.status == "sent"


def test_status_callback_signature_is_verified(outbound):
    """A forged status callback is a 403 and changes nothing."""
    params = twilio.status_callback(sid=outbound.provider_message_id, status="failed")
    response = twilio.post_signed(STATUS, params, signature="Zm9yZ2Vk")
    assert response.status_code == 403
    outbound.refresh_from_db()
    assert outbound.status == "sent"


def test_status_callback_without_status_is_a_400(outbound):
    """A signed callback without MessageStatus is a 400 with its reason."""
    params = twilio.status_callback(sid=outbound.provider_message_id, status="")
    params.pop("MessageStatus")
    params.pop("SmsStatus")
    response = twilio.post_signed(STATUS, params)
    assert response.status_code == 400
    assert response.content == b"MessageStatus is missing."


def test_unknown_status_value_changes_nothing(outbound):
    """A status value we don't know (Twilio adds some) is accepted and ignored."""
    assert callback(outbound, "partially_delivered").status_code == 204
    outbound.refresh_from_db()
    assert outbound.status == "sent"


def test_failure_without_twilio_text_gets_the_advisor_reason(outbound):
    """A failed callback with only an ErrorCode stores the same readable reason as a refused send."""
    callback(outbound, "undelivered", ErrorCode="63016")
    outbound.refresh_from_db()
    assert outbound.error_code == "63016"
    assert outbound.error_message == "Outside WhatsApp's 24-hour window: send an approved template."


def test_undelivered_21610_opts_the_contact_point_out(outbound):
    """Twilio reports 21610 in a callback: the contact point is opted out as when Twilio refuses the
    send, the change is published, and the next reply there is refused for consent."""
    assert callback(outbound, "undelivered", ErrorCode="21610").status_code == 204
    contact = ContactPoint.objects.get(pk=outbound.contact_point_id)
    assert (contact.consent, contact.consent_source) == ("opted_out", "Twilio error 21610: the recipient unsubscribed")
    event = Event.objects.get(type="consent.changed")
    assert (event.thread_id, event.payload["contact_point"], event.payload["consent"]) == (
        outbound.thread_id,
        contact.pk,
        "opted_out",
    )

    with pytest.raises(SendRefused) as refused:
        message_send(thread=outbound.thread, author=outbound.author, body="Vous êtes là ?", channel="whatsapp")
    assert refused.value.code == "opted_out"
    assert "Twilio error 21610: the recipient unsubscribed" in refused.value.message


def test_replayed_21610_does_not_undo_a_later_opt_in(outbound):
    """Only the callback that fails the message opts out: a replay after the customer wrote START changes nothing."""
    callback(outbound, "undelivered", ErrorCode="21610")
    contact_point_set_consent(contact_point=outbound.contact_point, consent="opted_in", source="START")
    callback(outbound, "undelivered", ErrorCode="21610")
    assert ContactPoint.objects.get(pk=outbound.contact_point_id).consent == "opted_in"


def test_other_failures_leave_consent_alone(outbound):
    """A failure with another code does not touch the contact point's consent."""
    callback(outbound, "undelivered", ErrorCode="30008")
    assert ContactPoint.objects.get(pk=outbound.contact_point_id).consent != "opted_out"
    assert not Event.objects.filter(type="consent.changed").exists()
