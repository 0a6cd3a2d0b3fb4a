"""The whole pipeline on one virtual clock: Lucca, AWS, the two functions, the schedule.

Everything the application runs is its real code: the handlers (``functions/*/app.py``), the
runtime wiring, ``InboxPoller``, ``ProcessorRuntime.handle_record`` with Powertools batch
processing and idempotency, ``RequestBudget`` on ``DynamoSlotStore``, ``Ledger``, the rules and
the gate. What is modelled is only what lies outside it: Lucca (the project's simulator, in
process), AWS (``sim/aws``, with the latencies of ``AwsLatency``), and Lambda (``sim/lambdas``).
"""

from __future__ import annotations

import io
import json
import logging
import os
import random
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, ClassVar

import httpx
from aws_lambda_powertools.utilities.parameters import SecretsProvider

from cleemy_booker.client import DEFAULT_TIMEOUT
from cleemy_booker.config import PollerSettings, ProcessorSettings
from cleemy_booker.observability import logger, metrics
from cleemy_booker.wiring.aws import AwsClients
from cleemy_booker.wiring.poller import PollerRuntime
from cleemy_booker.wiring.processor import ProcessorRuntime, load_processor_rules
from cleemy_booker.wiring.shared import Seams, api_key_source
from local.lucca_simulator.app import SimulatorApp
from local.lucca_simulator.config import SimulatorConfig
from sim.aws import InMemoryDynamoDB, InMemorySqs
from sim.clock import Killed, Simulation
from sim.lambdas import (
    FULL_VCPU_MB,
    AsyncInvoker,
    LambdaFunction,
    Outcome,
    Schedule,
    SqsEventSource,
)
from sim.lucca import LatencyModel, SimulatedLucca
from sim.patches import virtual_powertools_time
from sim.template import Template, rate_seconds

MEASURED = Path(__file__).with_name("measured.json")
LUCCA_URL = "http://127.0.0.1:8900"  # loopback: the client accepts plain http only there
SECRET_NAME_PARAMETER = "LuccaApiKeySecretName"  # noqa: S105 - a parameter's name


@dataclass(frozen=True)
class AwsLatency:
    """Seconds per call, in-region (assumed typical figures; AWS publishes none)."""

    dynamodb: float = 0.004
    sqs: float = 0.008
    secrets: float = 0.02


@dataclass
class WorldConfig:
    seed: int = 7
    #: Virtual start: Monday 2 November 2026, 00:00 Paris (23:00 UTC the day before).
    start: float = 1_793_660_400.0
    parameters: dict[str, str] = field(default_factory=dict)
    #: Environment values no template parameter reaches (e.g. the rules file of a scenario).
    environment: dict[str, str] = field(default_factory=dict)
    lucca: dict[str, Any] = field(default_factory=dict)
    lucca_latency: LatencyModel = field(default_factory=LatencyModel)
    aws_latency: AwsLatency = field(default_factory=AwsLatency)
    idle_reclaim_seconds: float = 600.0
    #: When the schedule first fires, seconds after the start.
    first_poll: float = 0.0
    #: Chance that the processor's sandbox dies at each crash point (before and after each PUT
    #: and book, before each ledger write): a crash is a kill, as at a timeout.
    crash_rate: float = 0.0


