"""Reads for the inbox: who may see which thread, the inbox lists, the live groups to
join and the events to replay after a reconnection."""

from datetime import timedelta

from django.db import models
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from conversations.models import Thread
from crm.models import Advisor, ContactPoint, Deputyship
from events.groups import advisor_group, pool_group, supervision_group
from events.models import Event

SEARCH_MAX_TERMS = 5


class InboxTab(models.TextChoices):
    MINE = "mine", _("My conversations")
    POOL = "pool", _("Agency pool")
    COVERING = "covering", _("Covering for colleagues")
    CLOSED = "closed", _("Closed")


def advisor_covered_ids(*, advisor: Advisor) -> list[int]:
    """The colleagues this advisor covers right now: those who named them deputy and are absent."""
    now = timezone.now()
    deputyships = Deputyship.objects.filter(deputy_id=advisor.pk).select_related("advisor__user")
    return [deputyship.advisor_id for deputyship in deputyships if not deputyship.advisor.is_present(now)]


def thread_visibility_q(*, advisor: Advisor, covered_ids: list[int] | None = None) -> Q:
    """The threads an advisor may see, as a filter on Thread.

    Their own (handled, or of customers they are the dedicated advisor of), those of the
    colleagues they cover as deputy while those are absent, and their agency's pool;
    a supervisor sees every thread of their agency. `covered_ids` saves a query when
    the caller already has them.
    """
    if not advisor.is_active:
        return Q(pk__in=[])
    if covered_ids is None:
        covered_ids = advisor_covered_ids(advisor=advisor)
    ids = [advisor.pk, *covered_ids]
    visible = (
        Q(handler_id__in=ids)
        | Q(customer__dedicated_advisor_id__in=ids)
        | Q(handler__isnull=True, agency_id=advisor.agency_id)
    )
    if advisor.is_supervisor:
        visible |= Q(agency_id=advisor.agency_id)
    return visible


def customer_visibility_q(*, advisor: Advisor, covered_ids: list[int] | None = None) -> Q:
    """The customers an advisor may see, as a filter on Customer: those whose thread they may
    see, and those whose dedicated advisor is them or a colleague they cover now; a
    supervisor sees every customer of their agency."""
    if not advisor.is_active:
        return Q(pk__in=[])
    if covered_ids is None:
        covered_ids = advisor_covered_ids(advisor=advisor)
    visible_thread = Thread.objects.filter(
        thread_visibility_q(advisor=advisor, covered_ids=covered_ids), customer_id=OuterRef("pk")
    )
    visible = Q(dedicated_advisor_id__in=[advisor.pk, *covered_ids]) | Q(Exists(visible_thread))
    if advisor.is_supervisor:
        visible |= Q(agency_id=advisor.agency_id)
    return visible


def _search_q(search: str) -> Q:
    """Every word must match a name, a customer number or an address (phone, email)."""
    matches = Q()
    for term in search.split()[:SEARCH_MAX_TERMS]:
        matches &= (
            Q(customer__first_name__icontains=term)
            | Q(customer__last_name__icontains=term)
            | Q(customer__customer_number__icontains=term)
            | Q(prospect__address__icontains=term)
            | Q(prospect__display_name__icontains=term)
            | Exists(ContactPoint.objects.filter(customer_id=OuterRef("customer_id"), address__icontains=term))
        )
    return matches


