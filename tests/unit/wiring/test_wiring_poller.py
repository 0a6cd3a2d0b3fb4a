"""The poller's wiring (``PollerRuntime``) as an operator relies on it: one poller at a time
(the ledger lease, given back after every run, lapsing after a killed one), how much one run
queues at the budget's pace, which settings reach the inbox poller, the deadline that bounds the
Lucca client, what a warm instance remembers between runs, and the log lines and metrics
(``LuccaThrottled``, ``DocumentsAwaitingReview``) a run leaves. moto for AWS, a scripted Lucca
(``tests.harness.CannedLucca``) and a fake clock, so time passes only when the test says; the
log lines as Powertools writes them (JSON), caught by a handler of our own."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from cleemy_booker.clock import utc_iso
from cleemy_booker.errors import AuthError
from cleemy_booker.ledger import Ledger, Status
from cleemy_booker.models import InboxItem
from cleemy_booker.poller import (
    BACKLOG_STOPS,
    QUEUE_SHARE,
    STOP_ANOTHER_POLLER,
    STOP_TARGET_REACHED,
    STOP_TIME,
    PollReport,
)
from cleemy_booker.wiring.poller import POLLER_LEASE, PollerRuntime
from cleemy_booker.wiring.shared import decision_config
from tests.aws import Stack, ledger_of
from tests.clocks import NOW, FakeClock
from tests.factories import raw_item
from tests.harness import CannedLucca, five_minutes, poller_runtime
from tests.logs import JsonLines, values

EMPTY_INBOX = {"items": [], "count": 0}


#: A queue target of 4: 10 requests a second, a listing fresh for 1 s, 45% of that.
SMALL_TARGET = {"BUDGET_LIMIT": "10", "BUDGET_WINDOW_SECONDS": "1", "LISTING_FRESH_SECONDS": "1"}


#: NOW is a Friday morning: with these hours, outside working hours.
OFF_HOURS = {"WORKING_HOURS": "Sat-Sun 07:00-20:00", "OFF_HOURS_LISTING_SECONDS": "1800"}


SKIPPED = "outside working hours, listed a moment ago"


def inbox(*document_ids: int, count: int | None = None) -> dict[str, Any]:
    items = [raw_item(document_id) for document_id in document_ids]
    return {"items": items, "count": len(items) if count is None else count}


def stamp(document_id: int) -> str:
    """The listed item's ``modifiedAt`` as the poller claims it."""
    changed = InboxItem.model_validate(raw_item(document_id)).changed_at
    assert changed is not None
    return changed.isoformat()


def status(stack: Stack, clock: FakeClock, document_id: int) -> Status | None:
    state = ledger_of(stack, clock).states.state(document_id)
    return None if state is None else state.status


def state_item(stack: Stack, document_id: int) -> dict[str, Any]:
    key = {"pk": {"S": f"doc#{document_id}"}, "sk": {"S": "state"}}
    item: dict[str, Any] = stack.dynamodb.get_item(
        TableName=stack.ledger_table, Key=key, ConsistentRead=True
    )["Item"]
    return item


def receive_batch(stack: Stack, batch_size: int) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = stack.sqs.receive_message(
        QueueUrl=stack.queue_url, MaxNumberOfMessages=batch_size, WaitTimeSeconds=0
    ).get("Messages", [])
    return messages


def queued_ids(stack: Stack) -> list[int]:
    """The documents waiting in the queue (received and deleted: the queue is left empty)."""
    found: list[int] = []
    while messages := receive_batch(stack, 10):
        for message in messages:
            found.append(json.loads(message["Body"])["documentId"])
            stack.sqs.delete_message(
                QueueUrl=stack.queue_url, ReceiptHandle=message["ReceiptHandle"]
            )
    return sorted(found)


