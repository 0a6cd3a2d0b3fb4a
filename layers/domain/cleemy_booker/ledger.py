"""The ledger: per document, where it stands and every decision taken about it.

One DynamoDB table, seven kinds of item:

* ``doc#{id}`` / ``state`` — the document's current status. The poller claims a document here
  before queueing it (a conditional write), so overlapping scheduled runs never queue it twice
  while it waits or is in progress; the processor moves it on (booking, booked, held, failed).
  With each decision it also writes a ``summary`` of the document as decided on (number, type,
  owner, amounts, date), so a digest or an export can name a document without asking Lucca,
  and, while it is held, since when (``heldSince``: a recheck that holds it again keeps it).
* ``doc#{id}`` / ``event#{time}#{n}`` — the audit trail: each decision with its time, the rules
  applied, the field-level diff that was PUT, the reasons, and Lucca's request ids.
* ``number#{scope}#{number}`` / ``claim`` — which document holds an invoice number within a
  purchase or owner: claimed atomically before booking, so two documents with the same number
  are never both booked.
* ``lease#{name}`` / ``lease`` — who may run alone right now (one poller at a time), until when;
  outside the status index (no ``statusKey``), gone by TTL (``expiresAt``) once it lapsed.
* ``digest#{name}`` / ``digest`` — up to when the last published digest reported
  (``publishedUntil``), so the next one tells what happened since; outside the status index.
* ``listing#{name}`` / ``listing`` — when the last listing that saw the whole inbox started
  (``startedAt``): a document it would have listed is one the ledger should know; outside the
  status index.
* ``recon#{id}`` / ``recon`` — a disagreement between the ledger and Lucca about a document
  (booked here, still in the inbox there; in the inbox, unknown here), in the status index as
  ``DISCREPANCY`` for the digest, written once, gone by TTL (``expiresAt``) after some weeks.

Attribute values are written as the low-level client takes them (``{"S": ...}``), not through
boto3's ``TypeSerializer``: every value here is a string or an integer (ids, epoch seconds),
its twin, ``TypeDeserializer``, hands integers back as ``Decimal``, the serializer refuses floats,
and each conditional write's values sit next to the expression that reads them.
"""

from __future__ import annotations

import json
import math
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from .clock import utc_iso

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient


class Status(StrEnum):
    QUEUED = "QUEUED"
    #: Decided in a dry run: what would have been done is in the trail; nothing was done.
    PLANNED = "PLANNED"
    UPDATED = "UPDATED"
    BOOKING = "BOOKING"
    BOOKED = "BOOKED"
    HELD = "HELD"
    FAILED = "FAILED"
    #: Not a document's state: a ``recon#`` item, the ledger and Lucca disagreeing about it.
    DISCREPANCY = "DISCREPANCY"


#: Statuses in which a previous attempt may have changed the document in Lucca.
TOUCHED = frozenset({Status.UPDATED, Status.BOOKING})
#: Hold reason code: a booking call of ours may have gone through unseen, and nothing Lucca
#: answered since proves it either way. The processor holds with it; the poller confirms such a
#: document booked once a complete listing no longer shows it (``uncertain_bookings``).
BOOK_UNCERTAIN = "book_uncertain"
STATUS_INDEX = "ByStatus"
#: The state attributes a claim for the queue sets, and those it removes (``claim_for_queue``);
#: ``release_claim`` puts back what was there.
_CLAIM_SETS = ("status", "documentId", "modifiedAt", "queuedUntil", "updatedAt", "statusKey")
_CLAIM_REMOVES = ("reasons", "recheckAt", "configVersion")
#: Pages one count reads at most. A ``Select="COUNT"`` query still reads (and bills) every item
#: it counts, up to 1 MB a page: thousands of documents. Past ten pages the count is a lower
#: bound: an alarm on held documents needs to know there are many, not exactly how many, and a
#: runaway pile of holds cannot make each count read the whole index.
COUNT_MAX_PAGES = 10


