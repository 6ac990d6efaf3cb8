"""Retention and legal hold: what is past its agency's retention period loses its content
(bodies, attachments, raw payloads, email sources), leaving a tombstone in the journal; a
legal hold suspends that for what it covers.

The journal itself keeps only hashes of content (journal.facts), so purging never touches
it and the chain still verifies; the tombstone says what went, when and under which policy."""

import logging
from datetime import date, datetime

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from conversations.models import Attachment, EmailHeaders, Message, Thread
from crm.models import Advisor, Agency, Customer
from journal.models import LegalHold, RetentionPolicy
from journal.services import JournalType, actor_of_user, journal_record

logger = logging.getLogger(__name__)


def retention_years_for(*, agency_id: int) -> int:
    policy = RetentionPolicy.objects.filter(agency_id=agency_id).values_list("years", flat=True).first()
    return policy or settings.ATTITRE_RETENTION_YEARS


def _years_before(moment: datetime, years: int) -> datetime:
    try:
        return moment.replace(year=moment.year - years)
    except ValueError:  # 29 February
        return moment.replace(year=moment.year - years, day=28)


def retention_policy_set(*, agency: Agency, years: int, by) -> RetentionPolicy:
    """Set how many years (5 to 10) the agency keeps content after a relationship's last message."""
    if not 5 <= years <= 10:
        raise ValidationError(_("Keep records between 5 and 10 years."), code="retention_years")
    with transaction.atomic():
        policy, _created = RetentionPolicy.objects.update_or_create(agency=agency, defaults={"years": years})
        journal_record(
            agency_id=agency.pk,
            type=JournalType.RETENTION_POLICY_CHANGED,
            actor=actor_of_user(by),
            data={"years": years},
        )
    return policy


def active_holds_q(today: date) -> Q:
    return Q(released_at__isnull=True) & (Q(until__isnull=True) | Q(until__gte=today))


def held_thread_q(*, agency_id: int, today: date | None = None) -> Q:
    """Threads of the agency that an active legal hold covers, as a filter on Thread."""
    today = today or timezone.localdate()
    holds = LegalHold.objects.filter(active_holds_q(today), agency_id=agency_id)
    thread_ids = holds.filter(thread__isnull=False).values("thread_id")
    customer_ids = holds.filter(customer__isnull=False).values("customer_id")
    advisor_ids = holds.filter(advisor__isnull=False).values("advisor_id")
    return (
        Q(pk__in=thread_ids)
        | Q(customer_id__in=customer_ids)
        | Q(handler_id__in=advisor_ids)
        | Q(dedicated_advisor_id__in=advisor_ids)
        | Q(messages__author_id__in=advisor_ids)
        | Q(notes__author_id__in=advisor_ids)
    )


