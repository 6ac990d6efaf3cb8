"""Conversation rows for the admin tests, created directly: the admin only reads them."""

import factory

from conversations.models import Message, MessageTemplate, Note, Thread
from events.models import Event
from tests.factories import AdvisorFactory, CustomerFactory


class ThreadFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Thread

    customer = factory.SubFactory(CustomerFactory)
    agency = factory.LazyAttribute(lambda o: o.customer.agency)
    handler = factory.LazyAttribute(lambda o: o.customer.dedicated_advisor)
    routing_reason_code = "dedicated"


class InboundMessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Message

    thread = factory.SubFactory(ThreadFactory)
    direction = Message.Direction.INBOUND
    channel = "whatsapp"
    contact_point = factory.LazyAttribute(lambda o: o.thread.customer.contact_points.get(kind=o.channel))
    body = "Bonjour, j'ai une question sur mon prêt."
    status = Message.Status.RECEIVED


class NoteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Note

    thread = factory.SubFactory(ThreadFactory)
    author = factory.SubFactory(AdvisorFactory)
    body = "Rappeler jeudi."


class MessageTemplateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = MessageTemplate

    name = factory.Sequence(lambda n: f"template_{n}")
    content_sid = factory.Sequence(lambda n: f"HX{n:032d}")
    body = "Bonjour {{1}}, votre conseiller vous répond bientôt."
    variables = factory.LazyFunction(lambda: {"1": "customer.first_name"})


class EventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Event

    type = Event.Type.THREAD_UPDATED
    thread = factory.SubFactory(ThreadFactory)
    agency = factory.LazyAttribute(lambda o: o.thread.agency)
    payload = factory.LazyFunction(lambda: {"status": "open"})
