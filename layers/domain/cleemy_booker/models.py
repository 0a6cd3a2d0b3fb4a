"""Typed shapes of the Lucca Cleemy Procurement inbox API.

Read shapes keep every field the API sends, known or not (``extra="allow"``): Lucca may add
fields at any time, and a PUT is the *complete* representation, so a field we drop on the way
in would be reset on the way out.

Enumerations are open for the same reason: Lucca may add a value at any time, so a field with a
published list of values takes any string. An unknown value is read, kept and sent back as it
came; deciding what it means for booking is the review gate's job (it holds the document).

The write shape differs from the read shape (see ``to_write_shape``): read-only fields are not
sent, and ``owner {id, ...}`` becomes ``ownerId``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

# --- open enumerations -----------------------------------------------------------------------

#: A value of an enumeration Lucca may extend: any string (see ``KNOWN_VALUES``).
OpenEnum = str

OCR_PENDING = "Pending"
OCR_PROCESSING = "Processing"
OCR_PROCESSED = "Processed"
OCR_FAILED = "Failed"
OCR_NOT_APPLICABLE = "NotApplicable"
OCR_STATUSES: frozenset[str] = frozenset(
    {OCR_PENDING, OCR_PROCESSING, OCR_PROCESSED, OCR_FAILED, OCR_NOT_APPLICABLE}
)
OCR_FINISHED: frozenset[str] = frozenset({OCR_PROCESSED, OCR_NOT_APPLICABLE})

INVOICE = "Invoice"
CREDIT_NOTE = "CreditNote"
DOCUMENT_TYPES: frozenset[str] = frozenset({INVOICE, CREDIT_NOTE})

BANK_TRANSFER = "BankTransfer"
PAYMENT_METHODS: frozenset[str] = frozenset({BANK_TRANSFER})

#: Enumerations whose values Lucca publishes, by path, as published when this was written.
#: A value outside its set is one Lucca added since: valid, but nobody here knows what it means.
KNOWN_VALUES: Mapping[str, frozenset[str]] = {
    "document.ocrStatus": OCR_STATUSES,
    "document.type": DOCUMENT_TYPES,
    "document.paymentDetails.paymentMethod": PAYMENT_METHODS,
}

# Free strings Lucca only gives examples of (no list is published, so none is "unknown").
#: ``document.context.purchase.type``: the value in Lucca's PUT example.
PURCHASE_SUBSCRIPTION = "Subscription"
#: ``source.type``: how the document reached the inbox, Lucca's two examples.
SOURCE_EMAIL = "email"
SOURCE_UPLOAD = "upload"


def is_unknown_value(path: str, value: str | None) -> bool:
    """True for a value Lucca added after ``KNOWN_VALUES`` was written (null is not a value)."""
    known = KNOWN_VALUES.get(path)
    return known is not None and value is not None and value not in known


def _decimal_as_json_number(value: Decimal) -> int | float:
    """Amounts are JSON numbers on the wire; pydantic would write a Decimal as a string."""
    return int(value) if value == value.to_integral_value() else float(value)


#: An amount: exact arithmetic in Python, a plain JSON number on the wire.
Amount = Annotated[Decimal, PlainSerializer(_decimal_as_json_number, when_used="json")]


class _ApiModel(BaseModel):
    """Lenient on input (unknown fields kept), exact on output (only what was set).

    Each model's validator is built on its first use, not at import: a function pays at cold
    start only for the shapes it reads or writes (the poller never builds the write shape)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, defer_build=True)


class Money(_ApiModel):
    value: Amount
    #: Optional on read: developers.luccasoftware.com's PUT response has no currency, and that
    #: response must still parse (the document was updated; failing it would lose track of that).
    currency: str | None = None


class TaxLine(_ApiModel):
    rateTypeId: int | None = None
    value: Amount
    currency: str | None = None


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
    type: OpenEnum | None = None


class DocumentContext(_ApiModel):
    purchase: PurchaseRef | None = None


class BankAccount(_ApiModel):
    iban: str | None = None
    bic: str | None = None


class PaymentDetails(_ApiModel):
    paymentMethod: OpenEnum | None = None
    bankAccount: BankAccount | None = None


class _WritableDocumentFields(_ApiModel):
    """The fields of a document that read and write shapes share, value for value."""

    type: OpenEnum | None = None
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
    ocrStatus: OpenEnum | None = None
    createdAt: datetime | None = None
    modifiedAt: datetime | None = None
    author: dict[str, Any] | None = None
    modifier: dict[str, Any] | None = None


class Source(_ApiModel):
    """``InboxItem.source``: how the document arrived (read-only)."""

    type: OpenEnum | None = None


class InboxItem(_ApiModel):
    """One item of ``GET /cleemy-procurement/services/inbox`` (read shape)."""

    id: int
    document: Document
    source: Source | None = None
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


class BookedDocument(_ApiModel):
    """One item of ``GET /cleemy-procurement/api/booked-documents``: a document once booked.

    Lucca publishes the endpoint and its filters (``createdAt.from``, ``invoice.conformityStates``,
    ``creditNote.conformityStates``), not this shape: every field but ``id`` is inferred from the
    inbox's ``document`` (the same invoice, after booking) and may be absent. What a match on
    these fields proves is said in one place: ``poller.settling``."""

    id: int
    type: OpenEnum | None = None
    documentNumber: str | None = None
    documentDate: date | None = None
    amountIncludingTaxes: Amounts | None = None
    attachments: list[dict[str, Any]] = Field(default_factory=list)
    createdAt: datetime | None = None
    #: ``{"conformityState": ...}`` on an invoice, as its filter's name says (inferred).
    invoice: dict[str, Any] | None = None
    creditNote: dict[str, Any] | None = None


