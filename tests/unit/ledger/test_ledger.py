"""The ledger in DynamoDB (moto): claims for the queue (when a document may be queued again,
and what a refused claim reports), invoice-number claims held by one document, bookings
confirmed from outside the processor, leases, forward-only marks and discrepancies noted once,
the audit trail, counts (a status's recent entries among them), and what a document is and how
long it waits."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from cleemy_booker import ledger as ledger_module
from cleemy_booker.clock import utc_iso
from cleemy_booker.ledger import (
    BOOK_UNCERTAIN,
    BookingTrail,
    DocumentState,
    DocumentSummary,
    LeaseResult,
    Ledger,
    Status,
)
from tests.aws import REGION
from tests.clocks import NOW, FakeClock
from tests.factories import document_summary

TTL = 3600


# --- claims for the queue ---------------------------------------------------------------------


def test_a_new_document_is_claimed_once(ledger: Ledger) -> None:
    assert ledger.states.claim_for_queue(1, "m1", now=NOW, ttl_seconds=3600).claimed
    second = ledger.states.claim_for_queue(1, "m1", now=NOW + 60, ttl_seconds=3600)
    assert not second.claimed
    assert second.previous is Status.QUEUED


def test_a_first_claim_is_new_and_a_retaken_one_says_what_it_was(
    clocked: tuple[Ledger, FakeClock],
) -> None:
    """``new`` drives the reconciliation (a document unknown to the ledger): a claim taken
    again after it expired is not new, and reports the status it replaced."""
    ledger, _ = clocked
    first = ledger.states.claim_for_queue(1, "m1", now=NOW, ttl_seconds=TTL)
    assert (first.claimed, first.new, first.previous, first.updated_at) == (True, True, None, "")
    again = ledger.states.claim_for_queue(1, "m1", now=NOW + TTL + 1, ttl_seconds=TTL)
    assert (again.claimed, again.new, again.previous) == (True, False, Status.QUEUED)
    assert again.updated_at == utc_iso(NOW)
    state = ledger.states.state(1)
    assert state is not None
    assert (state.status, state.modified_at, state.queued_until) == (
        Status.QUEUED,
        "m1",
        NOW + 2 * TTL + 1,
    )


def test_an_expired_claim_can_be_taken_again(ledger: Ledger) -> None:
    ledger.states.claim_for_queue(1, "m1", now=NOW, ttl_seconds=3600)
    assert ledger.states.claim_for_queue(1, "m1", now=NOW + 3601, ttl_seconds=3600).claimed


def test_a_waiting_claim_is_refused_until_it_expires_and_says_when(
    clocked: tuple[Ledger, FakeClock],
) -> None:
    ledger, _ = clocked
    ledger.states.claim_for_queue(1, "m1", now=NOW, ttl_seconds=TTL)
    refused = ledger.states.claim_for_queue(1, "m2", now=NOW + TTL, ttl_seconds=TTL)  # changed, too
    assert (refused.claimed, refused.previous) == (False, Status.QUEUED)
    assert refused.retry_after == NOW + TTL  # the poller spares the same write until then
    assert not refused.new


def test_a_refused_claim_says_the_version_the_document_is_queued_on(ledger: Ledger) -> None:
    ledger.states.claim_for_queue(1, "m1", now=NOW, ttl_seconds=3600)

    refused = ledger.states.claim_for_queue(1, "m2", now=NOW + 60, ttl_seconds=3600)

    assert (refused.claimed, refused.previous, refused.modified_at) == (False, Status.QUEUED, "m1")


def test_a_later_version_listed_while_queued_is_noted_once_and_cleared_by_the_next_claim(
    ledger: Ledger,
) -> None:
    ledger.states.claim_for_queue(1, "m1", now=NOW, ttl_seconds=3600)

    assert not ledger.states.note_listed_newer(1, "m1")  # the version it is queued on
    assert ledger.states.note_listed_newer(1, "m2")
    assert not ledger.states.note_listed_newer(1, "m2")  # once per version
    state = ledger.states.state(1)
    assert state is not None
    assert state.listed_newer == "m2"

    ledger.states.claim_for_queue(1, "m3", now=NOW + 3601, ttl_seconds=3600)
    state = ledger.states.state(1)
    assert state is not None
    assert (state.modified_at, state.listed_newer) == ("m3", "")


def test_a_later_version_is_not_noted_once_the_processor_has_moved_on(ledger: Ledger) -> None:
    ledger.states.claim_for_queue(1, "m1", now=NOW, ttl_seconds=3600)
    ledger.states.record(1, Status.HELD, "held", modified_at="m1", reasons=["missing_field: x"])

    assert not ledger.states.note_listed_newer(1, "m2")
    assert not ledger.states.note_listed_newer(2, "m2")  # a document the ledger never saw


@pytest.mark.parametrize("status", [Status.BOOKING, Status.UPDATED])
def test_a_document_stuck_in_progress_is_claimed_again_only_past_the_claim_time(
    clocked: tuple[Ledger, FakeClock], status: Status
) -> None:
    """An attempt that died mid-booking: not queued again while it may still be running (it
    would be booked twice), queued again once it cannot be."""
    ledger, _ = clocked
    ledger.states.record(1, status, status.lower(), modified_at="m1")
    early = ledger.states.claim_for_queue(1, "m1", now=NOW + TTL - 1, ttl_seconds=TTL)
    assert (early.claimed, early.previous) == (False, status)
    assert early.retry_after == NOW + TTL
    assert early.updated_at == utc_iso(NOW)
    late = ledger.states.claim_for_queue(1, "m1", now=NOW + TTL + 1, ttl_seconds=TTL)
    assert (late.claimed, late.previous) == (True, status)


def test_a_held_document_is_queued_again_only_when_it_changed(ledger: Ledger) -> None:
    ledger.states.claim_for_queue(1, "m1", now=NOW, ttl_seconds=3600)
    ledger.states.record(1, Status.HELD, "held", modified_at="m1", reasons=["amounts_mismatch: x"])
    assert not ledger.states.claim_for_queue(1, "m1", now=NOW + 7200, ttl_seconds=3600).claimed
    assert ledger.states.claim_for_queue(1, "m2", now=NOW + 7200, ttl_seconds=3600).claimed


def test_a_booked_document_is_never_queued_again(ledger: Ledger) -> None:
    ledger.states.record(1, Status.BOOKED, "booked", modified_at="m1")
    result = ledger.states.claim_for_queue(1, "m9", now=NOW + 10**6, ttl_seconds=3600)
    assert (result.claimed, result.previous) == (False, Status.BOOKED)


def test_a_booked_document_is_refused_for_good_and_says_when_it_was_booked(
    clocked: tuple[Ledger, FakeClock],
) -> None:
    ledger, _ = clocked
    ledger.states.record(1, Status.BOOKED, "booked", modified_at="m1")
    refused = ledger.states.claim_for_queue(
        1, "m2", now=NOW + 10 * TTL, ttl_seconds=TTL, config="v2"
    )
    assert (refused.claimed, refused.previous) == (False, Status.BOOKED)
    assert refused.retry_after == float("inf")
    assert refused.updated_at == utc_iso(NOW)


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


def test_a_hold_recorded_without_a_configuration_is_not_reopened_by_one(
    clocked: tuple[Ledger, FakeClock],
) -> None:
    ledger, _ = clocked
    ledger.states.record(1, Status.HELD, "held", modified_at="m1")
    assert not ledger.states.claim_for_queue(1, "m1", now=NOW, ttl_seconds=TTL, config="v2").claimed


def test_a_failure_without_a_recheck_time_never_comes_back_unchanged(ledger: Ledger) -> None:
    ledger.states.record(1, Status.FAILED, "failed", modified_at="m1", reasons=["book refused"])
    result = ledger.states.claim_for_queue(1, "m1", now=NOW + 10**7, ttl_seconds=3600, config="v2")
    assert (result.claimed, result.retry_after) == (False, float("inf"))


def test_a_failure_comes_back_when_it_changed_or_its_recheck_is_due(
    clocked: tuple[Ledger, FakeClock],
) -> None:
    ledger, _ = clocked
    ledger.states.record(1, Status.FAILED, "failed", modified_at="m1", recheck_at=NOW + 600)
    early = ledger.states.claim_for_queue(1, "m1", now=NOW + 599, ttl_seconds=TTL)
    assert (early.claimed, early.retry_after) == (False, NOW + 600)
    assert ledger.states.claim_for_queue(1, "m1", now=NOW + 601, ttl_seconds=TTL).claimed
    ledger.states.record(2, Status.FAILED, "failed", modified_at="m1")
    assert ledger.states.claim_for_queue(2, "m2", now=NOW, ttl_seconds=TTL).claimed


def test_a_failure_under_another_configuration_is_not_reopened(
    clocked: tuple[Ledger, FakeClock],
) -> None:
    """Only holds are looked at again under a new configuration: a failure is not a rule's."""
    ledger, _ = clocked
    ledger.states.record(1, Status.FAILED, "failed", modified_at="m1", config="v1")
    refused = ledger.states.claim_for_queue(1, "m1", now=NOW, ttl_seconds=TTL, config="v2")
    assert (refused.claimed, refused.previous) == (False, Status.FAILED)


