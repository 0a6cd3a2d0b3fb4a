"""The ``Ledger``: one object over the ledger table, made of one part per concern."""

from __future__ import annotations

from .leases import Leases
from .markers import Markers
from .numbers import NumberClaims
from .queries import Queries
from .states import States


class Ledger(States, Queries, NumberClaims, Markers, Leases):
    """Reads and writes the ledger table; takes its DynamoDB client as an argument
    (``LedgerBase``: the client, the table, the retention of the trail, the clock)."""
