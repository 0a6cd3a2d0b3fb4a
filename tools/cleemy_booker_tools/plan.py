"""A dry run an accountant can read: what the pipeline would do with each inbox document.

It lists the inbox (listing requests only: no GET, no PUT, no book, so nothing changes in Lucca
and the shared budget of 50 requests a minute barely notices), applies the update rules and the
review gate to each document exactly as the processor would, and says per document whether it
would be booked as it is, updated then booked, or held, and why.

    cleemy-booker plan --base-url https://acme.ilucca.net --rules rules.yaml

The API key is read from an environment variable (``--api-key-env``, default ``LUCCA_API_KEY``),
never from the command line, and never printed. No AWS access is needed.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import TextIO

from pydantic import ValidationError

from cleemy_booker.client import LuccaClient
from cleemy_booker.config import parse_filters
from cleemy_booker.duplicates import (
    ChainedDuplicates,
    DuplicateLookup,
    InMemoryDuplicates,
    duplicate_number,
    duplicate_scope,
)
from cleemy_booker.endpoints import MAX_PAGE_SIZE
from cleemy_booker.errors import AuthError, LuccaError
from cleemy_booker.gate import GateConfig, HoldReason, review
from cleemy_booker.listing import ListedDocument, ListingStats, iter_inbox
from cleemy_booker.models import InboxItem
from cleemy_booker.rules import RulesConfigError, RuleSet, RulesOutcome, load_rules
from cleemy_booker_tools.plan_report import Decision, Plan, PlanEntry

EXIT_OK, EXIT_LUCCA_ERROR, EXIT_BAD_CONFIG = 0, 1, 2


# --- building the plan ------------------------------------------------------------------------


def build_plan(
    client: LuccaClient,
    filters: Mapping[str, str] | None,
    rules: RuleSet,
    gate_config: GateConfig,
    *,
    page_size: int = MAX_PAGE_SIZE,
    duplicates: DuplicateLookup | None = None,
    today: date | None = None,
) -> Plan:
    """List the inbox once and decide, for each document, what the processor would do."""
    sent_before = Counter(client.requests_sent)
    stats = ListingStats()
    listed = list(iter_inbox(client, filters, page_size=page_size, stats=stats))
    outcomes = {doc.document_id: rules.apply(doc.item) for doc in listed if doc.item is not None}
    # Two documents of this very listing with one number are duplicates too, booked or not.
    lookup = ChainedDuplicates(duplicates, _numbers_in_listing(listed, outcomes))
    entries = [_entry(doc, outcomes, gate_config, lookup, today) for doc in listed]
    spent = Counter(client.requests_sent)
    spent.subtract(sent_before)
    return Plan(tuple(entries), {name: n for name, n in spent.items() if n > 0}, stats)


def _numbers_in_listing(
    listed: Iterable[ListedDocument], outcomes: Mapping[int, RulesOutcome]
) -> InMemoryDuplicates:
    numbers = InMemoryDuplicates()
    for doc in listed:
        if doc.item is None:
            continue
        write = outcomes[doc.document_id].write
        scope, number = duplicate_scope(doc.item, write), duplicate_number(write)
        if scope is not None and number is not None:
            numbers.add(scope, number, doc.document_id)
    return numbers


def _entry(
    doc: ListedDocument,
    outcomes: Mapping[int, RulesOutcome],
    gate_config: GateConfig,
    duplicates: DuplicateLookup,
    today: date | None,
) -> PlanEntry:
    if doc.item is None:
        reason = HoldReason("invalid_item", doc.problem or "the item could not be read")
        return PlanEntry(doc.document_id, None, None, None, None, None, "hold", (reason,))
    outcome = outcomes[doc.document_id]
    reasons = review(doc.item, outcome, gate_config, duplicates, today=today)
    decision: Decision = "hold" if reasons else ("update+book" if outcome.changed else "book")
    written = outcome.write.document
    total = written.amountIncludingTaxes.includingTaxes if written.amountIncludingTaxes else None
    return PlanEntry(
        document_id=doc.document_id,
        number=written.documentNumber,
        label=_label(doc.item, outcome),
        amount=total.value if total else None,
        currency=total.currency if total else None,
        ocr_status=doc.item.document.ocrStatus,
        decision=decision,
        reasons=tuple(reasons),
        changes=outcome.changes,
        applied_rules=outcome.applied,
    )


def _label(item: InboxItem, outcome: RulesOutcome) -> str | None:
    """What tells a person which invoice this is; there is no supplier field on an inbox item."""
    written = outcome.write.document
    context = item.document.context
    purchase = context.purchase.name if context and context.purchase else None
    return written.accountingLabel or written.comment or purchase


# --- command line -----------------------------------------------------------------------------

_ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]{0,63}")


class BadConfig(Exception):
    """A command-line setting that cannot work; the message says which and why."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cleemy-booker plan",
        description="Dry run: list the Lucca inbox and show, per document, what the pipeline "
        "would do (book, update then book, or hold) and why. Changes nothing in Lucca.",
    )
    parser.add_argument("--base-url", required=True, help="e.g. https://acme.ilucca.net")
    parser.add_argument(
        "--api-key-env",
        default="LUCCA_API_KEY",
        help="name of the environment variable holding the API key (default: LUCCA_API_KEY)",
    )
    parser.add_argument("--filters", default="", help='e.g. "document.type=Invoice"')
    parser.add_argument("--rules", default=None, help="rules file (JSON or YAML)")
    parser.add_argument("--max-auto-amount", default=None, help="auto-booking ceiling")
    parser.add_argument("--page-size", type=int, default=MAX_PAGE_SIZE)
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    return parser


