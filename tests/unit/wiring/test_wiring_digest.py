"""The digest function's wiring (moto): the ledger read, the health figures from CloudWatch and
SQS, one SNS message to the digest topic, and the period marked only after it was sent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import boto3
import pytest
from moto import mock_aws

from cleemy_booker.config import ConfigError, DigestSettings
from cleemy_booker.ledger import DocumentSummary, Ledger, Status
from cleemy_booker.wiring.digest import DigestClients, DigestRuntime
from tests.aws import REGION, create_ledger_table
from tests.clocks import NOW, FakeClock


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    with mock_aws():
        session = boto3.Session(region_name=REGION)
        clients = DigestClients.create(session)
        table = create_ledger_table(clients.dynamodb, "ledger")
        topic = clients.sns.create_topic(Name="digest")["TopicArn"]
        inbox = clients.sqs.create_queue(QueueName="mailbox")["QueueUrl"]
        inbox_arn = clients.sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        clients.sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=inbox_arn)
        dlq = clients.sqs.create_queue(QueueName="dlq")["QueueUrl"]
        yield {"clients": clients, "table": table, "topic": topic, "inbox": inbox, "dlq": dlq}


def _runtime(aws: dict[str, Any], clock: FakeClock, **env: str) -> DigestRuntime:
    settings = DigestSettings.from_env(
        {
            "LEDGER_TABLE": aws["table"],
            "DIGEST_TOPIC_ARN": aws["topic"],
            "STACK_NAME": "cleemy-booker",
            "DEAD_LETTER_QUEUE_URL": aws["dlq"],
            "TIME_ZONE": "Europe/Paris",
            **env,
        }
    )
    return DigestRuntime(settings, aws["clients"], clock=clock)


def _mails(aws: dict[str, Any]) -> list[dict[str, str]]:
    answer = aws["clients"].sqs.receive_message(QueueUrl=aws["inbox"], MaxNumberOfMessages=10)
    return [json.loads(m["Body"]) for m in answer.get("Messages", [])]


def _summary(number: str, amount: str) -> DocumentSummary:
    return DocumentSummary(
        document_number=number, type="Invoice", including_taxes=Decimal(amount), currency="EUR"
    )


def test_a_day_with_a_held_document_sends_one_digest_with_the_pipelines_figures(
    aws: dict[str, Any],
) -> None:
    clock = FakeClock(NOW - 7200)
    ledger = Ledger(aws["clients"].dynamodb, aws["table"], clock=clock.time)
    ledger.states.record(
        41, Status.HELD, "held", reasons=["missing_fields: no invoice number"],
        summary=_summary("F-41", "120.00"),
    )  # fmt: skip
    ledger.states.record(42, Status.BOOKED, "booked", summary=_summary("F-42", "1234.50"))
    cloudwatch = aws["clients"].cloudwatch
    for name, value in (("LuccaRequests", 57), ("LuccaThrottled", 3)):
        cloudwatch.put_metric_data(
            Namespace="CleemyBooker",
            MetricData=[
                {
                    "MetricName": name,
                    "Dimensions": [{"Name": "service", "Value": "cleemy-booker"}],
                    "Timestamp": datetime.fromtimestamp(NOW - 3600, UTC),
                    "Value": value,
                }
            ],
        )
    aws["clients"].sqs.send_message(QueueUrl=aws["dlq"], MessageBody="{}")
    clock.now = NOW

    report = _runtime(aws, clock).run()

    assert report["sent"] is True
    assert (report["held"], report["booked"]) == (1, 1)
    (mail,) = _mails(aws)
    text = mail["Message"]
    assert "F-41" in text
    assert "120.00 EUR" in text
    assert "1,234.50 EUR" in text
    assert "57" in text  # requests spent, read from CloudWatch
    assert "arn:" not in text  # no AWS resource ids for an accountant
    assert "cleemy-booker" in mail["Subject"]


def test_the_period_is_told_once(aws: dict[str, Any]) -> None:
    clock = FakeClock(NOW - 7200)
    ledger = Ledger(aws["clients"].dynamodb, aws["table"], clock=clock.time)
    ledger.states.record(42, Status.BOOKED, "booked", summary=_summary("F-42", "10"))
    clock.now = NOW
    runtime = _runtime(aws, clock)
    first = runtime.run()
    second = runtime.run()  # the same morning again (a replay by hand): nothing new to say
    assert (first["sent"], first["booked"]) == (True, 1)
    assert (second["sent"], second["booked"]) == (False, 0)
    assert len(_mails(aws)) == 1


def test_a_failed_publish_leaves_the_period_to_tell_tomorrow(aws: dict[str, Any]) -> None:
    clock = FakeClock(NOW - 7200)
    ledger = Ledger(aws["clients"].dynamodb, aws["table"], clock=clock.time)
    ledger.states.record(42, Status.BOOKED, "booked", summary=_summary("F-42", "10"))
    clock.now = NOW
    broken = _runtime(aws, clock, DIGEST_TOPIC_ARN=aws["topic"] + "-gone")
    with pytest.raises(Exception, match=r"(?i)not ?found|does not exist"):
        broken.run()
    clock.now = NOW + 86400
    report = _runtime(aws, clock).run()
    assert report["booked"] == 1  # still told, a day late, not lost


def test_nothing_to_say_sends_nothing_unless_an_all_clear_is_asked(aws: dict[str, Any]) -> None:
    clock = FakeClock(NOW)
    assert _runtime(aws, clock).run()["sent"] is False
    assert _mails(aws) == []
    clock.now += 86400
    assert _runtime(aws, clock, DIGEST_ALL_CLEAR="true").run()["sent"] is True
    assert len(_mails(aws)) == 1


def test_an_unknown_time_zone_is_refused_at_cold_start_by_name() -> None:
    with pytest.raises(ConfigError, match="TIME_ZONE"):
        DigestSettings.from_env(
            {
                "LEDGER_TABLE": "l",
                "DIGEST_TOPIC_ARN": "arn:aws:sns:eu-west-3:1:t",
                "STACK_NAME": "s",
                "DEAD_LETTER_QUEUE_URL": "https://sqs/dlq",
                "TIME_ZONE": "Europe/Atlantis",
            }
        )
