"""The daily reconciliation from the poller's own listings: a document the ledger says is booked
but Lucca still lists, and one Lucca lists but the ledger does not know although a listing that
saw the whole inbox saw it; what the digest says of them. moto for AWS, a scripted Lucca
(``tests.harness.CannedLucca``) and a fake clock."""

from __future__ import annotations

from cleemy_booker.clock import utc_iso
from cleemy_booker.digest import DigestData, compose, gather
from cleemy_booker.ledger import DocumentState, Status
from cleemy_booker.listing import END_COUNT_REACHED, ListingStats
from cleemy_booker.poller import STOP_TARGET_REACHED, PollReport
from cleemy_booker.poller.confirmation import saw_whole_inbox
from cleemy_booker.wiring.poller import PollerRuntime
from tests.aws import Stack, ledger_of
from tests.clocks import NOW, FakeClock
from tests.factories import raw_item
from tests.harness import CannedLucca, five_minutes, poller_runtime
from tests.logs import values

#: ``raw_item`` entered the inbox on 2 October 2026, months before ``NOW``.
CREATED = "2026-10-02T09:00:00.123456+02:00"


def inbox(*document_ids: int, count: int | None = None) -> CannedLucca:
    items = [raw_item(document_id) for document_id in document_ids]
    return CannedLucca({"items": items, "count": len(items) if count is None else count})


def forget(stack: Stack, document_id: int) -> None:
    """The ledger loses a document's state (a restore, a hand edit)."""
    key = {"pk": {"S": f"doc#{document_id}"}, "sk": {"S": "state"}}
    stack.dynamodb.delete_item(TableName=stack.ledger_table, Key=key)


def open_discrepancies(stack: Stack, clock: FakeClock) -> dict[int, tuple[str, ...]]:
    found = ledger_of(stack, clock).queries.in_status(Status.DISCREPANCY)
    return {state.document_id: state.reasons for state in found}


def run(runtime: PollerRuntime) -> PollReport:
    return runtime.poll(five_minutes)


# --- booked, yet still in the inbox -----------------------------------------------------------


def test_a_document_booked_long_ago_and_still_listed_is_a_discrepancy_noted_once(
    stack: Stack, clock: FakeClock, emitted: list[tuple[str, str, float]]
) -> None:
    ledger_of(stack, clock).states.record(501, Status.BOOKED, "booked")
    clock.now += 901  # past the listing's freshness: the book should show by now

    report = run(poller_runtime(stack, clock, inbox(501, 502)))

    assert report.discrepancies == [501]
    assert values(emitted, "ReconciliationDiscrepancies") == [1]
    assert open_discrepancies(stack, clock) == {
        501: (
            f"booked_still_in_inbox: booked by the booker at {utc_iso(NOW)}, "
            "still in the inbox in Lucca",
        )
    }
    clock.now += 300
    # A cold instance asks the ledger again.
    again = run(poller_runtime(stack, clock, inbox(501, 502)))
    assert again.discrepancies == []
    assert values(emitted, "ReconciliationDiscrepancies") == [1]
    item = stack.dynamodb.get_item(
        TableName=stack.ledger_table, Key={"pk": {"S": "recon#501"}, "sk": {"S": "recon"}}
    )["Item"]
    assert int(item["expiresAt"]["N"]) == int(NOW + 901) + 28 * 86400


def test_a_booking_within_the_grace_is_no_discrepancy_until_the_grace_is_over(
    stack: Stack, clock: FakeClock, emitted: list[tuple[str, str, float]]
) -> None:
    ledger_of(stack, clock).states.record(501, Status.BOOKED, "booked")
    clock.now += 600  # a listing taken just before the book may still show it
    runtime = poller_runtime(stack, clock, inbox(501))

    assert run(runtime).discrepancies == []
    assert open_discrepancies(stack, clock) == {}
    assert values(emitted, "ReconciliationDiscrepancies") == []
    clock.now += 301  # the same warm instance asks again once the grace is over
    assert run(runtime).discrepancies == [501]


# --- in the inbox, unknown to the ledger ------------------------------------------------------


