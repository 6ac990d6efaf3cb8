"""Who handles a customer's thread, and why. Pure decisions: nothing here writes."""

from dataclasses import dataclass
from datetime import datetime

from conversations.models import Thread
from conversations.routing_reasons import Absence, ReasonCode, RoutingReason
from crm.models import Advisor, Deputyship


@dataclass(frozen=True)
class RoutingDecision:
    handler: Advisor | None
    reason: RoutingReason


def absence_reason(advisor: Advisor, *, at: datetime) -> dict:
    """Why the advisor cannot take the thread, as routing reason parameters."""
    if not advisor.is_active or not advisor.user.is_active:
        return {"absence": Absence.INACTIVE}
    if advisor.is_out_of_office(at):
        if advisor.out_of_office_until:
            return {"absence": Absence.OUT_OF_OFFICE, "until": advisor.out_of_office_until.isoformat()}
        return {"absence": Absence.OUT_OF_OFFICE}
    return {"absence": Absence.AWAY}


def route_customer_thread(*, thread: Thread, dedicated: Advisor | None, at: datetime) -> RoutingDecision:
    """The dedicated advisor when present; otherwise whoever already handles the thread
    and is present (a deputy, or someone who claimed it); otherwise the first present
    deputy in order; otherwise the agency pool. The dedicated advisor takes the thread
    back at the first message after their return."""
    if dedicated is None:
        if thread.handler is not None and thread.handler.is_present(at):
            return RoutingDecision(thread.handler, thread.routing_reason)
        return RoutingDecision(None, RoutingReason(ReasonCode.POOL_NO_DEDICATED))
    if dedicated.is_present(at):
        return RoutingDecision(dedicated, RoutingReason(ReasonCode.DEDICATED))

    absence = absence_reason(dedicated, at=at)
    if thread.handler is not None and thread.handler_id != dedicated.pk and thread.handler.is_present(at):
        return RoutingDecision(thread.handler, thread.routing_reason)
    deputyships = Deputyship.objects.filter(advisor=dedicated).select_related("deputy__user").order_by("position", "id")
    for deputyship in deputyships:
        if deputyship.deputy.is_present(at):
            return RoutingDecision(
                deputyship.deputy,
                RoutingReason(ReasonCode.DEPUTY, {"advisor": dedicated.user.get_username(), **absence}),
            )
    return RoutingDecision(
        None, RoutingReason(ReasonCode.POOL_NO_DEPUTY, {"advisor": dedicated.user.get_username(), **absence})
    )


def route_prospect_thread(*, thread: Thread, at: datetime) -> RoutingDecision:
    """An unknown number stays in the pool until someone claims it."""
    if thread.handler is not None and thread.handler.is_present(at):
        return RoutingDecision(thread.handler, thread.routing_reason)
    return RoutingDecision(None, RoutingReason(ReasonCode.UNKNOWN_NUMBER))


def route_urgent_thread(*, thread: Thread, at: datetime) -> RoutingDecision:
    """An urgent topic waits in the urgent pool (the thread's agency is set to it) until someone
    there takes it; then it stays with them while they are present."""
    if thread.handler is not None and thread.handler.is_present(at):
        return RoutingDecision(thread.handler, thread.routing_reason)
    return RoutingDecision(None, RoutingReason(ReasonCode.URGENT))
