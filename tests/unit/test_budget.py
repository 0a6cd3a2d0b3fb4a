"""The request budget: pacing, sharing across instances, 429 back-off, refusing long waits."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from cleemy_booker.budget import (
    BudgetBusy,
    DynamoSlotStore,
    MemorySlotStore,
    RequestBudget,
    SlotStore,
)
from tests.aws import REGION, create_pk_sk_table


class FakeTime:
    def __init__(self, start: float = 1_000_000.0) -> None:
        self.now = start
        self.lock = threading.Lock()

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.now += seconds

    def budget(self, store: SlotStore, *, limit: int, **settings: float) -> RequestBudget:
        """A request budget on this fake time: its waits pass this time, not the real one. A
        window of a minute and waits as long as they need, unless ``settings`` say otherwise."""
        settings = {"window_seconds": 60, "max_wait_seconds": 1e9, **settings}
        return RequestBudget(store, limit=limit, clock=self.clock, sleep=self.sleep, **settings)


@pytest.fixture
def dynamo_store() -> Iterator[DynamoSlotStore]:
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name=REGION)
        yield DynamoSlotStore(ddb, create_pk_sk_table(ddb, "budget"))


@pytest.fixture(params=["memory", "dynamodb"])
def store(request: pytest.FixtureRequest, dynamo_store: DynamoSlotStore) -> object:
    return MemorySlotStore() if request.param == "memory" else dynamo_store


def test_slots_are_evenly_spaced_at_limit_per_window(store: MemorySlotStore) -> None:
    now = 5000.0
    slots = [store.reserve(now, 1.5) for _ in range(5)]
    assert slots == [5000.0, 5001.5, 5003.0, 5004.5, 5006.0]


def test_an_idle_budget_starts_fresh_at_now(store: MemorySlotStore) -> None:
    assert store.reserve(100.0, 1.5) == 100.0
    assert store.reserve(500.0, 1.5) == 500.0  # long idle: no burst credit piles up


def test_push_back_only_moves_forward(store: MemorySlotStore) -> None:
    store.reserve(100.0, 1.0)
    store.push_back(200.0, 1.5)
    store.push_back(150.0, 1.5)
    assert store.read().tat == 200.0
    assert store.read().blocked_until == 200.0
    assert store.reserve(120.0, 1.0) == 200.0


def test_two_instances_sharing_dynamodb_never_get_the_same_slot(
    dynamo_store: DynamoSlotStore,
) -> None:
    # Two stores on one table, as two Lambda instances would be. (Interleaved rather than
    # threaded: moto does not make concurrent conditional writes atomic; DynamoDB does.)
    other = DynamoSlotStore(dynamo_store._ddb, dynamo_store._table)
    slots = [store.reserve(1000.0, 1.2) for _ in range(15) for store in (dynamo_store, other)]
    assert slots == [pytest.approx(1000.0 + 1.2 * i) for i in range(30)]


def test_no_window_holds_more_than_the_limit_plus_one() -> None:
    fake = FakeTime()
    budget = fake.budget(MemorySlotStore(), limit=40)
    times = []
    for _ in range(200):
        budget.acquire()
        times.append(fake.now)
    worst = max(sum(1 for t in times if start <= t < start + 60) for start in times)
    assert worst <= 41
    assert times[-1] - times[0] == pytest.approx(199 * 1.5)


def test_a_429_slows_every_instance_sharing_the_store() -> None:
    fake = FakeTime()
    shared = MemorySlotStore()
    one = fake.budget(shared, limit=50)
    other = fake.budget(shared, limit=50)
    one.acquire()
    one.after_response("list", 429, 30.0)
    start = fake.now
    other.acquire()
    assert fake.now - start == pytest.approx(30.0)
    assert one.stats.throttled == 1


def test_too_long_a_wait_is_refused_without_reserving() -> None:
    fake = FakeTime()
    store = MemorySlotStore()
    budget = fake.budget(store, limit=10, max_wait_seconds=20)
    store.push_back(fake.now + 45, 1.0)
    with pytest.raises(BudgetBusy) as busy:
        budget.acquire()
    assert busy.value.wait == pytest.approx(45)
    assert store.read().tat == pytest.approx(fake.now + 45)  # nothing was reserved
    assert budget.stats.busy == 1


def test_other_statuses_do_not_move_the_budget() -> None:
    store = MemorySlotStore()
    budget = RequestBudget(store, limit=10, window_seconds=60, max_wait_seconds=5)
    for status in (200, 404, 500, None):
        budget.after_response("get", status, None)
    assert store.read().tat == 0.0


def test_invalid_budgets_are_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        RequestBudget(MemorySlotStore(), limit=0, window_seconds=60, max_wait_seconds=1)


def test_429s_widen_the_interval_for_everyone_and_successes_narrow_it_back(
    store: MemorySlotStore,
) -> None:
    fake = FakeTime()
    budget = fake.budget(store, limit=40)
    budget.after_response("book", 429, 1.0)
    budget.after_response("book", 429, 1.0)
    assert store.read().slowdown == pytest.approx(2.25)
    other = fake.budget(store, limit=40)
    other.acquire()
    before = fake.now
    other.acquire()
    assert fake.now - before == pytest.approx(1.5 * 2.25)  # the other instance slowed too
    # Back slowly (about 400 successes from x2.25), not in a burst that probes into a 429.
    for _ in range(200):
        other.after_response("book", 200, None)
    assert 1.0 < store.read().slowdown < 2.25
    for _ in range(250):
        other.after_response("book", 200, None)
    assert store.read().slowdown == pytest.approx(1.0)


def test_the_slowdown_is_capped() -> None:
    store = MemorySlotStore()
    budget = RequestBudget(store, limit=10, window_seconds=60, max_wait_seconds=1)
    for _ in range(20):
        budget.after_response("list", 429, 0.0)
    assert store.read().slowdown == RequestBudget.MAX_SLOWDOWN


def test_a_429_landing_while_we_wait_sends_us_behind_the_pause() -> None:
    fake = FakeTime()
    store = MemorySlotStore()
    ours = fake.budget(store, limit=10, window_seconds=10)
    store.reserve(fake.now, 1.0)  # someone holds the current slot: we will have to wait

    def sleep_then_other_gets_a_429(seconds: float) -> None:
        fake.sleep(seconds)
        if ours.stats.requeued == 0 and fake.now < 1_000_005:
            store.push_back(fake.now + 5.0, 1.5)

    ours._sleep = sleep_then_other_gets_a_429
    start = fake.now
    ours.acquire()
    assert ours.stats.requeued == 1
    assert fake.now - start >= 5.0  # we went after the pause, not into it


def test_a_wait_that_would_outlast_the_invocation_is_refused_before_reserving() -> None:
    time = FakeTime()
    store = MemorySlotStore()
    budget = time.budget(store, limit=40, max_wait_seconds=20)
    store.reserve(time.now + 10, 1.5)  # someone holds the budget 10 s ahead
    budget.time_left = lambda: 12.0  # 12 s left: a 10 s wait leaves no time for the request
    with pytest.raises(BudgetBusy):
        budget.acquire()
    assert time.now == 1_000_000.0  # no time was spent waiting
    assert store.read().tat == pytest.approx(time.now + 11.5)  # and no slot was taken
    budget.time_left = lambda: 40.0
    budget.acquire()  # with time enough it waits for its slot as before
    assert time.now == pytest.approx(1_000_011.5)


def _paced(time: FakeTime) -> RequestBudget:
    """Our share of 40 a minute: one slot every 1.5 s."""
    return time.budget(MemorySlotStore(), limit=40, max_wait_seconds=20)


def test_a_read_and_the_put_built_from_it_go_out_back_to_back() -> None:
    """A person's edit between the two would be reverted: they share one wait, not two."""
    time = FakeTime()
    budget = _paced(time)
    budget.before_request("book")  # someone's request just now: the next slot is 1.5 s away
    sent: list[float] = []
    with budget.back_to_back(2):
        for endpoint in ("get", "put"):
            budget.before_request(endpoint)
            sent.append(time.now)
    assert sent[1] == sent[0] == 1_000_001.5
    budget.before_request("book")  # the pair spent two slots: the budget's pace holds
    assert time.now == 1_000_004.5


def test_a_pair_slot_left_unused_is_not_carried_over() -> None:
    time = FakeTime()
    budget = _paced(time)
    with budget.back_to_back(2):
        budget.before_request("get")  # the PUT turned out not to be needed
    budget.before_request("book")
    budget.before_request("book")
    # get at 0, the unused slot at 1.5, the books at 3.0 and 4.5: never two in one interval
    assert time.now == 1_000_004.5
