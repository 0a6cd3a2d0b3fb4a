"""Wiring for the Lambda handlers: settings → AWS clients → domain objects, once per cold start.

Handlers stay thin: they parse the event, call into here, and shape the response. Everything
here takes its AWS clients from ``AwsClients`` so tests hand it moto-backed ones.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
import httpx
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
)
from botocore.config import Config
from pydantic import ValidationError

from .budget import DynamoSlotStore, RequestBudget
from .client import LuccaClient
from .clock import SYSTEM_CLOCK, Clock
from .config import LuccaSettings, PipelineSettings, PollerSettings, ProcessorSettings
from .errors import DeadlineExceededError, PermanentError, RetryableError
from .fingerprint import SSM_PREFIX, config_version, rules_text
from .gate import GateConfig
from .ledger import Ledger, Status
from .models import DocumentMessage
from .observability import logger, metrics
from .poller import QUEUE_SHARE, STOP_ANOTHER_POLLER, InboxPoller, PollReport, RefusedClaims
from .processor import (
    DeferDocument,
    DocumentFailed,
    DocumentProcessor,
    ProcessResult,
    summarize,
)
from .rules import RuleSet, load_rules

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_sqs.client import SQSClient

#: botocore's own retries for AWS calls ("standard" mode: backoff with jitter, 5 tries).
AWS_CONFIG = Config(
    retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=3, read_timeout=10
)
#: SQS caps a message delay at 15 minutes.
MAX_SQS_DELAY = 900
#: A document another instance is processing right now is looked at again after this.
IN_PROGRESS_DELAY = 30
#: The ledger lease that lets one poller run at a time (no reserved concurrency: Lambda refuses
#: reservations on accounts with a low concurrency quota).
POLLER_LEASE = "inbox-poller"
#: Lambda's longest timeout: no lease outlives an invocation, even one told it has forever.
MAX_INVOCATION_SECONDS = 900.0
#: Scheduled runs start a little late or early: a pace of N seconds allows this much less.
SCHEDULE_DRIFT_SECONDS = 30


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


class _NoSecretValues(logging.Filter):
    """botocore logs every response body at DEBUG, GetSecretValue's too: turning the log level
    up to debug an incident would write the Lucca key to the logs. Those records are dropped."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return "SecretString" not in message and "SecretBinary" not in message


logging.getLogger("botocore.parsers").addFilter(_NoSecretValues())


def read_api_key(settings: LuccaSettings, secrets: SecretsProvider | None = None) -> str:
    """The Lucca key from Secrets Manager, cached by Powertools for ``secret_max_age``.

    ``secrets``: a provider of one's own (the simulation gives each Lambda instance its own,
    as each instance has its own cache); by default Powertools' shared one."""
    name, max_age = settings.api_key_secret, settings.secret_max_age_seconds
    value = (
        secrets.get(name, max_age=max_age)
        if secrets is not None
        else parameters.get_secret(name, max_age=max_age)
    )
    key = value.decode() if isinstance(value, bytes) else str(value)
    if not key.strip():
        raise ValueError(f"secret {settings.api_key_secret!r} holds an empty API key")
    return key.strip()


#: The key itself (tests) or a function returning it, asked on every request (Lambda).
ApiKey = str | Callable[[], str]


def api_key_source(
    settings: LuccaSettings, secrets: SecretsProvider | None = None
) -> Callable[[], str]:
    """Read the key once now (a missing or empty secret fails the cold start, clearly), then on
    each request through Powertools' cache: a rotated key is in use within ``secret_max_age``."""
    read_api_key(settings, secrets)
    return lambda: read_api_key(settings, secrets)


