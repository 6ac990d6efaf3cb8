"""What Attitré answers by itself, in the transaction that stores a customer's message:
that their advisor is away and who covers, that the agency is closed and when it opens (with
the emergency numbers), and the triage menu that tags a thread with a topic and sends urgent
ones to the urgent pool. Never a wall between the customer and a person: every message is
routed to people as always, the menu asks one question at most, and “conseiller” or two
answers it does not understand hand over at once.

Called by the inbound batch (conversations.services.inbound) for each new message:
`triage_answer` before routing (a choice can move the thread), `auto_replies_after` after
it. Every reply is a real outbound message, author empty and `automatic` set, queued for
delivery in the same transaction as the message it answers.
"""

import hashlib
import json
import logging
import re
import time
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import phonenumbers
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import formats, translation
from django.utils.translation import gettext as _

from conversations.access import thread_audience
from conversations.models import AutoReplyText, InteractiveContent, Message, Thread, TriageState, TriageTopic
from conversations.opening import Schedule
from conversations.payloads import message_payload, thread_summary
from conversations.providers import twilio
from conversations.providers.base import InboundMessage, SendFailed
from conversations.providers.registry import CHANNELS
from conversations.routing import RoutingDecision
from conversations.routing_reasons import ReasonCode
from conversations.templating import TEMPLATE_SOURCES
from core.tasks import enqueue
from crm.models import Advisor, Agency, ContactPoint
from events.groups import advisor_group
from events.models import Event
from events.publish import PendingEvent

logger = logging.getLogger(__name__)

# Typed at any point of the menu: a person, at once.
HUMAN_WORDS = frozenset({"conseiller", "conseillere", "advisor", "adviser", "humain", "human", "agent"})
# Unrecognised answers before the menu steps aside.
MAX_MISSES = 2
LANGUAGES = ("fr", "en")
# WhatsApp's list picker shows ten items at most; quick replies three.
MAX_CHOICES = 10
MAX_QUICK_REPLIES = 3
AUTO_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+\.[a-z_]+|topic)\s*\}\}")
# What an automatic text may name, beyond the template mapping's (conversations.templating).
AUTO_SOURCES = (
    "advisor.until",
    "cover.name",
    "agency.opens",
    "agency.emergency_numbers",
    "topic",
)
PLACEHOLDERS = (*TEMPLATE_SOURCES, *AUTO_SOURCES)
DELIVER_TASK = "conversations.tasks.message_deliver"


def default_text(kind: str, language: str) -> str:
    """The text shipped for `kind`, in `language` (French or English: the catalogue's)."""
    with translation.override(language):
        return {
            AutoReplyText.Kind.AWAY: _("{{advisor.name}} is away{{advisor.until}}. {{cover.name}} will answer you."),
            AutoReplyText.Kind.CLOSED: _(
                "{{agency.name}} is closed; we will answer you from {{agency.opens}}.\n{{agency.emergency_numbers}}"
            ),
            AutoReplyText.Kind.MENU: _(
                "To pass your message to the right person, choose a topic, or write “advisor” to reach a person."
            ),
            AutoReplyText.Kind.TOPIC: _("Thank you: “{{topic}}”. {{cover.name}} will answer you."),
            AutoReplyText.Kind.URGENT: _(
                "“{{topic}}”: our team on duty has been alerted and will answer you as soon as possible.\n"
                "{{agency.emergency_numbers}}"
            ),
            AutoReplyText.Kind.HANDOVER: _("A person will answer you as soon as possible."),
        }[kind]


def check_placeholders(body: str) -> list[str]:
    """The placeholders of `body` that nothing fills (for the admin's form)."""
    return [name for name in re.findall(r"\{\{\s*([^}]*?)\s*\}\}", body) if name not in PLACEHOLDERS]


# Where an unknown number's country is one of these, it is written to in French.
FRENCH_SPEAKING = frozenset({"FR", "BE", "LU", "MC", "CH", "RE", "GP", "MQ", "GF", "YT", "NC", "PF"})


def reply_language(thread: Thread, agency: Agency) -> str:
    """The customer's preferred language (English for one we ship no text in); for an unknown
    number, French when its country (else the agency's) speaks it, English otherwise."""
    if thread.customer_id:
        language = thread.customer.preferred_language
        return language if language in LANGUAGES else "en"
    region = agency.country
    try:
        region = phonenumbers.region_code_for_number(phonenumbers.parse(thread.prospect.address, None)) or region
    except phonenumbers.NumberParseException:
        pass  # an email address, a web chat visitor: the agency's country
    return "fr" if region in FRENCH_SPEAKING else "en"


