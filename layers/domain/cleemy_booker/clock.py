"""The one clock seam: wall time, monotonic time and sleep, passed to everything that waits.

Production code runs on ``SYSTEM_CLOCK``. The simulation (``sim/``) hands the same objects a
virtual clock, on which time passes only when code sleeps or a modelled latency elapses, so
weeks of operation at production time constants run in minutes.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def time(self) -> float:
        """Wall-clock epoch seconds (shared between hosts: claims, budget slots, ledger)."""

    def monotonic(self) -> float:
        """Seconds that never go back (deadlines inside one invocation)."""

    def sleep(self, seconds: float) -> None:
        """Wait; the only way time passes on a virtual clock."""


class SystemClock:
    """The real clock."""

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)

    def __repr__(self) -> str:
        return "SystemClock()"


SYSTEM_CLOCK: Clock = SystemClock()


def utc_iso(epoch: float) -> str:
    """An instant as the ledger stores it: ISO 8601, UTC, microseconds (sorts as text)."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="microseconds")
