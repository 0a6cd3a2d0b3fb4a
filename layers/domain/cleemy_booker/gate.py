"""The review gate: may this document be booked without a person looking at it?

Booking is hard to undo, so a document that fails any check is HELD: not booked, not
dead-lettered, recorded with reasons an accountant can act on. The gate looks at the state that
*would* be booked: the OCR status from the inbox item (Lucca's, read-only), everything else from
the write body after the update rules.

A value Lucca added to an enumeration after this was written (an ``ocrStatus`` or a document
``type`` outside ``models.KNOWN_VALUES``) is held as ``unknown_value``: the document parses and
its value is kept, but nobody here knows whether it may be booked.

An amount whose currency is not an ISO 4217 code (Lucca's published examples all read
``"Invalid"``) is held as ``currency_invalid``: what the document is worth is unknown, so it is
never booked automatically, and the auto-booking ceiling is never judged in such a currency.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Who else holds an invoice number is a concern of its own (the ledger answers it too): the
# gate only asks it.
from .currencies import is_currency_code
from .duplicates import DuplicateLookup, describe_scope, duplicate_number, duplicate_scope
from .models import (
    CREDIT_NOTE,
    INVOICE,
    OCR_FAILED,
    OCR_FINISHED,
    InboxDocumentWrite,
    InboxItem,
    Money,
    TaxLine,
    is_unknown_value,
)
from .money import currency_text, format_amount
from .rules import RulesOutcome, check_write_path, get_path

DEFAULT_REQUIRED_FIELDS = (
    "document.documentNumber",
    "document.documentDate",
    "document.amountIncludingTaxes.excludingTaxes.value",
    "document.amountIncludingTaxes.includingTaxes.value",
    "document.type",
)

#: What an accountant calls the fields a hold message may name.
FIELD_NAMES = {
    "document.documentNumber": "invoice number",
    "document.documentDate": "invoice date",
    "document.amountIncludingTaxes.excludingTaxes.value": "amount excluding taxes",
    "document.amountIncludingTaxes.includingTaxes.value": "amount including taxes",
    "document.type": "document type",
    "document.ocrStatus": "OCR status",
    "document.ownerId": "owner",
    "document.dueDate": "due date",
    "document.accountingLabel": "accounting label",
    "document.comment": "comment",
    "document.context.purchase.id": "purchase",
    "document.paymentDetails.bankAccount.iban": "IBAN",
}


class GateConfig(BaseModel):
    """Every check can be tuned or turned off; the defaults are the readiness check."""

    model_config = ConfigDict(extra="forbid")

    require_ocr_finished: bool = True
    required_fields: list[str] = Field(default_factory=lambda: list(DEFAULT_REQUIRED_FIELDS))
    #: excluding taxes + the tax lines must equal including taxes within this (rounding).
    amount_tolerance: Decimal = Field(default=Decimal("0.01"), ge=0)
    check_amounts_add_up: bool = True
    #: Auto-booking ceiling on |including taxes|, in the document's own currency.
    max_auto_amount: Decimal | None = Field(default=None, gt=0)
    check_duplicate_numbers: bool = True
    currencies_must_match: bool = True
    #: Every amount's currency must be an ISO 4217 code (``currencies``); a missing currency is
    #: not checked here (some PUT responses carry none). Turned off, a document with a ceiling
    #: is still held when its total is in such a currency: the ceiling is never judged in it.
    check_currency_codes: bool = True
    #: Listing a type Lucca added (once someone has checked what it means) lets it through.
    allowed_types: list[str] = Field(default_factory=lambda: [INVOICE, CREDIT_NOTE])
    #: An invoice of zero or less is an OCR misread or a credit note filed as an invoice.
    invoices_must_be_positive: bool = True
    #: Lucca does not publish how credit notes are signed, so by default either sign passes.
    credit_note_sign: Literal["any", "positive", "negative"] = "any"
    check_due_date_order: bool = True
    #: An invoice dated further ahead than this is almost certainly a misread date.
    max_days_in_future: int | None = Field(default=7, ge=0)

    @field_validator("required_fields")
    @classmethod
    def _fields_the_write_carries(cls, paths: list[str]) -> list[str]:
        # Read-only fields are never in the write body: requiring one would hold everything.
        for path in paths:
            check_write_path(path)
        return paths


#: Hold code for a value Lucca added to an enumeration after this was written.
UNKNOWN_VALUE = "unknown_value"
#: Hold code for an amount whose currency is not an ISO 4217 code (Lucca's ``"Invalid"``).
CURRENCY_INVALID = "currency_invalid"


@dataclass(frozen=True)
class HoldReason:
    code: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


# --- the checks -------------------------------------------------------------------------------


def review(
    item: InboxItem,
    outcome: RulesOutcome,
    config: GateConfig,
    duplicates: DuplicateLookup | None = None,
    *,
    today: date | None = None,
) -> list[HoldReason]:
    """Every reason to hold this document; an empty list means it may be booked.

    A decision on data: ``duplicates`` is numbers already known (the dry run's own listing);
    the pipeline passes none, its ledger claim finds a duplicate as it takes the number."""
    missing = _missing_fields(outcome.write, config)
    missing_paths = {path for path, _ in missing}
    return [
        *_unknown_values(item, outcome.write, config),
        *_ocr(item, config),
        *_rule_failures(outcome),
        *(reason for _, reason in missing),
        *_type(outcome.write, config, missing_paths),
        *_currency_codes(outcome.write, config),
        *_currencies(outcome.write, config),
        *_amounts_add_up(outcome.write, config),
        *_sign(outcome.write, config),
        *_ceiling(outcome.write, config),
        *_dates(outcome.write, config, today or date.today()),
        *_duplicates(item, outcome.write, config, duplicates),
    ]


def _unknown_values(
    item: InboxItem, write: InboxDocumentWrite, config: GateConfig
) -> Iterator[HoldReason]:
    """Values of the fields that decide booking that Lucca added since this was written.

    Always checked, even with ``require_ocr_finished`` off: an OCR status nobody has seen may
    mean anything (archived, deleted, locked). A document type listed in ``allowed_types`` has
    been looked at by whoever listed it, so it is not unknown to this gate.
    """
    status = item.document.ocrStatus
    if is_unknown_value("document.ocrStatus", status):
        yield _unknown("document.ocrStatus", status)
    kind = write.document.type
    if is_unknown_value("document.type", kind) and kind not in config.allowed_types:
        yield _unknown("document.type", kind, " or add it to the gate's allowed_types")


def _unknown(path: str, value: str | None, remedy: str = "") -> HoldReason:
    return HoldReason(
        UNKNOWN_VALUE,
        f"{FIELD_NAMES[path]} ({path}) is {value!r}, a value this booker does not know (Lucca "
        f"may have added it): check the document in Lucca and book it by hand{remedy}",
    )


def _ocr(item: InboxItem, config: GateConfig) -> Iterator[HoldReason]:
    status = item.document.ocrStatus
    if not config.require_ocr_finished or status in OCR_FINISHED:
        return
    if is_unknown_value("document.ocrStatus", status):
        return  # held as an unknown value: "still Archived" would be a guess
    if status is None:
        message = "Lucca does not say whether reading the document (OCR) has finished"
    elif status == OCR_FAILED:
        message = "reading the document (OCR) failed: its data must be entered by hand in Lucca"
    else:
        message = f"reading the document (OCR) is still {status}: wait until it has finished"
    yield HoldReason("ocr_not_finished", message)


def _rule_failures(outcome: RulesOutcome) -> Iterator[HoldReason]:
    for name, why in outcome.failed:
        yield HoldReason("rule_failed", f"update rule {name!r} could not apply: {why}")


def _missing_fields(write: InboxDocumentWrite, config: GateConfig) -> list[tuple[str, HoldReason]]:
    body = write.to_json()
    missing = []
    for path in config.required_fields:
        value = get_path(body, path)
        if value is None or (isinstance(value, str) and not value.strip()):
            name = FIELD_NAMES.get(path, path)
            missing.append((path, HoldReason("missing_field", f"{name} is missing ({path})")))
    return missing


def _type(
    write: InboxDocumentWrite, config: GateConfig, missing_paths: set[str]
) -> Iterator[HoldReason]:
    kind = write.document.type
    if kind in config.allowed_types or "document.type" in missing_paths:
        return
    if is_unknown_value("document.type", kind):
        return  # held as an unknown value, which says more than "not allowed"
    allowed = ", ".join(config.allowed_types) or "none"
    shown = kind or "not set"
    yield HoldReason(
        "type_not_allowed",
        f"document type is {shown}, which is not booked automatically (allowed: {allowed})",
    )


def _amount_lines(write: InboxDocumentWrite) -> list[tuple[str, Money | TaxLine]]:
    """(which amount, the amount) for every amount on the document."""
    amounts = write.document.amountIncludingTaxes
    if amounts is None:
        return []
    lines: list[tuple[str, Money | TaxLine]] = []
    if amounts.excludingTaxes is not None:
        lines.append(("excluding taxes", amounts.excludingTaxes))
    lines += [(f"tax line {n}", tax) for n, tax in enumerate(amounts.taxes, 1)]
    if amounts.includingTaxes is not None:
        lines.append(("including taxes", amounts.includingTaxes))
    return lines


def _not_a_currency(currency: str | None) -> bool:
    """A currency given, but not an ISO 4217 code (``"Invalid"``, ``"EURO"``, ``"€"``...)."""
    return currency is not None and not is_currency_code(currency)


def _currency_codes(write: InboxDocumentWrite, config: GateConfig) -> Iterator[HoldReason]:
    """One hold naming every amount line whose currency is no currency, grouped by value."""
    if not config.check_currency_codes:
        return
    by_value: dict[str, list[str]] = defaultdict(list)
    for label, amount in _amount_lines(write):
        if amount.currency is not None and not is_currency_code(amount.currency):
            by_value[amount.currency].append(_line_name(label))
    if not by_value:
        return
    parts = "; ".join(f"{value!r} on {_and(labels)}" for value, labels in by_value.items())
    yield HoldReason(
        CURRENCY_INVALID,
        f"the currency is not a currency code (ISO 4217, such as EUR): {parts}. What the "
        "amounts are worth is unknown, so the document is not booked automatically: correct "
        "the currency in Lucca, or check the amounts and book it by hand",
    )


def _line_name(label: str) -> str:
    """How a hold names an amount line: "the amount including taxes", "tax line 2"."""
    return label if label.startswith("tax line") else f"the amount {label}"


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _currencies(write: InboxDocumentWrite, config: GateConfig) -> Iterator[HoldReason]:
    if not config.currencies_must_match:
        return
    by_currency: dict[str, list[str]] = defaultdict(list)
    for label, amount in _amount_lines(write):
        by_currency[currency_text(amount.currency)].append(label)
    if len(by_currency) > 1:
        parts = [f"{currency} ({', '.join(labels)})" for currency, labels in by_currency.items()]
        yield HoldReason(
            "currency_mismatch", f"amounts are in different currencies: {'; '.join(parts)}"
        )


def _amounts_add_up(write: InboxDocumentWrite, config: GateConfig) -> Iterator[HoldReason]:
    amounts = write.document.amountIncludingTaxes
    if not config.check_amounts_add_up or amounts is None:
        return
    if amounts.excludingTaxes is None or amounts.includingTaxes is None:
        return  # a missing amount is reported as a missing field
    excluding = amounts.excludingTaxes.value
    taxes = sum((tax.value for tax in amounts.taxes), Decimal(0))
    including = amounts.includingTaxes.value
    expected = excluding + taxes
    off_by = abs(including - expected)
    if off_by > config.amount_tolerance:
        currency = currency_text(amounts.includingTaxes.currency)
        yield HoldReason(
            "amounts_mismatch",
            f"excluding {format_amount(excluding)} + taxes {format_amount(taxes)} = "
            f"{format_amount(expected)}, but including taxes is {format_amount(including)} "
            f"(off by {format_amount(off_by)} {currency})",
        )


def _including(write: InboxDocumentWrite) -> Money | None:
    amounts = write.document.amountIncludingTaxes
    return amounts.includingTaxes if amounts is not None else None


def _sign(write: InboxDocumentWrite, config: GateConfig) -> Iterator[HoldReason]:
    total = _including(write)
    if total is None:
        return
    shown = f"{format_amount(total.value)} {currency_text(total.currency)}"
    kind = write.document.type
    if kind == INVOICE and config.invoices_must_be_positive and total.value <= 0:
        yield HoldReason(
            "amount_sign",
            f"an invoice of {shown}: an invoice should be positive (is it a credit note?)",
        )
    elif kind == CREDIT_NOTE and config.credit_note_sign != "any":
        wrong = total.value <= 0 if config.credit_note_sign == "positive" else total.value >= 0
        if wrong:
            yield HoldReason(
                "amount_sign",
                f"a credit note of {shown}: credit notes are expected to be "
                f"{config.credit_note_sign} here",
            )


def _ceiling(write: InboxDocumentWrite, config: GateConfig) -> Iterator[HoldReason]:
    total = _including(write)
    ceiling = config.max_auto_amount
    if total is None or ceiling is None:
        return
    if _not_a_currency(total.currency):
        # Never judged in a currency nobody knows: 900 "Invalid" may be 900 EUR or 900,000
        # of anything else. Held by ``_currency_codes`` when it is on; here when it is off.
        if not config.check_currency_codes:
            yield HoldReason(
                CURRENCY_INVALID,
                f"the amount including taxes {format_amount(total.value)} is in "
                f"{total.currency!r}, which is not a currency code (ISO 4217): it cannot be "
                f"compared with the auto-booking ceiling of {format_amount(ceiling)}",
            )
        return
    if abs(total.value) <= ceiling:
        return
    yield HoldReason(
        "above_ceiling",
        f"amount including taxes {format_amount(total.value)} {currency_text(total.currency)} "
        f"is above the auto-booking ceiling of {format_amount(ceiling)}",
    )


def _dates(write: InboxDocumentWrite, config: GateConfig, today: date) -> Iterator[HoldReason]:
    issued, due = write.document.documentDate, write.document.dueDate
    if config.check_due_date_order and issued is not None and due is not None and due < issued:
        yield HoldReason(
            "due_before_invoice_date",
            f"due date {due.isoformat()} is before the invoice date {issued.isoformat()}",
        )
    ahead = config.max_days_in_future
    if ahead is not None and issued is not None and issued > today + timedelta(days=ahead):
        yield HoldReason(
            "date_in_future",
            f"invoice date {issued.isoformat()} is {(issued - today).days} days in the future "
            "(a misread date?)",
        )


def _duplicates(
    item: InboxItem,
    write: InboxDocumentWrite,
    config: GateConfig,
    duplicates: DuplicateLookup | None,
) -> Iterator[HoldReason]:
    number = duplicate_number(write)
    if not config.check_duplicate_numbers or duplicates is None or number is None:
        return
    scope = duplicate_scope(item, write)
    if scope is None:
        return
    other = duplicates.find_duplicate(scope, number, item.document_id)
    if other is not None and other != item.document_id:
        yield duplicate_reason(number, other, scope)


def duplicate_reason(number: str, other: int, scope: str) -> HoldReason:
    """The hold for an invoice number another document carries (the gate's lookup of known
    numbers, or the ledger's claim refusing it: the same words either way)."""
    return HoldReason(
        "duplicate_number",
        f"invoice number {number} is also used by document {other} ({describe_scope(scope)})",
    )


def reasons_json(reasons: list[HoldReason]) -> list[dict[str, Any]]:
    return [reason.to_json() for reason in reasons]


__all__ = [
    "CURRENCY_INVALID",
    "UNKNOWN_VALUE",
    "GateConfig",
    "HoldReason",
    "duplicate_reason",
    "review",
]
