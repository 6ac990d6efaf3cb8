"""The demo bank: two agencies, four advisors, sixty customers and a few conversations.

Everything is generated from fixed data and a fixed seed, and every row is looked up
by its natural key before it is created, so a second run finds it all in place and
changes nothing. Customers, contact points and assignments go through crm.services;
the conversations' history is seeded directly, as if it had already happened.
"""

import hashlib
import random
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Permission
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from conversations.models import EmailHeaders, Message, MessageTemplate, Thread, TriageTopic
from conversations.providers.registry import CHANNELS
from conversations.routing_reasons import ReasonCode
from crm.addresses import normalize_phone
from crm.models import Advisor, Agency, ClosedDay, ContactPoint, Customer, Deputyship, OpeningHours
from crm.services import contact_point_create, customer_create

# Public on purpose: the demo is for laptops, and the command prints it anyway.
DEFAULT_PASSWORD = "attitre-demo"  # noqa: S105
SEED = 2026
CUSTOMER_COUNT = 60

BRANCH = "lyon-bellecour"
ONLINE = "en-ligne"
# Fictitious emergency numbers (the 09 99 range is not allocated).
EMERGENCY = {"emergency_card_number": "09 99 00 11 22", "emergency_fraud_number": "09 99 00 33 44"}
AGENCIES = {
    BRANCH: {
        "name": "Agence Lyon Bellecour",
        "kind": Agency.Kind.BRANCH,
        "pool_name": "File de l'agence Bellecour",
        "triage_mode": Agency.TriageMode.UNKNOWN_AND_CLOSED,
        **EMERGENCY,
    },
    ONLINE: {
        "name": "Centre 100 % en ligne",
        "kind": Agency.Kind.ONLINE,
        "pool_name": "File du centre en ligne",
        "triage_mode": Agency.TriageMode.UNKNOWN,
        **EMERGENCY,
    },
}
# The triage menu of both agencies: (French, English, keywords, urgent). Urgent topics go to
# the online centre's pool, open longer hours.
TOPICS = [
    ("Carte perdue/volée", "Lost/stolen card", "carte, card, perdue, volee, lost, stolen, opposition", True),
    ("Fraude suspectée", "Suspected fraud", "fraude, fraud, arnaque, scam, piratage", True),
    ("Mon crédit", "My loan", "credit, pret, loan, mortgage, immobilier", False),
    ("Mon compte", "My account", "compte, account, virement, transfer, rib", False),
    ("Autre chose", "Something else", "autre, other, else", False),
]
OPENING_HOURS = {
    # Tuesday to Saturday, closed at lunchtime.
    BRANCH: [(day, opens, closes) for day in range(1, 6) for opens, closes in ((9, (12, 30)), (14, (18, 0)))],
    ONLINE: [(day, 8, (20, 0)) for day in range(5)] + [(5, 9, (17, 0))],
}
CLOSED_DAYS = [
    (date(2026, 12, 25), "Noël"),
    (date(2027, 1, 1), "Jour de l'an"),
    (date(2027, 3, 29), "Lundi de Pâques"),
    (date(2027, 5, 1), "Fête du Travail"),
    (date(2027, 5, 6), "Ascension"),
]


@dataclass(frozen=True)
class DemoUser:
    username: str
    first_name: str
    last_name: str
    agency: str
    role: str = Advisor.Role.ADVISOR


USERS = (
    DemoUser("sam", "Sam", "Bernard", BRANCH, Advisor.Role.SUPERVISOR),
    DemoUser("alice", "Alice", "Durand", BRANCH),
    DemoUser("bob", "Bob", "Leroy", BRANCH),
    DemoUser("chloe", "Chloé", "Petit", ONLINE),
)
DEPUTIES = [("alice", "bob", 0)]  # (advisor, deputy, position)
CUSTOMER_ADVISORS = ("alice", "bob", "chloe")

