"""A message in the dead-letter queue, read: which document, what the processor said about its
failure, and when it arrived; and the attributes it goes back to the documents queue with."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_sqs.type_defs import MessageTypeDef

#: The attributes the processor adds when it dead-letters a document; a replay drops them.
FAILURE_ATTRIBUTES = frozenset({"failureReason", "errorType", "sourceMessageId", "documentId"})


@dataclass(frozen=True)
class DeadLetter:
    """One message in the DLQ, and what the processor said about it."""

    message_id: str
    receipt_handle: str
    body: str
    attributes: dict[str, Any]
    document_id: int | None
    failure_reason: str | None
    error_type: str | None
    dead_lettered_at: datetime | None
    first_received_at: datetime | None
    receive_count: int

    @classmethod
    def from_message(cls, message: MessageTypeDef) -> DeadLetter:
        custom: dict[str, Any] = dict(message.get("MessageAttributes", {}))
        system: dict[str, str] = {str(k): v for k, v in message.get("Attributes", {}).items()}

        def text(name: str) -> str | None:
            value = custom.get(name, {}).get("StringValue")
            return str(value) if value is not None else None

        return cls(
            message_id=message["MessageId"],
            receipt_handle=message["ReceiptHandle"],
            body=message["Body"],
            attributes=custom,
            document_id=_document_id(text("documentId"), message["Body"]),
            failure_reason=text("failureReason"),
            error_type=text("errorType"),
            dead_lettered_at=_timestamp(system.get("SentTimestamp")),
            first_received_at=_timestamp(system.get("ApproximateFirstReceiveTimestamp")),
            receive_count=int(system.get("ApproximateReceiveCount", "0") or 0),
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "messageId": self.message_id,
            "documentId": self.document_id,
            "failureReason": self.failure_reason,
            "errorType": self.error_type,
            "deadLetteredAt": _iso(self.dead_lettered_at),
            "firstReceivedAt": _iso(self.first_received_at),
            "receiveCount": self.receive_count,
        }

    def describe(self) -> str:
        reason = self.failure_reason or (
            "(no reason attached: moved here by the queue's redrive policy after "
            f"{self.receive_count} receives; the function's logs say why)"
        )
        document = self.document_id if self.document_id is not None else "(unreadable body)"
        return (
            f"- document {document}  [{self.error_type or 'unknown'}]  "
            f"dead-lettered {_iso(self.dead_lettered_at) or '?'}, "
            f"first received {_iso(self.first_received_at) or '?'}\n    {reason}"
        )


def replayed_attributes(letter: DeadLetter) -> dict[str, Any]:
    """The message's own attributes, without the ones the processor added to say why it failed."""
    return {
        name: {
            key: value
            for key, value in attribute.items()
            if key not in ("StringListValues", "BinaryListValues")
        }
        for name, attribute in letter.attributes.items()
        if name not in FAILURE_ATTRIBUTES
    }


def _document_id(attribute: str | None, body: str) -> int | None:
    """The id from our attribute, else from the body (a message redriven by SQS has no
    attribute); None when neither says."""
    for candidate in (attribute, _id_in_body(body)):
        try:
            if candidate is not None:
                return int(candidate)
        except (TypeError, ValueError):
            continue
    return None


def _id_in_body(body: str) -> Any:
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    return parsed.get("documentId") if isinstance(parsed, dict) else None


def _timestamp(millis: str | None) -> datetime | None:
    if not millis:
        return None
    try:
        return datetime.fromtimestamp(int(millis) / 1000, UTC)
    except (TypeError, ValueError, OverflowError):
        return None


def _iso(when: datetime | None) -> str | None:
    return when.isoformat(timespec="seconds") if when else None
