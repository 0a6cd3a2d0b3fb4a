"""The runtimes' own duties around the domain: one poller at a time (the ledger lease), the
``LuccaThrottled`` and ``DocumentsAwaitingReview`` metrics. moto for AWS, a scripted Lucca
(httpx mock transport) and a fake clock, so time passes only when the test says."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from cleemy_booker.config import PollerSettings, ProcessorSettings
from cleemy_booker.errors import AuthError, RetryableError
from cleemy_booker.ledger import Ledger, Status
from cleemy_booker.observability import metrics as powertools_metrics
from cleemy_booker.poller import BACKLOG_STOPS, STOP_ANOTHER_POLLER, PollReport
from cleemy_booker.rules import load_rules
from cleemy_booker.wiring.aws import AwsClients
from cleemy_booker.wiring.poller import POLLER_LEASE, PollerRuntime
from cleemy_booker.wiring.processor import ProcessorRuntime
from cleemy_booker.wiring.shared import Seams
from tests.aws import Stack, stack_fixture

NOW = 1_800_000_000.0
BASE_URL = "https://acme.ilucca.net"
EMPTY_INBOX = {"items": [], "count": 0}


class FakeClock:
    """``Clock`` on fake time: both clocks move only when code sleeps or the test moves them."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now - NOW

    def sleep(self, seconds: float) -> None:
        self.now += max(0.0, seconds)


class Lucca:
    """Answers each request with the next scripted answer (the last one from then on); an
    answer is a status (429 with ``Retry-After: 1``, an empty body otherwise) or a JSON body."""

    def __init__(self, *answers: int | dict[str, Any]) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []
        #: Called on each request before it is answered: where a test does something meanwhile.
        self.meanwhile: Callable[[], None] = lambda: None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.meanwhile()
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, dict):
            return httpx.Response(200, json=answer)
        headers = {"Retry-After": "1"} if answer == 429 else {}
        return httpx.Response(answer, headers=headers)

    def http(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self))


stack = stack_fixture("placeholder")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def capture_metrics(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, float]]:
    """Every metric the runtimes add from now on: (name, unit, value)."""
    seen: list[tuple[str, str, float]] = []

    def add_metric(name: str, unit: Any, value: float, **_: Any) -> None:
        seen.append((name, str(unit.value), value))

    monkeypatch.setattr(powertools_metrics, "add_metric", add_metric)
    return seen


@pytest.fixture
def emitted(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, float]]:
    return capture_metrics(monkeypatch)


def values(emitted: list[tuple[str, str, float]], name: str) -> list[float]:
    return [value for metric, unit, value in emitted if metric == name and unit == "Count"]


def poller(stack: Stack, clock: FakeClock, lucca: Lucca, **env: str) -> PollerRuntime:
    settings = PollerSettings.from_env(stack.env(BASE_URL, **env))
    aws = AwsClients(stack.dynamodb, stack.sqs)
    return PollerRuntime(settings, aws, "key", Seams(clock=clock, http=lucca.http()))


def processor(stack: Stack, clock: FakeClock, lucca: Lucca) -> ProcessorRuntime:
    settings = ProcessorSettings.from_env(stack.env(BASE_URL))
    aws = AwsClients(stack.dynamodb, stack.sqs)
    runtime = ProcessorRuntime(
        settings, aws, "key", load_rules(None), Seams(clock=clock, http=lucca.http())
    )
    runtime.start_invocation(lambda: 60.0)
    return runtime


def five_minutes() -> float:
    return 300.0


def lease_item(stack: Stack) -> dict[str, Any]:
    key = {"pk": {"S": f"lease#{POLLER_LEASE}"}, "sk": {"S": "lease"}}
    found = stack.dynamodb.get_item(TableName=stack.ledger_table, Key=key, ConsistentRead=True)
    item: dict[str, Any] = found.get("Item", {})
    return item


# --- one poller at a time ---------------------------------------------------------------------


