"""Processing one document: decide, update when something changed, book — exactly once.

Outcomes, each recorded in the ledger:

* **booked** — updated if the rules changed something, then booked;
* **held** — the review gate (or a rule) says a person must look; nothing is touched in Lucca;
* **failed** — a permanent error: the message goes to the dead-letter queue with its reason;
* retryable trouble raises ``RetryableError`` so SQS delivers the message again;
* a busy request budget raises ``DeferDocument``: the message is handed back with a delay and is
  never counted as a failure.

Exactly once: the ledger says ``BOOKING`` before the book call. If that call's answer is lost
(dropped connection, timeout, crash) and a later attempt finds the document gone from the inbox,
our own earlier call booked it, and it is recorded as booked, not booked again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from .budget import BudgetBusy
from .client import LuccaClient
from .errors import NotFoundError, PermanentError
from .gate import GateConfig, HoldReason, duplicate_number, duplicate_scope, review
from .ledger import TOUCHED, DocumentState, Ledger, Status
from .models import DocumentMessage, InboxItem
from .rules import RuleSet, RulesOutcome

Outcome = Literal["booked", "already_booked", "held", "dry_run"]


class DeferDocument(Exception):
    """Not now: hand the message back to the queue with a delay (budget busy, time short)."""

    def __init__(self, reason: str, delay_seconds: float) -> None:
        self.reason = reason
        self.delay_seconds = delay_seconds
        super().__init__(f"deferred for {delay_seconds:.0f}s: {reason}")


class DocumentFailed(Exception):
    """A permanent failure for this document: it goes to the dead-letter queue with ``reason``."""

    def __init__(self, document_id: int, reason: str, error_type: str) -> None:
        self.document_id = document_id
        self.reason = reason
        self.error_type = error_type
        super().__init__(f"document {document_id}: {reason}")


@dataclass(frozen=True)
class ProcessResult:
    document_id: int
    outcome: Outcome
    reasons: tuple[str, ...] = ()
    updated: bool = False
    requests: int = 0
    request_ids: tuple[str, ...] = ()


@dataclass
class DocumentProcessor:
    """The domain side of the consumer Lambda; every collaborator is passed in."""

    client: LuccaClient
    ledger: Ledger
    rules: RuleSet
    gate: GateConfig
    listing_fresh_seconds: float = 900.0
    dry_run: bool = False
    clock: Callable[[], float] = time.time
    #: A hold is looked at again after this long, and once the configuration changes.
    held_recheck_seconds: float = 21600.0
    #: The configuration decisions are taken under (``fingerprint.config_version``).
    config: str = ""
    _request_ids_seen: int = field(default=0, init=False)

    def process(self, message: DocumentMessage) -> ProcessResult:
        document_id = message.documentId
        sent_before = sum(self.client.requests_sent.values())
        self._request_ids_seen = len(self.client.request_ids)
        state = self.ledger.state(document_id)
        if state is not None and state.status is Status.BOOKED:
            return ProcessResult(document_id, "already_booked")
        try:
            result = self._process(message, state)
        except BudgetBusy as busy:
            raise DeferDocument("request budget busy", busy.wait) from None
        except NotFoundError as error:
            result = self._not_in_inbox(document_id, state, str(error))
        except PermanentError as error:
            reason = str(error)
            self.ledger.record(
                document_id,
                Status.FAILED,
                "failed",
                reasons=[reason],
                detail={"errorType": type(error).__name__, "requestIds": self._new_request_ids()},
            )
            raise DocumentFailed(document_id, reason, type(error).__name__) from error
        spent = sum(self.client.requests_sent.values()) - sent_before
        return replace(result, requests=spent, request_ids=tuple(self._new_request_ids()))

    # --- steps -------------------------------------------------------------------------------

    def _process(self, message: DocumentMessage, state: DocumentState | None) -> ProcessResult:
        item = self._current_item(message, state)
        outcome = self.rules.apply(item)
        today = datetime.fromtimestamp(self.clock(), UTC).date()
        reasons = review(item, outcome, self.gate, self.ledger, today=today)
        modified_at = _modified_at(item)
        if reasons:
            return self._hold(item, outcome, reasons, modified_at)
        if self.dry_run:
            self.ledger.record(
                item.document_id,
                Status.PLANNED,
                "dry_run",
                modified_at=modified_at,
                reasons=["dry run: would book"],
                detail=_decision_detail(outcome),
            )
            return ProcessResult(item.document_id, "dry_run", ("dry run: would book",))
        duplicate = self._claim_number(item, outcome)
        if duplicate is not None:
            return self._hold(item, outcome, [duplicate], modified_at)
        try:
            if outcome.changed:
                item = self._update(item, outcome)
                modified_at = _modified_at(item)
            self._book(item.document_id, state, modified_at, outcome)
        except PermanentError:
            # Not booked after all: the number must not block the document that replaces it.
            self._release_number(item, outcome)
            raise
        return ProcessResult(item.document_id, "booked", updated=outcome.changed)

    def _current_item(self, message: DocumentMessage, state: DocumentState | None) -> InboxItem:
        """The listed item while fresh and untouched by an earlier attempt; else a GET."""
        touched = state is not None and state.status in TOUCHED
        if message.item is not None and message.listedAt is not None and not touched:
            age = self.clock() - message.listedAt.timestamp()
            if 0 <= age <= self.listing_fresh_seconds:
                return message.item
        return self.client.get_document(message.documentId)

    def _hold(
        self, item: InboxItem, outcome: RulesOutcome, reasons: list[HoldReason], modified_at: str
    ) -> ProcessResult:
        texts = [f"{r.code}: {r.message}" for r in reasons]
        self.ledger.record(
            item.document_id,
            Status.HELD,
            "held",
            modified_at=modified_at,
            reasons=texts,
            detail=_decision_detail(outcome),
            recheck_at=self.clock() + self.held_recheck_seconds,
            config=self.config or None,
        )
        return ProcessResult(item.document_id, "held", tuple(texts))

    def _number_key(self, item: InboxItem, outcome: RulesOutcome) -> tuple[str, str] | None:
        """(scope, number) under which the invoice number is claimed, as the gate checks it."""
        if not self.gate.check_duplicate_numbers:
            return None
        scope = duplicate_scope(item, outcome.write)
        number = duplicate_number(outcome.write)
        return (scope, number) if scope is not None and number is not None else None

    def _claim_number(self, item: InboxItem, outcome: RulesOutcome) -> HoldReason | None:
        key = self._number_key(item, outcome)
        if key is None:
            return None
        scope, number = key
        other = self.ledger.claim_number(scope, number, item.document_id)
        if other is None:
            return None
        return HoldReason(
            "duplicate_number",
            f"invoice number {number} is already used by document {other} ({scope})",
        )

    def _release_number(self, item: InboxItem, outcome: RulesOutcome) -> None:
        key = self._number_key(item, outcome)
        if key is not None:
            self.ledger.release_number(*key, item.document_id)

    def _update(self, item: InboxItem, outcome: RulesOutcome) -> InboxItem:
        updated = self.client.update_document(item.document_id, outcome.write)
        self.ledger.record(
            item.document_id,
            Status.UPDATED,
            "updated",
            modified_at=_modified_at(updated),
            detail={**_decision_detail(outcome), "requestIds": self._new_request_ids()},
        )
        return updated

    def _book(
        self,
        document_id: int,
        state: DocumentState | None,
        modified_at: str,
        outcome: RulesOutcome,
    ) -> None:
        self.ledger.record(document_id, Status.BOOKING, "booking", modified_at=modified_at)
        calls_before = self.client.requests_sent["book"]
        try:
            self.client.book_document(document_id)
        except PermanentError:
            # Gone from the inbox proves *our* booking only if a call of ours may have been
            # applied unseen: this one retried, or an earlier attempt's (the ledger said
            # BOOKING). Otherwise someone else booked or deleted it: not ours to record.
            retried = self.client.requests_sent["book"] - calls_before > 1
            earlier = state is not None and state.status is Status.BOOKING
            if not (retried or earlier) or not self._left_inbox(document_id):
                raise
            confirmed = "booking answered an error, but the document has left the inbox"
            self.ledger.record(
                document_id,
                Status.BOOKED,
                "booked",
                modified_at=modified_at,
                detail={"confirmedBy": confirmed, "requestIds": self._new_request_ids()},
            )
            return
        self.ledger.record(
            document_id,
            Status.BOOKED,
            "booked",
            modified_at=modified_at,
            detail={"rulesApplied": list(outcome.applied), "requestIds": self._new_request_ids()},
        )

    def _left_inbox(self, document_id: int) -> bool:
        """After a refused book: is the document gone (booked by our lost earlier call)?"""
        try:
            self.client.get_document(document_id)
        except NotFoundError:
            return True
        return False

    def _not_in_inbox(
        self, document_id: int, state: DocumentState | None, error: str
    ) -> ProcessResult:
        """404 before booking: booked by our own lost call if we were booking, else an error."""
        if state is not None and state.status is Status.BOOKING:
            self.ledger.record(
                document_id,
                Status.BOOKED,
                "booked",
                detail={
                    "confirmedBy": "left the inbox after our booking call",
                    "requestIds": self._new_request_ids(),
                },
            )
            return ProcessResult(document_id, "booked")
        reason = f"not in the inbox: {error}"
        self.ledger.record(
            document_id,
            Status.FAILED,
            "failed",
            reasons=[reason],
            detail={"errorType": "NotFoundError"},
        )
        raise DocumentFailed(document_id, reason, "NotFoundError")

    def _new_request_ids(self) -> list[str]:
        return list(self.client.request_ids[self._request_ids_seen :])


def _modified_at(item: InboxItem) -> str:
    stamp = item.changed_at
    return stamp.isoformat() if stamp else ""


def _decision_detail(outcome: RulesOutcome) -> dict[str, Any]:
    return {
        "rulesApplied": list(outcome.applied),
        "diff": [{"field": c.path, "before": c.before, "after": c.after} for c in outcome.changes],
    }
