"""The book call, exactly once: the invoice number's claim, the ``BOOKING`` mark, and what an
outcome that proves nothing is recorded as.

The ledger says ``BOOKING`` before the book call, and ``BOOKED`` only on a 2xx from the book
endpoint. If that call's answer is lost (dropped connection, timeout, crash), a later attempt
that finds the document still in the inbox books it; one that meets a refusal or a 404 after
such a call records nothing it cannot prove: a 404 from the single-document GET may mean "no
such route" (that route is only inferred), a 400 or 404 from book may mean "booked already" or
"refused", and neither tells our booking from a person's deletion. The document is held
(``book_uncertain``), its invoice number kept, and the poller records it booked once a complete
listing no longer shows it (``InboxPoller``); while Lucca lists it, a person checks.
"""

from __future__ import annotations

from dataclasses import replace

from ..duplicates import duplicate_number, duplicate_scope
from ..errors import NotFoundError, PermanentError, RetryableError
from ..gate import HoldReason, duplicate_reason
from ..ledger import BOOK_UNCERTAIN, DocumentState, Status
from ..models import InboxItem
from ..rules import RulesOutcome
from .base import ProcessorBase, _modified_at, summarize
from .outcomes import Decision, DocumentFailed, ProcessResult, _failure_reason


class NumberClaims(ProcessorBase):
    """The invoice number, claimed in the ledger by the document about to be booked."""

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
        return None if other is None else duplicate_reason(number, other, scope)

    def _release_number(
        self, item: InboxItem, outcome: RulesOutcome, state: DocumentState | None
    ) -> None:
        """Give the number back: only when no booking call of ours can have gone through.

        The callers know this attempt's book was never sent or was refused at its only call;
        an earlier attempt that marked BOOKING may still have booked the document, and then
        the number must keep blocking another document that carries it.
        """
        if _was_booking(state):
            return
        key = self._number_key(item, outcome)
        if key is not None:
            self.ledger.release_number(*key, item.document_id)


class Booking(NumberClaims):
    """The book call and the outcomes around it that prove neither a booking nor its absence."""

    def _book(
        self, decision: Decision, state: DocumentState | None, *, updated: bool
    ) -> ProcessResult:
        item, outcome = decision.item, decision.outcome
        document_id, modified_at = item.document_id, _modified_at(item)
        # The summary rides on BOOKING too: a later attempt that finds the document gone
        # records BOOKED with no document in hand, and the one booked is this one.
        summary = summarize(item)
        reached_before = self.client.maybe_applied["book"]
        try:
            # The book's budget slot first: a budget too busy defers the document before the
            # mark, which would otherwise say a book call may have gone out when none did.
            with self.client.back_to_back(1):
                self.ledger.record(
                    document_id, Status.BOOKING, "booking", modified_at=modified_at, summary=summary
                )
                self.client.book_document(document_id)
        except RetryableError:
            if self.client.maybe_applied["book"] == reached_before and not _was_booking(state):
                self._booking_not_sent(document_id, state, updated=updated)
            raise
        except PermanentError as error:
            # A refusal proves nothing was booked only if it answered the one call of ours that
            # reached Lucca (a retry after a 429 does not count: the limiter ran nothing), with
            # no earlier attempt's call (the ledger said BOOKING) that may have been applied.
            retried = self.client.maybe_applied["book"] - reached_before > 1
            if not (retried or _was_booking(state)):
                self._release_number(item, outcome, state)
                raise
            return self._refused_after_a_possible_booking(decision, error)
        self.ledger.record(
            document_id,
            Status.BOOKED,
            "booked",
            modified_at=modified_at,
            detail={
                "rulesApplied": list(outcome.applied),
                **decision.detail,
                "requestIds": self._new_request_ids(),
            },
            summary=summary,
        )
        return ProcessResult(document_id, "booked", updated=updated)

    def _booking_not_sent(
        self, document_id: int, state: DocumentState | None, *, updated: bool
    ) -> None:
        """Every book attempt of this call was refused before anything ran (Lucca's limiter's
        429s) or never reached Lucca: the ``BOOKING`` mark would say a booking may have gone
        through, and cost the next attempt a read and a refusal its proof. Back to the state
        before it."""
        # UPDATED (by this attempt or an earlier one) makes the next attempt read it again.
        was_updated = updated or (state is not None and state.status is Status.UPDATED)
        before = Status.UPDATED if was_updated else Status.QUEUED
        self.ledger.record(
            document_id,
            before,
            "booking not sent",
            detail={"because": "no book call reached Lucca"},
        )

    def _refused_after_a_possible_booking(
        self, decision: Decision, error: PermanentError
    ) -> ProcessResult:
        """A book refused after a call of ours that may have been applied unseen.

        Nothing answered here proves the document booked: with ``second_book`` 400 a refusal is
        what "already booked" looks like, and so is a real refusal; a 404 is also what a
        deletion looks like. No GET to ask (its 404 proves even less, and costs a request): the
        number stays claimed and the document is held; the poller confirms it booked from a
        complete listing that no longer shows it, or a person checks in Lucca. Not the
        dead-letter queue (a replay would book blind), and no automatic recheck.
        """
        document_id = decision.item.document_id
        reason = HoldReason(BOOK_UNCERTAIN, _uncertain_message(document_id, error))
        detail = {
            **decision.detail,
            "errorType": type(error).__name__,
            "status": error.status,
            "requestIds": self._new_request_ids(),
        }
        # Neither time nor new rules tell whether it was booked: a listing or a person does.
        held = replace(decision, reasons=[reason], detail=detail, recheck=False, reconsider=False)
        return self._hold(held)

    def _unconfirmed(self, document_id: int, error: PermanentError) -> ProcessResult:
        """A later attempt after a booking call of ours could not read or book the document
        (a 404, or the GET refused): held as possibly booked, with no document in hand (the
        state keeps the ``modifiedAt`` and summary the booking recorded)."""
        reason = f"{BOOK_UNCERTAIN}: {_uncertain_message(document_id, error)}"
        self.ledger.record(
            document_id,
            Status.HELD,
            "held",
            reasons=[reason],
            detail={
                "errorType": type(error).__name__,
                "status": error.status,
                "requestIds": self._new_request_ids(),
            },
        )
        return ProcessResult(document_id, "held", (reason,))

    def _not_in_inbox(
        self, document_id: int, state: DocumentState | None, error: NotFoundError
    ) -> ProcessResult:
        """404 before booking: possibly booked by our own lost call if we were booking (held
        for the listing to confirm), else an error."""
        if _was_booking(state):
            return self._unconfirmed(document_id, error)
        reason = f"not in the inbox: {_failure_reason(error)}"
        self.ledger.record(
            document_id,
            Status.FAILED,
            "failed",
            reasons=[reason],
            detail={"errorType": "NotFoundError"},
            summary=self._decided_summary(),
        )
        raise DocumentFailed(document_id, reason, "NotFoundError")


def _was_booking(state: DocumentState | None) -> bool:
    """An earlier attempt's book call may have been applied unseen (a later delivery must not
    take a refusal for proof either)."""
    return state is not None and state.may_be_booked


def _uncertain_message(document_id: int, error: PermanentError) -> str:
    return (
        f"Lucca answered {error} after an earlier booking call of ours "
        "that may have gone through: no proof either way. Once a complete listing no longer "
        f"shows document {document_id} it is recorded as booked; while Lucca still lists it, "
        "check in Lucca whether it is booked before booking it by hand; its invoice number "
        "stays claimed"
    )
