"""The ledger: per document, where it stands and every decision taken about it.

One DynamoDB table, four kinds of item:

* ``doc#{id}`` / ``state`` — the document's current status. The poller claims a document here
  before queueing it (a conditional write), so overlapping scheduled runs never queue it twice
  while it waits or is in progress; the processor moves it on (booking, booked, held, failed).
* ``doc#{id}`` / ``event#{time}#{n}`` — the audit trail: each decision with its time, the rules
  applied, the field-level diff that was PUT, the reasons, and Lucca's request ids.
* ``number#{scope}#{number}`` / ``claim`` — which document holds an invoice number within a
  purchase or owner: claimed atomically before booking, so two documents with the same number
  are never both booked.
* ``lease#{name}`` / ``lease`` — who may run alone right now (one poller at a time), until when;
  outside the status index (no ``statusKey``), gone by TTL (``expiresAt``) once it lapsed.
"""

from __future__ import annotations

import json
import math
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
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


#: Statuses in which a previous attempt may have changed the document in Lucca.
TOUCHED = frozenset({Status.UPDATED, Status.BOOKING})
STATUS_INDEX = "ByStatus"
#: Pages one count reads at most. A ``Select="COUNT"`` query still reads (and bills) every item
#: it counts, up to 1 MB a page: thousands of documents. Past ten pages the count is a lower
#: bound: an alarm on held documents needs to know there are many, not exactly how many, and a
#: runaway pile of holds cannot make each count read the whole index.
COUNT_MAX_PAGES = 10


@dataclass(frozen=True)
class DocumentState:
    document_id: int
    status: Status
    modified_at: str = ""
    queued_until: float = 0.0
    updated_at: str = ""
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class LedgerEvent:
    document_id: int
    at: str
    kind: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ClaimResult:
    claimed: bool
    previous: Status | None = None
    #: Refused: the earliest time a claim could succeed while the document stays unchanged in
    #: Lucca and the configuration stays the same (``inf``: only a change can make it claimable).
    #: The poller uses it to spare the same refused write on every run.
    retry_after: float = float("inf")


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


def _conditional_failed(exc: ClientError) -> bool:
    return str(exc.response.get("Error", {}).get("Code")) == "ConditionalCheckFailedException"


def _old_item(exc: ClientError) -> dict[str, Any]:
    """The item as it was when a condition failed (``ReturnValuesOnConditionCheckFailure``)."""
    response: dict[str, Any] = dict(exc.response)
    item = response.get("Item")
    return item if isinstance(item, dict) else {}


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
    )


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
            self._ddb.update_item(
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
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise
            old = _old_item(exc)
            previous = Status(old["status"]["S"]) if "status" in old else None
            return ClaimResult(False, previous, _claimable_after(old, ttl_seconds, dry_run))
        return ClaimResult(True)

    def release_claim(self, document_id: int) -> None:
        """Undo a claim whose message could not be sent, so the next run queues it again."""
        try:
            self._ddb.delete_item(
                TableName=self.table,
                Key=_doc_key(document_id),
                ConditionExpression="#s = :queued",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":queued": {"S": Status.QUEUED}},
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
    ) -> LedgerEvent:
        """Append the event, then move the document to ``status``.

        ``recheck_at``: when the poller may queue the document again although it did not change
        (a hold whose cause may lie outside the document); ``config``: the configuration the
        decision was taken under (a hold is looked at again once it changes).

        Two plain writes rather than a transaction (half the cost): the event goes first, so a
        crash in between leaves the trail complete and the status one step behind, which the
        next attempt corrects (e.g. BOOKING, then the document is found gone: BOOKED).
        """
        at = self._now_iso()
        state_values: dict[str, Any] = {
            ":s": {"S": status},
            ":id": {"N": str(document_id)},
            ":at": {"S": at},
            ":r": {"S": json.dumps(reasons or [])},
        }
        update = "SET #s = :s, statusKey = :s, documentId = :id, updatedAt = :at, reasons = :r"
        if modified_at is not None:
            update += ", modifiedAt = :m"
            state_values[":m"] = {"S": modified_at}
        optional = {
            "recheckAt": None if recheck_at is None else {"N": str(int(recheck_at))},
            "configVersion": None if config is None else {"S": config},
        }
        for attribute, value in optional.items():
            if value is not None:
                update += f", {attribute} = :{attribute}"
                state_values[f":{attribute}"] = value
        removed = [attribute for attribute, value in optional.items() if value is None]
        if removed:
            update += " REMOVE " + ", ".join(removed)
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
