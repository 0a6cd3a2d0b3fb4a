"""The ledger in DynamoDB (moto): claims for the queue, states, audit trail, number claims,
leases and counts."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import pytest

from cleemy_booker import ledger as ledger_module
from cleemy_booker.clock import utc_iso
from cleemy_booker.ledger import BookingTrail, DocumentSummary, LeaseResult, Ledger, Status
from tests.aws import moto_ledger
from tests.factories import document_summary

NOW = 1_800_000_000.0


@pytest.fixture
def ledger() -> Iterator[Ledger]:
    with moto_ledger() as found:
        yield found


def test_a_new_document_is_claimed_once(ledger: Ledger) -> None:
    assert ledger.states.claim_for_queue(1, "m1", now=NOW, ttl_seconds=3600).claimed
    second = ledger.states.claim_for_queue(1, "m1", now=NOW + 60, ttl_seconds=3600)
    assert not second.claimed
    assert second.previous is Status.QUEUED


def test_an_expired_claim_can_be_taken_again(ledger: Ledger) -> None:
    ledger.states.claim_for_queue(1, "m1", now=NOW, ttl_seconds=3600)
    assert ledger.states.claim_for_queue(1, "m1", now=NOW + 3601, ttl_seconds=3600).claimed


def test_a_held_document_is_queued_again_only_when_it_changed(ledger: Ledger) -> None:
    ledger.states.claim_for_queue(1, "m1", now=NOW, ttl_seconds=3600)
    ledger.states.record(1, Status.HELD, "held", modified_at="m1", reasons=["amounts_mismatch: x"])
    assert not ledger.states.claim_for_queue(1, "m1", now=NOW + 7200, ttl_seconds=3600).claimed
    assert ledger.states.claim_for_queue(1, "m2", now=NOW + 7200, ttl_seconds=3600).claimed


def test_a_booked_document_is_never_queued_again(ledger: Ledger) -> None:
    ledger.states.record(1, Status.BOOKED, "booked", modified_at="m1")
    result = ledger.states.claim_for_queue(1, "m9", now=NOW + 10**6, ttl_seconds=3600)
    assert (result.claimed, result.previous) == (False, Status.BOOKED)


def test_released_claims_can_be_taken_again(ledger: Ledger) -> None:
    ledger.states.claim_for_queue(1, "m1", now=NOW, ttl_seconds=3600)
    ledger.states.release_claim(1)
    assert ledger.states.state(1) is None
    assert ledger.states.claim_for_queue(1, "m1", now=NOW, ttl_seconds=3600).claimed


@pytest.mark.parametrize("status", [Status.HELD, Status.BOOKING])
def test_a_released_claim_puts_back_the_state_it_replaced(ledger: Ledger, status: Status) -> None:
    summary = DocumentSummary(document_number="F-1", currency="EUR")
    reason = "book_uncertain: ..." if status is Status.HELD else None
    ledger.states.record(
        1,
        status,
        "before",
        modified_at="m1",
        reasons=[reason] if reason else None,
        recheck_at=NOW + 60,
        summary=summary,
    )
    before = ledger.states.state(1)
    # Re-queued (changed in Lucca, or stuck past the claim time), then SQS refused the message.
    claim = ledger.states.claim_for_queue(1, "m2", now=NOW + 10**5, ttl_seconds=3600)
    assert claim.claimed
    assert ledger.states.state(1).status is Status.QUEUED  # type: ignore[union-attr]

    ledger.states.release_claim(1, claim.before)

    after = ledger.states.state(1)
    assert after == before  # status, reasons, summary, times: as they were
    assert after is not None
    assert after.summary == summary
    # Not a document the ledger never saw: the next claim is no "new" one for reconciliation.
    again = ledger.states.claim_for_queue(1, "m2", now=NOW + 10**5, ttl_seconds=3600)
    assert again.claimed
    assert not again.new


def test_release_leaves_a_document_that_moved_on_alone(ledger: Ledger) -> None:
    ledger.states.record(1, Status.BOOKED, "booked")
    ledger.states.release_claim(1)
    state = ledger.states.state(1)
    assert state is not None
    assert state.status is Status.BOOKED


def test_history_and_held_listing(ledger: Ledger) -> None:
    ledger.states.record(
        5,
        Status.UPDATED,
        "updated",
        detail={"diff": [{"field": "a", "before": None, "after": "x"}]},
    )
    ledger.states.record(5, Status.BOOKED, "booked", detail={"requestIds": ["r1"]})
    ledger.states.record(6, Status.HELD, "held", reasons=["ocr_not_finished: Pending"])
    kinds = [event.kind for event in ledger.queries.history(5)]
    assert kinds == ["updated", "booked"]
    assert ledger.queries.history(5)[0].detail["diff"][0]["after"] == "x"
    held = ledger.queries.in_status(Status.HELD)
    assert [(s.document_id, s.reasons) for s in held] == [(6, ("ocr_not_finished: Pending",))]


def test_invoice_numbers_are_claimed_by_one_document(ledger: Ledger) -> None:
    assert ledger.numbers.claim_number("purchase:9", "F-1", 10) is None
    assert ledger.numbers.claim_number("purchase:9", "F-1", 10) is None  # same document: fine
    assert ledger.numbers.claim_number("purchase:9", "F-1", 11) == 10
    assert ledger.numbers.find_duplicate("purchase:9", "F-1", 11) == 10
    assert ledger.numbers.find_duplicate("purchase:9", "F-1", 10) is None
    assert ledger.numbers.claim_number("purchase:8", "F-1", 11) is None  # another scope
    ledger.numbers.release_number("purchase:9", "F-1", 10)
    assert ledger.numbers.claim_number("purchase:9", "F-1", 11) is None


def test_extend_claim_keeps_a_deferred_document_queued(ledger: Ledger) -> None:
    ledger.states.claim_for_queue(1, "m1", now=NOW, ttl_seconds=60)
    ledger.states.extend_claim(1, until=NOW + 5000)
    assert not ledger.states.claim_for_queue(1, "m1", now=NOW + 120, ttl_seconds=60).claimed


def test_a_dry_run_plan_is_queued_again_once_the_pipeline_runs_for_real(ledger: Ledger) -> None:
    ledger.states.record(1, Status.PLANNED, "dry_run", modified_at="m1")
    assert not ledger.states.claim_for_queue(1, "m1", now=NOW, ttl_seconds=60, dry_run=True).claimed
    assert ledger.states.claim_for_queue(1, "m2", now=NOW, ttl_seconds=60, dry_run=True).claimed
    ledger.states.record(1, Status.PLANNED, "dry_run", modified_at="m2")
    assert ledger.states.claim_for_queue(1, "m2", now=NOW, ttl_seconds=60, dry_run=False).claimed


def test_a_hold_comes_back_when_its_recheck_time_passes(ledger: Ledger) -> None:
    ledger.states.claim_for_queue(1, "m1", now=NOW, ttl_seconds=3600)
    ledger.states.record(1, Status.HELD, "held", modified_at="m1", recheck_at=NOW + 21600)
    early = ledger.states.claim_for_queue(1, "m1", now=NOW + 3600, ttl_seconds=3600)
    assert (early.claimed, early.retry_after) == (False, NOW + 21600)
    assert ledger.states.claim_for_queue(1, "m1", now=NOW + 21601, ttl_seconds=3600).claimed


def test_a_hold_comes_back_when_the_configuration_changes(ledger: Ledger) -> None:
    ledger.states.claim_for_queue(1, "m1", now=NOW, ttl_seconds=3600, config="v1")
    ledger.states.record(1, Status.HELD, "held", modified_at="m1", config="v1")
    assert not ledger.states.claim_for_queue(
        1, "m1", now=NOW + 60, ttl_seconds=3600, config="v1"
    ).claimed
    assert not ledger.states.claim_for_queue(1, "m1", now=NOW + 60, ttl_seconds=3600).claimed
    assert ledger.states.claim_for_queue(
        1, "m1", now=NOW + 60, ttl_seconds=3600, config="v2"
    ).claimed


def test_a_failure_without_a_recheck_time_never_comes_back_unchanged(ledger: Ledger) -> None:
    ledger.states.record(1, Status.FAILED, "failed", modified_at="m1", reasons=["book refused"])
    result = ledger.states.claim_for_queue(1, "m1", now=NOW + 10**7, ttl_seconds=3600, config="v2")
    assert (result.claimed, result.retry_after) == (False, float("inf"))


# --- leases -----------------------------------------------------------------------------------


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@contextmanager
def clocked_ledger(now: float = NOW) -> Iterator[tuple[Ledger, Clock]]:
    """A ledger on moto whose clock the test moves."""
    clock = Clock(now)
    with moto_ledger(clock=clock) as ledger:
        yield ledger, clock


@pytest.fixture
def clocked() -> Iterator[tuple[Ledger, Clock]]:
    with clocked_ledger() as found:
        yield found


def lease_item(ledger: Ledger) -> dict[str, Any]:
    key = {"pk": {"S": "lease#poller"}, "sk": {"S": "lease"}}
    found = ledger.db.client.get_item(TableName=ledger.table, Key=key, ConsistentRead=True)
    item: dict[str, Any] = found.get("Item", {})
    return item


def test_a_lease_is_held_by_one_holder_until_it_lapses(clocked: tuple[Ledger, Clock]) -> None:
    ledger, clock = clocked
    assert ledger.leases.acquire_lease("poller", "a", NOW + 300).acquired
    refused = ledger.leases.acquire_lease("poller", "b", NOW + 600)
    assert refused == LeaseResult(False, "a", NOW + 300)
    clock.now = NOW + 299
    assert not ledger.leases.acquire_lease("poller", "b", NOW + 600).acquired
    clock.now = NOW + 301  # a's invocation ended without giving it back (killed)
    assert ledger.leases.acquire_lease("poller", "b", NOW + 600).acquired
    assert not ledger.leases.acquire_lease("poller", "a", NOW + 900).acquired


def test_the_holder_may_take_its_lease_again_and_extend_it(clocked: tuple[Ledger, Clock]) -> None:
    ledger, clock = clocked
    assert ledger.leases.acquire_lease("poller", "a", NOW + 300).acquired
    assert ledger.leases.acquire_lease("poller", "a", NOW + 900).acquired
    clock.now = NOW + 600
    assert not ledger.leases.acquire_lease("poller", "b", NOW + 1200).acquired


def test_a_lease_is_released_only_by_its_holder(clocked: tuple[Ledger, Clock]) -> None:
    ledger, clock = clocked
    ledger.leases.acquire_lease("poller", "a", NOW + 300)
    clock.now = NOW + 301
    ledger.leases.acquire_lease("poller", "b", NOW + 600)
    ledger.leases.release_lease("poller", "a")  # late: its lease lapsed and b took it
    assert not ledger.leases.acquire_lease("poller", "c", NOW + 900).acquired
    ledger.leases.release_lease("poller", "b")
    assert lease_item(ledger) == {}
    assert ledger.leases.acquire_lease("poller", "c", NOW + 900).acquired
    ledger.leases.release_lease("other", "c")  # no such lease: nothing to do, no error


def test_a_lease_item_expires_by_ttl_and_stays_out_of_the_status_index(
    clocked: tuple[Ledger, Clock],
) -> None:
    ledger, _ = clocked
    ledger.leases.acquire_lease("poller", "a", NOW + 299.2)
    item = lease_item(ledger)
    assert item["expiresAt"] == {"N": str(int(NOW) + 300)}
    assert "statusKey" not in item
    assert ledger.leases.acquire_lease("other", "b", NOW + 10).acquired  # leases are independent


# --- counts -----------------------------------------------------------------------------------


class SmallPages:
    """A DynamoDB client whose queries answer at most two items a page, as a 1 MB page does
    with thousands: shows the count follows ``LastEvaluatedKey``."""

    def __init__(self, ddb: Any) -> None:
        self._ddb = ddb
        self.queries = 0

    def query(self, **kwargs: Any) -> Any:
        self.queries += 1
        return self._ddb.query(**kwargs, Limit=2)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ddb, name)


def test_documents_in_a_status_are_counted_across_pages(ledger: Ledger) -> None:
    for document_id in range(1, 6):
        ledger.states.record(document_id, Status.HELD, "held", reasons=["x"])
    ledger.states.record(9, Status.BOOKED, "booked")
    ledger.leases.acquire_lease("poller", "a", NOW)
    assert ledger.queries.count_in_status(Status.HELD) == 5
    assert ledger.queries.count_in_status(Status.FAILED) == 0
    paged = SmallPages(ledger.db.client)
    small = Ledger(paged, ledger.table)
    assert small.queries.count_in_status(Status.HELD) == 5
    assert paged.queries == 3


def test_a_count_reads_at_most_count_max_pages(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    for document_id in range(1, 8):
        ledger.states.record(document_id, Status.HELD, "held")
    monkeypatch.setattr(ledger_module.queries, "COUNT_MAX_PAGES", 2)
    paged = SmallPages(ledger.db.client)
    assert Ledger(paged, ledger.table).queries.count_in_status(Status.HELD) == 4
    assert paged.queries == 2


# --- what a document is, how long it waits ----------------------------------------------------

SUMMARY = document_summary()


def test_a_summary_is_kept_until_a_decision_brings_another(ledger: Ledger) -> None:
    ledger.states.record(1, Status.HELD, "held", reasons=["amounts_mismatch: x"], summary=SUMMARY)
    state = ledger.states.state(1)
    assert state is not None
    assert state.summary == SUMMARY
    ledger.states.claim_for_queue(1, "m2", now=NOW, ttl_seconds=3600)
    ledger.states.record(1, Status.FAILED, "failed", reasons=["not in the inbox: 404"])  # no item
    failed = ledger.states.state(1)
    assert failed is not None
    assert failed.summary == SUMMARY
    other = DocumentSummary(document_number="F-2026-002", including_taxes=Decimal("1E+3"))
    ledger.states.record(1, Status.BOOKED, "booked", summary=other)
    booked = ledger.states.state(1)
    assert booked is not None
    assert booked.summary == other
    assert (
        ledger.queries.in_status(Status.BOOKED)[0].summary == other
    )  # the status index has it too


def test_a_long_text_is_cut_in_the_summary(ledger: Ledger) -> None:
    long = DocumentSummary(document_number="N" * 5000, owner_name="é" * 5000)
    ledger.states.record(1, Status.HELD, "held", summary=long)
    state = ledger.states.state(1)
    assert state is not None
    assert state.summary == DocumentSummary(
        document_number="N" * ledger_module.SUMMARY_TEXT_MAX,
        owner_name="é" * ledger_module.SUMMARY_TEXT_MAX,
    )


@pytest.mark.parametrize("absurd", ["1E+300", "1" * 50, "1E-200"])
def test_an_amount_dynamodb_would_refuse_is_left_out_not_fatal(ledger: Ledger, absurd: str) -> None:
    ledger.states.record(
        1,
        Status.HELD,
        "held",
        summary=DocumentSummary(document_number="F-1", including_taxes=Decimal(absurd)),
    )
    state = ledger.states.state(1)
    assert state is not None
    assert state.summary == DocumentSummary(document_number="F-1")


def test_a_hold_looked_at_again_waits_since_its_first_hold(clocked: tuple[Ledger, Clock]) -> None:
    ledger, clock = clocked
    ledger.states.record(1, Status.HELD, "held", modified_at="m1", reasons=["x: y"], recheck_at=NOW)
    first = ledger.states.state(1)
    assert first is not None
    assert first.held_since == first.updated_at == utc_iso(NOW)
    clock.now = NOW + 6 * 3600  # the recheck: queued again, held again
    assert ledger.states.claim_for_queue(1, "m1", now=clock.now, ttl_seconds=3600).claimed
    ledger.states.record(1, Status.HELD, "held", modified_at="m1", reasons=["x: y"])
    again = ledger.states.state(1)
    assert again is not None
    assert (again.waiting_since, again.updated_at) == (utc_iso(NOW), utc_iso(clock.now))
    ledger.states.record(1, Status.BOOKED, "booked")
    booked = ledger.states.state(1)
    assert booked is not None
    assert booked.held_since == ""


def test_documents_booked_in_a_period_include_its_start_not_its_end(
    clocked: tuple[Ledger, Clock],
) -> None:
    ledger, clock = clocked
    for document_id, at in ((1, NOW - 1), (2, NOW), (3, NOW + 60), (4, NOW + 120)):
        clock.now = at
        ledger.states.record(document_id, Status.BOOKED, "booked")
    clock.now = NOW + 30
    ledger.states.record(5, Status.FAILED, "failed")
    start, end = utc_iso(NOW), utc_iso(NOW + 120)
    booked = ledger.queries.in_status_between(Status.BOOKED, start, end)
    assert [state.document_id for state in booked] == [2, 3]
    later = ledger.queries.in_status_between(Status.BOOKED, end, utc_iso(NOW + 600))
    assert [state.document_id for state in later] == [4]
    assert ledger.queries.in_status_between(Status.BOOKED, end, start) == []  # no error either


def test_the_oldest_document_in_a_status_is_read_alone(clocked: tuple[Ledger, Clock]) -> None:
    ledger, clock = clocked
    assert ledger.queries.oldest_in_status(Status.QUEUED) is None
    for document_id, at in ((1, NOW + 60), (2, NOW), (3, NOW + 30)):
        clock.now = at
        ledger.states.claim_for_queue(document_id, "m", now=at, ttl_seconds=3600)
    oldest = ledger.queries.oldest_in_status(Status.QUEUED)
    assert oldest is not None
    assert (oldest.document_id, oldest.updated_at) == (2, utc_iso(NOW))


def test_the_digest_mark_only_moves_forward(ledger: Ledger) -> None:
    assert ledger.markers.digest_published_until("daily") is None
    assert ledger.markers.mark_digest_published("daily", utc_iso(NOW))
    assert not ledger.markers.mark_digest_published("daily", utc_iso(NOW - 86400))  # a late run
    assert not ledger.markers.mark_digest_published("daily", utc_iso(NOW))  # the same run again
    assert ledger.markers.digest_published_until("daily") == utc_iso(NOW)
    assert ledger.markers.mark_digest_published("daily", utc_iso(NOW + 86400))
    assert ledger.markers.digest_published_until("daily") == utc_iso(NOW + 86400)
    assert ledger.markers.digest_published_until("weekly") is None
    assert ledger.queries.in_status(Status.HELD) == []  # outside the status index


def test_the_booking_trail_gathers_every_update_and_each_request_id_once(ledger: Ledger) -> None:
    label = {"field": "document.accountingLabel", "before": None, "after": "F-1"}
    due = {"field": "document.dueDate", "before": None, "after": "2026-04-01"}
    # An attempt updated the document and crashed; the next one held it (nothing sent), then
    # one updated it again and booked it.
    ledger.states.record(
        1,
        Status.UPDATED,
        "updated",
        detail={"rulesApplied": ["label"], "diff": [label], "requestIds": ["get-1", "put-1"]},
    )
    ledger.states.record(
        1, Status.HELD, "held", detail={"rulesApplied": ["would"], "diff": [], "requestIds": []}
    )
    ledger.states.record(
        1,
        Status.UPDATED,
        "updated",
        detail={"rulesApplied": ["due date"], "diff": [due], "requestIds": ["put-2"]},
    )
    ledger.states.record(1, Status.BOOKING, "booking")
    ledger.states.record(
        1,
        Status.BOOKED,
        "booked",
        detail={"rulesApplied": ["due date"], "requestIds": ["put-2", "book-2"]},
    )
    assert ledger.queries.trail_of_booking(1) == BookingTrail(
        rules=("label", "due date"),
        changes=(label, due),
        request_ids=("get-1", "put-1", "put-2", "book-2"),
    )