def test_a_gone_document_listed_again_is_claimed_at_once(ledger: Ledger) -> None:
    """Recorded gone on a 404, yet a listing shows it: it is in the inbox, whatever the 404
    was. Claimed unchanged too, whatever the configuration, and its reason cleared."""
    ledger.states.claim_for_queue(1, "m1", now=NOW, ttl_seconds=TTL)
    ledger.states.record(1, Status.GONE, "gone", modified_at="m1", reasons=["not_in_inbox: 404"])
    again = ledger.states.claim_for_queue(1, "m1", now=NOW + 1, ttl_seconds=TTL, config="v2")
    assert (again.claimed, again.previous) == (True, Status.GONE)
    state = ledger.states.state(1)
    assert state is not None
    assert (state.status, state.reasons) == (Status.QUEUED, ())
    # Claimed once: the claim holds it like any other while it waits.
    assert not ledger.states.claim_for_queue(1, "m1", now=NOW + 2, ttl_seconds=TTL).claimed


def test_a_gone_document_is_counted_in_its_own_status(ledger: Ledger) -> None:
    ledger.states.record(1, Status.GONE, "gone", reasons=["not_in_inbox: 404"])
    ledger.states.record(2, Status.FAILED, "failed", reasons=["refused"])
    assert [s.document_id for s in ledger.queries.in_status(Status.GONE)] == [1]
    assert ledger.queries.count_in_status(Status.GONE) == 1