# A supervisor sees everything in the admin but edits only the configuration; customers,
# contact points and assignments change through the services, which the admin would bypass.
SUPERVISOR_PERMISSIONS = Q(
    content_type__app_label__in=["crm", "conversations", "events", "integrations"], codename__startswith="view_"
) | Q(
    codename__in=[
        f"{action}_{model}"
        for action in ("add", "change")
        for model in ("agency", "openinghours", "closedday", "advisor", "deputyship", "messagetemplate")
    ]
)

FIRST_NAMES = [
    "Adèle", "Agathe", "Alexandre", "Amandine", "Antoine", "Arthur", "Aurélie", "Baptiste", "Benoît", "Céline",
    "Clément", "Delphine", "Élodie", "Émilie", "Étienne", "Fabien", "Florence", "François", "Gaëlle", "Guillaume",
    "Hugo", "Inès", "Isabelle", "Jérôme", "Juliette", "Laurent", "Louise", "Lucas", "Manon", "Margaux",
    "Mathieu", "Maxime", "Nathalie", "Noémie", "Océane", "Olivier", "Pauline", "Philippe", "Quentin", "Romain",
    "Sandrine", "Sébastien", "Sophie", "Sylvie", "Théo", "Valérie", "Vincent", "Yann", "Zoé",
]  # fmt: skip
LAST_NAMES = [
    "André", "Aubert", "Barbier", "Bertrand", "Blanc", "Bonnet", "Boyer", "Brun", "Chevalier", "Clément",
    "Colin", "David", "Denis", "Dubois", "Dumont", "Dupont", "Faure", "Fournier", "Gauthier", "Gautier",
    "Guérin", "Henry", "Lambert", "Laurent", "Lemaire", "Lucas", "Marchand", "Masson", "Mathieu", "Mercier",
    "Meyer", "Michel", "Morel", "Muller", "Noël", "Perrin", "Renaud", "Robin", "Roche", "Roussel",
    "Roux", "Roy", "Simon", "Vidal", "Vincent",
]  # fmt: skip
SEGMENTS = [Customer.Segment.MASS, Customer.Segment.AFFLUENT, Customer.Segment.PROFESSIONAL, Customer.Segment.PRIVATE]
SEGMENT_WEIGHTS = [55, 22, 13, 10]
LANGUAGES = [Customer.Language.FRENCH, Customer.Language.ENGLISH, Customer.Language.DUTCH]
LANGUAGE_WEIGHTS = [86, 10, 4]
EMAIL_DOMAINS = ["example.com", "example.org", "example.net"]  # reserved: never a real person's inbox

CAMILLE_NUMBER = "FR12345678"
CAMILLE_PHONE = "+33612345678"
# Camille writes by email too (the simulator's mailbox is hers); a reserved domain.
CAMILLE_EMAIL = "camille.martin@example.com"


@dataclass(frozen=True)
class Person:
    first_name: str
    last_name: str
    advisor: str
    segment: str = Customer.Segment.MASS
    language: str = Customer.Language.FRENCH


# The customers the conversations below are with; Camille Martin comes first.
FEATURED = [
    Person("Camille", "Martin", "alice"),
    Person("Julien", "Moreau", "bob", Customer.Segment.AFFLUENT),
    Person("Léa", "Fontaine", "chloe"),
    Person("Thomas", "Girard", "alice", Customer.Segment.PROFESSIONAL),
    Person("Emma", "Wilson", "chloe", Customer.Segment.AFFLUENT, Customer.Language.ENGLISH),
    Person("Nicolas", "Rousseau", "bob"),
    Person("Hélène", "Garnier", "alice", Customer.Segment.PRIVATE),
]


@dataclass(frozen=True)
class CustomerSpec:
    customer_number: str
    first_name: str
    last_name: str
    advisor: str
    segment: str
    language: str
    phone: str
    has_sms: bool
    email: str  # "" when the customer gave none


WHATSAPP, SMS, EMAIL = ContactPoint.Kind.WHATSAPP, ContactPoint.Kind.SMS, ContactPoint.Kind.EMAIL


