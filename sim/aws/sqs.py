"""An in-memory SQS (standard queues) shaped like boto3's low-level client, on a pluggable clock.

Queues honour ``VisibilityTimeout``, ``DelaySeconds``, ``MessageRetentionPeriod``,
``MaximumMessageSize`` and ``RedrivePolicy``; messages carry receive counts, timestamps and
message attributes (with SQS's MD5 digests). Errors are ``botocore.exceptions.ClientError`` with
the codes boto3 surfaces for SQS's JSON protocol (``AWS.SimpleQueueService.NonExistentQueue``,
with ``QueryErrorCode`` ``QueueDoesNotExist``); modeled errors are also
``client.exceptions.<Shape>``.

Where it simplifies SQS:

* Standard queues only; one account and region.
* Delivery is exact and ordered: the oldest available message first (by when it became
  available, then by send order); no duplicate deliveries beyond what visibility timeouts
  cause; a short poll sees every available message (SQS samples a subset of its servers).
* ``ReceiveMessage`` answers at once: ``WaitTimeSeconds`` is validated, but waiting for a
  message is the caller's business (``next_visible_at`` tells when one becomes receivable).
* Redrive as SQS does it: a message already received ``maxReceiveCount`` times that a receive
  would deliver again goes to the dead-letter queue instead, with its message id, body,
  attributes, sent time and receive count. Retention counts from the original send, on the
  dead-letter queue too (as for standard queues). A missing dead-letter queue: no redrive.
* ``DeleteMessage`` with a stale receipt handle (the message was received again since) succeeds
  and leaves the message: AWS documents that such a delete "might not" delete it; the model
  takes the pessimistic side so duplicate processing shows. moto deletes the message.
* ``PurgeQueue`` deletes at once (SQS takes up to 60 s) and refuses a second purge within 60 s.
* Sizes: 1 MiB (1,048,576 bytes) is the default and largest ``MaximumMessageSize`` and the batch
  limit, as since SQS raised them from 256 KiB in August 2025 (moto 5.2 agrees). A message's
  size is its body plus its attributes' names, types and values, in UTF-8 bytes.
* Billing (``SqsUsage``): every call is one request per started 64 KiB of payload (what a send
  carries, what a receive returns), failed calls included.
* Responses carry no ``ResponseMetadata``.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import re
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from types import SimpleNamespace
from typing import Any, Final

from botocore.exceptions import ClientError

MAX_MESSAGE_BYTES: Final = 1_048_576
MAX_BATCH_BYTES: Final = 1_048_576
MAX_VISIBILITY: Final = 43_200
BILLING_CHUNK: Final = 65_536
SENDER_ID: Final = "AIDAIT2UOQQY3AUEKVGXU"  # the sender moto reports; any principal id would do

_PREFIX: Final = "AWS.SimpleQueueService."
#: Error code as boto3 surfaces it -> the modeled shape (``QueryErrorCode``), if modeled.
_SHAPES: Final = {
    f"{_PREFIX}NonExistentQueue": "QueueDoesNotExist",
    "QueueAlreadyExists": "QueueNameExists",
    f"{_PREFIX}TooManyEntriesInBatchRequest": "TooManyEntriesInBatchRequest",
    f"{_PREFIX}EmptyBatchRequest": "EmptyBatchRequest",
    f"{_PREFIX}BatchEntryIdsNotDistinct": "BatchEntryIdsNotDistinct",
    f"{_PREFIX}BatchRequestTooLong": "BatchRequestTooLong",
    f"{_PREFIX}InvalidBatchEntryId": "InvalidBatchEntryId",
    f"{_PREFIX}PurgeQueueInProgress": "PurgeQueueInProgress",
    f"{_PREFIX}MessageNotInflight": "MessageNotInflight",
    "ReceiptHandleIsInvalid": "ReceiptHandleIsInvalid",
    "InvalidAttributeName": "InvalidAttributeName",
    "InvalidAttributeValue": "InvalidAttributeValue",
}
_EXCEPTIONS: Final[dict[str, type[ClientError]]] = {
    shape: type(shape, (ClientError,), {}) for shape in _SHAPES.values()
}
_QUEUE_ATTRIBUTES: Final = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesDelayed",
    "ApproximateNumberOfMessagesNotVisible",
    "CreatedTimestamp",
    "DelaySeconds",
    "LastModifiedTimestamp",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "Policy",
    "QueueArn",
    "ReceiveMessageWaitTimeSeconds",
    "RedrivePolicy",
    "RedriveAllowPolicy",
    "VisibilityTimeout",
    "KmsMasterKeyId",
    "KmsDataKeyReusePeriodSeconds",
    "SqsManagedSseEnabled",
)
#: Settable attributes: (minimum, maximum) for numbers, None for free text.
_SETTABLE: Final[dict[str, tuple[int, int] | None]] = {
    "DelaySeconds": (0, 900),
    "MaximumMessageSize": (1024, MAX_MESSAGE_BYTES),
    "MessageRetentionPeriod": (60, 1_209_600),
    "ReceiveMessageWaitTimeSeconds": (0, 20),
    "VisibilityTimeout": (0, MAX_VISIBILITY),
    "KmsDataKeyReusePeriodSeconds": (60, 86_400),
    "RedrivePolicy": None,
    "RedriveAllowPolicy": None,
    "Policy": None,
    "KmsMasterKeyId": None,
    "SqsManagedSseEnabled": None,
}
_DEFAULTS: Final = {
    "DelaySeconds": "0",
    "MaximumMessageSize": str(MAX_MESSAGE_BYTES),
    "MessageRetentionPeriod": "345600",
    "ReceiveMessageWaitTimeSeconds": "0",
    "VisibilityTimeout": "30",
    "SqsManagedSseEnabled": "true",
}
_SYSTEM_ATTRIBUTES: Final = (
    "SenderId",
    "SentTimestamp",
    "ApproximateReceiveCount",
    "ApproximateFirstReceiveTimestamp",
)
_NO_QUEUE: Final = "The specified queue does not exist."
_NAME: Final = re.compile(r"[A-Za-z0-9_-]{1,80}\Z")
_BATCH_ID: Final = re.compile(r"[A-Za-z0-9_-]{1,80}\Z")
_ATTRIBUTE_NAME: Final = re.compile(r"[A-Za-z0-9_.-]{1,256}\Z")


def _error(code: str, message: str, operation: str) -> ClientError:
    shape = _SHAPES.get(code)
    response: dict[str, Any] = {
        "Error": {"Code": code, "Message": message, "QueryErrorCode": shape or code},
        "ResponseMetadata": {"HTTPStatusCode": 400},
    }
    response["Error"]["Type"] = "Sender"
    cls = _EXCEPTIONS.get(shape, ClientError) if shape else ClientError
    return cls(response, operation)  # type: ignore[arg-type]


class _Invalid(Exception):
    """A problem with one request or batch entry: (code, message)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _uuid(number: int) -> str:
    text = f"{number:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _attributes_md5(attributes: Mapping[str, Mapping[str, Any]]) -> str:
    """SQS's MD5OfMessageAttributes: length-prefixed name, type, transport and value, by name."""
    digest = hashlib.md5(usedforsecurity=False)
    for name in sorted(attributes):
        attribute = attributes[name]
        for text in (name, attribute["DataType"]):
            encoded = text.encode()
            digest.update(struct.pack("!I", len(encoded)) + encoded)
        if "StringValue" in attribute:
            value = attribute["StringValue"].encode()
            digest.update(b"\x01" + struct.pack("!I", len(value)) + value)
        else:
            value = attribute["BinaryValue"]
            digest.update(b"\x02" + struct.pack("!I", len(value)) + value)
    return digest.hexdigest()