def test_a_claim_clears_what_the_last_decision_left(clocked: tuple[Ledger, FakeClock]) -> None:
    """Queued again, a hold's reasons, recheck time and configuration are gone: the next
    decision is taken afresh, and a recheck time of the old hold cannot reopen the new one."""
    ledger, _ = clocked
    ledger.states.record(
        1, Status.HELD, "held", modified_at="m1", reasons=["x: y"], recheck_at=NOW + 60
    )
    assert ledger.states.claim_for_queue(1, "m2", now=NOW, ttl_seconds=TTL, config="v1").claimed
    state = ledger.states.state(1)
    assert state is not None
    assert (state.status, state.reasons) == (Status.QUEUED, ())
    ledger.states.record(1, Status.HELD, "held", modified_at="m2", config="v1")
    refused = ledger.states.claim_for_queue(1, "m2", now=NOW + 120, ttl_seconds=TTL, config="v1")
    assert (refused.claimed, refused.retry_after) == (False, float("inf"))


def test_a_dry_run_plan_is_queued_again_once_the_pipeline_runs_for_real(ledger: Ledger) -> None:
    ledger.states.record(1, Status.PLANNED, "dry_run", modified_at="m1")
    assert not ledger.states.claim_for_queue(1, "m1", now=NOW, ttl_seconds=60, dry_run=True).claimed
    assert ledger.states.claim_for_queue(1, "m2", now=NOW, ttl_seconds=60, dry_run=True).claimed
    ledger.states.record(1, Status.PLANNED, "dry_run", modified_at="m2")
    assert ledger.states.claim_for_queue(1, "m2", now=NOW, ttl_seconds=60, dry_run=False).claimed


