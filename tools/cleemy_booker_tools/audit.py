"""Ask the ledger: what happened to document 123? Which documents are held, and why? What was
booked in March, for the accountant's own checks?

    cleemy-booker audit --stack cleemy-booker show 123
    cleemy-booker audit --table LEDGER_TABLE held [--json | --format csv]
    cleemy-booker audit --stack cleemy-booker export --since 2026-03-01 \
        --until 2026-03-31 --format csv --output march.csv

``export`` writes one row per document booked in the period (``--until`` is a day included);
dates are days in ``--time-zone`` (UTC by default). CSV files open in a spreadsheet as they
are: UTF-8 with a byte order mark, comma-separated with a decimal point, or with
``--decimal-comma`` semicolon-separated with a decimal comma (Excel set to French).

Reads only; needs ``dynamodb:GetItem``/``Query`` on the ledger table (and
``cloudformation:DescribeStacks`` with ``--stack``). No Lucca request: everything comes from
what the pipeline recorded.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import boto3

from cleemy_booker.clock import utc_iso
from cleemy_booker.ledger import (
    BookingTrail,
    DocumentState,
    DocumentSummary,
    Ledger,
    LedgerEvent,
    Status,
)
from cleemy_booker_tools.tables import (
    BOOKED_COLUMNS,
    HELD_COLUMNS,
    Column,
    write_csv,
    write_json,
)


def ledger_table_of_stack(cloudformation: Any, stack: str) -> str:
    outputs = cloudformation.describe_stacks(StackName=stack)["Stacks"][0].get("Outputs", [])
    for output in outputs:
        if output["OutputKey"] == "LedgerTableName":
            return str(output["OutputValue"])
    raise SystemExit(f"stack {stack!r} has no LedgerTableName output")


def _event_line(event: LedgerEvent) -> str:
    detail = event.detail
    parts = [f"{event.at}  {event.kind:<9} -> {detail.get('status', '')}"]
    if detail.get("rulesApplied"):
        parts.append(f"rules: {', '.join(detail['rulesApplied'])}")
    for change in detail.get("diff", []):
        parts.append(f"{change['field']}: {change['before']!r} -> {change['after']!r}")
    parts += [f"reason: {reason}" for reason in detail.get("reasons", [])]
    if detail.get("confirmedBy"):
        parts.append(f"confirmed: {detail['confirmedBy']}")
    if detail.get("requestIds"):
        parts.append(f"Lucca request ids: {', '.join(detail['requestIds'])}")
    return "\n    ".join(parts)


def describe_document(ledger: Ledger, document_id: int) -> str:
    """A person's answer to "what happened to document N?"."""
    state = ledger.states.state(document_id)
    if state is None:
        return f"document {document_id}: never seen by the pipeline"
    lines = [f"document {document_id}: {state.status.value} (since {state.updated_at})"]
    lines += [f"  reason: {reason}" for reason in state.reasons]
    lines += ["  history:"] + [f"  - {_event_line(e)}" for e in ledger.queries.history(document_id)]
    return "\n".join(lines)


def _state_json(state: DocumentState) -> dict[str, Any]:
    return {
        "documentId": state.document_id,
        "status": state.status.value,
        "since": state.updated_at,
        "modifiedAt": state.modified_at,
        "reasons": list(state.reasons),
        "waitingSince": state.waiting_since,
        "summary": _summary_json(state.summary) if state.summary else None,
    }


def _summary_json(summary: DocumentSummary) -> dict[str, Any]:
    return {
        "documentNumber": summary.document_number,
        "type": summary.type,
        "ownerId": summary.owner_id,
        "ownerName": summary.owner_name,
        "amountExcludingTaxes": plain_amount(summary.excluding_taxes),
        "taxes": plain_amount(summary.taxes),
        "amountIncludingTaxes": plain_amount(summary.including_taxes),
        "currency": summary.currency,
        "documentDate": summary.document_date,
    }


def describe_held(ledger: Ledger) -> tuple[str, list[dict[str, Any]]]:
    held = ledger.queries.in_status(Status.HELD)
    rows = [_state_json(state) for state in held]
    lines = [f"{len(held)} document(s) held for review"]
    for state in held:
        lines.append(f"- {state.document_id} (since {state.updated_at})")
        lines += [f"    {reason}" for reason in state.reasons]
    return "\n".join(lines), rows


# --- rows: booked documents (export) and held documents, written out by tables.py ------------


def plain_amount(value: Decimal | None) -> str | None:
    """``1234.50``: two decimals (more when the amount has them), no grouping, so a
    spreadsheet reads a number; a string in JSON, so no float rounds it."""
    if value is None:
        return None
    exponent = value.as_tuple().exponent
    places = max(2, -exponent) if isinstance(exponent, int) else 2
    return f"{value:.{places}f}"


def booked_rows(ledger: Ledger, start: str, end: str) -> list[dict[str, Any]]:
    """One row per document booked in [``start``, ``end``) (ledger stamps), oldest first: the
    state item through the status index, which carries the rules and request ids (a state
    written before it did: one query of its events)."""
    return [
        _booked_row(state, ledger.queries.trail_of_booking(state.document_id, state))
        for state in ledger.queries.in_status_between(Status.BOOKED, start, end)
    ]


def _booked_row(state: DocumentState, trail: BookingTrail) -> dict[str, Any]:
    return {
        "documentId": state.document_id,
        **_summary_json(state.summary or DocumentSummary()),
        "bookedAt": state.updated_at,
        "rulesApplied": list(trail.rules),
        "changes": [
            {"field": c.get("field"), "before": c.get("before"), "after": c.get("after")}
            for c in trail.changes
        ],
        "requestIds": list(trail.request_ids),
    }