@dataclass(frozen=True)
class Line:
    minutes: int  # after the conversation started
    inbound: bool
    body: str
    channel: str = WHATSAPP
    subject: str = ""  # an email's


def _in(minutes: int, body: str, channel: str = WHATSAPP, subject: str = "") -> Line:
    return Line(minutes, True, body, channel, subject)


def _out(minutes: int, body: str, channel: str = WHATSAPP, subject: str = "") -> Line:
    return Line(minutes, False, body, channel, subject)


@dataclass(frozen=True)
class Conversation:
    key: str  # stable: provider message ids are derived from it
    customer: tuple[str, str]  # first and last name of a FEATURED person
    # Conversations happen during the agency's opening hours: on its `days_back`-th
    # opening day before the one the demo is built on, starting at `starts_at` local time.
    days_back: int
    starts_at: time
    status: str
    lines: tuple[Line, ...]


CONVERSATIONS = [
    Conversation(
        "camille-carte-bloquee",
        ("Camille", "Martin"),
        1,
        time(16, 40),
        Thread.Status.OPEN,
        (
            _in(0, "Bonjour Madame Durand, ma carte est refusée partout depuis ce matin 😕"),
            _out(6, "Bonjour Camille, je regarde tout de suite. Avez-vous composé un code erroné récemment ?"),
            _in(9, "Oui, trois fois au distributeur hier soir, je mélangeais avec mon ancien code."),
            _out(
                14,
                "C'est bien ça : la carte se bloque après trois codes faux. J'ai levé le blocage ; faites un retrait "
                "avec le bon code dans n'importe quel distributeur et elle refonctionnera aussi en paiement.",
            ),
            _in(16, "Super, merci beaucoup ! Et si un jour j'oublie vraiment mon code, je fais comment ?"),
            _out(19, "Je vous envoie la marche à suivre par e-mail, vous l'aurez sous la main."),
            _out(
                21,
                "Bonjour Camille,\n\nSi vous oubliez votre code : Cartes > votre carte > « Recevoir mon code ». "
                "Il s'affiche après validation dans l'application, jamais par e-mail ni par SMS.\n\nBien à vous,",
                EMAIL,
                "Code de carte oublié",
            ),
            _in(
                95,
                "Merci Madame Durand, c'est très clair. Je garde cet e-mail.\n\nBonne soirée,\nCamille",
                EMAIL,
                "Re: Code de carte oublié",
            ),
        ),
    ),
    Conversation(
        "julien-pret-immobilier",
        ("Julien", "Moreau"),
        2,
        time(10, 15),
        Thread.Status.WAITING,
        (
            _in(
                0,
                "Bonjour M. Leroy, nous avons signé le compromis pour l'appartement rue Sala. "
                "Pouvons-nous faire le point sur le prêt immobilier ?",
                SMS,
            ),
            _out(
                25,
                "Bonjour M. Moreau, félicitations ! Je vous propose jeudi à 10 h ou vendredi à 16 h à l'agence. "
                "Apportez le compromis, vos trois derniers bulletins de salaire et votre dernier avis d'imposition.",
                SMS,
            ),
            _in(41, "Jeudi 10 h, c'est parfait.", SMS),
            _out(
                47,
                "C'est noté pour jeudi à 10 h à l'agence Bellecour. Pourriez-vous m'indiquer d'ici là "
                "le montant de votre apport personnel ?",
                SMS,
            ),
        ),
    ),
    Conversation(
        "lea-rib",
        ("Léa", "Fontaine"),
        3,
        time(12, 20),
        Thread.Status.CLOSED,
        (
            _in(0, "Bonjour, mon nouvel employeur me demande un RIB, où est-ce que je le trouve ?"),
            _out(
                4,
                "Bonjour Léa, dans l'application : Comptes > votre compte courant > RIB, puis « Partager ». "
                "Je peux aussi vous l'envoyer par e-mail si vous préférez.",
            ),
            _in(7, "Trouvé, merci !"),
            _out(8, "Avec plaisir, bonne journée !"),
        ),
    ),
    Conversation(
        "thomas-plafond-virement",
        ("Thomas", "Girard"),
        1,
        time(11, 5),
        Thread.Status.OPEN,
        (
            _in(
                0,
                "Bonjour, je dois régler l'acompte de ma nouvelle camionnette (8 500 €) "
                "mais mon plafond de virement est à 5 000 €.",
            ),
            _out(
                12,
                "Bonjour M. Girard, je peux relever temporairement votre plafond. "
                "Pour quelle date avez-vous besoin du virement ?",
            ),
            _in(30, "Idéalement demain matin, le concessionnaire attend le virement pour libérer le véhicule."),
            _in(31, "Et est-ce que ce sera un virement instantané ?"),
        ),
    ),
    Conversation(
        "emma-virement-international",
        ("Emma", "Wilson"),
        1,
        time(16, 5),
        Thread.Status.OPEN,
        (
            _in(
                0,
                "Hello, my salary will now be paid by my UK employer. "
                "Which details should I give them for an international transfer?",
            ),
            _out(
                7,
                "Hello Emma, give them your IBAN and the BIC shown on your RIB in the app (Accounts > RIB). "
                "Payments in pounds are converted to euros on arrival.",
            ),
            _in(11, "Great, thanks. Is there a limit on the amount I can receive?"),
        ),
    ),
    Conversation(
        "nicolas-opposition-carte",
        ("Nicolas", "Rousseau"),
        4,
        time(9, 35),
        Thread.Status.CLOSED,
        (
            _in(0, "Bonjour, j'ai perdu mon portefeuille au marché, avec ma carte bancaire. Que dois-je faire ?"),
            _out(
                3,
                "Bonjour M. Rousseau, faites opposition tout de suite dans l'application "
                "(Cartes > Faire opposition). Je commanderai ensuite une nouvelle carte.",
            ),
            _in(15, "C'est fait. Je n'ai presque plus de batterie, je vous écris par SMS.", SMS),
            _out(
                22,
                "Merci, l'opposition est bien enregistrée. Votre nouvelle carte arrive sous 5 jours ouvrés, "
                "et son code par courrier séparé.",
                SMS,
            ),
        ),
    ),
    Conversation(
        "helene-assurance-vie",
        ("Hélène", "Garnier"),
        2,
        time(14, 30),
        Thread.Status.OPEN,
        (
            _in(
                0,
                "Bonjour Madame Durand, mon contrat d'assurance-vie a 8 ans en janvier. Dois-je faire quelque chose ?",
            ),
            _out(
                20,
                "Bonjour Madame Garnier, rien d'obligatoire, mais c'est le bon moment pour revoir la répartition "
                "et la clause bénéficiaire. Voulez-vous que nous en parlions en rendez-vous ?",
            ),
            _in(38, "Oui, volontiers. Plutôt en fin de matinée si possible."),
            _in(39, "Mon fils souhaiterait venir aussi, est-ce possible ?"),
        ),
    ),
]

