"""The digest's side of the ledger: ``gather`` reads what it tells (DynamoDB only: no Lucca
request), ``mark_published`` records that it went out, so the next one tells what happened
since."""

from __future__ import annotations

from collections.abc import Sequence

from ..clock import utc_iso
from ..ledger import DocumentState, Ledger, Status
from .data import BookedDocument, DigestData

#: The ledger item ``digest#daily`` remembers up to when the last digest reported.
DIGEST_NAME = "daily"
#: With no digest before it, the first one looks back this far.
FIRST_WINDOW_SECONDS = 86400
#: The period ends this long before ``now``: the status index is eventually consistent, and a
#: document booked a moment ago and not yet in the index must fall into the next period, not
#: between two.
SETTLE_SECONDS = 300
#: The booked documents whose trail is read (one query each) to count the rules that updated
#: them: the latest ones. A digest after weeks of silence stays a few seconds of reads.
MAX_TRAILS = 1000


def gather(
    ledger: Ledger,
    *,
    now: float,
    name: str = DIGEST_NAME,
    first_window_seconds: float = FIRST_WINDOW_SECONDS,
    settle_seconds: float = SETTLE_SECONDS,
    max_trails: int = MAX_TRAILS,
) -> DigestData:
    """Everything the digest tells, from the ledger: the held documents (all of them: they
    need a person however old), the failed, the booked and the gone ones since the last
    digest, and the oldest queued document. Reads only; queries, no scans."""
    until = utc_iso(now - settle_seconds)
    since = ledger.markers.digest_published_until(name) or utc_iso(
        now - settle_seconds - first_window_seconds
    )
    booked = ledger.queries.in_status_between(Status.BOOKED, since, until)
    oldest = ledger.queries.oldest_in_status(Status.QUEUED)
    return DigestData(
        at=utc_iso(now),
        since=since,
        until=until,
        held=tuple(ledger.queries.in_status(Status.HELD)),
        failed=tuple(ledger.queries.in_status_between(Status.FAILED, since, until)),
        booked=_with_trails(ledger, booked, max_trails),
        oldest_queued_since=oldest.updated_at if oldest is not None else None,
        discrepancies=tuple(ledger.queries.in_status(Status.DISCREPANCY)),
        novelties=tuple(n for n in ledger.queries.novelties(since) if n.first_seen < until),
        gone=tuple(ledger.queries.in_status_between(Status.GONE, since, until)),
    )


def _with_trails(
    ledger: Ledger, booked: Sequence[DocumentState], max_trails: int
) -> tuple[BookedDocument, ...]:
    """The latest ``max_trails`` booked documents with their trail; older ones without."""
    first_read = max(0, len(booked) - max_trails)  # ``booked`` is oldest first
    return tuple(
        BookedDocument(
            state,
            ledger.queries.trail_of_booking(state.document_id, state) if n >= first_read else None,
        )
        for n, state in enumerate(booked)
    )


def mark_published(ledger: Ledger, data: DigestData, name: str = DIGEST_NAME) -> bool:
    """The digest of ``data`` went out (or had nothing to say): the next one starts at its
    end. False if a digest had already reported that far (a repeated run)."""
    return ledger.markers.mark_digest_published(name, data.until)