class InMemorySecrets:
    """GetSecretValue / PutSecretValue on one in-memory store, counted."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.calls: Counter[str] = Counter()

    def get_secret_value(self, SecretId: str, **_: Any) -> dict[str, Any]:
        self.calls["GetSecretValue"] += 1
        return {"Name": SecretId, "SecretString": self.values[SecretId]}

    def put_secret_value(self, SecretId: str, SecretString: str) -> None:
        self.values[SecretId] = SecretString


class Timed:
    """A boto3-shaped client whose every call first takes ``latency`` on the virtual clock."""

    def __init__(
        self,
        target: Any,
        sim: Simulation,
        latency: float,
        after: Callable[[str, dict[str, Any]], None] | None = None,
        before: Callable[[str, dict[str, Any]], None] | None = None,
    ) -> None:
        self._target = target
        self._sim = sim
        self._latency = latency
        self._after = after
        self._before = before

    def get_paginator(self, operation: str) -> Any:
        timed = self

        class _Paginator:
            def paginate(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
                yield getattr(timed, operation)(**kwargs)

        return _Paginator()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._target, name)
        if not callable(attribute) or name.startswith("_"):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            if self._before is not None:
                self._before(name, kwargs)
            self._sim.sleep(self._latency)
            result = attribute(*args, **kwargs)
            if self._after is not None:
                self._after(name, kwargs)
            return result

        return call


class UnitsByInvocation:
    """DynamoDB's request units charged to each Lambda invocation, by its request id (the name
    of the task that made the call). A call runs without yielding the virtual clock, so the
    change of the table's usage counters over one call is that call's own."""

    def __init__(self, target: InMemoryDynamoDB, sim: Simulation) -> None:
        self._target = target
        self._sim = sim
        self.write_units: defaultdict[str, float] = defaultdict(float)
        self.read_units: defaultdict[str, float] = defaultdict(float)

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._target, name)
        if not callable(attribute) or name.startswith("_"):
            return attribute
        usage = self._target.usage

        def call(*args: Any, **kwargs: Any) -> Any:
            writes, reads = sum(usage.write_units.values()), sum(usage.read_units.values())
            try:
                return attribute(*args, **kwargs)
            finally:
                task = self._sim.current
                if task is not None:
                    self.write_units[task.name] += sum(usage.write_units.values()) - writes
                    self.read_units[task.name] += sum(usage.read_units.values()) - reads

        return call


class LogSink(io.TextIOBase):
    """Where the functions' stdout goes: counted (CloudWatch Logs ingestion), not kept.
    Powertools' EMF lines also name the custom metrics, which CloudWatch bills by name."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self.bytes = 0
        self.lines = 0
        self.metrics: set[tuple[str, str, str]] = set()
        #: CloudWatch prorates a custom metric by the hour: the hours in which each one had data.
        self.metric_hours: set[tuple[tuple[str, str, str], int]] = set()
        self.metric_values: Counter[str] = Counter()

    def write(self, text: str) -> int:
        self.bytes += len(text.encode())
        self.lines += text.count("\n")
        if '"_aws"' in text:
            self._metrics(text)
        return len(text)

    def _metrics(self, text: str) -> None:
        for line in text.splitlines():
            if '"_aws"' not in line:
                continue
            blob = json.loads(line)
            for directive in blob["_aws"]["CloudWatchMetrics"]:
                dims = ",".join(
                    f"{d}={blob.get(d)}" for group in directive["Dimensions"] for d in group
                )
                hour = int(self._clock() // 3600)
                for metric in directive["Metrics"]:
                    key = (directive["Namespace"], metric["Name"], dims)
                    self.metrics.add(key)
                    self.metric_hours.add((key, hour))
                    value = blob.get(metric["Name"], 0)
                    total = sum(value) if isinstance(value, list) else value
                    self.metric_values[metric["Name"]] += total


class World:
    def __init__(self, config: WorldConfig) -> None:
        self.config = config
        self.sim = Simulation(config.start)
        self.template = Template(config.parameters)
        self.measured = json.loads(MEASURED.read_text())
        self._aws()
        self._lucca()
        self._functions()
        self.polls: list[dict[str, Any]] = []
        self.poll_failures = 0
        self.crashes: Counter[str] = Counter()
        #: Messages per document on their way (sent, not yet deleted by the event source), and
        #: how often the poller queued a document that still had one on its way.
        self.on_its_way: Counter[int] = Counter()
        self.queued_twice = 0
        self._crash_rng = random.Random(f"{config.seed}:crashes")

    # --- construction ----------------------------------------------------------------------

    def _aws(self) -> None:
        clock = self.sim.time
        self.dynamodb = InMemoryDynamoDB(clock=clock)
        for table in self.template.tables():
            table.create(self.dynamodb)
        self.sqs = InMemorySqs(clock=clock)
        queue = self.template.queue("DocumentsQueue")
        urls = self.template.create_documents_queues(self.sqs)
        self.queue_url = urls[queue.logical_id]
        self.dlq_url = urls[str(queue.dead_letter_logical_id)]
        self.template.names.update(
            {"DocumentsQueue": self.queue_url, "DeadLetterQueue": self.dlq_url}
        )
        self.secrets = InMemorySecrets()
        latency = self.config.aws_latency
        self.dynamodb_by_invocation = UnitsByInvocation(self.dynamodb, self.sim)
        self.timed_dynamodb = Timed(
            self.dynamodb_by_invocation, self.sim, latency.dynamodb, before=self._before_dynamodb
        )
        self.timed_sqs = Timed(self.sqs, self.sim, latency.sqs, after=self._after_sqs)
        self.timed_secrets = Timed(self.secrets, self.sim, latency.secrets)

    def _lucca(self) -> None:
        settings = {"seed": self.config.seed, "invoices": 0, **self.config.lucca}
        self.lucca = SimulatorApp(SimulatorConfig(**settings), clock=self.sim)
        self.secret_name = self.template.parameters[SECRET_NAME_PARAMETER]
        self.secrets.put_secret_value(self.secret_name, self.lucca.config.api_key)
        self.transport = SimulatedLucca(
            self.lucca, self.sim, self.config.lucca_latency, crash=self.crash_point
        )

    #: kind -> (the template's logical id, the function's name, its key in measured.json)
    FUNCTIONS: ClassVar[dict[str, tuple[str, str, str]]] = {
        "poller": ("InboxPollerFunction", "inbox-poller", "inbox_poller"),
        "processor": ("DocumentProcessorFunction", "document-processor", "document_processor"),
    }

    def _environment(self, kind: str) -> dict[str, str]:
        """The function's environment as the template sets it, pointed at the local Lucca."""
        spec = self.template.function(self.FUNCTIONS[kind][0])
        return {**spec.environment, "LUCCA_BASE_URL": LUCCA_URL, **self.config.environment}

    def _cold_start(self, key: str, memory_mb: int) -> float:
        """The measured import, slowed by the CPU share of the function's memory size: Lambda
        gives a full vCPU at 1,769 MB, and the measurement had a full core."""
        wall = float(self.measured["coldStartSeconds"][key])
        cpu = float(self.measured["memory"][key]["importCpuSeconds"])
        return wall + cpu * (FULL_VCPU_MB / min(memory_mb, FULL_VCPU_MB) - 1)

    def _function(self, kind: str, build: Callable[[ModuleType], Any]) -> LambdaFunction:
        logical, name, measured = self.FUNCTIONS[kind]
        spec = self.template.function(logical)
        return LambdaFunction(
            self,
            name,
            timeout=spec.timeout,
            memory_mb=spec.memory_mb,
            reserved_concurrency=spec.reserved_concurrency,
            cold_start_seconds=self._cold_start(measured, spec.memory_mb),
            build=build,
            code_uri=spec.code_uri,
            async_retries=spec.async_retries,
            async_max_event_age=spec.async_max_event_age,
        )

    def _functions(self) -> None:
        self.environments = {kind: self._environment(kind) for kind in self.FUNCTIONS}
        self.poller = self._function("poller", self._build_poller)
        self.processor = self._function("processor", self._build_processor)
        source = self.template.sqs_source("DocumentProcessorFunction")
        self.event_source = SqsEventSource(
            self,
            self.processor,
            self.queue_url,
            batch_size=source.batch_size,
            batching_window=source.batching_window,
            max_concurrency=source.max_concurrency,
        )
        self.poller_async = AsyncInvoker(self, self.poller, self._poll_done)
        schedule = self.template.schedule("InboxPollerFunction")
        self.schedule = Schedule(self, rate_seconds(schedule.expression), self.poller_async)

    def _seams(self, name: str) -> Seams:
        http = httpx.Client(transport=self.transport, timeout=DEFAULT_TIMEOUT)
        return Seams(clock=self.sim, http=http, rng=random.Random(f"{self.config.seed}:{name}"))

    def _clients(self) -> AwsClients:
        return AwsClients(dynamodb=self.timed_dynamodb, sqs=self.timed_sqs)  # type: ignore[arg-type]

    def _secrets(self) -> SecretsProvider:
        """Each instance its own Powertools cache, as each Lambda instance has."""
        return SecretsProvider(boto3_client=self.timed_secrets)  # type: ignore[arg-type]

    def _build_poller(self, module: ModuleType) -> PollerRuntime:
        settings = PollerSettings.from_env(self.environments["poller"])
        key = api_key_source(settings, self._secrets())
        return PollerRuntime(settings, self._clients(), key, self._seams(module.__name__))

    def _build_processor(self, module: ModuleType) -> ProcessorRuntime:
        settings = ProcessorSettings.from_env(self.environments["processor"])
        key = api_key_source(settings, self._secrets())
        rules = load_processor_rules(settings)
        return ProcessorRuntime(settings, self._clients(), key, rules, self._seams(module.__name__))

    # --- hooks -------------------------------------------------------------------------------

    def _after_sqs(self, operation: str, kwargs: dict[str, Any]) -> None:
        if not operation.startswith("send_message") or kwargs.get("QueueUrl") != self.queue_url:
            return
        bodies = [e["MessageBody"] for e in kwargs.get("Entries", [])] or [kwargs["MessageBody"]]
        for body in bodies:
            document_id = int(json.loads(body)["documentId"])
            if operation == "send_message_batch" and self.on_its_way[document_id] > 0:
                self.queued_twice += 1  # the poller's sends are batches; deferrals are not
            self.on_its_way[document_id] += 1
        self.event_source.wake()

    def message_done(self, body: str) -> None:
        """The event source deleted a message: that document has one fewer on its way."""
        document_id = int(json.loads(body)["documentId"])
        self.on_its_way[document_id] = max(0, self.on_its_way[document_id] - 1)

    def redeploy(self, parameters: dict[str, str]) -> None:
        """A stack update: new parameters reach new instances; warm ones are retired."""
        self.config.parameters = {**self.config.parameters, **parameters}
        self.template = Template(self.config.parameters)
        self.template.names.update(
            {"DocumentsQueue": self.queue_url, "DeadLetterQueue": self.dlq_url}
        )
        self.environments = {kind: self._environment(kind) for kind in self.FUNCTIONS}
        self.poller.retire_instances()
        self.processor.retire_instances()

    def _before_dynamodb(self, operation: str, kwargs: dict[str, Any]) -> None:
        if operation in ("put_item", "update_item") and kwargs.get("TableName") == "LedgerTable":
            self.crash_point("before a ledger write")

    def crash_point(self, where: str) -> None:
        """Maybe kill the running processor invocation here (its sandbox dies)."""
        task = self.sim.current
        if self.config.crash_rate <= 0 or task is None or task.deadline is None:
            return
        if not task.name.startswith(self.processor.name):
            return
        if self._crash_rng.random() < self.config.crash_rate:
            self.crashes[where] += 1
            task.killed = True
            raise Killed(where)

    def _poll_done(self, outcome: Outcome) -> None:
        if outcome.error is not None or outcome.killed:
            self.poll_failures += 1
            self.polls.append({"at": self.sim.now, "failed": True, "killed": outcome.killed})
            return
        report = dict(outcome.result or {})
        report["at"] = self.sim.now
        self.polls.append(report)

    # --- running -----------------------------------------------------------------------------

    def start(self) -> None:
        self.schedule.start(self.sim.now + self.config.first_poll)

    @contextmanager
    def running(self) -> Iterator[LogSink]:
        """Functions' output counted; Powertools' internal clocks on virtual time; Powertools'
        logger and metrics set as the template's environment sets them in Lambda (they are
        process-wide objects, configured at import from whatever environment this process had)."""
        sink = LogSink(self.sim.time)
        env = self.environments["processor"]
        handler = logger.registered_handler
        saved = (
            getattr(handler, "stream", None),
            logger.log_level,
            metrics.namespace,
            metrics.service,
            os.environ.pop("POWERTOOLS_METRICS_DISABLED", None),
        )
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(sink)
        logger.setLevel(env.get("POWERTOOLS_LOG_LEVEL", "INFO"))
        # A cold start's logger carries no keys, and its metrics no values, left by whatever
        # ran before in this process (another test, say).
        logger.clear_state()
        metrics.clear_metrics()
        default_service = logger._default_log_keys.get("service")
        logger._default_log_keys["service"] = env.get("POWERTOOLS_SERVICE_NAME")
        metrics.namespace = env.get("POWERTOOLS_METRICS_NAMESPACE")
        metrics.service = env.get("POWERTOOLS_SERVICE_NAME")
        try:
            with redirect_stdout(sink), virtual_powertools_time(self.sim.time):
                yield sink
        finally:
            self.sim.shutdown()
            stream, level, namespace, service, disabled = saved
            if isinstance(handler, logging.StreamHandler) and stream is not None:
                handler.setStream(stream)
            logger.setLevel(level)
            logger._default_log_keys["service"] = default_service
            metrics.namespace, metrics.service = namespace, service
            if disabled is not None:
                os.environ["POWERTOOLS_METRICS_DISABLED"] = disabled

    def progress(self, text: str) -> None:
        print(text, file=sys.__stderr__, flush=True)
