"""The processor's parts alone, each over a fake of the part below it: ``Booking`` (the
``BOOKING`` mark, the book call, what a refusal proves) over a fake client and fake stores,
``NumberGuard`` over a fake number store, ``Verdicts`` over a fake state store, ``GoneRuns``
over a fake of the ledger's recent counts."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import pytest

from cleemy_booker.errors import NotFoundError, PermanentError, RateLimitedError
from cleemy_booker.gate import GateConfig
from cleemy_booker.ledger import BOOK_UNCERTAIN, DocumentState, Status
from cleemy_booker.models import InboxItem
from cleemy_booker.processor.attempt import Attempt
from cleemy_booker.processor.booking import Booking
from cleemy_booker.processor.deciding import Deciding, Verdicts
from cleemy_booker.processor.gone import GoneRuns
from cleemy_booker.processor.numbers import NumberGuard
from cleemy_booker.processor.outcomes import Decision, DocumentFailed
from cleemy_booker.rules import RuleSet
from tests.factories import raw_item

NOW = 1_790_000_000.0


class FakeClient:
    """The part of ``LuccaClient`` booking uses; the book answers as told."""

    def __init__(self, states: FakeStates, answer: Exception | None = None) -> None:
        self.states = states
        self.answer = answer
        self.maybe_applied: Counter[str] = Counter()
        self.request_ids: list[str] = []
        self.booked: list[int] = []
        self.status_when_called: list[Status] = []

    @contextmanager
    def back_to_back(self, requests: int) -> Iterator[None]:
        yield

    def book_document(self, document_id: int) -> None:
        self.status_when_called.append(self.states.calls[-1]["status"])
        if isinstance(self.answer, RateLimitedError):
            raise self.answer  # the limiter refused: nothing reached the operation
        self.maybe_applied["book"] += 1
        self.request_ids.append(f"req-{len(self.request_ids) + 1}")
        if self.answer is not None:
            raise self.answer
        self.booked.append(document_id)


class FakeStates:
    """``DocumentStates.record`` as a list of what was recorded."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def record(self, document_id: int, status: Status, kind: str, **fields: Any) -> None:
        self.calls.append({"id": document_id, "status": status, "kind": kind, **fields})


class FakeNumbers:
    """``InvoiceNumbers``: who holds each (scope, number)."""

    def __init__(self) -> None:
        self.holders: dict[tuple[str, str], int] = {}
        self.released: list[tuple[str, str, int]] = []

    def claim_number(self, scope: str, number: str, document_id: int) -> int | None:
        holder = self.holders.setdefault((scope, number), document_id)
        return None if holder == document_id else holder

    def release_number(self, scope: str, number: str, document_id: int) -> None:
        self.released.append((scope, number, document_id))
        if self.holders.get((scope, number)) == document_id:
            del self.holders[(scope, number)]


class FakeRecent:
    """``LedgerQueries.count_since``: how many entered each status since when it was asked."""

    def __init__(self, booked: int = 0, gone: int = 0) -> None:
        self.counts = {Status.BOOKED: booked, Status.GONE: gone}
        self.asked: list[tuple[Status, str, int]] = []

    def count_since(self, status: Status, since: str, at_most: int) -> int:
        self.asked.append((status, since, at_most))
        return min(self.counts[status], at_most)


def item(document_id: int = 501) -> InboxItem:
    return InboxItem.model_validate(raw_item(document_id))


def decision(document_id: int = 501) -> Decision:
    listed = item(document_id)
    outcome = RuleSet.empty().apply(listed)
    return Decision(listed, outcome, [])


def booking_over(
    answer: Exception | None = None, recent: FakeRecent | None = None
) -> tuple[Booking, FakeClient, FakeStates, FakeNumbers]:
    states, numbers = FakeStates(), FakeNumbers()
    client = FakeClient(states, answer)
    attempt = Attempt(client)  # type: ignore[arg-type]
    verdicts = Verdicts(
        states,  # type: ignore[arg-type]
        lambda: NOW,
        attempt,
        held_recheck_seconds=3600,
        config="cfg",
    )
    guard = NumberGuard(numbers, GateConfig())  # type: ignore[arg-type]
    runs = GoneRuns(recent or FakeRecent(booked=1), lambda: NOW)
    booking = Booking(client, states, guard, verdicts, attempt, runs)  # type: ignore[arg-type]
    return booking, client, states, numbers