def test_a_plan_stays_planned_in_a_dry_run_and_is_claimable_at_once_for_real(
    clocked: tuple[Ledger, FakeClock],
) -> None:
    ledger, _ = clocked
    ledger.states.record(1, Status.PLANNED, "dry_run", modified_at="m1")
    dry = ledger.states.claim_for_queue(1, "m1", now=NOW, ttl_seconds=TTL, dry_run=True)
    assert (dry.claimed, dry.previous, dry.retry_after) == (False, Status.PLANNED, float("inf"))
    real = ledger.states.claim_for_queue(1, "m1", now=NOW, ttl_seconds=TTL)  # a real run by default
    assert (real.claimed, real.previous) == (True, Status.PLANNED)


def test_extend_claim_keeps_a_deferred_document_queued(ledger: Ledger) -> None:
    ledger.states.claim_for_queue(1, "m1", now=NOW, ttl_seconds=60)
    ledger.states.extend_claim(1, until=NOW + 5000)
    assert not ledger.states.claim_for_queue(1, "m1", now=NOW + 120, ttl_seconds=60).claimed


def test_a_deferred_document_stays_queued_and_a_decision_taken_meanwhile_is_kept(
    clocked: tuple[Ledger, FakeClock],
) -> None:
    ledger, _ = clocked
    ledger.states.extend_claim(1, until=NOW + 900)  # its claim was released meanwhile
    state = ledger.states.state(1)
    assert state is not None
    assert (state.status, state.queued_until) == (Status.QUEUED, NOW + 900)
    # Nothing known of its version or of a decision: the audit shows blanks, not made-up text.
    assert (state.modified_at, state.updated_at, state.reasons, state.summary) == ("", "", (), None)
    refused = ledger.states.claim_for_queue(1, "m1", now=NOW + 899, ttl_seconds=TTL)
    assert (refused.claimed, refused.retry_after, refused.updated_at) == (False, NOW + 900, "")
    ledger.states.record(2, Status.HELD, "held", modified_at="m1")
    ledger.states.extend_claim(2, until=NOW + 900)  # a late deferral must not undo the hold
    held = ledger.states.state(2)
    assert held is not None
    assert held.status is Status.HELD
    assert [s.document_id for s in ledger.queries.in_status(Status.HELD)] == [2]


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


def test_a_claim_is_released_only_while_it_is_still_queued(
    clocked: tuple[Ledger, FakeClock],
) -> None:
    ledger, _ = clocked
    ledger.states.record(1, Status.BOOKING, "booking", modified_at="m1")
    ledger.states.release_claim(1)  # the message was sent after all and is being booked: keep it
    state = ledger.states.state(1)
    assert state is not None
    assert state.status is Status.BOOKING
    ledger.states.release_claim(2)  # never claimed: nothing to do, no error
    assert ledger.states.state(2) is None


# --- invoice numbers --------------------------------------------------------------------------


def test_invoice_numbers_are_claimed_by_one_document(ledger: Ledger) -> None:
    assert ledger.numbers.claim_number("purchase:9", "F-1", 10) is None
    assert ledger.numbers.claim_number("purchase:9", "F-1", 10) is None  # same document: fine
    assert ledger.numbers.claim_number("purchase:9", "F-1", 11) == 10
    assert ledger.numbers.find_duplicate("purchase:9", "F-1", 11) == 10
    assert ledger.numbers.find_duplicate("purchase:9", "F-1", 10) is None
    assert ledger.numbers.claim_number("purchase:8", "F-1", 11) is None  # another scope
    ledger.numbers.release_number("purchase:9", "F-1", 10)
    assert ledger.numbers.claim_number("purchase:9", "F-1", 11) is None


