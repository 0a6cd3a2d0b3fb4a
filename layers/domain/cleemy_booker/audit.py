"""Ask the ledger: what happened to document 123? Which documents are held, and why?

    python -m cleemy_booker.audit --stack cleemy-booker show 123
    python -m cleemy_booker.audit --table LEDGER_TABLE held [--json]

Reads only; needs ``dynamodb:GetItem``/``Query`` on the ledger table (and
``cloudformation:DescribeStacks`` with ``--stack``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

import boto3

from .ledger import DocumentState, Ledger, LedgerEvent, Status


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
    state = ledger.state(document_id)
    if state is None:
        return f"document {document_id}: never seen by the pipeline"
    lines = [f"document {document_id}: {state.status.value} (since {state.updated_at})"]
    lines += [f"  reason: {reason}" for reason in state.reasons]
    lines += ["  history:"] + [f"  - {_event_line(e)}" for e in ledger.history(document_id)]
    return "\n".join(lines)


def _state_json(state: DocumentState) -> dict[str, Any]:
    return {
        "documentId": state.document_id,
        "status": state.status.value,
        "since": state.updated_at,
        "modifiedAt": state.modified_at,
        "reasons": list(state.reasons),
    }


def describe_held(ledger: Ledger) -> tuple[str, list[dict[str, Any]]]:
    held = ledger.in_status(Status.HELD)
    rows = [_state_json(state) for state in held]
    lines = [f"{len(held)} document(s) held for review"]
    for state in held:
        lines.append(f"- {state.document_id} (since {state.updated_at})")
        lines += [f"    {reason}" for reason in state.reasons]
    return "\n".join(lines), rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cleemy_booker.audit", description=__doc__)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--stack", help="read the ledger table name from this stack's outputs")
    where.add_argument("--table", help="the ledger table name")
    parser.add_argument("--endpoint-url", help="a local AWS emulator, e.g. http://127.0.0.1:4566")
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("--json", action="store_true", help="machine-readable output")
    commands = parser.add_subparsers(dest="command", required=True)
    show = commands.add_parser("show", parents=[output], help="what happened to one document")
    show.add_argument("document_id", type=int)
    commands.add_parser("held", parents=[output], help="documents held, with their reasons")
    args = parser.parse_args(argv)

    session = boto3.Session()
    table = args.table or ledger_table_of_stack(
        session.client("cloudformation", endpoint_url=args.endpoint_url), args.stack
    )
    ledger = Ledger(session.client("dynamodb", endpoint_url=args.endpoint_url), table)
    if args.command == "show":
        if args.json:
            state = ledger.state(args.document_id)
            events = [
                {"at": e.at, "kind": e.kind, **e.detail} for e in ledger.history(args.document_id)
            ]
            payload = {"state": _state_json(state) if state else None, "history": events}
            print(json.dumps(payload, indent=2, default=str))
        else:
            print(describe_document(ledger, args.document_id))
    else:
        text, rows = describe_held(ledger)
        print(json.dumps(rows, indent=2) if args.json else text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
