"""The poller's domain: list the inbox and queue each document that is not already on its way."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .budget import BudgetBusy
from .client import LuccaClient
from .errors import PermanentError, RetryableError
from .ledger import Ledger
from .listing import ListedDocument, ListingStats, iter_inbox
from .models import DocumentMessage

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient

#: SendMessageBatch takes at most 10 entries.
SQS_BATCH = 10
#: Entries a batch call failed are sent again this many times before their claim is released.
SEND_ATTEMPTS = 3
#: SQS refuses bodies over 256 KiB; an item that large is sent as its id alone.
MAX_BODY_BYTES = 200_000


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
    #: The report of the last run, also when it ended in an error.
    last_report: PollReport | None = None

    def run(self) -> PollReport:
        report = PollReport()
        stats = ListingStats()
        failure: PermanentError | None = None
        pending: list[tuple[int, str]] = []
        sent_before = sum(self.client.requests_sent.values())
        try:
            for listed in iter_inbox(
                self.client, self.filters, page_size=self.page_size, stats=stats
            ):
                report.listed += 1
                self._claim(listed, report, pending)
                if len(pending) >= SQS_BATCH:
                    self._flush(pending, report)
                if self.time_left() < self.stop_margin_seconds:
                    stats.stopped_because = "time running out"
                    break
        except BudgetBusy:
            stats.stopped_because = "request budget busy"
        except RetryableError as error:
            # Lucca is busy or down: what was listed so far is queued; the next run lists the rest.
            stats.stopped_because = f"listing failed: {error}"
        except PermanentError as error:
            # A bad key, filter or answer will not mend itself: queue what was listed, then fail
            # the invocation so the poller's error alarm calls a person.
            stats.stopped_because = f"listing failed: {error}"
            failure = error
        finally:
            self._flush(pending, report)
        report.count = stats.count
        report.pages = stats.pages
        report.invalid_items = stats.invalid_items
        report.stopped_because = stats.stopped_because
        report.requests = sum(self.client.requests_sent.values()) - sent_before
        self.last_report = report
        if failure is not None:
            raise failure
        return report

    def _claim(
        self, listed: ListedDocument, report: PollReport, pending: list[tuple[int, str]]
    ) -> None:
        modified = listed.item.changed_at if listed.item else None
        claim = self.ledger.claim_for_queue(
            listed.document_id,
            modified.isoformat() if modified else "",
            now=self.clock(),
            ttl_seconds=self.claim_ttl_seconds,
            dry_run=self.dry_run,
        )
        if not claim.claimed:
            report.skipped[(claim.previous or "unknown").lower()] += 1
            return
        listed_at = datetime.fromtimestamp(self.clock(), UTC)
        pending.append((listed.document_id, message_for(listed, listed_at)))

    def _flush(self, pending: list[tuple[int, str]], report: PollReport) -> None:
        while pending:
            batch, pending[:] = pending[:SQS_BATCH], pending[SQS_BATCH:]
            try:
                unsent = self._send_batch(batch)
            except Exception:
                # SQS failed outright (past botocore's retries): these documents are claimed but
                # not queued. Give the claims back so the next run queues them at once, rather
                # than when the claims expire.
                for document_id, _ in [*batch, *pending]:
                    report.send_failed += 1
                    self.ledger.release_claim(document_id)
                pending.clear()
                raise
            report.enqueued += len(batch) - len(unsent)
            for document_id in unsent:
                report.send_failed += 1
                self.ledger.release_claim(document_id)

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