def test_an_invoice_number_is_given_back_only_by_the_document_holding_it(
    clocked: tuple[Ledger, FakeClock],
) -> None:
    ledger, _ = clocked
    assert ledger.numbers.claim_number("owner:4", "F-9", 10) is None
    ledger.numbers.release_number("owner:4", "F-9", 11)  # not its number: the claim stays
    assert ledger.numbers.claim_number("owner:4", "F-9", 11) == 10
    assert ledger.numbers.find_duplicate("owner:4", "F-9", 11) == 10
    assert ledger.numbers.find_duplicate("owner:4", "F-8", 11) is None  # nobody holds that one
    ledger.numbers.release_number("owner:4", "F-9", 10)
    assert ledger.numbers.find_duplicate("owner:4", "F-9", 11) is None
    ledger.numbers.release_number("owner:4", "F-9", 10)  # given back twice: no error


# --- bookings confirmed from outside the processor --------------------------------------------


def _raw_state(ledger: Ledger, document_id: int) -> dict[str, dict[str, str]]:
    item: dict[str, dict[str, str]] = ledger.db.client.get_item(
        TableName=ledger.table,
        Key={"pk": {"S": f"doc#{document_id}"}, "sk": {"S": "state"}},
        ConsistentRead=True,
    )["Item"]
    return item


def test_only_booking_marks_and_uncertain_holds_are_possibly_booked(
    clocked: tuple[Ledger, FakeClock],
) -> None:
    """What the poller settles from a complete listing: documents a book call of ours may have
    booked unseen, and no other held document (a reason that merely mentions the code later in
    its text is not an uncertain booking)."""
    ledger, _ = clocked
    ledger.states.record(1, Status.BOOKING, "booking")
    ledger.states.record(2, Status.HELD, "held", reasons=[f"{BOOK_UNCERTAIN}: refused after a 503"])
    ledger.states.record(3, Status.HELD, "held", reasons=["amounts_mismatch: 10 != 12"])
    ledger.states.record(4, Status.HELD, "held", reasons=[f"review: was {BOOK_UNCERTAIN}: once"])
    ledger.states.record(5, Status.BOOKED, "booked")
    found = {state.document_id: state for state in ledger.queries.uncertain_bookings()}
    assert sorted(found) == [1, 2]
    assert all(state.may_be_booked for state in found.values())


def test_a_possibly_booked_document_is_confirmed_booked_with_its_evidence(
    clocked: tuple[Ledger, FakeClock],
) -> None:
    """Confirmed: BOOKED on the state and in the status index, the hold's reasons, start and
    recheck gone, and a ``booked`` event in the trail saying why it was believed."""
    ledger, clock = clocked
    ledger.states.record(
        2,
        Status.HELD,
        "held",
        reasons=[f"{BOOK_UNCERTAIN}: refused after a 503"],
        recheck_at=NOW + 3600,
        config="v1",
    )
    seen = ledger.states.state(2)
    assert seen is not None
    assert seen.held_since == utc_iso(NOW)
    clock.now = NOW + 60
    assert ledger.states.confirm_booked(seen, detail={"evidence": "absent_from_complete_listing"})
    state = ledger.states.state(2)
    assert state is not None
    assert (state.status, state.reasons, state.held_since, state.updated_at) == (
        Status.BOOKED,
        (),
        "",
        utc_iso(NOW + 60),
    )
    raw = _raw_state(ledger, 2)
    assert raw["statusKey"] == {"S": "BOOKED"}
    assert not {"recheckAt", "configVersion", "heldSince"} & set(raw)
    assert [s.document_id for s in ledger.queries.in_status(Status.BOOKED)] == [2]
    assert ledger.queries.in_status(Status.HELD) == []
    assert ledger.queries.uncertain_bookings() == []
    *_, booked = ledger.queries.history(2)
    assert (booked.kind, booked.at, booked.detail) == (
        "booked",
        utc_iso(NOW + 60),
        {"status": "BOOKED", "reasons": [], "evidence": "absent_from_complete_listing"},
    )


