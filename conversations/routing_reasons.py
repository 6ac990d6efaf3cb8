"""Why a thread is where it is: a code and its parameters are stored, and the sentence is
written in the reader's language when it is shown (the inbox, the admin, the API). Routing
compares the codes and parameters, never a translated sentence. Advisors and supervisors
read it; customers never do.

The parameters are what the sentence names, as it was when the decision was taken: the
advisors' usernames, the customer number, the free text someone typed, the end of an absence
(ISO 8601)."""

from dataclasses import dataclass, field

from django.db import models
from django.utils import formats, timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _


class ReasonCode(models.TextChoices):
    DEDICATED = "dedicated", _("dedicated advisor")
    DEPUTY = "deputy", _("deputy of the dedicated advisor")
    POOL_NO_DEDICATED = "pool_no_dedicated", _("pool: the customer has no dedicated advisor")
    POOL_NO_DEPUTY = "pool_no_deputy", _("pool: no deputy available")
    UNKNOWN_NUMBER = "unknown_number", _("unknown number")
    CLAIMED = "claimed", _("claimed from the pool")
    TRANSFERRED = "transferred", _("transferred")
    LINKED = "linked", _("linked to a customer")
    REASSIGNED = "reassigned", _("reassigned")
    URGENT = "urgent", _("urgent topic: the urgent pool")
    # A sentence stored before the codes existed, kept as it was written.
    TEXT = "text", _("as written")


class Absence(models.TextChoices):
    INACTIVE = "inactive", _("inactive")
    OUT_OF_OFFICE = "out_of_office", _("out of office")
    AWAY = "away", _("away")


def _absence(params: dict) -> str:
    if params.get("absence") == Absence.INACTIVE:
        return gettext("inactive")
    if params.get("absence") == Absence.OUT_OF_OFFICE:
        until = parse_datetime(params.get("until") or "")
        if until is not None:
            # A day alone (read back from a sentence stored before the codes) is shown as it is.
            until = timezone.localtime(until) if timezone.is_aware(until) else until
            return gettext("out of office until %(date)s") % {"date": formats.date_format(until, "Y-m-d")}
        return gettext("out of office")
    return gettext("away")


def _sentence(code: str, params: dict) -> str:
    match code:
        case ReasonCode.DEDICATED:
            return gettext("dedicated advisor")
        case ReasonCode.DEPUTY:
            return gettext("deputy of %(advisor)s: %(absence)s") % {
                "advisor": params.get("advisor", ""),
                "absence": _absence(params),
            }
        case ReasonCode.POOL_NO_DEDICATED:
            return gettext("pool: the customer has no dedicated advisor")
        case ReasonCode.POOL_NO_DEPUTY:
            return gettext("pool: no deputy available (%(advisor)s: %(absence)s)") % {
                "advisor": params.get("advisor", ""),
                "absence": _absence(params),
            }
        case ReasonCode.UNKNOWN_NUMBER:
            return gettext("unknown number")
        case ReasonCode.CLAIMED:
            return gettext("claimed from the pool by %(advisor)s") % {"advisor": params.get("advisor", "")}
        case ReasonCode.TRANSFERRED:
            return gettext("transferred by %(by)s: %(reason)s") % {
                "by": params.get("by", ""),
                "reason": params.get("reason", ""),
            }
        case ReasonCode.LINKED:
            return gettext("linked to customer %(number)s by %(by)s") % {
                "number": params.get("number", ""),
                "by": params.get("by", ""),
            }
        case ReasonCode.REASSIGNED:
            return gettext("reassigned: %(reason)s") % {"reason": params.get("reason", "")}
        case ReasonCode.URGENT:
            return gettext("urgent topic: the urgent pool")
        case ReasonCode.TEXT:
            return params.get("text", "")
    return ""


@dataclass(frozen=True)
class RoutingReason:
    """A routing decision's why; `str()` writes it in the active language. Empty (false)
    for a thread never routed."""

    code: str = ""
    params: dict = field(default_factory=dict)

    def __str__(self) -> str:
        return _sentence(self.code, self.params)

    def __bool__(self) -> bool:
        return bool(self.code)
