"""Inbox items as Lucca sends them, for tests that do not need the simulator; example rules;
a document's summary as the ledger keeps it."""

from __future__ import annotations

import copy
import dataclasses
from decimal import Decimal
from pathlib import Path
from typing import Any

from cleemy_booker.ledger import DocumentSummary
from cleemy_booker.rules import RuleSet

#: The two rules the package once applied by default (a label from the invoice number, a due
#: date 30 days after the invoice date), now an example to opt into: tests that need documents
#: updated say so by using them.
EXAMPLE_RULES_FILE = Path(__file__).resolve().parent.parent / "config/rules.label-and-due-date.json"


def example_rules() -> RuleSet:
    return RuleSet.from_file(EXAMPLE_RULES_FILE)


BASE_ITEM: dict[str, Any] = {
    "id": 501,
    "document": {
        "id": 501,
        "owner": {
            "id": 7,
            "href": "/api/v3/users/7",
            "name": "Ada Martin",
            "firstName": "Ada",
            "lastName": "Martin",
            "pictureHref": None,
        },
        "type": "Invoice",
        "context": {
            "purchase": {"id": 90, "href": "/purchases/90", "name": "Paper", "type": "Subscription"}
        },
        "documentBreakdown": {"id": 3, "href": "/breakdowns/3", "name": "Default"},
        "documentDate": "2026-10-02",
        "documentNumber": "F-2026-00123",
        "amountIncludingTaxes": {
            "excludingTaxes": {"value": 100.0, "currency": "EUR"},
            "taxes": [{"rateTypeId": 1, "value": 20.0, "currency": "EUR"}],
            "includingTaxes": {"value": 120.0, "currency": "EUR"},
            "roundingMode": "HalfUp",
        },
        "accountingLabel": None,
        "comment": "Papeterie Dupont",
        "intraCommunityTaxes": False,
        "attachments": [
            {
                "id": 1,
                "file": {
                    "id": "7b0c1c5e-2f1e-4bb8-9a51-0c3f1d3e9b11",
                    "href": "/files/1",
                    "name": "f.pdf",
                    "displayHref": "/files/1/display",
                },
                "createdAt": "2026-10-02T09:00:00.0000000+02:00",
                "pages": {"displayHrefTemplate": "/p/{page}", "count": 1},
            }
        ],
        "ocrStatus": "Processed",
        "dueDate": None,
        "paymentDetails": {
            "paymentMethod": "BankTransfer",
            "bankAccount": {"iban": "FR7630006000011234567890189", "bic": "AGRIFRPP"},
        },
        "createdAt": "2026-10-02T09:00:00.1234567+02:00",
        "modifiedAt": "2026-10-03T10:00:00.1234567+02:00",
        "author": {"id": 7},
        "modifier": {"id": 7},
        "supplierReference": "SUP-88",
        "costCenterCode": "CC-7",
    },
    "source": {"type": "email"},
    "action": {},
    "createdAt": "2026-10-02T09:00:00.1234567+02:00",
    "modifiedAt": "2026-10-03T10:00:00.1234567+02:00",
    "author": {"id": 7},
    "modifier": {"id": 7},
    "workflowHint": {"step": 1},
}


#: The duplicate-number scope of every factory item: each is attached to purchase 90.
SCOPE = "purchase:90"
#: Labelled and due already: booked as it is, without a PUT, under the packaged rules and the
#: example ones.
COMPLETE = {"accountingLabel": "Paper", "dueDate": "2026-11-01"}


def raw_item(document_id: int = 501, **document_changes: Any) -> dict[str, Any]:
    """A raw inbox item; keyword arguments replace fields of ``document``."""
    item = copy.deepcopy(BASE_ITEM)
    item["id"] = document_id
    item["document"]["id"] = document_id
    item["document"].update(document_changes)
    return item


#: An invoice of 1,000 EUR plus 234.50 EUR of taxes, every field of its summary filled in.
INVOICE_SUMMARY = DocumentSummary(
    document_number="F-2026-001",
    type="Invoice",
    owner_id=7,
    owner_name="Ada Martin",
    excluding_taxes=Decimal("1000"),
    taxes=Decimal("234.5"),
    including_taxes=Decimal("1234.50"),
    currency="EUR",
    document_date="2026-03-01",
)


def document_summary(**changes: Any) -> DocumentSummary:
    """``INVOICE_SUMMARY``, keyword arguments replacing its fields."""
    return dataclasses.replace(INVOICE_SUMMARY, **changes)
