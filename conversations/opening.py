"""Whether an agency is open at a moment, and when it opens next: its weekly opening hours,
its closed days, and the public holidays of its country (the `holidays` package). Reads only."""

import functools
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import holidays

from crm.models import Agency

# How far ahead the next opening is looked for: beyond, the reply says nothing of it.
LOOKAHEAD_DAYS = 21


@dataclass(frozen=True)
class Schedule:
    """An agency's opening rules, loaded once (two queries) for a batch of messages."""

    agency: Agency
    # weekday → [(opens_at, closes_at)], in the agency's time zone.
    slots: dict[int, list]
    closed_days: frozenset[date]

    @classmethod
    def load(cls, agency: Agency) -> "Schedule":
        slots: dict[int, list] = {}
        for hours in agency.opening_hours.all():
            slots.setdefault(hours.weekday, []).append((hours.opens_at, hours.closes_at))
        return cls(agency, slots, frozenset(agency.closed_days.values_list("date", flat=True)))

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.agency.timezone)

    def holiday(self, day: date) -> str:
        """The public holiday's name on `day` in the agency's country, or ""."""
        return _holidays(self.agency.country, self.agency.subdivision, day.year).get(day, "")

    def is_day_closed(self, day: date) -> bool:
        return day in self.closed_days or bool(self.holiday(day))

    @property
    def configured(self) -> bool:
        """An agency without opening hours has none to be outside of: never "closed"."""
        return bool(self.slots)

    def is_open(self, at: datetime) -> bool:
        if not self.configured:
            return True
        local = at.astimezone(self.zone)
        if self.is_day_closed(local.date()):
            return False
        now = local.time()
        return any(opens <= now < closes for opens, closes in self.slots.get(local.weekday(), []))

    def next_opening(self, at: datetime) -> datetime | None:
        """The next moment the agency opens after `at` (aware, in its time zone), or None."""
        local = at.astimezone(self.zone)
        for offset in range(LOOKAHEAD_DAYS):
            day = local.date() + timedelta(days=offset)
            if self.is_day_closed(day):
                continue
            for opens, _closes in sorted(self.slots.get(day.weekday(), [])):
                moment = datetime.combine(day, opens, tzinfo=self.zone)
                if moment > local:
                    return moment
        return None


@functools.lru_cache(maxsize=64)
def _holidays(country: str, subdivision: str, year: int):
    try:
        return holidays.country_holidays(country, subdiv=subdivision or None, years=year)
    except NotImplementedError:
        # A country the package does not know: no public holidays rather than no replies.
        return {}
