"""The invoice number, claimed in the ledger by the document about to be booked, and given back
only when no booking call of ours can have gone through."""

from __future__ import annotations

from dataclasses import dataclass

from ..duplicates import duplicate_number, duplicate_scope
from ..gate import GateConfig, HoldReason, duplicate_reason
from ..ledger import DocumentState, InvoiceNumbers
from ..models import InboxItem
from ..rules import RulesOutcome


@dataclass
class NumberGuard:
    """Claims and gives back a document's invoice number in the ledger's number store."""

    numbers: InvoiceNumbers
    gate: GateConfig

    def key(self, item: InboxItem, outcome: RulesOutcome) -> tuple[str, str] | None:
        """(scope, number) under which the invoice number is claimed, as the gate checks it."""
        if not self.gate.check_duplicate_numbers:
            return None
        scope = duplicate_scope(item, outcome.write)
        number = duplicate_number(outcome.write)
        return (scope, number) if scope is not None and number is not None else None

    def claim(self, item: InboxItem, outcome: RulesOutcome) -> HoldReason | None:
        """Take the number for this document; the duplicate hold when another holds it."""
        key = self.key(item, outcome)
        if key is None:
            return None
        scope, number = key
        other = self.numbers.claim_number(scope, number, item.document_id)
        return None if other is None else duplicate_reason(number, other, scope)

    def release(self, item: InboxItem, outcome: RulesOutcome, state: DocumentState | None) -> None:
        """Give the number back: only when no booking call of ours can have gone through.

        The callers know this attempt's book was never sent or was refused at its only call;
        an earlier attempt that marked BOOKING may still have booked the document, and then
        the number must keep blocking another document that carries it.
        """
        if was_booking(state):
            return
        key = self.key(item, outcome)
        if key is not None:
            self.numbers.release_number(*key, item.document_id)


def was_booking(state: DocumentState | None) -> bool:
    """An earlier attempt's book call may have been applied unseen (a later delivery must not
    take a refusal for proof either)."""
    return state is not None and state.may_be_booked