#: Longest text a summary keeps of one field (a number, a name): an OCR misread or a supplier's
#: long name must not make every state write of the document cost more.
SUMMARY_TEXT_MAX = 200


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

    def to_attribute(self) -> dict[str, Any]:
        """A DynamoDB map; absent values are left out (the map stays small)."""
        texts = {
            "documentNumber": self.document_number,
            "type": self.type,
            "ownerName": self.owner_name,
            "currency": self.currency,
            "documentDate": self.document_date,
        }
        numbers = {
            "ownerId": None if self.owner_id is None else str(self.owner_id),
            "excludingTaxes": _number_text(self.excluding_taxes),
            "taxes": _number_text(self.taxes),
            "includingTaxes": _number_text(self.including_taxes),
        }
        fields = {name: {"S": value[:SUMMARY_TEXT_MAX]} for name, value in texts.items() if value}
        fields |= {name: {"N": value} for name, value in numbers.items() if value is not None}
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

    @property
    def waiting_since(self) -> str:
        """Since when a held document waits for a person (``updated_at`` for older items)."""
        return self.held_since or self.updated_at

    @property
    def may_be_booked(self) -> bool:
        """A book call of ours may have been applied unseen: it marked ``BOOKING``, or it was
        held because a refusal or a 404 after such a call left that open. Only a 2xx from
        book or a complete listing without the document settles it."""
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


def _doc_key(document_id: int, sort: str = "state") -> dict[str, Any]:
    return {"pk": {"S": f"doc#{document_id}"}, "sk": {"S": sort}}


def _lease_key(name: str) -> dict[str, Any]:
    return {"pk": {"S": f"lease#{name}"}, "sk": {"S": "lease"}}


def _digest_key(name: str) -> dict[str, Any]:
    return {"pk": {"S": f"digest#{name}"}, "sk": {"S": "digest"}}


def _listing_key(name: str) -> dict[str, Any]:
    return {"pk": {"S": f"listing#{name}"}, "sk": {"S": "listing"}}


def _recon_key(document_id: int) -> dict[str, Any]:
    return {"pk": {"S": f"recon#{document_id}"}, "sk": {"S": "recon"}}


def _conditional_failed(exc: ClientError) -> bool:
    return str(exc.response.get("Error", {}).get("Code")) == "ConditionalCheckFailedException"


def _old_item(exc: ClientError) -> dict[str, Any]:
    """The item as it was when a condition failed (``ReturnValuesOnConditionCheckFailure``)."""
    response: dict[str, Any] = dict(exc.response)
    item = response.get("Item")
    return item if isinstance(item, dict) else {}


def _status_of(item: dict[str, Any]) -> Status | None:
    return Status(item["status"]["S"]) if "status" in item else None


def _claimable_after(old: dict[str, Any], ttl_seconds: int, dry_run: bool) -> float:
    """When a refused claim could succeed with nothing changed: the conditions above, in time."""
    status = old.get("status", {}).get("S")
    if status == Status.QUEUED:
        return float(old.get("queuedUntil", {}).get("N", "0"))
    if status in (Status.HELD, Status.FAILED):
        return float(old["recheckAt"]["N"]) if "recheckAt" in old else float("inf")
    if status in (Status.UPDATED, Status.BOOKING) and "updatedAt" in old:
        return datetime.fromisoformat(old["updatedAt"]["S"]).timestamp() + ttl_seconds
    if status == Status.PLANNED and not dry_run:
        return 0.0
    return float("inf")


def _state_from_item(item: dict[str, Any]) -> DocumentState:
    reasons = json.loads(item["reasons"]["S"]) if "reasons" in item else []
    return DocumentState(
        document_id=int(item["documentId"]["N"]),
        status=Status(item["status"]["S"]),
        modified_at=item.get("modifiedAt", {}).get("S", ""),
        queued_until=float(item.get("queuedUntil", {}).get("N", "0")),
        updated_at=item.get("updatedAt", {}).get("S", ""),
        reasons=tuple(reasons),
        summary=DocumentSummary.from_attribute(item["summary"]) if "summary" in item else None,
        held_since=item.get("heldSince", {}).get("S", ""),
    )


