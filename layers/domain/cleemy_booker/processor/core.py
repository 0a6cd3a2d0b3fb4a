"""Processing one document: decide, update when something changed, book — exactly once.

Outcomes, each recorded in the ledger:

* **booked** — updated if the rules changed something, then booked;
* **held** — the review gate (or a rule) says a person must look; nothing is booked;
* **failed** — a permanent error: the message goes to the dead-letter queue with its reason;
* **gone** — Lucca answered 404 before any booking call of ours: a person deleted the document
  or booked it by hand since the listing; recorded, not a failure (``Booking.not_in_inbox``);
* retryable trouble raises ``RetryableError`` so SQS delivers the message again;
* a busy request budget raises ``DeferDocument``: the message is handed back with a delay and is
  never counted as a failure.

``DocumentProcessor`` holds the collaborators and settings; each attempt composes its parts
from them (``Deciding`` and ``Verdicts``, ``NumberGuard``, ``Updating``, ``Booking``) and runs
them in order. The parts are made per attempt because the runtime may swap the rules and the
configuration between attempts, and because what an attempt has done (``Attempt``) is its own.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from ..budget import BudgetBusy
from ..client import LuccaClient
from ..errors import NotFoundError, PermanentError
from ..gate import GateConfig
from ..ledger import TOUCHED, DocumentState, Ledger, Status
from ..models import DocumentMessage, InboxItem
from ..rules import RuleSet
from .attempt import Attempt
from .booking import Booking
from .deciding import Deciding, Verdicts
from .gone import GoneRuns
from .numbers import NumberGuard, was_booking
from .outcomes import Decision, DeferDocument, ProcessResult
from .update import Updating


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

    def process(self, message: DocumentMessage) -> ProcessResult:
        document_id = message.documentId
        sent_before = sum(self.client.requests_sent.values())
        run = _AttemptParts.compose(self)
        state = self.ledger.states.state(document_id)
        if state is not None and state.status is Status.BOOKED:
            return ProcessResult(document_id, "already_booked")
        if _superseded(state, message):
            return ProcessResult(document_id, "superseded")
        try:
            result = run.process(message, state)
        except BudgetBusy as busy:
            raise DeferDocument("request budget busy", busy.wait) from None
        except NotFoundError as error:
            listed = message.item is not None
            result = run.booking.not_in_inbox(document_id, state, error, listed=listed)
        except PermanentError as error:
            if not (was_booking(state) and error.endpoint == "get"):
                run.verdicts.fail(document_id, error)
            # The read a later attempt makes after a booking call of ours was refused (e.g. a
            # 405: the inferred route is not served): the document may be booked; not the DLQ.
            result = run.verdicts.unconfirmed(document_id, error)
        spent = sum(self.client.requests_sent.values()) - sent_before
        return replace(result, requests=spent, request_ids=tuple(run.attempt.new_request_ids()))


@dataclass
class _AttemptParts:
    """One attempt's parts, each handed only what it uses, and the order they run in."""

    client: LuccaClient
    attempt: Attempt
    deciding: Deciding
    verdicts: Verdicts
    updating: Updating
    booking: Booking
    numbers: NumberGuard
    listing_fresh_seconds: float
    dry_run: bool
    clock: Callable[[], float]

    @classmethod
    def compose(cls, processor: DocumentProcessor) -> _AttemptParts:
        client, states = processor.client, processor.ledger.states
        attempt = Attempt(client)
        deciding = Deciding(processor.rules, processor.gate, processor.clock, attempt)
        verdicts = Verdicts(
            states,
            processor.clock,
            attempt,
            held_recheck_seconds=processor.held_recheck_seconds,
            config=processor.config,
        )
        numbers = NumberGuard(processor.ledger.numbers, processor.gate)
        updating = Updating(client, states, processor.rules, deciding, numbers, attempt)
        gone_runs = GoneRuns(processor.ledger.queries, processor.clock)
        booking = Booking(client, states, numbers, verdicts, attempt, gone_runs)
        return cls(
            client,
            attempt,
            deciding,
            verdicts,
            updating,
            booking,
            numbers,
            listing_fresh_seconds=processor.listing_fresh_seconds,
            dry_run=processor.dry_run,
            clock=processor.clock,
        )

    def process(self, message: DocumentMessage, state: DocumentState | None) -> ProcessResult:
        item, listed = self._current_item(message, state)
        decision = self.deciding.decide(item)
        if decision.reasons:
            return self.verdicts.hold(decision)
        if self.dry_run:
            return self.verdicts.plan(decision)
        if decision.outcome.changed and listed:
            # The read, the PUT built from it and the book go out one right after the other,
            # not a budget interval apart: an edit landing between the read and the PUT would
            # be reverted. Reserving the three slots at once also means a budget too busy for
            # all of them defers the document before its first request, not between the PUT
            # and the book (where the next attempt would have to read it again).
            with self.client.back_to_back(3):
                return self._update_and_book(self.updating.reread(decision), state)
        return self._update_and_book(decision, state)

    def _update_and_book(self, decision: Decision, state: DocumentState | None) -> ProcessResult:
        if decision.reasons:
            return self.verdicts.hold(decision)
        duplicate = self.numbers.claim(decision.item, decision.outcome)
        if duplicate is not None:
            return self.verdicts.hold(replace(decision, reasons=[duplicate]))
        updated = decision.outcome.changed
        if updated:
            decision = self.updating.update(decision, state)
            if decision.reasons:
                return self.verdicts.hold(decision)
        return self.booking.book(decision, state, updated=updated)

    def _current_item(
        self, message: DocumentMessage, state: DocumentState | None
    ) -> tuple[InboxItem, bool]:
        """The listed item while fresh, untouched by an earlier attempt, and still the latest
        version a listing showed; else a read (the published one, under the listed item's top
        level when the message carries it; see ``LuccaClient.read_document``).

        The flag says the item came from the listing: it may be up to ``listing_fresh_seconds``
        old, good enough to book as it is, not to build a PUT from (see ``Updating.reread``).
        """
        touched = state is not None and state.status in TOUCHED
        if message.item is not None and message.listedAt is not None and not touched:
            age = self.clock() - message.listedAt.timestamp()
            fresh = 0 <= age <= self.listing_fresh_seconds
            if fresh and not _listed_since(state, message.item):
                return message.item, True
        return self.client.read_document(message.documentId, message.item), False


def _listed_since(state: DocumentState | None, item: InboxItem) -> bool:
    """A listing showed a later version of the document than the message's copy while the
    message was on its way (``DocumentStates.note_listed_newer``): deciding on the copy would
    hold an OCR that has finished since, or book over a person's edit unseen."""
    if state is None or not state.listed_newer:
        return False
    copy = item.changed_at
    return copy is None or _utc(datetime.fromisoformat(state.listed_newer)) > _utc(copy)


def _superseded(state: DocumentState | None, message: DocumentMessage) -> bool:
    """The ledger holds a later version of the document than the message's copy, queued or
    decided on: a message sent since carries it (the poller claimed it again), or a decision
    was taken on it. This copy comes back late (redelivered after its batch's invocation
    died): deciding on it would hold or book an older version. Nothing to do."""
    if state is None or state.status not in (Status.QUEUED, Status.HELD) or message.item is None:
        return False
    copy = message.item.changed_at
    if copy is None or not state.modified_at:
        return False
    return _utc(datetime.fromisoformat(state.modified_at)) > _utc(copy)


def _utc(stamp: datetime) -> datetime:
    """Lucca writes offsets; a stamp without one reads as UTC, so two stamps always compare."""
    return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=UTC)
