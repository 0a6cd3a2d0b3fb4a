"""Whether a document Lucca no longer has is a person's doing or a fault.

A person deletes a document, or books it by hand, between our listing and our booking: Lucca
answers 404 and the document is recorded gone (``Booking.not_in_inbox``), nobody's fault. A
wrong route, tenant or key answers 404 to every document just as well: then documents keep
going while nothing is booked. Such a run is a fault a person must hear of: its documents go
to the dead-letter queue, whose alarms page someone, and are replayed once it is fixed. The
ledger tells the two apart (two small reads of its status index, on the rare 404 only): no new
metric or alarm to pay for.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from ..clock import utc_iso
from ..ledger import Status

#: Documents gone within ``GONE_RUN_SECONDS``, this one included, with not one booked: a run.
#: A person's moves land in the minute or so between a listing and its booking, one document
#: at a time among many booked; five in an hour with none booked is not people at work.
GONE_RUN = 5
#: The window a run is counted over: an hour of 5-minute polls, long enough that an hour with
#: documents arriving books at least one of them when the routes are right.
GONE_RUN_SECONDS = 3600.0


class RecentStatuses(Protocol):
    """The ledger query the check needs (``LedgerQueries.count_since``)."""

    def count_since(self, status: Status, since: str, at_most: int) -> int: ...


@dataclass
class GoneRuns:
    """Tells a run of 404s with nothing booked (a fault) from a person's few moves."""

    queries: RecentStatuses
    clock: Callable[[], float]
    threshold: int = GONE_RUN
    window_seconds: float = GONE_RUN_SECONDS

    def in_a_run(self) -> bool:
        """This document and those recorded gone in the window make ``threshold`` or more,
        and nothing was booked in it."""
        since = utc_iso(self.clock() - self.window_seconds)
        if self.queries.count_since(Status.BOOKED, since, 1):
            return False
        before = self.threshold - 1
        return self.queries.count_since(Status.GONE, since, before) >= before

    def describe(self) -> str:
        return (
            f"{self.threshold} or more documents answered 404 in {self.window_seconds / 60:.0f}"
            " minutes and none was booked: a wrong route, tenant or key, not a person's doing"
        )
