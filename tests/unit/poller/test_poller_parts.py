"""The poller's parts alone, each over a fake of the part below it: ``Claims`` (a claim per
listed document, refusals remembered, a claim given back with the state it replaced) over a
fake state store, ``QueueSender`` (batches, unsent entries' claims given back) over a fake SQS,
``Confirmation`` (what a listing must be to prove a booking) over fake stores, and
``RefusedClaims`` kept in the ledger (saved by shard, loaded by the next instance) over a fake
snapshot store."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from cleemy_booker.ledger import ClaimResult, DocumentState, Status
from cleemy_booker.listing import END_COUNT_REACHED, ListedDocument, ListingStats
from cleemy_booker.models import InboxItem
from cleemy_booker.poller import PollReport, RefusedClaims
from cleemy_booker.poller.claims import Claims
from cleemy_booker.poller.confirmation import Confirmation
from cleemy_booker.poller.enqueue import QueueSender
from cleemy_booker.poller.reconciliation import Reconciliation
from cleemy_booker.poller.refused import SNAPSHOT_NAME
from tests.factories import raw_item

NOW = 1_790_000_000.0


class FakeStates:
    """``DocumentStates``' claims: each document answers as told (claimed by default)."""

    def __init__(self, refuse: dict[int, Status] | None = None) -> None:
        self.refuse = refuse or {}
        self.claims: list[int] = []
        self.released: list[tuple[int, dict[str, Any] | None]] = []
        self.confirmed: list[int] = []

    def claim_for_queue(self, document_id: int, modified_at: str, **_: Any) -> ClaimResult:
        self.claims.append(document_id)
        if document_id in self.refuse:
            return ClaimResult(False, self.refuse[document_id], retry_after=NOW + 600)
        before = {"status": {"S": "HELD"}, "documentId": {"N": str(document_id)}}
        return ClaimResult(True, Status.HELD, before=before)

    def release_claim(self, document_id: int, before: dict[str, Any] | None = None) -> None:
        self.released.append((document_id, before))

    def confirm_booked(self, seen: DocumentState, *, detail: dict[str, Any]) -> bool:
        self.confirmed.append(seen.document_id)
        return True


class FakeMarkers:
    def last_complete_listing(self, name: str) -> str | None:
        return None

    def record_discrepancy(self, document_id: int, reason: str, *, ttl_seconds: int) -> bool:
        return True


