"""The tenant request budget, shared by every Lambda instance that talks to Lucca.

Lucca allows 50 requests per 60 s per tenant, shared with every other integration. Written by
hand because no well-kept library paces requests across processes against a store we already
run. The design is GCRA (the "generic cell rate algorithm") with reservations:

* one item holds ``tat``, the theoretical arrival time of the next request;
* a request reserves the slot ``max(tat, now)`` and moves ``tat`` one interval
  (``window / limit``) past it, in one atomic conditional write: no read-modify-write race,
  no retry storm between instances;
* the caller sleeps until its slot. Requests are evenly spaced, so any window of ``window``
  seconds holds at most ``limit + 1`` of ours (+1 for the boundary), whichever way Lucca counts;
* a 429 (someone else spent the tenant's budget) pushes ``tat`` to the end of ``Retry-After``
  for every instance at once;
* a caller whose slot would be further away than it may wait gets ``BudgetBusy`` *before*
  reserving, so no slot is wasted; the processor hands the document back to the queue.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

BUDGET_KEY = "budget#lucca"


class BudgetBusy(Exception):
    """The next free slot is further away than the caller may wait; try again later."""

    def __init__(self, wait: float) -> None:
        self.wait = wait
        super().__init__(f"request budget busy for the next {wait:.1f}s")


class SlotStore(Protocol):
    """Where ``tat`` lives: DynamoDB in Lambda, memory in tests and the benchmark."""

    def peek(self) -> float:
        """The current ``tat`` (0 when unset)."""

    def reserve(self, now: float, interval: float) -> float:
        """Atomically take the slot ``max(tat, now)``; return it."""

    def push_back(self, until: float) -> None:
        """Make ``tat`` at least ``until`` (after a 429)."""


class MemorySlotStore:
    """A thread-safe in-process store (one process's view; for tests and benchmarks)."""

    def __init__(self) -> None:
        self._tat = 0.0
        self._lock = threading.Lock()

    def peek(self) -> float:
        with self._lock:
            return self._tat

    def reserve(self, now: float, interval: float) -> float:
        with self._lock:
            slot = max(self._tat, now)
            self._tat = slot + interval
            return slot

    def push_back(self, until: float) -> None:
        with self._lock:
            self._tat = max(self._tat, until)


class DynamoSlotStore:
    """``tat`` in one DynamoDB item, moved only by conditional updates.

    Times are wall-clock epoch seconds: instances on different hosts share them.
    """

    def __init__(self, dynamodb: DynamoDBClient, table: str, key: str = BUDGET_KEY) -> None:
        self._ddb = dynamodb
        self._table = table
        self._key = {"pk": {"S": key}, "sk": {"S": "tat"}}

    def peek(self) -> float:
        item = self._ddb.get_item(TableName=self._table, Key=self._key, ConsistentRead=True)
        value = item.get("Item", {}).get("tat", {}).get("N")
        return float(value) if value else 0.0

    def reserve(self, now: float, interval: float) -> float:
        while True:
            slot = self._extend_backlog(now, interval)
            if slot is not None:
                return slot
            if self._start_fresh(now, interval):
                return now

    def _extend_backlog(self, now: float, interval: float) -> float | None:
        """Queue behind a ``tat`` still in the future: ``tat += interval``."""
        try:
            result = self._ddb.update_item(
                TableName=self._table,
                Key=self._key,
                UpdateExpression="SET tat = tat + :interval",
                ConditionExpression="tat >= :now",
                ExpressionAttributeValues={":interval": _n(interval), ":now": _n(now)},
                ReturnValues="UPDATED_NEW",
            )
        except ClientError as exc:
            if _conditional_failed(exc):
                return None
            raise
        return float(result["Attributes"]["tat"]["N"]) - interval

    def _start_fresh(self, now: float, interval: float) -> bool:
        """Idle budget: the slot is now, ``tat = now + interval``."""
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key=self._key,
                UpdateExpression="SET tat = :next",
                ConditionExpression="attribute_not_exists(tat) OR tat < :now",
                ExpressionAttributeValues={":next": _n(now + interval), ":now": _n(now)},
            )
        except ClientError as exc:
            if _conditional_failed(exc):
                return False  # someone queued meanwhile: go round and queue behind them
            raise
        return True

    def push_back(self, until: float) -> None:
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key=self._key,
                UpdateExpression="SET tat = :until",
                ConditionExpression="attribute_not_exists(tat) OR tat < :until",
                ExpressionAttributeValues={":until": _n(until)},
            )
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise


def _n(value: float) -> dict[str, str]:
    return {"N": str(Decimal(repr(round(value, 6))))}


def _conditional_failed(exc: ClientError) -> bool:
    code: Any = exc.response.get("Error", {}).get("Code")
    return bool(code == "ConditionalCheckFailedException")


@dataclass
class BudgetStats:
    acquired: int = 0
    waited_seconds: float = 0.0
    busy: int = 0
    throttled: int = 0


class RequestBudget:
    """A ``RequestHook`` for ``LuccaClient``: paces every request to ``limit`` per ``window``."""

    def __init__(
        self,
        store: SlotStore,
        *,
        limit: int,
        window_seconds: float,
        max_wait_seconds: float,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if limit < 1 or window_seconds <= 0:
            raise ValueError("budget limit and window must be positive")
        self.store = store
        self.interval = window_seconds / limit
        self.max_wait = max_wait_seconds
        self._clock = clock
        self._sleep = sleep
        self.stats = BudgetStats()

    def acquire(self) -> None:
        """Wait for our slot; ``BudgetBusy`` (nothing reserved) if it is too far away."""
        now = self._clock()
        ahead = self.store.peek() - now
        if ahead > self.max_wait:
            self.stats.busy += 1
            raise BudgetBusy(ahead)
        slot = self.store.reserve(now, self.interval)
        wait = slot - self._clock()
        if wait > 0:
            self.stats.waited_seconds += wait
            self._sleep(wait)
        self.stats.acquired += 1

    # RequestHook
    def before_request(self, endpoint: str) -> None:
        self.acquire()

    def after_response(self, endpoint: str, status: int | None, retry_after: float | None) -> None:
        if status == 429:
            self.stats.throttled += 1
            pause = retry_after if retry_after is not None else self.interval * 10
            self.store.push_back(self._clock() + pause)