def _state_update(
    document_id: int,
    status: Status,
    at: str,
    *,
    modified_at: str | None,
    reasons: list[str] | None,
    recheck_at: float | None,
    config: str | None,
    summary: DocumentSummary | None,
) -> tuple[str, dict[str, Any]]:
    """The state item's update for one decision (``Ledger.record``): expression and values."""
    values: dict[str, Any] = {
        ":s": {"S": status},
        ":id": {"N": str(document_id)},
        ":at": {"S": at},
        ":r": {"S": json.dumps(reasons or [])},
    }
    update = "SET #s = :s, statusKey = :s, documentId = :id, updatedAt = :at, reasons = :r"
    if modified_at is not None:
        update += ", modifiedAt = :m"
        values[":m"] = {"S": modified_at}
    if summary is not None:
        update += ", summary = :summary"
        values[":summary"] = summary.to_attribute()
    removed: list[str] = []
    if status is Status.HELD:
        # Held again after a recheck (or after a change that did not fix it): still waiting
        # since the first hold. Only a booking ends the wait.
        update += ", heldSince = if_not_exists(heldSince, :at)"
    elif status is Status.BOOKED:
        removed.append("heldSince")
    optional = {
        "recheckAt": None if recheck_at is None else {"N": str(int(recheck_at))},
        "configVersion": None if config is None else {"S": config},
    }
    for attribute, value in optional.items():
        if value is None:
            removed.append(attribute)
        else:
            update += f", {attribute} = :{attribute}"
            values[f":{attribute}"] = value
    if removed:
        update += " REMOVE " + ", ".join(removed)
    return update, values


