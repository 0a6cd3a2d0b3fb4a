"""Rows of the ledger written as a file for the accountant's own checks: CSV that a
spreadsheet opens as it is (the columns of the export and of the held documents), or JSON."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import UTC, datetime, tzinfo
from typing import Any

from cleemy_booker.gate import FIELD_NAMES

#: (heading, key, kind) of each CSV column; the kind says how a cell is written.
Column = tuple[str, str, str]
BOOKED_COLUMNS: list[Column] = [
    ("document id", "documentId", "id"),
    ("invoice number", "documentNumber", "text"),
    ("type", "type", "text"),
    ("owner id", "ownerId", "id"),
    ("owner", "ownerName", "text"),
    ("amount excluding taxes", "amountExcludingTaxes", "amount"),
    ("taxes", "taxes", "amount"),
    ("amount including taxes", "amountIncludingTaxes", "amount"),
    ("currency", "currency", "text"),
    ("invoice date", "documentDate", "text"),
    ("booked at", "bookedAt", "time"),
    ("rules applied", "rulesApplied", "list"),
    ("changes", "changes", "changes"),
    ("Lucca request ids", "requestIds", "list"),
]
HELD_COLUMNS: list[Column] = [
    ("document id", "documentId", "id"),
    ("invoice number", "documentNumber", "text"),
    ("owner", "ownerName", "text"),
    ("amount including taxes", "amountIncludingTaxes", "amount"),
    ("currency", "currency", "text"),
    ("reason codes", "reasonCodes", "list"),
    ("reasons", "reasons", "reasons"),
    ("waiting since", "waitingSince", "time"),
]
#: A cell starting with one of these is a formula to a spreadsheet: invoice numbers and names
#: come from supplier documents read by OCR, so text cells are never left to start with one.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def write_csv(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[Column],
    *,
    zone: tzinfo = UTC,
    decimal_comma: bool = False,
) -> bytes:
    """The rows as a CSV file's bytes, ready for a spreadsheet as it is.

    UTF-8 with a byte order mark: Excel reads a CSV file without one in the Windows code page
    (Windows-1252 in France), so "Société Générale" would show as "SociÃ©tÃ© GÃ©nÃ©rale"; the
    mark makes it read UTF-8, and LibreOffice, Google Sheets, Numbers and Python's
    ``utf-8-sig`` take it too. Excel set to French splits columns on ``;`` and reads ``1234,50``
    as a number: ``decimal_comma`` writes that; otherwise commas and a decimal point (Excel in
    English, every other spreadsheet). Times are written ``2026-03-02 08:15:00`` in ``zone``,
    which spreadsheets read as dates; the heading names the zone.
    """
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=";" if decimal_comma else ",")
    zone_name = str(getattr(zone, "key", None) or zone)
    writer.writerow(
        [f"{title} ({zone_name})" if kind == "time" else title for title, _, kind in columns]
    )
    for row in rows:
        writer.writerow(
            [_cell(row.get(key), kind, zone, decimal_comma) for _, key, kind in columns]
        )
    return out.getvalue().encode("utf-8-sig")


def _cell(value: Any, kind: str, zone: tzinfo, decimal_comma: bool) -> str:
    if value is None or value == "":
        return ""
    if kind == "amount":
        return str(value).replace(".", ",") if decimal_comma else str(value)
    if kind == "id":
        return str(value)
    if kind == "time":
        return datetime.fromisoformat(value).astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")
    if kind == "list":
        return _text_cell("; ".join(str(v) for v in value))
    if kind == "reasons":  # a reason may itself hold "; " (update_not_kept names fields so)
        return _text_cell(" | ".join(str(v) for v in value))
    if kind == "changes":
        return _text_cell("; ".join(_change_text(change) for change in value))
    return _text_cell(str(value))


def _change_text(change: dict[str, Any]) -> str:
    """``accounting label: (empty) → F-2026-001``."""
    path = str(change.get("field", ""))
    label = FIELD_NAMES.get(path, path)
    return f"{label}: {_value_text(change.get('before'))} → {_value_text(change.get('after'))}"


def _value_text(value: Any) -> str:
    if value is None or value == "":
        return "(empty)"
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _text_cell(text: str) -> str:
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def write_json(rows: Sequence[dict[str, Any]]) -> bytes:
    """A JSON list of objects, UTF-8 without a byte order mark (JSON forbids writing one)."""
    return (json.dumps(list(rows), indent=2, ensure_ascii=False, default=str) + "\n").encode()
