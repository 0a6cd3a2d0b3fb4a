"""Invoice numbers: which document holds a number within a purchase or an owner, claimed
atomically before booking so that two documents with the same number are never both booked."""

from __future__ import annotations

from botocore.exceptions import ClientError

from ..dynamo import conditional_check_failed
from .items import _number_key, _old_item
from .table import LedgerTable


class InvoiceNumbers:
    """The ``number#{scope}#{number}`` claims (the processor's, and the gate's look-up)."""

    def __init__(self, table: LedgerTable) -> None:
        self._db = table

    def claim_number(self, scope: str, number: str, document_id: int) -> int | None:
        """Claim ``number`` in ``scope`` for this document; the other holder's id if taken."""
        key = _number_key(scope, number)
        try:
            self._db.client.put_item(
                TableName=self._db.name,
                Item={
                    **key,
                    "documentId": {"N": str(document_id)},
                    "at": {"S": self._db.now_iso()},
                    # Kept as long as the trail of the booking it guards.
                    "expiresAt": {"N": str(int(self._db.clock()) + self._db.retention_seconds)},
                },
                ConditionExpression="attribute_not_exists(pk) OR documentId = :id",
                ExpressionAttributeValues={":id": {"N": str(document_id)}},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if not conditional_check_failed(exc):
                raise
            old = _old_item(exc)
            return int(old["documentId"]["N"]) if "documentId" in old else -1
        return None

    def find_duplicate(self, scope: str, number: str, document_id: int) -> int | None:
        """``duplicates.DuplicateLookup``: another document already holding this number, if any."""
        key = _number_key(scope, number)
        found = self._db.client.get_item(TableName=self._db.name, Key=key, ConsistentRead=True)
        holder = found.get("Item", {}).get("documentId", {}).get("N")
        return int(holder) if holder is not None and int(holder) != document_id else None

    def release_number(self, scope: str, number: str, document_id: int) -> None:
        """Give the number back when the document holding it was not booked after all."""
        try:
            self._db.client.delete_item(
                TableName=self._db.name,
                Key=_number_key(scope, number),
                ConditionExpression="documentId = :id",
                ExpressionAttributeValues={":id": {"N": str(document_id)}},
            )
        except ClientError as exc:
            if not conditional_check_failed(exc):
                raise
