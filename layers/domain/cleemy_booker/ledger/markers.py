"""Marks moved only forward (up to when the last digest reported, when the last complete
listing started), the reconciliation's discrepancies and what Lucca sent that is new, each
written once."""

from __future__ import annotations

import json
from typing import Any

from ..clock import utc_iso
from ..novelty import Novelty
from .items import _digest_key, _listing_key, _novelty_key, _recon_key
from .records import Status
from .table import LedgerTable


class Markers:
    """The ``digest#``, ``listing#``, ``recon#`` and ``novelty#`` items."""

    def __init__(self, table: LedgerTable) -> None:
        self._db = table

    def digest_published_until(self, name: str) -> str | None:
        """Up to when the last digest ``name`` reported (a ledger stamp), or None: never sent."""
        found = self._db.client.get_item(
            TableName=self._db.name, Key=_digest_key(name), ConsistentRead=True
        )
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
        return self._db.update_if(
            Key=key,
            UpdateExpression="SET #stamp = :value, #at = :now",
            ConditionExpression="attribute_not_exists(pk) OR #stamp < :value",
            ExpressionAttributeNames={"#stamp": stamp, "#at": at},
            ExpressionAttributeValues={":value": {"S": value}, ":now": {"S": self._db.now_iso()}},
        )

    def last_complete_listing(self, name: str) -> str | None:
        """When the last listing ``name`` that saw the whole inbox started (a ledger stamp)."""
        found = self._db.client.get_item(
            TableName=self._db.name, Key=_listing_key(name), ConsistentRead=True
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
        now = self._db.clock()
        return self._db.update_if(
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

    def record_novelty(self, novelty: Novelty) -> bool:
        """Record something new Lucca sent, once: False if it was already recorded (the first
        sighting stays: it says since when). An update conditional on the item not existing
        (the poller may update, not put)."""
        return self._db.update_if(
            Key=_novelty_key(novelty.kind, novelty.key),
            UpdateExpression=(
                "SET #s = :s, statusKey = :s, kind = :kind, novelty = :key, example = :example, "
                "updatedAt = :at" + (", documentId = :id" if novelty.document_id else "")
            ),
            ConditionExpression="attribute_not_exists(pk)",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={
                ":s": {"S": Status.NOVELTY},
                ":kind": {"S": novelty.kind},
                ":key": {"S": novelty.key},
                ":example": {"S": novelty.example},
                ":at": {"S": self._db.now_iso()},
                **({":id": {"N": str(novelty.document_id)}} if novelty.document_id else {}),
            },
        )
