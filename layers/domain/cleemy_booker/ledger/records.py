"""What the ledger records and answers, as plain values: a document's status, state and summary,
the events of its trail, and the outcome of a claim or a lease. No DynamoDB here: ``items`` turns
these into the table's items and back."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    QUEUED = "QUEUED"
    #: Decided in a dry run: what would have been done is in the trail; nothing was done.
    PLANNED = "PLANNED"
    UPDATED = "UPDATED"
    BOOKING = "BOOKING"
    BOOKED = "BOOKED"
    HELD = "HELD"
    FAILED = "FAILED"
    #: Gone from the inbox before any booking call of ours (Lucca answered 404 to the read or
    #: the book): a person deleted it or booked it by hand. Nobody's fault, not a failure; a
    #: listing that shows it again brings it back to work.
    GONE = "GONE"
    #: Not a document's state: a ``recon#`` item, the ledger and Lucca disagreeing about it.
    DISCREPANCY = "DISCREPANCY"
    #: Not a document's state: a ``novelty#`` item, something new Lucca sent (``novelty``).
    NOVELTY = "NOVELTY"


#: Statuses in which a previous attempt may have changed the document in Lucca.
TOUCHED = frozenset({Status.UPDATED, Status.BOOKING})
#: Hold reason code: a booking call of ours may have gone through unseen, and nothing Lucca
#: answered since proves it either way. The processor holds with it; the poller confirms such a
#: document booked once a complete listing no longer shows it (``uncertain_bookings``).
BOOK_UNCERTAIN = "book_uncertain"


#: Longest text a summary keeps of one field (a number, a name): an OCR misread or a supplier's
#: long name must not make every state write of the document cost more.
SUMMARY_TEXT_MAX = 200
#: Lucca's invoices carry 1 to 3 attachments; a few more are kept, never an unbounded list.
ATTACHMENT_FILES_MAX = 5


@dataclass(frozen=True)
class DocumentSummary:
    """What an accountant knows a document by, as the decision saw it: recorded on the state
    item by the write the decision makes anyway (no call of its own), read by the digest and
    the export without asking Lucca. ``taxes``: the tax lines added up."""

    document_number: str | None = None
    type: str | None = None
    owner_id: int | None = None
    owner_name: str | None = None
    excluding_taxes: Decimal | None = None
    taxes: Decimal | None = None
    including_taxes: Decimal | None = None
    currency: str | None = None
    document_date: str | None = None
    #: What finds the invoice again among Lucca's booked documents once it has left the inbox
    #: (``poller.settling``): ``document.id``, ``document.createdAt`` (ISO 8601) and the
    #: attachments' file ids.
    lucca_document_id: int | None = None
    created_at: str | None = None
    attachment_files: tuple[str, ...] = ()

    def to_attribute(self) -> dict[str, Any]:
        """A DynamoDB map; absent values are left out (the map stays small)."""
        texts = {
            "documentNumber": self.document_number,
            "type": self.type,
            "ownerName": self.owner_name,
            "currency": self.currency,
            "documentDate": self.document_date,
            "createdAt": self.created_at,
        }
        numbers = {
            "ownerId": None if self.owner_id is None else str(self.owner_id),
            "excludingTaxes": _number_text(self.excluding_taxes),
            "taxes": _number_text(self.taxes),
            "includingTaxes": _number_text(self.including_taxes),
            "documentId": None if self.lucca_document_id is None else str(self.lucca_document_id),
        }
        fields: dict[str, Any] = {
            name: {"S": value[:SUMMARY_TEXT_MAX]} for name, value in texts.items() if value
        }
        fields |= {name: {"N": value} for name, value in numbers.items() if value is not None}
        if self.attachment_files:
            files = self.attachment_files[:ATTACHMENT_FILES_MAX]
            fields["attachmentFiles"] = {"L": [{"S": f[:SUMMARY_TEXT_MAX]} for f in files]}
        return {"M": fields}

    @classmethod
    def from_attribute(cls, value: dict[str, Any]) -> DocumentSummary:
        fields: dict[str, Any] = value.get("M", {})

        def text(name: str) -> str | None:
            found = fields.get(name, {}).get("S")
            return str(found) if found is not None else None

        def number(name: str) -> Decimal | None:
            found = fields.get(name, {}).get("N")
            return Decimal(found) if found is not None else None

        owner = number("ownerId")
        inner = number("documentId")
        files = fields.get("attachmentFiles", {}).get("L", [])
        return cls(
            document_number=text("documentNumber"),
            type=text("type"),
            owner_id=None if owner is None else int(owner),
            owner_name=text("ownerName"),
            excluding_taxes=number("excludingTaxes"),
            taxes=number("taxes"),
            including_taxes=number("includingTaxes"),
            currency=text("currency"),
            document_date=text("documentDate"),
            lucca_document_id=None if inner is None else int(inner),
            created_at=text("createdAt"),
            attachment_files=tuple(str(f["S"]) for f in files if "S" in f),
        )


def _number_text(value: Decimal | None) -> str | None:
    """A DynamoDB number, fixed-point; None for one DynamoDB would refuse (more than 38
    significant digits, magnitude past 1E+125 or under 1E-130): a summary must never make the
    decision's own write fail, so an absurd amount (an OCR misread) is left out of it."""
    if value is None or not value.is_finite():
        return None
    if value:
        # Not ``normalize()``: it rounds to the context's 28 digits, hiding the excess.
        significant = "".join(map(str, value.as_tuple().digits)).strip("0")
        if len(significant) > 38 or not -130 <= value.adjusted() <= 125:
            return None
    return format(value, "f")


