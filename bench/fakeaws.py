"""AWS in memory, for the full-size runs: the ledger, the idempotency store and the queues.

Why not moto at full size: with time compressed 30x our budget is 20 requests a second, and
each booked document costs ~14 DynamoDB/SQS calls in the handlers. moto answers a conditional
``UpdateItem`` in ~10-17 ms of pure Python (its expression parser), serialised behind one lock
(``bench/awsmock.py``) and one GIL, so it tops out near 6 documents a second: the drain time
would measure moto, not our pacing. In production the same calls have 1.5 s per request slot.
These stand-ins keep the semantics the pipeline relies on (conditional claims, receive counts,
the redrive policy, delays) at microseconds a call. The moto run (``--moto-documents``) checks
that both give the same Lucca requests.
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyItemAlreadyExistsError,
    IdempotencyItemNotFoundError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import (
    STATUS_CONSTANTS,
    DataRecord,
)

from cleemy_booker.ledger import ClaimResult, DocumentState, Status

QUEUE_ARN = "arn:aws:sqs:eu-west-1:123456789012:{name}"


# --- the ledger ---------------------------------------------------------------------------------


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="microseconds")


class InMemoryLedger:
    """What of ``cleemy_booker.ledger.Ledger`` one poll and its processing use, in dicts under a
    lock: a document is claimed once (a claim never expires within a run, and no document is
    listed twice, so the ledger's re-claim conditions for held, failed or stale documents are
    not needed); states move as recorded; invoice numbers are claimed atomically. The audit
    trail is counted, not kept. Extra keyword arguments (the ledger's API grows) are accepted.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._states: dict[int, DocumentState] = {}
        self._numbers: dict[tuple[str, str], int] = {}
        self.events = 0

    def state(self, document_id: int) -> DocumentState | None:
        with self._lock:
            return self._states.get(document_id)

    def claim_for_queue(
        self, document_id: int, modified_at: str, *, now: float, ttl_seconds: int, **_: Any
    ) -> ClaimResult:
        with self._lock:
            old = self._states.get(document_id)
            if old is not None:
                return ClaimResult(False, old.status)
            self._states[document_id] = DocumentState(
                document_id, Status.QUEUED, modified_at, float(int(now + ttl_seconds)), _iso(now)
            )
            return ClaimResult(True)

    def release_claim(self, document_id: int) -> None:
        with self._lock:
            old = self._states.get(document_id)
            if old is not None and old.status is Status.QUEUED:
                del self._states[document_id]

    def extend_claim(self, document_id: int, *, until: float) -> None:
        with self._lock:
            old = self._states.get(document_id) or DocumentState(document_id, Status.QUEUED)
            self._states[document_id] = replace(old, queued_until=float(int(until)))

    def record(
        self,
        document_id: int,
        status: Status,
        kind: str,
        *,
        modified_at: str | None = None,
        reasons: list[str] | None = None,
        detail: dict[str, Any] | None = None,
        **_: Any,
    ) -> None:
        with self._lock:
            self.events += 1
            old = self._states.get(document_id) or DocumentState(document_id, status)
            self._states[document_id] = replace(
                old,
                status=status,
                modified_at=old.modified_at if modified_at is None else modified_at,
                updated_at=_iso(time.time()),
                reasons=tuple(reasons or ()),
            )

    def claim_number(self, scope: str, number: str, document_id: int) -> int | None:
        with self._lock:
            holder = self._numbers.setdefault((scope, number), document_id)
            return None if holder == document_id else holder

    def find_duplicate(self, scope: str, number: str, document_id: int) -> int | None:
        with self._lock:
            holder = self._numbers.get((scope, number))
            return holder if holder is not None and holder != document_id else None

    def release_number(self, scope: str, number: str, document_id: int) -> None:
        with self._lock:
            if self._numbers.get((scope, number)) == document_id:
                del self._numbers[(scope, number)]


# --- idempotency --------------------------------------------------------------------------------


class IdempotencyTable:
    """The one idempotency table every processor instance shares."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.records: dict[str, DataRecord] = {}


class InMemoryIdempotency(BasePersistenceLayer):
    """Powertools' persistence contract with the DynamoDB layer's put condition: a record may
    be (re)written when absent, expired, or in progress past its in-progress expiry."""

    def __init__(self, table: IdempotencyTable) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._table = table

    def _get_record(self, idempotency_key: str) -> DataRecord:
        with self._table.lock:
            try:
                return self._table.records[idempotency_key]
            except KeyError:
                raise IdempotencyItemNotFoundError from None

    def _put_record(self, data_record: DataRecord) -> None:
        now = time.time()
        with self._table.lock:
            old = self._table.records.get(data_record.idempotency_key)
            if old is not None and not _replaceable(old, now):
                raise IdempotencyItemAlreadyExistsError(old_data_record=old)
            self._table.records[data_record.idempotency_key] = data_record

    def _update_record(self, data_record: DataRecord) -> None:
        with self._table.lock:
            self._table.records[data_record.idempotency_key] = data_record

    def _delete_record(self, data_record: DataRecord) -> None:
        with self._table.lock:
            self._table.records.pop(data_record.idempotency_key, None)


def _replaceable(old: DataRecord, now: float) -> bool:
    if old.expiry_timestamp is not None and old.expiry_timestamp < int(now):
        return True
    in_progress = old._status == STATUS_CONSTANTS["INPROGRESS"]
    expiry = old.in_progress_expiry_timestamp
    return in_progress and expiry is not None and expiry < int(now * 1000)


# --- SQS ----------------------------------------------------------------------------------------


@dataclass
class _Message:
    message_id: str
    body: str
    attributes: dict[str, Any]
    available_at: float
    receive_count: int = 0
    receipt: str | None = None


@dataclass
class _Queue:
    name: str
    visibility: float
    dead_letter: str | None = None
    max_receive_count: int = 0
    messages: dict[str, _Message] = field(default_factory=dict)


class FakeSqs:
    """The SQS calls the pipeline and the driver make, boto3-shaped: standard queues with
    delays, visibility timeouts, receive counts and a redrive policy to a dead-letter queue."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: dict[str, _Queue] = {}

    def create_queue(
        self,
        name: str,
        *,
        visibility: float = 30,
        dead_letter: str | None = None,
        max_receives: int = 0,
    ) -> str:
        url = f"https://sqs.eu-west-1.amazonaws.com/123456789012/{name}"
        self._queues[url] = _Queue(name, visibility, dead_letter, max_receives)
        return url

    def send_message(
        self,
        QueueUrl: str,
        MessageBody: str,
        DelaySeconds: int = 0,
        MessageAttributes: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        with self._lock:
            message_id = self._put(QueueUrl, MessageBody, DelaySeconds, MessageAttributes or {})
        return {"MessageId": message_id}

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        with self._lock:
            for entry in Entries:
                self._put(QueueUrl, entry["MessageBody"], entry.get("DelaySeconds", 0), {})
        return {"Successful": [{"Id": entry["Id"]} for entry in Entries], "Failed": []}

    def receive_message(
        self,
        QueueUrl: str,
        MaxNumberOfMessages: int = 1,
        VisibilityTimeout: float | None = None,
        **_: Any,
    ) -> dict[str, Any]:
        now = time.time()
        with self._lock:
            queue = self._queues[QueueUrl]
            taken: list[dict[str, Any]] = []
            for message in list(queue.messages.values()):
                if len(taken) >= MaxNumberOfMessages:
                    break
                if message.available_at > now:
                    continue
                if queue.dead_letter and message.receive_count >= queue.max_receive_count:
                    self._redrive(queue, message)
                    continue
                message.receive_count += 1
                message.receipt = uuid.uuid4().hex
                message.available_at = now + (
                    queue.visibility if VisibilityTimeout is None else VisibilityTimeout
                )
                taken.append(_shape(message))
        return {"Messages": taken} if taken else {}

    def delete_message(self, QueueUrl: str, ReceiptHandle: str) -> None:
        with self._lock:
            queue = self._queues[QueueUrl]
            for message_id, message in queue.messages.items():
                if message.receipt == ReceiptHandle:
                    del queue.messages[message_id]
                    return

    def change_message_visibility(
        self,
        QueueUrl: str,
        ReceiptHandle: str,
        VisibilityTimeout: float,
    ) -> None:
        with self._lock:
            for message in self._queues[QueueUrl].messages.values():
                if message.receipt == ReceiptHandle:
                    message.available_at = time.time() + VisibilityTimeout
                    return

    def get_queue_attributes(
        self,
        QueueUrl: str,
        AttributeNames: list[str],
    ) -> dict[str, Any]:
        now = time.time()
        with self._lock:
            queue = self._queues[QueueUrl]
            messages = list(queue.messages.values())
        visible = sum(1 for m in messages if m.available_at <= now)
        received = sum(1 for m in messages if m.available_at > now and m.receipt is not None)
        values = {
            "QueueArn": QUEUE_ARN.format(name=queue.name),
            "ApproximateNumberOfMessages": str(visible),
            "ApproximateNumberOfMessagesNotVisible": str(received),
            "ApproximateNumberOfMessagesDelayed": str(len(messages) - visible - received),
        }
        return {"Attributes": {name: values[name] for name in AttributeNames}}

    def _put(self, url: str, body: str, delay: int, attributes: dict[str, Any]) -> str:
        message = _Message(uuid.uuid4().hex, body, attributes, time.time() + delay)
        self._queues[url].messages[message.message_id] = message
        return message.message_id

    def _redrive(self, queue: _Queue, message: _Message) -> None:
        """Past maxReceiveCount: moved to the dead-letter queue, as SQS does on the next
        receive, keeping its id and attributes (and no failure reason of ours)."""
        del queue.messages[message.message_id]
        target = self._queues[str(queue.dead_letter)]
        message.available_at, message.receipt = 0.0, None
        target.messages[message.message_id] = message


def _shape(message: _Message) -> dict[str, Any]:
    digest = hashlib.md5(message.body.encode(), usedforsecurity=False).hexdigest()
    return {
        "MessageId": message.message_id,
        "ReceiptHandle": message.receipt,
        "Body": message.body,
        "MD5OfBody": digest,
        "Attributes": {"ApproximateReceiveCount": str(message.receive_count)},
        "MessageAttributes": message.attributes,
    }


@dataclass
class MemoryStack:
    """What the driver needs of ``tests.aws.Stack``: the queue, its DLQ, and the SQS client."""

    sqs: FakeSqs
    queue_url: str
    dlq_url: str

    @classmethod
    def create(cls, *, visibility: float, max_receive_count: int) -> MemoryStack:
        sqs = FakeSqs()
        dlq = sqs.create_queue("documents-dlq")
        queue = sqs.create_queue(
            "documents", visibility=visibility, dead_letter=dlq, max_receives=max_receive_count
        )
        return cls(sqs, queue, dlq)


class NoDynamoDB:
    """Handed to the runtimes as their DynamoDB client once everything that would use it is
    swapped for memory: any call left would fail loudly rather than silently reach moto."""

    def __getattr__(self, name: str) -> Any:
        def refuse(*args: Any, **kwargs: Any) -> Any:
            raise RuntimeError(f"DynamoDB.{name} called in the in-memory run")

        return refuse