def build_client(
    settings: LuccaSettings,
    aws: AwsClients,
    api_key: ApiKey,
    clock: Clock = SYSTEM_CLOCK,
    http: httpx.Client | None = None,
    rng: random.Random | None = None,
) -> tuple[LuccaClient, RequestBudget]:
    """The Lucca client behind the tenant budget; ``http`` and ``rng`` are the simulation's
    seams (an in-process transport, seeded jitter), left to their defaults in Lambda."""
    budget = RequestBudget(
        DynamoSlotStore(aws.dynamodb, settings.budget_table),
        limit=settings.budget_limit,
        window_seconds=settings.budget_window_seconds,
        max_wait_seconds=settings.budget_max_wait_seconds,
        clock=clock.time,
        sleep=clock.sleep,
    )
    client = LuccaClient(
        settings.lucca_base_url,
        api_key,
        hooks=[budget],
        http=http,
        sleep=clock.sleep,
        clock=clock.monotonic,
        wall_clock=clock.time,
        rng=rng,
    )
    budget.time_left = client.time_left  # a budget wait never outlasts the invocation
    return client, budget


def deadline_from(time_left: Callable[[], float], margin: float, clock: Clock) -> float:
    """A monotonic instant ``margin`` seconds before the invocation ends."""
    return clock.monotonic() + max(0.0, time_left() - margin)


@dataclass
class ThrottleMetric:
    """``LuccaThrottled``: the 429s Lucca answered since the last ``emit``.

    The budget counts them for the life of the instance; a metric wants each invocation's own.
    Emitted only when there were some: each custom metric costs $0.30 a month for every hour it
    has data, and most hours have no 429 at all."""

    budget: RequestBudget
    reported: int = 0

    def emit(self) -> None:
        throttled = self.budget.stats.throttled
        new, self.reported = throttled - self.reported, throttled
        if new > 0:
            metrics.add_metric("LuccaThrottled", MetricUnit.Count, new)


@dataclass(frozen=True)
class Seams:
    """What the simulation replaces; Lambda uses the defaults."""

    clock: Clock = SYSTEM_CLOCK
    http: httpx.Client | None = None
    rng: random.Random | None = None


# --- poller -----------------------------------------------------------------------------------


