"""Seeded generation of realistic inbox items, each with a hidden ground-truth category.

One ``random.Random(seed)`` drives everything, and documents are drawn in order, so the same seed
and count always give the same inbox. Items follow the read shape of lucca-api.md exactly and
carry a few fields no client model knows (item, document, context, purchase and amounts level),
because a client that drops them would reset them with its PUT.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from .catalog import (
    BASE_URL,
    BICS,
    INBOX_ROBOT,
    PURCHASES,
    SUPPLIER_WEIGHTS,
    SUPPLIERS,
    TAX_RATE_IDS,
    USERS,
    Supplier,
    purchase_ref,
    user_ref,
)
from .clock import TICKS_PER_SECOND, format_ticks, ticks_from_datetime

CENT = Decimal("0.01")
#: Generated documents arrive between these instants, spread evenly by count.
_FIRST_ARRIVAL = datetime(2026, 1, 5, 7, 30, tzinfo=UTC)
_LAST_ARRIVAL = datetime(2026, 10, 30, 17, 0, tzinfo=UTC)
_FIRST_ISSUE = date(2026, 1, 2)
_OCR_FINISHED = ("Processed", "NotApplicable")


@dataclass
class GeneratedDocument:
    item: dict[str, Any]
    category: str


class InboxGenerator:
    """Draws documents one after the other; ``generate`` may be called again to add more."""

    def __init__(
        self,
        seed: int,
        first_id: int,
        weights: dict[str, float],
        count: int,
        *,
        document_id_offset: int = 0,
        invalid_currency: str = "Invalid",
    ) -> None:
        self._rng = random.Random(seed)
        #: Every amount's currency in a ``currency_invalid`` document (no random draw).
        self._invalid_currency = invalid_currency
        # The nested document's id (config.SimulatorConfig.document_id_offset); no random draw,
        # so a seed keeps its inbox whatever the offset.
        self._document_id_offset = document_id_offset
        self._categories = list(weights)
        self._weights = [weights[name] for name in self._categories]
        self._next_id = first_id
        self._next_attachment_id = 70_001
        self._arrival = ticks_from_datetime(_FIRST_ARRIVAL)
        span = ticks_from_datetime(_LAST_ARRIVAL) - self._arrival
        self._mean_gap = span // max(count, 1)
        self._ibans = {s.reference: _iban(self._rng) for s in SUPPLIERS}
        self._invoice_counter = {s.reference: self._rng.randint(10, 900) for s in SUPPLIERS}
        self._numbers_used: set[str] = set()

    def generate(self, count: int) -> list[GeneratedDocument]:
        return [self._one() for _ in range(count)]

    # --- one document ------------------------------------------------------------------------

    def _one(self) -> GeneratedDocument:
        rng = self._rng
        category = rng.choices(self._categories, self._weights)[0]
        doc_id = self._take_id()
        supplier = rng.choices(SUPPLIERS, SUPPLIER_WEIGHTS)[0]
        created = self._take_arrival()
        ocr_status = self._ocr_status(category)
        finished = ocr_status in _OCR_FINISHED
        modified = created + (rng.randint(40, 1_800) * TICKS_PER_SECOND if finished else 0)
        source = "email" if rng.random() < 0.7 else "upload"
        owner = rng.choice(USERS) if rng.random() < 0.85 else None
        author = user_ref(INBOX_ROBOT.id if source == "email" else (owner or USERS[0]).id)
        stamps = {"createdAt": format_ticks(created), "modifiedAt": format_ticks(modified)}

        document: dict[str, Any] = {
            "id": doc_id + self._document_id_offset,
            "owner": user_ref(owner.id) if owner else None,
            "type": "CreditNote" if category == "credit_note" else "Invoice",
            "context": self._context(),
            "documentBreakdown": self._breakdown(),
            "documentDate": None,
            "documentNumber": None,
            "amountIncludingTaxes": None,
            "accountingLabel": None,
            "comment": None,
            "intraCommunityTaxes": supplier.intra_community,
            "attachments": self._attachments(created, rng.randint(1, 4)),
            "ocrStatus": ocr_status,
            "dueDate": None,
            "paymentDetails": None,
            **stamps,
            "author": author,
            "modifier": author,
            # Writable fields no client model knows: a PUT that leaves them out resets them.
            "supplierReference": supplier.reference if finished else None,
            "costCenterCode": f"CC-{rng.randint(1, 12)}" if rng.random() < 0.8 else None,
        }
        if finished:
            self._fill_extracted(document, supplier, created, category)
            self._apply_category(document, category)
        item = {
            "id": doc_id,
            "document": document,
            "source": {"type": source},
            "action": {},
            **stamps,
            "author": author,
            "modifier": author,
            # Item-level field no client model knows.
            "workflowHint": self._workflow_hint(category, supplier, finished),
        }
        return GeneratedDocument(item=item, category=category)

    def _take_id(self) -> int:
        doc_id = self._next_id
        # Ids grow but are not contiguous: other tenants' documents share the sequence.
        self._next_id += self._rng.choice((1, 1, 1, 2, 3, 7))
        return doc_id

    def _take_arrival(self) -> int:
        gap = int(self._mean_gap * self._rng.uniform(0.2, 1.8))
        self._arrival += max(gap, TICKS_PER_SECOND) + self._rng.randint(0, 9_999_999)
        return self._arrival

    def _ocr_status(self, category: str) -> str:
        if category == "ocr_pending":
            return self._rng.choice(("Pending", "Processing"))
        if category == "ocr_failed":
            return "Failed"
        return "Processed" if self._rng.random() < 0.85 else "NotApplicable"

    def _context(self) -> dict[str, Any] | None:
        # Unknown fields in context and in the purchase (no extra draws: seeds keep their inbox).
        roll = self._rng.random()
        if roll < 0.3:
            purchase = self._rng.choice(PURCHASES)
            reference = {
                **purchase_ref(purchase.id, purchase.type),
                "orderNumber": f"BC-{purchase.id}",
            }
            return {"purchase": reference, "matchedBy": "supplierReference"}
        return {"purchase": None, "matchedBy": None} if roll < 0.4 else None

    def _breakdown(self) -> dict[str, Any] | None:
        if self._rng.random() >= 0.15:
            return None
        breakdown_id = self._rng.randint(200, 260)
        return {
            "id": breakdown_id,
            "href": f"{BASE_URL}/cleemy-procurement/api/document-breakdowns/{breakdown_id}",
            "name": f"Ventilation analytique #{breakdown_id}",
        }

    def _attachments(self, created: int, pages: int) -> list[dict[str, Any]]:
        file_id = str(uuid.UUID(int=self._rng.getrandbits(128), version=4))
        file_href = f"{BASE_URL}/api/v4/files/{file_id}"
        attachment = {
            "id": self._next_attachment_id,
            "file": {
                "id": file_id,
                "href": file_href,
                "name": f"facture-{file_id[:8]}.pdf",
                "displayHref": f"{file_href}/display",
            },
            "createdAt": format_ticks(created),
            "pages": {"displayHrefTemplate": f"{file_href}/pages/{{page}}", "count": pages},
        }
        self._next_attachment_id += 1
        return [attachment]

    def _fill_extracted(
        self, document: dict[str, Any], supplier: Supplier, created: int, category: str
    ) -> None:
        """What the OCR read from a finished document: number, dates, amounts, bank details."""
        rng = self._rng
        arrived = datetime.fromtimestamp(created // TICKS_PER_SECOND, UTC).date()
        # Issued a few days before it arrived, but within 2026 (the simulated books' year).
        issued = max(arrived - timedelta(days=rng.randint(0, 12)), _FIRST_ISSUE)
        self._invoice_counter[supplier.reference] += rng.randint(1, 40)
        prefix = "AV" if category == "credit_note" else supplier.prefix
        number = f"{prefix}-{issued.year}-{self._invoice_counter[supplier.reference]:05d}"
        # Suppliers share prefixes; a real inbox has no accidental duplicates, so skip them
        # (a deliberate duplicate is a test's business: add it with add_documents).
        while number in self._numbers_used:
            self._invoice_counter[supplier.reference] += 1
            number = f"{prefix}-{issued.year}-{self._invoice_counter[supplier.reference]:05d}"
        self._numbers_used.add(number)
        document["documentDate"] = issued.isoformat()
        document["documentNumber"] = number
        document["amountIncludingTaxes"] = self._amounts(supplier)
        document["accountingLabel"] = supplier.account
        document["dueDate"] = _due_date(issued, rng.choice((0, 30, 30, 45, 60))).isoformat()
        if rng.random() < 0.6:
            month = issued.strftime("%m/%Y")
            document["comment"] = f"{supplier.name} - {supplier.description} {month}"
        if rng.random() < 0.75:
            document["paymentDetails"] = {
                "paymentMethod": "BankTransfer",
                "bankAccount": {"iban": self._ibans[supplier.reference], "bic": rng.choice(BICS)},
            }

    def _amounts(self, supplier: Supplier) -> dict[str, Any]:
        """Consistent amounts: excluding + sum(taxes) == including, to the cent."""
        rng = self._rng
        low, high = supplier.scale
        taxes: list[dict[str, Any]] = []
        excluding = Decimal(0)
        for rate_text in supplier.rates or ("0",):
            base = Decimal(rng.randint(low, high)) / 100
            excluding += base
            rate = Decimal(rate_text)
            if rate:
                tax = (base * rate / 100).quantize(CENT, rounding=ROUND_HALF_UP)
                taxes.append({"rateTypeId": TAX_RATE_IDS[rate], **_money(tax, supplier.currency)})
        including = excluding + sum((Decimal(str(t["value"])) for t in taxes), Decimal(0))
        return {
            "excludingTaxes": _money(excluding, supplier.currency),
            "taxes": taxes,
            "includingTaxes": _money(including, supplier.currency),
            # Nested field no client model knows.
            "roundingMode": "HalfUp",
        }

    def _apply_category(self, document: dict[str, Any], category: str) -> None:
        """Turn a complete, consistent document into what its category says."""
        rng = self._rng
        if category == "ready_needs_label":
            variant = rng.random()
            if variant < 0.8:
                document["accountingLabel"] = None
            if variant >= 0.6:
                document["dueDate"] = None
        elif category == "incomplete":
            self._blank_something(document)
        elif category == "currency_invalid":
            amounts = document["amountIncludingTaxes"]
            for money in (amounts["excludingTaxes"], *amounts["taxes"], amounts["includingTaxes"]):
                money["currency"] = self._invalid_currency
        elif category == "amounts_mismatch":
            amounts = document["amountIncludingTaxes"]
            including = Decimal(str(amounts["includingTaxes"]["value"]))
            delta = Decimal(rng.randint(2, 5_000)) / 100
            shifted = including - delta if including > delta * 2 else including + delta
            amounts["includingTaxes"]["value"] = float(shifted)

    def _blank_something(self, document: dict[str, Any]) -> None:
        missing = self._rng.choice(
            ("documentNumber", "documentDate", "amounts", "includingTaxes", "several")
        )
        if missing in ("documentNumber", "several"):
            document["documentNumber"] = None
        if missing in ("documentDate", "several"):
            document["documentDate"] = None
        if missing == "amounts":
            document["amountIncludingTaxes"] = None
        if missing in ("includingTaxes", "several"):
            document["amountIncludingTaxes"]["includingTaxes"] = None

    def _workflow_hint(self, category: str, supplier: Supplier, finished: bool) -> dict[str, Any]:
        if not finished:
            return {"step": "waitingForOcr", "suggestedAccount": None, "confidence": None}
        confidence = round(self._rng.uniform(0.55, 0.99), 2)
        step = "toBook" if category in ("ready", "credit_note", "book_rejected") else "toReview"
        return {"step": step, "suggestedAccount": supplier.account, "confidence": confidence}


def _money(value: Decimal, currency: str) -> dict[str, Any]:
    # float() of a two-decimal Decimal prints back as the same two decimals in JSON.
    return {"value": float(value), "currency": currency}


def _due_date(issued: date, days: int) -> date:
    return issued + timedelta(days=days)


def _iban(rng: random.Random) -> str:
    """A French IBAN with valid check digits (bank, branch, account, RIB key)."""
    bban = f"{rng.randint(10000, 39999)}{rng.randint(0, 99999):05d}"
    bban += f"{rng.randint(0, 10**11 - 1):011d}{rng.randint(1, 97):02d}"
    # ISO 13616: move "FR00" to the end, letters to numbers (F=15, R=27), 98 - (n mod 97).
    check = 98 - int(f"{bban}152700") % 97
    return f"FR{check:02d}{bban}"