@dataclass
class AgencySetup:
    """An agency's out-of-hours settings, read once per batch."""

    agency: Agency
    schedule: Schedule
    topics: list[TriageTopic]
    texts: dict[tuple[str, str], str]

    @classmethod
    def load(cls, agency_id: int) -> "AgencySetup":
        agency = Agency.objects.select_related("urgent_pool").get(pk=agency_id)
        return cls(
            agency=agency,
            schedule=Schedule.load(agency),
            topics=list(agency.triage_topics.filter(is_active=True).order_by("position", "id")),
            texts={(t.kind, t.language): t.body for t in agency.auto_reply_texts.all()},
        )

    def text(self, kind: str, language: str) -> str:
        return self.texts.get((kind, language)) or default_text(kind, language)


# Read on every message: an agency's settings are kept this long in each process, so that a
# message that needs no reply costs no query. An edit in the admin is seen within a minute.
SETUP_TTL_SECONDS = 60.0
_setups: dict[int, tuple[float, AgencySetup]] = {}


def agency_setup(agency_id: int) -> AgencySetup:
    now = time.monotonic()
    cached = _setups.get(agency_id)
    if cached is None or now - cached[0] > SETUP_TTL_SECONDS:
        cached = _setups[agency_id] = (now, AgencySetup.load(agency_id))
    return cached[1]


def agency_setups_forget(agency_id: int | None = None) -> None:
    """Drop the kept settings (of one agency, or all): the admin calls it after an edit."""
    if agency_id is None:
        _setups.clear()
    else:
        _setups.pop(agency_id, None)


