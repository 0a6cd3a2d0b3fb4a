"""EventBridge Scheduler expressions: ``rate(...)`` and ``cron(...)`` in a time zone.

``cron(minutes hours day-of-month month day-of-week year)`` as AWS reads it: ``*``, lists,
ranges, ``/`` steps, ``?`` in one of the two day fields, day names (``MON-FRI``) or numbers
(1 = Sunday ... 7 = Saturday). ``L``, ``W`` and ``#`` are not supported (the template does not
use them) and are refused rather than misread.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

_RATE = re.compile(r"rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)")
_CRON = re.compile(r"cron\((.+)\)")
_DAYS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
_MONTHS = {
    name: i + 1
    for i, name in enumerate(
        ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
    )
}


def _values(field: str, low: int, high: int, names: dict[str, int] | None = None) -> set[int]:
    if field in ("*", "?"):
        return set(range(low, high + 1))
    found: set[int] = set()
    for part in field.split(","):
        if any(mark in part for mark in ("L", "W", "#")) and not (names and part in names):
            raise ValueError(f"unsupported cron field {part!r}")
        base, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1

        def number(text: str) -> int:
            return names[text] if names and text in names else int(text)

        if base == "*":
            start, end = low, high
        elif "-" in base:
            first, last = base.split("-")
            start, end = number(first), number(last)
        else:
            start = number(base)
            end = high if step_text else start
        found.update(range(start, end + 1, step))
    return found


@dataclass(frozen=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    days_of_month: frozenset[int] | None
    months: frozenset[int]
    days_of_week: frozenset[int] | None
    zone: ZoneInfo

    @classmethod
    def parse(cls, body: str, zone: str) -> Cron:
        fields = body.split()
        if len(fields) != 6:
            raise ValueError(f"cron needs 6 fields, got {body!r}")
        minute, hour, dom, month, dow, _year = fields
        return cls(
            minutes=frozenset(_values(minute, 0, 59)),
            hours=frozenset(_values(hour, 0, 23)),
            days_of_month=None if dom == "?" else frozenset(_values(dom, 1, 31)),
            months=frozenset(_values(month, 1, 12, _MONTHS)),
            days_of_week=None if dow == "?" else frozenset(_values(dow, 1, 7, _DAYS)),
            zone=ZoneInfo(zone),
        )

    def matches(self, local: datetime) -> bool:
        aws_weekday = (local.isoweekday() % 7) + 1  # Sunday = 1
        return (
            local.minute in self.minutes
            and local.hour in self.hours
            and local.month in self.months
            and (self.days_of_month is None or local.day in self.days_of_month)
            and (self.days_of_week is None or aws_weekday in self.days_of_week)
        )

    def next_after(self, epoch: float) -> float:
        moment = datetime.fromtimestamp(epoch, UTC).replace(second=0, microsecond=0)
        moment += timedelta(minutes=1)
        for _ in range(366 * 24 * 60):
            if self.matches(moment.astimezone(self.zone)):
                return moment.timestamp()
            moment += timedelta(minutes=1)
        raise ValueError("cron expression never fires")


def next_fire(expression: str, after: float, zone: str = "UTC") -> float:
    """The first instant strictly after ``after`` at which ``expression`` fires."""
    rate = _RATE.fullmatch(expression)
    if rate is not None:
        unit = {"minute": 60, "hour": 3600, "day": 86400}[rate.group(2).rstrip("s")]
        return after + int(rate.group(1)) * unit
    cron = _CRON.fullmatch(expression)
    if cron is None:
        raise ValueError(f"unsupported schedule expression {expression!r}")
    return Cron.parse(cron.group(1), zone).next_after(after)
