"""Leases: who may run alone right now (one poller at a time), and until when."""

from __future__ import annotations

import math

from botocore.exceptions import ClientError

from ..dynamo import conditional_check_failed
from .items import _lease_key, _old_item
from .records import LeaseResult
from .table import LedgerTable


class Leases:
    """The ``lease#{name}`` items: taken and given back by conditional writes, gone by TTL once
    lapsed."""

    def __init__(self, table: LedgerTable) -> None:
        self._db = table

    def acquire_lease(self, name: str, holder: str, until: float) -> LeaseResult:
        """Hold the lease ``name`` until ``until`` (epoch seconds), in one conditional write.

        Granted when nobody holds it, when its holder's time is past (an instance killed at its
        timeout never releases), or to the same holder again (extending it). ``expiresAt`` lets
        TTL delete a lapsed lease; the condition never relies on TTL having run.
        """
        ends = math.ceil(until)
        try:
            self._db.client.update_item(
                TableName=self._db.name,
                Key=_lease_key(name),
                UpdateExpression=(
                    "SET leaseHolder = :holder, leaseUntil = :until, expiresAt = :until"
                ),
                ConditionExpression=(
                    "attribute_not_exists(pk) OR leaseUntil < :now OR leaseHolder = :holder"
                ),
                ExpressionAttributeValues={
                    ":holder": {"S": holder},
                    ":until": {"N": str(ends)},
                    ":now": {"N": str(int(self._db.clock()))},
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if not conditional_check_failed(exc):
                raise
            old = _old_item(exc)
            other = old.get("leaseHolder", {}).get("S")
            other_until = old.get("leaseUntil", {}).get("N")
            return LeaseResult(False, other, None if other_until is None else float(other_until))
        return LeaseResult(True)

    def release_lease(self, name: str, holder: str) -> None:
        """Give the lease back, only if ``holder`` still holds it: a late instance whose lease
        lapsed and was taken must not delete its successor's."""
        try:
            self._db.client.delete_item(
                TableName=self._db.name,
                Key=_lease_key(name),
                ConditionExpression="leaseHolder = :holder",
                ExpressionAttributeValues={":holder": {"S": holder}},
            )
        except ClientError as exc:
            if not conditional_check_failed(exc):
                raise
