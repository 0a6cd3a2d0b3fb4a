"""The ledger's items: their keys, and how a state item is read and written.

One DynamoDB table, nine kinds of item:

* ``doc#{id}`` / ``state`` — the document's current status. The poller claims a document here
  before queueing it (a conditional write), so overlapping scheduled runs never queue it twice
  while it waits or is in progress; the processor moves it on (booking, booked, held, failed).
  With each decision it also writes a ``summary`` of the document as decided on (number, type,
  owner, amounts, date), so a digest or an export can name a document without asking Lucca,
  and, while it is held, since when (``heldSince``: a recheck that holds it again keeps it).
  The updates and the booking also append their part of the booking trail (``trail``), so the
  export reads a booked document from its state alone. Gone by TTL (``expiresAt``) the
  retention after its last decision (a claim alone sets none).
* ``doc#{id}`` / ``event#{time}#{n}`` — the audit trail: each decision with its time, the rules
  applied, the field-level diff that was PUT, the reasons, and Lucca's request ids. Gone by TTL
  (``expiresAt``) the retention after it was written.
* ``number#{scope}#{number}`` / ``claim`` — which document holds an invoice number within a
  purchase or owner: claimed atomically before booking, so two documents with the same number
  are never both booked. Gone by TTL the retention after the claim, with the booking's trail.
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
* ``novelty#{kind}#{key}`` / ``novelty`` — something new Lucca sent (a field, an enumeration's
  value, a route answering differently), in the status index as ``NOVELTY`` by when it was
  first seen, with an example and a document that carried it; written once, kept (a handful of
  items, and the record of when Lucca changed).
* ``snapshot#{name}`` / ``shard#{n}`` — what an instance remembers, kept for the next one (the
  poller's refused claims), a fixed number of small compressed items rewritten in place;
  outside the status index (``snapshots``).

Attribute values are written as the low-level client takes them (``{"S": ...}``), not through
boto3's ``TypeSerializer``: every value here is a string or an integer (ids, epoch seconds;
a snapshot's shard is bytes), its twin, ``TypeDeserializer``, hands integers back as
``Decimal``, the serializer refuses floats, and each conditional write's values sit next to the
expression that reads them.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from .records import (
    TRAIL_KINDS,
    BookingTrail,
    DocumentState,
    DocumentSummary,
    LedgerEvent,
    Status,
    booking_trail,
)

#: The index of the items that carry a ``statusKey`` (states, discrepancies): by status, then
#: by ``updatedAt``.
STATUS_INDEX = "ByStatus"


def _doc_key(document_id: int, sort: str = "state") -> dict[str, Any]:
    return {"pk": {"S": f"doc#{document_id}"}, "sk": {"S": sort}}


def _number_key(scope: str, number: str) -> dict[str, Any]:
    return {"pk": {"S": f"number#{scope}#{number}"}, "sk": {"S": "claim"}}


def _lease_key(name: str) -> dict[str, Any]:
    return {"pk": {"S": f"lease#{name}"}, "sk": {"S": "lease"}}


def _digest_key(name: str) -> dict[str, Any]:
    return {"pk": {"S": f"digest#{name}"}, "sk": {"S": "digest"}}


def _listing_key(name: str) -> dict[str, Any]:
    return {"pk": {"S": f"listing#{name}"}, "sk": {"S": "listing"}}


def _recon_key(document_id: int) -> dict[str, Any]:
    return {"pk": {"S": f"recon#{document_id}"}, "sk": {"S": "recon"}}


#: A novelty's key is at most this long in the item's key (a field name from Lucca could be
#: anything); a longer one is cut and told apart by a hash of the whole.
NOVELTY_KEY_MAX = 300


def _novelty_key(kind: str, key: str) -> dict[str, Any]:
    if len(key) > NOVELTY_KEY_MAX:
        key = key[:NOVELTY_KEY_MAX] + "#" + hashlib.sha256(key.encode()).hexdigest()[:16]
    return {"pk": {"S": f"novelty#{kind}#{key}"}, "sk": {"S": "novelty"}}


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
        listed_newer=item.get("listedNewer", {}).get("S", ""),
        gone_times=int(item.get("goneTimes", {}).get("N", "0")),
        trail=_trail_from_item(item) if "trail" in item else None,
    )


def _trail_entry(kind: str, detail: dict[str, Any]) -> str | None:
    """What an event of ``TRAIL_KINDS`` adds to the state's ``trail``: its part of
    ``booking_trail`` (rules, changes, request ids), as JSON; None for another kind."""
    if kind not in TRAIL_KINDS:
        return None
    kept = {k: detail[k] for k in ("rulesApplied", "diff", "requestIds") if detail.get(k)}
    return json.dumps({"kind": kind, **kept}, default=str, sort_keys=True)


def _trail_from_item(item: dict[str, Any]) -> BookingTrail:
    """The state's ``trail`` read back through ``booking_trail``: the same answer its events
    give."""
    document_id = int(item["documentId"]["N"])
    entries = [json.loads(value["S"]) for value in item["trail"]["L"]]
    return booking_trail([LedgerEvent(document_id, "", e["kind"], e) for e in entries])


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
    trail_entry: str | None = None,
    expires_at: int | None = None,
) -> tuple[str, dict[str, Any]]:
    """The state item's update for one decision (``Ledger.record``): expression and values.
    ``expires_at``: when TTL may delete the state, the trail's retention after this decision
    (each decision moves it on)."""
    values: dict[str, Any] = {
        ":s": {"S": status},
        ":id": {"N": str(document_id)},
        ":at": {"S": at},
        ":r": {"S": json.dumps(reasons or [])},
    }
    update = "SET #s = :s, statusKey = :s, documentId = :id, updatedAt = :at, reasons = :r"
    if expires_at is not None:
        update += ", expiresAt = :expires"
        values[":expires"] = {"N": str(expires_at)}
    if modified_at is not None:
        update += ", modifiedAt = :m"
        values[":m"] = {"S": modified_at}
    if summary is not None:
        update += ", summary = :summary"
        values[":summary"] = summary.to_attribute()
    if trail_entry is not None:
        update += ", trail = list_append(if_not_exists(trail, :no_trail), :trail)"
        values[":no_trail"] = {"L": []}
        values[":trail"] = {"L": [{"S": trail_entry}]}
    removed: list[str] = []
    if status is Status.HELD:
        # Held again after a recheck (or after a change that did not fix it): still waiting
        # since the first hold. Only a booking ends the wait.
        update += ", heldSince = if_not_exists(heldSince, :at)"
    elif status is Status.BOOKED:
        removed.append("heldSince")
    elif status is Status.GONE:
        # Counted, and kept through later claims: a document found gone and listed again is
        # one whose 404 was about the route, not the document (``Booking.not_in_inbox``).
        update += ", goneTimes = if_not_exists(goneTimes, :zero) + :one"
        values[":zero"] = {"N": "0"}
        values[":one"] = {"N": "1"}
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
