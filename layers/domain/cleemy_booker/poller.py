"""The poller's domain: list the inbox and queue each document that is not already on its way."""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from .budget import BudgetBusy
from .client import LuccaClient
from .clock import utc_iso
from .errors import PermanentError, RetryableError
from .ledger import ClaimResult, DocumentState, Ledger, Status
from .listing import INBOX_ENDS, ListedDocument, ListingStats, iter_inbox
from .models import DocumentMessage
from .observability import logger

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient

#: SendMessageBatch takes at most 10 entries.
SQS_BATCH = 10
#: ...and at most 256 KiB in all (the historical limit; queues made since 2025 take 1 MiB, but a
#: batch within the older limit is valid on every queue).
SQS_BATCH_BYTES = 262_144
#: Entries a batch call failed are sent again this many times before their claim is released.
SEND_ATTEMPTS = 3
#: A message over this is sent as its id alone (its item is then fetched by the processor).
MAX_BODY_BYTES = 200_000
#: Of the requests the budget can make while a listing is fresh, the share the queue may hold:
#: under half, so that even a queue of documents that all need an update (two requests each)
#: is booked before the listing in its messages goes stale.
QUEUE_SHARE = 0.45

#: Why a run stopped with documents left in the inbox (the next run lists whatever the hour).
STOP_QUEUE_FULL = "the queue holds what the budget books while fresh"
STOP_TARGET_REACHED = "queue target reached"
STOP_TIME = "time running out"
STOP_BUDGET = "request budget busy"
BACKLOG_STOPS = frozenset({STOP_QUEUE_FULL, STOP_TARGET_REACHED, STOP_TIME, STOP_BUDGET})
#: Why a run did not even list: another poller holds the lease. Not a backlog stop: the run
#: that holds it is listing, and says itself whether it left work.
STOP_ANOTHER_POLLER = "another poller is running"

#: A booking this recent may still show in the inbox: a listing taken just before our book
#: stays in use this long (the processor's ``listing_fresh_seconds``).
BOOKED_GRACE_SECONDS = 900
#: A discrepancy stays in the ledger (and in every digest) this long, then TTL deletes it.
DISCREPANCY_TTL_SECONDS = 28 * 86400
#: Reason codes of a discrepancy (``"<code>: <words>"``, as hold reasons are written).
BOOKED_STILL_LISTED = "booked_still_in_inbox"
UNKNOWN_TO_LEDGER = "unknown_to_ledger"


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
    #: Documents this run found the ledger and Lucca disagree about, first noted now.
    discrepancies: list[int] = field(default_factory=list)
    #: Documents a booking call of ours may have booked unseen, recorded booked by this run:
    #: its listing saw the whole inbox at once and they were not in it.
    confirmed: list[int] = field(default_factory=list)

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
            "discrepancies": self.discrepancies,
            "confirmed": self.confirmed,
        }


