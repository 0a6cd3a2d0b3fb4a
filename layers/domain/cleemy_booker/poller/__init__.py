"""The poller's domain: list the inbox and queue each document that is not already on its way.

The package reads bottom-up: each module imports only the ones before it in this list,
``report`` (what a run reports, and why it stopped), ``base`` (the collaborators, and the
refused claims a warm poller remembers), ``reconciliation`` (the ledger against the listing:
discrepancies), ``claims`` (a listed document's claim and message, and the claim given back),
``enqueue`` (the listing walked and its messages sent), ``confirmation`` (what a listing of the
whole inbox proves), ``core`` (``InboxPoller.run``). What the rest of the project uses is named
here.
"""

from .base import BOOKED_GRACE_SECONDS, DISCREPANCY_TTL_SECONDS, RefusedClaims
from .claims import MAX_BODY_BYTES, message_for
from .core import InboxPoller
from .enqueue import QUEUE_SHARE, SEND_ATTEMPTS, SQS_BATCH, SQS_BATCH_BYTES
from .reconciliation import BOOKED_STILL_LISTED, UNKNOWN_TO_LEDGER
from .report import (
    BACKLOG_STOPS,
    STOP_ANOTHER_POLLER,
    STOP_BUDGET,
    STOP_QUEUE_FULL,
    STOP_TARGET_REACHED,
    STOP_TIME,
    PollReport,
)

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
    "message_for",
]
