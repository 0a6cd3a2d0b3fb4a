"""The one wrapper over the ledger table that every store of the ledger writes through: the
client, the table's name, the clock, the trail's retention, and the one way a conditional update
is told apart from a failed one."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from ..clock import utc_iso
from ..dynamo import conditional_check_failed

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

#: How long the ledger keeps what it writes (``LedgerRetentionDays``): 11 years. The trail is
#: the documentation of how entries were made (who booked what, when, on which version, by
#: which rules), kept as long as the accounting records it explains: 10 years from the close of
#: the financial year (Code de commerce L123-22), and a document booked on its first day waits
#: a year for that close. The invoice itself is kept by Lucca.
RETENTION_DAYS = 4018


class LedgerTable:
    """The ledger table as its stores see it; takes its DynamoDB client as an argument."""

    def __init__(
        self,
        dynamodb: DynamoDBClient,
        name: str,
        *,
        retention_days: int = RETENTION_DAYS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = dynamodb
        self.name = name
        self.retention_seconds = retention_days * 86400
        #: Wall-clock epoch seconds: the stamps every writer compares (``updatedAt``).
        self.clock = clock

    def now_iso(self) -> str:
        return utc_iso(self.clock())

    def update_if(self, **request: Any) -> bool:
        """One ``update_item`` on the table whose ``ConditionExpression`` may refuse it: False
        when it did (an answer, not an error); any other failure is raised."""
        try:
            self.client.update_item(TableName=self.name, **request)
        except ClientError as exc:
            if not conditional_check_failed(exc):
                raise
            return False
        return True

    def query(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        """Every item a query answers, page after page."""
        paginator = self.client.get_paginator("query")
        for page in paginator.paginate(TableName=self.name, **kwargs):
            yield from page.get("Items", [])
