"""Typed shapes of the Lucca Cleemy Procurement inbox API.

Read shapes keep every field the API sends, known or not (``extra="allow"``): Lucca may add
fields at any time, and a PUT is the *complete* representation, so a field we drop on the way
in would be reset on the way out.

The write shape differs from the read shape (see ``to_write_shape``): read-only fields are not
sent, and ``owner {id, ...}`` becomes ``ownerId``.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

OcrStatus = Literal["Pending", "Processing", "Processed", "Failed", "NotApplicable"]
OCR_FINISHED: frozenset[str] = frozenset({"Processed", "NotApplicable"})


def _decimal_as_json_number(value: Decimal) -> int | float:
    """Amounts are JSON numbers on the wire; pydantic would write a Decimal as a string."""
    return int(value) if value == value.to_integral_value() else float(value)


#: An amount: exact arithmetic in Python, a plain JSON number on the wire.
Amount = Annotated[Decimal, PlainSerializer(_decimal_as_json_number, when_used="json")]


class _ApiModel(BaseModel):
    """Lenient on input (unknown fields kept), exact on output (only what was set)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class Money(_ApiModel):
    value: Amount
    currency: str


class TaxLine(_ApiModel):
    rateTypeId: int | None = None
    value: Amount
    currency: str


class Amounts(_ApiModel):
    excludingTaxes: Money | None = None
    taxes: list[TaxLine] = Field(default_factory=list)
    includingTaxes: Money | None = None


class UserRef(_ApiModel):
    id: int
    href: str | None = None
    name: str | None = None
    firstName: str | None = None
    lastName: str | None = None
    pictureHref: str | None = None


class PurchaseRef(_ApiModel):
    id: int
    href: str | None = None
    name: str | None = None
    type: str | None = None


class DocumentContext(_ApiModel):
    purchase: PurchaseRef | None = None


class BankAccount(_ApiModel):
    iban: str | None = None
    bic: str | None = None


class PaymentDetails(_ApiModel):
    paymentMethod: str | None = None
    bankAccount: BankAccount | None = None


class _WritableDocumentFields(_ApiModel):
    """The fields of a document that read and write shapes share, value for value."""

    type: Literal["Invoice", "CreditNote"] | None = None
    documentDate: date | None = None
    documentNumber: str | None = None
    amountIncludingTaxes: Amounts | None = None
    accountingLabel: str | None = None
    comment: str | None = None
    intraCommunityTaxes: bool = False
    dueDate: date | None = None
    paymentDetails: PaymentDetails | None = None


class Document(_WritableDocumentFields):
    """``InboxItem.document``: the invoice before booking."""

    id: int
    owner: UserRef | None = None
    context: DocumentContext | None = None
    documentBreakdown: dict[str, Any] | None = None
    attachments: list[dict[str, Any]] = Field(default_factory=list)
    ocrStatus: OcrStatus | None = None
    createdAt: datetime | None = None
    modifiedAt: datetime | None = None
    author: dict[str, Any] | None = None
    modifier: dict[str, Any] | None = None


class InboxItem(_ApiModel):
    """One item of ``GET /cleemy-procurement/services/inbox`` (read shape)."""

    id: int
    document: Document
    source: dict[str, Any] | None = None
    action: dict[str, Any] | None = None
    createdAt: datetime | None = None
    modifiedAt: datetime | None = None
    author: dict[str, Any] | None = None
    modifier: dict[str, Any] | None = None

    @property
    def document_id(self) -> int:
        """The id the PUT and book URLs take (``inbox-documents/{id}``)."""
        return self.id

    @property
    def changed_at(self) -> datetime | None:
        """The latest modification we can see, used to notice a held document has changed."""
        stamps = [s for s in (self.modifiedAt, self.document.modifiedAt) if s is not None]
        return max(stamps) if stamps else None


class InboxPage(_ApiModel):
    """A list response: ``{"items": [...]}``, plus ``count`` with ``fields.root=count``."""

    items: list[InboxItem]
    count: int | None = None


# --- write shape ------------------------------------------------------------------------------

#: Fields of ``document`` the API fills in itself; they are never sent back.
READ_ONLY_DOCUMENT_FIELDS: frozenset[str] = frozenset(
    {
        "id",
        "attachments",
        "ocrStatus",
        "createdAt",
        "modifiedAt",
        "author",
        "modifier",
        "documentBreakdown",
    }
)
#: Top-level fields of an inbox item that the PUT does not take.
READ_ONLY_ITEM_FIELDS: frozenset[str] = frozenset(
    {"id", "source", "createdAt", "modifiedAt", "author", "modifier"}
)
#: Read-only parts of nested references: the write shape carries ids, not display data.
_PURCHASE_WRITE_FIELDS = ("id", "type")


class WriteDocument(_WritableDocumentFields):
    """``document`` in the PUT body. Unknown writable fields ride along as extras."""

    ownerId: int | None = None
    context: dict[str, Any] | None = None


class WriteAction(_ApiModel):
    type: str
    purchaseId: int | None = None
    paymentId: int | None = None
    installmentId: int | None = None
    disputeId: int | None = None
    autoConfirmation: bool | None = None


class InboxDocumentWrite(_ApiModel):
    """Body of ``PUT /cleemy-procurement/services/inbox-documents/{id}``: the whole resource."""

    document: WriteDocument
    action: WriteAction | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON body. Nulls are sent: a PUT that omits a field may reset it anyway."""
        return self.model_dump(mode="json", exclude_none=False)


def _write_context(context: DocumentContext | None) -> dict[str, Any] | None:
    if context is None or context.purchase is None:
        return None if context is None else {"purchase": None}
    purchase = context.purchase.model_dump(mode="json", include=set(_PURCHASE_WRITE_FIELDS))
    return {"purchase": purchase}


def to_write_shape(item: InboxItem) -> InboxDocumentWrite:
    """Map an inbox item (read shape) to the PUT body (write shape).

    Read-only fields are left out, ``owner`` becomes ``ownerId``, the purchase reference keeps
    only its id and type, and every field this model does not know is carried through untouched.
    ``action`` is not carried: the read shape's ``action`` describes what is *available*, its
    shape is not published, and the PUT's ``action`` is a command; we only send one on purpose.
    """
    doc = item.document
    known = set(Document.model_fields)
    unknown_writable = {
        key: value
        for key, value in (doc.model_extra or {}).items()
        if key not in READ_ONLY_DOCUMENT_FIELDS and key not in known
    }
    shared = {name: getattr(doc, name) for name in _WritableDocumentFields.model_fields}
    write = WriteDocument(
        ownerId=doc.owner.id if doc.owner else None,
        context=_write_context(doc.context),
        **shared,
        **unknown_writable,
    )
    return InboxDocumentWrite(document=write)


# --- queue message ---------------------------------------------------------------------------


class DocumentMessage(BaseModel):
    """One SQS message: a document to process.

    ``{"documentId": 123}`` alone is valid (manual replay); the poller also sends the item as
    listed and when, so the processor can skip a GET while the listing is fresh.
    """

    model_config = ConfigDict(extra="forbid")

    #: Lucca ids are 64-bit integers; anything larger is not an id (and DynamoDB refuses it).
    documentId: int = Field(gt=0, le=2**63 - 1)
    item: InboxItem | None = None
    listedAt: datetime | None = None
    #: How many times the budget deferred this document (not a failure: see the processor).
    deferrals: int = Field(default=0, ge=0)