def state(status: Status) -> DocumentState:
    return DocumentState(document_id=501, status=status)


def refused() -> PermanentError:
    return PermanentError("refused", endpoint="book", status=400)


def test_a_booking_is_marked_before_the_call_and_recorded_booked_after_it() -> None:
    booking, client, states, _ = booking_over()

    result = booking.book(decision(), None, updated=False)

    assert result.outcome == "booked"
    assert client.status_when_called == [Status.BOOKING]
    assert [c["status"] for c in states.calls] == [Status.BOOKING, Status.BOOKED]
    assert states.calls[-1]["detail"]["requestIds"] == ["req-1"]


def test_a_book_only_the_limiter_refused_puts_the_state_back_and_is_retried() -> None:
    booking, client, states, _ = booking_over(RateLimitedError("busy", endpoint="book"))

    with pytest.raises(RateLimitedError):
        booking.book(decision(), state(Status.UPDATED), updated=False)

    assert client.maybe_applied["book"] == 0
    assert [(c["status"], c["kind"]) for c in states.calls] == [
        (Status.BOOKING, "booking"),
        (Status.UPDATED, "booking not sent"),
    ]


def test_a_refusal_of_our_only_call_gives_the_number_back_and_fails() -> None:
    booking, _, states, numbers = booking_over(refused())
    guard = booking.numbers
    listed = decision()
    assert guard.claim(listed.item, listed.outcome) is None

    with pytest.raises(PermanentError):
        booking.book(listed, None, updated=False)

    assert numbers.holders == {}
    assert [c["status"] for c in states.calls] == [Status.BOOKING]


def test_a_refusal_after_an_earlier_booking_call_holds_it_as_possibly_booked() -> None:
    booking, _, states, numbers = booking_over(refused())
    listed = decision()
    booking.numbers.claim(listed.item, listed.outcome)

    result = booking.book(listed, state(Status.BOOKING), updated=False)

    assert result.outcome == "held"
    assert result.reasons[0].startswith(f"{BOOK_UNCERTAIN}: ")
    held = states.calls[-1]
    assert held["status"] is Status.HELD
    assert held["recheck_at"] is None  # time does not tell; a listing or a person does
    assert held["config"] is None
    assert numbers.released == []  # the number keeps blocking another document


def test_the_number_guard_gives_a_number_back_only_when_no_booking_may_have_happened() -> None:
    numbers = FakeNumbers()
    guard = NumberGuard(numbers, GateConfig())  # type: ignore[arg-type]
    listed = decision()
    other = decision(502)
    assert guard.claim(listed.item, listed.outcome) is None
    duplicate = guard.claim(other.item, other.outcome)
    assert duplicate is not None
    assert "501" in duplicate.message

    guard.release(listed.item, listed.outcome, state(Status.BOOKING))
    assert numbers.released == []
    guard.release(listed.item, listed.outcome, state(Status.QUEUED))
    assert len(numbers.released) == 1
    assert guard.claim(other.item, other.outcome) is None


def test_the_number_guard_claims_nothing_when_the_gate_does_not_check_numbers() -> None:
    numbers = FakeNumbers()
    guard = NumberGuard(numbers, GateConfig(check_duplicate_numbers=False))  # type: ignore[arg-type]
    listed = decision()

    assert guard.claim(listed.item, listed.outcome) is None
    assert numbers.holders == {}


def test_deciding_remembers_the_document_it_decided_on_for_the_failure_summary() -> None:
    attempt = Attempt(FakeClient(FakeStates()))  # type: ignore[arg-type]
    deciding = Deciding(RuleSet.empty(), GateConfig(), lambda: NOW, attempt)
    listed = item(777)

    assert attempt.decided_summary() is None
    deciding.decide(listed)

    summary = attempt.decided_summary()
    assert summary is not None
    assert summary.document_number == listed.document.documentNumber


