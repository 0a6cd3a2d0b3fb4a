"""Reconciliation: what the listing says against what the ledger says, noted as discrepancies."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from botocore.exceptions import ClientError

from ..ledger import ClaimResult, Markers, Status
from ..listing import ListedDocument
from ..observability import logger
from .report import PollReport

#: Reason codes of a discrepancy (``"<code>: <words>"``, as hold reasons are written).
BOOKED_STILL_LISTED = "booked_still_in_inbox"
UNKNOWN_TO_LEDGER = "unknown_to_ledger"


@dataclass
class Reconciliation:
    """The checks a claim makes of what the ledger says of a listed document; made for one run
    (it reads the last complete listing's start at most once)."""

    markers: Markers
    #: The ledger's name for this listing (``InboxPoller.listing_name``).
    listing_name: str
    #: How old a booking must be before its document still listed is a discrepancy.
    booked_grace_seconds: float
    discrepancy_ttl_seconds: int
    _complete_since: str | None = field(default=None, init=False, repr=False)
    _complete_read: bool = field(default=False, init=False, repr=False)

    def check_refused(
        self, document_id: int, claim: ClaimResult, now: float, report: PollReport
    ) -> float:
        """A document the ledger says is booked is still listed: Lucca did not book it (or
        undid it). Returns until when the refusal is remembered: a booking within the grace is
        asked about again once the grace is over, not only after a cold start."""
        if claim.previous is not Status.BOOKED or not claim.updated_at:
            return claim.retry_after
        booked = datetime.fromisoformat(claim.updated_at).timestamp()
        if now - booked < self.booked_grace_seconds:
            return min(claim.retry_after, booked + self.booked_grace_seconds)
        reason = (
            f"{BOOKED_STILL_LISTED}: booked by the booker at {claim.updated_at}, "
            "still in the inbox in Lucca"
        )
        self._note(document_id, reason, report)
        return claim.retry_after

    def check_new(self, listed: ListedDocument, report: PollReport) -> None:
        """A document claimed for the first time although it was in the inbox when a listing
        that saw the whole inbox started: the ledger lost it (or never recorded it)."""
        created = created_at(listed)
        if created is None:
            return
        since = self._last_complete_listing()
        if since is None or created >= datetime.fromisoformat(since):
            return
        reason = (
            f"{UNKNOWN_TO_LEDGER}: in the inbox since {created.isoformat()}, unknown to the ledger"
        )
        self._note(listed.document_id, reason, report)

    def _last_complete_listing(self) -> str | None:
        """Read once a run, and only when a new document needs it (most runs claim none). A
        failed read (a policy without GetItem) costs the check, never the poll."""
        if not self._complete_read:
            self._complete_read = True
            try:
                self._complete_since = self.markers.last_complete_listing(self.listing_name)
            except ClientError:
                logger.warning("last complete listing not read", exc_info=True)
                self._complete_since = None
        return self._complete_since

    def _note(self, document_id: int, reason: str, report: PollReport) -> None:
        """Record a discrepancy once; a failed write is logged, not allowed to stop queueing."""
        try:
            new = self.markers.record_discrepancy(
                document_id, reason, ttl_seconds=self.discrepancy_ttl_seconds
            )
        except ClientError:
            logger.warning("discrepancy not recorded", exc_info=True, extra={"reason": reason})
            return
        if new:
            report.discrepancies.append(document_id)


def created_at(listed: ListedDocument) -> datetime | None:
    """When the document entered the inbox: the item's stamp, else the document's."""
    if listed.item is None:
        return None
    created = listed.item.createdAt or listed.item.document.createdAt
    if created is not None and created.tzinfo is None:
        created = created.replace(tzinfo=UTC)  # Lucca writes offsets; a bare one reads as UTC
    return created
