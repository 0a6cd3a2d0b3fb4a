"""Lucca-style timestamps: ISO 8601 with the Paris offset and 7 fractional digits.

Lucca runs on .NET, whose clock ticks every 100 ns, so its timestamps carry 7 fractional digits
(``2026-03-14T10:22:33.1234567+01:00``). Instants are kept here as integer ticks since the Unix
epoch, which makes them exact, ordered and easy to bump by one tick.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime, timedelta
from typing import Protocol

TICKS_PER_SECOND = 10_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Clock(Protocol):
    """Wall time, monotonic time and sleep: the real ones, or a simulation's virtual clock
    (the simulator keeps its own seam: it must not import the project's package)."""

    def time(self) -> float: ...

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


SYSTEM_CLOCK: Clock = SystemClock()


def now_ticks(clock: Clock = SYSTEM_CLOCK) -> int:
    return round(clock.time() * TICKS_PER_SECOND)


def ticks_from_datetime(moment: datetime) -> int:
    delta = moment.astimezone(UTC) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * TICKS_PER_SECOND + delta.microseconds * 10


def _last_sunday(year: int, month: int) -> date:
    """Last Sunday of a month whose successor starts 31 days after the 1st (March, October)."""
    last = date(year, month, 31)
    return last - timedelta(days=(last.weekday() + 1) % 7)


def paris_offset(moment_utc: datetime) -> timedelta:
    """Europe/Paris offset by the EU rule (summer time from the last Sunday of March, 01:00 UTC,
    to the last Sunday of October, 01:00 UTC). Computed rather than read from tzdata so the
    generated inbox is the same on every machine."""
    year = moment_utc.year
    start = datetime.combine(_last_sunday(year, 3), datetime.min.time(), UTC) + timedelta(hours=1)
    end = datetime.combine(_last_sunday(year, 10), datetime.min.time(), UTC) + timedelta(hours=1)
    return timedelta(hours=2) if start <= moment_utc < end else timedelta(hours=1)


def format_ticks(ticks: int) -> str:
    """``YYYY-MM-DDTHH:MM:SS.fffffff+HH:MM`` in Paris time."""
    seconds, fraction = divmod(ticks, TICKS_PER_SECOND)
    moment_utc = _EPOCH + timedelta(seconds=seconds)
    offset = paris_offset(moment_utc)
    local = moment_utc + offset
    hours, rest = divmod(int(offset.total_seconds()), 3600)
    return f"{local:%Y-%m-%dT%H:%M:%S}.{fraction:07d}+{hours:02d}:{rest // 60:02d}"


def parse_timestamp(text: object) -> datetime | None:
    """An ISO 8601 timestamp string as a datetime, or None if it is not one (documents added
    verbatim may hold anything)."""
    if not isinstance(text, str):
        return None
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def parse_ticks(text: object) -> int | None:
    """Ticks of a timestamp string, or None if it is not one (documents added verbatim)."""
    moment = parse_timestamp(text)
    if moment is None or not isinstance(text, str):  # the second test only narrows the type
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    ticks = ticks_from_datetime(moment)
    # fromisoformat keeps 6 digits; recover the 7th so a bump stays strictly later.
    if "." in text:
        digits = text.split(".", 1)[1][:7]
        if len(digits) == 7 and digits.isdigit():
            ticks += int(digits[6])
    return ticks
