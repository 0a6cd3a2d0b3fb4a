"""A listed document's claim for the queue, the message it is queued as, and the claim given
back when its message is not sent."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..ledger import DocumentStates
from ..listing import ListedDocument
from ..models import DocumentMessage
from .reconciliation import Reconciliation
from .refused import RefusedClaims
from .report import PollReport

#: A message over this is sent as its id alone (its item is then fetched by the processor).
MAX_BODY_BYTES = 200_000


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
    #: This run's claims: each document's state as it was, put back if its message is not sent.
    _claimed_from: dict[int, dict[str, Any]] = field(default_factory=dict, init=False, repr=False)

    def claim(
        self, listed: ListedDocument, report: PollReport, pending: list[tuple[int, str]]
    ) -> int:
        """Claim one listed document for the queue; 1 if it is to be sent."""
        modified = listed.item.changed_at if listed.item else None
        modified_at = modified.isoformat() if modified else ""
        now = self.clock()
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
            until = self.reconciliation.check_refused(listed.document_id, claim, now, report)
            self.refused.remember(listed.document_id, modified_at, until)
            return 0
        if claim.new:
            self.reconciliation.check_new(listed, report)
        self._claimed_from[listed.document_id] = claim.before
        listed_at = datetime.fromtimestamp(now, UTC)
        pending.append((listed.document_id, message_for(listed, listed_at)))
        return 1

    def release(self, document_id: int) -> None:
        self.states.release_claim(document_id, self._claimed_from.pop(document_id, None))
