"""Who may see what: the one module for the rules of access to threads and customers.

The same rules in the three shapes their readers need, side by side so that they stay
in step: as query filters (`thread_visibility_q`, `customer_visibility_q`), as the
channel-layer groups an inbox joins (`inbox_groups_for`, `inbox_access_for`), and as
the groups an event on a thread is pushed to (`thread_audience`, `left_behind`).
"""

from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from conversations.models import Thread
from crm.models import Advisor, Deputyship
from events.groups import advisor_group, pool_group, supervision_group


def advisor_covered_ids(*, advisor: Advisor) -> list[int]:
    """The colleagues this advisor covers right now: those who named them deputy and are absent."""
    now = timezone.now()
    deputyships = Deputyship.objects.filter(deputy_id=advisor.pk).select_related("advisor__user")
    return [deputyship.advisor_id for deputyship in deputyships if not deputyship.advisor.is_present(now)]


def thread_visibility_q(*, advisor: Advisor, covered_ids: list[int] | None = None) -> Q:
    """The threads an advisor may see, as a filter on Thread.

    Their own (handled, or of customers they are the dedicated advisor of: read from the
    thread's copy, Thread.dedicated_advisor, so that no join is needed), those of the
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
        Q(handler_id__in=ids) | Q(dedicated_advisor_id__in=ids) | Q(handler__isnull=True, agency_id=advisor.agency_id)
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


def thread_audience(thread: Thread) -> list[str]:
    """The groups that may see this thread now: its handler (or the agency pool when it
    has none), the customer's dedicated advisor, whose group covering deputies join,
    and the agency's supervisors."""
    groups = [supervision_group(thread.agency_id)]
    if thread.handler_id:
        groups.append(advisor_group(thread.handler_id))
    else:
        groups.append(pool_group(thread.agency_id))
    dedicated_id = thread.customer.dedicated_advisor_id if thread.customer_id else None
    if dedicated_id and dedicated_id != thread.handler_id:
        groups.append(advisor_group(dedicated_id))
    return groups


def left_behind(previous_handler_id: int | None, thread: Thread, *, was_in_pool: bool) -> tuple[str, ...]:
    """Who just lost sight of a thread whose handler changed: its previous handler, or
    the agency pool it left (only if it was there: a new thread was never pooled, and
    its customer's name must not reach the pool)."""
    if previous_handler_id is None:
        return (pool_group(thread.agency_id),) if was_in_pool and thread.handler_id else ()
    return (advisor_group(previous_handler_id),) if previous_handler_id != thread.handler_id else ()
