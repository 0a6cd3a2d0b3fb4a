"""Claims for the queue and the state each decision writes: the part of the ``Ledger`` that
decides who works on a document, and records what was decided."""

from __future__ import annotations

import json
import secrets
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from ..clock import utc_iso
from ..dynamo import conditional_check_failed
from .items import (
    _claimable_after,
    _doc_key,
    _old_item,
    _state_from_item,
    _state_update,
    _status_of,
    _trail_entry,
)
from .records import ClaimResult, DocumentState, DocumentSummary, LedgerEvent, Status
from .table import LedgerTable

#: The state attributes a claim for the queue sets, and those it removes (``claim_for_queue``);
#: ``release_claim`` puts back what was there.
_CLAIM_SETS = ("status", "documentId", "modifiedAt", "queuedUntil", "updatedAt", "statusKey")
_CLAIM_REMOVES = ("reasons", "recheckAt", "configVersion", "listedNewer")


class DocumentStates:
    """A document's state item and its trail: claimed for the queue by the poller, moved on by
    the processor, confirmed booked on outside evidence."""

    def __init__(self, table: LedgerTable) -> None:
        self._db = table

    def state(self, document_id: int) -> DocumentState | None:
        found = self._db.client.get_item(
            TableName=self._db.name, Key=_doc_key(document_id), ConsistentRead=True
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
        pipeline runs for real (or, in a dry run, once changed); gone, whenever listed again (a
        listing that shows it says it is in the inbox after all, whatever the 404 was).
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
            answer = self._db.client.update_item(
                TableName=self._db.name,
                Key=_doc_key(document_id),
                UpdateExpression=(
                    "SET #s = :queued, documentId = :id, modifiedAt = :m, queuedUntil = :until, "
                    "updatedAt = :at, statusKey = :queued "
                    "REMOVE reasons, recheckAt, configVersion, listedNewer"
                ),
                ConditionExpression=(
                    "attribute_not_exists(pk)"
                    " OR (#s = :queued AND queuedUntil < :now)"
                    " OR (#s IN (:held, :failed) AND modifiedAt <> :m)"
                    " OR (#s IN (:held, :failed) AND recheckAt < :now)"
                    f"{reconfigured}"
                    " OR (#s IN (:updated, :booking) AND updatedAt < :stale)"
                    f" OR {planned}"
                    " OR #s = :gone"
                ),
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={
                    ":queued": {"S": Status.QUEUED},
                    ":held": {"S": Status.HELD},
                    ":failed": {"S": Status.FAILED},
                    ":planned": {"S": Status.PLANNED},
                    ":updated": {"S": Status.UPDATED},
                    ":booking": {"S": Status.BOOKING},
                    ":gone": {"S": Status.GONE},
                    ":id": {"N": str(document_id)},
                    ":m": {"S": modified_at},
                    ":until": {"N": str(int(now + ttl_seconds))},
                    ":now": {"N": str(int(now))},
                    ":at": {"S": self._db.now_iso()},
                    ":stale": {"S": stale_before},
                    **values,
                },
                # The item as it was, on success too (no extra cost): a claim of a document the
                # ledger never saw is one the reconciliation looks at.
                ReturnValues="ALL_OLD",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if not conditional_check_failed(exc):
                raise
            old = _old_item(exc)
            return ClaimResult(
                False,
                _status_of(old),
                _claimable_after(old, ttl_seconds, dry_run),
                old.get("updatedAt", {}).get("S", ""),
                old.get("modifiedAt", {}).get("S", ""),
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
                self._db.client.delete_item(
                    TableName=self._db.name,
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
            self._db.client.update_item(
                TableName=self._db.name,
                Key=_doc_key(document_id),
                UpdateExpression=expression,
                ConditionExpression="#s = :queued",
                ExpressionAttributeNames={"#s": "status", **names},
                ExpressionAttributeValues={**queued, **values},
            )
        except ClientError as exc:
            if not conditional_check_failed(exc):
                raise

    def note_listed_newer(self, document_id: int, modified_at: str) -> bool:
        """A listing shows a later version of a document whose message is still on its way:
        say so on its state, so the processor reads the document rather than decide on the
        older copy the message carries (an OCR finished since, a person's edit).

        Only while it is still ``QUEUED`` on another version, once per version: one write for
        each version listed during the wait, none when the processor has moved on."""
        return self._db.update_if(
            Key=_doc_key(document_id),
            UpdateExpression="SET listedNewer = :m",
            ConditionExpression=(
                "#s = :queued AND modifiedAt <> :m "
                "AND (attribute_not_exists(listedNewer) OR listedNewer <> :m)"
            ),
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":queued": {"S": Status.QUEUED}, ":m": {"S": modified_at}},
        )

    def renew_claim(self, document_id: int, *, until: float) -> bool:
        """A message delivered again (its last attempt failed or died) is still on its way:
        its claim, if it is still the queue's, runs until ``until`` from now, so the poller
        does not queue the document a second time while this one is redelivered. Nothing when
        the document moved on (decided, booked) or the claim already runs longer."""
        return self._db.update_if(
            Key=_doc_key(document_id),
            UpdateExpression="SET queuedUntil = :until",
            ConditionExpression="#s = :queued AND queuedUntil < :until",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={
                ":queued": {"S": Status.QUEUED},
                ":until": {"N": str(int(until))},
            },
        )

    def extend_claim(self, document_id: int, *, until: float) -> None:
        """A deferred document is still queued: keep the poller from queueing it again."""
        self._db.client.update_item(
            TableName=self._db.name,
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
        at = self._db.now_iso()
        event_detail = {"status": status.value, "reasons": reasons or [], **(detail or {})}
        update, state_values = _state_update(
            document_id,
            status,
            at,
            modified_at=modified_at,
            reasons=reasons,
            recheck_at=recheck_at,
            config=config,
            summary=summary,
            trail_entry=_trail_entry(kind, event_detail),
            expires_at=self._expires(at),
        )
        event = LedgerEvent(document_id, at, kind, event_detail)
        self._db.client.put_item(TableName=self._db.name, Item=self._event_item(event))
        self._db.client.update_item(
            TableName=self._db.name,
            Key=_doc_key(document_id),
            UpdateExpression=update,
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues=state_values,
        )
        return event

    def confirm_booked(self, seen: DocumentState, *, detail: dict[str, Any]) -> bool:
        """Record ``BOOKED`` on evidence found outside the processor, only if the document's
        state is still the one ``seen`` (same status, same ``updatedAt``): a decision taken
        since wins. False when it moved on.

        Updates only (the poller may update, not put). The state first, then the event: the
        condition decides, and a trail must not say "booked" for a write that was refused.
        """
        at = self._db.now_iso()
        confirmed = self._db.update_if(
            Key=_doc_key(seen.document_id),
            UpdateExpression=(
                "SET #s = :booked, statusKey = :booked, updatedAt = :at, reasons = :r, "
                "expiresAt = :expires REMOVE heldSince, recheckAt, configVersion"
            ),
            ConditionExpression="#s = :was AND updatedAt = :seen",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={
                ":booked": {"S": Status.BOOKED},
                ":at": {"S": at},
                ":expires": {"N": str(self._expires(at))},
                ":r": {"S": "[]"},
                ":was": {"S": seen.status},
                ":seen": {"S": seen.updated_at},
            },
        )
        if not confirmed:
            return False
        event_detail = {"status": Status.BOOKED.value, "reasons": [], **detail}
        item = self._event_item(LedgerEvent(seen.document_id, at, "booked", event_detail))
        key = {name: item.pop(name) for name in ("pk", "sk")}
        self._db.client.update_item(
            TableName=self._db.name,
            Key=key,
            UpdateExpression="SET " + ", ".join(f"#a{n} = :v{n}" for n in range(len(item))),
            ExpressionAttributeNames={f"#a{n}": name for n, name in enumerate(item)},
            ExpressionAttributeValues={f":v{n}": value for n, value in enumerate(item.values())},
        )
        return True

    def _expires(self, at: str) -> int:
        """When TTL may delete what is written at ``at`` (a ledger stamp): the retention later."""
        return int(datetime.fromisoformat(at).timestamp()) + self._db.retention_seconds

    def _event_item(self, event: LedgerEvent) -> dict[str, Any]:
        expires = self._expires(event.at)
        return {
            **_doc_key(event.document_id, f"event#{event.at}#{secrets.token_hex(3)}"),
            "documentId": {"N": str(event.document_id)},
            "at": {"S": event.at},
            "kind": {"S": event.kind},
            "detail": {"S": json.dumps(event.detail, default=str, sort_keys=True)},
            "expiresAt": {"N": str(expires)},
        }
