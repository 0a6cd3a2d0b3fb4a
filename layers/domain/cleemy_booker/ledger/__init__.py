"""The ledger: per document, where it stands and every decision taken about it, in one
DynamoDB table (its items: ``items``).

``records``: the values it records and answers; ``items``: their keys and state items;
``table.Ledger``: the table's reader and writer, one part per concern (``states``: claims for
the queue and the state each decision writes; ``queries``; ``numbers``: invoice-number claims;
``markers``: forward-only marks and discrepancies; ``leases``), over ``base.LedgerBase``.
"""

from __future__ import annotations

from .items import STATUS_INDEX

# Read by ``Queries.count_in_status`` from its own module: patch it there.
from .queries import COUNT_MAX_PAGES
from .records import (
    BOOK_UNCERTAIN,
    SUMMARY_TEXT_MAX,
    TOUCHED,
    BookingTrail,
    ClaimResult,
    DocumentState,
    DocumentSummary,
    LeaseResult,
    LedgerEvent,
    Status,
    booking_trail,
)
from .table import Ledger

__all__ = [
    "BOOK_UNCERTAIN",
    "COUNT_MAX_PAGES",
    "STATUS_INDEX",
    "SUMMARY_TEXT_MAX",
    "TOUCHED",
    "BookingTrail",
    "ClaimResult",
    "DocumentState",
    "DocumentSummary",
    "LeaseResult",
    "Ledger",
    "LedgerEvent",
    "Status",
    "booking_trail",
]
