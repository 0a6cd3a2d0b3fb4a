"""The poller's domain: list the inbox and queue each document that is not already on its way."""

from __future__ import annotations

from dataclasses import dataclass

from ..budget import BudgetBusy
from ..errors import PermanentError, RetryableError
from ..listing import ListingStats
from .confirmation import Confirmation, _saw_whole_inbox
from .enqueue import Enqueueing
from .report import STOP_BUDGET, STOP_QUEUE_FULL, PollReport


@dataclass
class InboxPoller(Enqueueing, Confirmation):
    """One run: list and queue, then settle what a listing of the whole inbox proves."""

    def run(self) -> PollReport:
        started = self.clock()
        self._complete_read = False
        report = PollReport()
        stats = ListingStats()
        failure: PermanentError | None = None
        pending: list[tuple[int, str]] = []
        seen: set[int] = set()
        sent_before = sum(self.client.requests_sent.values())
        self.refused.forget_all_unless(self.config)
        room = self._room(report)
        try:
            if room is not None and room <= 0:
                stats.stopped_because = STOP_QUEUE_FULL
            else:
                self._walk(report, stats, pending, room, seen)
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
                self._flush(pending, report)
            finally:
                report.count = stats.count
                report.pages = stats.pages
                report.invalid_items = stats.invalid_items
                report.stopped_because = stats.stopped_because
                report.requests = sum(self.client.requests_sent.values()) - sent_before
        if failure is not None:
            raise failure
        if self._one_snapshot(report, stats):
            self._confirm_bookings(seen, started, report)
        if _saw_whole_inbox(report, stats):
            self.ledger.mark_listing_complete(self.listing_name, started)
        return report
