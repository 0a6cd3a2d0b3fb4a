"""The morning digest's wiring: gather from the ledger, add the health figures CloudWatch and
SQS hold, compose, publish to SNS, and mark the period as told. No Lucca request.

The order matters for a person: the period is marked published only after SNS accepted the
message, so a failed publish is told again the next morning rather than lost; a run repeated
after a success finds the period told and sends nothing new.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import boto3

from ..clock import SYSTEM_CLOCK, Clock
from ..config import DigestSettings
from ..digest import (
    DIGEST_NAME,
    Digest,
    DigestData,
    Health,
    compose,
    gather,
    mark_published,
)
from ..ledger import Ledger
from ..observability import logger
from .aws import clients


@dataclass(frozen=True)
class DigestClients:
    dynamodb: Any
    sns: Any
    cloudwatch: Any
    sqs: Any

    @classmethod
    def create(cls, session: boto3.Session | None = None) -> DigestClients:
        return cls(*clients(session, "dynamodb", "sns", "cloudwatch", "sqs"))


class DigestRuntime:
    def __init__(
        self, settings: DigestSettings, aws: DigestClients, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self.settings = settings
        self.aws = aws
        self.clock = clock
        self.ledger = Ledger(
            aws.dynamodb,
            settings.ledger_table,
            retention_days=settings.ledger_retention_days,
            clock=clock.time,
        )

    def run(self, *, all_clear: bool | None = None) -> dict[str, Any]:
        data = gather(self.ledger, now=self.clock.time())
        if self.ledger.markers.digest_published_until(DIGEST_NAME) is None:
            # The first digest ever: anchor its period now, so that a failed publish leaves
            # tomorrow's to start here rather than a day before tomorrow.
            mark_published(self.ledger, replace(data, until=data.since))
        digest = compose(
            data,
            self.health(data),
            stack=self.settings.stack_name,
            zone=ZoneInfo(self.settings.time_zone),
            all_clear=self.settings.all_clear if all_clear is None else all_clear,
        )
        if digest is not None:
            self._publish(digest)
        mark_published(self.ledger, data)
        report = {
            "sent": digest is not None,
            "since": data.since,
            "until": data.until,
            "held": len(data.held),
            "failed": len(data.failed),
            "booked": len(data.booked),
            "bytes": len(digest.text.encode()) if digest else 0,
        }
        logger.info("digest", extra={"report": report})
        return report

    def _publish(self, digest: Digest) -> None:
        self.aws.sns.publish(
            TopicArn=self.settings.topic_arn, Subject=digest.subject, Message=digest.text
        )

    def health(self, data: DigestData) -> Health:
        """Requests and 429s over the period (the functions' metrics), the budget of the same
        period, and the dead-letter queue's depth. A figure that cannot be read is None: the
        digest says it is unknown rather than failing."""
        start, end = _moment(data.since), _moment(data.until)
        windows = max(0.0, (end - start).total_seconds()) / self.settings.budget_window_seconds
        return Health(
            requests=self._metric_sum("LuccaRequests", start, end),
            budget=int(self.settings.budget_limit * windows),
            throttled=self._metric_sum("LuccaThrottled", start, end),
            dead_letters=self._dead_letters(),
        )

    def _metric_sum(self, name: str, start: datetime, end: datetime) -> int | None:
        if end <= start:
            return 0
        try:
            answer = self.aws.cloudwatch.get_metric_data(
                MetricDataQueries=[
                    {
                        "Id": "m",
                        "MetricStat": {
                            "Metric": {
                                "Namespace": self.settings.metrics_namespace,
                                "MetricName": name,
                                "Dimensions": [
                                    {"Name": "service", "Value": self.settings.service_name}
                                ],
                            },
                            # One point for the whole period (up to the 63-day retention of
                            # hourly data; a digest covers a day or a weekend).
                            "Period": max(60, int((end - start).total_seconds()) // 60 * 60),
                            "Stat": "Sum",
                        },
                    }
                ],
                StartTime=start,
                EndTime=end,
            )
        except Exception:
            logger.warning("metric not read", extra={"metric": name}, exc_info=True)
            return None
        values = [v for result in answer.get("MetricDataResults", []) for v in result["Values"]]
        return int(sum(values))

    def _dead_letters(self) -> int | None:
        try:
            attributes = self.aws.sqs.get_queue_attributes(
                QueueUrl=self.settings.dead_letter_queue_url,
                AttributeNames=["ApproximateNumberOfMessages"],
            )["Attributes"]
        except Exception:
            logger.warning("dead-letter queue not read", exc_info=True)
            return None
        return int(attributes["ApproximateNumberOfMessages"])


def _moment(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp).astimezone(UTC)