def test_a_second_poll_while_one_runs_is_refused_and_asks_lucca_nothing(
    stack: Stack, clock: FakeClock
) -> None:
    first_lucca, second_lucca = Lucca(EMPTY_INBOX), Lucca(EMPTY_INBOX)
    first = poller(stack, clock, first_lucca)
    second = poller(stack, clock, second_lucca)  # another instance, started meanwhile
    overlapping: list[PollReport] = []
    first_lucca.meanwhile = lambda: overlapping.append(second.poll(five_minutes, "req-2"))

    report = first.poll(five_minutes, "req-1")

    assert report.stopped_because == "empty page"
    (refused,) = overlapping
    assert refused.stopped_because == STOP_ANOTHER_POLLER
    assert STOP_ANOTHER_POLLER not in BACKLOG_STOPS
    assert not refused.left_work
    assert (refused.requests, refused.listed, refused.enqueued) == (0, 0, 0)
    assert second_lucca.requests == []
    assert sum(second.client.requests_sent.values()) == 0


def test_the_lease_is_held_for_the_invocation_and_released_after_the_poll(
    stack: Stack, clock: FakeClock
) -> None:
    lucca = Lucca(EMPTY_INBOX)
    held: list[dict[str, Any]] = []
    lucca.meanwhile = lambda: held.append(lease_item(stack))
    runtime = poller(stack, clock, lucca)

    runtime.poll(five_minutes, "req-1")

    (during,) = held
    assert during["leaseHolder"] == {"S": "req-1"}
    assert float(during["leaseUntil"]["N"]) == NOW + 300
    assert lease_item(stack) == {}
    again = poller(stack, clock, Lucca(EMPTY_INBOX)).poll(five_minutes)  # a random holder
    assert again.stopped_because == "empty page"
    assert lease_item(stack) == {}


def test_the_lease_is_released_after_a_poll_that_fails(stack: Stack, clock: FakeClock) -> None:
    runtime = poller(stack, clock, Lucca(401))
    with pytest.raises(AuthError):
        runtime.poll(five_minutes, "req-1")
    assert lease_item(stack) == {}
    healthy = poller(stack, clock, Lucca(EMPTY_INBOX))
    assert healthy.poll(five_minutes, "req-2").stopped_because == "empty page"


def test_a_lease_left_by_a_killed_poller_lapses_at_the_end_of_its_invocation(
    stack: Stack, clock: FakeClock
) -> None:
    ledger = Ledger(stack.dynamodb, stack.ledger_table, clock=clock.time)
    assert ledger.leases.acquire_lease(POLLER_LEASE, "killed", NOW + 300).acquired
    lucca = Lucca(EMPTY_INBOX)
    runtime = poller(stack, clock, lucca)
    assert runtime.poll(five_minutes).stopped_because == STOP_ANOTHER_POLLER
    clock.now = NOW + 301
    assert runtime.poll(five_minutes).stopped_because == "empty page"
    assert len(lucca.requests) == 1


# --- LuccaThrottled ---------------------------------------------------------------------------


def test_the_poller_emits_the_429s_of_each_run_and_nothing_when_there_were_none(
    stack: Stack, clock: FakeClock, emitted: list[tuple[str, str, float]]
) -> None:
    lucca = Lucca(429, EMPTY_INBOX, EMPTY_INBOX, 429, 429, EMPTY_INBOX)
    runtime = poller(stack, clock, lucca)

    runtime.poll(five_minutes)
    assert values(emitted, "LuccaThrottled") == [1]
    clock.now += 300
    runtime.poll(five_minutes)
    assert values(emitted, "LuccaThrottled") == [1]  # none this run: no data point at all
    clock.now += 300
    runtime.poll(five_minutes)
    assert values(emitted, "LuccaThrottled") == [1, 2]  # this run's own, not the instance's 3
    assert runtime.budget.stats.throttled == 3


def test_the_poller_emits_the_429s_of_a_run_that_failed(
    stack: Stack, clock: FakeClock, emitted: list[tuple[str, str, float]]
) -> None:
    runtime = poller(stack, clock, Lucca(429, 401))
    with pytest.raises(AuthError):
        runtime.poll(five_minutes)
    assert values(emitted, "LuccaThrottled") == [1]