TEMPLATES = [
    {
        "name": "reprise_contact",
        "body": "Bonjour {{1}}, c'est {{2}}, votre conseiller {{3}}. Pouvons-nous reprendre notre échange ?",
        "variables": {"1": "customer.first_name", "2": "advisor.name", "3": "agency.name"},
    },
    {
        "name": "suivi_demande",
        "body": "Bonjour {{1}}, {{2}} ({{3}}) a une réponse à votre demande. Répondez à ce message pour la consulter.",
        "variables": {"1": "customer.first_name", "2": "advisor.name", "3": "agency.name"},
    },
]


@dataclass(frozen=True)
class DemoAccount:
    username: str
    role: str
    agency: str
    deputies: list[str]


@dataclass(frozen=True)
class DemoSummary:
    accounts: list[DemoAccount]
    agencies: int
    customers: int
    threads: int


def demo_build(*, password: str) -> DemoSummary:
    """Build the demo bank, or complete it and put its agencies and accounts back as
    defined here. On a database it built, it changes nothing unless `password` does."""
    with transaction.atomic():
        agencies = {code: _ensure_agency(code) for code in AGENCIES}
        _ensure(Agency, {"urgent_pool": agencies[ONLINE]}, code=BRANCH)
        advisors = {user.username: _ensure_advisor(user, agencies, password) for user in USERS}
        for advisor, deputy, position in DEPUTIES:
            _ensure(Deputyship, {"position": position}, advisor=advisors[advisor], deputy=advisors[deputy])
        customers = {
            (spec.first_name, spec.last_name): _ensure_customer(spec, advisors[spec.advisor])
            for spec in customer_specs()
        }
        anchor = timezone.now()
        for conversation in CONVERSATIONS:
            _ensure_conversation(conversation, customers[conversation.customer], anchor)
        for template in TEMPLATES:
            _ensure_template(**template)
    return DemoSummary(
        accounts=[
            DemoAccount(
                username=user.username,
                role=advisors[user.username].get_role_display(),
                agency=agencies[user.agency].name,
                deputies=[deputy for advisor, deputy, _position in DEPUTIES if advisor == user.username],
            )
            for user in USERS
        ],
        agencies=len(agencies),
        customers=len(customers),
        threads=Thread.objects.filter(customer__in=customers.values()).count(),
    )