@dataclass
class SqsUsage:
    """Requests per action, and what SQS bills: 1 request per started 64 KiB of payload."""

    #: Calls per action (``"SendMessage"``), failed ones included.
    calls: Counter[str] = field(default_factory=Counter)
    #: Billed requests per action.
    billed: Counter[str] = field(default_factory=Counter)

    @property
    def billed_requests(self) -> int:
        return sum(self.billed.values())


VISIBLE, IN_FLIGHT, DELAYED = 0, 1, 2


@dataclass(slots=True)
class _Message:
    seq: int
    message_id: str
    body: str
    attributes: dict[str, dict[str, Any]]
    md5_body: str
    md5_attributes: str | None
    size: int
    sent_at: float
    available_at: float
    receive_count: int = 0
    first_receive_at: float | None = None
    #: When the current receive happened (the 12-hour visibility limit counts from it).
    received_at: float = 0.0
    #: VISIBLE, IN_FLIGHT or DELAYED as of the queue's last ``advance``.
    state: int = VISIBLE
    #: Bumped on every availability change; heap entries with an older one are stale.
    version: int = 0


@dataclass
class _Queue:
    index: int
    name: str
    url: str
    arn: str
    attributes: dict[str, str]
    created: float
    modified: float
    messages: dict[int, _Message] = field(default_factory=dict)
    #: (available_at, seq, version) of every message: receive order, oldest available first.
    ready: list[tuple[float, int, int]] = field(default_factory=list)
    #: (available_at, seq, version) of in-flight and delayed messages: when they turn visible.
    pending: list[tuple[float, int, int]] = field(default_factory=list)
    #: (sent_at, seq), for retention and the age of the oldest message.
    by_age: list[tuple[float, int]] = field(default_factory=list)
    #: Messages per state (visible, in flight, delayed): counts in O(1) after ``advance``.
    tally: list[int] = field(default_factory=lambda: [0, 0, 0])
    next_seq: int = 1
    last_purge: float | None = None
    # Parsed attributes, refreshed by configure().
    visibility_timeout: int = 30
    delay_seconds: int = 0
    retention: int = 345_600
    max_size: int = MAX_MESSAGE_BYTES
    redrive: tuple[str, int] | None = None

    def configure(self) -> None:
        self.visibility_timeout = int(self.attributes["VisibilityTimeout"])
        self.delay_seconds = int(self.attributes["DelaySeconds"])
        self.retention = int(self.attributes["MessageRetentionPeriod"])
        self.max_size = int(self.attributes["MaximumMessageSize"])
        policy = self.attributes.get("RedrivePolicy")
        if policy:
            parsed = json.loads(policy)
            self.redrive = (parsed["deadLetterTargetArn"], int(parsed["maxReceiveCount"]))
        else:
            self.redrive = None

    def add(self, message: _Message, now: float) -> None:
        self.messages[message.seq] = message
        entry = (message.available_at, message.seq, message.version)
        heapq.heappush(self.ready, entry)
        heapq.heappush(self.by_age, (message.sent_at, message.seq))
        if message.available_at > now:
            message.state = DELAYED
            heapq.heappush(self.pending, entry)
        else:
            message.state = VISIBLE
        self.tally[message.state] += 1

    def forget(self, message: _Message) -> None:
        del self.messages[message.seq]
        self.tally[message.state] -= 1

    def hide(self, message: _Message, until: float) -> None:
        """In flight until ``until`` (a receive, or a visibility change)."""
        self.tally[message.state] -= 1
        self.tally[IN_FLIGHT] += 1
        message.state = IN_FLIGHT
        message.available_at = until
        message.version += 1
        entry = (until, message.seq, message.version)
        heapq.heappush(self.ready, entry)
        heapq.heappush(self.pending, entry)

    def advance(self, now: float) -> None:
        """Turn the in-flight and delayed messages whose time has come visible."""
        pending, messages, tally = self.pending, self.messages, self.tally
        while pending and pending[0][0] <= now:
            _, seq, version = heapq.heappop(pending)
            message = messages.get(seq)
            if message is not None and message.version == version and message.state != VISIBLE:
                tally[message.state] -= 1
                tally[VISIBLE] += 1
                message.state = VISIBLE

    def clear(self) -> None:
        self.messages.clear()
        self.ready.clear()
        self.pending.clear()
        self.by_age.clear()
        self.tally[:] = [0, 0, 0]


