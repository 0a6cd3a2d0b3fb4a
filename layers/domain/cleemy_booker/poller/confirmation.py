"""What a listing of the whole inbox proves: the bookings the processor could not prove,
settled by their absence from it, and the listing's start recorded for the next runs' checks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from ..clock import utc_iso
from ..ledger import DocumentState, DocumentStates, LedgerQueries
from ..listing import INBOX_ENDS, ListingStats
from ..observability import logger
from .report import PollReport


@dataclass
class Confirmation:
    """Bookings a call of ours may have made unseen, recorded booked once a listing of the
    whole inbox at once no longer shows them."""

    states: DocumentStates
    queries: LedgerQueries
    filters: Mapping[str, str]
    dry_run: bool

    def one_snapshot(self, report: PollReport, stats: ListingStats) -> bool:
        """This run's listing showed the whole inbox in one answer, so a document it did not
        show was not in the inbox when that answer was made.

        One page: the count and the items came from one request (the count on page 1 is the
        inferred ``fields.root=count``); across pages the order is unknown and documents come
        and go between requests, so a document can be skipped (and a newcomer make up the
        count) while it stays in the inbox. No filters: a document a filtered listing does not
        show may merely no longer match them. Every item read, each with a usable id.
        """
        return (
            not self.dry_run
            and not self.filters
            and stats.pages == 1
            and stats.stopped_because in INBOX_ENDS
            and stats.count is not None
            and report.listed >= stats.count
            and not stats.unusable
        )

    def confirm_bookings(self, seen: set[int], started: float, report: PollReport) -> None:
        """Record as booked each document a booking call of ours may have booked unseen
        (``BOOKING``, or held ``book_uncertain``) that this whole-inbox listing no longer
        shows, if it was so before the listing began. One still listed stays as it is: in
        flight, or for a person. No Lucca request: the listing was made anyway.

        What the absence proves: the document left the inbox after our booking call. A
        person deleting it in between looks the same; Lucca publishes no way to tell (how an
        inbox id maps to a booked document's is not published). An inbox of more than one page
        never gives this proof: ``settling`` looks for the booking itself then.
        """
        try:
            candidates = self.queries.uncertain_bookings()
        except ClientError:
            logger.warning("uncertain bookings not read", exc_info=True)
            return
        since = utc_iso(started)
        for state in candidates:
            if state.document_id in seen or not _before(state, started):
                continue
            detail = {
                "confirmedBy": (
                    "left the inbox after our booking call: absent from a listing of the whole "
                    f"inbox started at {since}"
                ),
                "was": state.status.value,
                "wasReasons": list(state.reasons),
            }
            if record_confirmed(self.states, state, detail, report):
                logger.info(
                    "booking confirmed by the listing",
                    extra={"documentId": state.document_id, "was": state.status.value},
                )


def record_confirmed(
    states: DocumentStates, state: DocumentState, detail: dict[str, Any], report: PollReport
) -> bool:
    """Record a possible booking as booked on the evidence ``detail`` names, if its state is
    still the one read; True when it was (the run's report counts it). A ledger that cannot be
    written to now leaves it for the next run."""
    try:
        confirmed = states.confirm_booked(state, detail=detail)
    except ClientError:
        logger.warning("booking not confirmed", exc_info=True)
        return False
    if confirmed:
        report.confirmed.append(state.document_id)
    return confirmed


def saw_whole_inbox(report: PollReport, stats: ListingStats) -> bool:
    """The listing reached the end of the inbox on its own (no queue target, time, budget or
    failure stopped it), found as many documents as Lucca counted (a page shifted by a document
    booked meanwhile hides one: then it did not see everything), and left none of them
    unclaimed (a message not sent gives its claim back)."""
    return (
        stats.stopped_because in INBOX_ENDS
        and stats.count is not None
        and report.listed >= stats.count
        and report.send_failed == 0
    )


def _before(state: DocumentState, started: float) -> bool:
    """The state was written before the listing began (a state with no stamp is not)."""
    if not state.updated_at:
        return False
    return datetime.fromisoformat(state.updated_at).timestamp() < started