@dataclass
class AutoReplies:
    """One batch's automatic replies, and the events they append."""

    now: datetime
    events: list[PendingEvent] = field(default_factory=list)

    def setup(self, agency_id: int) -> AgencySetup:
        return agency_setup(agency_id)

    def take_events(self) -> list[PendingEvent]:
        events, self.events = self.events, []
        return events

    # --- Before routing: the answer to the menu ------------------------------------

    def triage_answer(self, *, thread: Thread, inbound: InboundMessage, answerable: bool) -> str:
        """Read a message answering the menu; tags and moves the thread. Returns the kind of
        reply it calls for (AutoReplyText.Kind), or "" (not an answer, or say nothing).
        `answerable` is false for a consent keyword, an automatic email or a receipt."""
        if thread.triage_state != TriageState.ASKED or not answerable:
            return ""
        setup = self.setup(thread.agency_id)
        words = _words(inbound.body)
        if words & HUMAN_WORDS:
            return self._hand_over(thread, how="human_word")
        topic, how = _chosen(setup.topics, inbound, words)
        if topic is None:
            thread.triage_misses += 1
            if thread.triage_misses >= MAX_MISSES:
                return self._hand_over(thread, how="unrecognised")
            return ""  # one question only: no asking again
        thread.topic, thread.triage_state = topic, TriageState.CHOSEN
        self._triaged(thread, how=how)
        if not topic.urgent:
            return AutoReplyText.Kind.TOPIC
        thread.urgent = True
        pool = setup.agency.urgent_pool or setup.agency
        if thread.agency_id != pool.pk:
            thread.agency = pool
        thread.handler = None
        return AutoReplyText.Kind.URGENT

    def _hand_over(self, thread: Thread, *, how: str) -> str:
        thread.triage_state = TriageState.HUMAN
        self._triaged(thread, how=how)
        return AutoReplyText.Kind.HANDOVER

    def _triaged(self, thread: Thread, *, how: str) -> None:
        payload = {"topic": thread.topic_id, "triage_state": thread.triage_state, "how": how}
        self.events.append(PendingEvent(Event.Type.THREAD_TRIAGED, thread, payload, tuple(thread_audience(thread))))

    # --- After routing: what to send ----------------------------------------------

    def after(
        self,
        *,
        thread: Thread,
        contact: ContactPoint,
        inbound: InboundMessage,
        decision: RoutingDecision,
        answer: str,
        answerable: bool,
        home_agency_id: int,
    ) -> None:
        """Send what the message calls for: the answer to a menu choice, else (once per
        AUTO_REPLY_COOLDOWN_HOURS) the away and closed notices, with the menu when it applies."""
        if contact.consent == ContactPoint.Consent.OPTED_OUT or not answerable:
            return
        spec = CHANNELS.get(inbound.channel)
        if spec is None or not spec.replies or spec.envelope:
            # Email: an automatic answer to mail invites loops with other robots; advisors answer it.
            return
        if not answer and not self._cooled_down(thread):
            return
        home = self.setup(home_agency_id)
        language = reply_language(thread, home.agency)
        values = self._values(thread, home, decision, language)
        if answer:
            if answer == AutoReplyText.Kind.URGENT:
                self._alert(thread)
            self._send(thread, contact, inbound.channel, answer, _fill(home.text(answer, language), values))
            return
        closed = not home.schedule.is_open(self.now)  # False without opening hours
        away = decision.reason.code in (ReasonCode.DEPUTY, ReasonCode.POOL_NO_DEPUTY)
        menu = bool(home.topics) and (
            (home.agency.triage_mode != Agency.TriageMode.OFF and not contact.customer_id)
            or (home.agency.triage_mode == Agency.TriageMode.UNKNOWN_AND_CLOSED and closed)
        )
        if thread.triage_state != TriageState.NONE:
            menu = False  # one question per conversation
        parts = []
        if away:
            dedicated = thread.customer.dedicated_advisor
            parts.append(_fill(dedicated.out_of_office_message or home.text(AutoReplyText.Kind.AWAY, language), values))
        if closed:
            parts.append(_fill(home.text(AutoReplyText.Kind.CLOSED, language), values))
        if menu:
            parts.append(_fill(home.text(AutoReplyText.Kind.MENU, language), values))
            kind = AutoReplyText.Kind.MENU
        elif closed:
            kind = AutoReplyText.Kind.CLOSED
        elif away:
            kind = AutoReplyText.Kind.AWAY
        else:
            return
        thread.last_auto_reply_at = self.now
        choices = {}
        if menu:
            thread.triage_state, thread.triage_misses = TriageState.ASKED, 0
            choices = _menu_choices(home.topics, language)
        body = "\n\n".join(part for part in parts if part)
        self._send(thread, contact, inbound.channel, kind, body, choices=choices)

    def _cooled_down(self, thread: Thread) -> bool:
        last = thread.last_auto_reply_at
        return last is None or self.now - last >= timedelta(hours=settings.AUTO_REPLY_COOLDOWN_HOURS)

    def _values(self, thread: Thread, home: AgencySetup, decision: RoutingDecision, language: str) -> dict:
        customer = thread.customer if thread.customer_id else None
        dedicated = customer.dedicated_advisor if customer else None
        with translation.override(language):
            values = {
                name: (source(customer, dedicated, home.agency) if dedicated or not name.startswith("advisor") else "")
                for name, source in TEMPLATE_SOURCES.items()
            }
            # Only an absence under way has an end worth giving.
            until = dedicated.out_of_office_until if dedicated and dedicated.is_out_of_office(self.now) else None
            values["advisor.until"] = (
                _(" until %(date)s") % {"date": _day(until.astimezone(home.schedule.zone))} if until else ""
            )
            values["cover.name"] = _cover(decision.handler, thread, home.agency)
            opens = home.schedule.next_opening(self.now)
            values["agency.opens"] = (
                _("%(day)s at %(time)s") % {"day": _day(opens), "time": formats.time_format(opens, "H:i")}
                if opens
                else _("our next opening")
            )
            values["agency.emergency_numbers"] = _emergency(home.agency)
            values["topic"] = thread.topic.label(language) if thread.topic_id else ""
        return values

    def _alert(self, thread: Thread) -> None:
        """Whoever is on duty in the urgent pool now hears of it at once (their own groups)."""
        on_duty = [
            advisor
            for advisor in Advisor.objects.filter(agency_id=thread.agency_id, is_active=True).select_related("user")
            if advisor.is_present(self.now)
        ]
        payload = {"thread_summary": thread_summary(thread), "topic": thread.topic_id, "on_duty": len(on_duty)}
        groups = tuple(advisor_group(advisor.pk) for advisor in on_duty)
        self.events.append(
            PendingEvent(Event.Type.THREAD_URGENT, thread, payload, tuple(thread_audience(thread)), groups)
        )

    def _send(self, thread, contact, channel, kind, body, *, choices=None) -> None:
        spec = CHANNELS[channel]
        render, buttons = MENU_STYLES.get(spec.menu, MENU_STYLES["numbered"])
        if choices:
            choices = {**choices, "body": body}
        rendered = render(body, choices) if choices else body
        message = Message.objects.create(
            thread=thread,
            direction=Message.Direction.OUTBOUND,
            channel=channel,
            contact_point=contact,
            body=rendered[: spec.max_body_length],
            provider=spec.provider.name,
            status=Message.Status.QUEUED,
            created_at=self.now,
            queued_at=self.now,
            automatic=kind,
            choices=choices if choices and buttons else {},
        )
        self.events.append(
            PendingEvent(
                Event.Type.MESSAGE_CREATED,
                thread,
                {"message": message_payload(message), "thread_summary": thread_summary(thread)},
                tuple(thread_audience(thread)),
            )
        )
        enqueue(DELIVER_TASK, message.pk, group="outbound")


# --- Menus per channel ----------------------------------------------------------------


def numbered_menu(body: str, choices: dict) -> str:
    """The menu as text: a number per topic (SMS, and whatever has no buttons)."""
    lines = [f"{index}. {item['title']}" for index, item in enumerate(choices["items"], start=1)]
    return "\n".join([body, "", *lines, "", choices["hint"]])