def test_a_document_listed_by_a_complete_listing_then_unknown_to_the_ledger_is_a_discrepancy(
    stack: Stack, clock: FakeClock, emitted: list[tuple[str, str, float]]
) -> None:
    runtime = poller_runtime(stack, clock, inbox(501, 502))
    run(runtime)  # sees the whole inbox, claims both
    forget(stack, 501)
    clock.now += 300

    report = run(runtime)

    assert report.discrepancies == [501]
    assert report.enqueued == 1  # queued all the same: it still wants booking
    assert values(emitted, "ReconciliationDiscrepancies") == [1]
    assert open_discrepancies(stack, clock) == {
        501: (f"unknown_to_ledger: in the inbox since {CREATED}, unknown to the ledger",)
    }


def test_a_document_the_ledger_knows_claimed_again_after_a_complete_listing_is_no_discrepancy(
    stack: Stack, clock: FakeClock
) -> None:
    runtime = poller_runtime(stack, clock, inbox(501))
    run(runtime)
    clock.now += 3601  # the queued claim expired (the message may be lost): claimed again

    report = run(runtime)

    assert report.enqueued == 1
    assert report.discrepancies == []


def test_a_first_run_over_an_old_inbox_raises_no_discrepancy(
    stack: Stack, clock: FakeClock, emitted: list[tuple[str, str, float]]
) -> None:
    report = run(poller_runtime(stack, clock, inbox(501, 502, 503)))

    assert report.enqueued == 3
    assert report.discrepancies == []
    assert open_discrepancies(stack, clock) == {}
    assert values(emitted, "ReconciliationDiscrepancies") == []


def test_a_listing_that_found_fewer_documents_than_counted_is_not_complete(
    stack: Stack, clock: FakeClock
) -> None:
    # Lucca counted two, the walk found one (a page shifted under it): it did not see everything.
    runtime = poller_runtime(stack, clock, inbox(501, count=2))
    run(runtime)
    forget(stack, 501)
    clock.now += 300

    assert run(runtime).discrepancies == []


def test_a_document_created_after_the_complete_listing_started_is_simply_new(
    stack: Stack, clock: FakeClock
) -> None:
    clock.now = 1_700_000_000.0  # November 2023: before the item was created
    runtime = poller_runtime(stack, clock, inbox(502))
    run(runtime)  # complete, but the item was not in the inbox yet
    clock.now = NOW

    assert run(poller_runtime(stack, clock, inbox(501, 502))).discrepancies == []


def test_a_walk_stopped_by_the_queue_target_did_not_see_the_whole_inbox() -> None:
    stats = ListingStats(count=2, stopped_because=END_COUNT_REACHED)
    assert saw_whole_inbox(PollReport(listed=2), stats)
    stats.stopped_because = STOP_TARGET_REACHED
    assert not saw_whole_inbox(PollReport(listed=2), stats)
    stats.stopped_because = END_COUNT_REACHED
    assert not saw_whole_inbox(PollReport(listed=2, send_failed=1), stats)


# --- the digest -------------------------------------------------------------------------------


def test_the_digest_says_the_ledger_and_lucca_disagree(stack: Stack, clock: FakeClock) -> None:
    ledger_of(stack, clock).states.record(501, Status.BOOKED, "booked")
    clock.now += 901
    run(poller_runtime(stack, clock, inbox(501)))

    data = gather(ledger_of(stack, clock), now=clock.now)
    digest = compose(data, stack="prod")

    assert [state.document_id for state in data.discrepancies] == [501]
    assert digest is not None
    assert "1 to reconcile" in digest.subject
    assert "The ledger and Lucca disagree about 1 document." in digest.text
    assert "document 501: booked according to the ledger, yet still in Lucca's inbox" in (
        digest.text
    )
    assert f"booked by the booker at {utc_iso(NOW)}, still in the inbox in Lucca" in digest.text


def test_a_digest_with_only_a_discrepancy_has_something_to_say() -> None:
    empty = DigestData(at=utc_iso(NOW), since=utc_iso(NOW - 86400), until=utc_iso(NOW - 300))
    assert compose(empty, stack="prod") is None
    with_one = DigestData(
        at=empty.at,
        since=empty.since,
        until=empty.until,
        discrepancies=(
            DocumentState(
                502,
                Status.DISCREPANCY,
                updated_at=utc_iso(NOW),
                reasons=(f"unknown_to_ledger: in the inbox since {CREATED}, unknown to it",),
            ),
        ),
    )
    digest = compose(with_one, stack="prod")
    assert digest is not None
    assert "document 502: in Lucca's inbox, yet unknown to the ledger" in digest.text