def message_for(listed: ListedDocument, listed_at: datetime) -> str:
    """The queue message: the id, plus the item as listed when it parsed and fits."""
    if listed.item is None:
        return DocumentMessage(documentId=listed.document_id).model_dump_json()
    body = DocumentMessage(
        documentId=listed.document_id, item=listed.item, listedAt=listed_at
    ).model_dump_json(exclude_none=False)
    if len(body.encode()) > MAX_BODY_BYTES:
        return DocumentMessage(documentId=listed.document_id).model_dump_json()
    return body


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
class InboxPoller:
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

    def _walk(
        self,
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
            claimed += self._claim(listed, report, pending)
            if len(pending) >= SQS_BATCH:
                self._flush(pending, report)
            if room is not None and claimed >= room:
                stats.stopped_because = STOP_TARGET_REACHED
                return
            if self.time_left() < self.stop_margin_seconds:
                stats.stopped_because = STOP_TIME
                return

    def _room(self, report: PollReport) -> int | None:
        """How many more documents the queue should take (None: no target)."""
        if self.queue_target is None:
            return None
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        ).get("Attributes", {})
        report.queued_before = sum(int(value) for value in attributes.values())
        report.room = max(0, self.queue_target - report.queued_before)
        return report.room

    def _claim(
        self, listed: ListedDocument, report: PollReport, pending: list[tuple[int, str]]
    ) -> int:
        """Claim one listed document for the queue; 1 if it is to be sent."""
        modified = listed.item.changed_at if listed.item else None
        modified_at = modified.isoformat() if modified else ""
        now = self.clock()
        if self.refused.still_refused(listed.document_id, modified_at, now):
            report.known += 1
            return 0
        claim = self.ledger.claim_for_queue(
            listed.document_id,
            modified_at,
            now=now,
            ttl_seconds=self.claim_ttl_seconds,
            dry_run=self.dry_run,
            config=self.config,
        )
        if not claim.claimed:
            report.skipped[(claim.previous or "unknown").lower()] += 1
            until = self._check_refused(listed.document_id, claim, now, report)
            self.refused.remember(listed.document_id, modified_at, until)
            return 0
        if claim.new:
            self._check_new(listed, report)
        self._claimed_from[listed.document_id] = claim.before
        listed_at = datetime.fromtimestamp(now, UTC)
        pending.append((listed.document_id, message_for(listed, listed_at)))
        return 1

    # --- reconciliation: what the listing says against what the ledger says ------------------

    def _check_refused(
        self, document_id: int, claim: ClaimResult, now: float, report: PollReport
    ) -> float:
        """A document the ledger says is booked is still listed: Lucca did not book it (or
        undid it). Returns until when the refusal is remembered: a booking within the grace is
        asked about again once the grace is over, not only after a cold start."""
        if claim.previous is not Status.BOOKED or not claim.updated_at:
            return claim.retry_after
        booked = datetime.fromisoformat(claim.updated_at).timestamp()
        if now - booked < self.booked_grace_seconds:
            return min(claim.retry_after, booked + self.booked_grace_seconds)
        reason = (
            f"{BOOKED_STILL_LISTED}: booked by the booker at {claim.updated_at}, "
            "still in the inbox in Lucca"
        )
        self._note(document_id, reason, report)
        return claim.retry_after

    def _check_new(self, listed: ListedDocument, report: PollReport) -> None:
        """A document claimed for the first time although it was in the inbox when a listing
        that saw the whole inbox started: the ledger lost it (or never recorded it)."""
        created = _created_at(listed)
        if created is None:
            return
        since = self._last_complete_listing()
        if since is None or created >= datetime.fromisoformat(since):
            return
        reason = (
            f"{UNKNOWN_TO_LEDGER}: in the inbox since {created.isoformat()}, unknown to the ledger"
        )
        self._note(listed.document_id, reason, report)

    def _last_complete_listing(self) -> str | None:
        """Read once a run, and only when a new document needs it (most runs claim none). A
        failed read (a policy without GetItem) costs the check, never the poll."""
        if not self._complete_read:
            self._complete_read = True
            try:
                self._complete_since = self.ledger.last_complete_listing(self.listing_name)
            except ClientError:
                logger.warning("last complete listing not read", exc_info=True)
                self._complete_since = None
        return self._complete_since

    def _note(self, document_id: int, reason: str, report: PollReport) -> None:
        """Record a discrepancy once; a failed write is logged, not allowed to stop queueing."""
        try:
            new = self.ledger.record_discrepancy(
                document_id, reason, ttl_seconds=self.discrepancy_ttl_seconds
            )
        except ClientError:
            logger.warning("discrepancy not recorded", exc_info=True, extra={"reason": reason})
            return
        if new:
            report.discrepancies.append(document_id)

    # --- confirmation: bookings the processor could not prove, settled by the listing --------

    def _one_snapshot(self, report: PollReport, stats: ListingStats) -> bool:
        """This run's listing showed the whole inbox in one answer, so a document it did not
        show was not in the inbox when that answer was made.

        One page: the count and the items came from one request (the count on page 1 is the
        inferred ``fields.root=count``); across pages the order is unknown and documents come
        and go between requests, so a document can be skipped (and a newcomer make up the
        count) while it stays in the inbox. No filters: a document a filtered listing does not
        show may merely no longer match them. Every item read, each with a usable id.
        """
        return (
            not self.dry_run
            and not self.filters
            and stats.pages == 1
            and stats.stopped_because in INBOX_ENDS
            and stats.count is not None
            and report.listed >= stats.count
            and not stats.unusable
        )

    def _confirm_bookings(self, seen: set[int], started: float, report: PollReport) -> None:
        """Record as booked each document a booking call of ours may have booked unseen
        (``BOOKING``, or held ``book_uncertain``) that this whole-inbox listing no longer
        shows, if it was so before the listing began. One still listed stays as it is: in
        flight, or for a person. No Lucca request: the listing was made anyway.

        What the absence proves: the document left the inbox after our booking call. A
        person deleting it in between looks the same; Lucca publishes no way to tell (how an
        inbox id maps to a booked document's is not published).
        """
        try:
            candidates = self.ledger.uncertain_bookings()
        except ClientError:
            logger.warning("uncertain bookings not read", exc_info=True)
            return
        since = utc_iso(started)
        for state in candidates:
            if state.document_id in seen or not _before(state, started):
                continue
            detail = {
                "confirmedBy": (
                    "left the inbox after our booking call: absent from a listing of the whole "
                    f"inbox started at {since}"
                ),
                "was": state.status.value,
                "wasReasons": list(state.reasons),
            }
            try:
                confirmed = self.ledger.confirm_booked(state, detail=detail)
            except ClientError:
                logger.warning("booking not confirmed", exc_info=True)
                continue
            if confirmed:
                report.confirmed.append(state.document_id)
                logger.info(
                    "booking confirmed by the listing",
                    extra={"documentId": state.document_id, "was": state.status.value},
                )

    def _flush(self, pending: list[tuple[int, str]], report: PollReport) -> None:
        while pending:
            size = _batch_size(pending)
            batch, pending[:] = pending[:size], pending[size:]
            try:
                unsent = self._send_batch(batch)
            except Exception:
                # SQS failed outright (past botocore's retries): these documents are claimed but
                # not queued. Give the claims back so the next run queues them at once, rather
                # than when the claims expire.
                for document_id, _ in [*batch, *pending]:
                    report.send_failed += 1
                    self._release(document_id)
                pending.clear()
                raise
            report.enqueued += len(batch) - len(unsent)
            for document_id in unsent:
                report.send_failed += 1
                self._release(document_id)

    def _release(self, document_id: int) -> None:
        self.ledger.release_claim(document_id, self._claimed_from.pop(document_id, None))

    def _send_batch(self, batch: list[tuple[int, str]]) -> list[int]:
        """Send up to 10; resend the entries SQS failed. Returns the ids never sent."""
        remaining = {str(doc_id): body for doc_id, body in batch}
        for _ in range(SEND_ATTEMPTS):
            if not remaining:
                break
            response = self.sqs.send_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": key, "MessageBody": body} for key, body in remaining.items()],
            )
            sent = {entry["Id"] for entry in response.get("Successful", [])}
            remaining = {k: v for k, v in remaining.items() if k not in sent}
        return [int(key) for key in remaining]


