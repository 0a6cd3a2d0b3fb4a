"""Currencies that are not currencies (``currencies``): Lucca's published ``"Invalid"``, or any
text that is not an ISO 4217 code, holds the document at the review gate with a reason naming
the amount lines (``currency_invalid``), and the auto-booking ceiling is never judged in it.
The processor holding such a document, against the simulator, is in
``processor/test_processor_currency_hold.py``."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from cleemy_booker.currencies import ISO_4217_CODES, is_currency_code
from cleemy_booker.gate import CURRENCY_INVALID, GateConfig, HoldReason, review
from cleemy_booker.models import InboxItem
from cleemy_booker.rules import RuleSet
from tests.factories import raw_item

TODAY = date(2026, 10, 10)


def amounts(
    currency: str | None, *, including: str | None = None, total: float = 120.0
) -> dict[str, Any]:
    """100 + 20 of taxes = ``total`` (120 by default), every line in ``currency`` but the
    including-taxes line in ``including`` when given."""
    return {
        "excludingTaxes": {"value": total - 20.0, "currency": currency},
        "taxes": [{"rateTypeId": 1, "value": 20.0, "currency": currency}],
        "includingTaxes": {"value": total, "currency": including or currency},
    }


def reasons_for(money: dict[str, Any], config: GateConfig | None = None) -> list[HoldReason]:
    document = InboxItem.model_validate(raw_item(amountIncludingTaxes=money))
    outcome = RuleSet.empty().apply(document)
    return review(document, outcome, config or GateConfig(), today=TODAY)


def codes(reasons: list[HoldReason]) -> list[str]:
    return [reason.code for reason in reasons]


# --- the codes --------------------------------------------------------------------------------


def test_the_static_set_holds_iso_4217_codes_and_no_pseudo_currency() -> None:
    assert {"EUR", "USD", "GBP", "CHF", "JPY", "XOF", "XCG", "ZWG"} <= ISO_4217_CODES
    assert all(len(code) == 3 and code.isalpha() and code.isupper() for code in ISO_4217_CODES)
    assert not {"XXX", "XTS", "Invalid", "EURO"} & ISO_4217_CODES  # no currency, testing
    assert not is_currency_code(None)
    assert not is_currency_code("eur")  # as ISO writes it, or not at all


# --- the gate ---------------------------------------------------------------------------------


@pytest.mark.parametrize("currency", ["Invalid", "EURO", "€", "eur", "XXX", ""])
def test_an_amount_in_no_currency_is_held_naming_every_line(currency: str) -> None:
    reasons = reasons_for(amounts(currency))

    assert codes(reasons) == [CURRENCY_INVALID]
    message = reasons[0].message
    assert (
        f"{currency!r} on the amount excluding taxes, tax line 1 and the amount including taxes"
        in message
    )
    assert "ISO 4217" in message
    assert "book it by hand" in message


@pytest.mark.parametrize("currency", ["EUR", "USD", "CHF", "JPY"])
def test_an_iso_4217_code_passes(currency: str) -> None:
    assert reasons_for(amounts(currency)) == []


def test_a_missing_currency_is_not_an_invalid_one() -> None:
    """Some PUT responses carry no currency: that is not held as invalid (and one amount with
    a currency beside others without is a mismatch, as before)."""
    assert reasons_for(amounts(None)) == []
    assert codes(reasons_for(amounts(None, including="EUR"))) == ["currency_mismatch"]


def test_one_invalid_line_is_named_alone() -> None:
    reasons = reasons_for(amounts("EUR", including="Invalid"))

    assert codes(reasons) == [CURRENCY_INVALID, "currency_mismatch"]
    assert "'Invalid' on the amount including taxes." in reasons[0].message
    assert "excluding" not in reasons[0].message


@pytest.mark.parametrize("total", [50.0, 120.0, 5_000.0])
def test_the_ceiling_is_never_judged_in_no_currency(total: float) -> None:
    """Below the ceiling or above it, an amount in "Invalid" is neither let through nor said to
    be above it: 5,000 of nothing known may be 5,000 EUR or 5,000,000 of something else."""
    ceiling = GateConfig(max_auto_amount=Decimal(1000))

    reasons = reasons_for(amounts("Invalid", total=total), ceiling)

    assert codes(reasons) == [CURRENCY_INVALID]


def test_with_the_check_off_the_ceiling_still_refuses_to_judge() -> None:
    unchecked = {"check_currency_codes": False}
    assert reasons_for(amounts("Invalid"), GateConfig(**unchecked)) == []  # turned off on purpose

    ceiling = GateConfig(max_auto_amount=Decimal(1000), **unchecked)
    reasons = reasons_for(amounts("Invalid", total=50.0), ceiling)

    assert codes(reasons) == [CURRENCY_INVALID]
    assert "cannot be compared with the auto-booking ceiling of 1,000.00" in reasons[0].message


def test_a_valid_currency_is_still_judged_against_the_ceiling() -> None:
    ceiling = GateConfig(max_auto_amount=Decimal(1000))
    assert codes(reasons_for(amounts("EUR", total=5_000.0), ceiling)) == ["above_ceiling"]
