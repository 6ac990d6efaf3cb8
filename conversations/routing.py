"""Who handles a customer's thread, and why. Pure decisions: nothing here writes."""

from dataclasses import dataclass
from datetime import datetime

from django.utils import formats
from django.utils.translation import gettext as _

from conversations.models import Thread
from crm.models import Advisor, Deputyship


@dataclass(frozen=True)
class RoutingDecision:
    handler: Advisor | None
    reason: str


def absence_reason(advisor: Advisor, *, at: datetime) -> str:
    if not advisor.is_active or not advisor.user.is_active:
        return _("inactive")
    if advisor.is_out_of_office(at):
        if advisor.out_of_office_until:
            return _("out of office until %(date)s") % {
                "date": formats.date_format(advisor.out_of_office_until, "Y-m-d")
            }
        return _("out of office")
    return _("away")


def route_customer_thread(*, thread: Thread, dedicated: Advisor | None, at: datetime) -> RoutingDecision:
    """The dedicated advisor when present; otherwise whoever already handles the thread
    and is present (a deputy, or someone who claimed it); otherwise the first present
    deputy in order; otherwise the agency pool. The dedicated advisor takes the thread
    back at the first message after their return."""
    if dedicated is None:
        if thread.handler is not None and thread.handler.is_present(at):
            return RoutingDecision(thread.handler, thread.routing_reason)
        return RoutingDecision(None, _("pool: the customer has no dedicated advisor"))
    if dedicated.is_present(at):
        return RoutingDecision(dedicated, _("dedicated advisor"))

    absence = absence_reason(dedicated, at=at)
    if thread.handler is not None and thread.handler_id != dedicated.pk and thread.handler.is_present(at):
        return RoutingDecision(thread.handler, thread.routing_reason)
    deputyships = Deputyship.objects.filter(advisor=dedicated).select_related("deputy__user").order_by("position", "id")
    for deputyship in deputyships:
        if deputyship.deputy.is_present(at):
            return RoutingDecision(
                deputyship.deputy,
                _("deputy of %(advisor)s: %(absence)s")
                % {"advisor": dedicated.user.get_username(), "absence": absence},
            )
    return RoutingDecision(
        None,
        _("pool: no deputy available (%(advisor)s: %(absence)s)")
        % {"advisor": dedicated.user.get_username(), "absence": absence},
    )


def route_prospect_thread(*, thread: Thread, at: datetime) -> RoutingDecision:
    """An unknown number stays in the pool until someone claims it."""
    if thread.handler is not None and thread.handler.is_present(at):
        return RoutingDecision(thread.handler, thread.routing_reason)
    return RoutingDecision(None, _("unknown number"))
