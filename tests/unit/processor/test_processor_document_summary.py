"""The processor records what a document is (number, type, owner, amounts, date) on its state
item, riding on the writes it makes anyway: no DynamoDB call and no Lucca request of its own.

DynamoDB calls are counted with a botocore event hook on the ledger's client; the counts are
those the processor made before summaries existed (one event put and one state update per
decision, the state read, the gate's duplicate lookup, the number claim).
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any

import httpx
import pytest

from cleemy_booker.ledger import DocumentSummary, Status
from cleemy_booker.processor import DocumentFailed
from cleemy_booker.rules import RuleSet
from local.lucca_simulator.app import Route
from tests.harness import Lucca, answer_put_with


@pytest.fixture
def dynamodb_calls(lucca: Lucca) -> Counter[str]:
    """Every DynamoDB call the ledger's client makes from now on, by operation."""
    calls: Counter[str] = Counter()

    def count(model: Any, **_: Any) -> None:
        calls[model.name] += 1

    lucca.ddb.meta.events.register("before-call.dynamodb", count)
    return calls


def test_a_booked_document_is_summarised_on_the_writes_already_made(
    lucca: Lucca, dynamodb_calls: Counter[str]
) -> None:
    doc = lucca.add(601, accountingLabel="Paper", dueDate="2026-11-01")
    message = lucca.listed(doc)
    dynamodb_calls.clear()

    result = lucca.processor(RuleSet.empty()).process(message)

    assert result.outcome == "booked"
    # The state read (the gate reads nothing: the claim finds a duplicate); the number claim;
    # BOOKING and BOOKED, one event and one state update each: as many as without a summary.
    assert dynamodb_calls == {"GetItem": 1, "PutItem": 3, "UpdateItem": 2}
    assert lucca.requests(doc) == ["book"]
    state = lucca.ledger.states.state(doc)
    assert state is not None
    assert state.status is Status.BOOKED
    assert state.summary == DocumentSummary(
        document_number="F-601",
        type="Invoice",
        owner_id=7,
        owner_name="Ada Martin",
        excluding_taxes=Decimal(100),
        taxes=Decimal(20),
        including_taxes=Decimal(120),
        currency="EUR",
        document_date="2026-10-02",
        lucca_document_id=601,
        created_at="2026-10-02T09:00:00.123456+02:00",
        attachment_files=("7b0c1c5e-2f1e-4bb8-9a51-0c3f1d3e9b11",),
    )


def test_a_held_document_is_summarised_on_the_hold_write(
    lucca: Lucca, dynamodb_calls: Counter[str]
) -> None:
    amounts = {
        "excludingTaxes": {"value": 1000.0, "currency": "EUR"},
        "taxes": [{"rateTypeId": 1, "value": 200.0, "currency": "EUR"}],
        "includingTaxes": {"value": 1234.5, "currency": "EUR"},
    }
    doc = lucca.add(602, amountIncludingTaxes=amounts, owner={"id": 9, "name": "Léa Roux"})
    message = lucca.listed(doc)
    dynamodb_calls.clear()

    result = lucca.processor(RuleSet.empty()).process(message)

    assert result.outcome == "held"
    # The state read (the gate reads nothing); the hold's event and state update.
    assert dynamodb_calls == {"GetItem": 1, "PutItem": 1, "UpdateItem": 1}
    state = lucca.ledger.states.state(doc)
    assert state is not None
    assert state.summary is not None
    summary = state.summary
    assert (summary.document_number, summary.owner_id, summary.owner_name) == (
        "F-602",
        9,
        "Léa Roux",
    )
    assert (summary.excluding_taxes, summary.taxes, summary.including_taxes) == (
        Decimal(1000),
        Decimal(200),
        Decimal("1234.5"),
    )
    assert state.held_since == state.updated_at
    assert lucca.requests(doc) == []


def test_a_document_updated_then_booked_is_summarised_as_lucca_answered(lucca: Lucca) -> None:
    # No label: the example rules set one (GET, PUT, book); Lucca answers the PUT with the
    # invoice number normalised, and that is the document booked.
    doc = lucca.add(603, accountingLabel=None, dueDate="2026-11-01", documentNumber="f 603")
    message = lucca.listed(doc)
    answer_put_with(lucca, lambda item: item["document"].update(documentNumber="F-603"))
    listing_ids = len(lucca.client.request_ids)

    result = lucca.processor().process(message)

    assert (result.outcome, result.updated) == ("booked", True)
    state = lucca.ledger.states.state(doc)
    assert state is not None
    assert state.summary is not None
    assert state.summary.document_number == "F-603"
    trail = lucca.ledger.queries.trail_of_booking(doc)
    assert trail.rules == ("accounting label from the invoice number",)
    assert {"field": "document.accountingLabel", "before": None, "after": "f 603"} in (
        trail.changes
    )
    # Every request id Lucca gave this attempt (the rewritten PUT answer carries none), once.
    assert trail.request_ids == tuple(lucca.client.request_ids[listing_ids:])
    assert len(trail.request_ids) == 2


def refuse_puts(lucca: Lucca, status: int) -> None:
    """Lucca answers every PUT with ``status``, having changed nothing."""

    def after(route: Route, response: httpx.Response) -> httpx.Response | None:
        if route.endpoint != "put":
            return None
        problem = {"title": "Refused", "status": status, "detail": "refused by the test"}
        return httpx.Response(status, json=problem, request=response.request)

    lucca.transport.after.append(after)


@pytest.mark.parametrize(("status", "recorded"), [(400, Status.FAILED), (404, Status.GONE)])
def test_a_document_whose_update_is_refused_is_summarised_on_the_failure(
    lucca: Lucca, status: int, recorded: Status
) -> None:
    # Refused before any BOOKING write: only the failure's own write can carry the summary.
    # A 404 says the document left the inbox: recorded gone, not failed, summarised the same.
    doc = lucca.add(604, accountingLabel=None, dueDate="2026-11-01")
    message = lucca.listed(doc)
    refuse_puts(lucca, status)

    if recorded is Status.FAILED:
        with pytest.raises(DocumentFailed):
            lucca.processor().process(message)
    else:
        assert lucca.processor().process(message).outcome == "gone"

    state = lucca.ledger.states.state(doc)
    assert state is not None
    assert state.status is recorded
    assert [e.kind for e in lucca.ledger.queries.history(doc)] == [recorded.lower()]
    assert state.summary is not None
    assert (state.summary.document_number, state.summary.including_taxes) == (
        "F-604",
        Decimal(120),
    )