class InMemorySqs:
    """A thread-safe, deterministic SQS in memory (see the module docstring)."""

    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        *,
        region: str = "eu-west-3",
        account_id: str = "123456789012",
    ) -> None:
        self._clock = clock
        self.region = region
        self.account_id = account_id
        self._lock = threading.Lock()
        self._queues: dict[str, _Queue] = {}
        self._by_name: dict[str, _Queue] = {}
        self._by_arn: dict[str, _Queue] = {}
        self._by_index: dict[int, _Queue] = {}
        self._next_queue = 1
        self._next_message = 1
        self.usage = SqsUsage()
        self.exceptions = SimpleNamespace(ClientError=ClientError, **_EXCEPTIONS)

    # --- queues ----------------------------------------------------------------------------------

    def create_queue(
        self, *, QueueName: str, Attributes: Mapping[str, str] | None = None, **_: Any
    ) -> dict[str, Any]:
        op = "CreateQueue"
        with self._lock:
            self._bill(op, 0)
            if QueueName.endswith(".fifo") or (Attributes or {}).get("FifoQueue") == "true":
                raise NotImplementedError("FIFO queues are not modelled")
            if not _NAME.match(QueueName):
                raise _error(
                    "InvalidParameterValue",
                    "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 "
                    "in length",
                    op,
                )
            given = self._validate_attributes(Attributes or {}, op)
            existing = self._by_name.get(QueueName)
            if existing is not None:
                for name, value in given.items():
                    if existing.attributes.get(name, _DEFAULTS.get(name)) != value:
                        raise _error(
                            "QueueAlreadyExists",
                            "A queue already exists with the same name and a different value "
                            f"for attribute {name}",
                            op,
                        )
                return {"QueueUrl": existing.url}
            now = self._clock()
            index = self._next_queue
            self._next_queue += 1
            queue = _Queue(
                index=index,
                name=QueueName,
                url=f"https://sqs.{self.region}.amazonaws.com/{self.account_id}/{QueueName}",
                arn=f"arn:aws:sqs:{self.region}:{self.account_id}:{QueueName}",
                attributes={**_DEFAULTS, **given},
                created=now,
                modified=now,
            )
            queue.configure()
            self._queues[queue.url] = queue
            self._by_name[QueueName] = queue
            self._by_arn[queue.arn] = queue
            self._by_index[index] = queue
            return {"QueueUrl": queue.url}

    def _validate_attributes(self, attributes: Mapping[str, str], op: str) -> dict[str, str]:
        checked: dict[str, str] = {}
        for name, raw in attributes.items():
            if name not in _SETTABLE:
                raise _error("InvalidAttributeName", f"Unknown Attribute {name}.", op)
            value = str(raw)
            bounds = _SETTABLE[name]
            if bounds is not None:
                if not value.isdigit() or not bounds[0] <= int(value) <= bounds[1]:
                    raise _error(
                        "InvalidAttributeValue", f"Invalid value for the parameter {name}.", op
                    )
                value = str(int(value))
            elif name == "RedrivePolicy" and value:
                value = self._redrive_policy(value, op)
            checked[name] = value
        return checked

    def _redrive_policy(self, value: str, op: str) -> str:
        def invalid(reason: str) -> ClientError:
            return _error(
                "InvalidParameterValue",
                f"Value {value} for parameter RedrivePolicy is invalid. Reason: {reason}",
                op,
            )

        try:
            policy = json.loads(value)
            target = str(policy["deadLetterTargetArn"])
            count = int(policy["maxReceiveCount"])
        except (ValueError, KeyError, TypeError):
            raise invalid("Redrive policy is not a valid JSON map.") from None
        if not 1 <= count <= 1000:
            raise invalid(
                f"Invalid value for maxReceiveCount: {count}, valid values are from 1 to 1000 "
                "both inclusive."
            )
        if target not in self._by_arn:
            raise invalid("Dead letter target does not exist.")
        # SQS hands the policy back compact, with the count as a number.
        return json.dumps(
            {"deadLetterTargetArn": target, "maxReceiveCount": count}, separators=(",", ":")
        )

    def get_queue_url(self, *, QueueName: str, **_: Any) -> dict[str, Any]:
        op = "GetQueueUrl"
        with self._lock:
            self._bill(op, 0)
            queue = self._by_name.get(QueueName)
            if queue is None:
                raise _error(
                    f"{_PREFIX}NonExistentQueue", "The specified queue does not exist.", op
                )
            return {"QueueUrl": queue.url}

    def list_queues(self, *, QueueNamePrefix: str = "", **_: Any) -> dict[str, Any]:
        with self._lock:
            self._bill("ListQueues", 0)
            urls = [
                q.url
                for name, q in sorted(self._by_name.items())
                if name.startswith(QueueNamePrefix)
            ]
            return {"QueueUrls": urls} if urls else {}

    def delete_queue(self, *, QueueUrl: str, **_: Any) -> dict[str, Any]:
        op = "DeleteQueue"
        with self._lock:
            self._bill(op, 0)
            queue = self._queue(QueueUrl, op)
            del self._queues[queue.url], self._by_name[queue.name]
            del self._by_arn[queue.arn], self._by_index[queue.index]
            return {}

    def get_queue_attributes(
        self, *, QueueUrl: str, AttributeNames: Sequence[str] | None = None, **_: Any
    ) -> dict[str, Any]:
        op = "GetQueueAttributes"
        with self._lock:
            self._bill(op, 0)
            queue = self._queue(QueueUrl, op)
            wanted = list(AttributeNames or [])
            for name in wanted:
                if name != "All" and name not in _QUEUE_ATTRIBUTES:
                    raise _error("InvalidAttributeName", f"Unknown Attribute {name}.", op)
            if not wanted:
                return {}
            now = self._clock()
            self._expire(queue, now)
            visible, in_flight, delayed = queue.tally
            values = {
                "ApproximateNumberOfMessages": str(visible),
                "ApproximateNumberOfMessagesDelayed": str(delayed),
                "ApproximateNumberOfMessagesNotVisible": str(in_flight),
                "CreatedTimestamp": str(int(queue.created)),
                "LastModifiedTimestamp": str(int(queue.modified)),
                "QueueArn": queue.arn,
                **queue.attributes,
            }
            names = _QUEUE_ATTRIBUTES if "All" in wanted else wanted
            return {"Attributes": {n: values[n] for n in names if values.get(n)}}

    def set_queue_attributes(
        self, *, QueueUrl: str, Attributes: Mapping[str, str], **_: Any
    ) -> dict[str, Any]:
        op = "SetQueueAttributes"
        with self._lock:
            self._bill(op, 0)
            queue = self._queue(QueueUrl, op)
            queue.attributes.update(self._validate_attributes(Attributes, op))
            queue.modified = self._clock()
            queue.configure()
            return {}

    def purge_queue(self, *, QueueUrl: str, **_: Any) -> dict[str, Any]:
        op = "PurgeQueue"
        with self._lock:
            self._bill(op, 0)
            queue = self._queue(QueueUrl, op)
            now = self._clock()
            if queue.last_purge is not None and now - queue.last_purge < 60:
                raise _error(
                    f"{_PREFIX}PurgeQueueInProgress",
                    f"Only one PurgeQueue operation on {queue.name} is allowed every 60 seconds.",
                    op,
                )
            queue.last_purge = now
            queue.clear()
            return {}

    def _queue(self, url: str, op: str) -> _Queue:
        queue = self._queues.get(url)
        if queue is None:
            raise _error(f"{_PREFIX}NonExistentQueue", _NO_QUEUE, op)
        return queue

    # --- sending ---------------------------------------------------------------------------------

    def send_message(
        self,
        *,
        QueueUrl: str,
        MessageBody: str,
        DelaySeconds: int | None = None,
        MessageAttributes: Mapping[str, Mapping[str, Any]] | None = None,
        **_: Any,
    ) -> dict[str, Any]:
        op = "SendMessage"
        with self._lock:
            payload = 0
            try:
                queue = self._queue(QueueUrl, op)
                attributes = _message_attributes(MessageAttributes)
                payload = _size(MessageBody, attributes)
                if payload > queue.max_size:
                    raise _Invalid("InvalidParameterValue", _too_long(queue))
                message = self._send(queue, MessageBody, DelaySeconds, attributes, payload)
            except _Invalid as problem:
                raise _error(problem.code, problem.message, op) from None
            finally:
                self._bill(op, payload)
            result = {"MD5OfMessageBody": message.md5_body, "MessageId": message.message_id}
            if message.md5_attributes is not None:
                result["MD5OfMessageAttributes"] = message.md5_attributes
            return result

    def send_message_batch(
        self, *, QueueUrl: str, Entries: Sequence[Mapping[str, Any]], **_: Any
    ) -> dict[str, Any]:
        op = "SendMessageBatch"
        with self._lock:
            sizes: list[int] = []
            try:
                return self._send_batch(QueueUrl, Entries, op, sizes)
            finally:
                self._bill(op, sum(sizes))

    def _send_batch(
        self, url: str, entries: Sequence[Mapping[str, Any]], op: str, sizes: list[int]
    ) -> dict[str, Any]:
        queue = self._queue(url, op)
        self._check_batch(entries, "Send", op)
        prepared: list[dict[str, dict[str, Any]] | _Invalid] = []
        for entry in entries:
            body = entry.get("MessageBody", "")
            try:
                attributes = _message_attributes(entry.get("MessageAttributes"))
            except _Invalid as problem:
                prepared.append(problem)
                sizes.append(_size(body, {}))
                continue
            prepared.append(attributes)
            sizes.append(_size(body, attributes))
        total = sum(sizes)
        if total > MAX_BATCH_BYTES:
            raise _error(
                f"{_PREFIX}BatchRequestTooLong",
                f"Batch requests cannot be longer than {MAX_BATCH_BYTES} bytes. "
                f"You have sent {total} bytes.",
                op,
            )
        if any(size > queue.max_size for size in sizes):
            # moto refuses the whole batch here; AWS documents no per-entry failure for it.
            raise _error("InvalidParameterValue", _too_long(queue), op)
        successful: list[dict[str, Any]] = []
        failed: list[dict[str, Any]] = []
        for entry, checked, size in zip(entries, prepared, sizes, strict=True):
            try:
                if isinstance(checked, _Invalid):
                    raise checked
                message = self._send(
                    queue, entry.get("MessageBody"), entry.get("DelaySeconds"), checked, size
                )
            except _Invalid as problem:
                failed.append(_failure(entry["Id"], problem))
                continue
            sent = {
                "Id": entry["Id"],
                "MessageId": message.message_id,
                "MD5OfMessageBody": message.md5_body,
            }
            if message.md5_attributes is not None:
                sent["MD5OfMessageAttributes"] = message.md5_attributes
            successful.append(sent)
        return {"Successful": successful, "Failed": failed}

    def _send(
        self,
        queue: _Queue,
        body: Any,
        delay: int | None,
        attributes: dict[str, dict[str, Any]],
        size: int,
    ) -> _Message:
        if delay is None:
            delay = queue.delay_seconds
        elif type(delay) is not int or not 0 <= delay <= 900:
            raise _Invalid(
                "InvalidParameterValue",
                f"Value {delay} for parameter DelaySeconds is invalid. Reason: DelaySeconds must "
                "be >= 0 and <= 900.",
            )
        if not isinstance(body, str) or not body:
            raise _Invalid(
                "MissingParameter", "The request must contain the parameter MessageBody."
            )
        now = self._clock()
        number = self._next_message
        self._next_message += 1
        message = _Message(
            seq=queue.next_seq,
            message_id=_uuid(number),
            body=body,
            attributes=attributes,
            md5_body=_md5(body.encode()),
            md5_attributes=_attributes_md5(attributes) if attributes else None,
            size=size,
            sent_at=now,
            available_at=now + delay,
        )
        queue.next_seq += 1
        queue.add(message, now)
        return message

    # --- receiving -------------------------------------------------------------------------------

    def receive_message(
        self,
        *,
        QueueUrl: str,
        MaxNumberOfMessages: int = 1,
        VisibilityTimeout: int | None = None,
        WaitTimeSeconds: int | None = None,
        AttributeNames: Sequence[str] | None = None,
        MessageSystemAttributeNames: Sequence[str] | None = None,
        MessageAttributeNames: Sequence[str] | None = None,
        **_: Any,
    ) -> dict[str, Any]:
        op = "ReceiveMessage"
        with self._lock:
            payload = [0]
            try:
                return self._receive(
                    QueueUrl,
                    MaxNumberOfMessages,
                    VisibilityTimeout,
                    WaitTimeSeconds,
                    _wanted_system(AttributeNames, MessageSystemAttributeNames),
                    MessageAttributeNames,
                    payload,
                )
            finally:
                self._bill(op, payload[0])

    def _receive(
        self,
        url: str,
        count: int,
        visibility: int | None,
        wait: int | None,
        system: tuple[str, ...],
        wanted: Sequence[str] | None,
        payload: list[int],
    ) -> dict[str, Any]:
        op = "ReceiveMessage"
        queue = self._queue(url, op)
        if not 1 <= count <= 10:
            raise _error(
                "InvalidParameterValue",
                f"Value {count} for parameter MaxNumberOfMessages is invalid. "
                "Reason: Must be between 1 and 10, if provided.",
                op,
            )
        if wait is not None and not 0 <= wait <= 20:
            raise _error(
                "InvalidParameterValue",
                f"Value {wait} for parameter WaitTimeSeconds is invalid. "
                "Reason: Must be >= 0 and <= 20, if provided.",
                op,
            )
        if visibility is not None and not 0 <= visibility <= MAX_VISIBILITY:
            raise _error(
                "InvalidParameterValue",
                f"Value {visibility} for parameter VisibilityTimeout is invalid. "
                f"Reason: Must be >= 0 and <= {MAX_VISIBILITY}, if provided.",
                op,
            )
        timeout = queue.visibility_timeout if visibility is None else visibility
        now = self._clock()
        self._expire(queue, now)
        out: list[dict[str, Any]] = []
        ready = queue.ready
        messages = queue.messages
        while len(out) < count and ready and ready[0][0] <= now:
            _, seq, version = heapq.heappop(ready)
            message = messages.get(seq)
            if message is None or message.version != version:
                continue  # deleted, or its availability changed since this entry
            if queue.redrive is not None and message.receive_count >= queue.redrive[1]:
                target = self._by_arn.get(queue.redrive[0])
                if target is not None:
                    self._dead_letter(queue, target, message, now)
                    continue
            message.receive_count += 1
            if message.first_receive_at is None:
                message.first_receive_at = now
            message.received_at = now
            queue.hide(message, now + timeout)
            out.append(self._render(queue, message, system, wanted))
            payload[0] += message.size
        return {"Messages": out} if out else {}

    def _dead_letter(self, source: _Queue, target: _Queue, message: _Message, now: float) -> None:
        source.forget(message)
        moved = _Message(
            seq=target.next_seq,
            message_id=message.message_id,
            body=message.body,
            attributes=message.attributes,
            md5_body=message.md5_body,
            md5_attributes=message.md5_attributes,
            size=message.size,
            sent_at=message.sent_at,
            available_at=now,
            receive_count=message.receive_count,
            first_receive_at=message.first_receive_at,
        )
        target.next_seq += 1
        target.add(moved, now)

    def _render(
        self,
        queue: _Queue,
        message: _Message,
        system: tuple[str, ...],
        wanted: Sequence[str] | None,
    ) -> dict[str, Any]:
        handle = _uuid((queue.index << 104) | (message.seq << 40) | message.receive_count)
        rendered: dict[str, Any] = {
            "MessageId": message.message_id,
            "ReceiptHandle": handle,
            "MD5OfBody": message.md5_body,
            "Body": message.body,
        }
        if system:
            values = {
                "SenderId": SENDER_ID,
                "SentTimestamp": str(int(message.sent_at * 1000)),
                "ApproximateReceiveCount": str(message.receive_count),
                "ApproximateFirstReceiveTimestamp": str(
                    int((message.first_receive_at or 0) * 1000)
                ),
            }
            rendered["Attributes"] = {name: values[name] for name in system}
        if wanted and message.attributes:
            selected = _select_attributes(message.attributes, wanted)
            if selected:
                same = len(selected) == len(message.attributes)
                rendered["MD5OfMessageAttributes"] = (
                    message.md5_attributes if same else _attributes_md5(selected)
                )
                rendered["MessageAttributes"] = {k: dict(v) for k, v in selected.items()}
        return rendered

    # --- deleting and visibility -----------------------------------------------------------------

    def delete_message(self, *, QueueUrl: str, ReceiptHandle: str, **_: Any) -> dict[str, Any]:
        return self._handle_call(
            "DeleteMessage", QueueUrl, lambda queue: self._delete(queue, ReceiptHandle)
        )

    def delete_message_batch(
        self, *, QueueUrl: str, Entries: Sequence[Mapping[str, Any]], **_: Any
    ) -> dict[str, Any]:
        def delete(queue: _Queue, entry: Mapping[str, Any]) -> None:
            try:
                self._delete(queue, entry["ReceiptHandle"])
            except _Invalid:
                # A batch entry's answer names the handle, where DeleteMessage's does not.
                raise _Invalid(
                    "ReceiptHandleIsInvalid",
                    f'The input receipt handle "{entry["ReceiptHandle"]}" is not a valid '
                    "receipt handle.",
                ) from None

        return self._entry_batch("DeleteMessageBatch", QueueUrl, Entries, "Delete", delete)

    def _delete(self, queue: _Queue, handle: str) -> None:
        seq, count = self._decode(queue, handle)
        message = queue.messages.get(seq)
        if message is None or message.receive_count != count:
            return  # already gone, or received again since: SQS accepts the call
        queue.forget(message)

    def change_message_visibility(
        self, *, QueueUrl: str, ReceiptHandle: str, VisibilityTimeout: int, **_: Any
    ) -> dict[str, Any]:
        return self._handle_call(
            "ChangeMessageVisibility",
            QueueUrl,
            lambda queue: self._change_visibility(queue, ReceiptHandle, VisibilityTimeout),
        )

    def change_message_visibility_batch(
        self, *, QueueUrl: str, Entries: Sequence[Mapping[str, Any]], **_: Any
    ) -> dict[str, Any]:
        def change(queue: _Queue, entry: Mapping[str, Any]) -> None:
            self._change_visibility(
                queue, entry["ReceiptHandle"], entry.get("VisibilityTimeout", 0)
            )

        return self._entry_batch(
            "ChangeMessageVisibilityBatch", QueueUrl, Entries, "ChangeMessageVisibility", change
        )

    def _change_visibility(self, queue: _Queue, handle: str, timeout: Any) -> None:
        if type(timeout) is not int or not 0 <= timeout <= MAX_VISIBILITY:
            raise _Invalid(
                "InvalidParameterValue",
                f"Value {timeout} for parameter VisibilityTimeout is invalid. Reason: Must be "
                f"between 0 and {MAX_VISIBILITY}, if provided.",
            )
        seq, count = self._decode(queue, handle)
        message = queue.messages.get(seq)
        if message is None or message.receive_count != count:
            raise _Invalid(
                "InvalidParameterValue",
                f"Value {handle} for parameter ReceiptHandle is invalid. Reason: Message does "
                "not exist or is not available for visibility timeout change.",
            )
        now = self._clock()
        if message.state != IN_FLIGHT or message.available_at <= now:
            raise _Invalid(f"{_PREFIX}MessageNotInflight", "The message is not in flight.")
        if now + timeout - message.received_at > MAX_VISIBILITY:
            raise _Invalid(
                "InvalidParameterValue",
                f"Value {timeout} for parameter VisibilityTimeout is invalid. Reason: Total "
                f"VisibilityTimeout for the message is beyond the limit [{MAX_VISIBILITY} seconds]",
            )
        queue.hide(message, now + timeout)

    def _decode(self, queue: _Queue, handle: Any) -> tuple[int, int]:
        """(seq, receive count) from a receipt handle this queue issued, else invalid."""
        text = handle.replace("-", "") if isinstance(handle, str) else ""
        try:
            number = int(text, 16) if len(text) == 32 and len(handle) == 36 else -1
        except ValueError:
            number = -1
        index, seq, count = number >> 104, (number >> 40) & (2**64 - 1), number & (2**40 - 1)
        if number < 0 or index != queue.index or not 0 < seq < queue.next_seq or count == 0:
            raise _Invalid("ReceiptHandleIsInvalid", "The input receipt handle is invalid.")
        message = queue.messages.get(seq)
        if message is not None and count > message.receive_count:
            raise _Invalid("ReceiptHandleIsInvalid", "The input receipt handle is invalid.")
        return seq, count

    def _handle_call(self, op: str, url: str, act: Callable[[_Queue], None]) -> dict[str, Any]:
        """A call on one receipt handle: ``act`` on the queue, its problem answered as SQS's
        error."""
        with self._lock:
            self._bill(op, 0)
            queue = self._queue(url, op)
            try:
                act(queue)
            except _Invalid as problem:
                raise _error(problem.code, problem.message, op) from None
            return {}

    def _entry_batch(
        self,
        op: str,
        url: str,
        entries: Sequence[Mapping[str, Any]],
        action: str,
        each: Callable[[_Queue, Mapping[str, Any]], None],
    ) -> dict[str, Any]:
        """A batch of receipt-handle calls: ``each`` on every entry, which fails alone."""
        with self._lock:
            self._bill(op, 0)
            queue = self._queue(url, op)
            self._check_batch(entries, action, op)
            successful: list[dict[str, Any]] = []
            failed: list[dict[str, Any]] = []
            for entry in entries:
                try:
                    each(queue, entry)
                except _Invalid as problem:
                    failed.append(_failure(entry["Id"], problem))
                    continue
                successful.append({"Id": entry["Id"]})
            return {"Successful": successful, "Failed": failed}

    def _check_batch(self, entries: Sequence[Mapping[str, Any]], action: str, op: str) -> None:
        if not entries:
            raise _error(
                f"{_PREFIX}EmptyBatchRequest",
                f"There should be at least one {action}MessageBatchRequestEntry in the request.",
                op,
            )
        if len(entries) > 10:
            raise _error(
                f"{_PREFIX}TooManyEntriesInBatchRequest",
                f"Maximum number of entries per request are 10. You have sent {len(entries)}.",
                op,
            )
        seen: set[str] = set()
        for entry in entries:
            entry_id = entry.get("Id")
            if not isinstance(entry_id, str) or not _BATCH_ID.match(entry_id):
                raise _error(
                    f"{_PREFIX}InvalidBatchEntryId",
                    "A batch entry id can only contain alphanumeric characters, hyphens and "
                    "underscores. It can be at most 80 letters long.",
                    op,
                )
            if entry_id in seen:
                raise _error(f"{_PREFIX}BatchEntryIdsNotDistinct", f"Id {entry_id} repeated.", op)
            seen.add(entry_id)

    # --- ground truth for the simulation (not AWS API) ------------------------------------------

    def messages(self, QueueUrl: str) -> list[dict[str, Any]]:
        """Every message in the queue, in send order: body, attributes, receive count, times."""
        with self._lock:
            queue = self._queue(QueueUrl, "Messages")
            now = self._clock()
            self._expire(queue, now)
            snapshot = []
            for message in sorted(queue.messages.values(), key=lambda m: m.seq):
                if message.available_at <= now:
                    state = "visible"
                else:
                    state = "in_flight" if message.state == IN_FLIGHT else "delayed"
                snapshot.append(
                    {
                        "MessageId": message.message_id,
                        "Body": message.body,
                        "MessageAttributes": {k: dict(v) for k, v in message.attributes.items()},
                        "ReceiveCount": message.receive_count,
                        "SentAt": message.sent_at,
                        "VisibleAt": message.available_at,
                        "State": state,
                    }
                )
            return snapshot

    def counts(self, QueueUrl: str) -> tuple[int, int, int]:
        """(visible, in flight, delayed) right now."""
        with self._lock:
            queue = self._queue(QueueUrl, "Counts")
            now = self._clock()
            self._expire(queue, now)
            visible, in_flight, delayed = queue.tally
            return visible, in_flight, delayed

    def oldest_age(self, QueueUrl: str) -> float:
        """Seconds since the oldest message still in the queue was sent (0 when empty)."""
        with self._lock:
            queue = self._queue(QueueUrl, "OldestAge")
            now = self._clock()
            self._expire(queue, now)
            by_age = queue.by_age  # _expire left a live message (or nothing) at the top
            return max(0.0, now - by_age[0][0]) if by_age else 0.0

    def next_visible_at(self, QueueUrl: str) -> float | None:
        """When a receive could next return a message (maybe now or earlier); None if empty."""
        with self._lock:
            queue = self._queue(QueueUrl, "NextVisibleAt")
            self._expire(queue, self._clock())
            ready = queue.ready
            while ready:
                at, seq, version = ready[0]
                message = queue.messages.get(seq)
                if message is not None and message.version == version:
                    return at
                heapq.heappop(ready)
            return None

    # --- internals -------------------------------------------------------------------------------

    def _expire(self, queue: _Queue, now: float) -> None:
        """Drop the messages past the retention period, then bring the state counts up to
        ``now``. Cheap when there is nothing to do: a look at the top of two heaps."""
        by_age, messages = queue.by_age, queue.messages
        limit = now - queue.retention
        while by_age:
            sent_at, seq = by_age[0]
            message = messages.get(seq)
            if message is not None and sent_at > limit:
                break
            heapq.heappop(by_age)  # expired, or an entry left by a deleted message
            if message is not None:
                queue.forget(message)
        queue.advance(now)

    def _bill(self, action: str, payload: int) -> None:
        self.usage.calls[action] += 1
        self.usage.billed[action] += max(1, -(-payload // BILLING_CHUNK))


def _too_long(queue: _Queue) -> str:
    return (
        "One or more parameters are invalid. Reason: Message must be shorter than "
        f"{queue.max_size} bytes."
    )


def _failure(entry_id: str, problem: _Invalid) -> dict[str, Any]:
    return {"Id": entry_id, "SenderFault": True, "Code": problem.code, "Message": problem.message}


def _size(body: Any, attributes: Mapping[str, Mapping[str, Any]]) -> int:
    text = body if isinstance(body, str) else ""
    size = len(text) if text.isascii() else len(text.encode())
    for name, attribute in attributes.items():
        size += len(name.encode()) + len(attribute["DataType"].encode())
        if "StringValue" in attribute:
            size += len(attribute["StringValue"].encode())
        else:
            size += len(attribute["BinaryValue"])
    return size


def _message_attributes(
    attributes: Mapping[str, Mapping[str, Any]] | None,
) -> dict[str, dict[str, Any]]:
    """A validated private copy of a message's attributes."""
    if not attributes:
        return {}
    if len(attributes) > 10:
        raise _Invalid(
            "InvalidParameterValue",
            f"Number of message attributes [{len(attributes)}] exceeds the allowed maximum [10].",
        )
    copied: dict[str, dict[str, Any]] = {}
    for name, attribute in attributes.items():
        lowered = name.lower()
        if (
            not _ATTRIBUTE_NAME.match(name)
            or lowered.startswith(("aws.", "amazon."))
            or name.startswith(".")
            or name.endswith(".")
            or ".." in name
        ):
            raise _Invalid(
                "InvalidParameterValue",
                f"The message attribute name '{name}' is invalid. Attribute name can contain "
                "A-Z, a-z, 0-9, underscore (_), hyphen (-), and period (.) characters.",
            )
        data_type = str(attribute.get("DataType", ""))
        base = data_type.split(".", 1)[0]
        if base not in ("String", "Number", "Binary"):
            raise _Invalid(
                "InvalidParameterValue",
                f"The message attribute '{name}' has an invalid message attribute type, the set "
                "of supported type prefixes is Binary, Number, and String.",
            )
        if base == "Binary":
            value = attribute.get("BinaryValue")
            if isinstance(value, str):
                value = value.encode()
            if not isinstance(value, bytes | bytearray) or not value:
                raise _Invalid(
                    "InvalidParameterValue",
                    f"The message attribute '{name}' must contain non-empty message attribute "
                    f"value for message attribute type '{data_type}'.",
                )
            copied[name] = {"BinaryValue": bytes(value), "DataType": data_type}
            continue
        text = attribute.get("StringValue")
        if not isinstance(text, str) or not text:
            raise _Invalid(
                "InvalidParameterValue",
                f"The message attribute '{name}' must contain non-empty message attribute value "
                f"for message attribute type '{data_type}'.",
            )
        if base == "Number":
            try:
                Decimal(text)
            except InvalidOperation:
                raise _Invalid(
                    "InvalidParameterValue",
                    f"Can't cast the value of message (user) attribute '{name}' to a number.",
                ) from None
        copied[name] = {"StringValue": text, "DataType": data_type}
    return copied


def _wanted_system(*lists: Sequence[str] | None) -> tuple[str, ...]:
    wanted = {name for names in lists if names for name in names}
    if not wanted:
        return ()
    if "All" in wanted:
        return _SYSTEM_ATTRIBUTES
    return tuple(name for name in _SYSTEM_ATTRIBUTES if name in wanted)


def _select_attributes(
    attributes: dict[str, dict[str, Any]], wanted: Sequence[str]
) -> dict[str, dict[str, Any]]:
    if "All" in wanted or ".*" in wanted:
        return attributes
    prefixes = tuple(w[:-2] for w in wanted if w.endswith(".*"))
    exact = set(wanted)
    return {
        name: value
        for name, value in attributes.items()
        if name in exact or (prefixes and name.startswith(prefixes))
    }
