"""Small helpers to watch what happens inside the emulator (queues, Lambda logs)."""

from __future__ import annotations

import time
from collections.abc import Callable

from botocore.exceptions import ClientError

from local.emulator import aws
from local.emulator._proc import EmulatorError


def wait_until[T](
    probe: Callable[[], T | None], *, timeout: float, interval: float = 0.5, what: str = "condition"
) -> T:
    """Call ``probe`` until it returns something truthy; return it, or raise after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise EmulatorError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def queue_counts(
    endpoint: str, queue_url: str, region: str = aws.DEFAULT_REGION
) -> tuple[int, int]:
    """(visible, in flight) messages of an SQS queue."""
    sqs = aws.client("sqs", endpoint, region)
    attrs = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    visible = int(attrs["ApproximateNumberOfMessages"])
    return visible, int(attrs["ApproximateNumberOfMessagesNotVisible"])


def log_messages(endpoint: str, log_group: str, region: str = aws.DEFAULT_REGION) -> list[str]:
    """Every message in a CloudWatch Logs group, oldest stream first.

    ministack writes each Lambda invocation (START, the function's stdout/stderr lines, END,
    REPORT) to ``LoggingConfig.LogGroup`` or ``/aws/lambda/<FunctionName>``, one stream per
    invocation. The same output also appears in the ministack log file.
    """
    logs = aws.client("logs", endpoint, region)
    try:
        streams = logs.describe_log_streams(logGroupName=log_group)["logStreams"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return []
        raise
    messages: list[str] = []
    for stream in sorted(streams, key=lambda s: s.get("creationTime", 0)):
        events = logs.get_log_events(
            logGroupName=log_group, logStreamName=stream["logStreamName"], startFromHead=True
        )["events"]
        messages += [e["message"] for e in events]
    return messages
