"""True races: two threads on one document, one invoice number, one request budget.

moto's backends take no lock per request, so two threads could both pass one conditional write
there, which DynamoDB never allows. Every AWS call here goes through ``Atomic``: one call at a
time, as DynamoDB runs each single-item write atomically. What is raced is ours: the order in
which the two instances' calls land. Barriers make both instances reach the contested step
before either goes on, so each test races every time, and its assertions hold whoever wins.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from cleemy_booker.budget import DynamoSlotStore
from cleemy_booker.ledger import Status
from local.lucca_simulator.app import Route
from tests.aws import create_pk_sk_table
from tests.factories import COMPLETE
from tests.harness import World, dead_letters, simulated_world

pytestmark = pytest.mark.filterwarnings("ignore:Couldn't determine the remaining time left")
#: No wait here is meant to run out: past this a thread is stuck, and the test says so.
TIMEOUT = 5.0


class Atomic:
    """A boto3 client whose calls run one at a time (``lock`` is shared by the clients)."""

    def __init__(self, client: Any, lock: threading.Lock) -> None:
        self._client = client
        self._lock = lock

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute) or name == "get_paginator":
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return attribute(*args, **kwargs)

        return call


@pytest.fixture
def world() -> Iterator[World]:
    with simulated_world() as found:
        yield found


def run_together(*actions: Callable[[], Any]) -> list[Any]:
    """Start each action on its own thread at the same moment; their results (or errors)."""
    start = threading.Barrier(len(actions), timeout=TIMEOUT)
    results: list[Any] = [None] * len(actions)

    def run(index: int, action: Callable[[], Any]) -> None:
        start.wait()
        try:
            results[index] = action()
        except Exception as error:  # the test asserts on it
            results[index] = error

    threads = [threading.Thread(target=run, args=item) for item in enumerate(actions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT * 2)
    assert not any(thread.is_alive() for thread in threads), "a racing thread is stuck"
    return results


# --- two instances, one document --------------------------------------------------------------


def test_two_instances_given_one_document_at_the_same_moment_book_it_once(world: World) -> None:
    doc = world.add(701, **COMPLETE)
    body = world.listed(doc).model_dump_json()
    lock = threading.Lock()
    ddb, sqs = Atomic(world.stack.dynamodb, lock), Atomic(world.stack.sqs, lock)
    one_done = threading.Event()
    books = [0]
    books_lock = threading.Lock()

    def first_book_waits_for_the_other_instance(route: Route) -> None:
        """The first book to reach Lucca waits there until the other instance has finished:
        that instance runs its whole record while this one's book is on its way."""
        if route.endpoint != "book":
            return
        with books_lock:
            books[0] += 1
            first = books[0] == 1
        if first:
            one_done.wait(TIMEOUT)

    instances = []
    for _ in range(2):
        lucca = world.transport()
        lucca.before.append(first_book_waits_for_the_other_instance)
        instances.append(world.runtime(lucca, sqs=sqs, dynamodb=ddb))

    def deliver(index: int) -> Callable[[], Any]:
        def action() -> Any:
            try:
                return instances[index].handle_record(body, f"m-{index}")
            finally:
                one_done.set()

        return action

    results = run_together(deliver(0), deliver(1))

    outcomes = sorted(result["outcome"] for result in results)
    assert outcomes == ["booked", "deferred"], results
    (deferred,) = [result for result in results if result["outcome"] == "deferred"]
    assert deferred["reasons"] == ["another instance is processing it"]
    assert world.bookings(doc) == (1, 1)  # one booking, one book request
    assert world.state(doc).status is Status.BOOKED
    assert dead_letters(world.stack) == []


# --- two documents, one invoice number --------------------------------------------------------


