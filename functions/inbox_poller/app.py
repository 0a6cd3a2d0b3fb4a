"""Scheduled by EventBridge Scheduler: list the Lucca inbox and queue each document."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from cleemy_booker.config import PollerSettings
from cleemy_booker.observability import logger, metrics, tracer
from cleemy_booker.wiring.aws import AwsClients
from cleemy_booker.wiring.poller import PollerRuntime
from cleemy_booker.wiring.shared import api_key_source


@cache
def runtime() -> PollerRuntime:
    """Built once per cold start: configuration errors surface here, clearly, on first use."""
    settings = PollerSettings.from_env()
    return PollerRuntime(settings, AwsClients.create(), api_key_source(settings))


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # The request id holds the one-poller lease: a refused run's log names the running one.
    time_left = lambda: context.get_remaining_time_in_millis() / 1000  # noqa: E731
    report = runtime().poll(time_left, context.aws_request_id)
    return report.as_dict()
