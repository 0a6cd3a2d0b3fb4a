"""What one digest is made of: the ledger's side (``DigestData``), the figures only whoever
sends it knows (``Health``), and the message itself (``Digest``). Plain data, so composing the
text needs neither AWS nor the ledger."""

from __future__ import annotations

from dataclasses import dataclass

from ..ledger import BookingTrail, DocumentState
from ..novelty import Novelty


@dataclass(frozen=True)
class BookedDocument:
    state: DocumentState
    #: How it was booked (the rules that updated it); None: its trail was not read.
    trail: BookingTrail | None = None


@dataclass(frozen=True)
class DigestData:
    """What the ledger says for one digest. ``since``/``until``: the period, ledger stamps
    (``clock.utc_iso``), ``until`` excluded; ``at``: when it was gathered."""

    at: str
    since: str
    until: str
    held: tuple[DocumentState, ...] = ()
    #: Failed (and so dead-lettered) in the period, still failed.
    failed: tuple[DocumentState, ...] = ()
    booked: tuple[BookedDocument, ...] = ()
    #: When the document queued the longest was claimed for the queue (None: none queued).
    oldest_queued_since: str | None = None
    #: Open discrepancies (``recon#`` items): the ledger and Lucca disagree about these.
    discrepancies: tuple[DocumentState, ...] = ()
    #: What Lucca sent that is new, first seen in the period (``novelty#`` items).
    novelties: tuple[Novelty, ...] = ()
    #: Gone from the inbox in the period before the booker booked them (deleted or booked by
    #: a person), still gone.
    gone: tuple[DocumentState, ...] = ()


@dataclass(frozen=True)
class Health:
    """Figures the ledger does not hold, for the period, from whoever sends the digest (None:
    not known, and said so)."""

    #: Lucca requests the pipeline sent (the ``LuccaRequests`` metric, summed).
    requests: int | None = None
    #: Requests the budget allowed in the same time (limit per window x windows).
    budget: int | None = None
    #: Lucca's 429 answers (the ``LuccaThrottled`` metric, summed).
    throttled: int | None = None
    #: Messages in the dead-letter queue now, those the ledger cannot name included (an
    #: unreadable message, one SQS moved there itself).
    dead_letters: int | None = None


@dataclass(frozen=True)
class Digest:
    subject: str
    text: str
