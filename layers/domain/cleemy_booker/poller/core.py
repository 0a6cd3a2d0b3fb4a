"""The poller's domain: list the inbox and queue each document that is not already on its way.

``InboxPoller`` holds the collaborators, the settings and what a warm poller remembers between
runs; each run composes its parts from them (``Reconciliation``, ``Claims``, ``QueueSender``,
``Confirmation``, ``Settling``, ``NoveltyLog``) and walks the listing through them. The parts are
made per run because what they hold (the claims this run made, its read of the last complete
listing) is the run's own, and because the runtime sets the queue's target and the
configuration before each run."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..budget import BudgetBusy
from ..client import LuccaClient
from ..errors import PermanentError, RetryableError
from ..ledger import Ledger
from ..listing import ListingStats, iter_inbox
from .claims import Claims
from .confirmation import Confirmation, saw_whole_inbox
from .enqueue import SQS_BATCH, QueueSender
from .novelties import NoveltyLog
from .reconciliation import Reconciliation
from .refused import BOOKED_GRACE_SECONDS, DISCREPANCY_TTL_SECONDS, RefusedClaims
from .report import STOP_BUDGET, STOP_QUEUE_FULL, STOP_TARGET_REACHED, STOP_TIME, PollReport
from .settling import Settling, SweepMemory

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient


@dataclass
class InboxPoller:
    """One run: list and queue, then settle what a listing of the whole inbox proves. Every
    collaborator is passed in."""

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
    #: What Lucca sent that is new, already recorded (see ``NoveltyLog``); kept while warm.
    novelties_known: set[str] = field(default_factory=set)
    #: Where the sweep of Lucca's booked documents stands (see ``Settling``); kept while warm.
    sweep: SweepMemory = field(default_factory=SweepMemory)

    @property
    def listing_name(self) -> str:
        """The ledger's name for a listing with these filters: a listing of other filters says
        nothing about which documents this one should have seen."""
        text = json.dumps(dict(self.filters), sort_keys=True)
        return "inbox#" + hashlib.sha256(text.encode()).hexdigest()[:12]

    def run(self) -> PollReport:
        started = self.clock()
        parts = self._compose()
        report = PollReport()
        stats = ListingStats()
        failure: PermanentError | None = None
        pending: list[tuple[int, str]] = []
        seen: set[int] = set()
        sent_before = sum(self.client.requests_sent.values())
        self.refused.forget_all_unless(self._refusals_basis())
        self.refused.load(started)  # a cold start: the refusals the last instance left
        room = parts.queue.room(report)
        try:
            if room is not None and room <= 0:
                stats.stopped_because = STOP_QUEUE_FULL
            else:
                self._walk(parts, report, stats, pending, room, seen)
        except BudgetBusy:
            stats.stopped_because = STOP_BUDGET
        except RetryableError as error:
            # Lucca is busy or down: what was listed so far is queued; the next run lists the rest.
            stats.stopped_because = f"listing failed: {error}"
        except PermanentError as error:
            # A bad key, filter or answer will not mend itself: queue what was listed, then fail
            # the invocation so the poller's error alarm calls a person.
            stats.stopped_because = f"listing failed: {error}"
            failure = error
        finally:
            # Kept also when the flush fails (SQS down): the runtime logs what the run did.
            self.last_report = report
            try:
                parts.queue.flush(pending, report)
            finally:
                report.count = stats.count
                report.pages = stats.pages
                report.invalid_items = stats.invalid_items
                report.stopped_because = stats.stopped_because
                report.requests = sum(self.client.requests_sent.values()) - sent_before
        if failure is None and saw_whole_inbox(report, stats):
            self.refused.keep_only(seen)
        self.refused.save(self.clock())
        if failure is not None:
            raise failure
        if parts.confirmation.one_snapshot(report, stats):
            parts.confirmation.confirm_bookings(seen, started, report)
        elif stats.stopped_because != STOP_BUDGET:
            # No free proof of absence (more than a page, filters, a cut listing): look for
            # the bookings themselves, while the budget has room.
            parts.settling.settle(seen, report)
        if saw_whole_inbox(report, stats):
            known_before = parts.claims.known_before(started)
            self.ledger.markers.mark_listing_complete(self.listing_name, known_before)
        return report

    def _refusals_basis(self) -> str:
        """What a refusal holds under: the configuration holds were decided under, and what
        the claim's condition reads besides (a dry run's plans, the claim's time)."""
        return f"{self.config}|dry_run={self.dry_run}|claim={self.claim_ttl_seconds}"

    def _compose(self) -> _RunParts:
        """This run's parts, each handed only what it uses."""
        reconciliation = Reconciliation(
            self.ledger.markers,
            self.listing_name,
            booked_grace_seconds=self.booked_grace_seconds,
            discrepancy_ttl_seconds=self.discrepancy_ttl_seconds,
        )
        claims = Claims(
            self.ledger.states,
            reconciliation,
            self.refused,
            self.clock,
            claim_ttl_seconds=self.claim_ttl_seconds,
            dry_run=self.dry_run,
            config=self.config,
        )
        queue = QueueSender(self.sqs, self.queue_url, self.queue_target, claims)
        confirmation = Confirmation(
            self.ledger.states, self.ledger.queries, self.filters, dry_run=self.dry_run
        )
        novelties = NoveltyLog(self.ledger.markers, self.novelties_known)
        settling = Settling(
            self.client,
            self.ledger.states,
            self.ledger.queries,
            self.sweep,
            self.clock,
            time_left=self.time_left,
            stop_margin_seconds=self.stop_margin_seconds,
            dry_run=self.dry_run,
        )
        return _RunParts(claims, queue, confirmation, novelties, settling)

    def _walk(
        self,
        parts: _RunParts,
        report: PollReport,
        stats: ListingStats,
        pending: list[tuple[int, str]],
        room: int | None,
        seen: set[int],
    ) -> None:
        """List page after page, claiming as it goes, until the queue has its fill."""
        claimed = 0
        for listed in iter_inbox(self.client, self.filters, page_size=self.page_size, stats=stats):
            report.listed += 1
            seen.add(listed.document_id)
            parts.novelties.note(listed, report)
            claimed += parts.claims.claim(listed, report, pending)
            if len(pending) >= SQS_BATCH:
                parts.queue.flush(pending, report)
            if room is not None and claimed >= room:
                stats.stopped_because = STOP_TARGET_REACHED
                return
            if self.time_left() < self.stop_margin_seconds:
                stats.stopped_because = STOP_TIME
                return


@dataclass(frozen=True)
class _RunParts:
    claims: Claims
    queue: QueueSender
    confirmation: Confirmation
    novelties: NoveltyLog
    settling: Settling
