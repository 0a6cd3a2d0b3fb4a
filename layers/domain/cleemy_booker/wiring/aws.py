"""AWS clients as every function makes them: botocore's own retries, short timeouts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_sqs.client import SQSClient

#: botocore's own retries for AWS calls ("standard" mode: backoff with jitter, 5 tries).
AWS_CONFIG = Config(
    retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=3, read_timeout=10
)


@dataclass(frozen=True)
class AwsClients:
    dynamodb: DynamoDBClient
    sqs: SQSClient

    @classmethod
    def create(cls, session: boto3.Session | None = None) -> AwsClients:
        session = session or boto3.Session()
        return cls(
            dynamodb=session.client("dynamodb", config=AWS_CONFIG),
            sqs=session.client("sqs", config=AWS_CONFIG),
        )