class FakeSqs:
    """SendMessageBatch that fails the ids it is told to, every time."""

    def __init__(self, failing: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.failing = failing
        self.batches: list[list[str]] = []

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:
        self.batches.append([entry["Id"] for entry in Entries])
        return {"Successful": [{"Id": e["Id"]} for e in Entries if e["Id"] not in self.failing]}


def claims_over(states: FakeStates, refused: RefusedClaims | None = None) -> Claims:
    reconciliation = Reconciliation(
        FakeMarkers(),  # type: ignore[arg-type]
        "inbox#test",
        booked_grace_seconds=900,
        discrepancy_ttl_seconds=86400,
    )
    return Claims(
        states,  # type: ignore[arg-type]
        reconciliation,
        refused or RefusedClaims(),
        lambda: NOW,
        claim_ttl_seconds=3600,
        dry_run=False,
        config="cfg",
    )


def listed(document_id: int) -> ListedDocument:
    return ListedDocument(document_id, InboxItem.model_validate(raw_item(document_id)))


def test_a_claimed_document_is_queued_with_the_item_as_listed() -> None:
    claims = claims_over(FakeStates())
    report, pending = PollReport(), []

    assert claims.claim(listed(501), report, pending) == 1

    [(document_id, body)] = pending
    assert document_id == 501
    message = json.loads(body)
    assert message["documentId"] == 501
    assert message["item"]["id"] == 501


def test_a_refused_claim_is_remembered_and_not_asked_again_while_unchanged() -> None:
    states = FakeStates(refuse={501: Status.HELD})
    refused = RefusedClaims()
    report, pending = PollReport(), []

    assert claims_over(states, refused).claim(listed(501), report, pending) == 0
    assert claims_over(states, refused).claim(listed(501), report, pending) == 0

    assert states.claims == [501]  # the second run spared the write
    assert report.skipped["held"] == 1
    assert report.known == 1
    assert pending == []


def test_a_claim_given_back_restores_the_state_it_replaced() -> None:
    states = FakeStates()
    claims = claims_over(states)
    claims.claim(listed(501), PollReport(), [])

    claims.release(501)

    assert states.released == [
        (501, {"status": {"S": "HELD"}, "documentId": {"N": "501"}}),
    ]


def test_the_sender_gives_back_the_claims_of_the_messages_it_could_not_send() -> None:
    states = FakeStates()
    claims = claims_over(states)
    pending: list[tuple[int, str]] = []
    for document_id in range(501, 513):
        claims.claim(listed(document_id), PollReport(), pending)
    sqs = FakeSqs(failing={"505"})
    sender = QueueSender(sqs, "queue-url", None, claims)  # type: ignore[arg-type]
    report = PollReport()

    sender.flush(pending, report)

    assert [len(batch) for batch in sqs.batches] == [10, 1, 1, 2]  # 505 tried three times
    assert report.enqueued == 11
    assert report.send_failed == 1
    assert [document_id for document_id, _ in states.released] == [505]
    assert pending == []


def whole_inbox(count: int) -> ListingStats:
    return ListingStats(count=count, pages=1, stopped_because=END_COUNT_REACHED)


def test_only_an_unfiltered_one_page_listing_of_every_document_proves_a_booking() -> None:
    confirmation = Confirmation(FakeStates(), None, {}, dry_run=False)  # type: ignore[arg-type]
    report = PollReport(listed=3)

    assert confirmation.one_snapshot(report, whole_inbox(3))
    assert not confirmation.one_snapshot(report, whole_inbox(4))  # one not seen
    two_pages = ListingStats(count=3, pages=2, stopped_because=END_COUNT_REACHED)
    assert not confirmation.one_snapshot(report, two_pages)
    filtered = Confirmation(FakeStates(), None, {"x": "y"}, dry_run=False)  # type: ignore[arg-type]
    assert not filtered.one_snapshot(report, whole_inbox(3))
    dry = Confirmation(FakeStates(), None, {}, dry_run=True)  # type: ignore[arg-type]
    assert not dry.one_snapshot(report, whole_inbox(3))


class FakeQueries:
    def __init__(self, uncertain: list[DocumentState]) -> None:
        self.uncertain = uncertain

    def uncertain_bookings(self) -> list[DocumentState]:
        return self.uncertain


def test_a_possible_booking_absent_from_the_listing_and_marked_before_it_is_confirmed() -> None:
    before = "2026-09-21T10:00:00+00:00"
    after = "2026-09-23T10:00:00+00:00"
    uncertain = [
        DocumentState(document_id=1, status=Status.BOOKING, updated_at=before),
        DocumentState(document_id=2, status=Status.BOOKING, updated_at=before),  # still listed
        DocumentState(document_id=3, status=Status.BOOKING, updated_at=after),  # after the start
    ]
    states = FakeStates()
    confirmation = Confirmation(states, FakeQueries(uncertain), {}, dry_run=False)  # type: ignore[arg-type]
    report = PollReport()

    confirmation.confirm_bookings({2}, NOW, report)

    assert states.confirmed == [1]
    assert report.confirmed == [1]


class DownSqs:
    """SQS failing outright, past botocore's retries."""

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> dict[str, Any]:
        raise ConnectionError("SQS unreachable")


def test_sqs_down_gives_back_every_claim_of_the_flush_and_counts_each() -> None:
    states = FakeStates()
    claims = claims_over(states)
    pending: list[tuple[int, str]] = []
    for document_id in range(501, 513):
        claims.claim(listed(document_id), PollReport(), pending)
    sender = QueueSender(DownSqs(), "queue-url", None, claims)  # type: ignore[arg-type]
    report = PollReport()

    with pytest.raises(ConnectionError):
        sender.flush(pending, report)

    assert report.send_failed == 12  # the batch tried and the two still pending
    assert report.enqueued == 0
    assert sorted(document_id for document_id, _ in states.released) == list(range(501, 513))
    assert pending == []


class StatesQueuedOnAnOlderVersion(FakeStates):
    """Every claim refused: the document is queued on version ``queued_on``."""

    def __init__(self, queued_on: str) -> None:
        super().__init__()
        self.queued_on = queued_on
        self.noted: list[tuple[int, str]] = []

    def claim_for_queue(self, document_id: int, modified_at: str, **_: Any) -> ClaimResult:
        self.claims.append(document_id)
        return ClaimResult(False, Status.QUEUED, retry_after=NOW + 600, modified_at=self.queued_on)

    def note_listed_newer(self, document_id: int, modified_at: str) -> bool:
        self.noted.append((document_id, modified_at))
        return True


def test_a_queued_document_listed_on_a_later_version_is_told_so_once() -> None:
    document = listed(501)
    version = document.item.changed_at.isoformat()  # type: ignore[union-attr]
    states = StatesQueuedOnAnOlderVersion(queued_on="2026-10-01T08:00:00+00:00")
    refused = RefusedClaims()
    report = PollReport()

    claims_over(states, refused).claim(document, report, [])
    claims_over(states, refused).claim(document, report, [])  # the refusal is remembered

    assert states.noted == [(501, version)]
    assert report.listed_newer == 1


def test_a_queued_document_listed_on_the_version_it_was_queued_on_is_left_alone() -> None:
    document = listed(501)
    version = document.item.changed_at.isoformat()  # type: ignore[union-attr]
    states = StatesQueuedOnAnOlderVersion(queued_on=version)
    report = PollReport()

    claims_over(states).claim(document, report, [])

    assert states.noted == []
    assert report.listed_newer == 0


def reading(document_id: int, *, created_seconds_ago: float, ocr: str) -> ListedDocument:
    created = datetime.fromtimestamp(NOW - created_seconds_ago, UTC).isoformat()
    raw = raw_item(document_id, ocrStatus=ocr)
    raw["createdAt"] = raw["document"]["createdAt"] = created
    return ListedDocument(document_id, InboxItem.model_validate(raw))


@pytest.mark.parametrize("ocr", ["Pending", "Processing"])
def test_a_document_lucca_is_still_reading_is_not_claimed_for_half_an_hour(ocr: str) -> None:
    states = FakeStates()
    claims = claims_over(states)
    report, pending = PollReport(), []

    assert claims.claim(reading(501, created_seconds_ago=120, ocr=ocr), report, pending) == 0
    assert claims.claim(reading(502, created_seconds_ago=1900, ocr=ocr), report, pending) == 1

    assert states.claims == [502]  # no claim write for the one still being read
    assert report.skipped["ocr_running"] == 1
    assert [document_id for document_id, _ in pending] == [502]


def test_a_document_whose_reading_ended_is_claimed_however_young() -> None:
    states = FakeStates()
    claims = claims_over(states)
    report, pending = PollReport(), []

    for number, ocr in enumerate(["Processed", "Failed", "NotApplicable"], start=501):
        assert claims.claim(reading(number, created_seconds_ago=60, ocr=ocr), report, pending)

    assert states.claims == [501, 502, 503]


def test_a_listing_that_left_documents_unclaimed_vouches_only_for_the_older_ones() -> None:
    claims = claims_over(FakeStates())
    report, pending = PollReport(), []
    started = NOW - 5

    assert claims.known_before(started) == started  # nothing left: the whole listing
    claims.claim(reading(501, created_seconds_ago=200, ocr="Pending"), report, pending)
    claims.claim(reading(502, created_seconds_ago=100, ocr="Pending"), report, pending)

    assert NOW - 201 < claims.known_before(started) < NOW - 200


# --- RefusedClaims kept in the ledger, over a fake snapshot store -----------------------------


class FakeSnapshots:
    """``Snapshots``: shards kept as written (a JSON round trip, as the ledger's encoding),
    each write counted."""

    def __init__(self) -> None:
        self.shards: dict[int, Any] = {}
        self.writes: list[int] = []

    def read(self, name: str, shards: int) -> dict[int, Any]:
        assert name == SNAPSHOT_NAME
        return {n: json.loads(v) for n, v in self.shards.items() if n < shards}

    def write(self, name: str, shard: int, value: Any) -> bool:
        self.shards[shard] = json.dumps(value)
        self.writes.append(shard)
        return True


def refusals(store: FakeSnapshots, config: str = "cfg") -> RefusedClaims:
    refused = RefusedClaims(store=store, shards=4)
    refused.forget_all_unless(config)
    return refused


def test_refusals_saved_are_what_the_next_instance_loads() -> None:
    store = FakeSnapshots()
    warm = refusals(store)
    warm.remember(1, "m1", float("inf"))
    warm.remember(2, "m2", NOW + 7200.7)
    warm.remember(3, "m3", NOW + 600)  # over before the next save could carry a change: unsaved

    assert warm.save(NOW) == 2  # documents 1 and 2 live in shards 1 and 2
    cold = refusals(store)

    assert cold.load(NOW + 1) == 2
    assert cold.still_refused(1, "m1", NOW + 86400)
    assert cold.still_refused(2, "m2", NOW + 7199)
    assert not cold.still_refused(2, "m2", NOW + 7200)  # to the second below, never later
    assert not cold.still_refused(1, "m1-edited", NOW + 1)  # changed: claimed again
    assert not cold.still_refused(3, "m3", NOW + 1)


def test_only_the_shards_with_a_new_lasting_refusal_are_written_at_most_hourly() -> None:
    store = FakeSnapshots()
    warm = refusals(store)
    for document_id in (1, 2, 5):
        warm.remember(document_id, "m", float("inf"))
    warm.save(NOW)
    store.writes.clear()

    assert warm.save(NOW + 3600) == 0  # nothing changed: nothing written
    warm.remember(5, "m-edited", float("inf"))
    assert warm.save(NOW + 3900) == 1
    assert store.writes == [1]  # 5 shares shard 1 with 1; shard 2 stays as it was
    warm.remember(2, "m-edited", float("inf"))
    assert warm.save(NOW + 7499) == 0  # within the hour of the last write
    assert warm.save(NOW + 7500) == 1
    assert store.writes == [1, 2]


def test_an_instance_loads_once_and_keeps_what_it_knows_better() -> None:
    store = FakeSnapshots()
    old = refusals(store)
    old.remember(1, "m1", float("inf"))
    old.save(NOW)
    cold = refusals(store)
    cold.remember(1, "m1-newer", float("inf"))

    cold.load(NOW)
    store.shards.clear()

    assert cold.still_refused(1, "m1-newer", NOW)
    assert not cold.still_refused(1, "m1", NOW)
    assert cold.load(NOW) == 0  # a warm instance does not read again


def test_refusals_past_their_time_or_under_another_configuration_are_not_loaded() -> None:
    store = FakeSnapshots()
    old = refusals(store, "rules-v1")
    old.remember(1, "m1", float("inf"))
    old.remember(2, "m2", NOW + 600)
    old.save(NOW)

    assert refusals(store, "rules-v2").load(NOW) == 0
    later = refusals(store, "rules-v1")
    assert later.load(NOW + 600) == 1
    assert not later.still_refused(2, "m2", NOW + 600)


def test_the_refusals_of_documents_gone_leave_their_shard_at_its_next_write() -> None:
    store = FakeSnapshots()
    warm = refusals(store)
    warm.remember(1, "m1", float("inf"))
    warm.remember(5, "m5", float("inf"))
    warm.save(NOW)

    warm.keep_only({5, 9})  # a listing of the whole inbox: 1 is gone
    warm.remember(9, "m9", float("inf"))
    assert warm.save(NOW + 3600) == 1
    cold = refusals(store)

    assert cold.load(NOW + 3600) == 2
    assert not cold.still_refused(1, "m1", NOW + 3600)
    assert cold.still_refused(5, "m5", NOW + 3600)


def test_a_snapshot_that_cannot_be_read_costs_claims_and_is_read_at_the_next_run() -> None:
    class Unreachable(FakeSnapshots):
        def read(self, name: str, shards: int) -> dict[int, Any]:
            raise OSError("DynamoDB is unreachable")

    store = FakeSnapshots()
    old = refusals(store)
    old.remember(1, "m1", float("inf"))
    old.save(NOW)
    cold = refusals(store)
    cold.store = Unreachable()

    assert cold.load(NOW) == 0
    assert not cold.still_refused(1, "m1", NOW)
    cold.store = store  # DynamoDB answers again
    assert cold.load(NOW) == 1
