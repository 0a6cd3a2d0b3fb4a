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
  reserving, so no slot is wasted; the processor hands the document back to the queue;
* the pace adapts (AIMD): a 429 widens every instance's interval (``slowdown`` x1.5, at most
  x4), each success narrows it back a little (x0.998), so when another integration spends part
  of the tenant's budget we settle near what is left instead of hitting 429s over and over;
* a caller that slept towards its slot looks again before sending: if another instance got a
  429 meanwhile (``blocked_until`` moved past our slot), it queues again behind the pause
  instead of spending a request that is certain to be refused.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Protocol

from botocore.exceptions import ClientError

from .dynamo import conditional_check_failed

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

BUDGET_KEY = "budget#lucca"


class BudgetBusy(Exception):
    """The next free slot is further away than the caller may wait; try again later."""

    def __init__(self, wait: float) -> None:
        self.wait = wait
        super().__init__(f"request budget busy for the next {wait:.1f}s")


@dataclass(frozen=True)
class BudgetState:
    #: The theoretical arrival time of the next request (0 when unset).
    tat: float = 0.0
    #: Until when a 429 told everyone to wait.
    blocked_until: float = 0.0
    #: The factor every interval is stretched by after 429s (1 = the configured pace).
    slowdown: float = 1.0


class SlotStore(Protocol):
    """Where the budget's state lives: DynamoDB in Lambda, memory in tests and the benchmark."""

    def read(self) -> BudgetState:
        """The current state."""

    def reserve(self, now: float, interval: float) -> float:
        """Atomically take the slot ``max(tat, now)``; return it."""

    def push_back(self, until: float, slowdown: float) -> None:
        """After a 429: ``tat`` at least ``until``, ``blocked_until = until``, new slowdown."""

    def relax(self, slowdown: float) -> None:
        """After a success while slowed down: lower the slowdown to ``slowdown``."""


class MemorySlotStore:
    """A thread-safe in-process store (one process's view; for tests and benchmarks)."""

    def __init__(self) -> None:
        self._state = BudgetState()
        self._lock = threading.Lock()

    def read(self) -> BudgetState:
        with self._lock:
            return self._state

    def reserve(self, now: float, interval: float) -> float:
        with self._lock:
            slot = max(self._state.tat, now)
            self._state = replace(self._state, tat=slot + interval)
            return slot

    def push_back(self, until: float, slowdown: float) -> None:
        with self._lock:
            self._state = BudgetState(
                tat=max(self._state.tat, until),
                blocked_until=max(self._state.blocked_until, until),
                slowdown=slowdown,
            )

    def relax(self, slowdown: float) -> None:
        with self._lock:
            if slowdown < self._state.slowdown:
                self._state = replace(self._state, slowdown=slowdown)


class DynamoSlotStore:
    """``tat`` in one DynamoDB item, moved only by conditional updates.

    Times are wall-clock epoch seconds: instances on different hosts share them.
    """

    def __init__(self, dynamodb: DynamoDBClient, table: str, key: str = BUDGET_KEY) -> None:
        self._ddb = dynamodb
        self._table = table
        self._key = {"pk": {"S": key}, "sk": {"S": "tat"}}

    def read(self) -> BudgetState:
        item = self._ddb.get_item(TableName=self._table, Key=self._key, ConsistentRead=True).get(
            "Item", {}
        )

        def number(name: str, default: float) -> float:
            value = item.get(name, {}).get("N")
            return float(value) if value else default

        return BudgetState(
            tat=number("tat", 0.0),
            blocked_until=number("blockedUntil", 0.0),
            slowdown=number("slowdown", 1.0),
        )

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
            if conditional_check_failed(exc):
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
            if conditional_check_failed(exc):
                return False  # someone queued meanwhile: go round and queue behind them
            raise
        return True

    def push_back(self, until: float, slowdown: float) -> None:
        self._ddb.update_item(
            TableName=self._table,
            Key=self._key,
            UpdateExpression="SET slowdown = :slowdown",
            ExpressionAttributeValues={":slowdown": _n(slowdown)},
        )
        for attribute in ("blockedUntil", "tat"):  # each only ever moves forward
            self._move_forward(attribute, until)

    def _move_forward(self, attribute: str, until: float) -> None:
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key=self._key,
                UpdateExpression="SET #a = :until",
                ConditionExpression="attribute_not_exists(#a) OR #a < :until",
                ExpressionAttributeNames={"#a": attribute},
                ExpressionAttributeValues={":until": _n(until)},
            )
        except ClientError as exc:
            if not conditional_check_failed(exc):
                raise

    def relax(self, slowdown: float) -> None:
        try:
            self._ddb.update_item(
                TableName=self._table,
                Key=self._key,
                UpdateExpression="SET slowdown = :slowdown",
                ConditionExpression="slowdown > :slowdown",
                ExpressionAttributeValues={":slowdown": _n(slowdown)},
            )
        except ClientError as exc:
            if not conditional_check_failed(exc):
                raise


def _n(value: float) -> dict[str, str]:
    return {"N": str(Decimal(repr(round(value, 6))))}


@dataclass
class BudgetStats:
    acquired: int = 0
    waited_seconds: float = 0.0
    busy: int = 0
    throttled: int = 0
    requeued: int = 0


class RequestBudget:
    """A ``RequestHook`` for ``LuccaClient``: paces every request to ``limit`` per ``window``."""

    #: A 429 stretches the interval by this factor, up to ``MAX_SLOWDOWN``.
    BACK_OFF = 1.5
    MAX_SLOWDOWN = 4.0
    #: Each success while slowed down brings the interval back by this factor: slowly (from x2
    #: to x1 in ~350 requests, ~10 minutes), so that under another integration's steady load
    #: the pace stays near what it leaves rather than probing into a 429 every few seconds.
    RECOVER = 0.998
    #: Times a caller queues again because a 429 landed while it waited for its slot.
    MAX_REQUEUES = 3
    #: A slot must leave this much of the invocation for the request itself (Lucca aborts a
    #: request after 5 s): a wait that would end later is refused as busy, before reserving.
    REQUEST_ALLOWANCE = 5.0

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
        self._slowdown = 1.0
        self.stats = BudgetStats()
        #: Seconds left to the caller's deadline (None: no deadline); set by the wiring to the
        #: Lucca client's, so a wait never outlasts the invocation it is part of.
        self.time_left: Callable[[], float | None] = lambda: None
        #: Requests already paid for by ``back_to_back``.
        self._prepaid = 0

    def _longest_wait(self) -> float:
        left = self.time_left()
        if left is None:
            return self.max_wait
        return min(self.max_wait, left - self.REQUEST_ALLOWANCE)

    def acquire(self, slots: int = 1) -> None:
        """Wait for our slot (``slots`` of them in a row); ``BudgetBusy`` (nothing reserved)
        if it is too far away."""
        for _ in range(self.MAX_REQUEUES + 1):
            state = self.store.read()
            self._slowdown = state.slowdown
            now = self._clock()
            ahead = state.tat - now
            if ahead > self._longest_wait():
                self.stats.busy += 1
                raise BudgetBusy(ahead)
            slot = self.store.reserve(now, self.interval * state.slowdown * slots)
            wait = slot - self._clock()
            if wait <= 0:
                break
            self.stats.waited_seconds += wait
            self._sleep(wait)
            if self.store.read().blocked_until <= slot:
                break
            self.stats.requeued += 1  # a 429 landed while we waited: our slot is in its pause
        self.stats.acquired += 1

    @contextmanager
    def back_to_back(self, requests: int) -> Iterator[None]:
        """The next ``requests`` requests go out one right after the other: their slots are
        reserved together, with one wait, instead of one interval apart.

        For a read and the PUT built from it: Lucca honours no precondition, so a person's edit
        landing between the two would be reverted. Paced one interval apart, that window is
        1.5 s at 40 a minute; back to back, it is the read's own latency. The tenant's limit
        still holds: the slots are spent all the same, only not spread out.

        Inside an enclosing reservation that still holds enough slots, nothing more is taken."""
        if self._prepaid >= requests:
            yield
            return
        self.acquire(requests)
        self._prepaid = requests
        try:
            yield
        finally:
            self._prepaid = 0  # a slot left unused (the PUT was not needed) is simply spent

    # RequestHook
    def before_request(self, endpoint: str) -> None:
        if self._prepaid > 0:
            self._prepaid -= 1
            return
        self.acquire()

    def after_response(self, endpoint: str, status: int | None, retry_after: float | None) -> None:
        if status == 429:
            self.stats.throttled += 1
            pause = retry_after if retry_after is not None else self.interval * 10
            self._slowdown = min(self.MAX_SLOWDOWN, self._slowdown * self.BACK_OFF)
            self.store.push_back(self._clock() + pause, self._slowdown)
        elif status is not None and status < 500 and self._slowdown > 1.0:
            self._slowdown = max(1.0, self._slowdown * self.RECOVER)
            self.store.relax(self._slowdown)