class PollerRuntime:
    def __init__(
        self, settings: PollerSettings, aws: AwsClients, api_key: ApiKey, seams: Seams | None = None
    ) -> None:
        seams = seams or Seams()
        self.settings = settings
        self.aws = aws
        self.clock = seams.clock
        self.client, self.budget = build_client(
            settings, aws, api_key, seams.clock, seams.http, seams.rng
        )
        self.ledger = Ledger(aws.dynamodb, settings.ledger_table, clock=seams.clock.time)
        #: Refused claims, remembered while this instance is warm (see ``RefusedClaims``).
        self.refused = RefusedClaims()
        self.hours = settings.hours()
        #: When this instance last listed, and whether that run left work in the inbox.
        self._listed_at: float | None = None
        self._backlog = False
        #: When a run of this instance last counted the held documents (None: not yet).
        self._counted_at: float | None = None
        self.throttles = ThrottleMetric(self.budget)

    def _queue_target(self) -> int:
        """The queue's fill at the pace the budget keeps now: slowed after 429s (another
        integration spends the tenant's budget), it books fewer while the listing is fresh."""
        slowdown = max(1.0, self.budget.store.read().slowdown)
        return max(1, int(self.settings.queue_target(QUEUE_SHARE) / slowdown))

    def _skip_listing(self) -> str | None:
        """Outside working hours, a run lists only every ``off_hours_listing_seconds``, unless
        the previous one left a backlog (a warm instance remembers; a cold one lists)."""
        now = self.clock.time()
        if self._listed_at is None or self._backlog or self.hours.contains(now):
            return None
        since = now - self._listed_at
        if since >= self.settings.off_hours_listing_seconds - SCHEDULE_DRIFT_SECONDS:
            return None
        return "outside working hours, listed a moment ago"

    def poll(self, time_left: Callable[[], float], request_id: str | None = None) -> PollReport:
        """One scheduled run. ``request_id`` names this invocation as the lease's holder (the
        Lambda request id finds its logs); without one, a random id."""
        started = self.clock.time()
        try:
            return self._poll(time_left, request_id or uuid.uuid4().hex)
        finally:
            self.throttles.emit()
            self._count_held(started)

    def _poll(self, time_left: Callable[[], float], holder: str) -> PollReport:
        skip = self._skip_listing()
        if skip is not None:
            logger.info("inbox not listed", extra={"reason": skip, "listedAt": self._listed_at})
            return PollReport(stopped_because=skip)
        until = self.clock.time() + min(time_left(), MAX_INVOCATION_SECONDS)
        lease = self.ledger.acquire_lease(POLLER_LEASE, holder, until)
        if not lease.acquired:
            # Two pollers would list the same inbox twice and queue nothing more.
            extra = {"reason": STOP_ANOTHER_POLLER, "holder": lease.holder, "until": lease.until}
            logger.info("inbox not listed", extra=extra)
            return PollReport(stopped_because=STOP_ANOTHER_POLLER)
        try:
            return self._list_and_queue(time_left)
        finally:
            self._release_lease(holder)

    def _release_lease(self, holder: str) -> None:
        """A lease not given back lapses at the end of the invocation anyway: failing (or
        hiding the poll's own error) for it would cost more than the next run it delays."""
        try:
            self.ledger.release_lease(POLLER_LEASE, holder)
        except Exception:
            logger.warning("poller lease not released", exc_info=True)

    def _count_held(self, started: float) -> None:
        """``DocumentsAwaitingReview``: the held documents, at most every ``held_count_seconds``
        (a warm instance remembers, a cold one counts). Emitted when zero too, so the alarm
        reading it sees the backlog cleared. A failed count costs the gauge one point, not the
        poll."""
        pace = self.settings.held_count_seconds - SCHEDULE_DRIFT_SECONDS
        if self._counted_at is not None and started - self._counted_at < pace:
            return
        try:
            held = self.ledger.count_in_status(Status.HELD)
        except Exception:
            logger.warning("held documents not counted", exc_info=True)
            return
        self._counted_at = started
        metrics.add_metric("DocumentsAwaitingReview", MetricUnit.Count, held)

    def _list_and_queue(self, time_left: Callable[[], float]) -> PollReport:
        poller = InboxPoller(
            client=self.client,
            ledger=self.ledger,
            sqs=self.aws.sqs,
            queue_url=self.settings.queue_url,
            filters=self.settings.inbox_filters,
            page_size=self.settings.page_size,
            claim_ttl_seconds=self.settings.claim_ttl_seconds,
            time_left=time_left,
            stop_margin_seconds=self.settings.stop_margin_seconds,
            dry_run=self.settings.dry_run,
            clock=self.clock.time,
            queue_target=self._queue_target(),
            config=decision_config(self.settings),
            refused=self.refused,
            booked_grace_seconds=self.settings.listing_fresh_seconds,
        )
        deadline = deadline_from(time_left, self.settings.stop_margin_seconds, self.clock)
        try:
            with self.client.until(deadline):
                report = poller.run()
        except PermanentError:
            partial = poller.last_report.as_dict() if poller.last_report else {}
            logger.error("inbox poll failed", extra={"report": partial})
            if poller.last_report is not None:
                _report_discrepancies(poller.last_report)
            raise
        _report_discrepancies(report)
        self._listed_at = self.clock.time()
        self._backlog = report.left_work
        # Listed and enqueued counts are in the log line below: each custom metric costs $0.30 a
        # month for every hour it has data, and the poller runs around the clock.
        metrics.add_metric("LuccaRequests", MetricUnit.Count, report.requests)
        logger.info("inbox polled", extra={"report": report.as_dict()})
        return report


def _report_discrepancies(report: PollReport) -> None:
    """``ReconciliationDiscrepancies``: documents first found this run on which the ledger and
    Lucca disagree. Only when there are some (a custom metric costs for every hour with data);
    the ids go to the log, the reasons to the ledger (and the digest)."""
    if not report.discrepancies:
        return
    metrics.add_metric("ReconciliationDiscrepancies", MetricUnit.Count, len(report.discrepancies))
    logger.warning("the ledger and Lucca disagree", extra={"documentIds": report.discrepancies})


