"""Triggered by SQS: update and book each document, with partial batch responses."""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from cleemy_booker.config import ProcessorSettings
from cleemy_booker.observability import logger, metrics, tracer
from cleemy_booker.wiring.aws import AwsClients
from cleemy_booker.wiring.processor import ProcessorRuntime, load_processor_rules
from cleemy_booker.wiring.shared import api_key_source

# Every record fails alone; an all-failed batch is reported like any other, not raised.
batch = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


@cache
def runtime() -> ProcessorRuntime:
    """Built once per cold start: configuration errors surface here, clearly, on first use."""
    settings = ProcessorSettings.from_env()
    return ProcessorRuntime(
        settings, AwsClients.create(), api_key_source(settings), load_processor_rules(settings)
    )


def receive_count(record: SQSRecord) -> int:
    """Powertools' own property (a string there); a hand-written replay event may carry no
    attributes at all: it counts as a first delivery."""
    try:
        return int(record.attributes.approximate_receive_count)
    except KeyError:
        return 1


def record_handler(record: SQSRecord) -> dict[str, Any]:
    return runtime().handle_record(record.body, record.message_id, receive_count(record))


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    runtime().start_invocation(lambda: context.get_remaining_time_in_millis() / 1000, context)
    return process_partial_response(
        event=event, record_handler=record_handler, processor=batch, context=context
    )
