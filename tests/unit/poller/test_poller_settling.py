"""``Settling`` alone, over a fake client and fake stores: which booked document proves an
uncertain booking (its id with nothing disagreeing, or the invoice's identity matching exactly
one, files equal where both show them, created no earlier than ours), what proves nothing (an
ambiguity, a document still listed, a mark too young), the ``createdAt.from`` day, and what a
sweep costs (nothing without an uncertain booking; a count, then pages of 1000, at most a few
a run, going on at the next run; none again before its interval; a busy budget or a refusal
ending it without harm)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from cleemy_booker.budget import BudgetBusy
from cleemy_booker.errors import NotFoundError
from cleemy_booker.ledger import BOOK_UNCERTAIN, DocumentState, DocumentSummary, Status
from cleemy_booker.models import BookedDocument, BookedPage
from cleemy_booker.poller import PollReport
from cleemy_booker.poller.settling import (
    BY_ID,
    BY_IDENTITY,
    Settling,
    SweepMemory,
    sweep_start,
)

NOW = 1_800_000_000.0
#: Our document's creation, and a little later (a booking) in Lucca's Paris time.
CREATED = "2027-01-10T09:00:00+01:00"
LATER = "2027-01-12T10:00:00+01:00"
FILES = ("0b7e-file-a", "0b7e-file-b")


def summary(**changes: Any) -> DocumentSummary:
    fields: dict[str, Any] = {
        "document_number": "F-1",
        "type": "Invoice",
        "including_taxes": Decimal("120"),
        "currency": "EUR",
        "document_date": "2027-01-09",
        "lucca_document_id": 5001,
        "created_at": CREATED,
        "attachment_files": FILES,
    }
    return DocumentSummary(**(fields | changes))


def held(document_id: int = 501, **changes: Any) -> DocumentState:
    return DocumentState(
        document_id=document_id,
        status=Status.HELD,
        updated_at="2027-01-14T08:00:00+00:00",
        reasons=(f"{BOOK_UNCERTAIN}: may have gone through",),
        summary=summary(**changes),
    )


def booked(document_id: int, **changes: Any) -> BookedDocument:
    raw: dict[str, Any] = {
        "id": document_id,
        "type": "Invoice",
        "documentNumber": "F-1",
        "documentDate": "2027-01-09",
        "amountIncludingTaxes": {"includingTaxes": {"value": 120.0, "currency": "EUR"}},
        "attachments": [{"id": n, "file": {"id": f}} for n, f in enumerate(FILES)],
        "createdAt": LATER,
        "invoice": {"conformityState": "ToReview"},
        "someFieldLuccaAdded": 1,
    }
    return BookedDocument.model_validate(raw | changes)


class FakeClient:
    """Lucca's booked documents, ``per_page`` a page; each request counted as the budget
    sees it (a request the budget refuses is not sent). ``fail_on``: the nth request raises."""

    def __init__(self, documents: list[BookedDocument], per_page: int) -> None:
        self.documents = documents
        self.per_page = per_page
        self.requests_sent: Counter[str] = Counter()
        self.asked: list[tuple[str, int, str]] = []
        self.fail_on: dict[int, Exception] = {}

    def _send(self) -> None:
        attempt = self.requests_sent["booked"] + 1
        failure = self.fail_on.pop(attempt, None)
        if isinstance(failure, BudgetBusy):
            raise failure
        self.requests_sent["booked"] = attempt
        if failure is not None:
            raise failure

    def count_booked(self, created_from: str) -> int:
        self.asked.append(("count", 0, created_from))
        self._send()
        return len(self.documents)

    def booked_page(
        self, *, page: int, limit: int, created_from: str, with_count: bool = False
    ) -> BookedPage:
        assert limit == self.per_page
        self.asked.append(("page", page, created_from))
        self._send()
        start = (page - 1) * limit
        return BookedPage(items=self.documents[start : start + limit])


class FakeStates:
    def __init__(self, moved_on: frozenset[int] = frozenset()) -> None:
        self.moved_on = moved_on
        self.confirmed: list[tuple[int, dict[str, Any]]] = []

    def confirm_booked(self, seen: DocumentState, *, detail: dict[str, Any]) -> bool:
        if seen.document_id in self.moved_on:
            return False
        self.confirmed.append((seen.document_id, detail))
        return True


class FakeQueries:
    def __init__(self, uncertain: list[DocumentState]) -> None:
        self.uncertain = uncertain
        self.reads = 0

    def uncertain_bookings(self) -> list[DocumentState]:
        self.reads += 1
        return self.uncertain


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def settling(
    uncertain: list[DocumentState],
    documents: list[BookedDocument],
    **options: Any,
) -> tuple[Settling, FakeClient, FakeStates, Clock]:
    per_page = options.pop("per_page", 1000)
    client = FakeClient(documents, per_page)
    states = options.pop("states", FakeStates())
    clock = options.pop("clock", Clock())
    part = Settling(
        client,  # type: ignore[arg-type]
        states,  # type: ignore[arg-type]
        FakeQueries(uncertain),  # type: ignore[arg-type]
        options.pop("memory", SweepMemory()),
        clock,
        page_size=per_page,
        **options,
    )
    return part, client, states, clock


def settled_ids(states: FakeStates) -> list[int]:
    return [document_id for document_id, _ in states.confirmed]


# --- what proves a booking -----------------------------------------------------------------


def test_a_booked_document_with_our_document_id_settles_the_booking() -> None:
    part, client, states, _ = settling([held()], [booked(4999), booked(5001)])
    report = PollReport()

    part.settle(set(), report)

    assert settled_ids(states) == [501]
    ((_, detail),) = states.confirmed
    assert detail["bookedDocumentId"] == 5001
    assert detail["confirmedBy"] == (
        "booked in Lucca: booked document 5001 matched on id (booked documents created from "
        "2027-01-09)"
    )
    assert (detail["was"], detail["wasReasons"]) == (
        "HELD",
        [f"{BOOK_UNCERTAIN}: may have gone through"],
    )
    assert report.confirmed == [501]
    assert report.settled == {BY_ID: 1}
    # A count, then one page (shorter than 1000: the end).
    assert client.asked == [("count", 0, "2027-01-09"), ("page", 1, "2027-01-09")]
    assert report.settle_requests == report.requests == 2


def test_the_inbox_item_id_also_names_the_booked_document() -> None:
    part, _, states, _ = settling([held(lucca_document_id=None)], [booked(501)])

    part.settle(set(), PollReport())

    assert settled_ids(states) == [501]


def test_a_booked_document_of_our_id_that_disagrees_is_another_invoice() -> None:
    """The ids may come from two sequences: a booked document 5001 of another number, amount
    or files proves nothing about our 5001 (and its identity matches nothing of ours)."""
    others = [
        booked(5001, documentNumber="F-2"),
        booked(5001, amountIncludingTaxes={"includingTaxes": {"value": 99, "currency": "EUR"}}),
        booked(5001, attachments=[{"file": {"id": "another upload"}}]),
        booked(5001, createdAt="2027-01-09T09:00:00+01:00"),  # created before ours
    ]
    for other in others:
        part, _, states, _ = settling([held()], [other])
        part.settle(set(), PollReport())
        assert states.confirmed == [], other


def test_the_invoice_identity_matching_exactly_one_booked_document_settles() -> None:
    """Another id, but the same type, number, date, amount, currency and files."""
    part, _, states, _ = settling([held()], [booked(9001), booked(9002, documentNumber="F-9")])
    report = PollReport()

    part.settle(set(), report)

    assert settled_ids(states) == [501]
    assert states.confirmed[0][1]["bookedDocumentId"] == 9001
    assert report.settled == {BY_IDENTITY: 1}


def test_an_identity_without_files_on_the_booked_side_still_matches() -> None:
    part, _, states, _ = settling([held()], [booked(9001, attachments=[])])

    part.settle(set(), PollReport())

    assert settled_ids(states) == [501]


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        ({}, [booked(9001), booked(9002)]),  # two booked documents fit: ambiguous
        ({}, [booked(9001, attachments=[{"file": {"id": "another upload"}}])]),
        ({}, [booked(9001, documentDate="2027-01-08")]),
        ({}, [booked(9001, type="CreditNote")]),
        ({}, [booked(9001, amountIncludingTaxes={"includingTaxes": {"value": 120}})]),
        ({"document_number": None}, [booked(9001, documentNumber=None)]),  # no identity
        ({"currency": None}, [booked(9001)]),
    ],
)
def test_an_identity_short_of_one_exact_match_proves_nothing(
    ours: dict[str, Any], theirs: list[BookedDocument]
) -> None:
    part, _, states, _ = settling([held(**ours)], theirs)
    report = PollReport()

    part.settle(set(), report)

    assert states.confirmed == []
    assert report.confirmed == []
    assert report.settled == {}


def test_the_amount_matches_as_a_number_whatever_its_writing() -> None:
    amount = {"includingTaxes": {"value": "120.00", "currency": "EUR"}}
    part, _, states, _ = settling([held()], [booked(9001, amountIncludingTaxes=amount)])

    part.settle(set(), PollReport())

    assert settled_ids(states) == [501]


def test_one_booked_document_two_uncertain_bookings_would_claim_settles_neither() -> None:
    twins = [held(501, lucca_document_id=5001), held(502, lucca_document_id=5002)]
    part, _, states, _ = settling(twins, [booked(9001)])

    part.settle(set(), PollReport())

    assert states.confirmed == []


def test_a_document_this_run_still_listed_is_not_settled_whatever_matches() -> None:
    part, _, states, _ = settling([held()], [booked(5001)])

    part.settle({501}, PollReport())

    assert states.confirmed == []


def test_a_state_that_moved_on_meanwhile_is_left_as_it_is() -> None:
    moved_on = FakeStates(frozenset({501}))
    part, _, _, _ = settling([held()], [booked(5001)], states=moved_on)
    report = PollReport()

    part.settle(set(), report)

    assert report.confirmed == []
    assert report.settled == {}


def test_a_young_booking_mark_is_left_to_its_processor_and_an_old_one_settled() -> None:
    at = datetime.fromtimestamp(NOW - 60, UTC).isoformat()
    mark = DocumentState(501, Status.BOOKING, updated_at=at, summary=summary())
    part, client, states, clock = settling([mark], [booked(5001)])

    part.settle(set(), PollReport())
    assert (states.confirmed, client.requests_sent["booked"]) == ([], 0)

    clock.now += 30 * 60  # the next sweep, its interval after the first look
    part.settle(set(), PollReport())
    assert settled_ids(states) == [501]


def test_a_booking_recorded_without_its_creation_is_left_for_a_person() -> None:
    part, client, states, _ = settling([held(created_at=None)], [booked(5001)])

    part.settle(set(), PollReport())

    assert states.confirmed == []
    assert client.requests_sent["booked"] == 0


def test_a_dry_run_settles_nothing_and_asks_nothing() -> None:
    part, client, states, _ = settling([held()], [booked(5001)], dry_run=True)

    part.settle(set(), PollReport())

    assert (states.confirmed, client.requests_sent["booked"]) == ([], 0)


# --- the createdAt.from day ------------------------------------------------------------------


def test_the_sweep_starts_the_utc_day_before_the_oldest_creation() -> None:
    """00:30 in Paris on the 10th is the 9th in UTC: the 8th covers any reading of a day."""
    states = [
        held(501, created_at="2027-01-12T09:00:00+01:00"),
        held(502, created_at="2027-01-10T00:30:00+01:00"),
    ]

    assert sweep_start(states) == "2027-01-08"


# --- what a sweep costs ----------------------------------------------------------------------


def test_no_uncertain_booking_costs_no_request_and_no_second_read_before_the_interval() -> None:
    part, client, _, clock = settling([], [booked(5001)])
    queries = part.queries

    part.settle(set(), PollReport())
    part.settle(set(), PollReport())

    assert client.requests_sent["booked"] == 0
    assert queries.reads == 1  # type: ignore[attr-defined]
    clock.now += 30 * 60
    part.settle(set(), PollReport())
    assert queries.reads == 2  # type: ignore[attr-defined]


def test_a_sweep_waits_its_interval_before_the_next() -> None:
    part, client, _, clock = settling([held(lucca_document_id=7)], [booked(5001)])

    part.settle(set(), PollReport())
    assert client.requests_sent["booked"] == 2
    clock.now += 30 * 60 - 1
    part.settle(set(), PollReport())
    assert client.requests_sent["booked"] == 2
    clock.now += 1
    part.settle(set(), PollReport())
    assert client.requests_sent["booked"] == 4


def test_a_long_sweep_reads_a_few_pages_a_run_and_goes_on_at_the_next() -> None:
    """8 pages of booked documents, 3 a run: the third run reads the last two, where ours is."""
    documents = [booked(10_000 + n, documentNumber=f"X-{n}") for n in range(7)] + [booked(5001)]
    part, client, states, _ = settling([held()], documents, per_page=1, max_pages=3)
    runs = []
    for _ in range(3):
        report = PollReport()
        part.settle(set(), report)
        runs.append(report.settle_requests)

    pages = [page for kind, page, _ in client.asked if kind == "page"]
    assert pages == list(range(1, 9))
    assert runs == [4, 3, 2]  # the count rides only on the first
    assert settled_ids(states) == [501]
    assert part.memory.created_from is None  # done: the next sweep waits its interval


def test_a_busy_budget_ends_the_run_and_the_sweep_goes_on_at_the_next() -> None:
    documents = [booked(10_000), booked(5001)]
    part, client, states, _ = settling([held()], documents, per_page=1)
    client.fail_on[2] = BudgetBusy(12.0)  # the first page's request

    report = PollReport()
    part.settle(set(), report)
    assert (states.confirmed, report.settle_requests) == ([], 1)

    part.settle(set(), PollReport())
    assert [page for kind, page, _ in client.asked if kind == "page"] == [1, 1, 2]
    assert settled_ids(states) == [501]


def test_a_refused_read_settles_what_was_read_and_waits_the_interval() -> None:
    documents = [booked(5001), booked(10_001, documentNumber="X")]
    part, client, states, clock = settling([held()], documents, per_page=1)
    client.fail_on[3] = NotFoundError("no such route", endpoint="booked", status=404)

    part.settle(set(), PollReport())

    assert settled_ids(states) == [501]  # page 1 was read before page 2 failed
    clock.now += 60
    part.settle(set(), PollReport())
    assert client.requests_sent["booked"] == 3


def test_time_running_out_stops_the_sweep_before_a_page() -> None:
    part, client, _, _ = settling([held()], [booked(5001)], time_left=lambda: 1.0)

    part.settle(set(), PollReport())

    assert [kind for kind, _, _ in client.asked] == ["count"]
