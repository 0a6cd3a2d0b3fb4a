"""The book call, exactly once: the ``BOOKING`` mark, the call, and what an outcome that proves
nothing is recorded as.

The ledger says ``BOOKING`` before the book call, and ``BOOKED`` only on a 2xx from the book
endpoint. If that call's answer is lost (dropped connection, timeout, crash), a later attempt
that finds the document still in the inbox books it; one that meets a refusal or a 404 after
such a call records nothing it cannot prove: a 404 from a read of one document may mean "no
such route" (the inferred GET), and what the published read answers for a booked document is
not published (a read that still finds it proves nothing either: the book call decides), a
400 or 404 from book may mean "booked already" or "refused", and neither tells our booking
from a person's deletion. The document is held
(``book_uncertain``), its invoice number kept, and the poller records it booked once a complete
listing no longer shows it (``InboxPoller``) or Lucca's booked documents show it
(``poller.settling``); until then, a person checks.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..client import LuccaClient
from ..errors import NotFoundError, PermanentError, RetryableError
from ..gate import HoldReason
from ..ledger import BOOK_UNCERTAIN, DocumentState, DocumentStates, Status
from .attempt import Attempt, modified_at_of, summarize
from .deciding import Verdicts, uncertain_message
from .gone import GoneRuns
from .numbers import NumberGuard, was_booking
from .outcomes import Decision, DocumentFailed, ProcessResult, _failure_reason

#: The reason code of a document recorded gone: it left the inbox before we booked it.
GONE_REASON = "not_in_inbox"


@dataclass
class Booking:
    """The book call and the outcomes around it that prove neither a booking nor its absence."""

    client: LuccaClient
    states: DocumentStates
    numbers: NumberGuard
    verdicts: Verdicts
    attempt: Attempt
    gone_runs: GoneRuns

    def book(
        self, decision: Decision, state: DocumentState | None, *, updated: bool
    ) -> ProcessResult:
        item, outcome = decision.item, decision.outcome
        document_id, modified_at = item.document_id, modified_at_of(item)
        # The summary rides on BOOKING too: a later attempt that finds the document gone
        # records BOOKED with no document in hand, and the one booked is this one.
        summary = summarize(item)
        reached_before = self.client.maybe_applied["book"]
        try:
            # The book's budget slot first: a budget too busy defers the document before the
            # mark, which would otherwise say a book call may have gone out when none did.
            with self.client.back_to_back(1):
                self.states.record(
                    document_id, Status.BOOKING, "booking", modified_at=modified_at, summary=summary
                )
                self.client.book_document(document_id)
        except RetryableError:
            if self.client.maybe_applied["book"] == reached_before and not was_booking(state):
                self._booking_not_sent(document_id, state, updated=updated)
            raise
        except PermanentError as error:
            # A refusal proves nothing was booked only if it answered the one call of ours that
            # reached Lucca (a retry after a 429 does not count: the limiter ran nothing), with
            # no earlier attempt's call (the ledger said BOOKING) that may have been applied.
            retried = self.client.maybe_applied["book"] - reached_before > 1
            if not (retried or was_booking(state)):
                self.numbers.release(item, outcome, state)
                raise
            return self._refused_after_a_possible_booking(decision, error)
        self.states.record(
            document_id,
            Status.BOOKED,
            "booked",
            modified_at=modified_at,
            detail={
                "rulesApplied": list(outcome.applied),
                **decision.detail,
                "requestIds": self.attempt.new_request_ids(),
            },
            summary=summary,
        )
        return ProcessResult(document_id, "booked", updated=updated)

    def not_in_inbox(
        self,
        document_id: int,
        state: DocumentState | None,
        error: NotFoundError,
        *,
        listed: bool = True,
    ) -> ProcessResult:
        """404 before booking: possibly booked by our own lost call if we were booking (held
        for the listing to confirm), else gone.

        With no booking call of ours that may have gone out, a 404 to the read or to this
        attempt's only book call says the document left the inbox between our listing and our
        booking: a person deleted it or booked it by hand. Not a failure (a dead letter would
        page someone for nobody's fault, and its replay would meet the same 404): recorded as
        gone, with the answer, and claimed again by the poller if a listing shows it again.
        A run of them with nothing booked is a fault all the same (a wrong route or tenant,
        ``GoneRuns``): failed, for the dead-letter queue and its alarms. ``listed``: the
        message carries the item a listing showed (a bare id may be a replay by hand)."""
        if was_booking(state):
            return self.verdicts.unconfirmed(document_id, error)
        failure = _not_gone_after_all(state, error, listed=listed)
        if failure is None and self.gone_runs.in_a_run():
            failure = f"not in the inbox, and {self.gone_runs.describe()}: {_failure_reason(error)}"
        if failure is not None:
            self.states.record(
                document_id,
                Status.FAILED,
                "failed",
                reasons=[failure],
                detail={"errorType": "NotFoundError", "requestIds": self.attempt.new_request_ids()},
                summary=self.attempt.decided_summary(),
            )
            raise DocumentFailed(document_id, failure, "NotFoundError") from error
        reason = f"{GONE_REASON}: {_failure_reason(error)}"
        self.states.record(
            document_id,
            Status.GONE,
            "gone",
            reasons=[reason],
            detail={
                "errorType": "NotFoundError",
                "endpoint": error.endpoint,
                "requestIds": self.attempt.new_request_ids(),
            },
            summary=self.attempt.decided_summary(),
        )
        return ProcessResult(document_id, "gone", (reason,))

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
        self.states.record(
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
        reason = HoldReason(BOOK_UNCERTAIN, uncertain_message(document_id, error))
        detail = {
            **decision.detail,
            "errorType": type(error).__name__,
            "status": error.status,
            "requestIds": self.attempt.new_request_ids(),
        }
        # Neither time nor new rules tell whether it was booked: a listing or a person does.
        held = replace(decision, reasons=[reason], detail=detail, recheck=False, reconsider=False)
        return self.verdicts.hold(held)


def _not_gone_after_all(
    state: DocumentState | None, error: NotFoundError, *, listed: bool
) -> str | None:
    """Why a 404 here is a failure rather than a person's move, if it is.

    A bare id the ledger never saw: no listing of ours showed the document (a replay by hand
    of an id Lucca does not know). Found gone before and listed again since: Lucca lists it,
    yet answers 404 about it, so the 404 is about the route (a tenant serving no read of one
    document), not about the document; recording it gone again would loop on every poll."""
    if state is None and not listed:
        return f"unknown to Lucca and to the ledger: {_failure_reason(error)}"
    if state is not None and state.gone_times and state.status is Status.QUEUED:
        return (
            "answered 404 again after a listing showed it back in the inbox: the route, not "
            f"a person's move: {_failure_reason(error)}"
        )
    return None
