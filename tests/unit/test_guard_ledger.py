"""The ledger's exactly-once promises that mutation testing found unguarded (``make mutate
MODULE=ledger``): when a claim may be taken again and what it reports, number claims held by
one document, leases, forward-only marks and discrepancies noted once."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from cleemy_booker.clock import utc_iso
from cleemy_booker.ledger import BOOK_UNCERTAIN, DocumentState, Ledger, Status
from tests.aws import REGION, create_ledger_table

NOW = 1_800_000_000.0
TTL = 3600


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


# --- claims for the queue ---------------------------------------------------------------------


def test_a_first_claim_is_new_and_a_retaken_one_says_what_it_was(
    clocked: tuple[Ledger, Clock],
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


def test_a_waiting_claim_is_refused_until_it_expires_and_says_when(
    clocked: tuple[Ledger, Clock],
) -> None:
    ledger, _ = clocked
    ledger.states.claim_for_queue(1, "m1", now=NOW, ttl_seconds=TTL)
    refused = ledger.states.claim_for_queue(1, "m2", now=NOW + TTL, ttl_seconds=TTL)  # changed, too
    assert (refused.claimed, refused.previous) == (False, Status.QUEUED)
    assert refused.retry_after == NOW + TTL  # the poller spares the same write until then
    assert not refused.new


@pytest.mark.parametrize("status", [Status.BOOKING, Status.UPDATED])
def test_a_document_stuck_in_progress_is_claimed_again_only_past_the_claim_time(
    clocked: tuple[Ledger, Clock], status: Status
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


def test_a_booked_document_is_refused_for_good_and_says_when_it_was_booked(
    clocked: tuple[Ledger, Clock],
) -> None:
    ledger, _ = clocked
    ledger.states.record(1, Status.BOOKED, "booked", modified_at="m1")
    refused = ledger.states.claim_for_queue(
        1, "m2", now=NOW + 10 * TTL, ttl_seconds=TTL, config="v2"
    )
    assert (refused.claimed, refused.previous) == (False, Status.BOOKED)
    assert refused.retry_after == float("inf")
    assert refused.updated_at == utc_iso(NOW)


def test_a_failure_comes_back_when_it_changed_or_its_recheck_is_due(
    clocked: tuple[Ledger, Clock],
) -> None:
    ledger, _ = clocked
    ledger.states.record(1, Status.FAILED, "failed", modified_at="m1", recheck_at=NOW + 600)
    early = ledger.states.claim_for_queue(1, "m1", now=NOW + 599, ttl_seconds=TTL)
    assert (early.claimed, early.retry_after) == (False, NOW + 600)
    assert ledger.states.claim_for_queue(1, "m1", now=NOW + 601, ttl_seconds=TTL).claimed
    ledger.states.record(2, Status.FAILED, "failed", modified_at="m1")
    assert ledger.states.claim_for_queue(2, "m2", now=NOW, ttl_seconds=TTL).claimed


def test_a_failure_under_another_configuration_is_not_reopened(
    clocked: tuple[Ledger, Clock],
) -> None:
    """Only holds are looked at again under a new configuration: a failure is not a rule's."""
    ledger, _ = clocked
    ledger.states.record(1, Status.FAILED, "failed", modified_at="m1", config="v1")
    refused = ledger.states.claim_for_queue(1, "m1", now=NOW, ttl_seconds=TTL, config="v2")
    assert (refused.claimed, refused.previous) == (False, Status.FAILED)


def test_a_hold_recorded_without_a_configuration_is_not_reopened_by_one(
    clocked: tuple[Ledger, Clock],
) -> None:
    ledger, _ = clocked
    ledger.states.record(1, Status.HELD, "held", modified_at="m1")
    assert not ledger.states.claim_for_queue(1, "m1", now=NOW, ttl_seconds=TTL, config="v2").claimed


def test_a_claim_clears_what_the_last_decision_left(clocked: tuple[Ledger, Clock]) -> None:
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


def test_a_plan_stays_planned_in_a_dry_run_and_is_claimable_at_once_for_real(
    clocked: tuple[Ledger, Clock],
) -> None:
    ledger, _ = clocked
    ledger.states.record(1, Status.PLANNED, "dry_run", modified_at="m1")
    dry = ledger.states.claim_for_queue(1, "m1", now=NOW, ttl_seconds=TTL, dry_run=True)
    assert (dry.claimed, dry.previous, dry.retry_after) == (False, Status.PLANNED, float("inf"))
    real = ledger.states.claim_for_queue(1, "m1", now=NOW, ttl_seconds=TTL)  # a real run by default
    assert (real.claimed, real.previous) == (True, Status.PLANNED)


