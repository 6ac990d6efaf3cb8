"""Sending a reply: what is refused (nothing stored, nothing enqueued) and what is stored and enqueued."""

from datetime import timedelta
from pathlib import Path, PurePath

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import OperationalError, transaction
from django.utils import timezone
from django_q.models import OrmQ

from conversations.models import Attachment, Message, MessageTemplate, Thread
from conversations.services import SendRefused, message_send, outbound
from conversations.templating import template_variables_for
from crm.models import ContactPoint
from events.models import Event
from tests import twilio
from tests.queue import queued_funcs

pytestmark = pytest.mark.django_db


@pytest.fixture
def thread(camille):
    """Camille wrote on WhatsApp just now; her thread is Alice's."""
    twilio.receive(twilio.whatsapp_text(body="Bonjour"))
    OrmQ.objects.all().delete()
    return Thread.objects.get(customer=camille)


@pytest.fixture
def template(db):
    return MessageTemplate.objects.create(
        name="reprise_contact",
        language="fr",
        content_sid="HX" + "a" * 32,
        body="Bonjour {{1}}, c'est {{2}}, votre conseiller {{3}}. Pouvons-nous reprendre notre échange ?",
        variables={"1": "customer.first_name", "2": "advisor.name", "3": "agency.name"},
    )


def stored_files() -> list[str]:
    return sorted(path.name for path in Path(settings.MEDIA_ROOT).rglob("*") if path.is_file())


def refused(code: str, **kwargs) -> SendRefused:
    with pytest.raises(SendRefused) as caught:
        message_send(**kwargs)
    assert caught.value.code == code
    assert Message.objects.filter(direction="outbound").count() == 0
    assert OrmQ.objects.count() == 0
    assert stored_files() == []
    return caught.value


def pdf(name: str = "releve.pdf") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, b"%PDF-1.4 " + b"x" * 100, content_type="application/pdf")


def age_whatsapp(thread: Thread, delta: timedelta) -> None:
    Thread.objects.filter(pk=thread.pk).update(last_whatsapp_inbound_at=timezone.now() - delta)
    thread.refresh_from_db()


def test_reply_is_stored_queued_and_its_delivery_enqueued(thread, alice):
    """A reply is stored queued, outbound, by the advisor, to the WhatsApp contact, with its delivery task."""
    message = message_send(thread=thread, author=alice, body="  Je regarde tout de suite.  ")
    message.refresh_from_db()
    assert (message.direction, message.status, message.channel, message.provider) == (
        "outbound",
        "queued",
        "whatsapp",
        "twilio",
    )
    assert message.body == "Je regarde tout de suite."
    assert message.author == alice
    assert message.contact_point == ContactPoint.objects.get(kind="whatsapp", address="+33612345678")
    assert message.provider_message_id is None
    assert queued_funcs() == ["conversations.tasks.message_deliver"]


def test_reply_moves_the_thread_to_waiting_on_the_customer(thread, alice):
    """The thread shows the reply, stops waiting for the advisor and waits on the customer."""
    assert thread.waiting_since is not None
    message = message_send(thread=thread, author=alice, body="Je regarde.")
    thread.refresh_from_db()
    assert thread.status == "waiting"
    assert thread.waiting_since is None
    assert thread.last_message_preview == "Je regarde."
    assert thread.last_activity_at == message.created_at
    event = Event.objects.filter(type="message.created").latest("id")
    assert event.payload["message"]["id"] == message.pk
    assert event.payload["message"]["status"] == "queued"
    assert event.payload["thread_summary"]["status"] == "waiting"


def test_default_channel_is_the_customers_last_and_another_can_be_chosen(thread, alice):
    """The reply goes where the customer last wrote (SMS here) unless the advisor picks another channel."""
    twilio.receive(twilio.sms(body="Par SMS"))
    thread.refresh_from_db()
    by_default = message_send(thread=thread, author=alice, body="Réponse")
    chosen = message_send(thread=thread, author=alice, body="Réponse", channel="whatsapp")
    assert (by_default.channel, by_default.contact_point.kind) == ("sms", "sms")
    assert (chosen.channel, chosen.contact_point.kind) == ("whatsapp", "whatsapp")


def test_a_send_in_a_rolled_back_transaction_enqueues_nothing(thread, alice):
    """The task is written with the message: when the caller's transaction rolls back, there is neither."""
    with pytest.raises(RuntimeError), transaction.atomic():
        message_send(thread=thread, author=alice, body="Jamais envoyé")
        assert OrmQ.objects.count() == 1
        raise RuntimeError("the caller fails after sending")
    assert OrmQ.objects.count() == 0
    assert not Message.objects.filter(direction="outbound").exists()


