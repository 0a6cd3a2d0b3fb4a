"""Processing one document: decide, update when something changed, book — exactly once.

Outcomes, each recorded in the ledger:

* **booked** — updated if the rules changed something, then booked;
* **held** — the review gate (or a rule) says a person must look; nothing is booked;
* **failed** — a permanent error: the message goes to the dead-letter queue with its reason;
* retryable trouble raises ``RetryableError`` so SQS delivers the message again;
* a busy request budget raises ``DeferDocument``: the message is handed back with a delay and is
  never counted as a failure.

Never revert a person's edit: a PUT is the whole document and Lucca honours no precondition, so
a PUT is built from a read made in this attempt — the GET sent right before it when the decision
was taken on the listed item — and the decision is taken again if the document moved since the
listing. (An edit landing while our PUT is on its way is the one window no client can close.)
Lucca's answer to the PUT is what gets booked, so the gate looks at it again.

Exactly once: the ledger says ``BOOKING`` before the book call, and ``BOOKED`` only on a 2xx
from the book endpoint. If that call's answer is lost (dropped connection, timeout, crash), a
later attempt that finds the document still in the inbox books it; one that meets a refusal or
a 404 after such a call records nothing it cannot prove: a 404 from the single-document GET may
mean "no such route" (that route is only inferred), a 400 or 404 from book may mean "booked
already" or "refused", and neither tells our booking from a person's deletion. The document is
held (``book_uncertain``), its invoice number kept, and the poller records it booked once a
complete listing no longer shows it (``InboxPoller``); while Lucca lists it, a person checks.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal, NoReturn

from .budget import BudgetBusy
from .client import LuccaClient
from .errors import NotFoundError, PermanentError, RetryableError
from .gate import (
    FIELD_NAMES,
    GateConfig,
    HoldReason,
    duplicate_number,
    duplicate_reason,
    duplicate_scope,
    review,
)
from .ledger import BOOK_UNCERTAIN as BOOK_UNCERTAIN  # held here; the poller settles it
from .ledger import TOUCHED, DocumentState, DocumentSummary, Ledger, Status
from .models import DocumentMessage, InboxDocumentWrite, InboxItem, to_write_shape
from .rules import FieldChange, RuleSet, RulesOutcome, diff_json

Outcome = Literal["booked", "already_booked", "held", "dry_run"]
#: Hold: Lucca's answer to our PUT differs from what was sent and the rules would PUT again.
UPDATE_NOT_KEPT = "update_not_kept"


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
    #: The document as this attempt last decided on it: what a failure records as its summary.
    _decided: InboxItem | None = field(default=None, init=False)

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

    def _decide(self, item: InboxItem) -> Decision:
        self._decided = item
        outcome = self.rules.apply(item)
        return Decision(item, outcome, self._review(item, outcome))

    def _decided_summary(self) -> DocumentSummary | None:
        return summarize(self._decided) if self._decided is not None else None

    def _review(self, item: InboxItem, outcome: RulesOutcome) -> list[HoldReason]:
        """The gate on the document's data alone. A duplicate invoice number is found in one
        place, by the claim just before the update (``_claim_number``): one conditional write
        that both checks and takes the number, where a look first would cost a read more and
        still race another instance's claim."""
        today = datetime.fromtimestamp(self.clock(), UTC).date()
        return review(item, outcome, self.gate, today=today)

    def _reread(self, decision: Decision) -> Decision:
        """Read the document again just before a PUT built from the listing.

        A PUT replaces the whole document and Lucca honours no precondition: a body built from
        an item listed minutes ago would put back every value a person changed since. So the
        body is built from what Lucca holds now, and the decision taken again when it moved
        (it may need no update any more, or be held). One GET, only for documents to update.
        """
        listed = decision.item
        fresh = self.client.get_document(listed.document_id)
        if not _changed_since(listed, fresh):
            return decision
        again = self._decide(fresh)
        seen = {"listedModifiedAt": _modified_at(listed), "modifiedAt": _modified_at(fresh)}
        return replace(again, detail={**again.detail, "changedSinceListing": seen})

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

    def _hold(self, decision: Decision) -> ProcessResult:
        """Record a hold; a change in Lucca re-opens it, and time and a new configuration do
        unless the decision says they cannot help."""
        item = decision.item
        texts = [f"{r.code}: {r.message}" for r in decision.reasons]
        self.ledger.record(
            item.document_id,
            Status.HELD,
            "held",
            modified_at=_modified_at(item),
            reasons=texts,
            detail=decision.ledger_detail(),
            recheck_at=self.clock() + self.held_recheck_seconds if decision.recheck else None,
            config=(self.config or None) if decision.reconsider else None,
            summary=summarize(item),
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

    def _update(self, decision: Decision, state: DocumentState | None) -> Decision:
        """PUT the rules' changes, then decide again on Lucca's answer (what it now holds)."""
        item, sent = decision.item, decision.outcome
        try:
            answer = self.client.update_document(item.document_id, sent.write)
        except PermanentError:
            # Not updated, so not booked: the number must not block the document replacing it.
            self._release_number(item, sent, state)
            raise
        self.ledger.record(
            item.document_id,
            Status.UPDATED,
            "updated",
            modified_at=_modified_at(answer),
            detail={**decision.ledger_detail(), "requestIds": self._new_request_ids()},
        )
        answered = self._decide_on_answer(decision, answer)
        if not answered.reasons:
            answered = self._follow_number(decision, answered, state)
        if answered.reasons:
            self._release_number(item, sent, state)  # held before any book call
        return answered

    def _decide_on_answer(self, decision: Decision, answer: InboxItem) -> Decision:
        """The gate on what Lucca answered the PUT with: that is what a book would book.

        Lucca may not keep what was sent (an amount normalised, a field reset). Then the
        decision is taken on what it holds; if the rules would change it again, a second PUT
        would likely be answered the same way: held for a person instead of a ping-pong.
        """
        sent = decision.outcome
        holds_item = _as_answered(decision.item, answer)
        self._decided = holds_item
        holds = to_write_shape(holds_item)
        differences = diff_json(_state_json(sent.write), _state_json(holds))
        if not differences:
            # Kept as sent; read-only fields (OCR status ...) may still have moved.
            kept = RulesOutcome(holds, sent.applied, sent.changes)
            return Decision(holds_item, kept, self._review(holds_item, kept), decision.detail)
        detail = {
            **decision.detail,
            "answerDiffers": [
                {"field": c.path, "sent": c.before, "answer": c.after} for c in differences
            ],
        }
        again = self.rules.apply(holds_item)
        if again.changed:
            reason = HoldReason(UPDATE_NOT_KEPT, _not_kept_message(differences))
            # Asking again later would get the same answer; new rules might not.
            return Decision(holds_item, again, [reason], detail, recheck=False)
        # The rules are content with what Lucca holds; the audit keeps what they did.
        now = RulesOutcome(again.write, sent.applied, sent.changes, again.failed)
        return Decision(holds_item, now, self._review(holds_item, now), detail)

    def _follow_number(
        self, sent: Decision, answered: Decision, state: DocumentState | None
    ) -> Decision:
        """Lucca's answer may carry another invoice number (normalised): claim that one."""
        before = self._number_key(sent.item, sent.outcome)
        if self._number_key(answered.item, answered.outcome) == before:
            return answered
        duplicate = self._claim_number(answered.item, answered.outcome)
        if duplicate is not None:
            return replace(answered, reasons=[duplicate])
        self._release_number(sent.item, sent.outcome, state)
        return answered

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

    def _new_request_ids(self) -> list[str]:
        return list(self.client.request_ids[self._request_ids_seen :])


def summarize(item: InboxItem) -> DocumentSummary:
    """The document as an accountant knows it, for the ledger's state item (``summary``).

    The currency is the amount including taxes' (else excluding taxes', else a tax line's): the
    gate holds a document whose amounts disagree, so a booked one has one currency.
    """
    doc = item.document
    amounts = doc.amountIncludingTaxes
    excluding = amounts.excludingTaxes if amounts else None
    including = amounts.includingTaxes if amounts else None
    taxes = list(amounts.taxes) if amounts else []
    currencies = [m.currency for m in (including, excluding, *taxes) if m is not None]
    return DocumentSummary(
        document_number=doc.documentNumber,
        type=doc.type,
        owner_id=doc.owner.id if doc.owner else None,
        owner_name=_owner_name(item),
        excluding_taxes=excluding.value if excluding else None,
        taxes=sum((tax.value for tax in taxes), Decimal(0)) if taxes else None,
        including_taxes=including.value if including else None,
        currency=next((c for c in currencies if c), None),
        document_date=doc.documentDate.isoformat() if doc.documentDate else None,
    )


def _owner_name(item: InboxItem) -> str | None:
    owner = item.document.owner
    if owner is None:
        return None
    full = " ".join(part for part in (owner.firstName, owner.lastName) if part)
    return owner.name or full or None


def _uncertain_message(document_id: int, error: PermanentError) -> str:
    return (
        f"Lucca answered {error} after an earlier booking call of ours "
        "that may have gone through: no proof either way. Once a complete listing no longer "
        f"shows document {document_id} it is recorded as booked; while Lucca still lists it, "
        "check in Lucca whether it is booked before booking it by hand; its invoice number "
        "stays claimed"
    )


#: A GET of one document is an inference (lucca-api.md): its refusal may be about the route.
_GET_HINT = (
    " (GET of one document is an inferred route: if this tenant does not serve it, every"
    " document that needs a read fails this way)"
)


def _failure_reason(error: PermanentError) -> str:
    """The error as the dead-letter reason; a refused GET says the route itself may be absent."""
    text = str(error)
    if error.endpoint == "get" and error.status in (404, 405):
        return text + _GET_HINT
    return text


def _was_booking(state: DocumentState | None) -> bool:
    """An earlier attempt's book call may have been applied unseen (a later delivery must not
    take a refusal for proof either)."""
    return state is not None and state.may_be_booked


def _changed_since(listed: InboxItem, fresh: InboxItem) -> bool:
    """Anything moved since the listing: the stamp, or any value (a stamp may not move)."""
    if listed.changed_at != fresh.changed_at:
        return True
    return listed.model_dump(mode="json") != fresh.model_dump(mode="json")


def _as_answered(read: InboxItem, answer: InboxItem) -> InboxItem:
    """What Lucca holds after the PUT by its answer; where the answer is silent, as last read.

    One published version of the PUT's response leaves out ``type``, ``ocrStatus`` and every
    ``currency``. A field the answer does not carry says nothing; a reset field comes back null.
    """
    said = answer.model_dump(mode="json", exclude_unset=True)
    return InboxItem.model_validate(_overlay(read.model_dump(mode="json"), said))


def _overlay(base: Any, top: Any) -> Any:
    """``top`` over ``base``, key by key; lists of the same length item by item."""
    if isinstance(base, dict) and isinstance(top, dict):
        return {**base, **{key: _overlay(base.get(key), value) for key, value in top.items()}}
    if isinstance(base, list) and isinstance(top, list) and len(base) == len(top):
        return [_overlay(old, new) for old, new in zip(base, top, strict=True)]
    return top


def _state_json(write: InboxDocumentWrite) -> dict[str, Any]:
    """The document's state in a write body: ``action`` is a command, never held by Lucca."""
    return {key: value for key, value in write.to_json().items() if key != "action"}


def _not_kept_message(differences: list[FieldChange]) -> str:
    fields = "; ".join(
        f"{_field_label(c.path)}: sent {_shown(c.before)}, Lucca holds {_shown(c.after)}"
        for c in differences
    )
    return (
        f"Lucca did not keep the update as sent ({fields}) and the update rules would change "
        "it again: not updated a second time; a person must look"
    )


def _field_label(path: str) -> str:
    name = FIELD_NAMES.get(path)
    return f"{name} ({path})" if name else path


def _shown(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _modified_at(item: InboxItem) -> str:
    stamp = item.changed_at
    return stamp.isoformat() if stamp else ""


def _decision_detail(outcome: RulesOutcome) -> dict[str, Any]:
    return {
        "rulesApplied": list(outcome.applied),
        "diff": [{"field": c.path, "before": c.before, "after": c.after} for c in outcome.changes],
    }
