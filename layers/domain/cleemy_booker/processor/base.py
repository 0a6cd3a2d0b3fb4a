"""The processor's collaborators and settings, and the steps every other one takes: decide on
the document as it stands, hold it, and say which requests this attempt made."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from ..client import LuccaClient
from ..gate import GateConfig, HoldReason, review
from ..ledger import DocumentSummary, Ledger, Status
from ..models import InboxItem
from ..rules import RuleSet, RulesOutcome
from .outcomes import Decision, ProcessResult


@dataclass
class ProcessorBase:
    """What every step reads: the collaborators (each passed in), the settings, and what this
    attempt has done so far."""

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


def _modified_at(item: InboxItem) -> str:
    stamp = item.changed_at
    return stamp.isoformat() if stamp else ""
