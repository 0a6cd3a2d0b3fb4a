"""AWS Lambda as it behaves for this pipeline: instances, cold starts, timeouts, concurrency,
the SQS event source mapping, asynchronous invocation with its retries, and the schedule.

What is modelled, and how:

* An **instance** (execution environment) is created on a cold start: it sleeps the measured
  cold-start time (``sim/measured.json``), loads its own copy of ``functions/<name>/app.py`` and
  builds the runtime exactly as the handler's ``runtime()`` would, with the simulation's seams
  (virtual clock, in-process Lucca, in-memory AWS with modelled latency). The GetSecretValue at
  cold start is a real call of the code. Warm instances are reused; one idle for longer than
  ``idle_reclaim_seconds`` is reclaimed (AWS does not publish this; an assumption).
* An **invocation** runs the real ``lambda_handler`` with a context whose remaining time is
  virtual. One that would run past its timeout is killed at the timeout: its instance is
  discarded and, for SQS, its whole batch reappears after the visibility timeout.
* Billed duration: invocation time rounded up to 1 ms, plus the init phase on a cold start
  (billed since August 2025), times the memory size.
* **SQS event source**: at most ``MaximumConcurrency`` batches at once; a batch is taken when
  ``BatchSize`` messages are visible or when the batching window has passed since it started
  to fill; successes are deleted (``ReportBatchItemFailures``), failures and every record of a
  failed or killed invocation come back after the visibility timeout. Lambda's own long-polling
  receives are not simulated one by one: their cost is estimated (``idle_receives``).
* **Asynchronous invocation** (the scheduler's): events wait in Lambda's queue while the
  function is at its reserved concurrency; a function error is retried as often as the
  function's ``EventInvokeConfig`` says (Lambda's default: twice, after 1 and 2 minutes); an
  event older than its ``MaximumEventAgeInSeconds`` (default 6 hours) is dropped.
"""

from __future__ import annotations

import importlib.util
import itertools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

from aws_lambda_powertools.logging import logger as powertools_logger

from sim.aws import InMemorySqs
from sim.clock import Killed, Simulation


class _Reclaim(Protocol):
    idle_reclaim_seconds: float


class World(Protocol):
    """What Lambda's model needs of the world it runs in (``sim.world.World`` is one): the
    clock, the queue it deletes from, and whom to tell that a message is done."""

    sim: Simulation
    sqs: InMemorySqs

    @property
    def config(self) -> _Reclaim: ...

    def message_done(self, body: str) -> None: ...


ROOT = Path(__file__).resolve().parent.parent
#: Lambda's delays between asynchronous retries (how many, and the event's longest age, are
#: the function's EventInvokeConfig in the template).
ASYNC_RETRY_DELAYS = (60.0, 120.0)
#: Lambda gives a function one full vCPU at 1,769 MB, and CPU in proportion below it.
FULL_VCPU_MB = 1769
#: Lambda's SQS pollers long-poll for 20 s; AWS runs several (5 is the documented start).
LONG_POLL_SECONDS = 20.0
ESM_POLLERS = 5

_module_ids = itertools.count()


