"""What processing one document ends in, and the decision it is taken on.

``ProcessResult`` for what was done, ``DocumentFailed`` and ``DeferDocument`` for what the queue
is to do with the message instead, ``Decision`` for what to do with the document as it stands.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import PermanentError
from ..gate import HoldReason
from ..models import InboxItem
from ..rules import RulesOutcome

Outcome = Literal["booked", "already_booked", "superseded", "held", "dry_run", "gone"]


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


@dataclass(frozen=True)
class Decision:
    """What to do with one document, as it stands in ``item``: hold it when ``reasons``."""

    item: InboxItem
    outcome: RulesOutcome
    reasons: list[HoldReason] = field(default_factory=list)
    #: Extra audit detail: what was seen on the way (a change since the listing, an answer
    #: that differs from what was sent).
    detail: dict[str, Any] = field(default_factory=dict)
    #: A hold is looked at again after ``held_recheck_seconds``; off when time cannot help.
    recheck: bool = True
    #: A hold is looked at again once the configuration changes; off when no rule can help.
    reconsider: bool = True

    def ledger_detail(self) -> dict[str, Any]:
        return {**_decision_detail(self.outcome), **self.detail}


#: A GET of one document: Lucca's published read wants the listed item (its document id), the
#: other route is only inferred (lucca-api.md): its refusal may be about the route.
_GET_HINT = (
    " (GET of one document: neither Lucca's published api/documents/{id}, tried when the"
    " message carries the listed item, nor the inferred inbox-documents/{id} served it; if"
    " this tenant serves neither, every document that needs a read fails this way)"
)


def _failure_reason(error: PermanentError) -> str:
    """The error as the dead-letter reason; a refused GET says the route itself may be absent."""
    text = str(error)
    if error.endpoint == "get" and error.status in (404, 405):
        return text + _GET_HINT
    return text


def _decision_detail(outcome: RulesOutcome) -> dict[str, Any]:
    return {
        "rulesApplied": list(outcome.applied),
        "diff": [{"field": c.path, "before": c.before, "after": c.after} for c in outcome.changes],
    }
