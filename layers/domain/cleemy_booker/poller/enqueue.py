"""Sending the claimed documents to the queue, as far as it has room."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .claims import Claims
from .report import PollReport

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient

#: SendMessageBatch takes at most 10 entries.
SQS_BATCH = 10
#: ...and at most 256 KiB in all (the historical limit; queues made since 2025 take 1 MiB, but a
#: batch within the older limit is valid on every queue).
SQS_BATCH_BYTES = 262_144
#: Entries a batch call failed are sent again this many times before their claim is released.
SEND_ATTEMPTS = 3
#: Of the requests the budget can make while a listing is fresh, the share the queue may hold:
#: under half, so that even a queue of documents that all need an update (two requests each)
#: is booked before the listing in its messages goes stale.
QUEUE_SHARE = 0.45


@dataclass
class QueueSender:
    """The documents queue: how much room it has, and the claimed documents sent to it in
    batches; a message not sent gives its claim back."""

    sqs: SQSClient
    queue_url: str
    #: The most documents the queue should hold (None: queue everything listed).
    queue_target: int | None
    claims: Claims

    def room(self, report: PollReport) -> int | None:
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

    def flush(self, pending: list[tuple[int, str]], report: PollReport) -> None:
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
                    self.claims.release(document_id)
                pending.clear()
                raise
            report.enqueued += len(batch) - len(unsent)
            for document_id in unsent:
                report.send_failed += 1
                self.claims.release(document_id)

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


def _batch_size(pending: list[tuple[int, str]]) -> int:
    """How many of the first pending messages fit one SendMessageBatch (count and bytes)."""
    total = 0
    for index, (_, body) in enumerate(pending[:SQS_BATCH]):
        total += len(body.encode())
        if total > SQS_BATCH_BYTES:
            return max(1, index)
    return min(len(pending), SQS_BATCH)
