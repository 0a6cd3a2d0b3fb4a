"""What every part of the ``Ledger`` shares: the client, the table, the clock, and the one way
a conditional update is told apart from a failed one."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from ..clock import utc_iso
from .items import _conditional_failed

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient


class LedgerBase:
    """The state the ``Ledger``'s parts work on; each part is a subclass of this one, so that
    they all see (and type-check against) the same attributes."""

    def __init__(
        self,
        dynamodb: DynamoDBClient,
        table: str,
        *,
        retention_days: int = 3650,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._ddb = dynamodb
        self.table = table
        self.retention_seconds = retention_days * 86400
        #: Wall-clock epoch seconds: the stamps every writer compares (``updatedAt``).
        self._clock = clock

    def _now_iso(self) -> str:
        return utc_iso(self._clock())

    def _update_if(self, **request: Any) -> bool:
        """One ``update_item`` on the table whose ``ConditionExpression`` may refuse it: False
        when it did (an answer, not an error); any other failure is raised."""
        try:
            self._ddb.update_item(TableName=self.table, **request)
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise
            return False
        return True