def load_handler(code_uri: str) -> ModuleType:
    """A fresh copy of ``functions/<name>/app.py``: one per instance, as in Lambda."""
    path = ROOT / code_uri / "app.py"
    spec = importlib.util.spec_from_file_location(f"sim_handler_{next(_module_ids)}", path)
    if spec is None or spec.loader is None:
        raise ImportError(path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class SimContext:
    """The Lambda context the handlers and Powertools read, on virtual time."""

    def __init__(self, world: World, fn: LambdaFunction, request_id: str) -> None:
        self._world = world
        self.function_name = fn.name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:eu-west-3:123456789012:function:{fn.name}"
        self.memory_limit_in_mb = fn.memory_mb
        self.aws_request_id = request_id
        self.log_group_name = f"/aws/lambda/{fn.name}"
        self.log_stream_name = "sim"
        self.deadline = world.sim.now + fn.timeout

    def get_remaining_time_in_millis(self) -> int:
        return int(max(0.0, self.deadline - self._world.sim.now) * 1000)


@dataclass
class Instance:
    module: ModuleType
    runtime: Any
    last_used: float
    generation: int = 0


@dataclass
class Outcome:
    result: Any = None
    error: BaseException | None = None
    killed: bool = False


@dataclass
class FunctionUsage:
    invocations: int = 0
    cold_starts: int = 0
    errors: int = 0
    timeouts: int = 0
    throttles: int = 0
    billed_seconds: float = 0.0
    max_concurrent: int = 0

    def gb_seconds(self, memory_mb: int) -> float:
        return self.billed_seconds * memory_mb / 1024


class LambdaFunction:
    def __init__(
        self,
        world: World,
        name: str,
        *,
        timeout: float,
        memory_mb: int,
        reserved_concurrency: int | None,
        cold_start_seconds: float,
        build: Callable[[ModuleType], Any],
        code_uri: str,
        async_retries: int = 2,
        async_max_event_age: float = 21600,
    ) -> None:
        self.world = world
        self.name = name
        self.timeout = timeout
        self.memory_mb = memory_mb
        self.reserved = reserved_concurrency
        self.cold_start_seconds = cold_start_seconds
        self._build = build
        self._code_uri = code_uri
        self.async_retries = async_retries
        self.async_max_event_age = async_max_event_age
        self._idle: list[Instance] = []
        self.running = 0
        self.usage = FunctionUsage()
        #: Each invocation's request id (its task's name), and whether it started cold.
        self.invocations: list[tuple[str, bool]] = []
        self._request_ids = itertools.count(1)
        #: Bumped by a deployment: an instance of an older one is not reused.
        self._generation = 0

    def try_invoke(self, event: dict[str, Any], on_done: Callable[[Outcome], None]) -> bool:
        """Start an invocation now; False (throttled) at the concurrency limit."""
        if self.reserved is not None and self.running >= self.reserved:
            self.usage.throttles += 1
            return False
        self.running += 1
        self.usage.max_concurrent = max(self.usage.max_concurrent, self.running)
        instance = self._warm_instance()
        request_id = f"{self.name}-{next(self._request_ids):08d}"
        self.world.sim.spawn(
            request_id, lambda: self._invocation(instance, event, request_id, on_done)
        )
        return True

    def retire_instances(self) -> None:
        """A new version is deployed: the next invocations start cold, with its settings."""
        self._idle.clear()
        self._generation += 1

    def _warm_instance(self) -> Instance | None:
        now = self.world.sim.now
        reclaim = self.world.config.idle_reclaim_seconds
        self._idle = [i for i in self._idle if now - i.last_used <= reclaim]
        return self._idle.pop() if self._idle else None

    def _cold_start(self) -> Instance:
        self.world.sim.sleep(self.cold_start_seconds)
        module = load_handler(self._code_uri)
        runtime = self._build(module)
        # What the handler's cached ``runtime()`` returns from now on.
        setattr(module, "runtime", lambda: runtime)  # noqa: B010 - replaces a module function
        # Powertools keeps "cold start" in a process-wide flag; each instance is a process.
        powertools_logger.is_cold_start = True
        return Instance(module, runtime, self.world.sim.now, self._generation)

    def _invocation(
        self,
        instance: Instance | None,
        event: dict[str, Any],
        request_id: str,
        on_done: Callable[[Outcome], None],
    ) -> None:
        sim = self.world.sim
        outcome = Outcome()
        started = sim.now
        task = sim.current
        self.invocations.append((request_id, instance is None))
        try:
            if instance is None:
                # Lambda's init phase has its own 10 s limit; the cold start is well inside it.
                instance = self._cold_start()
                self.usage.cold_starts += 1
            context = SimContext(self.world, self, request_id)
            if task is not None:
                task.deadline = context.deadline
            outcome.result = instance.module.lambda_handler(event, context)
        except Killed:
            outcome.killed = True
        except Exception as error:
            outcome.error = error
        finally:
            if task is not None:
                task.deadline = None
                task.killed = False
            billed = -(-(sim.now - started) * 1000 // 1) / 1000  # whole milliseconds, up
            self.usage.invocations += 1
            self.usage.billed_seconds += billed
            self.usage.errors += outcome.error is not None
            self.usage.timeouts += outcome.killed
            self.running -= 1
            if (
                instance is not None
                and not outcome.killed
                and instance.generation == self._generation
            ):
                instance.last_used = sim.now
                self._idle.append(instance)
            sim.call_at(sim.now, lambda: on_done(outcome))


@dataclass
class SqsEventSource:
    """Lambda's SQS event source mapping for the processor."""

    world: World
    function: LambdaFunction
    queue_url: str
    batch_size: int
    batching_window: float
    max_concurrency: int
    in_flight: int = 0
    batches: int = 0
    _window_started: float | None = None
    _wakes: set[float] = field(default_factory=set)

    def wake(self, at: float | None = None) -> None:
        """Look at the queue at ``at`` (now by default), once per instant."""
        when = self.world.sim.now if at is None else at
        if when in self._wakes:
            return
        self._wakes.add(when)
        self.world.sim.call_at(when, lambda: self._check(when))

    def _check(self, when: float) -> None:
        self._wakes.discard(when)
        sqs, now = self.world.sqs, self.world.sim.now
        while self.in_flight < self.max_concurrency:
            visible = sqs.counts(self.queue_url)[0]
            if visible == 0:
                self._window_started = None
                upcoming = sqs.next_visible_at(self.queue_url)
                if upcoming is not None:
                    self.wake(max(upcoming, now))
                return
            if visible < self.batch_size and self.batching_window > 0:
                if self._window_started is None:
                    self._window_started = now
                closes = self._window_started + self.batching_window
                if now < closes:
                    self.wake(closes)
                    return
            self._window_started = None
            received = sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=self.batch_size,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not received:
                return
            self._invoke(received)

    def _invoke(self, messages: list[dict[str, Any]]) -> None:
        event = {"Records": [_record(m, self.queue_url) for m in messages]}
        started = self.function.try_invoke(event, lambda outcome: self._done(messages, outcome))
        if not started:  # unreachable with MaximumConcurrency below the function's limit
            return
        self.in_flight += 1
        self.batches += 1

    def _done(self, messages: list[dict[str, Any]], outcome: Outcome) -> None:
        self.in_flight -= 1
        if outcome.result is not None and outcome.error is None and not outcome.killed:
            failed = {f["itemIdentifier"] for f in outcome.result.get("batchItemFailures", [])}
            done = [m for m in messages if m["MessageId"] not in failed]
            for message in done:
                self.world.message_done(message["Body"])
            if done:
                self.world.sqs.delete_message_batch(
                    QueueUrl=self.queue_url,
                    Entries=[
                        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                        for i, m in enumerate(done)
                    ],
                )
        self.wake()


def _record(message: dict[str, Any], queue_url: str) -> dict[str, Any]:
    name = queue_url.rsplit("/", 1)[-1]
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": message.get("MessageAttributes", {}),
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:eu-west-3:123456789012:{name}",
        "awsRegion": "eu-west-3",
    }


@dataclass
class _AsyncEvent:
    event: dict[str, Any]
    first_seen: float
    attempt: int = 0


@dataclass
class AsyncInvoker:
    """Lambda's internal queue for asynchronous invocations (how the scheduler invokes)."""

    world: World
    function: LambdaFunction
    on_outcome: Callable[[Outcome], None]
    pending: deque[_AsyncEvent] = field(default_factory=deque)
    dropped: int = 0
    retried: int = 0

    def submit(self, event: dict[str, Any]) -> None:
        self.pending.append(_AsyncEvent(event, self.world.sim.now))
        self.pump()

    def pump(self) -> None:
        now = self.world.sim.now
        while self.pending:
            head = self.pending[0]
            if now - head.first_seen > self.function.async_max_event_age:
                self.pending.popleft()
                self.dropped += 1
                continue
            if not self.function.try_invoke(head.event, partial(self._done, head)):
                return  # at the reserved concurrency: Lambda retries throttles on its own
            self.pending.popleft()

    def _done(self, event: _AsyncEvent, outcome: Outcome) -> None:
        self.on_outcome(outcome)
        failed = outcome.error is not None or outcome.killed
        if failed and event.attempt < self.function.async_retries:
            delay = ASYNC_RETRY_DELAYS[event.attempt]
            event.attempt += 1
            self.retried += 1
            self.world.sim.call_later(delay, lambda: self._retry(event))
        self.pump()

    def _retry(self, event: _AsyncEvent) -> None:
        self.pending.append(event)
        self.pump()


@dataclass
class Schedule:
    """EventBridge Scheduler: the poller's event every ``every`` seconds."""

    world: World
    every: float
    target: AsyncInvoker
    fired: int = 0

    def start(self, first: float) -> None:
        self.world.sim.call_at(first, self._fire)

    def _fire(self) -> None:
        self.fired += 1
        self.target.submit({"source": "schedule"})
        self.world.sim.call_later(self.every, self._fire)