def customer_specs() -> list[CustomerSpec]:
    """The demo's customers: the same on every run and every machine."""
    rng = random.Random(SEED)
    people = list(FEATURED)
    seen = {_ascii(f"{p.first_name} {p.last_name}") for p in people}
    while len(people) < CUSTOMER_COUNT:
        first_name, last_name = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        key = _ascii(f"{first_name} {last_name}")
        if key in seen or first_name == last_name:
            continue
        seen.add(key)
        people.append(
            Person(
                first_name,
                last_name,
                CUSTOMER_ADVISORS[len(people) % len(CUSTOMER_ADVISORS)],
                rng.choices(SEGMENTS, SEGMENT_WEIGHTS)[0],
                rng.choices(LANGUAGES, LANGUAGE_WEIGHTS)[0],
            )
        )

    numbers, phones = {CAMILLE_NUMBER}, {CAMILLE_PHONE}
    specs = []
    for index, person in enumerate(people):
        if index == 0:
            number, phone = CAMILLE_NUMBER, CAMILLE_PHONE
        else:
            number, phone = _customer_number(rng, numbers), _mobile(rng, phones)
        email = ""
        if rng.random() < 0.3:
            email = f"{_ascii(person.first_name)}.{_ascii(person.last_name)}@{rng.choice(EMAIL_DOMAINS)}"
        if index == 0:
            email = CAMILLE_EMAIL
        specs.append(
            CustomerSpec(
                customer_number=number,
                first_name=person.first_name,
                last_name=person.last_name,
                advisor=person.advisor,
                segment=person.segment,
                language=person.language,
                phone=phone,
                # The conversations need an SMS contact point for everyone featured in them.
                has_sms=index < len(FEATURED) or rng.random() < 0.85,
                email=email,
            )
        )
    return specs


def _mobile(rng: random.Random, taken: set[str]) -> str:
    while True:
        candidate = f"+33{rng.choice('67')}{rng.randrange(10**8):08d}"
        try:
            phone = normalize_phone(candidate)
        except ValidationError:
            continue  # not every 06/07 block is allocated; draw again
        if phone not in taken:
            taken.add(phone)
            return phone


def _customer_number(rng: random.Random, taken: set[str]) -> str:
    while (number := f"FR{rng.randrange(10**7, 10**8)}") in taken:
        pass
    taken.add(number)
    return number


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower().replace(" ", "-")