def test_two_documents_with_one_number_at_the_same_moment_book_one_and_hold_the_other(
    world: World,
) -> None:
    first = world.add(702, documentNumber="F-2026-99", **COMPLETE)
    second = world.add(703, documentNumber="F-2026-99", **COMPLETE)
    messages = [world.listed(first), world.listed(second)]
    lock = threading.Lock()
    both_ready = threading.Barrier(2, timeout=TIMEOUT)
    processors = []
    for _ in messages:
        ledger = world.ledger(Atomic(world.stack.dynamodb, lock))
        claim = ledger.numbers.claim_number

        def wait_then_claim(
            *args: Any, _claim: Callable[..., int | None] = claim, **kwargs: Any
        ) -> int | None:
            both_ready.wait()  # both passed the gate; neither has claimed the number yet
            return _claim(*args, **kwargs)

        ledger.numbers.claim_number = wait_then_claim  # type: ignore[method-assign]
        processors.append(world.processor(ledger=ledger))

    results = run_together(
        *(lambda p=p, m=m: p.process(m) for p, m in zip(processors, messages, strict=True))
    )

    assert sorted(result.outcome for result in results) == ["booked", "held"], results
    booked, held = sorted(results, key=lambda result: result.outcome)
    assert held.reasons[0].startswith("duplicate_number:")
    assert f"document {booked.document_id}" in held.reasons[0]
    assert world.bookings(booked.document_id)[0] == 1
    assert world.bookings(held.document_id) == (0, 0)
    assert world.state(held.document_id).status is Status.HELD
    assert world.claim_holder("F-2026-99") == booked.document_id


# --- two reservations, one budget -------------------------------------------------------------


class MeetAfterBacklog:
    """Both instances find the budget idle (their ``tat += interval`` refused) before either
    starts it afresh: the race ``_start_fresh`` can lose, every time."""

    def __init__(self, ddb: Any, barrier: threading.Barrier) -> None:
        self._ddb = ddb
        self._barrier: threading.Barrier | None = barrier

    def update_item(self, **kwargs: Any) -> Any:
        meet = (
            self._barrier if kwargs.get("UpdateExpression") == "SET tat = tat + :interval" else None
        )
        try:
            return self._ddb.update_item(**kwargs)
        finally:
            if meet is not None:
                self._barrier = None
                meet.wait()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ddb, name)


def test_two_reservations_of_an_idle_budget_at_once_get_two_slots_an_interval_apart(
    world: World,
) -> None:
    lock = threading.Lock()
    table = create_pk_sk_table(world.stack.dynamodb, "budget-race")
    barrier = threading.Barrier(2, timeout=TIMEOUT)
    clients: list[Any] = [
        MeetAfterBacklog(Atomic(world.stack.dynamodb, lock), barrier) for _ in range(2)
    ]
    stores = [DynamoSlotStore(client, table) for client in clients]

    slots = run_together(*(lambda s=s: s.reserve(1000.0, 1.5) for s in stores))

    assert not any(isinstance(slot, ClientError) for slot in slots), slots
    assert sorted(slots) == [1000.0, 1001.5]  # never the same slot twice
    assert stores[0].read().tat == 1003.0  # two slots spent for two requests


def test_many_reservations_at_once_never_hold_more_slots_than_the_budget(world: World) -> None:
    lock = threading.Lock()
    table = create_pk_sk_table(world.stack.dynamodb, "budget-many")
    limit, window = 40, 60.0
    interval = window / limit
    instances, each = 4, 15

    def reserve_many(store: DynamoSlotStore) -> list[float]:
        return [store.reserve(1000.0, interval) for _ in range(each)]

    clients: list[Any] = [Atomic(world.stack.dynamodb, lock) for _ in range(instances)]
    stores = [DynamoSlotStore(client, table) for client in clients]
    found = run_together(*(lambda s=s: reserve_many(s) for s in stores))

    slots = sorted(slot for taken in found for slot in taken)
    assert slots == [pytest.approx(1000.0 + interval * i) for i in range(instances * each)]
    busiest = max(sum(1 for s in slots if start <= s < start + window) for start in slots)
    assert busiest <= limit
