"""What a poller run reports, and why it stopped."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

#: Why a run stopped with documents left in the inbox (the next run lists whatever the hour).
STOP_QUEUE_FULL = "the queue holds what the budget books while fresh"
STOP_TARGET_REACHED = "queue target reached"
STOP_TIME = "time running out"
STOP_BUDGET = "request budget busy"
BACKLOG_STOPS = frozenset({STOP_QUEUE_FULL, STOP_TARGET_REACHED, STOP_TIME, STOP_BUDGET})
#: Why a run did not even list: another poller holds the lease. Not a backlog stop: the run
#: that holds it is listing, and says itself whether it left work.
STOP_ANOTHER_POLLER = "another poller is running"


@dataclass
class PollReport:
    listed: int = 0
    enqueued: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    send_failed: int = 0
    invalid_items: int = 0
    requests: int = 0
    count: int | None = None
    pages: int = 0
    stopped_because: str = ""
    #: Documents already in the queue when the run started, and how many it could take.
    queued_before: int = 0
    room: int | None = None
    #: Listed documents whose claim was not even tried: refused before, nothing changed since.
    known: int = 0
    #: Queued documents listed on a later version than their message carries, told so now.
    listed_newer: int = 0
    #: Documents this run found the ledger and Lucca disagree about, first noted now.
    discrepancies: list[int] = field(default_factory=list)
    #: Documents a booking call of ours may have booked unseen, recorded booked by this run:
    #: its listing saw the whole inbox at once and they were not in it.
    confirmed: list[int] = field(default_factory=list)
    #: Of ``confirmed``, those Lucca's booked documents proved, by proof (``settling``).
    settled: Counter[str] = field(default_factory=Counter)
    #: Requests the settling spent on Lucca's booked documents (counted in ``requests`` too).
    settle_requests: int = 0
    #: What Lucca sent that is new (``kind:key``), first recorded by this run.
    novelties: list[str] = field(default_factory=list)

    @property
    def left_work(self) -> bool:
        """The run stopped before the inbox was exhausted (see ``BACKLOG_STOPS``)."""
        return self.stopped_because in BACKLOG_STOPS

    def as_dict(self) -> dict[str, Any]:
        return {
            "listed": self.listed,
            "enqueued": self.enqueued,
            "skipped": dict(self.skipped),
            "sendFailed": self.send_failed,
            "invalidItems": self.invalid_items,
            "requests": self.requests,
            "count": self.count,
            "pages": self.pages,
            "stoppedBecause": self.stopped_because,
            "queuedBefore": self.queued_before,
            "room": self.room,
            "known": self.known,
            "listedNewer": self.listed_newer,
            "discrepancies": self.discrepancies,
            "confirmed": self.confirmed,
            "novelties": self.novelties,
            "settled": dict(self.settled),
            "settleRequests": self.settle_requests,
        }
