"""The figures, read from the simulator's ground truth and request log (what Lucca would see).

Drain time is taken from the simulator's own request timestamps: first request to last
successful booking. That is what the budget governs; the AWS side (in memory) only shows in it
when it makes the pipeline slower than the budget, and ``PacingFigures`` says how much.
"""

from __future__ import annotations

import itertools
import json
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from bench.scenario import BOOKABLE, Scenario
from tests.harness import dead_letters


class QueueStack(Protocol):
    """What the driver needs of a stack: its queue, its DLQ and the SQS client."""

    sqs: Any
    queue_url: str
    dlq_url: str


#: A gap between two of our requests longer than this many budget intervals counts as a stall.
STALL_FACTOR = 1.5


@dataclass(frozen=True)
class PacingFigures:
    """Where the drain time went, against evenly spaced requests at the budget's interval."""

    interval: float
    #: (requests - 1) x interval: the drain time of perfectly paced requests.
    paced_seconds: float
    #: From the first (listing) request to the next one: poller claim + queue + processor start.
    startup_seconds: float
    #: Sum of (gap - interval) over every gap after the start: time lost to the pipeline.
    excess_seconds: float
    stalls: int
    median_gap: float
    #: Of ``excess_seconds``, the part in gaps that follow a 429 (the pause it imposes).
    after_429_seconds: float
    #: 429s that came within 1.5 intervals of the one before: sent from a slot reserved before
    #: that 429 pushed the shared budget back (a request already doomed when it left).
    doomed_429s: int

    def as_dict(self) -> dict[str, float]:
        return {key: round(value, 4) for key, value in asdict(self).items()}


@dataclass(frozen=True)
class RunFigures:
    documents: int
    bookable: int
    booked: int
    booked_exactly_once: bool
    double_booked: int
    window_seconds: float
    requests: int
    by_endpoint: dict[str, int]
    by_status: dict[str, int]
    rate_limited: int
    minimum_requests: int
    drain_seconds: float
    budget_rate: float
    remaining_rate: float
    #: The most requests Lucca accepted from us in any one window: our share of the tenant.
    peak_in_window: int
    #: Documents that were answered a 429 at least once.
    throttled_documents: tuple[int, ...]
    pacing: PacingFigures

    @property
    def per_booked(self) -> float:
        return self.requests / self.booked if self.booked else float("inf")

    @property
    def minimum_per_booked(self) -> float:
        return self.minimum_requests / self.bookable if self.bookable else float("inf")

    @property
    def budget_minimum_seconds(self) -> float:
        """The least the budget allows: requests needed / budget rate."""
        return self.minimum_requests / self.budget_rate

    @property
    def drain_ratio(self) -> float:
        return self.drain_seconds / self.budget_minimum_seconds

    @property
    def capacity_minimum_seconds(self) -> float:
        """The least the tenant allows after other integrations: at the lower of both rates."""
        return self.minimum_requests / min(self.budget_rate, self.remaining_rate)

    @property
    def capacity_ratio(self) -> float:
        return self.drain_seconds / self.capacity_minimum_seconds

    @property
    def accepted_rate(self) -> float:
        """Requests Lucca accepted (not 429) per second of drain."""
        accepted = self.requests - self.rate_limited
        return accepted / self.drain_seconds if self.drain_seconds else 0.0

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["pacing"] = self.pacing.as_dict()
        data["throttled_documents"] = len(self.throttled_documents)
        data.update(
            perBooked=round(self.per_booked, 4),
            minimumPerBooked=round(self.minimum_per_booked, 4),
            budgetMinimumSeconds=round(self.budget_minimum_seconds, 3),
            drainRatio=round(self.drain_ratio, 4),
            capacityMinimumSeconds=round(self.capacity_minimum_seconds, 3),
            capacityRatio=round(self.capacity_ratio, 4),
            acceptedRate=round(self.accepted_rate, 3),
            drain_seconds=round(self.drain_seconds, 3),
        )
        return data


