"""What a warm poller remembers between runs: the claims the ledger refused, so that a held or
queued document unchanged since costs no conditional write on every run; and the constants the
poller's parts share."""

from __future__ import annotations

from dataclasses import dataclass, field

#: A booking this recent may still show in the inbox: a listing taken just before our book
#: stays in use this long (the processor's ``listing_fresh_seconds``).
BOOKED_GRACE_SECONDS = 900
#: A discrepancy stays in the ledger (and in every digest) this long, then TTL deletes it.
DISCREPANCY_TTL_SECONDS = 28 * 86400


@dataclass
class RefusedClaims:
    """Refused claims a warm poller remembers: id -> (modifiedAt, until when it stays refused).

    Without it every run would repeat one refused conditional write (a billed write unit) for
    every held or queued document of the inbox, every five minutes. Lost on a cold start (the
    next run asks again); forgotten as a whole when the configuration changes."""

    config: str = ""
    entries: dict[int, tuple[str, float]] = field(default_factory=dict)

    def still_refused(self, document_id: int, modified_at: str, now: float) -> bool:
        known = self.entries.get(document_id)
        return known is not None and known[0] == modified_at and now < known[1]

    def remember(self, document_id: int, modified_at: str, until: float) -> None:
        self.entries[document_id] = (modified_at, until)

    def forget_all_unless(self, config: str) -> None:
        if config != self.config:
            self.entries.clear()
            self.config = config
