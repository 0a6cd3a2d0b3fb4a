"""Processing one document: decide, update when something changed, book — exactly once.

Outcomes, each recorded in the ledger:

* **booked** — updated if the rules changed something, then booked;
* **held** — the review gate (or a rule) says a person must look; nothing is booked;
* **failed** — a permanent error: the message goes to the dead-letter queue with its reason;
* retryable trouble raises ``RetryableError`` so SQS delivers the message again;
* a busy request budget raises ``DeferDocument``: the message is handed back with a delay and is
  never counted as a failure.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import NoReturn

from ..budget import BudgetBusy
from ..errors import NotFoundError, PermanentError
from ..ledger import TOUCHED, DocumentState, Status
from ..models import DocumentMessage, InboxItem
from .base import _modified_at, summarize
from .booking import Booking, _was_booking
from .outcomes import Decision, DeferDocument, DocumentFailed, ProcessResult, _failure_reason
from .update import Updating


@dataclass
class DocumentProcessor(Updating, Booking):
    """The domain side of the consumer Lambda; every collaborator is passed in."""

    def process(self, message: DocumentMessage) -> ProcessResult:
        document_id = message.documentId
        sent_before = sum(self.client.requests_sent.values())
        self._request_ids_seen = len(self.client.request_ids)
        self._decided = None
        state = self.ledger.state(document_id)
        if state is not None and state.status is Status.BOOKED:
            return ProcessResult(document_id, "already_booked")
        try:
            result = self._process(message, state)
        except BudgetBusy as busy:
            raise DeferDocument("request budget busy", busy.wait) from None
        except NotFoundError as error:
            result = self._not_in_inbox(document_id, state, error)
        except PermanentError as error:
            if not (_was_booking(state) and error.endpoint == "get"):
                self._fail(document_id, error)
            # The read a later attempt makes after a booking call of ours was refused (e.g. a
            # 405: the inferred route is not served): the document may be booked; not the DLQ.
            result = self._unconfirmed(document_id, error)
        spent = sum(self.client.requests_sent.values()) - sent_before
        return replace(result, requests=spent, request_ids=tuple(self._new_request_ids()))

    def _fail(self, document_id: int, error: PermanentError) -> NoReturn:
        reason = _failure_reason(error)
        self.ledger.record(
            document_id,
            Status.FAILED,
            "failed",
            reasons=[reason],
            detail={"errorType": type(error).__name__, "requestIds": self._new_request_ids()},
            summary=self._decided_summary(),
        )
        raise DocumentFailed(document_id, reason, type(error).__name__) from error

    # --- steps -------------------------------------------------------------------------------

    def _process(self, message: DocumentMessage, state: DocumentState | None) -> ProcessResult:
        item, listed = self._current_item(message, state)
        decision = self._decide(item)
        if decision.reasons:
            return self._hold(decision)
        if self.dry_run:
            return self._plan(decision)
        if decision.outcome.changed and listed:
            # The read, the PUT built from it and the book go out one right after the other,
            # not a budget interval apart: an edit landing between the read and the PUT would
            # be reverted. Reserving the three slots at once also means a budget too busy for
            # all of them defers the document before its first request, not between the PUT
            # and the book (where the next attempt would have to read it again).
            with self.client.back_to_back(3):
                return self._update_and_book(self._reread(decision), state)
        return self._update_and_book(decision, state)

    def _update_and_book(self, decision: Decision, state: DocumentState | None) -> ProcessResult:
        if decision.reasons:
            return self._hold(decision)
        duplicate = self._claim_number(decision.item, decision.outcome)
        if duplicate is not None:
            return self._hold(replace(decision, reasons=[duplicate]))
        updated = decision.outcome.changed
        if updated:
            decision = self._update(decision, state)
            if decision.reasons:
                return self._hold(decision)
        return self._book(decision, state, updated=updated)

    def _current_item(
        self, message: DocumentMessage, state: DocumentState | None
    ) -> tuple[InboxItem, bool]:
        """The listed item while fresh and untouched by an earlier attempt; else a GET.

        The flag says the item came from the listing: it may be up to ``listing_fresh_seconds``
        old, good enough to book as it is, not to build a PUT from (see ``_reread``).
        """
        touched = state is not None and state.status in TOUCHED
        if message.item is not None and message.listedAt is not None and not touched:
            age = self.clock() - message.listedAt.timestamp()
            if 0 <= age <= self.listing_fresh_seconds:
                return message.item, True
        return self.client.get_document(message.documentId), False

    def _plan(self, decision: Decision) -> ProcessResult:
        item = decision.item
        self.ledger.record(
            item.document_id,
            Status.PLANNED,
            "dry_run",
            modified_at=_modified_at(item),
            reasons=["dry run: would book"],
            detail=decision.ledger_detail(),
            summary=summarize(item),
        )
        return ProcessResult(item.document_id, "dry_run", ("dry run: would book",))
