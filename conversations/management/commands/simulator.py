from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db.models import Max
from django.utils.translation import gettext as _

from conversations.models import Message
from conversations.providers.mail_simulator import Mailbox
from conversations.providers.simulator import Phone, Simulator
from crm.models import ContactPoint

CAMILLE = "+33612345678"


def phones_from_database(*, shown: int) -> list[Phone]:
    """Every customer's phone, as Twilio would know it: name, last WhatsApp message, opt-out.
    Camille Martin's first; the page shows the `shown` first, the API accepts them all."""
    last_whatsapp = dict(
        Message.objects.filter(direction=Message.Direction.INBOUND, channel="whatsapp")
        .values_list("contact_point__address")
        .annotate(last=Max("created_at"))
        .values_list("contact_point__address", "last")
    )
    phones: dict[str, Phone] = {}
    contacts = (
        ContactPoint.objects.filter(kind__in=["whatsapp", "sms"])
        .select_related("customer")
        .order_by("customer__thread__last_activity_at", "pk")
    )
    for contact in contacts:
        phone = phones.setdefault(contact.address, Phone(number=contact.address))
        phone.name = phone.name or (contact.customer.full_name if contact.customer else contact.display_name)
        phone.opted_out = phone.opted_out or contact.consent == ContactPoint.Consent.OPTED_OUT
        if contact.address in last_whatsapp:
            phone.last_whatsapp_at = last_whatsapp[contact.address].timestamp()
    ordered = sorted(phones.values(), key=lambda phone: (phone.number != CAMILLE, phone.last_whatsapp_at is None))
    for index, phone in enumerate(ordered):
        phone.shown = index < shown
    return ordered


def _mailbox(smtp_port: int) -> Mailbox:
    """Camille Martin's mailbox (her email address in the database, else the demo's)."""
    contact = (
        ContactPoint.objects.filter(kind="email", customer__contact_points__address=CAMILLE)
        .select_related("customer")
        .first()
    )
    anymail = settings.ANYMAIL
    return Mailbox(
        address=contact.address if contact else "camille.martin@example.com",
        name=contact.customer.full_name if contact else "Camille Martin",
        bank_address=settings.EMAIL_REPLY_ADDRESS,
        signing_key=anymail.get("MAILGUN_WEBHOOK_SIGNING_KEY", ""),
        webhook_secret=anymail.get("WEBHOOK_SECRET", ""),
        smtp_port=smtp_port,
    )


def _bank_customer() -> str:
    """Camille Martin's customer number, for the bank's site (/bank); none without CHAT_JWT_SECRET."""
    if not settings.CHAT_JWT_SECRET:
        return ""
    contact = ContactPoint.objects.filter(address=CAMILLE, customer__isnull=False).select_related("customer").first()
    return contact.customer.customer_number if contact else ""


class Command(BaseCommand):
    help = (
        "Start the development simulator of Twilio and of the customers' phones (http://127.0.0.1:8001/). "
        "Refuses to run with DEBUG off."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8001)
        parser.add_argument("--app-url", default="", help="Where the app's webhooks are (default: PUBLIC_BASE_URL).")
        parser.add_argument("--callback-delay", type=float, default=0.4, help="Seconds between status callbacks.")
        parser.add_argument("--phones", type=int, default=6, help="How many phones the page shows.")
        parser.add_argument(
            "--smtp-port",
            type=int,
            default=None,
            help="Also play the email service: an SMTP server on this port and Camille's mailbox at /mailbox.",
        )

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError(
                _(
                    "Refusing to start the Twilio simulator with DEBUG off: "
                    "it must never stand in for Twilio in production."
                )
            )
        if not settings.TWILIO_ACCOUNT_SID or not settings.TWILIO_AUTH_TOKEN:
            raise CommandError(
                _("Set TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN: the simulator checks and signs with them.")
            )
        import uvicorn

        phones = phones_from_database(shown=options["phones"])
        if not phones:
            phones = [Phone(number=CAMILLE, name="Camille Martin")]
        simulator = Simulator(
            account_sid=settings.TWILIO_ACCOUNT_SID,
            auth_token=settings.TWILIO_AUTH_TOKEN,
            app_base_url=options["app_url"] or settings.PUBLIC_BASE_URL,
            phones=phones,
            bank_whatsapp=settings.TWILIO_WHATSAPP_FROM or "whatsapp:+33180000000",
            bank_sms=settings.TWILIO_SMS_FROM or "+33180000000",
            callback_delay=options["callback_delay"],
            mailbox=_mailbox(options["smtp_port"]) if options["smtp_port"] else None,
            bank_customer=_bank_customer(),
        )
        self.stdout.write(
            _("Simulator on http://%(host)s:%(port)s/ (%(count)d phones), posting to %(app)s")
            % {"host": options["host"], "port": options["port"], "count": len(phones), "app": simulator.app_base_url}
        )
        # One process whatever WEB_CONCURRENCY says: the simulator's state lives in its memory.
        uvicorn.run(
            simulator, host=options["host"], port=options["port"], workers=1, log_level="warning", access_log=False
        )
