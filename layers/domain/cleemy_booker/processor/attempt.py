"""One attempt at a document: the requests it has made so far, the document as it last decided
on it, and how that document is summed up for the ledger."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from ..client import LuccaClient
from ..ledger import DocumentSummary
from ..models import InboxItem, attachment_file_ids


@dataclass
class Attempt:
    """Made when an attempt begins; every part of it reads and updates this one object."""

    client: LuccaClient
    #: The client's request ids before this attempt: the ones after it are this attempt's.
    request_ids_seen: int = field(init=False)
    #: The document as this attempt last decided on it: what a failure records as its summary.
    decided: InboxItem | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.request_ids_seen = len(self.client.request_ids)

    def new_request_ids(self) -> list[str]:
        return list(self.client.request_ids[self.request_ids_seen :])

    def decided_summary(self) -> DocumentSummary | None:
        return summarize(self.decided) if self.decided is not None else None


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
        lucca_document_id=doc.id,
        created_at=doc.createdAt.isoformat() if doc.createdAt else None,
        attachment_files=attachment_file_ids(doc.attachments),
    )


def modified_at_of(item: InboxItem) -> str:
    """The document's change stamp as the ledger keeps it ("" when Lucca sent none)."""
    stamp = item.changed_at
    return stamp.isoformat() if stamp else ""


def _owner_name(item: InboxItem) -> str | None:
    owner = item.document.owner
    if owner is None:
        return None
    full = " ".join(part for part in (owner.firstName, owner.lastName) if part)
    return owner.name or full or None
