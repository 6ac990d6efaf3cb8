import factory
from django.contrib.auth import get_user_model

from crm.models import Advisor, Agency, ContactPoint, Customer, Deputyship

PASSWORD = "correct-horse-battery"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    first_name = factory.Faker("first_name", locale="fr_FR")
    last_name = factory.Faker("last_name", locale="fr_FR")
    password = factory.django.Password(PASSWORD)


class AgencyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Agency
        django_get_or_create = ("code",)

    name = factory.Sequence(lambda n: f"Agence {n}")
    code = factory.Sequence(lambda n: f"ag{n}")


class AdvisorFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Advisor

    user = factory.SubFactory(UserFactory)
    agency = factory.SubFactory(AgencyFactory)


class SupervisorFactory(AdvisorFactory):
    role = Advisor.Role.SUPERVISOR
    user = factory.SubFactory(UserFactory, is_staff=True)


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    customer_number = factory.Sequence(lambda n: f"C{n:08d}")
    first_name = factory.Faker("first_name", locale="fr_FR")
    last_name = factory.Faker("last_name", locale="fr_FR")
    agency = factory.LazyAttribute(lambda o: o.dedicated_advisor.agency if o.dedicated_advisor else AgencyFactory())
    dedicated_advisor = factory.SubFactory(AdvisorFactory)


class ContactPointFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ContactPoint

    customer = factory.SubFactory(CustomerFactory)
    kind = ContactPoint.Kind.WHATSAPP
    address = factory.Sequence(lambda n: f"+336{n:08d}")


def add_deputy(advisor: Advisor, deputy: Advisor, position: int = 0) -> Deputyship:
    return Deputyship.objects.create(advisor=advisor, deputy=deputy, position=position)


def replies_handed_to_twilio(thread, count: int, *, status: str = "sent") -> list:
    """`count` replies from the thread's handler on the customer's WhatsApp, each with its
    Twilio SID, as the delivery task leaves them."""
    from conversations.models import Message
    from tests.twilio import new_sid

    contact = thread.customer.contact_points.get(kind="whatsapp")
    return [
        Message.objects.create(
            thread=thread,
            direction="outbound",
            channel="whatsapp",
            contact_point=contact,
            author=thread.handler,
            body=f"Réponse {i}",
            provider="twilio",
            provider_message_id=new_sid(),
            status=status,
        )
        for i in range(count)
    ]
