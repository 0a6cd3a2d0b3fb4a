"""Seeded fault injection.

The injector has its own ``random.Random`` (seeded from the simulator's seed), and every
decision draws exactly three numbers, whatever the endpoint or the outcome: the n-th request
that reaches the injector gets the same fault for the same seed and settings, so a run is
reproducible and two runs can be compared request by request.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

#: Faults that answer a status before the operation runs (nothing changes).
STATUS_FAULTS: frozenset[str] = frozenset({"408", "429", "500", "502", "503"})
#: Endpoints whose operation changes state: drop and slow may hit them after it was applied.
MUTATING_ENDPOINTS: frozenset[str] = frozenset({"put", "book"})


@dataclass(frozen=True)
class Fault:
    kind: str
    #: drop/slow on PUT or book: the operation was applied before the client was failed.
    after_operation: bool
    #: A second seeded draw, for choices inside a fault (e.g. the body format of a 500).
    variant: float


class FaultInjector:
    def __init__(self, seed: int) -> None:
        self._rng = random.Random(f"{seed}:faults")
        self.injected: dict[str, int] = {}
        #: Faults a test placed on the next requests to one endpoint for one document, in
        #: order (None: that request is left alone); they win over the seeded draw.
        self.scripted: dict[tuple[str, int], list[Fault | None]] = {}

    def decide(
        self,
        endpoint: str,
        rate: float,
        kinds: dict[str, float],
        endpoints: tuple[str, ...],
        document_id: int | None = None,
    ) -> Fault | None:
        hit, pick, phase = self._rng.random(), self._rng.random(), self._rng.random()
        script = self.scripted.get((endpoint, document_id or 0))
        if script:
            # The draws above were made all the same: the seeded faults of every other
            # request stay where they were.
            placed = script.pop(0)
            if placed is not None:
                self.injected[placed.kind] = self.injected.get(placed.kind, 0) + 1
            return placed
        if endpoint not in endpoints or hit >= rate:
            return None
        kind = _weighted_pick(kinds, pick)
        if kind is None:
            return None
        self.injected[kind] = self.injected.get(kind, 0) + 1
        after = endpoint in MUTATING_ENDPOINTS and kind in ("drop", "slow") and phase < 0.5
        # Reuse the phase draw (rescaled) as the variant, to keep three draws per decision.
        return Fault(kind=kind, after_operation=after, variant=(phase * 2) % 1.0)


def _weighted_pick(weights: dict[str, float], draw: float) -> str | None:
    """The kind whose cumulative weight interval holds ``draw`` (in [0, 1))."""
    total = sum(weights.values())
    if total <= 0:
        return None
    threshold = draw * total
    cumulative = 0.0
    chosen = None
    for kind in sorted(weights):  # sorted: independent of the dict's insertion order
        weight = weights[kind]
        if weight <= 0:
            continue
        chosen = kind
        cumulative += weight
        if threshold < cumulative:
            return kind
    return chosen