# A channel's spec names how it shows a menu (ChannelSpec.menu): the message's text, and
# whether its `choices` go with it for the provider to show as buttons. The text of a
# "buttons" menu is the numbered one too: the timeline's copy, and the fallback when the
# buttons cannot be made (a number answers either). A web chat with its own buttons adds
# its spec's style here.
MENU_STYLES = {
    "numbered": (numbered_menu, False),
    "buttons": (numbered_menu, True),
}


def _menu_choices(topics: list[TriageTopic], language: str) -> dict:
    with translation.override(language):
        return {
            "button": _("Choose"),
            "hint": _("Reply with a number, or write “advisor”."),
            "language": language,
            "items": [{"id": f"topic:{topic.pk}", "title": topic.label(language)} for topic in topics[:MAX_CHOICES]],
        }


# --- Reading an answer ------------------------------------------------------------------


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(char for char in decomposed if not unicodedata.combining(char))


def _words(text: str) -> set[str]:
    return set(re.findall(r"\w+", _fold(text)))


def _chosen(topics: list[TriageTopic], inbound: InboundMessage, words: set[str]):
    payload = inbound.button_payload.strip()
    if payload:
        for topic in topics:
            if payload == f"topic:{topic.pk}":
                return topic, "button"
    text = inbound.body.strip().rstrip(".)")
    if text.isdigit() and 1 <= int(text) <= len(topics[:MAX_CHOICES]):
        return topics[int(text) - 1], "number"
    folded = _fold(inbound.body.strip())
    for topic in topics:
        keywords = [_fold(word) for word in topic.keyword_list()]
        labels = {_fold(topic.label_fr), _fold(topic.label_en)}
        if folded in labels or any(_words(keyword) <= words for keyword in keywords if keyword):
            return topic, "keyword"
    return None, ""


# --- Filling the texts --------------------------------------------------------------------


def _fill(body: str, values: dict) -> str:
    text = AUTO_PLACEHOLDER.sub(lambda match: values.get(match.group(1), match.group(0)), body)
    return "\n".join(line.rstrip() for line in text.strip().splitlines()).strip()


def _day(moment: datetime) -> str:
    text = formats.date_format(moment, "l j F")
    # Mid-sentence, French writes its weekdays in lower case ("jusqu'au jeudi 31 décembre").
    return text[:1].lower() + text[1:] if translation.get_language() == "fr" else text


def _cover(handler: Advisor | None, thread: Thread, agency: Agency) -> str:
    if handler is not None and handler.pk != thread.dedicated_advisor_id:
        return _("%(name)s, a colleague at %(agency)s,") % {"name": handler.display_name, "agency": agency.name}
    if handler is not None:
        return handler.display_name
    return _("A colleague at %(agency)s") % {"agency": agency.name}


def _emergency(agency: Agency) -> str:
    lines = []
    if agency.emergency_card_number:
        lines.append(_("Lost or stolen card: %(number)s") % {"number": agency.emergency_card_number})
    if agency.emergency_fraud_number:
        lines.append(_("Suspected fraud: %(number)s") % {"number": agency.emergency_fraud_number})
    return "\n".join(lines)


# --- Buttons through the provider's content store ---------------------------------------


def menu_content_sid(*, choices: dict) -> str:
    """The content SID that shows `choices` as buttons (WhatsApp: a quick reply for up to three
    topics, a list picker beyond), created in Twilio's Content API the first time and found
    again by digest afterwards. Called at delivery, outside any transaction. "" when the
    provider refuses or cannot be reached: the menu then goes as numbered text."""
    items = [{"id": item["id"], "title": item["title"]} for item in choices.get("items", [])]
    if not items:
        return ""
    kind = "twilio/quick-reply" if len(items) <= MAX_QUICK_REPLIES else "twilio/list-picker"
    spec = {"kind": kind, "body": choices.get("body", ""), "button": choices.get("button", ""), "items": items}
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    known = InteractiveContent.objects.filter(digest=digest).values_list("content_sid", flat=True).first()
    if known:
        return known
    try:
        sid = twilio.create_menu_content(
            friendly_name=f"attitre_menu_{digest[:12]}", language=choices.get("language", "fr"), **spec
        )
    except SendFailed as failure:
        logger.warning("Triage menu not created in the Content API (%s): sent as numbered text.", failure.code)
        return ""
    try:
        with transaction.atomic():
            InteractiveContent.objects.create(digest=digest, content_sid=sid, kind=kind)
    except IntegrityError:
        # Another worker created the same menu meanwhile: theirs is kept, ours is unused.
        return InteractiveContent.objects.get(digest=digest).content_sid
    return sid