@dataclass(frozen=True)
class DocumentState:
    document_id: int
    status: Status
    modified_at: str = ""
    queued_until: float = 0.0
    updated_at: str = ""
    reasons: tuple[str, ...] = ()
    #: The document as last decided on (None: recorded before summaries, or never decided on).
    summary: DocumentSummary | None = None
    #: Held: when the hold began. A hold looked at again (``recheckAt``) and held again keeps
    #: its first time, where ``updated_at`` moves on with every look.
    held_since: str = ""
    #: Queued: a later version (``modifiedAt``) a listing showed while the message, carrying an
    #: older copy, was on its way ("" when none). The processor reads the document again
    #: rather than decide on the copy it was sent.
    listed_newer: str = ""
    #: How many times the document was recorded ``GONE`` (and listed again since, if now queued).
    gone_times: int = 0
    #: The updates we PUT and the booking, as the state carries them (``TRAIL_KINDS``): the
    #: export and the digest read a booked document's row without a query of its events. None:
    #: a state written before states carried them (or confirmed booked on outside evidence
    #: alone); its events tell (``LedgerQueries.trail_of_booking``).
    trail: BookingTrail | None = None

    @property
    def waiting_since(self) -> str:
        """Since when a held document waits for a person (``updated_at`` for older items)."""
        return self.held_since or self.updated_at

    @property
    def may_be_booked(self) -> bool:
        """A book call of ours may have been applied unseen: it marked ``BOOKING``, or it was
        held because a refusal or a 404 after such a call left that open. Only a 2xx from
        book, a complete listing without the document or Lucca's booked documents showing it
        (``poller.settling``) settles it."""
        if self.status is Status.BOOKING:
            return True
        uncertain = f"{BOOK_UNCERTAIN}:"
        return self.status is Status.HELD and any(r.startswith(uncertain) for r in self.reasons)


@dataclass(frozen=True)
class LedgerEvent:
    document_id: int
    at: str
    kind: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BookingTrail:
    """What the trail says about how a booked document was booked: the update rules that
    changed it in Lucca, the field changes sent, and Lucca's request ids, for the export."""

    rules: tuple[str, ...] = ()
    changes: tuple[dict[str, Any], ...] = ()
    request_ids: tuple[str, ...] = ()


#: The kinds of event whose detail makes the booking trail: each one is also appended to the
#: state item (its ``trail``), so a month's export reads the states alone.
TRAIL_KINDS = frozenset({"updated", "booked"})


def booking_trail(events: list[LedgerEvent]) -> BookingTrail:
    """Every update we PUT (any attempt: one that updated and then crashed before booking
    counts too, though the later booking event lists no rule), and every request id of the
    updates and the booking, each once, in order.

    Rules come from ``updated`` events only: a ``held`` event lists the rules that *would* have
    changed the document, but nothing was sent."""
    rules: dict[str, None] = {}
    changes: list[dict[str, Any]] = []
    request_ids: dict[str, None] = {}
    for event in events:
        if event.kind == "updated":
            rules.update(dict.fromkeys(event.detail.get("rulesApplied", [])))
            changes += event.detail.get("diff", [])
        if event.kind in ("updated", "booked"):
            request_ids.update(dict.fromkeys(event.detail.get("requestIds", [])))
    return BookingTrail(tuple(rules), tuple(changes), tuple(request_ids))


@dataclass(frozen=True)
class ClaimResult:
    claimed: bool
    previous: Status | None = None
    #: Refused: the earliest time a claim could succeed while the document stays unchanged in
    #: Lucca and the configuration stays the same (``inf``: only a change can make it claimable).
    #: The poller uses it to spare the same refused write on every run.
    retry_after: float = float("inf")
    #: The state's ``updatedAt`` before the claim ("" when there was no state): how long ago a
    #: refusing BOOKED was booked.
    updated_at: str = ""
    #: Refused: the version (``modifiedAt``) the ledger holds for the document ("" when none).
    modified_at: str = ""
    #: Claimed: the state item as it was (empty when there was none), for ``release_claim``.
    before: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def new(self) -> bool:
        """Claimed, and the ledger had no state for the document before."""
        return self.claimed and self.previous is None


@dataclass(frozen=True)
class LeaseResult:
    acquired: bool
    #: Refused: who holds the lease, and until when (epoch seconds), for the log.
    holder: str | None = None
    until: float | None = None
