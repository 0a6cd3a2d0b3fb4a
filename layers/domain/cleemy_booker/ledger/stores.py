"""The ``Ledger``: the ledger table's stores, one per aggregate, over one ``LedgerTable``."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from .leases import Leases
from .markers import Markers
from .numbers import InvoiceNumbers
from .queries import LedgerQueries
from .snapshots import Snapshots
from .states import DocumentStates
from .table import RETENTION_DAYS, LedgerTable

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient


class Ledger:
    """The ledger table's stores, made once over one client: each part of the domain is handed
    the stores it uses (the poller's claims ``states``; the processor's booking ``states`` and
    ``numbers``, and ``queries`` for a run of documents gone; the digest ``queries`` and
    ``markers``; the poller's lease ``leases`` and its remembered refusals ``snapshots``)."""

    def __init__(
        self,
        dynamodb: DynamoDBClient,
        table: str,
        *,
        retention_days: int = RETENTION_DAYS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db = LedgerTable(dynamodb, table, retention_days=retention_days, clock=clock)
        #: Each document's state and its trail of events: claims, decisions, confirmations.
        self.states = DocumentStates(self.db)
        #: The audit's reads: a document's trail, the documents in a status.
        self.queries = LedgerQueries(self.db)
        #: Invoice numbers claimed by the document about to be booked.
        self.numbers = InvoiceNumbers(self.db)
        #: Forward-only marks (digest, complete listing) and the reconciliation's discrepancies.
        self.markers = Markers(self.db)
        #: Who may run alone (one poller at a time).
        self.leases = Leases(self.db)
        #: What an instance remembers, kept for the next one (the poller's refused claims).
        self.snapshots = Snapshots(self.db)

    @property
    def table(self) -> str:
        """The table's name (what the operator's tools are given)."""
        return self.db.name
