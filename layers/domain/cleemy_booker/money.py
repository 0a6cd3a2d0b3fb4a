"""How an amount is written wherever a person reads one: hold reasons, the digest, exports."""

from __future__ import annotations

from decimal import Decimal


def currency_text(currency: str | None) -> str:
    """A currency as a message shows it (an amount read from some PUT responses has none)."""
    return currency or "no currency"


def format_amount(value: Decimal) -> str:
    """12,500.00: two decimals, more when the amount has them (3-decimal currencies)."""
    exponent = value.as_tuple().exponent
    places = max(2, -exponent) if isinstance(exponent, int) else 2
    return f"{value:,.{places}f}"