def attachment_file_ids(attachments: list[dict[str, Any]]) -> tuple[str, ...]:
    """The attachments' file ids (``attachments[].file.id``, uuids), sorted; an attachment
    without one is left out."""
    files = (a.get("file") for a in attachments if isinstance(a, dict))
    return tuple(sorted(str(f["id"]) for f in files if isinstance(f, dict) and f.get("id")))


class BookedPage(_ApiModel):
    """A booked-documents response: ``{"items": [...]}``, plus ``count`` with
    ``fields.root=count`` (the shape of every v4 list)."""

    items: list[BookedDocument]
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
#: Top-level fields of the read shape that are not state: the read ``action`` says what is
#: *available* (shape unpublished), the PUT's ``action`` is a command. Never copied.
COMMAND_ITEM_FIELDS: frozenset[str] = frozenset({"action"})
#: Display data of a purchase reference: Lucca fills it in from the purchase itself. Everything
#: else the purchase carries (``id``, ``type``, fields Lucca adds) is sent back as read.
READ_ONLY_PURCHASE_FIELDS: frozenset[str] = frozenset({"href", "name"})


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
    """Body of ``PUT /cleemy-procurement/services/inbox-documents/{id}``: the whole resource.

    Unknown writable top-level fields of the item ride along as extras, like those of ``document``.
    """

    document: WriteDocument
    action: WriteAction | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON body: every writable field, nulls included, and ``action`` only if given.

        Nulls are sent because a PUT that omits a field may reset it anyway. ``action`` is the
        exception: it is a command, not a field of the document, so there is nothing to keep by
        sending it, and ``"action": null`` is a command of unknown meaning nobody asked for.
        """
        body = self.model_dump(mode="json", exclude_none=False)
        if self.action is None:
            del body["action"]
        return body


def _write_context(context: DocumentContext | None) -> dict[str, Any] | None:
    """Every key of ``context`` as read; the purchase loses only its display data."""
    if context is None:
        return None
    written = context.model_dump(mode="json")
    if context.purchase is not None:
        written["purchase"] = context.purchase.model_dump(
            mode="json", exclude=set(READ_ONLY_PURCHASE_FIELDS)
        )
    return written


def _unknown_writable(
    model: BaseModel, read_only: frozenset[str], written: frozenset[str]
) -> dict[str, Any]:
    """The fields this model does not know, minus read-only ones and names the write sets itself.

    An unknown field named like a write-shape field (Lucca adding ``ownerId`` to the read shape,
    say) is left to the write's own mapping, which is what the write means by that name.
    """
    return {
        key: value
        for key, value in (model.model_extra or {}).items()
        if key not in read_only and key not in written
    }


_WRITE_DOCUMENT_NAMES = frozenset(WriteDocument.model_fields)
_WRITE_BODY_NAMES = frozenset(InboxDocumentWrite.model_fields)


def to_write_shape(item: InboxItem) -> InboxDocumentWrite:
    """Map an inbox item (read shape) to the PUT body (write shape), losing no writable data.

    Read-only fields are left out, ``owner`` becomes ``ownerId``, the purchase reference loses
    its display data (``href``, ``name``), and every field this model does not know, at any depth
    and at the top level, is carried through untouched. ``action`` is not carried (see
    ``COMMAND_ITEM_FIELDS``): the PUT's ``action`` is a command, sent only on purpose.

    Which of Lucca's two published bodies: the superset. developers.lucca.fr's PUT body has
    ``document.type``, ``context.purchase.type``, a ``currency`` on every amount and
    ``paymentDetails.paymentMethod``; developers.luccasoftware.com's leaves those four out. We
    send all four, with the values as read. A server following lucca.fr treats them as writable
    fields of a complete representation: leaving them out would reset them (a document about to
    be booked with no type, amounts with no currency) or be refused. A server following
    luccasoftware.com does not bind them: JSON members a model does not declare are ignored
    (ASP.NET's default), and a field the PUT cannot write is a field the PUT cannot reset, so
    sending them loses nothing there. The values are the ones read, so under either server they
    change nothing unless a rule changed them on purpose. The superset's one failure mode is a
    server that refuses unknown members: a loud 400 and a failed document, never silent loss,
    which is what sending the subset would risk under lucca.fr. One limit stays under
    luccasoftware.com: a rule that changes one of the four has no effect there, and that
    version's response carries neither ``type`` nor ``currency`` to show it.
    """
    doc = item.document
    shared = {name: getattr(doc, name) for name in _WritableDocumentFields.model_fields}
    write = WriteDocument(
        ownerId=doc.owner.id if doc.owner else None,
        context=_write_context(doc.context),
        **shared,
        **_unknown_writable(doc, READ_ONLY_DOCUMENT_FIELDS, _WRITE_DOCUMENT_NAMES),
    )
    top_level = _unknown_writable(item, READ_ONLY_ITEM_FIELDS, _WRITE_BODY_NAMES)
    return InboxDocumentWrite(document=write, **top_level)


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