@pytest.mark.filterwarnings("ignore:Couldn't determine the remaining time left")
def test_the_processor_emits_the_429s_of_each_record_and_nothing_when_there_were_none(
    stack: Stack, clock: FakeClock, emitted: list[tuple[str, str, float]]
) -> None:
    # Record 1: four 429s (every attempt), deferred. Record 2: one 429, then not in the inbox.
    # Record 3: not in the inbox at once. Record 4: a 429, then 503s: raised for SQS to retry.
    lucca = Lucca(429, 429, 429, 429, 429, 404, 404, 429, 503, 503, 503)
    runtime = processor(stack, clock, lucca)

    deferred = runtime.handle_record(json.dumps({"documentId": 1}), "m1")
    gone = runtime.handle_record(json.dumps({"documentId": 2}), "m2")
    clean = runtime.handle_record(json.dumps({"documentId": 3}), "m3")
    with pytest.raises(RetryableError):
        runtime.handle_record(json.dumps({"documentId": 4}), "m4")

    assert (deferred["outcome"], gone["outcome"], clean["outcome"]) == (
        "deferred",
        "dead_lettered",
        "dead_lettered",
    )
    assert len(lucca.requests) == 11
    assert values(emitted, "LuccaThrottled") == [4, 1, 1]


# --- DocumentsAwaitingReview ------------------------------------------------------------------


def hold(stack: Stack, *document_ids: int) -> None:
    ledger = Ledger(stack.dynamodb, stack.ledger_table)
    for document_id in document_ids:
        ledger.states.record(document_id, Status.HELD, "held", reasons=["amounts_mismatch: x"])


def test_held_documents_are_counted_at_most_every_held_count_seconds(
    stack: Stack, clock: FakeClock, emitted: list[tuple[str, str, float]]
) -> None:
    hold(stack, 1, 2)
    Ledger(stack.dynamodb, stack.ledger_table).states.record(3, Status.BOOKED, "booked")
    runtime = poller(stack, clock, Lucca(EMPTY_INBOX), HELD_COUNT_SECONDS="900")

    runtime.poll(five_minutes)  # a cold instance counts
    assert values(emitted, "DocumentsAwaitingReview") == [2]
    hold(stack, 4)
    for _ in range(2):  # 5 and 10 minutes later: not yet
        clock.now += 300
        runtime.poll(five_minutes)
    assert values(emitted, "DocumentsAwaitingReview") == [2]
    clock.now += 300  # 15 minutes after the last count
    runtime.poll(five_minutes)
    assert values(emitted, "DocumentsAwaitingReview") == [2, 3]
    cold = poller(stack, clock, Lucca(EMPTY_INBOX), HELD_COUNT_SECONDS="900")
    cold.poll(five_minutes)  # another instance remembers nothing: it counts
    assert values(emitted, "DocumentsAwaitingReview") == [2, 3, 3]


def test_no_held_document_is_a_count_of_zero_not_a_missing_point(
    stack: Stack, clock: FakeClock, emitted: list[tuple[str, str, float]]
) -> None:
    poller(stack, clock, Lucca(EMPTY_INBOX)).poll(five_minutes)
    assert values(emitted, "DocumentsAwaitingReview") == [0]


def test_a_run_refused_the_lease_still_keeps_the_gauge(
    stack: Stack, clock: FakeClock, emitted: list[tuple[str, str, float]]
) -> None:
    hold(stack, 1)
    Ledger(stack.dynamodb, stack.ledger_table, clock=clock.time).leases.acquire_lease(
        POLLER_LEASE, "other", NOW + 300
    )
    report = poller(stack, clock, Lucca(EMPTY_INBOX)).poll(five_minutes)
    assert report.stopped_because == STOP_ANOTHER_POLLER
    assert values(emitted, "DocumentsAwaitingReview") == [1]


def test_a_failed_count_does_not_fail_the_poll_and_is_tried_again_next_run(
    stack: Stack,
    clock: FakeClock,
    emitted: list[tuple[str, str, float]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hold(stack, 1)
    runtime = poller(stack, clock, Lucca(EMPTY_INBOX))

    count, failing = runtime.ledger.queries.count_in_status, [True]

    def sometimes_broken(status: Status) -> int:
        if failing[0]:
            raise RuntimeError("DynamoDB is having a bad day")
        return count(status)

    monkeypatch.setattr(runtime.ledger.queries, "count_in_status", sometimes_broken)
    report = runtime.poll(five_minutes)
    assert report.stopped_because == "empty page"
    assert values(emitted, "LuccaRequests") == [1]
    assert values(emitted, "DocumentsAwaitingReview") == []
    failing[0] = False
    clock.now += 300  # within held_count_seconds of the failed count: counted all the same
    runtime.poll(five_minutes)
    assert values(emitted, "DocumentsAwaitingReview") == [1]
