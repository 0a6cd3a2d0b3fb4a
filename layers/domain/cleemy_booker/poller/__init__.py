"""The poller's domain: list the inbox and queue each document that is not already on its way.

A house of parts, each an object handed what it uses; the package reads bottom-up, each module
importing only the ones before it in this list: ``report`` (what a run reports, and why it
stopped), ``refused`` (the refused claims a warm poller remembers), ``reconciliation``
(``Reconciliation``: the ledger against the listing, discrepancies), ``claims`` (``Claims``: a
listed document's claim and message, and the claim given back), ``enqueue`` (``QueueSender``:
the queue's room and the messages sent), ``confirmation`` (``Confirmation``: what a listing of
the whole inbox proves), ``settling`` (``Settling``: uncertain bookings settled from Lucca's
booked documents), ``novelties`` (``NoveltyLog``: what Lucca sent that is new), ``core``
(``InboxPoller.run``: the parts composed for a run, the listing walked through them). What the
rest of the project uses is named here."""

from .claims import MAX_BODY_BYTES, message_for
from .core import InboxPoller
from .enqueue import QUEUE_SHARE, SEND_ATTEMPTS, SQS_BATCH, SQS_BATCH_BYTES
from .reconciliation import BOOKED_STILL_LISTED, UNKNOWN_TO_LEDGER
from .refused import BOOKED_GRACE_SECONDS, DISCREPANCY_TTL_SECONDS, RefusedClaims
from .report import (
    BACKLOG_STOPS,
    STOP_ANOTHER_POLLER,
    STOP_BUDGET,
    STOP_QUEUE_FULL,
    STOP_TARGET_REACHED,
    STOP_TIME,
    PollReport,
)
from .settling import SweepMemory

__all__ = [
    "BACKLOG_STOPS",
    "BOOKED_GRACE_SECONDS",
    "BOOKED_STILL_LISTED",
    "DISCREPANCY_TTL_SECONDS",
    "MAX_BODY_BYTES",
    "QUEUE_SHARE",
    "SEND_ATTEMPTS",
    "SQS_BATCH",
    "SQS_BATCH_BYTES",
    "STOP_ANOTHER_POLLER",
    "STOP_BUDGET",
    "STOP_QUEUE_FULL",
    "STOP_TARGET_REACHED",
    "STOP_TIME",
    "UNKNOWN_TO_LEDGER",
    "InboxPoller",
    "PollReport",
    "RefusedClaims",
    "SweepMemory",
    "message_for",
]
