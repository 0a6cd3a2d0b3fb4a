"""What one measured run is: an inbox, a tenant limit, and what the other integrations spend."""

from __future__ import annotations

import io
import math
import sys
import threading
import time
from dataclasses import dataclass, field

from local.lucca_simulator import Simulator, SimulatorConfig

#: Lucca's tenant limit: 50 requests per window (60 s in production, compressed here).
TENANT_LIMIT = 50
#: Our default share of it (``BUDGET_LIMIT``'s default in config.py and the template).
BUDGET_LIMIT = 40
#: Lucca's v4 endpoints serve at most this many items a page: the listing's physical minimum.
MAX_PAGE_SIZE = 1000
#: Categories the default gate and rules book (see tests/integration/test_pipeline.py).
BOOKABLE = frozenset({"ready", "ready_needs_label", "credit_note"})
#: Categories whose every document the example rules (config/rules.label-and-due-date.json)
#: update before booking; the bench runs ours with them, as the baseline fills the same.
NEEDS_UPDATE = frozenset({"ready_needs_label"})


@dataclass(frozen=True)
class Scenario:
    key: str
    documents: int
    window_seconds: float
    category: str
    external_per_window: int = 0
    seed: int = 7

    def simulator(self) -> Simulator:
        return Simulator(
            SimulatorConfig(
                invoices=self.documents,
                seed=self.seed,
                category_weights={self.category: 1.0},
                rate_limit=TENANT_LIMIT,
                window_seconds=self.window_seconds,
                external_requests_per_window=self.external_per_window,
                fault_rate=0.0,
            )
        )

    @property
    def updates_each(self) -> bool:
        return self.category in NEEDS_UPDATE

    def minimum_requests(self, bookable: int) -> int:
        """1 per booking, +1 per update, + the listing pages (count rides on page 1)."""
        pages = max(1, math.ceil(self.documents / MAX_PAGE_SIZE))
        return bookable * (2 if self.updates_each else 1) + pages

    @property
    def budget_rate(self) -> float:
        """Our share, in requests per second."""
        return BUDGET_LIMIT / self.window_seconds

    @property
    def remaining_rate(self) -> float:
        """What the tenant limit leaves after the other integrations, requests per second."""
        return (TENANT_LIMIT - self.external_per_window) / self.window_seconds


class NoiseSink(io.TextIOBase):
    """Where the handlers' stdout goes during a run (Powertools log lines, EMF): counted, and
    the last few kept, instead of scrolling a thousand lines past the progress."""

    def __init__(self, keep: int = 20) -> None:
        self.lines = 0
        self.last: list[str] = []
        self._keep = keep
        self._lock = threading.Lock()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        with self._lock:
            for line in text.splitlines():
                if line.strip():
                    self.lines += 1
                    self.last = [*self.last[-(self._keep - 1) :], line[:300]]
        return len(text)


#: One sink for the whole process: Powertools' logger binds its stream once, at first import.
NOISE = NoiseSink()


def say(message: str) -> None:
    """Progress, on the real stdout even while the handlers' output is redirected."""
    stream = sys.__stdout__ or sys.stderr
    print(message, file=stream, flush=True)


@dataclass
class ProgressTicker:
    """Prints booked / requests / 429s every few seconds while a run drains."""

    label: str
    sim: Simulator
    target: int
    every: float = 10.0
    _started: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> ProgressTicker:
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            say(self.line())

    def line(self) -> str:
        totals = self.sim.state()["totals"]
        elapsed = time.monotonic() - self._started
        return (
            f"    [{self.label}] {elapsed:6.1f}s  booked {totals['booked']:>5}/{self.target}"
            f"  requests {totals['requests']:>5}  429s {totals['rateLimited']:>4}"
        )