def _api_key(env: Mapping[str, str], name: str) -> str:
    key = env.get(name, "").strip()
    if key:
        return key
    # Echo the name only when it looks like one: someone may have passed the key itself here.
    shown = name if _ENV_NAME.fullmatch(name) else "given by --api-key-env"
    raise BadConfig(
        f"the environment variable {shown} is not set or empty; the API key is read from the "
        "environment, never from the command line"
    )


def _gate_config(max_auto_amount: str | None) -> GateConfig:
    try:
        ceiling = Decimal(max_auto_amount) if max_auto_amount is not None else None
        return GateConfig(max_auto_amount=ceiling)
    except (InvalidOperation, ValidationError):
        raise BadConfig(
            f"--max-auto-amount must be a positive number, got {max_auto_amount!r}"
        ) from None


def _settings(
    args: argparse.Namespace, env: Mapping[str, str]
) -> tuple[str, dict[str, str], RuleSet, GateConfig]:
    if not 1 <= args.page_size <= MAX_PAGE_SIZE:
        raise BadConfig(f"--page-size must be between 1 and {MAX_PAGE_SIZE}")
    try:
        filters = parse_filters(args.filters)
    except ValueError as exc:
        raise BadConfig(f"--filters: {exc}") from None
    try:
        rules = load_rules(args.rules)
    except RulesConfigError as exc:
        raise BadConfig(f"--rules: {exc}") from None
    return _api_key(env, args.api_key_env), filters, rules, _gate_config(args.max_auto_amount)


def main(
    argv: Sequence[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """0: the plan was printed; 1: Lucca could not be read; 2: the settings cannot work."""
    out, err = stdout or sys.stdout, stderr or sys.stderr
    args = _parser().parse_args(argv)
    try:
        key, filters, rules, gate_config = _settings(
            args, os.environ if environ is None else environ
        )
        client = LuccaClient(args.base_url, key)
    except (BadConfig, ValueError) as exc:
        print(f"error: {exc}", file=err)
        return EXIT_BAD_CONFIG
    try:
        plan = build_plan(client, filters, rules, gate_config, page_size=args.page_size)
    except AuthError as exc:
        print(f"error: Lucca refused the API key: {exc}", file=err)
        return EXIT_BAD_CONFIG
    except LuccaError as exc:
        print(f"error: could not list the inbox: {exc}", file=err)
        return EXIT_LUCCA_ERROR
    finally:
        client.close()
    print(plan.render_json() if args.json else plan.render_table(), file=out)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