def test_empty_body_is_refused(thread, alice):
    """Whitespace only is empty."""
    error = refused("empty_body", thread=thread, author=alice, body=" \n ")
    assert "Write a message" in error.messages[0]


def test_body_longer_than_1600_characters_is_refused(thread, alice):
    """1,600 characters go; 1,601 are refused, saying how long it is."""
    message_send(thread=thread, author=alice, body="x" * 1600)
    Message.objects.all().filter(direction="outbound").delete()
    OrmQ.objects.all().delete()
    error = refused("body_too_long", thread=thread, author=alice, body="x" * 1601)
    assert "1601" in error.messages[0]


def test_whatsapp_free_text_at_23_59_is_accepted(thread, alice):
    """Inside WhatsApp's 24-hour window, free text goes."""
    age_whatsapp(thread, timedelta(hours=23, minutes=59))
    assert message_send(thread=thread, author=alice, body="Encore à temps").status == "queued"


def test_whatsapp_free_text_at_24_01_is_refused_saying_how_old(thread, alice):
    """Past 24 hours only a template may go, and the advisor is told why."""
    age_whatsapp(thread, timedelta(hours=24, minutes=1))
    error = refused("outside_whatsapp_window", thread=thread, author=alice, body="Trop tard")
    assert error.messages == [
        "Camille Martin's last WhatsApp message is 24 h old; WhatsApp only allows an approved template now."
    ]


def test_whatsapp_window_message_gives_the_age(thread, alice):
    """26 hours old reads "26 h old"."""
    age_whatsapp(thread, timedelta(hours=26, minutes=10))
    error = refused("outside_whatsapp_window", thread=thread, author=alice, body="Trop tard")
    assert "is 26 h old" in error.messages[0]


def test_whatsapp_without_any_message_from_the_customer_is_refused(thread, alice):
    """No WhatsApp message from the customer ever: no window at all."""
    Thread.objects.filter(pk=thread.pk).update(last_whatsapp_inbound_at=None)
    thread.refresh_from_db()
    error = refused("outside_whatsapp_window", thread=thread, author=alice, body="Bonjour", channel="whatsapp")
    assert "has not written on WhatsApp" in error.messages[0]


def test_sms_has_no_24_hour_window(thread, alice):
    """The window is WhatsApp's rule only."""
    age_whatsapp(thread, timedelta(days=10))
    assert message_send(thread=thread, author=alice, body="Par SMS", channel="sms").channel == "sms"


def test_opted_out_contact_point_is_refused(thread, alice):
    """A customer who wrote STOP gets nothing on that channel, and the advisor is told."""
    ContactPoint.objects.filter(kind="whatsapp").update(consent="opted_out", consent_source="keyword “STOP”")
    error = refused("opted_out", thread=thread, author=alice, body="Bonjour")
    assert "Camille Martin opted out of WhatsApp messages" in error.messages[0]


def test_channel_without_contact_point_is_refused(thread, alice):
    """No SMS number on file: refused, naming the channel."""
    ContactPoint.objects.filter(kind="sms").delete()
    error = refused("no_contact_point", thread=thread, author=alice, body="Bonjour", channel="sms")
    assert error.messages == ["Camille Martin has no SMS number; choose another channel."]


def test_a_web_chat_reply_needs_the_customer_to_have_opened_the_chat(thread, alice):
    """A customer who never opened the bank's chat has no web chat address: refused."""
    error = refused("no_contact_point", thread=thread, author=alice, body="Bonjour", channel="webchat")
    assert error.messages == ["Camille Martin has no Web chat address; choose another channel."]


def test_an_email_reply_needs_an_email_address(thread, alice):
    """A customer without an email address: refused, before anything is stored."""
    error = refused("no_contact_point", thread=thread, author=alice, body="Bonjour", channel="email", subject="x")
    assert error.messages == ["Camille Martin has no Email address; choose another channel."]


def test_whatsapp_attachment_is_stored_with_the_message(thread, alice):
    """An accepted file is stored and listed with the message."""
    message = message_send(thread=thread, author=alice, body="Votre relevé", attachments=[pdf()])
    attachment = Attachment.objects.get(message=message)
    assert (attachment.content_type, attachment.state, attachment.size) == ("application/pdf", "stored", 109)
    assert attachment.file.name.startswith("attachments/") and attachment.file.name.endswith("-0.pdf")
    assert stored_files() == [PurePath(attachment.file.name).name]
    assert attachment.file.read() == b"%PDF-1.4 " + b"x" * 100


