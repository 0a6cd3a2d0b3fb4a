"""The ledger: per document, where it stands and every decision taken about it, in one
DynamoDB table (its items: ``items``).

``records``: the values it records and answers; ``items``: their keys and state items;
``table.LedgerTable``: the one wrapper over the table; one store per aggregate over it
(``states.DocumentStates``: claims for the queue and the state each decision writes;
``queries.LedgerQueries``; ``numbers.InvoiceNumbers``: invoice-number claims;
``markers.Markers``: forward-only marks and discrepancies; ``leases.Leases``;
``snapshots.Snapshots``: what an instance remembers, kept for the next one);
``stores.Ledger``: the stores, made together over one client.
"""

from __future__ import annotations

from .items import STATUS_INDEX
from .leases import Leases
from .markers import Markers
from .numbers import InvoiceNumbers

# Read by ``LedgerQueries.count_in_status`` from its own module: patch it there.
from .queries import COUNT_MAX_PAGES, LedgerQueries
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
from .snapshots import Snapshots
from .states import DocumentStates
from .stores import Ledger
from .table import LedgerTable

__all__ = [
    "BOOK_UNCERTAIN",
    "COUNT_MAX_PAGES",
    "STATUS_INDEX",
    "SUMMARY_TEXT_MAX",
    "TOUCHED",
    "BookingTrail",
    "ClaimResult",
    "DocumentState",
    "DocumentStates",
    "DocumentSummary",
    "InvoiceNumbers",
    "LeaseResult",
    "Leases",
    "Ledger",
    "LedgerEvent",
    "LedgerQueries",
    "LedgerTable",
    "Markers",
    "Snapshots",
    "Status",
    "booking_trail",
]