def legal_hold_check(
    *,
    agency: Agency | None,
    reason: str,
    customer: Customer | None = None,
    thread: Thread | None = None,
    advisor: Advisor | None = None,
    until: date | None = None,
) -> str:
    """Why a hold cannot be placed (ValidationError), or its reason, cleaned."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError(_("Say why this legal hold is placed."), code="reason_required")
    covered = [item for item in (customer, thread, advisor) if item is not None]
    if len(covered) != 1 or agency is None:
        raise ValidationError(
            _("A legal hold covers exactly one customer, one thread or one advisor."), code="hold_target"
        )
    if covered[0].agency_id != agency.pk:
        raise ValidationError(_("What a legal hold covers must belong to its agency."), code="other_agency")
    if until is not None and until < timezone.localdate():
        raise ValidationError(_("A legal hold cannot end in the past."), code="until_past")
    return reason


def legal_hold_place(
    *,
    agency: Agency,
    reason: str,
    by,
    customer: Customer | None = None,
    thread: Thread | None = None,
    advisor: Advisor | None = None,
    until: date | None = None,
) -> LegalHold:
    """Suspend every purge and erasure of what the hold covers (one customer, thread or
    advisor of `agency`), until `until` or its release."""
    reason = legal_hold_check(
        agency=agency, reason=reason, customer=customer, thread=thread, advisor=advisor, until=until
    )
    with transaction.atomic():
        hold = LegalHold.objects.create(
            agency=agency,
            customer=customer,
            thread=thread,
            advisor=advisor,
            reason=reason[:500],
            until=until,
            placed_by=by,
        )
        journal_record(
            agency_id=agency.pk,
            type=JournalType.LEGAL_HOLD_PLACED,
            actor=actor_of_user(by),
            data=_hold_data(hold),
            thread_id=thread.pk if thread else None,
        )
    return hold


def legal_hold_release(*, hold: LegalHold, by) -> LegalHold:
    with transaction.atomic():
        hold = LegalHold.objects.select_for_update().get(pk=hold.pk)
        if hold.released_at is not None:
            return hold
        hold.released_at = timezone.now()
        hold.save(update_fields=["released_at"])
        journal_record(
            agency_id=hold.agency_id,
            type=JournalType.LEGAL_HOLD_RELEASED,
            actor=actor_of_user(by),
            data=_hold_data(hold),
            thread_id=hold.thread_id,
        )
    return hold


def _hold_data(hold: LegalHold) -> dict:
    return {
        "hold": hold.pk,
        "customer": hold.customer_id,
        "thread": hold.thread_id,
        "advisor": hold.advisor_id,
        "reason": hold.reason,
        "until": hold.until,
        "released_at": hold.released_at,
    }


def threads_past_retention(*, agency_id: int, now: datetime) -> list[int]:
    """Threads whose last message is older than the agency's retention and that no hold covers."""
    cutoff = _years_before(now, retention_years_for(agency_id=agency_id))
    held = Thread.objects.filter(held_thread_q(agency_id=agency_id, today=now.date())).values("pk")
    return list(
        Thread.objects.filter(agency_id=agency_id)
        .annotate(last_message_at=Max("messages__created_at"))
        .filter(last_message_at__lt=cutoff)
        .exclude(pk__in=held)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


_CONTENT_LEFT = (
    ~Q(body="")
    | ~Q(raw={})
    | ~Q(profile_name="")
    | ~Q(button_text="")
    | ~Q(location_address="")
    | Q(latitude__isnull=False)
    | Q(attachments__file__gt="")
    | Q(email__raw__gt="")
    | Q(email__full_text__gt="")
)


def thread_purge(*, thread_id: int, now: datetime) -> int:
    """Take the content out of one thread's messages, in one transaction with its tombstone;
    the files go once it commits. Notes are the bank's own record and stay. Returns how many
    messages lost content."""
    files: list = []
    with transaction.atomic():
        thread = Thread.objects.select_for_update(of=("self",)).filter(pk=thread_id).first()
        if thread is None or Thread.objects.filter(held_thread_q(agency_id=thread.agency_id), pk=thread_id).exists():
            return 0  # held since it was listed
        message_ids = sorted(
            set(Message.objects.filter(_CONTENT_LEFT, thread_id=thread_id).values_list("pk", flat=True))
        )
        if not message_ids:
            return 0
        attachments = list(Attachment.objects.filter(message_id__in=message_ids).exclude(file=""))
        emails = list(EmailHeaders.objects.filter(message_id__in=message_ids).exclude(raw=""))
        files = [a.file.name for a in attachments] + [e.raw.name for e in emails]
        Message.objects.filter(pk__in=message_ids).update(
            body="",
            raw={},
            profile_name="",
            button_text="",
            button_payload="",
            location_address="",
            location_label="",
            latitude=None,
            longitude=None,
            template_variables={},
        )
        Attachment.objects.filter(pk__in=[a.pk for a in attachments]).update(file="", file_name="", original_url="")
        EmailHeaders.objects.filter(message_id__in=message_ids).update(raw="", full_text="", html="", subject="")
        Thread.objects.filter(pk=thread_id).update(last_message_preview="")
        journal_record(
            agency_id=thread.agency_id,
            type=JournalType.RETENTION_PURGED,
            actor="system",
            data={
                "messages": message_ids,
                "attachments": sorted(a.pk for a in attachments),
                "retention_years": retention_years_for(agency_id=thread.agency_id),
                "at": now,
            },
            thread_id=thread_id,
        )
        transaction.on_commit(lambda: _delete_files(files))
    return len(message_ids)


def _delete_files(names: list[str]) -> None:
    for name in names:
        try:
            default_storage.delete(name)
        except OSError as exc:
            logger.warning("A purged file could not be deleted (%s); it is no longer referenced.", type(exc).__name__)


def retention_purge(*, now: datetime | None = None) -> int:
    """The daily schedule's work: every agency's threads past retention, one at a time."""
    now = now or timezone.now()
    purged = 0
    for agency_id in Agency.objects.order_by("pk").values_list("pk", flat=True):
        for thread_id in threads_past_retention(agency_id=agency_id, now=now):
            purged += thread_purge(thread_id=thread_id, now=now)
    if purged:
        logger.info("Retention purge: content of %s messages removed.", purged)
    return purged
