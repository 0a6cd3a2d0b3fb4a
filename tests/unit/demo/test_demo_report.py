"""The demo's verdict: what it expects of a rejected document whose refusal proves nothing."""

from __future__ import annotations

from typing import Any

from cleemy_booker.ledger import DocumentState, Status
from cleemy_booker.processor import BOOK_UNCERTAIN
from local.demo.report import DeadLetter, uncertain_refusals, verify

REJECTED = 7


def book(status: int | None, doc_id: int = REJECTED) -> dict[str, Any]:
    return {"endpoint": "book", "documentId": doc_id, "status": status}


def sim_state() -> dict[str, Any]:
    document = {
        "id": REJECTED,
        "category": "book_rejected",
        "bookings": 0,
        "puts": 0,
        "inInbox": True,
    }
    return {"documents": [document], "totals": {"doubleBooked": 0}}


def held_as_uncertain() -> dict[int, DocumentState]:
    reason = f"{BOOK_UNCERTAIN}: booking was refused after an earlier booking call of ours"
    return {REJECTED: DocumentState(REJECTED, Status.HELD, reasons=(reason,))}


def test_only_calls_that_reached_lucca_make_a_refusal_uncertain() -> None:
    assert uncertain_refusals([book(503), book(400)]) == {REJECTED}
    assert uncertain_refusals([book(None), book(400)]) == {REJECTED}  # no answer at all
    assert uncertain_refusals([book(429), book(400)]) == set()  # the limiter ran nothing
    assert uncertain_refusals([book(400), book(503, doc_id=8)]) == set()  # one call each
    assert uncertain_refusals([book(503), book(200)]) == set()  # booked: nothing uncertain


def test_a_rejected_document_held_as_possibly_booked_after_a_fault_is_right() -> None:
    verdict = verify(sim_state(), held_as_uncertain(), [], [book(503), book(400)])

    assert verdict.ok, verdict.problems
    assert verdict.total.excused == 1


def test_a_rejected_document_held_after_only_a_429_should_have_been_dead_lettered() -> None:
    verdict = verify(sim_state(), held_as_uncertain(), [], [book(429), book(400)])

    assert not verdict.ok
    assert any("not in the dead-letter queue" in p for p in verdict.problems)


def test_a_rejected_document_held_for_another_reason_is_a_mismatch() -> None:
    ledger = {REJECTED: DocumentState(REJECTED, Status.HELD, reasons=("missing_field: x",))}

    verdict = verify(sim_state(), ledger, [], [book(503), book(400)])

    assert not verdict.ok
    assert any("held, not as uncertain" in p for p in verdict.problems)


def test_a_rejected_document_in_the_dlq_with_its_reason_is_right() -> None:
    letter = DeadLetter("m1", REJECTED, "book -> 400: locked", "PermanentError", "{}")
    ledger = {REJECTED: DocumentState(REJECTED, Status.FAILED, reasons=("locked",))}

    assert verify(sim_state(), ledger, [letter], [book(400)]).ok