def figures_from(
    scenario: Scenario, state: dict[str, Any], log: list[dict[str, Any]]
) -> RunFigures:
    documents = state["documents"]
    bookable = [d for d in documents if d["category"] in BOOKABLE]
    totals = state["totals"]
    return RunFigures(
        documents=len(documents),
        bookable=len(bookable),
        booked=sum(1 for d in documents if d["bookings"] > 0),
        booked_exactly_once=all(d["bookings"] == 1 for d in bookable),
        double_booked=totals["doubleBooked"],
        window_seconds=scenario.window_seconds,
        requests=totals["requests"],
        by_endpoint={k: v for k, v in totals["byEndpoint"].items() if v},
        by_status=totals["byStatus"],
        rate_limited=totals["rateLimited"],
        minimum_requests=scenario.minimum_requests(len(bookable)),
        drain_seconds=_drain_seconds(log),
        budget_rate=scenario.budget_rate,
        remaining_rate=scenario.remaining_rate,
        peak_in_window=peak_in_window(log, scenario.window_seconds),
        throttled_documents=tuple(
            sorted({e["documentId"] for e in log if e["status"] == 429 and e["documentId"]})
        ),
        pacing=pacing_from(log, 1 / scenario.budget_rate),
    )


def _drain_seconds(log: list[dict[str, Any]]) -> float:
    if not log:
        return 0.0
    bookings = [e["t"] for e in log if e["endpoint"] == "book" and _ok(e["status"])]
    end = max(bookings) if bookings else log[-1]["t"]
    return float(end - log[0]["t"])


def _ok(status: int | None) -> bool:
    return status is not None and 200 <= status < 300


def peak_in_window(log: list[dict[str, Any]], window: float) -> int:
    """Sliding maximum of accepted requests within ``window`` seconds (429s take no slot)."""
    stamps = [e["t"] for e in log if e["status"] != 429]
    peak, first = 0, 0
    for last, stamp in enumerate(stamps):
        while stamp - stamps[first] >= window:
            first += 1
        peak = max(peak, last - first + 1)
    return peak


def pacing_from(log: list[dict[str, Any]], interval: float) -> PacingFigures:
    stamps = [entry["t"] for entry in log]
    gaps = [later - earlier for earlier, later in itertools.pairwise(stamps)]
    if not gaps:
        return PacingFigures(interval, 0.0, 0.0, 0.0, 0, 0.0, 0.0, 0)
    excess = [max(0.0, gap - interval) for gap in gaps]
    after_429 = [excess[i] for i, entry in enumerate(log[:-1]) if entry["status"] == 429]
    return PacingFigures(
        interval=interval,
        paced_seconds=(len(stamps) - 1) * interval,
        startup_seconds=gaps[0],
        excess_seconds=sum(excess[1:]),
        stalls=sum(gap > STALL_FACTOR * interval for gap in gaps[1:]),
        median_gap=sorted(gaps)[len(gaps) // 2],
        after_429_seconds=sum(after_429),
        doomed_429s=_doomed_429s(log, interval),
    )


def _doomed_429s(log: list[dict[str, Any]], interval: float) -> int:
    throttled = [entry["t"] for entry in log if entry["status"] == 429]
    return sum(1 for a, b in itertools.pairwise(throttled) if b - a <= STALL_FACTOR * interval)


def dead_letter_summary(stack: QueueStack) -> dict[str, Any]:
    """What reached the DLQ, and why: our own dead-lettering says so in its attributes;
    a message moved by the redrive policy (too many receives) carries none."""
    letters = dead_letters(stack)  # type: ignore[arg-type]
    reasons: Counter[str] = Counter()
    ids = []
    for message in letters:
        error_type = message.get("MessageAttributes", {}).get("errorType", {})
        reasons[error_type.get("StringValue", "redrive (maxReceiveCount)")] += 1
        ids.append(json.loads(message["Body"]).get("documentId"))
    return {"count": len(letters), "byReason": dict(reasons), "documentIds": ids}