class Ledger:
    """Reads and writes the ledger table; takes its DynamoDB client as an argument."""

    def __init__(
        self,
        dynamodb: DynamoDBClient,
        table: str,
        *,
        retention_days: int = 3650,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._ddb = dynamodb
        self.table = table
        self.retention_seconds = retention_days * 86400
        #: Wall-clock epoch seconds: the stamps every writer compares (``updatedAt``).
        self._clock = clock

    def _now_iso(self) -> str:
        return utc_iso(self._clock())

    # --- state -------------------------------------------------------------------------------

    def state(self, document_id: int) -> DocumentState | None:
        found = self._ddb.get_item(
            TableName=self.table, Key=_doc_key(document_id), ConsistentRead=True
        )
        return _state_from_item(found["Item"]) if "Item" in found else None

    def claim_for_queue(
        self,
        document_id: int,
        modified_at: str,
        *,
        now: float,
        ttl_seconds: int,
        dry_run: bool = False,
        config: str = "",
    ) -> ClaimResult:
        """Claim a listed document for the queue, unless it is already waiting or settled.

        Claimable: never seen; queued long ago (the claim expired: the message may be lost);
        held or failed *and changed in Lucca since*; held (or failed for want of retries) and due
        for another look (``recheckAt``); held under another configuration than ``config``
        (rules, ceiling); stuck in progress past the claim time; planned in a dry run, once the
        pipeline runs for real (or, in a dry run, once changed).
        """
        planned = "(#s = :planned AND modifiedAt <> :m)" if dry_run else "#s = :planned"
        values: dict[str, Any] = {}
        reconfigured = ""
        if config:  # an empty configuration (tools, tests) never re-opens a hold
            reconfigured = (
                " OR (#s = :held AND attribute_exists(configVersion) AND configVersion <> :cfg)"
            )
            values[":cfg"] = {"S": config}
        stale_before = utc_iso(now - ttl_seconds)
        try:
            answer = self._ddb.update_item(
                TableName=self.table,
                Key=_doc_key(document_id),
                UpdateExpression=(
                    "SET #s = :queued, documentId = :id, modifiedAt = :m, queuedUntil = :until, "
                    "updatedAt = :at, statusKey = :queued REMOVE reasons, recheckAt, configVersion"
                ),
                ConditionExpression=(
                    "attribute_not_exists(pk)"
                    " OR (#s = :queued AND queuedUntil < :now)"
                    " OR (#s IN (:held, :failed) AND modifiedAt <> :m)"
                    " OR (#s IN (:held, :failed) AND recheckAt < :now)"
                    f"{reconfigured}"
                    " OR (#s IN (:updated, :booking) AND updatedAt < :stale)"
                    f" OR {planned}"
                ),
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={
                    ":queued": {"S": Status.QUEUED},
                    ":held": {"S": Status.HELD},
                    ":failed": {"S": Status.FAILED},
                    ":planned": {"S": Status.PLANNED},
                    ":updated": {"S": Status.UPDATED},
                    ":booking": {"S": Status.BOOKING},
                    ":id": {"N": str(document_id)},
                    ":m": {"S": modified_at},
                    ":until": {"N": str(int(now + ttl_seconds))},
                    ":now": {"N": str(int(now))},
                    ":at": {"S": self._now_iso()},
                    ":stale": {"S": stale_before},
                    **values,
                },
                # The item as it was, on success too (no extra cost): a claim of a document the
                # ledger never saw is one the reconciliation looks at.
                ReturnValues="ALL_OLD",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise
            old = _old_item(exc)
            return ClaimResult(
                False,
                _status_of(old),
                _claimable_after(old, ttl_seconds, dry_run),
                old.get("updatedAt", {}).get("S", ""),
            )
        before: dict[str, Any] = dict(answer.get("Attributes", {}))
        return ClaimResult(
            True,
            _status_of(before),
            updated_at=before.get("updatedAt", {}).get("S", ""),
            before=before,
        )

    def release_claim(self, document_id: int, before: dict[str, Any] | None = None) -> None:
        """Undo a claim whose message could not be sent, so the next run queues it again.

        ``before``: the state the claim replaced (``ClaimResult.before``). It is put back as it
        was (held since when, why, the summary; a ``BOOKING`` mark above all, which says a book
        call of ours may have gone through): the claim changed only what ``_CLAIM_SETS`` and
        ``_CLAIM_REMOVES`` name. No state before: the claim's item goes. Either way only while
        the document is still ``QUEUED`` (nothing took it on since)."""
        queued = {":queued": {"S": Status.QUEUED}}
        try:
            if not before:
                self._ddb.delete_item(
                    TableName=self.table,
                    Key=_doc_key(document_id),
                    ConditionExpression="#s = :queued",
                    ExpressionAttributeNames={"#s": "status"},
                    ExpressionAttributeValues=queued,
                )
                return
            restored = {a: before[a] for a in (*_CLAIM_SETS, *_CLAIM_REMOVES) if a in before}
            gone = [a for a in _CLAIM_SETS if a not in before]
            names = {f"#a{n}": a for n, a in enumerate(restored)}
            values = {f":a{n}": v for n, v in enumerate(restored.values())}
            expression = "SET " + ", ".join(f"#a{n} = :a{n}" for n in range(len(restored)))
            if gone:
                expression += " REMOVE " + ", ".join(gone)
            self._ddb.update_item(
                TableName=self.table,
                Key=_doc_key(document_id),
                UpdateExpression=expression,
                ConditionExpression="#s = :queued",
                ExpressionAttributeNames={"#s": "status", **names},
                ExpressionAttributeValues={**queued, **values},
            )
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise

    def extend_claim(self, document_id: int, *, until: float) -> None:
        """A deferred document is still queued: keep the poller from queueing it again."""
        self._ddb.update_item(
            TableName=self.table,
            Key=_doc_key(document_id),
            UpdateExpression=(
                "SET #s = if_not_exists(#s, :queued), documentId = :id, queuedUntil = :until, "
                "statusKey = if_not_exists(statusKey, :queued)"
            ),
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={
                ":queued": {"S": Status.QUEUED},
                ":id": {"N": str(document_id)},
                ":until": {"N": str(int(until))},
            },
        )

    def record(
        self,
        document_id: int,
        status: Status,
        kind: str,
        *,
        modified_at: str | None = None,
        reasons: list[str] | None = None,
        detail: dict[str, Any] | None = None,
        recheck_at: float | None = None,
        config: str | None = None,
        summary: DocumentSummary | None = None,
    ) -> LedgerEvent:
        """Append the event, then move the document to ``status``.

        ``recheck_at``: when the poller may queue the document again although it did not change
        (a hold whose cause may lie outside the document); ``config``: the configuration the
        decision was taken under (a hold is looked at again once it changes); ``summary``: the
        document as decided on, kept on the state until a later decision brings another (a
        failure with no document in hand leaves the last one known).

        Two plain writes rather than a transaction (half the cost): the event goes first, so a
        crash in between leaves the trail complete and the status one step behind, which the
        next attempt corrects (e.g. BOOKING, then the document is found gone: BOOKED).
        """
        at = self._now_iso()
        update, state_values = _state_update(
            document_id,
            status,
            at,
            modified_at=modified_at,
            reasons=reasons,
            recheck_at=recheck_at,
            config=config,
            summary=summary,
        )
        event_detail = {"status": status.value, "reasons": reasons or [], **(detail or {})}
        event = LedgerEvent(document_id, at, kind, event_detail)
        self._ddb.put_item(TableName=self.table, Item=self._event_item(event))
        self._ddb.update_item(
            TableName=self.table,
            Key=_doc_key(document_id),
            UpdateExpression=update,
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues=state_values,
        )
        return event

    def _event_item(self, event: LedgerEvent) -> dict[str, Any]:
        expires = int(datetime.fromisoformat(event.at).timestamp()) + self.retention_seconds
        return {
            **_doc_key(event.document_id, f"event#{event.at}#{secrets.token_hex(3)}"),
            "documentId": {"N": str(event.document_id)},
            "at": {"S": event.at},
            "kind": {"S": event.kind},
            "detail": {"S": json.dumps(event.detail, default=str, sort_keys=True)},
            "expiresAt": {"N": str(expires)},
        }

    # --- audit queries -----------------------------------------------------------------------

    def history(self, document_id: int) -> list[LedgerEvent]:
        """Every decision recorded for a document, oldest first."""
        events: list[LedgerEvent] = []
        for item in self._query(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :event)",
            ExpressionAttributeValues={
                ":pk": {"S": f"doc#{document_id}"},
                ":event": {"S": "event#"},
            },
        ):
            events.append(
                LedgerEvent(
                    document_id=int(item["documentId"]["N"]),
                    at=item["at"]["S"],
                    kind=item["kind"]["S"],
                    detail=json.loads(item["detail"]["S"]),
                )
            )
        return events

    def in_status(self, status: Status) -> list[DocumentState]:
        """Every document currently in ``status`` (e.g. held ones, with their reasons)."""
        return [
            _state_from_item(item)
            for item in self._query(
                IndexName=STATUS_INDEX,
                KeyConditionExpression="statusKey = :s",
                ExpressionAttributeValues={":s": {"S": status}},
            )
        ]

    def in_status_between(self, status: Status, start: str, end: str) -> list[DocumentState]:
        """Documents in ``status`` whose state was last written in [``start``, ``end``), oldest
        first: booked (or failed) in a period, as booking is the last write a booked document
        gets. Bounds are ledger stamps (``clock.utc_iso``), which sort as text."""
        if start >= end:
            return []  # DynamoDB refuses a BETWEEN whose bounds are the wrong way round
        found = self._query(
            IndexName=STATUS_INDEX,
            KeyConditionExpression="statusKey = :s AND updatedAt BETWEEN :start AND :end",
            ExpressionAttributeValues={
                ":s": {"S": status},
                ":start": {"S": start},
                ":end": {"S": end},
            },
        )
        # BETWEEN includes its upper bound: a state written at exactly ``end`` belongs to the
        # next period, so consecutive periods neither miss nor repeat a document.
        return [_state_from_item(item) for item in found if item["updatedAt"]["S"] != end]

    def oldest_in_status(self, status: Status) -> DocumentState | None:
        """The document that has been in ``status`` the longest (one item read)."""
        page = self._ddb.query(
            TableName=self.table,
            IndexName=STATUS_INDEX,
            KeyConditionExpression="statusKey = :s",
            ExpressionAttributeValues={":s": {"S": status}},
            ScanIndexForward=True,
            Limit=1,
        )
        items = page.get("Items", [])
        return _state_from_item(items[0]) if items else None

    def uncertain_bookings(self) -> list[DocumentState]:
        """Documents a booking call of ours may have booked unseen: in ``BOOKING`` (in flight,
        or its attempt ended without an answer), or held as ``book_uncertain``.

        Two index queries. The held one reads every held entry (a filter is applied after the
        read, and billed as read); the poller asks only after a listing that can settle them.
        """
        found = self.in_status(Status.BOOKING)
        held = self._query(
            IndexName=STATUS_INDEX,
            KeyConditionExpression="statusKey = :s",
            # ``reasons`` is a JSON list of "code: words" texts.
            FilterExpression="contains(reasons, :code)",
            ExpressionAttributeValues={
                ":s": {"S": Status.HELD},
                ":code": {"S": f'"{BOOK_UNCERTAIN}:'},
            },
        )
        return found + [_state_from_item(item) for item in held]

    def confirm_booked(self, seen: DocumentState, *, detail: dict[str, Any]) -> bool:
        """Record ``BOOKED`` on evidence found outside the processor, only if the document's
        state is still the one ``seen`` (same status, same ``updatedAt``): a decision taken
        since wins. False when it moved on.

        Updates only (the poller may update, not put). The state first, then the event: the
        condition decides, and a trail must not say "booked" for a write that was refused.
        """
        at = self._now_iso()
        try:
            self._ddb.update_item(
                TableName=self.table,
                Key=_doc_key(seen.document_id),
                UpdateExpression=(
                    "SET #s = :booked, statusKey = :booked, updatedAt = :at, reasons = :r "
                    "REMOVE heldSince, recheckAt, configVersion"
                ),
                ConditionExpression="#s = :was AND updatedAt = :seen",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={
                    ":booked": {"S": Status.BOOKED},
                    ":at": {"S": at},
                    ":r": {"S": "[]"},
                    ":was": {"S": seen.status},
                    ":seen": {"S": seen.updated_at},
                },
            )
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise
            return False
        event_detail = {"status": Status.BOOKED.value, "reasons": [], **detail}
        item = self._event_item(LedgerEvent(seen.document_id, at, "booked", event_detail))
        key = {name: item.pop(name) for name in ("pk", "sk")}
        self._ddb.update_item(
            TableName=self.table,
            Key=key,
            UpdateExpression="SET " + ", ".join(f"#a{n} = :v{n}" for n in range(len(item))),
            ExpressionAttributeNames={f"#a{n}": name for n, name in enumerate(item)},
            ExpressionAttributeValues={f":v{n}": value for n, value in enumerate(item.values())},
        )
        return True

    def trail_of_booking(self, document_id: int) -> BookingTrail:
        """How a booked document was booked, from its trail (one query)."""
        return booking_trail(self.history(document_id))

    def count_in_status(self, status: Status) -> int:
        """How many documents are in ``status``, without reading them out (``Select="COUNT"``);
        a lower bound past ``COUNT_MAX_PAGES`` pages."""
        query: dict[str, Any] = {
            "TableName": self.table,
            "IndexName": STATUS_INDEX,
            "KeyConditionExpression": "statusKey = :s",
            "ExpressionAttributeValues": {":s": {"S": status}},
            "Select": "COUNT",
        }
        total = 0
        for _ in range(COUNT_MAX_PAGES):
            page = self._ddb.query(**query)
            total += page["Count"]
            if "LastEvaluatedKey" not in page:
                break
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return total

    def _query(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        paginator = self._ddb.get_paginator("query")
        for page in paginator.paginate(TableName=self.table, **kwargs):
            yield from page.get("Items", [])

    # --- invoice numbers ---------------------------------------------------------------------

    def claim_number(self, scope: str, number: str, document_id: int) -> int | None:
        """Claim ``number`` in ``scope`` for this document; the other holder's id if taken."""
        key = {"pk": {"S": f"number#{scope}#{number}"}, "sk": {"S": "claim"}}
        try:
            self._ddb.put_item(
                TableName=self.table,
                Item={**key, "documentId": {"N": str(document_id)}, "at": {"S": self._now_iso()}},
                ConditionExpression="attribute_not_exists(pk) OR documentId = :id",
                ExpressionAttributeValues={":id": {"N": str(document_id)}},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise
            old = _old_item(exc)
            return int(old["documentId"]["N"]) if "documentId" in old else -1
        return None

    def find_duplicate(self, scope: str, number: str, document_id: int) -> int | None:
        """``gate.DuplicateLookup``: another document already holding this number, if any."""
        key = {"pk": {"S": f"number#{scope}#{number}"}, "sk": {"S": "claim"}}
        found = self._ddb.get_item(TableName=self.table, Key=key, ConsistentRead=True)
        holder = found.get("Item", {}).get("documentId", {}).get("N")
        return int(holder) if holder is not None and int(holder) != document_id else None

    def release_number(self, scope: str, number: str, document_id: int) -> None:
        """Give the number back when the document holding it was not booked after all."""
        try:
            self._ddb.delete_item(
                TableName=self.table,
                Key={"pk": {"S": f"number#{scope}#{number}"}, "sk": {"S": "claim"}},
                ConditionExpression="documentId = :id",
                ExpressionAttributeValues={":id": {"N": str(document_id)}},
            )
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise

    # --- digests -----------------------------------------------------------------------------

    def digest_published_until(self, name: str) -> str | None:
        """Up to when the last digest ``name`` reported (a ledger stamp), or None: never sent."""
        found = self._ddb.get_item(TableName=self.table, Key=_digest_key(name), ConsistentRead=True)
        until = found.get("Item", {}).get("publishedUntil", {}).get("S")
        return str(until) if until is not None else None

    def mark_digest_published(self, name: str, until: str) -> bool:
        """The digest ``name`` reported up to ``until``: the next one starts there.

        Only ever forward: a late or repeated run that reported an older period must not make
        the next digest tell it again. False when a digest had already reported this far.
        """
        return self._advance(_digest_key(name), "publishedUntil", until, "publishedAt")

    def _advance(self, key: dict[str, Any], stamp: str, value: str, at: str) -> bool:
        """Set the marker item's ``stamp`` to ``value`` (and ``at`` to now), only ever forward;
        False when it already stood there or later."""
        try:
            self._ddb.update_item(
                TableName=self.table,
                Key=key,
                UpdateExpression="SET #stamp = :value, #at = :now",
                ConditionExpression="attribute_not_exists(pk) OR #stamp < :value",
                ExpressionAttributeNames={"#stamp": stamp, "#at": at},
                ExpressionAttributeValues={":value": {"S": value}, ":now": {"S": self._now_iso()}},
            )
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise
            return False
        return True

    # --- reconciliation ----------------------------------------------------------------------

    def last_complete_listing(self, name: str) -> str | None:
        """When the last listing ``name`` that saw the whole inbox started (a ledger stamp)."""
        found = self._ddb.get_item(
            TableName=self.table, Key=_listing_key(name), ConsistentRead=True
        )
        started = found.get("Item", {}).get("startedAt", {}).get("S")
        return str(started) if started is not None else None

    def mark_listing_complete(self, name: str, started: float) -> None:
        """A listing ``name`` that started at ``started`` saw the whole inbox. Only ever
        forward: a slow run finishing after a later one must not move the mark back."""
        self._advance(_listing_key(name), "startedAt", utc_iso(started), "completedAt")

    def record_discrepancy(self, document_id: int, reason: str, *, ttl_seconds: int) -> bool:
        """Note that the ledger and Lucca disagree about a document; False if already noted
        (the first reason stays: it says since when). An update (the poller may update, not
        put), conditional on the item not existing."""
        now = self._clock()
        try:
            self._ddb.update_item(
                TableName=self.table,
                Key=_recon_key(document_id),
                UpdateExpression=(
                    "SET #s = :s, statusKey = :s, documentId = :id, updatedAt = :at, "
                    "reasons = :r, expiresAt = :expires"
                ),
                ConditionExpression="attribute_not_exists(pk)",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={
                    ":s": {"S": Status.DISCREPANCY},
                    ":id": {"N": str(document_id)},
                    ":at": {"S": utc_iso(now)},
                    ":r": {"S": json.dumps([reason])},
                    ":expires": {"N": str(int(now) + ttl_seconds)},
                },
            )
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise
            return False
        return True

    # --- leases ------------------------------------------------------------------------------

    def acquire_lease(self, name: str, holder: str, until: float) -> LeaseResult:
        """Hold the lease ``name`` until ``until`` (epoch seconds), in one conditional write.

        Granted when nobody holds it, when its holder's time is past (an instance killed at its
        timeout never releases), or to the same holder again (extending it). ``expiresAt`` lets
        TTL delete a lapsed lease; the condition never relies on TTL having run.
        """
        ends = math.ceil(until)
        try:
            self._ddb.update_item(
                TableName=self.table,
                Key=_lease_key(name),
                UpdateExpression=(
                    "SET leaseHolder = :holder, leaseUntil = :until, expiresAt = :until"
                ),
                ConditionExpression=(
                    "attribute_not_exists(pk) OR leaseUntil < :now OR leaseHolder = :holder"
                ),
                ExpressionAttributeValues={
                    ":holder": {"S": holder},
                    ":until": {"N": str(ends)},
                    ":now": {"N": str(int(self._clock()))},
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise
            old = _old_item(exc)
            other = old.get("leaseHolder", {}).get("S")
            other_until = old.get("leaseUntil", {}).get("N")
            return LeaseResult(False, other, None if other_until is None else float(other_until))
        return LeaseResult(True)

    def release_lease(self, name: str, holder: str) -> None:
        """Give the lease back, only if ``holder`` still holds it: a late instance whose lease
        lapsed and was taken must not delete its successor's."""
        try:
            self._ddb.delete_item(
                TableName=self.table,
                Key=_lease_key(name),
                ConditionExpression="leaseHolder = :holder",
                ExpressionAttributeValues={":holder": {"S": holder}},
            )
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise
