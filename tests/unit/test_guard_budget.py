"""The request budget's promises that mutation testing found unguarded (``make mutate
MODULE=budget``): a fresh shared budget, racing instances, relaxing, requeues, pauses."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from cleemy_booker.budget import BudgetBusy, DynamoSlotStore, MemorySlotStore, RequestBudget
from tests.aws import REGION, create_pk_sk_table


class FakeTime:
    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def ddb() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("dynamodb", region_name=REGION)


@pytest.fixture
def dynamo_store(ddb: Any) -> DynamoSlotStore:
    return DynamoSlotStore(ddb, create_pk_sk_table(ddb, "budget"))


@pytest.fixture(params=["memory", "dynamodb"])
def store(request: pytest.FixtureRequest, ddb: Any) -> Any:
    if request.param == "memory":
        return MemorySlotStore()
    return DynamoSlotStore(ddb, create_pk_sk_table(ddb, "budget"))


def budget_on(store: Any, time: FakeTime, **overrides: Any) -> RequestBudget:
    settings: dict[str, Any] = {"limit": 40, "window_seconds": 60, "max_wait_seconds": 1e9}
    return RequestBudget(store, **(settings | overrides), clock=time.clock, sleep=time.sleep)


def test_a_fresh_shared_budget_sends_at_once_then_keeps_the_configured_pace(
    dynamo_store: DynamoSlotStore,
) -> None:
    """The very first request of a new stack (no budget item yet) is not refused or delayed,
    and a budget never throttled paces at ``window / limit``: nothing is slowed down."""
    time = FakeTime()
    budget = budget_on(dynamo_store, time)
    budget.acquire()
    assert time.now == 1_000_000.0
    budget.acquire()
    assert time.now == pytest.approx(1_000_001.5)
    budget.acquire()
    assert time.now == pytest.approx(1_000_003.0)
    state = dynamo_store.read()  # the item now holds ``tat`` only: the rest reads as unset
    assert (state.blocked_until, state.slowdown) == (0.0, 1.0)


class _Interleaved:
    """A DynamoDB client through which another instance starts the idle budget fresh right
    between our failed "queue behind" write and our own "start fresh" write."""

    def __init__(self, ddb: Any, other: DynamoSlotStore, now: float) -> None:
        self._ddb = ddb
        self._other = other
        self._now = now
        self.interleaved = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ddb, name)

    def update_item(self, **kwargs: Any) -> Any:
        fresh = "attribute_not_exists(tat)" in kwargs.get("ConditionExpression", "")
        if fresh and not self.interleaved:
            self.interleaved = True
            self._other.reserve(self._now, 1.5)
        return self._ddb.update_item(**kwargs)


def test_two_instances_waking_an_idle_budget_together_never_share_a_slot(ddb: Any) -> None:
    table = create_pk_sk_table(ddb, "budget")
    other = DynamoSlotStore(ddb, table)
    now = 5000.0
    client = _Interleaved(ddb, other, now)
    ours = DynamoSlotStore(client, table)
    slot = ours.reserve(now, 1.5)
    assert client.interleaved
    assert slot == pytest.approx(now + 1.5)  # behind the other's slot ``now``, not on it
    assert other.reserve(now, 1.5) == pytest.approx(now + 3.0)


def test_relaxing_only_ever_lowers_the_slowdown(store: Any) -> None:
    """An instance still at an old, larger slowdown must not undo another's recovery."""
    store.push_back(100.0, 2.0)
    store.relax(1.2)
    store.relax(1.9)  # a stale instance's success: refused quietly, not raised
    assert store.read().slowdown == pytest.approx(1.2)


def test_a_429_without_retry_after_pauses_everyone_for_ten_intervals() -> None:
    time = FakeTime()
    store = MemorySlotStore()
    ours, other = budget_on(store, time), budget_on(store, time)
    ours.acquire()
    ours.after_response("book", 429, None)
    start = time.now
    other.acquire()
    assert time.now - start == pytest.approx(15.0)  # 10 x 1.5 s, however long Lucca wanted


@pytest.mark.parametrize("status", [None, 500, 503])
def test_no_answer_or_a_server_error_does_not_narrow_the_slowdown(status: int | None) -> None:
    store = MemorySlotStore()
    budget = budget_on(store, FakeTime())
    budget.after_response("book", 429, 1.0)
    for _ in range(50):
        budget.after_response("book", status, None)
    assert store.read().slowdown == pytest.approx(RequestBudget.BACK_OFF)


def test_a_caller_whose_every_wait_meets_a_429_gives_up_queueing_after_max_requeues() -> None:
    """Bounded: it waits its slot, is sent behind each pause ``MAX_REQUEUES`` times, then goes
    (the budget never parks a caller for ever); each requeue is counted."""
    time = FakeTime()
    store = MemorySlotStore()
    budget = budget_on(store, time)
    store.reserve(time.now, 1.5)  # the current slot is taken: every acquire has to wait

    def sleep_into_a_429(seconds: float) -> None:
        time.sleep(seconds)
        store.push_back(time.now + 5.0, 1.0)  # another instance's 429 during every wait

    budget._sleep = sleep_into_a_429
    budget.acquire()
    assert len(time.sleeps) == RequestBudget.MAX_REQUEUES + 1
    assert budget.stats.requeued == RequestBudget.MAX_REQUEUES + 1
    assert budget.stats.acquired == 1


def test_three_429s_during_three_waits_are_each_queued_behind() -> None:
    time = FakeTime()
    store = MemorySlotStore()
    budget = budget_on(store, time)
    store.reserve(time.now, 1.5)
    pauses = iter([5.0, 5.0, 5.0])

    def sleep_into_three_429s(seconds: float) -> None:
        time.sleep(seconds)
        pause = next(pauses, None)
        if pause is not None:
            store.push_back(time.now + pause, 1.0)

    budget._sleep = sleep_into_three_429s
    budget.acquire()
    assert budget.stats.requeued == 3
    assert len(time.sleeps) == 4
    assert time.now >= store.read().blocked_until  # sent after the last pause, not into it


def test_a_wait_of_exactly_the_longest_allowed_is_waited_not_refused() -> None:
    time = FakeTime()
    store = MemorySlotStore()
    budget = budget_on(store, time, max_wait_seconds=20)
    store.push_back(time.now + 20, 1.0)
    budget.acquire()
    assert time.now == pytest.approx(1_000_020.0)
    store.push_back(time.now + 20.5, 1.0)
    with pytest.raises(BudgetBusy, match=r"busy for the next 20\.5s"):
        budget.acquire()


def test_the_counters_add_up_over_an_invocation() -> None:
    """The counters feed the per-invocation metrics (``LuccaThrottled``) and the reports."""
    time = FakeTime()
    store = MemorySlotStore()
    budget = budget_on(store, time, max_wait_seconds=10)
    for _ in range(3):
        budget.acquire()
    for _ in range(2):
        budget.after_response("book", 429, 1.0)
    assert budget.stats.acquired == 3
    assert budget.stats.waited_seconds == pytest.approx(3.0)  # 1.5 s before the 2nd and 3rd
    assert budget.stats.throttled == 2
    store.push_back(time.now + 60, 1.0)
    for _ in range(2):
        with pytest.raises(BudgetBusy):
            budget.acquire()
    assert budget.stats.busy == 2


def test_a_pair_pays_for_two_requests_only() -> None:
    """A third request inside ``back_to_back(2)`` waits for its own slot."""
    time = FakeTime()
    budget = budget_on(MemorySlotStore(), time)
    with budget.back_to_back(2):
        budget.before_request("get")
        budget.before_request("put")
        assert time.now == 1_000_000.0
        budget.before_request("book")
        assert time.now == pytest.approx(1_000_003.0)  # after the two slots the pair spent
        budget.before_request("book")
        assert time.now == pytest.approx(1_000_004.5)


def test_a_budget_of_one_request_per_second_is_valid_and_a_zero_window_is_not() -> None:
    time = FakeTime()
    budget = budget_on(MemorySlotStore(), time, limit=1, window_seconds=1)
    budget.acquire()
    budget.acquire()
    assert time.now == pytest.approx(1_000_001.0)
    with pytest.raises(ValueError, match="positive"):
        budget_on(MemorySlotStore(), time, window_seconds=0)
