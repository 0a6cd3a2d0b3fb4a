"""What a poller remembers between runs: the claims the ledger refused, so that a held or queued
document unchanged since costs no conditional write on every run, kept in the ledger so that a
cold start reads them instead of claiming every standing document again; and the constants the
poller's parts share."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..observability import logger

#: A booking this recent may still show in the inbox: a listing taken just before our book
#: stays in use this long (the processor's ``listing_fresh_seconds``).
BOOKED_GRACE_SECONDS = 900
#: A discrepancy stays in the ledger (and in every digest) this long, then TTL deletes it.
DISCREPANCY_TTL_SECONDS = 28 * 86400


#: The ledger's snapshot of the refused claims, and how many items (shards) it is kept in: a
#: shard holds the documents whose id leaves its number modulo 64, about 18 bytes each once
#: compressed, so a shard stays under 1 KB (one write unit) up to about 3,000 documents, and a
#: change rewrites one shard. A cold start reads the 64 (half a read unit each).
SNAPSHOT_NAME = "poller-refused-claims"
SNAPSHOT_SHARDS = 64
#: The snapshot is written at most this often, and only for a refusal in force at least this
#: long: a held document's refusal changes at each of its rechecks (every few hours), so a
#: standing inbox changes a little at every run; written an hour at a time, its shards cost a
#: handful of writes an hour, and a cold start claims again at most the last hour's refusals.
#: A refusal ending sooner (a document in the queue, a booking in its grace) is not worth one.
SNAPSHOT_EVERY_SECONDS = 3600

Entry = tuple[str, float]


class SnapshotStore(Protocol):
    """Where the refusals outlive the instance (``ledger.Snapshots``)."""

    def read(self, name: str, shards: int) -> dict[int, Any]: ...

    def write(self, name: str, shard: int, value: Any) -> bool: ...


@dataclass
class RefusedClaims:
    """Refused claims a poller remembers: id -> (modifiedAt, until when it stays refused).

    Without it every run would repeat one refused conditional write (a billed write unit) for
    every held or queued document of the inbox, every five minutes. Forgotten as a whole when
    the configuration changes. With a ``store``, kept in the ledger: a cold start reads what the
    last instance left (``load``), and a run writes the shards whose lasting refusals changed,
    at most once an hour (``save``). An entry only spares a claim that would be refused: a
    stale or lost snapshot costs claims, never a document skipped (a changed ``modifiedAt``,
    an entry past its ``until``, another configuration: a claim is attempted, as without
    it)."""

    config: str = ""
    entries: dict[int, Entry] = field(default_factory=dict)
    store: SnapshotStore | None = None
    shards: int = SNAPSHOT_SHARDS
    #: Each shard's entries as the ledger holds them (read or written by this instance): a
    #: shard is written again only when a lasting refusal is missing from it.
    _stored: dict[int, dict[int, Entry]] = field(default_factory=dict, init=False, repr=False)
    _loaded: bool = field(default=False, init=False, repr=False)
    #: When this instance last wrote a shard (None: not yet).
    _saved_at: float | None = field(default=None, init=False, repr=False)

    def still_refused(self, document_id: int, modified_at: str, now: float) -> bool:
        known = self.entries.get(document_id)
        return known is not None and known[0] == modified_at and now < known[1]

    def remember(self, document_id: int, modified_at: str, until: float) -> None:
        self.entries[document_id] = (modified_at, until)

    def forget_all_unless(self, config: str) -> None:
        if config != self.config:
            self.entries.clear()
            # The ledger's shards were written under the other configuration: none is read
            # again, none needs rewriting until a refusal of this configuration lands in it.
            self._stored.clear()
            self.config = config

    def keep_only(self, listed: set[int]) -> None:
        """A listing saw the whole inbox: the documents it did not list are gone (booked or
        deleted), and so are their refusals."""
        self.entries = {i: e for i, e in self.entries.items() if i in listed}

    def load(self, now: float) -> int:
        """Once per instance, at its first run: the refusals the last instance left, under this
        configuration and still in force; those this instance knows already stay. How many were
        taken. A failed read is tried again at the next run (meanwhile, claims are made)."""
        if self.store is None or self._loaded:
            return 0
        try:
            found = self.store.read(SNAPSHOT_NAME, self.shards)
        except Exception:
            logger.warning("refused claims not read from the ledger", exc_info=True)
            return 0
        self._loaded = True
        taken = 0
        for shard, value in found.items():
            entries = _decoded(value, self.config)
            if entries is None:
                continue
            self._stored[shard] = entries
            for document_id, entry in _in_force(entries, now).items():
                if document_id % self.shards == shard and document_id not in self.entries:
                    self.entries[document_id] = entry
                    taken += 1
        return taken

    def save(self, now: float) -> int:
        """Write each shard holding a refusal in force for the next ``SNAPSHOT_EVERY_SECONDS``
        that the ledger's copy lacks, at most once in that time; how many were written. A
        shard is written whole: its refusals in force. A failed write leaves the shard as it
        was (a later run tries again)."""
        if self.store is None:
            return 0
        if self._saved_at is not None and now - self._saved_at < SNAPSHOT_EVERY_SECONDS:
            return 0
        by_shard: dict[int, dict[int, Entry]] = {}
        for document_id, entry in _in_force(self.entries, now).items():
            by_shard.setdefault(document_id % self.shards, {})[document_id] = entry
        written = 0
        for shard, entries in sorted(by_shard.items()):
            stored = self._stored.get(shard, {})
            lasting = now + SNAPSHOT_EVERY_SECONDS
            if all(stored.get(i) == e for i, e in entries.items() if e[1] >= lasting):
                continue
            try:
                if not self.store.write(SNAPSHOT_NAME, shard, _encoded(self.config, entries)):
                    continue
            except Exception:
                logger.warning("refused claims not written to the ledger", exc_info=True)
                break
            self._stored[shard] = entries
            written += 1
        if written:
            self._saved_at = now
        return written


def _in_force(entries: dict[int, Entry], now: float) -> dict[int, Entry]:
    """The entries still sparing a claim, ``until`` to the second below as the ledger keeps it
    (earlier, never later: a claim a second early costs a write, one a second late a miss)."""
    return {
        i: (modified, until if math.isinf(until) else float(math.floor(until)))
        for i, (modified, until) in entries.items()
        if now < until
    }


def _encoded(config: str, entries: dict[int, Entry]) -> dict[str, Any]:
    """A shard as JSON: the configuration it holds under, and [id, modifiedAt, until] per
    document (``until`` in whole seconds, null for never)."""
    rows = [
        [i, modified, None if math.isinf(until) else int(until)]
        for i, (modified, until) in sorted(entries.items())
    ]
    return {"config": config, "refused": rows}


def _decoded(value: Any, config: str) -> dict[int, Entry] | None:
    """A shard's entries, or None when written under another configuration or unreadable."""
    try:
        if value["config"] != config:
            return None
        return {
            int(i): (str(modified), math.inf if until is None else float(until))
            for i, modified, until in value["refused"]
        }
    except (KeyError, TypeError, ValueError):
        return None
