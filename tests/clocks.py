"""The tests' fake clock: time passes only when code sleeps or the test moves it."""

from __future__ import annotations

#: Where fake time starts: a Friday morning, 2027-01-15 08:00 UTC.
NOW = 1_800_000_000.0


class FakeClock:
    """The package's ``Clock`` (wall time, monotonic time, sleep) on fake time: both clocks move
    only when code sleeps or the test sets ``now``. Called, it answers ``now``: the clock a
    ledger or the simulation's AWS takes."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now - NOW

    def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)

    def __call__(self) -> float:
        return self.now
