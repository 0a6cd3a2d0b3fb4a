"""The booking trail carried on the state item: the updates we PUT and the booking, appended by
each ``updated`` and ``booked`` decision, read back as the events would tell it; the export and
the digest read it from the state, and fall back to the events for a state without it."""

from __future__ import annotations

from typing import Any

import pytest

from cleemy_booker.ledger import BookingTrail, DocumentState, Ledger, Status
from cleemy_booker_tools import audit
from tests.clocks import NOW

LABEL = {"field": "document.accountingLabel", "before": None, "after": "F-1"}
DUE = {"field": "document.dueDate", "before": None, "after": "2026-04-01"}


def _updated_held_updated_booked(ledger: Ledger, document_id: int) -> None:
    """An attempt updated the document and crashed; the next held it (nothing sent), then one
    updated it again and booked it."""
    states = ledger.states
    states.claim_for_queue(document_id, "m1", now=NOW, ttl_seconds=3600)
    states.record(
        document_id,
        Status.UPDATED,
        "updated",
        detail={"rulesApplied": ["label"], "diff": [LABEL], "requestIds": ["get-1", "put-1"]},
    )
    states.record(
        document_id,
        Status.HELD,
        "held",
        detail={"rulesApplied": ["would"], "diff": [], "requestIds": []},
    )
    states.record(
        document_id,
        Status.UPDATED,
        "updated",
        detail={"rulesApplied": ["due date"], "diff": [DUE], "requestIds": ["put-2"]},
    )
    states.record(document_id, Status.BOOKING, "booking")
    states.record(
        document_id,
        Status.BOOKED,
        "booked",
        detail={"rulesApplied": ["due date"], "requestIds": ["put-2", "book-2"]},
    )


def test_a_booked_state_carries_the_trail_its_events_tell(ledger: Ledger) -> None:
    _updated_held_updated_booked(ledger, 1)
    state = ledger.states.state(1)
    assert state is not None
    assert state.trail == BookingTrail(
        rules=("label", "due date"),
        changes=(LABEL, DUE),
        request_ids=("get-1", "put-1", "put-2", "book-2"),
    )
    assert state.trail == ledger.queries.trail_of_booking(1)


def test_a_claim_for_the_queue_keeps_the_trail_of_earlier_attempts(ledger: Ledger) -> None:
    ledger.states.claim_for_queue(1, "m1", now=NOW, ttl_seconds=3600)
    ledger.states.record(
        1, Status.UPDATED, "updated", detail={"rulesApplied": ["label"], "requestIds": ["p"]}
    )
    assert ledger.states.claim_for_queue(1, "m1", now=NOW + 7200, ttl_seconds=3600).claimed
    ledger.states.record(1, Status.BOOKED, "booked", detail={"requestIds": ["b"]})
    state = ledger.states.state(1)
    assert state is not None
    assert state.trail is not None
    assert (state.trail.rules, state.trail.request_ids) == (("label",), ("p", "b"))


def test_a_state_carrying_its_trail_is_answered_without_a_query(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    _updated_held_updated_booked(ledger, 1)
    state = ledger.states.state(1)

    def no_query(document_id: int) -> Any:
        raise AssertionError("the events were read")

    monkeypatch.setattr(ledger.queries, "history", no_query)
    assert ledger.queries.trail_of_booking(1, state).request_ids[-1] == "book-2"


def test_a_state_without_a_trail_is_answered_from_its_events(ledger: Ledger) -> None:
    _updated_held_updated_booked(ledger, 1)
    written_before = DocumentState(document_id=1, status=Status.BOOKED)
    assert ledger.queries.trail_of_booking(1, written_before).rules == ("label", "due date")


def test_only_updates_and_bookings_reach_the_state_trail(ledger: Ledger) -> None:
    ledger.states.record(
        1,
        Status.HELD,
        "held",
        detail={"rulesApplied": ["would"], "diff": [LABEL], "requestIds": ["get-1"]},
    )
    state = ledger.states.state(1)
    assert state is not None
    assert state.trail is None


def test_the_export_reads_rules_and_request_ids_from_the_states(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    _updated_held_updated_booked(ledger, 1)
    monkeypatch.setattr(ledger.queries, "history", lambda document_id: [])
    [row] = audit.booked_rows(ledger, "2000-01-01", "2100-01-01")
    assert row["rulesApplied"] == ["label", "due date"]
    assert row["requestIds"] == ["get-1", "put-1", "put-2", "book-2"]
