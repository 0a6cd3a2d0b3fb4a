"""The poller's collaborators and settings, and what a warm poller remembers between runs."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..client import LuccaClient
from ..ledger import Ledger
from .report import PollReport

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient

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


@dataclass
class PollerBase:
    """What every part of a run reads: the collaborators (each passed in), the settings, and
    what this run (and a warm poller's earlier ones) have done so far."""

    client: LuccaClient
    ledger: Ledger
    sqs: SQSClient
    queue_url: str
    filters: Mapping[str, str]
    page_size: int = 1000
    claim_ttl_seconds: int = 3600
    time_left: Callable[[], float] = lambda: float("inf")
    stop_margin_seconds: float = 10.0
    dry_run: bool = False
    clock: Callable[[], float] = time.time
    #: The most documents the queue should hold (None: queue everything listed).
    queue_target: int | None = None
    #: The configuration holds were decided under (see ``fingerprint``).
    config: str = ""
    refused: RefusedClaims = field(default_factory=RefusedClaims)
    #: The report of the last run, also when it ended in an error.
    last_report: PollReport | None = None
    #: How old a booking must be before its document still listed is a discrepancy.
    booked_grace_seconds: float = BOOKED_GRACE_SECONDS
    discrepancy_ttl_seconds: int = DISCREPANCY_TTL_SECONDS
    #: This run's read of the last complete listing's start (read once, when first needed).
    _complete_since: str | None = field(default=None, init=False, repr=False)
    #: This run's claims: each document's state as it was, put back if its message is not sent.
    _claimed_from: dict[int, dict[str, Any]] = field(default_factory=dict, init=False, repr=False)
    _complete_read: bool = field(default=False, init=False, repr=False)

    @property
    def listing_name(self) -> str:
        """The ledger's name for a listing with these filters: a listing of other filters says
        nothing about which documents this one should have seen."""
        text = json.dumps(dict(self.filters), sort_keys=True)
        return "inbox#" + hashlib.sha256(text.encode()).hexdigest()[:12]
