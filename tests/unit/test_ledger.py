"""The ledger in DynamoDB (moto): claims for the queue, states, audit trail, number claims."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from cleemy_booker.ledger import Ledger, Status
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
