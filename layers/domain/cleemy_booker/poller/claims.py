"""A listed document's claim for the queue, the message it is queued as, and the claim given
back when its message is not sent."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..ledger import ClaimResult, DocumentStates, Status
from ..listing import ListedDocument
from ..models import OCR_PENDING, OCR_PROCESSING, DocumentMessage
from .reconciliation import Reconciliation, created_at
from .refused import RefusedClaims
from .report import PollReport

#: A message over this is sent as its id alone (its item is then fetched by the processor).
MAX_BODY_BYTES = 200_000
#: A document whose OCR is still running (Lucca reads it 1-5 minutes after it arrives) is
#: listed again five minutes later with its data: claiming it now would cost a claim, a
#: message and a hold on data about to change, and the processor would decide on a copy the
#: next listing already supersedes. Past this age it is claimed all the same, so an OCR that
#: never finishes is held with its reason where a person sees it (the gate holds it: the
#: deployed gate requires OCR finished).
OCR_WAIT_SECONDS = 1800
OCR_RUNNING = frozenset({OCR_PENDING, OCR_PROCESSING})


def message_for(listed: ListedDocument, listed_at: datetime) -> str:
    """The queue message: the id, plus the item as listed when it parsed and fits."""
    if listed.item is None:
        return DocumentMessage(documentId=listed.document_id).model_dump_json()
    body = DocumentMessage(
        documentId=listed.document_id, item=listed.item, listedAt=listed_at
    ).model_dump_json(exclude_none=False)
    if len(body.encode()) > MAX_BODY_BYTES:
        return DocumentMessage(documentId=listed.document_id).model_dump_json()
    return body


@dataclass
class Claims:
    """One claim per listed document, each remembered until its message is sent or not; made
    for one run (the states it replaced are this run's)."""

    states: DocumentStates
    reconciliation: Reconciliation
    refused: RefusedClaims
    clock: Callable[[], float]
    claim_ttl_seconds: int
    dry_run: bool
    #: The configuration holds were decided under (see ``fingerprint``).
    config: str
    #: How long a document whose OCR is running is left unclaimed.
    ocr_wait_seconds: float = OCR_WAIT_SECONDS
    #: When each document left unclaimed for its OCR entered the inbox: a listing that skipped
    #: one did not make the ledger know it (see ``known_before``).
    waited_for_ocr: list[datetime] = field(default_factory=list)
    #: This run's claims: each document's state as it was, put back if its message is not sent.
    _claimed_from: dict[int, dict[str, Any]] = field(default_factory=dict, init=False, repr=False)

    def claim(
        self, listed: ListedDocument, report: PollReport, pending: list[tuple[int, str]]
    ) -> int:
        """Claim one listed document for the queue; 1 if it is to be sent."""
        modified = listed.item.changed_at if listed.item else None
        modified_at = modified.isoformat() if modified else ""
        now = self.clock()
        if self._reading_in_progress(listed, now):
            report.skipped["ocr_running"] += 1
            self.waited_for_ocr.append(created_at(listed) or datetime.fromtimestamp(now, UTC))
            return 0
        if self.refused.still_refused(listed.document_id, modified_at, now):
            report.known += 1
            return 0
        claim = self.states.claim_for_queue(
            listed.document_id,
            modified_at,
            now=now,
            ttl_seconds=self.claim_ttl_seconds,
            dry_run=self.dry_run,
            config=self.config,
        )
        if not claim.claimed:
            report.skipped[(claim.previous or "unknown").lower()] += 1
            self._note_listed_newer(listed.document_id, modified_at, claim, report)
            until = self.reconciliation.check_refused(listed.document_id, claim, now, report)
            self.refused.remember(listed.document_id, modified_at, until)
            return 0
        if claim.new:
            self.reconciliation.check_new(listed, report)
        self._claimed_from[listed.document_id] = claim.before
        listed_at = datetime.fromtimestamp(now, UTC)
        pending.append((listed.document_id, message_for(listed, listed_at)))
        return 1

    def _reading_in_progress(self, listed: ListedDocument, now: float) -> bool:
        """Lucca is still reading the document (OCR pending or processing), and it arrived
        less than ``ocr_wait_seconds`` ago."""
        if listed.item is None or listed.item.document.ocrStatus not in OCR_RUNNING:
            return False
        created = created_at(listed)
        return created is not None and now - created.timestamp() < self.ocr_wait_seconds

    def known_before(self, started: float) -> float:
        """Up to when every listed document is known to the ledger: the run's start, or just
        before the first document it left unclaimed for its OCR."""
        if not self.waited_for_ocr:
            return started
        return min(started, min(at.timestamp() for at in self.waited_for_ocr) - 1e-6)

    def _note_listed_newer(
        self, document_id: int, modified_at: str, claim: ClaimResult, report: PollReport
    ) -> None:
        """Queued on one version, listed now on a later one: the message on its way carries a
        copy the processor must not decide on (an OCR that finished since would be held as
        pending, a person's edit booked unseen). Told once per version; the refusal is then
        remembered as any other."""
        if claim.previous is not Status.QUEUED or not modified_at or self.dry_run:
            return
        if claim.modified_at == modified_at:
            return
        if self.states.note_listed_newer(document_id, modified_at):
            report.listed_newer += 1

    def release(self, document_id: int) -> None:
        self.states.release_claim(document_id, self._claimed_from.pop(document_id, None))
