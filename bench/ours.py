"""Our pipeline, driven in-process the way Lambda drives it (after ``tests/harness.py``).

One scheduled run of the real poller handler (``functions/inbox_poller/app.py``) and two
instances of the real processor handler (``functions/document_processor/app.py``, each imported
on its own, so each has its own runtime, Lucca client and ``RequestBudget``), all three in
threads sharing one slot store. The processors start consuming while the poller is still
queueing, as an SQS event source would, and are warm before the poll starts (cold start is
measured on its own, in ``bench/coldstart.py``).

The AWS side is ``sim.aws``: the in-memory DynamoDB and SQS the simulation uses (proven
against moto in ``tests/unit/sim/test_sim_aws.py``). The runtimes are built exactly as in Lambda,
so the real ``Ledger``, ``DynamoSlotStore`` and Powertools idempotency layer run on it: one
model of AWS for the benchmark and the simulation. (moto itself answers a conditional write in
~10-17 ms of pure Python, which at time compressed 30x would measure moto, not our pacing.)
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from bench.figures import QueueStack, RunFigures, dead_letter_summary, figures_from
from bench.scenario import BUDGET_LIMIT, NOISE, ProgressTicker, Scenario
from cleemy_booker.config import PollerSettings, ProcessorSettings
from cleemy_booker.wiring.aws import AwsClients
from cleemy_booker.wiring.poller import PollerRuntime
from cleemy_booker.wiring.processor import ProcessorRuntime, load_processor_rules
from local.lucca_simulator import Simulator
from sim.aws import InMemoryDynamoDB, InMemorySqs
from tests.aws import create_idempotency_table, create_ledger_table, create_pk_sk_table
from tests.harness import (
    FakeLambdaContext,
    load_handler,
    queue_is_drained,
    settle_batch,
    sqs_event,
)

#: Processor instances consuming the queue at once (the template's MaximumConcurrency floor).
CONCURRENCY = 2
#: The template's ``BatchSize`` for the processor's SQS event source.
BATCH_SIZE = 5
#: The template's ``maxReceiveCount`` and queue visibility (6 x the processor's 60 s timeout).
MAX_RECEIVE_COUNT = 10
VISIBILITY_SECONDS = 360
#: Lambda's SQS poller long-polls; an empty receive here sleeps this long instead.
EMPTY_RECEIVE_SLEEP = 0.02
#: The queue must look empty this many times in a row before the run is over.
IDLE_ROUNDS = 3


@dataclass
class ConsumerStats:
    invocations: int = 0
    records: int = 0
    failures: int = 0


@dataclass
class OursRun:
    wiring: str
    figures: RunFigures
    poll: dict[str, Any]
    consumers: list[ConsumerStats]
    budget: dict[str, float]
    dead_letters: dict[str, Any]
    wall_seconds: float
    aws: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "wiring": self.wiring,
            "figures": self.figures.as_dict(),
            "poll": self.poll,
            "consumers": [vars(c) for c in self.consumers],
            "budget": self.budget,
            "deadLetters": self.dead_letters,
            "wallSeconds": round(self.wall_seconds, 3),
            "aws": self.aws,
        }


EXAMPLE_RULES = Path(__file__).resolve().parent.parent / "config" / "rules.label-and-due-date.json"


def settings_env(base_url: str, scenario: Scenario, **resources: str) -> dict[str, str]:
    """The template's settings, with only the budget window compressed.

    ``BUDGET_MAX_WAIT_SECONDS`` keeps the template's 20 s rather than being compressed too:
    Retry-After and SQS delays come in whole seconds, so a compressed 0.67 s would turn every
    429 into a round of SQS deferrals that production (Retry-After of a few s against 20 s)
    would not see.
    """
    return {
        "LUCCA_BASE_URL": base_url,
        "BUDGET_LIMIT": str(BUDGET_LIMIT),
        "BUDGET_WINDOW_SECONDS": str(scenario.window_seconds),
        "BUDGET_MAX_WAIT_SECONDS": "20",
        "STOP_MARGIN_SECONDS": "2",
        "OFF_HOURS_LISTING_SECONDS": "0",  # runs at any hour: the poll lists as in working hours
        # The baseline fills a label and a due date: ours runs the example rules that do the
        # same (the packaged default books documents as they are).
        "RULES_SOURCE": str(EXAMPLE_RULES),
        **resources,
    }


# --- the wiring ---------------------------------------------------------------------------------


@dataclass
class MemoryStack:
    """The template's queues and tables in ``sim.aws``."""

    dynamodb: InMemoryDynamoDB
    sqs: InMemorySqs
    queue_url: str
    dlq_url: str

    @classmethod
    def create(cls) -> MemoryStack:
        dynamodb, sqs = InMemoryDynamoDB(), InMemorySqs()
        create_ledger_table(dynamodb, "ledger")
        create_pk_sk_table(dynamodb, "budget")
        create_idempotency_table(dynamodb, "idempotency")
        dlq = sqs.create_queue(QueueName="documents-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT}
        queue = sqs.create_queue(
            QueueName="documents",
            Attributes={
                "VisibilityTimeout": str(VISIBILITY_SECONDS),
                "RedrivePolicy": json.dumps(redrive),
            },
        )["QueueUrl"]
        return cls(dynamodb, sqs, queue, dlq)


def run_ours(scenario: Scenario) -> OursRun:
    with scenario.simulator() as sim, contextlib.redirect_stdout(NOISE):
        stack = MemoryStack.create()
        env = settings_env(
            sim.url,
            scenario,
            # The key is handed to the runtimes directly: no secret is read in memory.
            LUCCA_API_KEY_SECRET="unused",  # noqa: S106 - a secret's name, not a secret
            BUDGET_TABLE="budget",
            LEDGER_TABLE="ledger",
            IDEMPOTENCY_TABLE="idempotency",
            DOCUMENTS_QUEUE_URL=stack.queue_url,
            DEAD_LETTER_QUEUE_URL=stack.dlq_url,
        )
        aws = AwsClients(dynamodb=stack.dynamodb, sqs=stack.sqs)  # type: ignore[arg-type]
        poller_runtime = PollerRuntime(PollerSettings.from_env(env), aws, sim.api_key)
        poller = _with_runtime(load_handler("inbox_poller"), poller_runtime)
        processors = []
        for _ in range(CONCURRENCY):
            settings = ProcessorSettings.from_env(env)
            runtime = ProcessorRuntime(settings, aws, sim.api_key, load_processor_rules(settings))
            processors.append(_with_runtime(load_handler("document_processor"), runtime))
        run = _measure(scenario, sim, stack, poller, processors, "memory")
        run.aws = {
            "dynamodbCalls": dict(stack.dynamodb.usage.calls),
            "sqsCalls": dict(stack.sqs.usage.calls),
        }
        return run


def _with_runtime(module: ModuleType, runtime: object) -> ModuleType:
    """The handler module, its ``runtime()`` answering the runtime wired here."""
    module.runtime = lambda: runtime  # type: ignore[attr-defined]
    return module


# --- the driver ---------------------------------------------------------------------------------


def _measure(
    scenario: Scenario,
    sim: Simulator,
    stack: QueueStack,
    poller: ModuleType,
    processors: list[ModuleType],
    wiring: str,
) -> OursRun:
    for module in processors:
        module.runtime()  # warm: settings, secret, rules, clients
    started = time.perf_counter()
    with ProgressTicker(f"ours/{wiring}/{scenario.key}", sim, scenario.documents):
        poll, consumers = _drive(stack, poller, processors)
    wall = time.perf_counter() - started
    budget = _budget_stats([poller, *processors])
    for module in (poller, *processors):
        module.runtime().client.close()
    figures = figures_from(scenario, sim.state(), sim.requests())
    letters = dead_letter_summary(stack)
    return OursRun(wiring, figures, poll, consumers, budget, letters, wall)


def _drive(
    stack: QueueStack, poller: ModuleType, processors: list[ModuleType]
) -> tuple[dict[str, Any], list[ConsumerStats]]:
    """The poller once, and the processors until the queue stays empty after it finished."""
    poll: dict[str, Any] = {}
    poller_done = threading.Event()

    def poll_once() -> None:
        try:
            poll.update(poller.lambda_handler({"source": "schedule"}, FakeLambdaContext(300)))
        finally:
            poller_done.set()

    stats = [ConsumerStats() for _ in processors]
    threads = [threading.Thread(target=poll_once, name="poller")]
    threads += [
        threading.Thread(
            target=_consume,
            args=(stack, module.lambda_handler, poller_done, stat),
            name=f"processor-{index}",
        )
        for index, (module, stat) in enumerate(zip(processors, stats, strict=True))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return poll, stats


def _consume(
    stack: QueueStack,
    handler: Callable[[dict[str, Any], Any], dict[str, Any]],
    poller_done: threading.Event,
    stats: ConsumerStats,
) -> None:
    """One instance's share of Lambda's SQS event source mapping (cf. ``drive_queue``)."""
    sqs = stack.sqs
    arn = sqs.get_queue_attributes(QueueUrl=stack.queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    idle = 0
    while idle < IDLE_ROUNDS:
        messages = sqs.receive_message(
            QueueUrl=stack.queue_url,
            MaxNumberOfMessages=BATCH_SIZE,
            AttributeNames=["All"],
            WaitTimeSeconds=0,
        ).get("Messages", [])
        if not messages:
            idle = idle + 1 if poller_done.is_set() and queue_is_drained(stack) else 0
            time.sleep(EMPTY_RECEIVE_SLEEP)
            continue
        idle = 0
        stats.invocations += 1
        stats.records += len(messages)
        response = handler(sqs_event(messages, arn), FakeLambdaContext(60))
        # Delete what succeeded; a failure comes back at once (visibility 0), as in the tests.
        stats.failures += settle_batch(stack, messages, response)


def _budget_stats(modules: list[ModuleType]) -> dict[str, float]:
    """Every instance's ``RequestBudget.stats``, summed (they share one slot store)."""
    total: Counter[str] = Counter()
    for module in modules:
        stats = module.runtime().budget.stats
        total["acquired"] += stats.acquired
        total["waitedSeconds"] += stats.waited_seconds
        total["busy"] += stats.busy
        total["throttled"] += stats.throttled
    return {name: round(value, 3) for name, value in total.items()}
