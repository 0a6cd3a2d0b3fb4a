"""The document's update: a PUT of what the rules changed, and the decision taken again on
Lucca's answer, which is what gets booked.

Never revert a person's edit: a PUT is the whole document and Lucca honours no precondition, so
a PUT is built from a read made in this attempt — the GET sent right before it when the decision
was taken on the listed item — and the decision is taken again if the document moved since the
listing. (An edit landing while our PUT is on its way is the one window no client can close.)
Lucca's answer to the PUT is what gets booked, so the gate looks at it again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from ..client import LuccaClient
from ..errors import PermanentError
from ..gate import FIELD_NAMES, HoldReason
from ..ledger import DocumentState, DocumentStates, Status
from ..models import InboxDocumentWrite, InboxItem, to_write_shape
from ..rules import FieldChange, RuleSet, RulesOutcome, diff_json
from .attempt import Attempt, modified_at_of
from .deciding import Deciding
from .numbers import NumberGuard
from .outcomes import Decision

#: Hold: Lucca's answer to our PUT differs from what was sent and the rules would PUT again.
UPDATE_NOT_KEPT = "update_not_kept"


@dataclass
class Updating:
    """The PUT and what follows from Lucca's answer to it."""

    client: LuccaClient
    states: DocumentStates
    rules: RuleSet
    deciding: Deciding
    numbers: NumberGuard
    attempt: Attempt

    def reread(self, decision: Decision) -> Decision:
        """Read the document again just before a PUT built from the listing.

        A PUT replaces the whole document and Lucca honours no precondition: a body built from
        an item listed minutes ago would put back every value a person changed since. So the
        body is built from what Lucca holds now (the published read's ``document`` part under
        the listed item's top level: ``LuccaClient.read_document``), and the decision taken
        again when it moved (it may need no update any more, or be held). One GET, only for
        documents to update.
        """
        listed = decision.item
        fresh = self.client.read_document(listed.document_id, listed, just_listed=True)
        if not _changed_since(listed, fresh):
            return decision
        again = self.deciding.decide(fresh)
        seen = {"listedModifiedAt": modified_at_of(listed), "modifiedAt": modified_at_of(fresh)}
        return replace(again, detail={**again.detail, "changedSinceListing": seen})

    def update(self, decision: Decision, state: DocumentState | None) -> Decision:
        """PUT the rules' changes, then decide again on Lucca's answer (what it now holds)."""
        item, sent = decision.item, decision.outcome
        try:
            answer = self.client.update_document(item.document_id, sent.write)
        except PermanentError:
            # Not updated, so not booked: the number must not block the document replacing it.
            self.numbers.release(item, sent, state)
            raise
        self.states.record(
            item.document_id,
            Status.UPDATED,
            "updated",
            modified_at=modified_at_of(answer),
            detail={**decision.ledger_detail(), "requestIds": self.attempt.new_request_ids()},
        )
        answered = self._decide_on_answer(decision, answer)
        if not answered.reasons:
            answered = self._follow_number(decision, answered, state)
        if answered.reasons:
            self.numbers.release(item, sent, state)  # held before any book call
        return answered

    def _decide_on_answer(self, decision: Decision, answer: InboxItem) -> Decision:
        """The gate on what Lucca answered the PUT with: that is what a book would book.

        Lucca may not keep what was sent (an amount normalised, a field reset). Then the
        decision is taken on what it holds; if the rules would change it again, a second PUT
        would likely be answered the same way: held for a person instead of a ping-pong.
        """
        sent = decision.outcome
        holds_item = _as_answered(decision.item, answer)
        self.attempt.decided = holds_item
        holds = to_write_shape(holds_item)
        differences = diff_json(_state_json(sent.write), _state_json(holds))
        if not differences:
            # Kept as sent; read-only fields (OCR status ...) may still have moved.
            kept = RulesOutcome(holds, sent.applied, sent.changes)
            return Decision(
                holds_item, kept, self.deciding.review(holds_item, kept), decision.detail
            )
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
        return Decision(holds_item, now, self.deciding.review(holds_item, now), detail)

    def _follow_number(
        self, sent: Decision, answered: Decision, state: DocumentState | None
    ) -> Decision:
        """Lucca's answer may carry another invoice number (normalised): claim that one."""
        before = self.numbers.key(sent.item, sent.outcome)
        if self.numbers.key(answered.item, answered.outcome) == before:
            return answered
        duplicate = self.numbers.claim(answered.item, answered.outcome)
        if duplicate is not None:
            return replace(answered, reasons=[duplicate])
        self.numbers.release(sent.item, sent.outcome, state)
        return answered


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
