"""A document whose currency is not a currency is held with the reason, never updated nor
booked: one added verbatim (Lucca's ``"Invalid"``, another text), and the simulator's own
``currency_invalid`` documents."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from cleemy_booker.gate import CURRENCY_INVALID, GateConfig
from cleemy_booker.ledger import Status
from cleemy_booker.processor import DocumentProcessor
from cleemy_booker.rules import RuleSet
from tests.factories import example_rules, raw_item
from tests.harness import Lucca


def in_currency(currency: str) -> dict[str, Any]:
    """100 + 20 of taxes = 120, every line in ``currency``."""
    return {
        "excludingTaxes": {"value": 100.0, "currency": currency},
        "taxes": [{"rateTypeId": 1, "value": 20.0, "currency": currency}],
        "includingTaxes": {"value": 120.0, "currency": currency},
    }


@pytest.mark.parametrize("currency", ["Invalid", "EURO"])
def test_an_invalid_currency_document_is_held_with_the_reason_not_updated_nor_booked(
    lucca: Lucca, currency: str
) -> None:
    # A document the rules would update (no label yet) and the ceiling would let through.
    document = raw_item(701, documentNumber="F-701", amountIncludingTaxes=in_currency(currency))
    lucca.app.add_items([document], "custom")
    processor = DocumentProcessor(
        client=lucca.client,
        ledger=lucca.ledger,
        rules=example_rules(),
        gate=GateConfig(max_auto_amount=Decimal(10_000)),
        config="test-config",
    )

    result = processor.process(lucca.listed(701))

    assert result.outcome == "held"
    assert [reason.split(":")[0] for reason in result.reasons] == [CURRENCY_INVALID]
    assert f"{currency!r} on the amount excluding taxes" in result.reasons[0]
    detail = lucca.document(701)
    assert (detail["bookings"], detail["puts"]) == (0, 0)
    assert lucca.requests(701) == []  # not even read: held on the listed item
    state = lucca.ledger.states.state(701)
    assert state is not None
    assert state.status is Status.HELD
    assert list(state.reasons) == list(result.reasons)


def test_the_simulators_invalid_currency_documents_are_all_held(lucca: Lucca) -> None:
    """The opt-in category, generated: every one held for its currency, none booked."""
    lucca.app.reset({"invoices": 6, "seed": 3, "category_weights": {"currency_invalid": 1.0}})
    processor = DocumentProcessor(
        client=lucca.client,
        ledger=lucca.ledger,
        rules=RuleSet.empty(),
        gate=GateConfig(max_days_in_future=None),  # generated dates run to late 2026
        config="test-config",
    )
    ids = [d["id"] for d in lucca.app.state()["documents"]]
    assert len(ids) == 6

    results = [processor.process(lucca.listed(doc)) for doc in ids]

    assert [r.outcome for r in results] == ["held"] * 6
    assert all(r.reasons[0].startswith(f"{CURRENCY_INVALID}: ") for r in results)
    assert all("'Invalid' on the amount excluding taxes" in r.reasons[0] for r in results)
    assert lucca.app.state()["totals"]["booked"] == 0