def test_a_deferred_document_stays_queued_and_a_decision_taken_meanwhile_is_kept(
    clocked: tuple[Ledger, Clock],
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


def test_a_claim_is_released_only_while_it_is_still_queued(clocked: tuple[Ledger, Clock]) -> None:
    ledger, _ = clocked
    ledger.states.record(1, Status.BOOKING, "booking", modified_at="m1")
    ledger.states.release_claim(1)  # the message was sent after all and is being booked: keep it
    state = ledger.states.state(1)
    assert state is not None
    assert state.status is Status.BOOKING
    ledger.states.release_claim(2)  # never claimed: nothing to do, no error
    assert ledger.states.state(2) is None


# --- invoice numbers --------------------------------------------------------------------------


def test_an_invoice_number_is_given_back_only_by_the_document_holding_it(
    clocked: tuple[Ledger, Clock],
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


# --- leases -----------------------------------------------------------------------------------


def test_a_lease_until_a_fraction_of_a_second_lasts_to_the_next_whole_second(
    clocked: tuple[Ledger, Clock],
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
    clocked: tuple[Ledger, Clock],
) -> None:
    ledger, _ = clocked
    assert ledger.leases.acquire_lease("poller", "a", NOW + 300).acquired
    assert ledger.leases.acquire_lease("digest", "b", NOW + 300).acquired
    ledger.leases.release_lease("digest", "a")  # not a's: b keeps it
    assert not ledger.leases.acquire_lease("digest", "c", NOW + 300).acquired


# --- forward-only marks and discrepancies -----------------------------------------------------


def test_the_listing_mark_only_moves_forward(clocked: tuple[Ledger, Clock]) -> None:
    ledger, _ = clocked
    assert ledger.markers.last_complete_listing("inbox#a") is None
    ledger.markers.mark_listing_complete("inbox#a", NOW)
    ledger.markers.mark_listing_complete("inbox#a", NOW - 300)  # a slow, older run finishing late
    assert ledger.markers.last_complete_listing("inbox#a") == utc_iso(NOW)
    ledger.markers.mark_listing_complete("inbox#a", NOW + 300)
    assert ledger.markers.last_complete_listing("inbox#a") == utc_iso(NOW + 300)
    assert ledger.markers.last_complete_listing("inbox#b") is None  # other filters: another mark


def test_the_digest_mark_says_whether_it_moved(clocked: tuple[Ledger, Clock]) -> None:
    ledger, _ = clocked
    assert ledger.markers.mark_digest_published("daily", utc_iso(NOW))
    assert not ledger.markers.mark_digest_published("daily", utc_iso(NOW))  # a repeated run
    assert not ledger.markers.mark_digest_published("daily", utc_iso(NOW - 60))
    assert ledger.markers.digest_published_until("daily") == utc_iso(NOW)
    assert ledger.markers.mark_digest_published("daily", utc_iso(NOW + 60))
    assert ledger.markers.digest_published_until("daily") == utc_iso(NOW + 60)


def test_a_discrepancy_is_noted_once_keeps_its_first_reason_and_expires(
    clocked: tuple[Ledger, Clock],
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


# --- bookings confirmed from outside the processor ---------------------------------------------


def _raw_state(ledger: Ledger, document_id: int) -> dict[str, dict[str, str]]:
    item: dict[str, dict[str, str]] = ledger.db.client.get_item(
        TableName=ledger.table,
        Key={"pk": {"S": f"doc#{document_id}"}, "sk": {"S": "state"}},
        ConsistentRead=True,
    )["Item"]
    return item


def test_only_booking_marks_and_uncertain_holds_are_possibly_booked(
    clocked: tuple[Ledger, Clock],
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
    clocked: tuple[Ledger, Clock],
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
    clocked: tuple[Ledger, Clock],
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


def test_a_confirmation_never_creates_a_state(clocked: tuple[Ledger, Clock]) -> None:
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


# --- the audit trail --------------------------------------------------------------------------


def test_each_decision_in_the_trail_says_what_it_decided_and_why(
    clocked: tuple[Ledger, Clock],
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