def hold(
    stack: Stack, clock: FakeClock, document_id: int, config: str, *, recheck_in: float = 86400
) -> None:
    """A hold decided on the document as listed now, under ``config``."""
    ledger_of(stack, clock).states.record(
        document_id,
        Status.HELD,
        "held",
        modified_at=stamp(document_id),
        reasons=["amounts_mismatch: x"],
        recheck_at=clock.now + recheck_in,
        config=config,
    )


def awaiting_review(stack: Stack, *document_ids: int) -> None:
    ledger = Ledger(stack.dynamodb, stack.ledger_table)
    for document_id in document_ids:
        ledger.states.record(document_id, Status.HELD, "held", reasons=["amounts_mismatch: x"])


def seconds_left(clock: FakeClock, seconds: float) -> Callable[[], float]:
    """An invocation with ``seconds`` left now, running out as the fake clock moves."""
    ends = clock.now + seconds
    return lambda: ends - clock.now


def lease_item(stack: Stack) -> dict[str, Any]:
    key = {"pk": {"S": f"lease#{POLLER_LEASE}"}, "sk": {"S": "lease"}}
    found = stack.dynamodb.get_item(TableName=stack.ledger_table, Key=key, ConsistentRead=True)
    item: dict[str, Any] = found.get("Item", {})
    return item


class LongRetryAfter(CannedLucca):
    """A ``CannedLucca`` whose 429s ask to wait ``retry_after`` seconds."""

    def __init__(self, retry_after: float, *answers: int | dict[str, Any]) -> None:
        super().__init__(*answers)
        self.retry_after = retry_after

    def __call__(self, request: httpx.Request) -> httpx.Response:
        response = super().__call__(request)
        if response.status_code == 429:
            response.headers["Retry-After"] = str(int(self.retry_after))
        return response


# --- one poller at a time: the lease ----------------------------------------------------------


def test_a_second_poll_while_one_runs_is_refused_and_asks_lucca_nothing(
    stack: Stack, clock: FakeClock
) -> None:
    first_lucca, second_lucca = CannedLucca(EMPTY_INBOX), CannedLucca(EMPTY_INBOX)
    first = poller_runtime(stack, clock, first_lucca)
    second = poller_runtime(stack, clock, second_lucca)  # another instance, started meanwhile
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
    lucca = CannedLucca(EMPTY_INBOX)
    held: list[dict[str, Any]] = []
    lucca.meanwhile = lambda: held.append(lease_item(stack))
    runtime = poller_runtime(stack, clock, lucca)

    runtime.poll(five_minutes, "req-1")

    (during,) = held
    assert during["leaseHolder"] == {"S": "req-1"}
    assert float(during["leaseUntil"]["N"]) == NOW + 300
    assert lease_item(stack) == {}
    # Another run, with a random holder.
    again = poller_runtime(stack, clock, CannedLucca(EMPTY_INBOX)).poll(five_minutes)
    assert again.stopped_because == "empty page"
    assert lease_item(stack) == {}


def test_the_lease_is_released_after_a_poll_that_fails(stack: Stack, clock: FakeClock) -> None:
    runtime = poller_runtime(stack, clock, CannedLucca(401))
    with pytest.raises(AuthError):
        runtime.poll(five_minutes, "req-1")
    assert lease_item(stack) == {}
    healthy = poller_runtime(stack, clock, CannedLucca(EMPTY_INBOX))
    assert healthy.poll(five_minutes, "req-2").stopped_because == "empty page"


def test_a_lease_left_by_a_killed_poller_lapses_at_the_end_of_its_invocation(
    stack: Stack, clock: FakeClock
) -> None:
    ledger = Ledger(stack.dynamodb, stack.ledger_table, clock=clock.time)
    assert ledger.leases.acquire_lease(POLLER_LEASE, "killed", NOW + 300).acquired
    lucca = CannedLucca(EMPTY_INBOX)
    runtime = poller_runtime(stack, clock, lucca)
    assert runtime.poll(five_minutes).stopped_because == STOP_ANOTHER_POLLER
    clock.now = NOW + 301
    assert runtime.poll(five_minutes).stopped_because == "empty page"
    assert len(lucca.requests) == 1


