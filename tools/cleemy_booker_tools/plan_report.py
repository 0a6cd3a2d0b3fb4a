"""The plan a dry run makes, as data (an entry per document, the totals, the requests it cost)
and as a person reads it: JSON, or a table of at most ``TABLE_WIDTH`` columns."""

from __future__ import annotations

import json
import textwrap
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any, Literal

from cleemy_booker.gate import HoldReason
from cleemy_booker.listing import ListingStats
from cleemy_booker.money import format_amount
from cleemy_booker.rules import FieldChange

Decision = Literal["book", "update+book", "hold"]
DECISIONS: tuple[Decision, ...] = ("book", "update+book", "hold")
TABLE_WIDTH = 120


@dataclass(frozen=True)
class PlanEntry:
    """One document and what would happen to it (values as they would be booked)."""

    document_id: int
    number: str | None
    label: str | None
    amount: Decimal | None
    currency: str | None
    ocr_status: str | None
    decision: Decision
    reasons: tuple[HoldReason, ...] = ()
    changes: tuple[FieldChange, ...] = ()
    applied_rules: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "documentId": self.document_id,
            "number": self.number,
            "label": self.label,
            "amountIncludingTaxes": _json_number(self.amount),
            "currency": self.currency,
            "ocrStatus": self.ocr_status,
            "decision": self.decision,
            "reasons": [reason.to_json() for reason in self.reasons],
            "changes": [asdict(change) for change in self.changes],
            "rulesApplied": list(self.applied_rules),
        }


@dataclass(frozen=True)
class PlanTotals:
    documents: int
    by_decision: dict[str, int]
    #: "book" (with or without an update) and "hold" → currency → sum of amounts incl. taxes.
    amounts: dict[str, dict[str, Decimal]]

    def to_json(self) -> dict[str, Any]:
        return {
            "documents": self.documents,
            "byDecision": self.by_decision,
            "amounts": {
                group: {currency: _json_number(total) for currency, total in sums.items()}
                for group, sums in self.amounts.items()
            },
        }


@dataclass(frozen=True)
class Plan:
    entries: tuple[PlanEntry, ...]
    #: Requests this plan sent to Lucca, per endpoint (only "list" is expected).
    requests: dict[str, int]
    listing: ListingStats = field(default_factory=ListingStats)

    @property
    def requests_spent(self) -> int:
        return sum(self.requests.values())

    @property
    def totals(self) -> PlanTotals:
        by_decision = Counter(entry.decision for entry in self.entries)
        amounts: dict[str, defaultdict[str, Decimal]] = {
            "book": defaultdict(Decimal),
            "hold": defaultdict(Decimal),
        }
        for entry in self.entries:
            if entry.amount is not None and entry.currency:
                group = "hold" if entry.decision == "hold" else "book"
                amounts[group][entry.currency] += entry.amount
        return PlanTotals(
            documents=len(self.entries),
            by_decision={decision: by_decision[decision] for decision in DECISIONS},
            amounts={group: dict(sorted(sums.items())) for group, sums in amounts.items()},
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "entries": [entry.to_json() for entry in self.entries],
            "totals": self.totals.to_json(),
            "requests": {**self.requests, "total": self.requests_spent},
            "listing": {
                "count": self.listing.count,
                "pages": self.listing.pages,
                "stoppedBecause": self.listing.stopped_because,
                "invalidItems": self.listing.invalid_items,
                "unusable": list(self.listing.unusable),
            },
        }

    def render_json(self) -> str:
        return json.dumps(self.to_json(), indent=2, ensure_ascii=False)

    def render_table(self) -> str:
        return render_table(self)


# --- rendering --------------------------------------------------------------------------------

#: (title, width, right-aligned); widths add up with two-space gaps to 103 of 120 columns.
_COLUMNS = (
    ("ID", 8, True),
    ("Number", 16, False),
    ("Label", 26, False),
    ("Incl. taxes", 14, True),
    ("Cur", 3, False),
    ("OCR", 13, False),
    ("Decision", 11, False),
)
_DETAIL_INDENT = " " * 10


def _cell(text: str, width: int, right: bool) -> str:
    text = " ".join(text.split())  # a label may hold newlines or tabs
    if len(text) > width:
        text = text[: width - 1] + "…"
    return text.rjust(width) if right else text.ljust(width)


def _row(values: Sequence[str]) -> str:
    cells = (_cell(v, width, right) for v, (_, width, right) in zip(values, _COLUMNS, strict=True))
    return "  ".join(cells).rstrip()


def _entry_cells(entry: PlanEntry) -> list[str]:
    amount = format_amount(entry.amount) if entry.amount is not None else "-"
    return [
        str(entry.document_id),
        entry.number or "-",
        entry.label or "-",
        amount,
        entry.currency or "-",
        entry.ocr_status or "-",
        entry.decision,
    ]


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _details(entry: PlanEntry) -> list[str]:
    lines = [f"hold  {reason.code}: {reason.message}" for reason in entry.reasons]
    lines += [
        f"set   {change.path}: {_json_text(change.before)} -> {_json_text(change.after)}"
        for change in entry.changes
    ]
    return lines


def _wrap(text: str, indent: str) -> list[str]:
    return textwrap.wrap(
        text, width=TABLE_WIDTH, initial_indent=indent, subsequent_indent=indent + "      "
    ) or [indent]


def _money_sums(sums: Mapping[str, Decimal]) -> str:
    return ", ".join(f"{format_amount(total)} {currency}" for currency, total in sums.items())


def _totals_lines(plan: Plan) -> list[str]:
    totals = plan.totals
    counts = ", ".join(f"{totals.by_decision[d]} {d}" for d in DECISIONS)
    requests = ", ".join(f"{name} {n}" for name, n in sorted(plan.requests.items()))
    listing = plan.listing
    lines = [
        f"Totals: {totals.documents} documents: {counts}",
        f"  to book: {_money_sums(totals.amounts['book']) or 'nothing'}",
        f"  held:    {_money_sums(totals.amounts['hold']) or 'nothing'}",
        f"Requests to Lucca: {plan.requests_spent} ({requests or 'none'}); "
        f"inbox count {listing.count}, {listing.pages} page(s), {listing.stopped_because}",
    ]
    if listing.unusable:
        lines.append(f"  {len(listing.unusable)} listed item(s) had no usable id and are not shown")
    return [wrapped for line in lines for wrapped in _wrap(line, "")]


def render_table(plan: Plan) -> str:
    """Fixed-width text, at most 120 columns: one row per document, its reasons and changes
    indented under it, then the totals."""
    header = _row([title for title, _, _ in _COLUMNS])
    rule = _row(["-" * width for _, width, _ in _COLUMNS])
    lines = ["Dry run: nothing was changed in Lucca.", header, rule]
    for entry in plan.entries:
        lines.append(_row(_entry_cells(entry)))
        for detail in _details(entry):
            lines += _wrap(detail, _DETAIL_INDENT)
    if not plan.entries:
        lines.append("(the inbox is empty for these filters)")
    lines += [rule, *_totals_lines(plan)]
    return "\n".join(lines)


def _json_number(value: Decimal | None) -> int | float | None:
    if value is None:
        return None
    return int(value) if value == value.to_integral_value() else float(value)