def held_rows(ledger: Ledger) -> list[dict[str, Any]]:
    """One row per held document, the longest waiting first."""
    held = sorted(
        ledger.queries.in_status(Status.HELD), key=lambda s: (s.waiting_since, s.document_id)
    )
    return [_held_row(state) for state in held]


def _held_row(state: DocumentState) -> dict[str, Any]:
    summary = state.summary or DocumentSummary()
    codes = [r.partition(": ")[0] for r in state.reasons if ": " in r]
    return {
        "documentId": state.document_id,
        "documentNumber": summary.document_number,
        "ownerName": summary.owner_name,
        "amountIncludingTaxes": plain_amount(summary.including_taxes),
        "currency": summary.currency,
        "reasonCodes": list(dict.fromkeys(codes)),
        "reasons": list(state.reasons),
        "waitingSince": state.waiting_since,
    }


# --- dates on the command line ---------------------------------------------------------------


def period_bound(text: str, zone: tzinfo, *, end: bool = False) -> str:
    """A ledger stamp for ``2026-03-01`` (a day in ``zone``: its start, or with ``end`` the
    start of the next day, so the day is included) or ``2026-03-01T14:00`` (that instant)."""
    try:
        if len(text) == 10:
            day = date.fromisoformat(text) + timedelta(days=1 if end else 0)
            instant = datetime(day.year, day.month, day.day, tzinfo=zone)
        else:
            instant = datetime.fromisoformat(text)
            instant = instant if instant.tzinfo else instant.replace(tzinfo=zone)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected a day (2026-03-01) or a time (2026-03-01T14:00)"
        ) from None
    return utc_iso(instant.timestamp())


def _zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError) as exc:
        raise argparse.ArgumentTypeError(f"unknown time zone {name!r}") from exc


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cleemy-booker audit",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--stack", help="read the ledger table name from this stack's outputs")
    where.add_argument("--table", help="the ledger table name")
    parser.add_argument("--endpoint-url", help="a local AWS emulator, e.g. http://127.0.0.1:4566")
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("--json", action="store_true", help="machine-readable output")
    table = argparse.ArgumentParser(add_help=False)
    table.add_argument("--output", help="write to this file (default: standard output)")
    table.add_argument(
        "--decimal-comma",
        action="store_true",
        help="CSV for Excel set to French: ';' between columns, decimal comma",
    )
    table.add_argument(
        "--time-zone", type=_zone, default=UTC, help="zone of days and times (default: UTC)"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    show = commands.add_parser("show", parents=[output], help="what happened to one document")
    show.add_argument("document_id", type=int)
    held = commands.add_parser(
        "held", parents=[output, table], help="documents held, with their reasons"
    )
    held.add_argument("--format", choices=["text", "json", "csv"], default="text")
    export = commands.add_parser(
        "export", parents=[table], help="one row per document booked in a period"
    )
    export.add_argument("--since", required=True, help="first day (2026-03-01) or time")
    export.add_argument("--until", help="last day, included, or time excluded (default: now)")
    export.add_argument("--format", choices=["csv", "json"], default="csv")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    session = boto3.Session()
    table = args.table or ledger_table_of_stack(
        session.client("cloudformation", endpoint_url=args.endpoint_url), args.stack
    )
    ledger = Ledger(session.client("dynamodb", endpoint_url=args.endpoint_url), table)
    if args.command == "show":
        _show(ledger, args.document_id, as_json=args.json)
    elif args.command == "held":
        _held(ledger, args)
    else:
        try:
            start = period_bound(args.since, args.time_zone)
            end = period_bound(args.until, args.time_zone, end=True) if args.until else None
        except argparse.ArgumentTypeError as error:
            parser.error(str(error))
        rows = booked_rows(ledger, start, end or utc_iso(time.time()))
        _emit(rows, BOOKED_COLUMNS, args)
    return 0


def _show(ledger: Ledger, document_id: int, *, as_json: bool) -> None:
    if not as_json:
        print(describe_document(ledger, document_id))
        return
    state = ledger.states.state(document_id)
    events = [{"at": e.at, "kind": e.kind, **e.detail} for e in ledger.queries.history(document_id)]
    payload = {"state": _state_json(state) if state else None, "history": events}
    print(json.dumps(payload, indent=2, default=str))


def _held(ledger: Ledger, args: argparse.Namespace) -> None:
    form = "json" if args.json else args.format
    if form == "text":
        print(describe_held(ledger)[0])
    elif form == "json":
        _write(write_json(describe_held(ledger)[1]), args.output)
    else:
        _emit(held_rows(ledger), HELD_COLUMNS, args)


def _emit(rows: list[dict[str, Any]], columns: list[Column], args: argparse.Namespace) -> None:
    if args.format == "json":
        data = write_json(rows)
    else:
        data = write_csv(rows, columns, zone=args.time_zone, decimal_comma=args.decimal_comma)
    _write(data, args.output)


def _write(data: bytes, path: str | None) -> None:
    """Bytes as they are: the console's own encoding (cp1252 on Windows) must not re-encode a
    UTF-8 file on its way to ``> file.csv``."""
    if path:
        with open(path, "wb") as file:
            file.write(data)
    else:
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()


if __name__ == "__main__":
    sys.exit(main())
