"""The ledger in DynamoDB (moto): claims for the queue, states, audit trail, number claims,
leases and counts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from cleemy_booker import ledger as ledger_module
from cleemy_booker.ledger import LeaseResult, Ledger, Status
from tests.aws import REGION, create_ledger_table

NOW = 1_800_000_000.0


@pytest.fixture
def ledger() -> Iterator[Ledger]:
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name=REGION)
        yield Ledger(ddb, create_ledger_table(ddb))


def test_a_new_document_is_claimed_once(ledger: Ledger) -> None:
    assert ledger.claim_for_queue(1, "m1", now=NOW, ttl_seconds=3600).claimed
    second = ledger.claim_for_queue(1, "m1", now=NOW + 60, ttl_seconds=3600)
    assert not second.claimed
    assert second.previous is Status.QUEUED


def test_an_expired_claim_can_be_taken_again(ledger: Ledger) -> None:
    ledger.claim_for_queue(1, "m1", now=NOW, ttl_seconds=3600)
    assert ledger.claim_for_queue(1, "m1", now=NOW + 3601, ttl_seconds=3600).claimed


def test_a_held_document_is_queued_again_only_when_it_changed(ledger: Ledger) -> None:
    ledger.claim_for_queue(1, "m1", now=NOW, ttl_seconds=3600)
    ledger.record(1, Status.HELD, "held", modified_at="m1", reasons=["amounts_mismatch: x"])
    assert not ledger.claim_for_queue(1, "m1", now=NOW + 7200, ttl_seconds=3600).claimed
    assert ledger.claim_for_queue(1, "m2", now=NOW + 7200, ttl_seconds=3600).claimed


def test_a_booked_document_is_never_queued_again(ledger: Ledger) -> None:
    ledger.record(1, Status.BOOKED, "booked", modified_at="m1")
    result = ledger.claim_for_queue(1, "m9", now=NOW + 10**6, ttl_seconds=3600)
    assert (result.claimed, result.previous) == (False, Status.BOOKED)


def test_released_claims_can_be_taken_again(ledger: Ledger) -> None:
    ledger.claim_for_queue(1, "m1", now=NOW, ttl_seconds=3600)
    ledger.release_claim(1)
    assert ledger.state(1) is None
    assert ledger.claim_for_queue(1, "m1", now=NOW, ttl_seconds=3600).claimed


def test_release_leaves_a_document_that_moved_on_alone(ledger: Ledger) -> None:
    ledger.record(1, Status.BOOKED, "booked")
    ledger.release_claim(1)
    state = ledger.state(1)
    assert state is not None
    assert state.status is Status.BOOKED


def test_history_and_held_listing(ledger: Ledger) -> None:
    ledger.record(
        5,
        Status.UPDATED,
        "updated",
        detail={"diff": [{"field": "a", "before": None, "after": "x"}]},
    )
    ledger.record(5, Status.BOOKED, "booked", detail={"requestIds": ["r1"]})
    ledger.record(6, Status.HELD, "held", reasons=["ocr_not_finished: Pending"])
    kinds = [event.kind for event in ledger.history(5)]
    assert kinds == ["updated", "booked"]
    assert ledger.history(5)[0].detail["diff"][0]["after"] == "x"
    held = ledger.in_status(Status.HELD)
    assert [(s.document_id, s.reasons) for s in held] == [(6, ("ocr_not_finished: Pending",))]


def test_invoice_numbers_are_claimed_by_one_document(ledger: Ledger) -> None:
    assert ledger.claim_number("purchase:9", "F-1", 10) is None
    assert ledger.claim_number("purchase:9", "F-1", 10) is None  # same document: fine
    assert ledger.claim_number("purchase:9", "F-1", 11) == 10
    assert ledger.find_duplicate("purchase:9", "F-1", 11) == 10
    assert ledger.find_duplicate("purchase:9", "F-1", 10) is None
    assert ledger.claim_number("purchase:8", "F-1", 11) is None  # another scope
    ledger.release_number("purchase:9", "F-1", 10)
    assert ledger.claim_number("purchase:9", "F-1", 11) is None


def test_extend_claim_keeps_a_deferred_document_queued(ledger: Ledger) -> None:
    ledger.claim_for_queue(1, "m1", now=NOW, ttl_seconds=60)
    ledger.extend_claim(1, until=NOW + 5000)
    assert not ledger.claim_for_queue(1, "m1", now=NOW + 120, ttl_seconds=60).claimed


def test_a_dry_run_plan_is_queued_again_once_the_pipeline_runs_for_real(ledger: Ledger) -> None:
    ledger.record(1, Status.PLANNED, "dry_run", modified_at="m1")
    assert not ledger.claim_for_queue(1, "m1", now=NOW, ttl_seconds=60, dry_run=True).claimed
    assert ledger.claim_for_queue(1, "m2", now=NOW, ttl_seconds=60, dry_run=True).claimed
    ledger.record(1, Status.PLANNED, "dry_run", modified_at="m2")
    assert ledger.claim_for_queue(1, "m2", now=NOW, ttl_seconds=60, dry_run=False).claimed


def test_a_hold_comes_back_when_its_recheck_time_passes(ledger: Ledger) -> None:
    ledger.claim_for_queue(1, "m1", now=NOW, ttl_seconds=3600)
    ledger.record(1, Status.HELD, "held", modified_at="m1", recheck_at=NOW + 21600)
    early = ledger.claim_for_queue(1, "m1", now=NOW + 3600, ttl_seconds=3600)
    assert (early.claimed, early.retry_after) == (False, NOW + 21600)
    assert ledger.claim_for_queue(1, "m1", now=NOW + 21601, ttl_seconds=3600).claimed


def test_a_hold_comes_back_when_the_configuration_changes(ledger: Ledger) -> None:
    ledger.claim_for_queue(1, "m1", now=NOW, ttl_seconds=3600, config="v1")
    ledger.record(1, Status.HELD, "held", modified_at="m1", config="v1")
    assert not ledger.claim_for_queue(1, "m1", now=NOW + 60, ttl_seconds=3600, config="v1").claimed
    assert not ledger.claim_for_queue(1, "m1", now=NOW + 60, ttl_seconds=3600).claimed
    assert ledger.claim_for_queue(1, "m1", now=NOW + 60, ttl_seconds=3600, config="v2").claimed


def test_a_failure_without_a_recheck_time_never_comes_back_unchanged(ledger: Ledger) -> None:
    ledger.record(1, Status.FAILED, "failed", modified_at="m1", reasons=["book refused"])
    result = ledger.claim_for_queue(1, "m1", now=NOW + 10**7, ttl_seconds=3600, config="v2")
    assert (result.claimed, result.retry_after) == (False, float("inf"))


# --- leases -----------------------------------------------------------------------------------


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clocked() -> Iterator[tuple[Ledger, Clock]]:
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name=REGION)
        clock = Clock()
        yield Ledger(ddb, create_ledger_table(ddb), clock=clock), clock


def lease_item(ledger: Ledger) -> dict[str, Any]:
    key = {"pk": {"S": "lease#poller"}, "sk": {"S": "lease"}}
    found = ledger._ddb.get_item(TableName=ledger.table, Key=key, ConsistentRead=True)
    item: dict[str, Any] = found.get("Item", {})
    return item


def test_a_lease_is_held_by_one_holder_until_it_lapses(clocked: tuple[Ledger, Clock]) -> None:
    ledger, clock = clocked
    assert ledger.acquire_lease("poller", "a", NOW + 300).acquired
    refused = ledger.acquire_lease("poller", "b", NOW + 600)
    assert refused == LeaseResult(False, "a", NOW + 300)
    clock.now = NOW + 299
    assert not ledger.acquire_lease("poller", "b", NOW + 600).acquired
    clock.now = NOW + 301  # a's invocation ended without giving it back (killed)
    assert ledger.acquire_lease("poller", "b", NOW + 600).acquired
    assert not ledger.acquire_lease("poller", "a", NOW + 900).acquired


def test_the_holder_may_take_its_lease_again_and_extend_it(clocked: tuple[Ledger, Clock]) -> None:
    ledger, clock = clocked
    assert ledger.acquire_lease("poller", "a", NOW + 300).acquired
    assert ledger.acquire_lease("poller", "a", NOW + 900).acquired
    clock.now = NOW + 600
    assert not ledger.acquire_lease("poller", "b", NOW + 1200).acquired


def test_a_lease_is_released_only_by_its_holder(clocked: tuple[Ledger, Clock]) -> None:
    ledger, clock = clocked
    ledger.acquire_lease("poller", "a", NOW + 300)
    clock.now = NOW + 301
    ledger.acquire_lease("poller", "b", NOW + 600)
    ledger.release_lease("poller", "a")  # late: its lease lapsed and b took it
    assert not ledger.acquire_lease("poller", "c", NOW + 900).acquired
    ledger.release_lease("poller", "b")
    assert lease_item(ledger) == {}
    assert ledger.acquire_lease("poller", "c", NOW + 900).acquired
    ledger.release_lease("other", "c")  # no such lease: nothing to do, no error


def test_a_lease_item_expires_by_ttl_and_stays_out_of_the_status_index(
    clocked: tuple[Ledger, Clock],
) -> None:
    ledger, _ = clocked
    ledger.acquire_lease("poller", "a", NOW + 299.2)
    item = lease_item(ledger)
    assert item["expiresAt"] == {"N": str(int(NOW) + 300)}
    assert "statusKey" not in item
    assert ledger.acquire_lease("other", "b", NOW + 10).acquired  # leases are independent


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
        ledger.record(document_id, Status.HELD, "held", reasons=["x"])
    ledger.record(9, Status.BOOKED, "booked")
    ledger.acquire_lease("poller", "a", NOW)
    assert ledger.count_in_status(Status.HELD) == 5
    assert ledger.count_in_status(Status.FAILED) == 0
    paged = SmallPages(ledger._ddb)
    small = Ledger(paged, ledger.table)
    assert small.count_in_status(Status.HELD) == 5
    assert paged.queries == 3


def test_a_count_reads_at_most_count_max_pages(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    for document_id in range(1, 8):
        ledger.record(document_id, Status.HELD, "held")
    monkeypatch.setattr(ledger_module, "COUNT_MAX_PAGES", 2)
    paged = SmallPages(ledger._ddb)
    assert Ledger(paged, ledger.table).count_in_status(Status.HELD) == 4
    assert paged.queries == 2
