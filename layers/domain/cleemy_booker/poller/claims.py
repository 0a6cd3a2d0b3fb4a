"""A listed document's claim for the queue, the message it is queued as, and the claim given
back when its message is not sent."""

from __future__ import annotations

from datetime import UTC, datetime

from ..listing import ListedDocument
from ..models import DocumentMessage
from .reconciliation import Reconciliation
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


class Claims(Reconciliation):
    """One claim per listed document, each remembered until its message is sent or not."""

    def _claim(
        self, listed: ListedDocument, report: PollReport, pending: list[tuple[int, str]]
    ) -> int:
        """Claim one listed document for the queue; 1 if it is to be sent."""
        modified = listed.item.changed_at if listed.item else None
        modified_at = modified.isoformat() if modified else ""
        now = self.clock()
        if self.refused.still_refused(listed.document_id, modified_at, now):
            report.known += 1
            return 0
        claim = self.ledger.claim_for_queue(
            listed.document_id,
            modified_at,
            now=now,
            ttl_seconds=self.claim_ttl_seconds,
            dry_run=self.dry_run,
            config=self.config,
        )
        if not claim.claimed:
            report.skipped[(claim.previous or "unknown").lower()] += 1
            until = self._check_refused(listed.document_id, claim, now, report)
            self.refused.remember(listed.document_id, modified_at, until)
            return 0
        if claim.new:
            self._check_new(listed, report)
        self._claimed_from[listed.document_id] = claim.before
        listed_at = datetime.fromtimestamp(now, UTC)
        pending.append((listed.document_id, message_for(listed, listed_at)))
        return 1

    def _release(self, document_id: int) -> None:
        self.ledger.release_claim(document_id, self._claimed_from.pop(document_id, None))
