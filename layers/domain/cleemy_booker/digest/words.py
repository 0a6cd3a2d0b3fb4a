"""How the digest writes numbers, amounts, durations and times, and cuts what is too long.

Amounts read ``1,234.50 EUR``: the digest is written in English, so English digit grouping (a
French ``1 234,50`` inside English sentences would meet commas that separate list items), and
the ISO code after the amount, as Lucca stores it and as the hold reasons quoted here already
write it (``money.format_amount``): one way of writing an amount across the message, and no
``$``/``£`` guesswork between currencies that share a symbol.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, tzinfo
from decimal import Decimal

from ..ledger import DocumentSummary
from ..money import currency_text, format_amount

_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def duration(seconds: float) -> str:
    """``3 days``, ``5 hours``, ``12 minutes``: the largest whole unit, rounded down."""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            return _count(int(seconds // size), unit)
    return "less than a minute"


def money(value: Decimal | None, currency: str | None) -> str:
    """``1,234.50 EUR`` (see the module's docstring for why)."""
    if value is None:
        return "amount unknown"
    return f"{format_amount(value)} {currency_text(currency)}"


def _money(summary: DocumentSummary) -> str:
    return money(summary.including_taxes, summary.currency)


def _totals(summaries: Iterable[DocumentSummary | None]) -> str:
    """Amounts including taxes added up per currency, the most used currency first."""
    sums: dict[str, Decimal] = defaultdict(Decimal)
    uses: Counter[str] = Counter()
    unknown = 0
    for summary in summaries:
        if summary is None or summary.including_taxes is None:
            unknown += 1
            continue
        currency = currency_text(summary.currency)
        sums[currency] += summary.including_taxes
        uses[currency] += 1
    parts = [f"{format_amount(sums[c])} {c}" for c in sorted(sums, key=lambda c: (-uses[c], c))]
    if unknown:
        parts.append(f"{unknown:,} without an amount")
    return ", ".join(parts)


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _cut_list(entries: Sequence[list[str]], limit: int) -> list[str]:
    """The lines of the first ``limit`` entries (one or more lines each), then how many more."""
    lines = [line for entry in entries[:limit] for line in entry]
    if len(entries) > limit:
        lines.append(f"  … and {len(entries) - limit:,} more")
    return lines


def _when(stamp: str, zone: tzinfo) -> str:
    """``Tuesday 3 March 2026, 07:00`` in ``zone`` (English names, whatever the locale)."""
    local = datetime.fromisoformat(stamp).astimezone(zone)
    return (
        f"{_WEEKDAYS[local.weekday()]} {local.day} {_MONTHS[local.month - 1]} {local.year}, "
        f"{local:%H:%M}"
    )


def _zone_name(zone: tzinfo) -> str:
    return str(getattr(zone, "key", None) or zone)


def _seconds_since(stamp: str | None, now: str) -> float | None:
    if not stamp:
        return None
    return max(0.0, (datetime.fromisoformat(now) - datetime.fromisoformat(stamp)).total_seconds())