def test_a_confirmation_loses_to_any_decision_taken_since_it_was_seen(
    clocked: tuple[Ledger, FakeClock],
) -> None:
    """Seen in BOOKING, then the processor decided again (another status, or the same status
    written later): the confirmation changes nothing and leaves no event."""
    ledger, clock = clocked
    for document_id, then in ((1, Status.HELD), (2, Status.BOOKING)):
        ledger.states.record(document_id, Status.BOOKING, "booking")
        seen = ledger.states.state(document_id)
        assert seen is not None
        clock.now += 30
        ledger.states.record(document_id, then, "decided")
        clock.now += 30
        assert not ledger.states.confirm_booked(seen, detail={})
        state = ledger.states.state(document_id)
        assert state is not None
        assert state.status is then
        assert [event.kind for event in ledger.queries.history(document_id)] == [
            "booking",
            "decided",
        ]


def test_a_confirmation_never_creates_a_state(clocked: tuple[Ledger, FakeClock]) -> None:
    ledger, _ = clocked
    ghost = DocumentState(9, Status.BOOKING, updated_at=utc_iso(NOW))
    assert not ledger.states.confirm_booked(ghost, detail={})
    assert ledger.states.state(9) is None
    assert ledger.queries.history(9) == []


def test_a_confirmation_raises_what_is_not_a_lost_condition() -> None:
    """A missing table is an outage, not "the state moved on": it must not read as False."""
    with mock_aws():
        ledger = Ledger(boto3.client("dynamodb", region_name=REGION), "no-such-table")
        seen = DocumentState(1, Status.BOOKING, updated_at=utc_iso(NOW))
        with pytest.raises(ClientError) as raised:
            ledger.states.confirm_booked(seen, detail={})
        assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"


# --- leases -----------------------------------------------------------------------------------


def lease_item(ledger: Ledger) -> dict[str, Any]:
    key = {"pk": {"S": "lease#poller"}, "sk": {"S": "lease"}}
    found = ledger.db.client.get_item(TableName=ledger.table, Key=key, ConsistentRead=True)
    item: dict[str, Any] = found.get("Item", {})
    return item


def test_a_lease_is_held_by_one_holder_until_it_lapses(clocked: tuple[Ledger, FakeClock]) -> None:
    ledger, clock = clocked
    assert ledger.leases.acquire_lease("poller", "a", NOW + 300).acquired
    refused = ledger.leases.acquire_lease("poller", "b", NOW + 600)
    assert refused == LeaseResult(False, "a", NOW + 300)
    clock.now = NOW + 299
    assert not ledger.leases.acquire_lease("poller", "b", NOW + 600).acquired
    clock.now = NOW + 301  # a's invocation ended without giving it back (killed)
    assert ledger.leases.acquire_lease("poller", "b", NOW + 600).acquired
    assert not ledger.leases.acquire_lease("poller", "a", NOW + 900).acquired


def test_the_holder_may_take_its_lease_again_and_extend_it(
    clocked: tuple[Ledger, FakeClock],
) -> None:
    ledger, clock = clocked
    assert ledger.leases.acquire_lease("poller", "a", NOW + 300).acquired
    assert ledger.leases.acquire_lease("poller", "a", NOW + 900).acquired
    clock.now = NOW + 600
    assert not ledger.leases.acquire_lease("poller", "b", NOW + 1200).acquired


def test_a_lease_is_released_only_by_its_holder(clocked: tuple[Ledger, FakeClock]) -> None:
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
    clocked: tuple[Ledger, FakeClock],
) -> None:
    ledger, _ = clocked
    ledger.leases.acquire_lease("poller", "a", NOW + 299.2)
    item = lease_item(ledger)
    assert item["expiresAt"] == {"N": str(int(NOW) + 300)}
    assert "statusKey" not in item
    assert ledger.leases.acquire_lease("other", "b", NOW + 10).acquired  # leases are independent


