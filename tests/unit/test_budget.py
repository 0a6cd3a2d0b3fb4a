"""The request budget: pacing at the configured rate, a fresh budget and its first request,
sharing one budget across instances (DynamoDB, racing instances included), 429s that pause and
slow everyone and successes that relax it, requeues behind a pause, refusing waits too long for
the invocation, and a read and its PUT going out back to back."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

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
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.sleeps.append(seconds)
            self.now += seconds

    def budget(self, store: SlotStore, *, limit: int, **settings: float) -> RequestBudget:
        """A request budget on this fake time: its waits pass this time, not the real one. A
        window of a minute and waits as long as they need, unless ``settings`` say otherwise."""
        settings = {"window_seconds": 60, "max_wait_seconds": 1e9, **settings}
        return RequestBudget(store, limit=limit, clock=self.clock, sleep=self.sleep, **settings)


@pytest.fixture
def ddb() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("dynamodb", region_name=REGION)


@pytest.fixture
def dynamo_store(ddb: Any) -> DynamoSlotStore:
    return DynamoSlotStore(ddb, create_pk_sk_table(ddb, "budget"))


@pytest.fixture(params=["memory", "dynamodb"])
def store(request: pytest.FixtureRequest, dynamo_store: DynamoSlotStore) -> Any:
    return MemorySlotStore() if request.param == "memory" else dynamo_store


def budget_on(store: Any, time: FakeTime, **overrides: Any) -> RequestBudget:
    settings: dict[str, Any] = {"limit": 40, "window_seconds": 60, "max_wait_seconds": 1e9}
    return RequestBudget(store, **(settings | overrides), clock=time.clock, sleep=time.sleep)


# --- pacing: an even interval, a fresh start --------------------------------------------------


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


def test_a_budget_of_one_request_per_second_is_valid_and_a_zero_window_is_not() -> None:
    time = FakeTime()
    budget = budget_on(MemorySlotStore(), time, limit=1, window_seconds=1)
    budget.acquire()
    budget.acquire()
    assert time.now == pytest.approx(1_000_001.0)
    with pytest.raises(ValueError, match="positive"):
        budget_on(MemorySlotStore(), time, window_seconds=0)


def test_invalid_budgets_are_refused() -> None:
    with pytest.raises(ValueError, match="positive"):
        RequestBudget(MemorySlotStore(), limit=0, window_seconds=60, max_wait_seconds=1)


# --- one budget shared by every instance ------------------------------------------------------


def test_two_instances_sharing_dynamodb_never_get_the_same_slot(
    dynamo_store: DynamoSlotStore,
) -> None:
    # Two stores on one table, as two Lambda instances would be. (Interleaved rather than
    # threaded: moto does not make concurrent conditional writes atomic; DynamoDB does.)
    other = DynamoSlotStore(dynamo_store._ddb, dynamo_store._table)
    slots = [store.reserve(1000.0, 1.2) for _ in range(15) for store in (dynamo_store, other)]
    assert slots == [pytest.approx(1000.0 + 1.2 * i) for i in range(30)]


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


class RacedDynamo:
    """A DynamoDB client on which another instance acts right before our first attempt to
    start a fresh budget (``SET tat = :next``): the race ``_start_fresh`` can lose."""

    def __init__(self, ddb: Any, meanwhile: Callable[[], None]) -> None:
        self._ddb = ddb
        self._meanwhile: Callable[[], None] | None = meanwhile

    def update_item(self, **kwargs: Any) -> Any:
        if kwargs.get("UpdateExpression") == "SET tat = :next" and self._meanwhile is not None:
            meanwhile, self._meanwhile = self._meanwhile, None
            meanwhile()
        return self._ddb.update_item(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ddb, name)


def test_a_reservation_that_loses_the_race_to_start_the_budget_queues_behind_the_winner(
    ddb: Any,
) -> None:
    table = create_pk_sk_table(ddb, "budget-race")
    theirs = DynamoSlotStore(ddb, table)
    won: list[float] = []
    raced: Any = RacedDynamo(ddb, lambda: won.append(theirs.reserve(1000.0, 1.5)))
    ours = DynamoSlotStore(raced, table)

    slot = ours.reserve(1000.0, 1.5)  # the budget is idle: both try to start it at once

    assert won == [1000.0]
    assert slot == 1001.5  # the next slot, not the same one
    assert theirs.read().tat == 1003.0  # two slots spent, two requests allowed
    assert ours.reserve(1000.0, 1.5) == 1003.0


# --- 429s: a pause and a slowdown for everyone, relaxed by successes --------------------------


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


def test_a_429_without_retry_after_pauses_everyone_for_ten_intervals() -> None:
    time = FakeTime()
    store = MemorySlotStore()
    ours, other = budget_on(store, time), budget_on(store, time)
    ours.acquire()
    ours.after_response("book", 429, None)
    start = time.now
    other.acquire()
    assert time.now - start == pytest.approx(15.0)  # 10 x 1.5 s, however long Lucca wanted


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


def test_relaxing_only_ever_lowers_the_slowdown(store: Any) -> None:
    """An instance still at an old, larger slowdown must not undo another's recovery."""
    store.push_back(100.0, 2.0)
    store.relax(1.2)
    store.relax(1.9)  # a stale instance's success: refused quietly, not raised
    assert store.read().slowdown == pytest.approx(1.2)


@pytest.mark.parametrize("status", [None, 500, 503])
def test_no_answer_or_a_server_error_does_not_narrow_the_slowdown(status: int | None) -> None:
    store = MemorySlotStore()
    budget = budget_on(store, FakeTime())
    budget.after_response("book", 429, 1.0)
    for _ in range(50):
        budget.after_response("book", status, None)
    assert store.read().slowdown == pytest.approx(RequestBudget.BACK_OFF)


def test_other_statuses_do_not_move_the_budget() -> None:
    store = MemorySlotStore()
    budget = RequestBudget(store, limit=10, window_seconds=60, max_wait_seconds=5)
    for status in (200, 404, 500, None):
        budget.after_response("get", status, None)
    assert store.read().tat == 0.0


# --- waiting: behind a pause, never past the invocation ---------------------------------------


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


# --- a read and the PUT built from it: back to back -------------------------------------------


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
