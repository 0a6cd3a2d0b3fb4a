"""Deciding on a document as it stands (the rules, then the review gate), and recording what a
decision that books nothing ends in: held, planned in a dry run, failed, or possibly booked."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NoReturn

from ..errors import PermanentError
from ..gate import GateConfig, HoldReason, review
from ..ledger import BOOK_UNCERTAIN, DocumentStates, Status
from ..models import InboxItem
from ..rules import RuleSet, RulesOutcome
from .attempt import Attempt, modified_at_of, summarize
from .outcomes import Decision, DocumentFailed, ProcessResult, _failure_reason


@dataclass
class Deciding:
    """The rules and the gate on the document's data alone; no request, no write."""

    rules: RuleSet
    gate: GateConfig
    clock: Callable[[], float]
    attempt: Attempt

    def decide(self, item: InboxItem) -> Decision:
        self.attempt.decided = item
        outcome = self.rules.apply(item)
        return Decision(item, outcome, self.review(item, outcome))

    def review(self, item: InboxItem, outcome: RulesOutcome) -> list[HoldReason]:
        """The gate on the document's data alone. A duplicate invoice number is found in one
        place, by the claim just before the update (``NumberGuard.claim``): one conditional
        write that both checks and takes the number, where a look first would cost a read more
        and still race another instance's claim."""
        today = datetime.fromtimestamp(self.clock(), UTC).date()
        return review(item, outcome, self.gate, today=today)


#: Hold reasons time can lift with nothing changed in the document: a date that was in the
#: future, a duplicate whose other document went away, a rule that reads something else (a
#: lookup, today's date). Every other reason is in the document itself (a missing number,
#: amounts that do not add up, an OCR that failed): only a change in Lucca (a new
#: ``modifiedAt``) or a new configuration can lift it, and both re-open the hold already. A
#: standing inbox of such documents looked at every few hours would fill the queue and the
#: ledger for nothing.
LIFTED_BY_TIME = frozenset({"date_in_future", "duplicate_number", "rule_failed"})


@dataclass
class Verdicts:
    """What the ledger records when a document is not booked: each one a state and an event."""

    states: DocumentStates
    clock: Callable[[], float]
    attempt: Attempt
    #: A hold is looked at again after this long, and once the configuration changes.
    held_recheck_seconds: float
    #: The configuration decisions are taken under (``fingerprint.config_version``).
    config: str

    def hold(self, decision: Decision) -> ProcessResult:
        """Record a hold; a change in Lucca re-opens it, a new configuration too unless the
        decision says it cannot help, and time when a reason is one time can lift."""
        item = decision.item
        texts = [f"{r.code}: {r.message}" for r in decision.reasons]
        self.states.record(
            item.document_id,
            Status.HELD,
            "held",
            modified_at=modified_at_of(item),
            reasons=texts,
            detail=decision.ledger_detail(),
            recheck_at=self.clock() + self.held_recheck_seconds if _rechecked(decision) else None,
            config=(self.config or None) if decision.reconsider else None,
            summary=summarize(item),
        )
        return ProcessResult(item.document_id, "held", tuple(texts))

    def plan(self, decision: Decision) -> ProcessResult:
        """A dry run: what would be booked, recorded as planned."""
        item = decision.item
        self.states.record(
            item.document_id,
            Status.PLANNED,
            "dry_run",
            modified_at=modified_at_of(item),
            reasons=["dry run: would book"],
            detail=decision.ledger_detail(),
            summary=summarize(item),
        )
        return ProcessResult(item.document_id, "dry_run", ("dry run: would book",))

    def fail(self, document_id: int, error: PermanentError) -> NoReturn:
        """A permanent failure: recorded, then raised for the dead-letter queue."""
        reason = _failure_reason(error)
        self.states.record(
            document_id,
            Status.FAILED,
            "failed",
            reasons=[reason],
            detail={
                "errorType": type(error).__name__,
                "requestIds": self.attempt.new_request_ids(),
            },
            summary=self.attempt.decided_summary(),
        )
        raise DocumentFailed(document_id, reason, type(error).__name__) from error

    def unconfirmed(self, document_id: int, error: PermanentError) -> ProcessResult:
        """A later attempt after a booking call of ours could not read or book the document
        (a 404, or the GET refused): held as possibly booked, with no document in hand (the
        state keeps the ``modifiedAt`` and summary the booking recorded)."""
        reason = f"{BOOK_UNCERTAIN}: {uncertain_message(document_id, error)}"
        self.states.record(
            document_id,
            Status.HELD,
            "held",
            reasons=[reason],
            detail={
                "errorType": type(error).__name__,
                "status": error.status,
                "requestIds": self.attempt.new_request_ids(),
            },
        )
        return ProcessResult(document_id, "held", (reason,))


def uncertain_message(document_id: int, error: PermanentError) -> str:
    """Why a document is held as possibly booked, and what a person does about it."""
    return (
        f"Lucca answered {error} after an earlier booking call of ours "
        "that may have gone through: no proof either way. Once a complete listing no longer "
        f"shows document {document_id} it is recorded as booked; while Lucca still lists it, "
        "check in Lucca whether it is booked before booking it by hand; its invoice number "
        "stays claimed"
    )


def _rechecked(decision: Decision) -> bool:
    """The hold is looked at again after ``held_recheck_seconds`` although nothing changed."""
    return decision.recheck and any(r.code in LIFTED_BY_TIME for r in decision.reasons)