def test_a_lease_until_a_fraction_of_a_second_lasts_to_the_next_whole_second(
    clocked: tuple[Ledger, FakeClock],
) -> None:
    ledger, clock = clocked
    assert ledger.leases.acquire_lease("poller", "a", NOW + 10.2).acquired
    refused = ledger.leases.acquire_lease("poller", "b", NOW + 100)
    assert (refused.acquired, refused.holder, refused.until) == (False, "a", NOW + 11)
    clock.now = NOW + 11  # not yet past it
    assert not ledger.leases.acquire_lease("poller", "b", NOW + 100).acquired
    clock.now = NOW + 11.9  # still the same whole second
    assert not ledger.leases.acquire_lease("poller", "b", NOW + 100).acquired
    clock.now = NOW + 12
    assert ledger.leases.acquire_lease("poller", "b", NOW + 100).acquired


def test_two_leases_of_different_names_do_not_exclude_each_other(
    clocked: tuple[Ledger, FakeClock],
) -> None:
    ledger, _ = clocked
    assert ledger.leases.acquire_lease("poller", "a", NOW + 300).acquired
    assert ledger.leases.acquire_lease("digest", "b", NOW + 300).acquired
    ledger.leases.release_lease("digest", "a")  # not a's: b keeps it
    assert not ledger.leases.acquire_lease("digest", "c", NOW + 300).acquired


# --- forward-only marks and discrepancies -----------------------------------------------------


def test_the_listing_mark_only_moves_forward(clocked: tuple[Ledger, FakeClock]) -> None:
    ledger, _ = clocked
    assert ledger.markers.last_complete_listing("inbox#a") is None
    ledger.markers.mark_listing_complete("inbox#a", NOW)
    ledger.markers.mark_listing_complete("inbox#a", NOW - 300)  # a slow, older run finishing late
    assert ledger.markers.last_complete_listing("inbox#a") == utc_iso(NOW)
    ledger.markers.mark_listing_complete("inbox#a", NOW + 300)
    assert ledger.markers.last_complete_listing("inbox#a") == utc_iso(NOW + 300)
    assert ledger.markers.last_complete_listing("inbox#b") is None  # other filters: another mark


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


def test_the_digest_mark_says_whether_it_moved(clocked: tuple[Ledger, FakeClock]) -> None:
    ledger, _ = clocked
    assert ledger.markers.mark_digest_published("daily", utc_iso(NOW))
    assert not ledger.markers.mark_digest_published("daily", utc_iso(NOW))  # a repeated run
    assert not ledger.markers.mark_digest_published("daily", utc_iso(NOW - 60))
    assert ledger.markers.digest_published_until("daily") == utc_iso(NOW)
    assert ledger.markers.mark_digest_published("daily", utc_iso(NOW + 60))
    assert ledger.markers.digest_published_until("daily") == utc_iso(NOW + 60)


def test_a_discrepancy_is_noted_once_keeps_its_first_reason_and_expires(
    clocked: tuple[Ledger, FakeClock],
) -> None:
    ledger, clock = clocked
    assert ledger.markers.record_discrepancy(7, "booked_still_in_inbox: first", ttl_seconds=86400)
    clock.now = NOW + 60
    assert not ledger.markers.record_discrepancy(
        7, "booked_still_in_inbox: again", ttl_seconds=86400
    )
    (noted,) = ledger.queries.in_status(Status.DISCREPANCY)
    assert (noted.document_id, noted.reasons, noted.updated_at) == (
        7,
        ("booked_still_in_inbox: first",),
        utc_iso(NOW),
    )
    item = ledger.db.client.get_item(
        TableName=ledger.table,
        Key={"pk": {"S": "recon#7"}, "sk": {"S": "recon"}},
        ConsistentRead=True,
    )["Item"]
    assert int(item["expiresAt"]["N"]) == int(NOW) + 86400
    assert ledger.states.state(7) is None  # not the document's state: its claim is not blocked
    assert ledger.states.claim_for_queue(7, "m1", now=NOW, ttl_seconds=TTL).claimed


# --- the audit trail --------------------------------------------------------------------------


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