# --- processor --------------------------------------------------------------------------------


class _NotCached(Exception):
    """Carries an outcome that must not be remembered (held, dry run): a later delivery after
    the document changed in Lucca must be looked at afresh."""

    def __init__(self, result: ProcessResult) -> None:
        self.result = result
        super().__init__(result.outcome)


class ProcessorRuntime:
    def __init__(
        self,
        settings: ProcessorSettings,
        aws: AwsClients,
        api_key: ApiKey,
        rules: RuleSet,
        seams: Seams | None = None,
    ) -> None:
        seams = seams or Seams()
        self.settings = settings
        self.aws = aws
        self.clock = seams.clock
        self.client, self.budget = build_client(
            settings, aws, api_key, seams.clock, seams.http, seams.rng
        )
        self.ledger = Ledger(
            aws.dynamodb,
            settings.ledger_table,
            retention_days=settings.ledger_retention_days,
            clock=seams.clock.time,
        )
        self.processor = DocumentProcessor(
            client=self.client,
            ledger=self.ledger,
            rules=rules,
            gate=GateConfig(max_auto_amount=settings.max_auto_amount),
            listing_fresh_seconds=settings.listing_fresh_seconds,
            dry_run=settings.dry_run,
            clock=seams.clock.time,
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
        self.throttles = ThrottleMetric(self.budget)

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
        if result.outcome in ("held", "dry_run"):
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
            reason = f"invalid message: {exc.error_count()} problem(s): {_first_error(exc)}"
            return self._dead_letter(body, None, reason, "InvalidMessage", message_id)
        logger.append_keys(document_id=message.documentId)
        if self.time_left() < self.settings.stop_margin_seconds:
            return self._defer(message, "not enough time left in this invocation", 1)
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
                # SQS would move it to the DLQ itself after this delivery, without a reason.
                reason = f"still failing after {receive_count} deliveries: {error}"
                # Retries ran out (an outage): the poller queues it again after a while.
                recheck = self.clock.time() + self.settings.held_recheck_seconds
                # The listed item, if the message has one, names the document in the digest.
                self.ledger.record(
                    message.documentId,
                    Status.FAILED,
                    "failed",
                    reasons=[reason],
                    recheck_at=recheck,
                    summary=summarize(message.item) if message.item is not None else None,
                )
                return self._dead_letter(
                    body, message.documentId, reason, "RetriesExhausted", message_id
                )
            metrics.add_metric("DocumentsRetried", MetricUnit.Count, 1)
            logger.warning("retryable failure; SQS will deliver again", extra={"error": str(error)})
            raise
        metrics.add_metric(
            f"Documents{result['outcome'].title().replace('_', '')}", MetricUnit.Count, 1
        )
        metrics.add_metric("LuccaRequests", MetricUnit.Count, result["requests"])
        logger.info("document processed", extra={"result": result})
        return result

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
        self.ledger.extend_claim(message.documentId, until=self.clock.time() + delay_seconds + 3600)
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


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    return f"{'.'.join(str(p) for p in err['loc']) or '(body)'}: {err['msg']}"


def _fetch_parameter(name: str) -> str:
    return str(parameters.get_parameter(name, max_age=300))


def decision_config(settings: PipelineSettings) -> str:
    """The fingerprint of what decides a hold, the same in the poller and the processor."""
    return config_version(
        rules_text(settings.rules_source, _fetch_parameter), settings.max_auto_amount
    )


def load_processor_rules(settings: ProcessorSettings) -> RuleSet:
    """Rules from SSM (``ssm:/name``, through Powertools parameters) or a file / the default."""
    return load_rules(settings.rules_source.strip() or None, fetch_parameter=_fetch_parameter)