def _saw_whole_inbox(report: PollReport, stats: ListingStats) -> bool:
    """The listing reached the end of the inbox on its own (no queue target, time, budget or
    failure stopped it), found as many documents as Lucca counted (a page shifted by a document
    booked meanwhile hides one: then it did not see everything), and left none of them
    unclaimed (a message not sent gives its claim back)."""
    return (
        stats.stopped_because in INBOX_ENDS
        and stats.count is not None
        and report.listed >= stats.count
        and report.send_failed == 0
    )


def _before(state: DocumentState, started: float) -> bool:
    """The state was written before the listing began (a state with no stamp is not)."""
    if not state.updated_at:
        return False
    return datetime.fromisoformat(state.updated_at).timestamp() < started


def _created_at(listed: ListedDocument) -> datetime | None:
    """When the document entered the inbox: the item's stamp, else the document's."""
    if listed.item is None:
        return None
    created = listed.item.createdAt or listed.item.document.createdAt
    if created is not None and created.tzinfo is None:
        created = created.replace(tzinfo=UTC)  # Lucca writes offsets; a bare one reads as UTC
    return created


def _batch_size(pending: list[tuple[int, str]]) -> int:
    """How many of the first pending messages fit one SendMessageBatch (count and bytes)."""
    total = 0
    for index, (_, body) in enumerate(pending[:SQS_BATCH]):
        total += len(body.encode())
        if total > SQS_BATCH_BYTES:
            return max(1, index)
    return min(len(pending), SQS_BATCH)
