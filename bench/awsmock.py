"""moto, made safe for the two processor "instances" and the poller running in threads.

moto keeps each service's state in plain dicts and evaluates a conditional write as
read-check-write without a lock, so two threads racing on one item (the budget's ``tat``, a
ledger claim, an idempotency record) can both "win". Lambda instances never share a process, so
that race is moto's, not ours. We serialise every AWS call in the process behind one lock: each
call is then atomic, as DynamoDB's conditional writes are, and the real ``DynamoSlotStore`` can
be shared by all instances exactly as in production. Lucca requests and budget sleeps happen
outside the lock, so they still overlap between instances.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from botocore.client import BaseClient


@dataclass
class AwsCallStats:
    """How much wall time the serialised AWS (moto) calls took, and how long callers queued."""

    calls: int = 0
    busy_seconds: float = 0.0
    queued_seconds: float = 0.0
    by_operation: Counter[str] = field(default_factory=Counter)
    seconds_by_operation: defaultdict[str, float] = field(
        default_factory=lambda: defaultdict(float)
    )

    def record(self, operation: str, seconds: float) -> None:
        self.calls += 1
        self.busy_seconds += seconds
        self.by_operation[operation] += 1
        self.seconds_by_operation[operation] += seconds

    def as_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "busySeconds": round(self.busy_seconds, 3),
            "queuedSeconds": round(self.queued_seconds, 3),
            "byOperation": {
                name: {
                    "calls": count,
                    "msEach": round(1000 * self.seconds_by_operation[name] / count, 2),
                }
                for name, count in self.by_operation.most_common()
            },
        }


@contextmanager
def serialised_aws_calls() -> Iterator[AwsCallStats]:
    """Every botocore API call in this process holds one lock while moto answers it."""
    lock = threading.Lock()
    stats = AwsCallStats()
    original = BaseClient._make_api_call  # type: ignore[attr-defined]

    def _locked(self: BaseClient, operation_name: str, api_params: dict[str, Any]) -> Any:
        asked = time.perf_counter()
        with lock:
            started = time.perf_counter()
            try:
                return original(self, operation_name, api_params)
            finally:
                stats.record(operation_name, time.perf_counter() - started)
                stats.queued_seconds += started - asked

    BaseClient._make_api_call = _locked  # type: ignore[attr-defined]
    try:
        yield stats
    finally:
        BaseClient._make_api_call = original  # type: ignore[attr-defined]
