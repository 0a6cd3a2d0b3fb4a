"""Snapshots: what an instance remembers, kept in the ledger so that the next instance starts
from it, in a fixed number of small items (shards) so that a change rewrites one of them.

An item per shard, ``snapshot#{name}`` / ``shard#{n}``: its value as compact JSON compressed
with zlib (``data``, binary), and when it was written (``savedAt``). Outside the status index
(no ``statusKey``) and kept (one handful of items per snapshot, rewritten in place). A write
costs one write unit per KB of the item, so shards stay small: a shard too large for an item
(DynamoDB's 400 KB) is not written, and the snapshot is read as it was.

Read shard by shard (``GetItem``, eventually consistent: half a read unit each): a snapshot is
a cache of something the ledger can answer again, so a shard missing or a little stale costs
the reader work, never a wrong answer.
"""

from __future__ import annotations

import json
import zlib
from typing import Any

from .table import LedgerTable

#: DynamoDB's largest item is 400 KB; this leaves room for the keys and ``savedAt``.
MAX_SHARD_BYTES = 390_000


def _snapshot_key(name: str, shard: int) -> dict[str, Any]:
    return {"pk": {"S": f"snapshot#{name}"}, "sk": {"S": f"shard#{shard:03d}"}}


def encode_shard(value: Any) -> bytes:
    """Compact JSON (no spaces, keys sorted: the same value gives the same bytes), compressed."""
    text = json.dumps(value, separators=(",", ":"), sort_keys=True)
    return zlib.compress(text.encode(), 9)


def decode_shard(data: bytes) -> Any:
    return json.loads(zlib.decompress(data))


class Snapshots:
    """The ``snapshot#`` items: a named snapshot's shards, each read and written whole."""

    def __init__(self, table: LedgerTable) -> None:
        self._db = table

    def read(self, name: str, shards: int) -> dict[int, Any]:
        """Each shard of ``name`` found, decoded (a shard never written is left out; so is one
        that does not decode: whoever writes it next puts a good one back)."""
        found: dict[int, Any] = {}
        for shard in range(shards):
            answer = self._db.client.get_item(
                TableName=self._db.name, Key=_snapshot_key(name, shard), ConsistentRead=False
            )
            data = answer.get("Item", {}).get("data", {}).get("B")
            if data is None:
                continue
            try:
                found[shard] = decode_shard(bytes(data))
            except (zlib.error, ValueError):
                continue
        return found

    def write(self, name: str, shard: int, value: Any) -> bool:
        """Write one shard whole; False (nothing written) when it would not fit in an item."""
        data = encode_shard(value)
        if len(data) > MAX_SHARD_BYTES:
            return False
        # An update, not a put: the poller's role may update the ledger's items, not put them.
        self._db.client.update_item(
            TableName=self._db.name,
            Key=_snapshot_key(name, shard),
            UpdateExpression="SET #d = :d, savedAt = :at",
            ExpressionAttributeNames={"#d": "data"},
            ExpressionAttributeValues={":d": {"B": data}, ":at": {"S": self._db.now_iso()}},
        )
        return True
