"""Reads for the inbox: the inbox lists and the events to replay after a reconnection.
Who may see which thread, and the live groups to join, are conversations.access."""

from django.db import models
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils.translation import gettext_lazy as _

from conversations.access import advisor_covered_ids, event_visibility_q, thread_visibility_q
from conversations.models import Thread
from crm.models import Advisor, ContactPoint
from events.log import events_from
from events.models import Event

SEARCH_MAX_TERMS = 5


class InboxTab(models.TextChoices):
    MINE = "mine", _("My conversations")
    POOL = "pool", _("Agency pool")
    COVERING = "covering", _("Covering for colleagues")
    CLOSED = "closed", _("Closed")


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


def events_visible_from(*, advisor: Advisor, position: int, limit: int) -> list[Event]:
    """The events to replay to an inbox that has every event below `position` (a horizon,
    events.log), in commit order.

    Visibility is today's, on the event's thread; a thread taken away from the advisor (or
    from a colleague they cover) still replays its transfer, so the inbox can drop it, as
    the live push did.
    """
    if not advisor.is_active:
        return []
    return events_from(position=position, visible=event_visibility_q(advisor=advisor), limit=limit)