def test_a_reply_refused_under_the_lock_leaves_no_file(thread, alice):
    """The files are stored before the thread is locked; a refusal found under the lock
    (here: WhatsApp's window closed) deletes them again."""
    age_whatsapp(thread, timedelta(hours=30))
    refused("outside_whatsapp_window", thread=thread, author=alice, body="Votre relevé", attachments=[pdf()])


def test_a_reply_whose_transaction_fails_leaves_no_file(thread, alice, monkeypatch):
    """The database fails after the files were stored (here: enqueueing the delivery): the
    transaction rolls back and the files are deleted; the error reaches the caller."""

    def broken_queue(message_id, **options):
        raise OperationalError("the database went away")

    monkeypatch.setattr(outbound, "_enqueue_delivery", broken_queue)
    photos = [SimpleUploadedFile(f"{n}.jpg", b"\xff\xd8\xff", content_type="image/jpeg") for n in (1, 2)]
    with pytest.raises(OperationalError):
        message_send(thread=thread, author=alice, body="Deux photos", attachments=photos, channel="sms")
    assert not Message.objects.filter(direction="outbound").exists()
    assert not Attachment.objects.exists()
    assert stored_files() == []


def test_attachment_type_whatsapp_refuses(thread, alice):
    """An executable is not a WhatsApp attachment."""
    exe = SimpleUploadedFile("outil.exe", b"MZ", content_type="application/x-msdownload")
    error = refused("attachment_type", thread=thread, author=alice, body="Tenez", attachments=[exe])
    assert "outil.exe" in error.messages[0]


def test_whatsapp_image_over_5_mb_is_refused(thread, alice):
    """WhatsApp images stop at 5 MB."""
    big = SimpleUploadedFile("photo.jpg", b"\xff" * (5 * 1024 * 1024 + 1), content_type="image/jpeg")
    refused("attachment_too_large", thread=thread, author=alice, attachments=[big])


def test_sms_accepts_only_images(thread, alice):
    """MMS carries images; a PDF by SMS is refused."""
    pdf = SimpleUploadedFile("releve.pdf", b"%PDF", content_type="application/pdf")
    refused("attachment_type", thread=thread, author=alice, attachments=[pdf], channel="sms")


def test_template_variables_are_prefilled_from_the_crm(thread, alice, template):
    """{{1}} the customer's first name, {{2}} the advisor's name, {{3}} the agency's name."""
    assert template_variables_for(template=template, thread=thread, advisor=alice) == {
        "1": "Camille",
        "2": "Alice Durand",
        "3": "Agence Lyon Bellecour",
    }


def test_template_goes_outside_the_window_with_prefilled_variables(thread, alice, template):
    """Outside the 24-hour window an approved template is sent, variables pre-filled and stored."""
    age_whatsapp(thread, timedelta(hours=30))
    message = message_send(thread=thread, author=alice, template=template)
    assert message.template == template
    assert message.template_variables == {"1": "Camille", "2": "Alice Durand", "3": "Agence Lyon Bellecour"}
    assert message.body == (
        "Bonjour Camille, c'est Alice Durand, votre conseiller Agence Lyon Bellecour. "
        "Pouvons-nous reprendre notre échange ?"
    )


def test_template_with_a_blank_variable_is_refused(thread, alice, template):
    """Every {{n}} must be filled."""
    error = refused(
        "template_variables", thread=thread, author=alice, template=template, variables={"1": "Camille", "2": ""}
    )
    assert "{{2}}" in error.messages[0]


def test_template_variable_with_a_line_break_is_refused(thread, alice, template):
    """WhatsApp refuses line breaks in template parameters."""
    refused(
        "template_variables",
        thread=thread,
        author=alice,
        template=template,
        variables={"1": "Camille\nMartin", "2": "Alice", "3": "Bellecour"},
    )


def test_inactive_template_is_refused(thread, alice, template):
    """A template no longer approved is not sent."""
    template.is_active = False
    template.save()
    refused("template_inactive", thread=thread, author=alice, template=template)


def test_send_refused_is_a_validation_error(thread, alice):
    """Callers that handle ValidationError (forms, the API) handle refusals too."""
    from django.core.exceptions import ValidationError

    assert issubclass(SendRefused, ValidationError)
