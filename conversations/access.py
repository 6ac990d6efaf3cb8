"""Who may see what: the one module for the rules of access to threads and customers.

The rules are one table, `REACHES`: each way of seeing a thread (as its handler or the
customer's dedicated advisor, through the agency pool, as a supervisor) names a channel-layer
group kind, the keys of that kind a thread is heard under, the keys an advisor holds, and the
same test as a filter on Thread. Every shape a reader needs is derived from it, so that they
cannot drift apart: the query filters (`thread_visibility_q`, `customer_visibility_q`,
`event_visibility_q`), the groups an inbox joins (`inbox_groups_for`, `inbox_access_for`), the
groups an event on a thread is pushed to (`thread_audience`, and `event_audience` when it is
sent again from the log) and who just lost sight of it (`lost_sight`). An advisor may see a
thread exactly when one of their groups is in its audience; tests/conversations/test_access.py
checks it over every routing situation.

A deputy covering an absent colleague holds that colleague's key: they join the colleague's
group and see what the colleague sees as handler or dedicated advisor.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from conversations.models import Thread
from crm.models import Advisor, Deputyship
from events.groups import advisor_group, pool_group, supervision_group
from events.models import Event


@dataclass(frozen=True)
class Reach:
    """One way of seeing a thread, in its two shapes side by side."""

    group: Callable[[int], str]
    # The keys under which a thread is heard (its events go to their groups).
    of_thread: Callable[[Thread], Iterable[int]]
    # The keys an advisor holds, given the colleagues they cover now.
    of_advisor: Callable[[Advisor, list[int]], Iterable[int]]
    # The threads heard under one of `keys`, as a filter on Thread: `of_thread` in SQL.
    threads_q: Callable[[list[int]], Q]


def _dedicated_id(thread: Thread) -> int | None:
    # The thread's copy of its customer's dedicated advisor (Thread.dedicated_advisor): the
    # filter below reads it without a join, so the audience reads the same column.
    return thread.dedicated_advisor_id


REACHES: tuple[Reach, ...] = (
    # Its handler, and the customer's dedicated advisor (and whoever covers either of them).
    Reach(
        group=advisor_group,
        of_thread=lambda thread: [key for key in (thread.handler_id, _dedicated_id(thread)) if key is not None],
        of_advisor=lambda advisor, covered_ids: [advisor.pk, *covered_ids],
        threads_q=lambda keys: Q(handler_id__in=keys) | Q(dedicated_advisor_id__in=keys),
    ),
    # The agency pool, while nobody handles it: any advisor of the agency.
    Reach(
        group=pool_group,
        of_thread=lambda thread: [thread.agency_id] if thread.handler_id is None else [],
        of_advisor=lambda advisor, covered_ids: [advisor.agency_id],
        threads_q=lambda keys: Q(handler__isnull=True, agency_id__in=keys),
    ),
    # The agency's supervisors: every thread of the agency.
    Reach(
        group=supervision_group,
        of_thread=lambda thread: [thread.agency_id],
        of_advisor=lambda advisor, covered_ids: [advisor.agency_id] if advisor.is_supervisor else [],
        threads_q=lambda keys: Q(agency_id__in=keys),
    ),
)


def advisor_covered_ids(*, advisor: Advisor) -> list[int]:
    """The colleagues this advisor covers right now: those who named them deputy and are absent."""
    now = timezone.now()
    deputyships = Deputyship.objects.filter(deputy_id=advisor.pk).select_related("advisor__user")
    return [deputyship.advisor_id for deputyship in deputyships if not deputyship.advisor.is_present(now)]


def thread_visibility_q(*, advisor: Advisor, covered_ids: list[int] | None = None) -> Q:
    """The threads an advisor may see, as a filter on Thread: those heard under a key they hold
    (REACHES). Their own (handled, or of customers they are the dedicated advisor of), those
    of the colleagues they cover as deputy while those are absent, and their agency's pool;
    a supervisor sees every thread of their agency. `covered_ids` saves a query when the
    caller already has them."""
    if not advisor.is_active:
        return Q(pk__in=[])
    if covered_ids is None:
        covered_ids = advisor_covered_ids(advisor=advisor)
    visible = Q(pk__in=[])
    for reach in REACHES:
        keys = list(dict.fromkeys(reach.of_advisor(advisor, covered_ids)))
        if keys:
            visible |= reach.threads_q(keys)
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


def inbox_groups_for(*, advisor: Advisor) -> list[str]:
    """The channel-layer groups an advisor's inbox joins: their own, those of the colleagues
    they cover now, their agency's pool and, for a supervisor, the agency's supervision."""
    return _inbox_groups(advisor, advisor_covered_ids(advisor=advisor))


def _inbox_groups(advisor: Advisor, covered_ids: list[int]) -> list[str]:
    if not advisor.is_active:
        return []
    groups = [reach.group(key) for reach in REACHES for key in reach.of_advisor(advisor, covered_ids)]
    return list(dict.fromkeys(groups))


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


def thread_audience(thread: Thread) -> list[str]:
    """The groups that may see this thread now (REACHES): its handler (or the agency pool when
    it has none), the customer's dedicated advisor, whose groups covering deputies join, and
    the agency's supervisors."""
    groups = [reach.group(key) for reach in REACHES for key in reach.of_thread(thread)]
    return list(dict.fromkeys(groups))


def lost_sight(before: Iterable[str], thread: Thread) -> tuple[str, ...]:
    """The groups of `before` (the thread's audience before a change, empty for a new thread,
    which nobody saw yet) that may not see it now: told of the change, so that their inbox
    drops it."""
    now = set(thread_audience(thread))
    return tuple(group for group in dict.fromkeys(before) if group not in now)


def event_audience(*, event: Event, thread: Thread) -> list[str]:
    """The groups an event on `thread` is sent to after the fact, from the log (the
    embedded default's relay, channels_app.relay): those that may see the thread now and, for
    a transfer, the advisor it was taken from (whose deputies join their group), so that
    their inbox drops it. The same as `event_visibility_q` lets each inbox replay."""
    groups = thread_audience(thread)
    if event.type == Event.Type.THREAD_ASSIGNED and event.payload.get("previous_handler"):
        groups.append(advisor_group(event.payload["previous_handler"]))
    return list(dict.fromkeys(groups))


def event_visibility_q(*, advisor: Advisor, covered_ids: list[int] | None = None) -> Q:
    """The events an advisor may read again (the inbox's replay, the API's feed), as a filter on
    Event: those of the threads they may see now, and the transfers that took a thread away
    from them or from a colleague they cover, so that a replay drops it as the push did."""
    if not advisor.is_active:
        return Q(pk__in=[])
    if covered_ids is None:
        covered_ids = advisor_covered_ids(advisor=advisor)
    taken_away = Q(type="thread.assigned", payload__previous_handler__in=[advisor.pk, *covered_ids])
    # Joined, not `thread__in` a subquery: the latter hashes every thread the advisor may see
    # (85,000 for a call-centre advisor) to check a few hundred events.
    visible = _on_thread(thread_visibility_q(advisor=advisor, covered_ids=covered_ids))
    return Q(thread__isnull=False) & (visible | taken_away)


def _on_thread(q: Q) -> Q:
    """A filter on Thread as a filter on what points at it through `thread`."""
    prefixed = Q(
        *[_on_thread(child) if isinstance(child, Q) else (f"thread__{child[0]}", child[1]) for child in q.children]
    )
    prefixed.connector, prefixed.negated = q.connector, q.negated
    return prefixed
