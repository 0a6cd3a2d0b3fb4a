"""AWS clients as every function makes them: botocore's own retries, short timeouts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_sqs.client import SQSClient

#: botocore's own retries for AWS calls ("standard" mode: backoff with jitter, 5 tries).
AWS_CONFIG = Config(
    retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=3, read_timeout=10
)


def clients(session: boto3.Session | None, *services: str) -> list[Any]:
    """One client per service, each with ``AWS_CONFIG``, from ``session`` (default: Lambda's)."""
    session = session or boto3.Session()
    return [session.client(service, config=AWS_CONFIG) for service in services]  # type: ignore[call-overload]


@dataclass(frozen=True)
class AwsClients:
    """The poller's and the processor's AWS: the ledger, budget and idempotency tables, the
    queues."""

    dynamodb: DynamoDBClient
    sqs: SQSClient

    @classmethod
    def create(cls, session: boto3.Session | None = None) -> AwsClients:
        return cls(*clients(session, "dynamodb", "sqs"))
