"""Working hours: when invoices arrive and a person waits for them, the inbox is listed on
every scheduled run; outside them, less often (each listing is a request of the tenant's).

``"Mon-Fri 07:00-20:00"`` in a time zone (``Europe/Paris``). A zone the runtime cannot find
(no tz database) makes every hour a working hour: more listing, never less — safe.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPEC = re.compile(
    r"^\s*(?P<first>[a-z]{3})(?:-(?P<last>[a-z]{3}))?\s+"
    r"(?P<start>\d{1,2}):(?P<start_m>\d{2})-(?P<end>\d{1,2}):(?P<end_m>\d{2})\s*$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class WorkingHours:
    days: frozenset[int]
    start_minute: int
    end_minute: int
    zone: tzinfo | None

    @classmethod
    def parse(cls, spec: str, zone: str) -> WorkingHours:
        match = _SPEC.match(spec)
        if match is None:
            raise ValueError(f"working hours {spec!r}: expected e.g. 'Mon-Fri 07:00-20:00'")
        first = match["first"].lower()
        last = (match["last"] or match["first"]).lower()
        if first not in _DAYS or last not in _DAYS:
            raise ValueError(f"working hours {spec!r}: days are Mon, Tue, ... Sun")
        a, b = _DAYS.index(first), _DAYS.index(last)
        days = frozenset(range(a, b + 1)) if a <= b else frozenset([*range(a, 7), *range(b + 1)])
        start = int(match["start"]) * 60 + int(match["start_m"])
        end = int(match["end"]) * 60 + int(match["end_m"])
        if not 0 <= start < end <= 24 * 60:
            raise ValueError(f"working hours {spec!r}: the day must start before it ends")
        try:
            found: tzinfo | None = ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            found = None
        return cls(days, start, end, found)

    def contains(self, epoch: float) -> bool:
        if self.zone is None:
            return True
        local = datetime.fromtimestamp(epoch, UTC).astimezone(self.zone)
        minute = local.hour * 60 + local.minute
        return local.weekday() in self.days and self.start_minute <= minute < self.end_minute