# --- gone from the inbox ----------------------------------------------------------------------


def not_found(endpoint: str = "book") -> NotFoundError:
    return NotFoundError("not found", endpoint=endpoint, status=404)


@pytest.mark.parametrize("endpoint", ["book", "get"])
def test_a_404_with_no_booking_of_ours_records_the_document_gone(endpoint: str) -> None:
    booking, _, states, _ = booking_over(recent=FakeRecent(booked=1, gone=10))

    result = booking.not_in_inbox(501, state(Status.QUEUED), not_found(endpoint))

    assert (result.outcome, result.document_id) == ("gone", 501)
    (call,) = states.calls
    assert (call["status"], call["kind"]) == (Status.GONE, "gone")
    assert call["reasons"] == list(result.reasons)
    assert call["reasons"][0].startswith("not_in_inbox: ")
    assert call["detail"]["endpoint"] == endpoint


def test_a_404_after_a_booking_call_of_ours_is_held_as_possibly_booked_not_gone() -> None:
    booking, _, states, _ = booking_over(recent=FakeRecent(booked=0, gone=10))

    result = booking.not_in_inbox(501, state(Status.BOOKING), not_found())

    assert result.outcome == "held"
    assert states.calls[-1]["status"] is Status.HELD
    assert states.calls[-1]["reasons"][0].startswith(f"{BOOK_UNCERTAIN}:")


def test_a_404_in_a_run_of_gone_documents_with_none_booked_fails_naming_the_run() -> None:
    booking, _, states, _ = booking_over(recent=FakeRecent(booked=0, gone=4))

    with pytest.raises(DocumentFailed, match="none was booked") as failed:
        booking.not_in_inbox(501, None, not_found())

    assert failed.value.error_type == "NotFoundError"
    assert states.calls[-1]["status"] is Status.FAILED


def test_a_404_to_a_bare_id_no_listing_of_ours_showed_fails_as_unknown() -> None:
    """A replay by hand of an id Lucca does not know: not a person's move, a dead letter."""
    booking, _, states, _ = booking_over(recent=FakeRecent(booked=1, gone=0))

    with pytest.raises(DocumentFailed, match="unknown to Lucca and to the ledger"):
        booking.not_in_inbox(501, None, not_found("get"), listed=False)

    assert states.calls[-1]["status"] is Status.FAILED


def test_a_404_again_after_a_listing_showed_a_gone_document_back_fails_naming_the_route() -> None:
    """Lucca lists it, yet answers 404 about it: the route (a tenant serving no read), not a
    person. Recorded gone again, it would be claimed and read on every poll."""
    booking, _, states, _ = booking_over(recent=FakeRecent(booked=1, gone=0))
    listed_again = replace(state(Status.QUEUED), gone_times=1)

    with pytest.raises(DocumentFailed, match="the route, not a person's move"):
        booking.not_in_inbox(501, listed_again, not_found("get"))

    assert states.calls[-1]["status"] is Status.FAILED


@pytest.mark.parametrize(
    ("booked", "gone", "run"),
    [(0, 0, False), (0, 3, False), (0, 4, True), (0, 40, True), (1, 4, False), (1, 40, False)],
)
def test_a_run_is_the_threshold_gone_in_the_window_with_none_booked(
    booked: int, gone: int, run: bool
) -> None:
    """Four gone before this one make five: a run, unless anything was booked meanwhile."""
    recent = FakeRecent(booked=booked, gone=gone)

    assert GoneRuns(recent, lambda: NOW, threshold=5, window_seconds=3600).in_a_run() is run
    # Counted since an hour ago, and never more than the check needs.
    assert all(since == "2026-09-21T13:13:20.000000+00:00" for _, since, _ in recent.asked)
    assert all(at_most <= 4 for _, _, at_most in recent.asked)