def _ensure(model, values: dict, **lookup):
    """The row found by `lookup`, created with `values` or brought back to them."""
    row, created = model.objects.get_or_create(**lookup, defaults=values)
    if not created:
        changed = [name for name, value in values.items() if getattr(row, name) != value]
        if changed:
            for name in changed:
                setattr(row, name, values[name])
            row.save(update_fields=changed)
    return row


def _ensure_agency(code: str) -> Agency:
    agency = _ensure(Agency, AGENCIES[code], code=code)
    for weekday, opens, (close_hour, close_minute) in OPENING_HOURS[code]:
        _ensure(
            OpeningHours,
            {"closes_at": time(close_hour, close_minute)},
            agency=agency,
            weekday=weekday,
            opens_at=time(opens),
        )
    for day, label in CLOSED_DAYS:
        _ensure(ClosedDay, {"label": label}, agency=agency, date=day)
    for position, (label_fr, label_en, keywords, urgent) in enumerate(TOPICS):
        _ensure(
            TriageTopic,
            {"label_en": label_en, "keywords": keywords, "urgent": urgent, "is_active": True, "position": position},
            agency=agency,
            label_fr=label_fr,
        )
    return agency


def _ensure_advisor(spec: DemoUser, agencies: dict[str, Agency], password: str) -> Advisor:
    is_supervisor = spec.role == Advisor.Role.SUPERVISOR
    user = _ensure(
        get_user_model(),
        {"first_name": spec.first_name, "last_name": spec.last_name, "is_staff": is_supervisor, "is_active": True},
        username=spec.username,
    )
    # Hashes are salted: re-hashing an unchanged password would rewrite the row on every run.
    if not user.check_password(password):
        user.set_password(password)
        user.save(update_fields=["password"])
    if is_supervisor:
        _grant_supervisor_permissions(user)
    return _ensure(Advisor, {"agency": agencies[spec.agency], "role": spec.role, "is_active": True}, user=user)


def _grant_supervisor_permissions(user: AbstractBaseUser) -> None:
    user.user_permissions.add(*Permission.objects.filter(SUPERVISOR_PERMISSIONS))


def _ensure_customer(spec: CustomerSpec, advisor: Advisor) -> Customer:
    customer = Customer.objects.filter(customer_number=spec.customer_number).first()
    if customer is None:
        online = advisor.agency.kind == Agency.Kind.ONLINE
        customer = customer_create(
            customer_number=spec.customer_number,
            first_name=spec.first_name,
            last_name=spec.last_name,
            agency=advisor.agency,
            advisor=advisor,
            reason=_("Demo data"),
            segment=spec.segment,
            preferred_language=spec.language,
            typology=Customer.Typology.ONLINE if online else Customer.Typology.TRADITIONAL,
        )
    _ensure_contact_point(customer, WHATSAPP, spec.phone, display_name=f"{spec.first_name} {spec.last_name}")
    if spec.has_sms:
        _ensure_contact_point(customer, SMS, spec.phone)
    if spec.email:
        _ensure_contact_point(customer, ContactPoint.Kind.EMAIL, spec.email)
    return customer


def _ensure_contact_point(customer: Customer, kind: str, address: str, display_name: str = "") -> ContactPoint:
    existing = ContactPoint.objects.filter(kind=kind, address=address, customer=customer).first()
    if existing is not None:
        return existing
    # Refused with a clear message when someone else already holds the address.
    return contact_point_create(
        kind=kind, address=address, customer=customer, display_name=display_name, source=_("Demo data")
    )