def thread_list_for_advisor(*, advisor: Advisor, tab: str = InboxTab.MINE, search: str = "") -> QuerySet[Thread]:
    """One tab of an advisor's inbox, most recent activity first.

    mine: open threads they handle or whose customer is theirs; pool: open threads of
    the agency nobody handles; covering: open threads of the colleagues they cover now
    (a thread they handle as deputy shows here and in mine); closed: every closed
    thread they may see. Two queries whatever the number of threads.
    """
    covered_ids = advisor_covered_ids(advisor=advisor)
    if tab == InboxTab.MINE:
        in_tab = Q(handler_id=advisor.pk) | Q(customer__dedicated_advisor_id=advisor.pk)
    elif tab == InboxTab.POOL:
        in_tab = Q(handler__isnull=True, agency_id=advisor.agency_id)
    elif tab == InboxTab.COVERING:
        in_tab = Q(customer__dedicated_advisor_id__in=covered_ids) | Q(handler_id__in=covered_ids)
    elif tab == InboxTab.CLOSED:
        in_tab = Q(status=Thread.Status.CLOSED)
    else:
        raise ValueError(f"Unknown inbox tab {tab!r}; expected one of {', '.join(InboxTab.values)}.")
    threads = Thread.objects.filter(thread_visibility_q(advisor=advisor, covered_ids=covered_ids), in_tab)
    if tab != InboxTab.CLOSED:
        threads = threads.exclude(status=Thread.Status.CLOSED)
    if search.strip():
        threads = threads.filter(_search_q(search))
    return threads.select_related("customer", "prospect", "handler__user").order_by("-last_activity_at", "-pk")


def inbox_groups_for(*, advisor: Advisor) -> list[str]:
    """The channel-layer groups an advisor's inbox joins: their own, those of the colleagues
    they cover now, their agency's pool and, for a supervisor, the agency's supervision."""
    return _inbox_groups(advisor, advisor_covered_ids(advisor=advisor))


def _inbox_groups(advisor: Advisor, covered_ids: list[int]) -> list[str]:
    groups = [advisor_group(advisor.pk)]
    groups += [advisor_group(covered_id) for covered_id in covered_ids]
    groups.append(pool_group(advisor.agency_id))
    if advisor.is_supervisor:
        groups.append(supervision_group(advisor.agency_id))
    return groups


def inbox_access_for(*, advisor_ids: list[int]) -> dict[int, tuple[Advisor, list[str]]]:
    """For many connected advisors at once, in two queries: each one who may still open the
    inbox (active, with an active login) and the groups they may hear now. Advisors who may
    not are left out."""
    advisors = {
        advisor.pk: advisor
        for advisor in Advisor.objects.select_related("user").filter(
            pk__in=advisor_ids, is_active=True, user__is_active=True
        )
    }
    now = timezone.now()
    covered: dict[int, list[int]] = {advisor_id: [] for advisor_id in advisors}
    deputyships = Deputyship.objects.filter(deputy_id__in=list(advisors)).select_related("advisor__user")
    for deputyship in deputyships:
        if not deputyship.advisor.is_present(now):
            covered[deputyship.deputy_id].append(deputyship.advisor_id)
    return {
        advisor_id: (advisor, _inbox_groups(advisor, covered[advisor_id])) for advisor_id, advisor in advisors.items()
    }


def events_visible_after(
    *, advisor: Advisor, since: int, overlap_seconds: float, limit: int | None = None
) -> list[Event]:
    """The events to replay to an inbox whose last seen event is `since`, in id order.

    Ids are drawn at insert and transactions commit in any order, so an event can
    become visible after a larger id was already pushed. Hence every event above
    `since`, plus those created up to `overlap_seconds` before event `since` (or
    before now when it is unknown): the client drops the ids it already has.
    Visibility is today's, on the event's thread; a thread taken away from the
    advisor (or from a colleague they cover) still replays its transfer, so the
    inbox can drop it, as the live push did.
    """
    if not advisor.is_active:
        return []
    anchor = Event.objects.filter(pk=since).values_list("created_at", flat=True).first() or timezone.now()
    covered_ids = advisor_covered_ids(advisor=advisor)
    visible_threads = Thread.objects.filter(thread_visibility_q(advisor=advisor, covered_ids=covered_ids))
    taken_away = Q(type=Event.Type.THREAD_ASSIGNED, payload__previous_handler__in=[advisor.pk, *covered_ids])
    events = (
        Event.objects.filter(thread__isnull=False)
        .filter(Q(thread__in=visible_threads.values("pk")) | taken_away)
        .filter(Q(pk__gt=since) | Q(created_at__gte=anchor - timedelta(seconds=overlap_seconds)))
        .order_by("pk")
    )
    if limit is not None:
        events = events[:limit]
    return list(events)