def test_a_lease_not_given_back_is_a_warning_with_its_traceback_not_a_failed_poll(
    stack: Stack, clock: FakeClock, logs: JsonLines, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(name: str, holder: str) -> None:
        raise RuntimeError("DynamoDB is having a bad day")

    runtime = poller_runtime(stack, clock, CannedLucca(EMPTY_INBOX))
    monkeypatch.setattr(runtime.ledger.leases, "release_lease", broken)

    assert runtime.poll(five_minutes).stopped_because == "empty page"

    (line,) = logs.named("poller lease not released")
    assert line["level"] == "WARNING"
    assert line["exception_name"] == "RuntimeError"
    assert line["exception"].startswith("Traceback (most recent call last):")
    assert line["exception"].endswith("RuntimeError: DynamoDB is having a bad day")
    failing = poller_runtime(stack, clock, CannedLucca(401))
    monkeypatch.setattr(failing.ledger.leases, "release_lease", broken)
    clock.now += 301  # the first lease, never given back, has lapsed
    with pytest.raises(AuthError):  # the poll's own error, not hidden by the lease's
        failing.poll(five_minutes)
    assert len(logs.named("poller lease not released")) == 2


def test_the_lease_lasts_at_most_lambdas_longest_timeout(stack: Stack, clock: FakeClock) -> None:
    lucca = CannedLucca(EMPTY_INBOX)
    held: list[dict[str, Any]] = []
    lucca.meanwhile = lambda: held.append(lease_item(stack))

    poller_runtime(stack, clock, lucca).poll(lambda: 3600.0, "req-1")

    (during,) = held
    assert float(during["leaseUntil"]["N"]) == NOW + 900


def test_a_run_refused_the_lease_logs_who_holds_it_until_when(
    stack: Stack, clock: FakeClock, logs: JsonLines
) -> None:
    ledger_of(stack, clock).leases.acquire_lease(POLLER_LEASE, "req-other", NOW + 300)

    report = poller_runtime(stack, clock, CannedLucca(EMPTY_INBOX)).poll(five_minutes, "req-1")

    assert report.stopped_because == STOP_ANOTHER_POLLER
    (line,) = logs.named("inbox not listed")
    assert line["level"] == "INFO"
    assert line["reason"] == STOP_ANOTHER_POLLER
    assert line["holder"] == "req-other"
    assert line["until"] == NOW + 300


# --- how much one run queues ------------------------------------------------------------------


@pytest.mark.parametrize(("slowdown", "fill"), [(1.0, 4), (2.0, 2), (4.0, 1)])
def test_a_run_queues_the_settings_target_divided_by_the_budgets_slowdown_and_at_least_one(
    stack: Stack, clock: FakeClock, slowdown: float, fill: int
) -> None:
    """After 429s (another integration spends the tenant's budget) the budget books slower:
    the queue is filled with fewer documents, so those queued are booked while fresh."""
    lucca = CannedLucca(inbox(*range(501, 511)))
    runtime = poller_runtime(stack, clock, lucca, **SMALL_TARGET)
    assert runtime.settings.queue_target(QUEUE_SHARE) == 4
    if slowdown > 1.0:
        runtime.budget.store.push_back(0.0, slowdown)  # as the budget records after 429s

    report = runtime.poll(five_minutes)

    assert (report.room, report.enqueued, report.listed) == (fill, fill, fill)
    assert report.stopped_because == STOP_TARGET_REACHED
    assert report.left_work
    assert queued_ids(stack) == list(range(501, 501 + fill))


# --- the settings that reach the inbox poller -------------------------------------------------


@pytest.mark.parametrize("dry_run", [True, False])
def test_a_dry_run_does_not_queue_its_plans_again_nor_record_bookings_from_the_listing(
    stack: Stack, clock: FakeClock, dry_run: bool
) -> None:
    ledger = ledger_of(stack, clock)
    # Planned by a dry run, unchanged since; a book call of ours that may have gone through.
    ledger.states.record(501, Status.PLANNED, "planned", modified_at=stamp(501))
    ledger.states.record(502, Status.BOOKING, "booking")
    clock.now += 60
    lucca = CannedLucca(inbox(501, 503))  # the whole inbox, in one answer: 502 has left it
    runtime = poller_runtime(stack, clock, lucca, DRY_RUN=str(dry_run).lower())

    report = runtime.poll(five_minutes)

    if dry_run:
        # Each document is planned once; only the real pipeline may settle a booking.
        assert queued_ids(stack) == [503]
        assert report.skipped == {"planned": 1}
        assert report.confirmed == []
        assert status(stack, clock, 502) is Status.BOOKING
    else:
        # Running for real: what was only planned is queued to be done.
        assert queued_ids(stack) == [501, 503]
        assert report.confirmed == [502]
        assert status(stack, clock, 502) is Status.BOOKED


def test_a_hold_decided_under_another_configuration_is_queued_again(
    stack: Stack, clock: FakeClock
) -> None:
    lucca = CannedLucca(inbox(501, 502))
    runtime = poller_runtime(stack, clock, lucca)
    hold(stack, clock, 501, "the rules before the last deployment")
    hold(stack, clock, 502, decision_config(runtime.settings))

    report = runtime.poll(five_minutes)

    assert queued_ids(stack) == [501]
    assert report.skipped == {"held": 1}
    assert status(stack, clock, 501) is Status.QUEUED
    assert status(stack, clock, 502) is Status.HELD


def test_the_page_size_is_the_listings_limit(stack: Stack, clock: FakeClock) -> None:
    lucca = CannedLucca(inbox(501, 502, count=3), inbox(503))
    report = poller_runtime(stack, clock, lucca, PAGE_SIZE="2").poll(five_minutes)

    assert [dict(request.url.params) for request in lucca.requests] == [
        {"limit": "2", "page": "1", "fields.root": "count"},
        {"limit": "2", "page": "2"},
    ]
    assert (report.pages, report.listed) == (2, 3)


def test_the_listing_is_sent_with_the_runtimes_api_key(stack: Stack, clock: FakeClock) -> None:
    lucca = CannedLucca(inbox(501))
    poller_runtime(stack, clock, lucca).poll(five_minutes)
    assert {request.headers["Authorization"] for request in lucca.requests} == {
        "lucca application=key"
    }


def test_a_claim_lasts_the_claim_ttl_from_the_runs_clock(stack: Stack, clock: FakeClock) -> None:
    lucca = CannedLucca(inbox(501))
    runtime = poller_runtime(stack, clock, lucca, CLAIM_TTL_SECONDS="120")

    runtime.poll(five_minutes)

    assert state_item(stack, 501)["queuedUntil"] == {"N": str(int(NOW + 120))}
    (body,) = [json.loads(m["Body"]) for m in receive_batch(stack, 10)]
    assert body["listedAt"].startswith(utc_iso(NOW)[:19])
    clock.now += 119  # still waiting (or in progress): not queued twice
    assert runtime.poll(five_minutes).skipped == {"queued": 1}
    clock.now += 2  # the claim lapsed, the message may be lost: queued again
    assert runtime.poll(five_minutes).enqueued == 1


@pytest.mark.parametrize(
    ("margin", "listed", "stopped"),
    [(None, 1, STOP_TIME), ("2", 3, "count reached")],
)
def test_the_walk_stops_when_less_than_the_stop_margin_is_left(
    stack: Stack, clock: FakeClock, margin: str | None, listed: int, stopped: str
) -> None:
    """Five seconds left: under the default margin (10 s) the run stops to flush and report;
    under a 2 s margin it goes on."""
    env = {} if margin is None else {"STOP_MARGIN_SECONDS": margin}
    runtime = poller_runtime(stack, clock, CannedLucca(inbox(501, 502, 503)), **env)

    report = runtime.poll(lambda: 5.0)

    assert report.listed == listed
    assert report.enqueued == listed
    assert stopped in report.stopped_because
    assert report.left_work == (stopped == STOP_TIME)


def test_a_retry_after_longer_than_the_time_left_is_not_waited_out(
    stack: Stack, clock: FakeClock
) -> None:
    """25 s left, 10 s of margin: a 429 asking for 30 s ends the listing at once (the next
    run lists), rather than sleeping past the invocation's end."""
    lucca = LongRetryAfter(30, 429, EMPTY_INBOX)
    runtime = poller_runtime(stack, clock, lucca)

    report = runtime.poll(seconds_left(clock, 25))

    assert len(lucca.requests) == 1
    assert clock.now == NOW
    assert report.requests == 1
    assert report.stopped_because.startswith("listing failed:")
    assert "no time left to retry" in report.stopped_because


def test_neither_a_warm_nor_a_cold_instance_asks_again_for_a_claim_refused_before(
    stack: Stack, clock: FakeClock
) -> None:
    runtime = poller_runtime(stack, clock, CannedLucca(inbox(501)))
    hold(stack, clock, 501, decision_config(runtime.settings))

    first = runtime.poll(five_minutes)
    clock.now += 300
    second = runtime.poll(five_minutes)
    cold = poller_runtime(stack, clock, CannedLucca(inbox(501))).poll(five_minutes)

    assert (first.skipped, first.known) == ({"held": 1}, 0)
    assert (second.skipped, second.known) == ({}, 1)  # remembered: no conditional write
    assert (cold.skipped, cold.known) == ({}, 1)  # read from the ledger's snapshot


def test_a_booked_document_still_listed_past_the_listing_freshness_is_a_discrepancy(
    stack: Stack,
    clock: FakeClock,
    emitted: list[tuple[str, str, float]],
    logs: JsonLines,
) -> None:
    """The grace is the pipeline's ``LISTING_FRESH_SECONDS`` (here 60 s, not the default 900):
    past it, a booking should show in Lucca; still listed, Lucca did not book it."""
    ledger_of(stack, clock).states.record(501, Status.BOOKED, "booked")
    clock.now += 30
    runtime = poller_runtime(stack, clock, CannedLucca(inbox(501)), LISTING_FRESH_SECONDS="60")

    assert runtime.poll(five_minutes).discrepancies == []
    assert logs.named("the ledger and Lucca disagree") == []
    clock.now += 31

    assert runtime.poll(five_minutes).discrepancies == [501]
    assert values(emitted, "ReconciliationDiscrepancies") == [1]
    (line,) = logs.named("the ledger and Lucca disagree")
    assert line["level"] == "WARNING"
    assert line["documentIds"] == [501]


# --- a run that fails -------------------------------------------------------------------------


def test_a_run_that_fails_for_good_logs_what_it_did_and_its_discrepancies(
    stack: Stack,
    clock: FakeClock,
    emitted: list[tuple[str, str, float]],
    logs: JsonLines,
) -> None:
    ledger_of(stack, clock).states.record(501, Status.BOOKED, "booked")
    clock.now += 901
    lucca = CannedLucca(inbox(501, 502, count=3), 401)  # page 2: the key was revoked meanwhile
    runtime = poller_runtime(stack, clock, lucca, PAGE_SIZE="2")

    with pytest.raises(AuthError):
        runtime.poll(five_minutes)

    assert queued_ids(stack) == [502]  # what was listed is queued all the same
    (failed,) = logs.named("inbox poll failed")
    assert failed["level"] == "ERROR"
    report = failed["report"]
    assert (report["listed"], report["enqueued"], report["requests"]) == (2, 1, 2)
    assert report["skipped"] == {"booked": 1}
    assert report["discrepancies"] == [501]
    assert report["stoppedBecause"].startswith("listing failed:")
    assert values(emitted, "ReconciliationDiscrepancies") == [1]
    (disagree,) = logs.named("the ledger and Lucca disagree")
    assert disagree["documentIds"] == [501]
    assert logs.named("inbox polled") == []


def test_a_run_logs_its_report(stack: Stack, clock: FakeClock, logs: JsonLines) -> None:
    runtime = poller_runtime(stack, clock, CannedLucca(inbox(501, 502)))

    report = runtime.poll(five_minutes)

    (line,) = logs.named("inbox polled")
    assert line["level"] == "INFO"
    assert line["report"] == report.as_dict()
    assert (line["report"]["listed"], line["report"]["enqueued"]) == (2, 2)
    assert line["report"]["stoppedBecause"] == "count reached"


# --- outside working hours: what a warm instance remembers ------------------------------------


def test_outside_working_hours_a_warm_instance_lists_only_every_off_hours_listing_seconds(
    stack: Stack, clock: FakeClock, logs: JsonLines
) -> None:
    lucca = CannedLucca(EMPTY_INBOX)
    runtime = poller_runtime(stack, clock, lucca, **OFF_HOURS)

    assert runtime.poll(five_minutes).stopped_because == "empty page"  # a cold one lists
    clock.now = NOW + 1769  # a scheduled run a little early still counts: 1800 - 30 s

    skipped = runtime.poll(five_minutes)

    assert skipped.stopped_because == SKIPPED
    assert not skipped.left_work
    assert len(lucca.requests) == 1
    (line,) = logs.named("inbox not listed")
    assert (line["reason"], line["listedAt"]) == (SKIPPED, NOW)
    assert lease_item(stack) == {}  # a skipped run does not even take the lease
    other = poller_runtime(stack, clock, lucca, **OFF_HOURS).poll(five_minutes)
    assert other.stopped_because == "empty page"  # another instance remembers nothing
    clock.now = NOW + 1770
    assert runtime.poll(five_minutes).stopped_because == "empty page"
    assert len(lucca.requests) == 3


def test_outside_working_hours_a_run_that_left_a_backlog_is_followed_by_a_listing(
    stack: Stack, clock: FakeClock
) -> None:
    lucca = CannedLucca(inbox(501, 502, 503, 504, 505), EMPTY_INBOX)
    runtime = poller_runtime(stack, clock, lucca, **OFF_HOURS, **SMALL_TARGET)

    assert runtime.poll(five_minutes).stopped_because == STOP_TARGET_REACHED
    assert queued_ids(stack) == [501, 502, 503, 504]  # booked meanwhile: the queue is empty
    clock.now += 300
    assert runtime.poll(five_minutes).stopped_because == "empty page"  # the backlog's run
    clock.now += 300
    assert runtime.poll(five_minutes).stopped_because == SKIPPED  # nothing left: the pace
    assert len(lucca.requests) == 2


def test_in_working_hours_every_run_lists(stack: Stack, clock: FakeClock) -> None:
    lucca = CannedLucca(EMPTY_INBOX)
    runtime = poller_runtime(stack, clock, lucca, OFF_HOURS_LISTING_SECONDS="1800")
    for _ in range(3):
        assert runtime.poll(five_minutes).stopped_because == "empty page"
        clock.now += 300
    assert len(lucca.requests) == 3


# --- LuccaThrottled ---------------------------------------------------------------------------


def test_the_poller_emits_the_429s_of_each_run_and_nothing_when_there_were_none(
    stack: Stack, clock: FakeClock, emitted: list[tuple[str, str, float]]
) -> None:
    lucca = CannedLucca(429, EMPTY_INBOX, EMPTY_INBOX, 429, 429, EMPTY_INBOX)
    runtime = poller_runtime(stack, clock, lucca)

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
    runtime = poller_runtime(stack, clock, CannedLucca(429, 401))
    with pytest.raises(AuthError):
        runtime.poll(five_minutes)
    assert values(emitted, "LuccaThrottled") == [1]


# --- DocumentsAwaitingReview ------------------------------------------------------------------


def test_held_documents_are_counted_at_most_every_held_count_seconds(
    stack: Stack, clock: FakeClock, emitted: list[tuple[str, str, float]]
) -> None:
    awaiting_review(stack, 1, 2)
    Ledger(stack.dynamodb, stack.ledger_table).states.record(3, Status.BOOKED, "booked")
    runtime = poller_runtime(stack, clock, CannedLucca(EMPTY_INBOX), HELD_COUNT_SECONDS="900")

    runtime.poll(five_minutes)  # a cold instance counts
    assert values(emitted, "DocumentsAwaitingReview") == [2]
    awaiting_review(stack, 4)
    for _ in range(2):  # 5 and 10 minutes later: not yet
        clock.now += 300
        runtime.poll(five_minutes)
    assert values(emitted, "DocumentsAwaitingReview") == [2]
    clock.now += 300  # 15 minutes after the last count
    runtime.poll(five_minutes)
    assert values(emitted, "DocumentsAwaitingReview") == [2, 3]
    cold = poller_runtime(stack, clock, CannedLucca(EMPTY_INBOX), HELD_COUNT_SECONDS="900")
    cold.poll(five_minutes)  # another instance remembers nothing: it counts
    assert values(emitted, "DocumentsAwaitingReview") == [2, 3, 3]


def test_no_held_document_is_a_count_of_zero_not_a_missing_point(
    stack: Stack, clock: FakeClock, emitted: list[tuple[str, str, float]]
) -> None:
    poller_runtime(stack, clock, CannedLucca(EMPTY_INBOX)).poll(five_minutes)
    assert values(emitted, "DocumentsAwaitingReview") == [0]


def test_a_run_refused_the_lease_still_keeps_the_gauge(
    stack: Stack, clock: FakeClock, emitted: list[tuple[str, str, float]]
) -> None:
    awaiting_review(stack, 1)
    Ledger(stack.dynamodb, stack.ledger_table, clock=clock.time).leases.acquire_lease(
        POLLER_LEASE, "other", NOW + 300
    )
    report = poller_runtime(stack, clock, CannedLucca(EMPTY_INBOX)).poll(five_minutes)
    assert report.stopped_because == STOP_ANOTHER_POLLER
    assert values(emitted, "DocumentsAwaitingReview") == [1]


def test_a_failed_count_does_not_fail_the_poll_and_is_tried_again_next_run(
    stack: Stack,
    clock: FakeClock,
    emitted: list[tuple[str, str, float]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    awaiting_review(stack, 1)
    runtime = poller_runtime(stack, clock, CannedLucca(EMPTY_INBOX))

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


def test_a_scheduled_run_a_little_early_still_counts_the_held_documents(
    stack: Stack, clock: FakeClock, emitted: list[tuple[str, str, float]]
) -> None:
    """Every 900 s, less the schedule's 30 s of drift: a run 870 s after the count counts."""
    hold(stack, clock, 1, "config")
    runtime: PollerRuntime = poller_runtime(
        stack, clock, CannedLucca(EMPTY_INBOX), HELD_COUNT_SECONDS="900"
    )

    runtime.poll(five_minutes)
    clock.now = NOW + 869
    runtime.poll(five_minutes)
    assert values(emitted, "DocumentsAwaitingReview") == [1]
    clock.now = NOW + 870
    runtime.poll(five_minutes)
    assert values(emitted, "DocumentsAwaitingReview") == [1, 1]


def test_a_failed_count_is_a_warning_with_its_traceback(
    stack: Stack, clock: FakeClock, logs: JsonLines, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = poller_runtime(stack, clock, CannedLucca(EMPTY_INBOX))

    def broken(status: Status) -> int:
        raise RuntimeError("DynamoDB is having a bad day")

    monkeypatch.setattr(runtime.ledger.queries, "count_in_status", broken)

    assert runtime.poll(five_minutes).stopped_because == "empty page"

    (line,) = logs.named("held documents not counted")
    assert line["level"] == "WARNING"
    assert line["exception"].endswith("RuntimeError: DynamoDB is having a bad day")
