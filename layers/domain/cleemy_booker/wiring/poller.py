"""The poller's wiring: one scheduled run lists the inbox and queues what is new, one poller at
a time (a lease in the ledger), counting the held documents for their alarm."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from aws_lambda_powertools.metrics import MetricUnit

from ..config import PollerSettings
from ..errors import PermanentError
from ..ledger import Ledger, Status
from ..observability import logger, metrics
from ..poller import (
    QUEUE_SHARE,
    STOP_ANOTHER_POLLER,
    InboxPoller,
    PollReport,
    RefusedClaims,
    SweepMemory,
)
from .aws import AwsClients
from .shared import (
    ApiKey,
    LuccaRuntime,
    Seams,
    deadline_from,
    decision_config,
)

#: The ledger lease that lets one poller run at a time (no reserved concurrency: Lambda refuses
#: reservations on accounts with a low concurrency quota).
POLLER_LEASE = "inbox-poller"
#: Lambda's longest timeout: no lease outlives an invocation, even one told it has forever.
MAX_INVOCATION_SECONDS = 900.0
#: Scheduled runs start a little late or early: a pace of N seconds allows this much less.
SCHEDULE_DRIFT_SECONDS = 30


class PollerRuntime(LuccaRuntime):
    def __init__(
        self, settings: PollerSettings, aws: AwsClients, api_key: ApiKey, seams: Seams | None = None
    ) -> None:
        super().__init__(settings, aws, api_key, seams)
        self.settings = settings
        # The poller writes the ledger's trail too (a booking it confirms): kept as long.
        self.ledger = Ledger(
            aws.dynamodb,
            settings.ledger_table,
            retention_days=settings.ledger_retention_days,
            clock=self.clock.time,
        )
        #: Refused claims, remembered while this instance is warm and kept in the ledger for
        #: the next instance (see ``RefusedClaims``).
        self.refused = RefusedClaims(store=self.ledger.snapshots)
        #: What Lucca sent that is new, recorded already (see ``NoveltyLog``): kept while warm.
        self.novelties_known: set[str] = set()
        #: Where the sweep of Lucca's booked documents stands (see ``Settling``): kept while warm.
        self.sweep = SweepMemory()
        self.hours = settings.hours()
        #: When this instance last listed, and whether that run left work in the inbox.
        self._listed_at: float | None = None
        self._backlog = False
        #: When a run of this instance last counted the held documents (None: not yet).
        self._counted_at: float | None = None

    def _queue_target(self) -> int:
        """The queue's fill at the pace the budget keeps now: slowed after 429s (another
        integration spends the tenant's budget), it books fewer while the listing is fresh."""
        slowdown = max(1.0, self.budget.store.read().slowdown)
        return max(1, int(self.settings.queue_target(QUEUE_SHARE) / slowdown))

    def _skip_listing(self) -> str | None:
        """Outside working hours, a run lists only every ``off_hours_listing_seconds``, unless
        the previous one left a backlog (a warm instance remembers; a cold one lists)."""
        now = self.clock.time()
        if self._listed_at is None or self._backlog or self.hours.contains(now):
            return None
        since = now - self._listed_at
        if since >= self.settings.off_hours_listing_seconds - SCHEDULE_DRIFT_SECONDS:
            return None
        return "outside working hours, listed a moment ago"

    def poll(self, time_left: Callable[[], float], request_id: str | None = None) -> PollReport:
        """One scheduled run. ``request_id`` names this invocation as the lease's holder (the
        Lambda request id finds its logs); without one, a random id."""
        started = self.clock.time()
        try:
            return self._poll(time_left, request_id or uuid.uuid4().hex)
        finally:
            self.throttles.emit()
            self._count_held(started)

    def _poll(self, time_left: Callable[[], float], holder: str) -> PollReport:
        skip = self._skip_listing()
        if skip is not None:
            logger.info("inbox not listed", extra={"reason": skip, "listedAt": self._listed_at})
            return PollReport(stopped_because=skip)
        until = self.clock.time() + min(time_left(), MAX_INVOCATION_SECONDS)
        lease = self.ledger.leases.acquire_lease(POLLER_LEASE, holder, until)
        if not lease.acquired:
            # Two pollers would list the same inbox twice and queue nothing more.
            extra = {"reason": STOP_ANOTHER_POLLER, "holder": lease.holder, "until": lease.until}
            logger.info("inbox not listed", extra=extra)
            return PollReport(stopped_because=STOP_ANOTHER_POLLER)
        try:
            return self._list_and_queue(time_left)
        finally:
            self._release_lease(holder)

    def _release_lease(self, holder: str) -> None:
        """A lease not given back lapses at the end of the invocation anyway: failing (or
        hiding the poll's own error) for it would cost more than the next run it delays."""
        try:
            self.ledger.leases.release_lease(POLLER_LEASE, holder)
        except Exception:
            logger.warning("poller lease not released", exc_info=True)

    def _count_held(self, started: float) -> None:
        """``DocumentsAwaitingReview``: the held documents, at most every ``held_count_seconds``
        (a warm instance remembers, a cold one counts). Emitted when zero too, so the alarm
        reading it sees the backlog cleared. A failed count costs the gauge one point, not the
        poll."""
        if self.settings.monitoring == "none":
            return  # no alarm reads the gauge: counting would cost reads and a metric
        pace = self.settings.held_count_seconds - SCHEDULE_DRIFT_SECONDS
        if self._counted_at is not None and started - self._counted_at < pace:
            return
        try:
            held = self.ledger.queries.count_in_status(Status.HELD)
        except Exception:
            logger.warning("held documents not counted", exc_info=True)
            return
        self._counted_at = started
        metrics.add_metric("DocumentsAwaitingReview", MetricUnit.Count, held)

    def _list_and_queue(self, time_left: Callable[[], float]) -> PollReport:
        poller = InboxPoller(
            client=self.client,
            ledger=self.ledger,
            sqs=self.aws.sqs,
            queue_url=self.settings.queue_url,
            filters=self.settings.inbox_filters,
            page_size=self.settings.page_size,
            claim_ttl_seconds=self.settings.claim_ttl_seconds,
            time_left=time_left,
            stop_margin_seconds=self.settings.stop_margin_seconds,
            dry_run=self.settings.dry_run,
            clock=self.clock.time,
            queue_target=self._queue_target(),
            config=decision_config(self.settings),
            refused=self.refused,
            novelties_known=self.novelties_known,
            sweep=self.sweep,
            booked_grace_seconds=self.settings.listing_fresh_seconds,
        )
        deadline = deadline_from(time_left, self.settings.stop_margin_seconds, self.clock)
        try:
            with self.client.until(deadline):
                report = poller.run()
        except PermanentError:
            partial = poller.last_report.as_dict() if poller.last_report else {}
            logger.error("inbox poll failed", extra={"report": partial})
            if poller.last_report is not None:
                _report_discrepancies(poller.last_report)
            raise
        _report_discrepancies(report)
        self._listed_at = self.clock.time()
        self._backlog = report.left_work
        # Listed and enqueued counts are in the log line below: each custom metric costs $0.30 a
        # month for every hour it has data, and the poller runs around the clock.
        metrics.add_metric("LuccaRequests", MetricUnit.Count, report.requests)
        logger.info("inbox polled", extra={"report": report.as_dict()})
        return report


def _report_discrepancies(report: PollReport) -> None:
    """``ReconciliationDiscrepancies``: documents first found this run on which the ledger and
    Lucca disagree. Only when there are some (a custom metric costs for every hour with data);
    the ids go to the log, the reasons to the ledger (and the digest)."""
    if not report.discrepancies:
        return
    metrics.add_metric("ReconciliationDiscrepancies", MetricUnit.Count, len(report.discrepancies))
    logger.warning("the ledger and Lucca disagree", extra={"documentIds": report.discrepancies})