def test_each_decision_in_the_trail_says_what_it_decided_and_why(
    clocked: tuple[Ledger, FakeClock],
) -> None:
    """The trail is what an accountant reads back: each event carries the status it moved the
    document to and its reasons (none is an empty list, not a missing entry)."""
    ledger, clock = clocked
    ledger.states.record(1, Status.HELD, "held", reasons=["amounts_mismatch: 10 != 12"])
    clock.now = NOW + 60
    ledger.states.record(1, Status.BOOKED, "booked", detail={"requestIds": ["r1"]})
    held, booked = ledger.queries.history(1)
    assert (held.kind, held.detail["status"], held.detail["reasons"]) == (
        "held",
        "HELD",
        ["amounts_mismatch: 10 != 12"],
    )
    assert (booked.detail["status"], booked.detail["reasons"]) == ("BOOKED", [])
    assert booked.detail["requestIds"] == ["r1"]


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


def test_a_hold_looked_at_again_waits_since_its_first_hold(
    clocked: tuple[Ledger, FakeClock],
) -> None:
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
    clocked: tuple[Ledger, FakeClock],
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


def test_recent_entries_in_a_status_are_counted_from_a_time_up_to_a_cap(
    clocked: tuple[Ledger, FakeClock],
) -> None:
    ledger, clock = clocked
    for document_id, at in ((1, NOW - 60), (2, NOW), (3, NOW + 30), (4, NOW + 60)):
        clock.now = at
        ledger.states.record(document_id, Status.GONE, "gone")
    ledger.states.record(5, Status.BOOKED, "booked")
    assert ledger.queries.count_since(Status.GONE, utc_iso(NOW), 10) == 3
    assert ledger.queries.count_since(Status.GONE, utc_iso(NOW), 2) == 2
    assert ledger.queries.count_since(Status.BOOKED, utc_iso(NOW), 1) == 1
    assert ledger.queries.count_since(Status.BOOKED, utc_iso(NOW + 61), 1) == 0


def test_the_oldest_document_in_a_status_is_read_alone(clocked: tuple[Ledger, FakeClock]) -> None:
    ledger, clock = clocked
    assert ledger.queries.oldest_in_status(Status.QUEUED) is None
    for document_id, at in ((1, NOW + 60), (2, NOW), (3, NOW + 30)):
        clock.now = at
        ledger.states.claim_for_queue(document_id, "m", now=at, ttl_seconds=3600)
    oldest = ledger.queries.oldest_in_status(Status.QUEUED)
    assert oldest is not None
    assert (oldest.document_id, oldest.updated_at) == (2, utc_iso(NOW))


def test_each_time_a_document_is_found_gone_is_counted_and_kept_through_claims(
    ledger: Ledger,
) -> None:
    ledger.states.claim_for_queue(1, "m1", now=NOW, ttl_seconds=3600)
    ledger.states.record(1, Status.GONE, "gone", reasons=["not_in_inbox: 404"])
    ledger.states.claim_for_queue(1, "m1", now=NOW + 300, ttl_seconds=3600)  # listed again

    state = ledger.states.state(1)
    assert state is not None
    assert (state.status, state.gone_times) == (Status.QUEUED, 1)
    ledger.states.record(1, Status.GONE, "gone", reasons=["not_in_inbox: 404"])
    assert ledger.states.state(1).gone_times == 2  # type: ignore[union-attr]


def test_a_redelivered_documents_claim_is_renewed_only_while_it_is_the_queues(
    ledger: Ledger,
) -> None:
    ledger.states.claim_for_queue(1, "m1", now=NOW, ttl_seconds=3600)

    assert ledger.states.renew_claim(1, until=NOW + 3000 + 3600)
    assert not ledger.states.renew_claim(1, until=NOW + 600)  # already runs longer
    assert ledger.states.state(1).queued_until == NOW + 6600  # type: ignore[union-attr]
    assert not ledger.states.claim_for_queue(1, "m1", now=NOW + 3601, ttl_seconds=3600).claimed

    ledger.states.record(1, Status.HELD, "held", reasons=["missing_field: x"])
    assert not ledger.states.renew_claim(1, until=NOW + 9999)  # decided: no claim to renew
    assert not ledger.states.renew_claim(2, until=NOW + 9999)  # never claimed
