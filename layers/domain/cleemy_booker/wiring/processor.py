"""The processor's wiring: one SQS record at a time, through Powertools' idempotency (keyed on
the document), deferred without burning a delivery when Lucca or time is short, dead-lettered
with its reason when it cannot succeed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
)
from pydantic import ValidationError

from ..config import ProcessorSettings
from ..errors import DeadlineExceededError, RetryableError
from ..fingerprint import SSM_PREFIX
from ..gate import GateConfig
from ..ledger import Ledger, Status
from ..models import DocumentMessage
from ..observability import logger, metrics
from ..processor import (
    DeferDocument,
    DocumentFailed,
    DocumentProcessor,
    ProcessResult,
    summarize,
)
from ..rules import RuleSet, load_rules
from ..validation import summary
from .aws import AwsClients
from .shared import (
    ApiKey,
    LuccaRuntime,
    Seams,
    deadline_from,
    decision_config,
    fetch_parameter,
)

#: SQS caps a message delay at 15 minutes.
MAX_SQS_DELAY = 900
#: A document another instance is processing right now is looked at again after this.
IN_PROGRESS_DELAY = 30
#: A redelivered document's claim runs this long from its latest delivery (the poller's own
#: claim time, ``CLAIM_TTL_SECONDS``): it is on its way for as long as SQS delivers it.
CLAIM_RENEWAL_SECONDS = 3600


class _NotCached(Exception):
    """Carries an outcome that must not be remembered (held, dry run, superseded, gone): a later
    delivery after the document changed in Lucca must be looked at afresh (the idempotency
    record is keyed on the document, not on the message)."""

    def __init__(self, result: ProcessResult) -> None:
        self.result = result
        super().__init__(result.outcome)


class ProcessorRuntime(LuccaRuntime):
    def __init__(
        self,
        settings: ProcessorSettings,
        aws: AwsClients,
        api_key: ApiKey,
        rules: RuleSet,
        seams: Seams | None = None,
    ) -> None:
        super().__init__(settings, aws, api_key, seams)
        self.settings = settings
        self.ledger = Ledger(
            aws.dynamodb,
            settings.ledger_table,
            retention_days=settings.ledger_retention_days,
            clock=self.clock.time,
        )
        self.processor = DocumentProcessor(
            client=self.client,
            ledger=self.ledger,
            rules=rules,
            gate=GateConfig(max_auto_amount=settings.max_auto_amount),
            listing_fresh_seconds=settings.listing_fresh_seconds,
            dry_run=settings.dry_run,
            clock=self.clock.time,
            held_recheck_seconds=settings.held_recheck_seconds,
            config=decision_config(settings),
        )
        self.idempotency = IdempotencyConfig(
            event_key_jmespath="documentId",
            raise_on_no_idempotency_key=True,
            # A booked document is remembered for a day; after that the ledger still knows.
            expires_after_seconds=86400,
        )
        persistence = DynamoDBPersistenceLayer(
            table_name=settings.idempotency_table, boto3_client=aws.dynamodb
        )
        self._process_once = idempotent_function(
            data_keyword_argument="message",
            persistence_store=persistence,
            config=self.idempotency,
        )(self._process_terminal)
        self.time_left: Callable[[], float] = lambda: float("inf")
        #: The per-outcome counts (booked, held, deferred, dead-lettered, retried) are read by
        #: the dashboard only: without it they would cost $0.30 a month each for nothing (the
        #: log line of each document says its outcome).
        self.outcome_metrics = settings.monitoring == "alarms-and-dashboard"

    def start_invocation(self, time_left: Callable[[], float], lambda_context: Any = None) -> None:
        self.time_left = time_left
        self._refresh_rules()
        if lambda_context is not None:
            self.idempotency.register_lambda_context(lambda_context)

    def _refresh_rules(self) -> None:
        """Rules in SSM may change under a warm instance: pick them up (through Powertools'
        5-minute cache), so the processor and the poller agree on the configuration."""
        if not self.settings.rules_source.strip().startswith(SSM_PREFIX):
            return
        config = decision_config(self.settings)
        if config != self.processor.config:
            self.processor.rules = load_processor_rules(self.settings)
            self.processor.config = config

    def _process_terminal(self, message: dict[str, Any]) -> dict[str, Any]:
        result = self.processor.process(DocumentMessage.model_validate(message))
        # Gone is not remembered either: a listing that shows the document again brings it back.
        if result.outcome in ("held", "dry_run", "superseded", "gone"):
            raise _NotCached(result)
        return _result_dict(result)

    def handle_record(self, body: str, message_id: str, receive_count: int = 1) -> dict[str, Any]:
        """One SQS record. Raises only to have SQS deliver it again (retryable trouble)."""
        try:
            return self._handle_record(body, message_id, receive_count)
        finally:
            self.throttles.emit()  # deferred, failed or booked: the 429s happened all the same

    def _handle_record(self, body: str, message_id: str, receive_count: int) -> dict[str, Any]:
        logger.remove_keys(["document_id"])
        try:
            message = DocumentMessage.model_validate_json(body)
        except ValidationError as exc:
            first = summary(exc, limit=1, root="(body)", verbatim=True)
            reason = f"invalid message: {exc.error_count()} problem(s): {first}"
            return self._dead_letter(body, None, reason, "InvalidMessage", message_id)
        logger.append_keys(document_id=message.documentId)
        if self.time_left() < self.settings.stop_margin_seconds:
            return self._defer(message, "not enough time left in this invocation", 1)
        if receive_count > 1:
            # Redelivered: the poller's claim must outlive the message, however many times SQS
            # delivers it (up to MAX_RECEIVE_COUNT visibility timeouts, an hour by default).
            self.ledger.states.renew_claim(
                message.documentId, until=self.clock.time() + CLAIM_RENEWAL_SECONDS
            )
        try:
            with self.client.until(
                deadline_from(self.time_left, self.settings.stop_margin_seconds, self.clock)
            ):
                result: dict[str, Any] = self._process_once(message=message.model_dump(mode="json"))
        except _NotCached as held:
            result = _result_dict(held.result)
        except DeferDocument as deferral:
            return self._defer(message, deferral.reason, deferral.delay_seconds)
        except IdempotencyAlreadyInProgressError:
            return self._defer(message, "another instance is processing it", IN_PROGRESS_DELAY)
        except DocumentFailed as failed:
            return self._dead_letter(
                body, message.documentId, failed.reason, failed.error_type, message_id
            )
        except RetryableError as error:
            if error.status == 429 or isinstance(error, DeadlineExceededError):
                # Lucca's budget is spent by someone else, or this invocation's time is: not
                # the document's failure, so it must not burn a delivery towards the DLQ.
                wait = error.retry_after if error.retry_after is not None else IN_PROGRESS_DELAY
                return self._defer(message, f"Lucca busy or time short: {error}", wait)
            if receive_count >= self.settings.max_receive_count:
                return self._retries_exhausted(message, body, message_id, receive_count, error)
            if self.outcome_metrics:
                metrics.add_metric("DocumentsRetried", MetricUnit.Count, 1)
            logger.warning("retryable failure; SQS will deliver again", extra={"error": str(error)})
            raise
        if self.outcome_metrics:
            metrics.add_metric(
                f"Documents{result['outcome'].title().replace('_', '')}", MetricUnit.Count, 1
            )
        metrics.add_metric("LuccaRequests", MetricUnit.Count, result["requests"])
        logger.info("document processed", extra={"result": result})
        return result

    def _retries_exhausted(
        self,
        message: DocumentMessage,
        body: str,
        message_id: str,
        receive_count: int,
        error: RetryableError,
    ) -> dict[str, Any]:
        """The last delivery SQS allows failed too (an outage): to the dead-letter queue now,
        with the reason (SQS would move it there itself, without one)."""
        reason = f"still failing after {receive_count} deliveries: {error}"
        state = self.ledger.states.state(message.documentId)
        if state is not None and state.may_be_booked:
            # A book call of ours may have gone through before Lucca went away: FAILED would
            # lose that. The mark stays; the poller records the document booked once a
            # listing no longer shows it, and a replay never books it blind.
            reason += "; a booking call of ours may have gone through (the listing will tell)"
        else:
            # The poller queues it again after a while; the listed item, if the message has
            # one, names the document in the digest.
            self.ledger.states.record(
                message.documentId,
                Status.FAILED,
                "failed",
                reasons=[reason],
                recheck_at=self.clock.time() + self.settings.held_recheck_seconds,
                summary=summarize(message.item) if message.item is not None else None,
            )
        return self._dead_letter(body, message.documentId, reason, "RetriesExhausted", message_id)

    def _defer(self, message: DocumentMessage, reason: str, delay: float) -> dict[str, Any]:
        """Hand the document back with a delay, as a new message: a busy budget is not a
        failure, so it must not count towards the dead-letter queue's receive limit."""
        deferred = message.model_copy(update={"deferrals": message.deferrals + 1})
        delay_seconds = max(1, min(MAX_SQS_DELAY, int(delay) + 1))
        self.aws.sqs.send_message(
            QueueUrl=self.settings.queue_url,
            MessageBody=deferred.model_dump_json(),
            DelaySeconds=delay_seconds,
        )
        self.ledger.states.extend_claim(
            message.documentId, until=self.clock.time() + delay_seconds + 3600
        )
        if self.outcome_metrics:
            metrics.add_metric("DocumentsDeferred", MetricUnit.Count, 1)
        logger.info("document deferred", extra={"reason": reason, "delay": delay_seconds})
        return {"documentId": message.documentId, "outcome": "deferred", "reasons": [reason]}

    def _dead_letter(
        self, body: str, document_id: int | None, reason: str, error_type: str, message_id: str
    ) -> dict[str, Any]:
        """A permanent failure goes to the DLQ now, with its reason, instead of burning every
        retry; the original record then counts as handled."""
        attributes: dict[str, Any] = {
            "failureReason": {"DataType": "String", "StringValue": reason[:1000]},
            "errorType": {"DataType": "String", "StringValue": error_type},
            "sourceMessageId": {"DataType": "String", "StringValue": message_id},
        }
        if document_id is not None:
            attributes["documentId"] = {"DataType": "Number", "StringValue": str(document_id)}
        self.aws.sqs.send_message(
            QueueUrl=self.settings.dead_letter_queue_url,
            MessageBody=body,
            MessageAttributes=attributes,
        )
        if self.outcome_metrics:
            metrics.add_metric("DocumentsDeadLettered", MetricUnit.Count, 1)
        logger.error("document dead-lettered", extra={"reason": reason, "errorType": error_type})
        return {"documentId": document_id, "outcome": "dead_lettered", "reasons": [reason]}


def _result_dict(result: ProcessResult) -> dict[str, Any]:
    return {
        "documentId": result.document_id,
        "outcome": result.outcome,
        "reasons": list(result.reasons),
        "updated": result.updated,
        "requests": result.requests,
        "requestIds": list(result.request_ids),
    }


def load_processor_rules(settings: ProcessorSettings) -> RuleSet:
    """Rules from SSM (``ssm:/name``, through Powertools parameters) or a file / the default."""
    return load_rules(settings.rules_source.strip() or None, fetch_parameter=fetch_parameter)