def _ensure_conversation(conversation: Conversation, customer: Customer, anchor: datetime) -> None:
    if Thread.objects.filter(customer=customer).exists():
        return
    advisor = customer.dedicated_advisor
    contacts = {contact.kind: contact for contact in customer.contact_points.all()}
    start = _opening_day_start(customer.agency, conversation.days_back, conversation.starts_at, anchor)
    messages = [
        _message(conversation.key, position, line, contacts[line.channel], advisor, start)
        for position, line in enumerate(conversation.lines)
    ]
    inbound = [message for message in messages if message.direction == Message.Direction.INBOUND]
    last = messages[-1]
    unread = 0
    for message in reversed(messages):
        if message.direction != Message.Direction.INBOUND:
            break
        unread += 1
    thread = Thread.objects.create(
        customer=customer,
        dedicated_advisor=customer.dedicated_advisor,
        agency=customer.agency,
        status=conversation.status,
        handler=advisor,
        routing_reason_code=ReasonCode.DEDICATED,
        routed_at=start,
        **{
            spec.last_inbound_field: max((m.created_at for m in inbound if m.channel == spec.channel), default=None)
            for spec in CHANNELS.values()
        },
        last_inbound_channel=inbound[-1].channel if inbound else "",
        last_activity_at=last.created_at,
        last_message_preview=last.body[:200],
        waiting_since=messages[-unread].created_at if unread else None,
        unread_count=unread,
        created_at=start,
    )
    for message in messages:
        message.thread = thread
    Message.objects.bulk_create(messages)
    _ensure_email_headers(conversation, messages, customer)


def _ensure_email_headers(conversation: Conversation, messages: list[Message], customer: Customer) -> None:
    """Each email line's headers, threaded on the one before it."""
    previous: list[str] = []
    headers = []
    for line, message in zip(conversation.lines, messages, strict=True):
        if line.channel != EMAIL:
            continue
        message_id = f"{message.provider_message_id[:24]}@{'example.com' if line.inbound else 'attitre.example'}"
        bank = "conseiller@attitre.example"
        headers.append(
            EmailHeaders(
                message=message,
                header_message_id=message_id,
                in_reply_to=previous[-1] if previous else "",
                references=" ".join(previous),
                subject=line.subject,
                from_header=customer.full_name if line.inbound else message.author.display_name,
                to_header=bank if line.inbound else message.contact_point.address,
                full_text=line.body,
            )
        )
        previous.append(message_id)
    EmailHeaders.objects.bulk_create(headers)


def _opening_day_start(agency: Agency, days_back: int, starts_at: time, anchor: datetime) -> datetime:
    zone = ZoneInfo(agency.timezone)
    open_weekdays = {weekday for weekday, _opens, _closes in OPENING_HOURS[agency.code]}
    closed = {day for day, _label in CLOSED_DAYS}
    day = timezone.localtime(anchor, zone).date()
    while days_back:
        day -= timedelta(days=1)
        if day.weekday() in open_weekdays and day not in closed:
            days_back -= 1
    return datetime.combine(day, starts_at, tzinfo=zone)


def _message(key: str, position: int, line: Line, contact: ContactPoint, advisor: Advisor, start: datetime) -> Message:
    at = start + timedelta(minutes=line.minutes)
    message = Message(
        contact_point=contact,
        channel=line.channel,
        body=line.body,
        provider="email" if line.channel == EMAIL else "twilio",
        provider_message_id="SMdemo" + hashlib.sha256(f"{key}:{position}".encode()).hexdigest()[:28],
        created_at=at,
    )
    if line.inbound:
        message.direction = Message.Direction.INBOUND
        message.status = Message.Status.RECEIVED
        if line.channel == WHATSAPP:
            message.profile_name = contact.display_name
            message.wa_id = contact.address.lstrip("+")
    else:
        message.direction = Message.Direction.OUTBOUND
        message.status = Message.Status.DELIVERED
        message.author = advisor
        message.queued_at = at
        message.sending_at = at + timedelta(seconds=1)
        message.sent_at = at + timedelta(seconds=2)
        message.delivered_at = at + timedelta(seconds=4)
    return message


def _ensure_template(*, name: str, body: str, variables: dict) -> MessageTemplate:
    # Found by name: a real, approved template of that name keeps its own content SID.
    template, _created = MessageTemplate.objects.get_or_create(
        name=name,
        language="fr",
        defaults={
            "content_sid": "HX" + hashlib.sha256(f"attitre-demo:{name}".encode()).hexdigest()[:32],
            "body": body,
            "variables": variables,
        },
    )
    return template
