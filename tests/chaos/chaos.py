"""The chaos kit: seeded faults, crashes and timeouts around the real handlers, and the check.

Faults come from three places, all seeded so a failing run can be replayed:

* **Lucca** (the simulator): 408/429/500/503 answers, dropped connections and slow answers, on
  every endpoint; a drop or slow answer on a PUT or a book is applied before the client loses it
  half the time. Slow answers outlast the client's read timeout (``SHORT_TIMEOUT``), so they end
  as our own timeouts, after Lucca did the work.
* **our code**: crashes (``ChaosCrash``, an exception that is no Lucca error) right after a PUT
  succeeded, after the BOOKING marker but before the book call, and after a book succeeded;
  the poller dying mid-listing.
* **Lambda and SQS**: duplicate deliveries, and invocations killed at their timeout part-way
  through a batch (``LambdaTimeout``): the whole batch comes back, and the next invocation runs
  in a fresh execution environment.

``check`` then holds the outcome against the simulator's ground truth: every document booked
exactly once, held with a reason, or in the dead-letter queue with a reason; no PUT dropped a
field; nothing lost; nothing double-booked.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import httpx
import pytest

from cleemy_booker.client import LuccaClient, Response
from cleemy_booker.ledger import DocumentStates, Ledger, Status
from cleemy_booker.models import InboxDocumentWrite, InboxItem
from cleemy_booker.observability import logger as powertools_logger
from cleemy_booker.observability import metrics as powertools_metrics
from cleemy_booker.processor import BOOK_UNCERTAIN
from cleemy_booker.wiring import shared as wiring_shared
from cleemy_booker.wiring.processor import ProcessorRuntime
from local.lucca_simulator import Simulator
from local.lucca_simulator.writeshape import READ_ONLY_DOCUMENT_FIELDS
from tests.aws import Stack
from tests.factories import EXAMPLE_RULES_FILE
from tests.harness import (
    FakeLambdaContext,
    dead_letters,
    forget_runtime,
    load_handler,
    queue_arn,
    queue_is_drained,
    receive_batch,
    settle_batch,
    sqs_event,
)

BOOKABLE = frozenset({"ready", "ready_needs_label", "credit_note"})
HELD = frozenset({"ocr_pending", "ocr_failed", "incomplete", "amounts_mismatch"})
FAILING = frozenset({"book_rejected"})

#: The simulator's slow answers take this long (under Lucca's 5 s limit: they do answer) ...
SLOW_SECONDS = 0.6
#: ... and the client gives up before that: a slow answer is a timeout on our side.
SHORT_TIMEOUT = httpx.Timeout(0.3, connect=1.0)

#: Fields the example rules fill in when they are empty: a PUT may change them, not drop them.
RULE_FILLED_FIELDS = frozenset({"accountingLabel", "dueDate"})


@dataclass(frozen=True)
class ChaosSettings:
    documents: int
    fault_rate: float
    seed: int
    #: Share of documents (of those a crash point applies to) that crash once at each point.
    crash_rate: float = 0.04
    #: Share of processor invocations killed part-way through their batch.
    timeout_rate: float = 0.05
    #: Share of received messages SQS delivers a second time.
    duplicate_rate: float = 0.05

    @classmethod
    def from_env(cls) -> ChaosSettings:
        return cls(
            documents=int(os.environ.get("CHAOS_DOCUMENTS", "150")),
            fault_rate=float(os.environ.get("CHAOS_FAULT_RATE", "0.1")),
            seed=int(os.environ.get("CHAOS_SEED", "7")),
        )


class ChaosCrash(RuntimeError):
    """Our own code failing (not a Lucca error): the record fails and SQS delivers it again."""


class LambdaTimeout(BaseException):
    """Lambda ending an invocation at its timeout. A ``BaseException`` so that no
    ``except Exception`` under test (Powertools' batch and idempotency included) handles it:
    like the real kill, the invocation just stops, and the batch is never answered."""


# --- injection --------------------------------------------------------------------------------


class KillSwitch:
    """A request hook: once armed, the next Lucca answer (or lost answer) ends the invocation."""

    def __init__(self) -> None:
        self.armed = False
        #: Only an answer from this endpoint ends it (any endpoint when None).
        self.endpoint: str | None = None
        self.fired: Counter[str] = Counter()

    def before_request(self, endpoint: str) -> None:
        return None

    def after_response(self, endpoint: str, status: int | None, retry_after: float | None) -> None:
        if self.armed and self.endpoint in (None, endpoint):
            self.armed = False
            self.fired[f"after {endpoint} -> {status}"] += 1
            raise LambdaTimeout(f"killed after {endpoint} answered {status}")


@dataclass
class CrashPlan:
    """Which documents crash once, and where."""

    after_put: set[int] = field(default_factory=set)
    before_book: set[int] = field(default_factory=set)
    after_book: set[int] = field(default_factory=set)
    fired: Counter[str] = field(default_factory=Counter)
    _done: set[tuple[str, int]] = field(default_factory=set)

    @classmethod
    def draw(cls, documents: list[dict[str, Any]], rate: float, rng: random.Random) -> CrashPlan:
        bookable = [d["id"] for d in documents if d["category"] in BOOKABLE]
        # The example rules PUT these (a label or a due date to fill in).
        updated = [d["id"] for d in documents if d["category"] == "ready_needs_label"]

        def pick(ids: list[int]) -> set[int]:
            size = min(len(ids), max(1, round(len(ids) * rate)))
            return set(rng.sample(ids, size))

        return cls(after_put=pick(updated), before_book=pick(bookable), after_book=pick(bookable))

    def maybe_crash(self, point: str, document_id: int) -> None:
        if document_id in getattr(self, point) and (point, document_id) not in self._done:
            self._done.add((point, document_id))
            self.fired[point] += 1
            raise ChaosCrash(f"chaos: crash {point.replace('_', ' ')} of document {document_id}")


@dataclass
class ChaosStats:
    invocations: int = 0
    records: int = 0
    record_failures: int = 0
    duplicates_sent: int = 0
    timeouts: int = 0
    poller_crashes: int = 0
    polls: int = 0
    rounds: int = 0


class Chaos:
    """Installs every injection for one test (undone by ``monkeypatch``) and drives the queue."""

    def __init__(
        self,
        monkeypatch: pytest.MonkeyPatch,
        settings: ChaosSettings,
        crashes: CrashPlan | None = None,
    ) -> None:
        self.settings = settings
        self.rng = random.Random(f"{settings.seed}:chaos")
        self.crashes = crashes or CrashPlan()
        self.kill = KillSwitch()
        self.stats = ChaosStats()
        #: The record (0-based, within the current invocation) during which Lambda kills it.
        self.kill_at: int | None = None
        #: Kill points for the next invocations, in order, before any random ones.
        self.kill_plan: list[int | None] = []
        self._record_index = 0
        #: After this many claims, the poller dies (once); None: it does not.
        self.poller_dies_after: int | None = None
        self._claims = 0
        self._install(monkeypatch)

    # --- patches -----------------------------------------------------------------------------

    def _install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        chaos = self
        # Rules that update documents (the packaged default has none), so PUTs meet the chaos.
        monkeypatch.setenv("RULES_SOURCE", str(EXAMPLE_RULES_FILE))

        def client_factory(*args: Any, **kwargs: Any) -> LuccaClient:
            kwargs.setdefault("timeout", SHORT_TIMEOUT)
            client = LuccaClient(*args, **kwargs)
            client.hooks.append(chaos.kill)
            return client

        monkeypatch.setattr(wiring_shared, "LuccaClient", client_factory)

        original_update = LuccaClient.update_document
        original_book = LuccaClient.book_document

        def update_document(
            self: LuccaClient, document_id: int, body: InboxDocumentWrite
        ) -> InboxItem:
            item = original_update(self, document_id, body)
            chaos.crashes.maybe_crash("after_put", document_id)
            return item

        def book_document(self: LuccaClient, document_id: int) -> Response:
            # The ledger says BOOKING by now: this is the crash between the marker and the call.
            chaos.crashes.maybe_crash("before_book", document_id)
            response = original_book(self, document_id)
            chaos.crashes.maybe_crash("after_book", document_id)
            return response

        monkeypatch.setattr(LuccaClient, "update_document", update_document)
        monkeypatch.setattr(LuccaClient, "book_document", book_document)

        original_handle = ProcessorRuntime.handle_record

        def handle_record(
            self: ProcessorRuntime, body: str, message_id: str, receive_count: int = 1
        ) -> dict[str, Any]:
            index, chaos._record_index = chaos._record_index, chaos._record_index + 1
            if chaos.kill_at != index:
                return original_handle(self, body, message_id, receive_count)
            chaos.kill.armed = True  # killed at this record's first Lucca answer ...
            result = original_handle(self, body, message_id, receive_count)
            if chaos.kill.armed:  # ... or right after it, when it needed no request
                chaos.kill.armed = False
                chaos.kill.fired["after the record"] += 1
                raise LambdaTimeout("killed after a record that sent no request")
            return result

        monkeypatch.setattr(ProcessorRuntime, "handle_record", handle_record)

        original_claim = DocumentStates.claim_for_queue

        def claim_for_queue(
            self: DocumentStates, document_id: int, *args: Any, **kwargs: Any
        ) -> Any:
            if chaos.poller_dies_after is not None and chaos._claims >= chaos.poller_dies_after:
                chaos.poller_dies_after = None
                raise ChaosCrash(f"chaos: the poller dies before claiming document {document_id}")
            chaos._claims += 1
            return original_claim(self, document_id, *args, **kwargs)

        monkeypatch.setattr(DocumentStates, "claim_for_queue", claim_for_queue)

    # --- the pipeline ------------------------------------------------------------------------

    def poll(self, poller: ModuleType) -> dict[str, Any] | None:
        """One scheduled poll; None when the poller died (the next schedule runs it again)."""
        self.stats.polls += 1
        try:
            report: dict[str, Any] = poller.lambda_handler(
                {"source": "schedule"}, FakeLambdaContext(300)
            )
        except ChaosCrash:
            self.stats.poller_crashes += 1
            return None
        return report

    def drive(
        self,
        stack: Stack,
        processor: ModuleType,
        *,
        batch_size: int = 5,
        idle_rounds: int = 3,
        max_invocations: int | None = None,
    ) -> ModuleType:
        """Lambda's SQS event source with duplicates and timeouts, until the queue stays empty
        (or ``max_invocations`` were made).

        Returns the processor module in use at the end (a timeout replaces it: a new execution
        environment, as Lambda starts after killing one).
        """
        arn = queue_arn(stack)
        idle, invocations = 0, 0
        while idle < idle_rounds and (max_invocations is None or invocations < max_invocations):
            messages = receive_batch(stack, batch_size)
            if not messages:
                idle = idle + 1 if queue_is_drained(stack) else 0
                time.sleep(0.2)
                continue
            idle = 0
            for message in messages:  # at-least-once: SQS may hand a message out twice
                if self.rng.random() < self.settings.duplicate_rate:
                    stack.sqs.send_message(QueueUrl=stack.queue_url, MessageBody=message["Body"])
                    self.stats.duplicates_sent += 1
            killed = self.rng.random() < self.settings.timeout_rate
            self.kill_at = self.rng.randrange(len(messages)) if killed else None
            if self.kill_plan:
                self.kill_at = self.kill_plan.pop(0)
            self._record_index = 0
            self.stats.invocations += 1
            invocations += 1
            self.stats.records += len(messages)
            try:
                response = processor.lambda_handler(sqs_event(messages, arn), FakeLambdaContext(60))
            except LambdaTimeout:
                self.stats.timeouts += 1
                processor = self._after_timeout(stack, processor, messages)
                continue
            finally:
                self.kill_at, self.kill.armed = None, False
            self.stats.record_failures += settle_batch(stack, messages, response)
        return processor

    def _after_timeout(
        self, stack: Stack, processor: ModuleType, messages: list[dict[str, Any]]
    ) -> ModuleType:
        """What follows a Lambda timeout, without waiting for it in real time.

        The batch was never answered: every message comes back once its visibility timeout
        (360 s in the template) ends, which is after the function's own timeout (60 s), so the
        in-progress idempotency records the killed invocation left have expired by then. The
        next invocation runs in a new execution environment.
        """
        for message in messages:
            stack.sqs.change_message_visibility(
                QueueUrl=stack.queue_url,
                ReceiptHandle=message["ReceiptHandle"],
                VisibilityTimeout=0,
            )
        expire_in_progress(stack)
        forget_runtime(processor)
        return load_handler("document_processor")


def expire_in_progress(stack: Stack) -> int:
    """Age every INPROGRESS idempotency record past its expiry (the killed invocation's end)."""
    expired = 0
    past = str(int(time.time() * 1000) - 1)
    paginator = stack.dynamodb.get_paginator("scan")
    for page in paginator.paginate(TableName=stack.idempotency_table):
        for item in page.get("Items", []):
            if item.get("status", {}).get("S") == "INPROGRESS":
                stack.dynamodb.update_item(
                    TableName=stack.idempotency_table,
                    Key={"id": item["id"]},
                    UpdateExpression="SET in_progress_expiration = :past",
                    ExpressionAttributeValues={":past": {"N": past}},
                )
                expired += 1
    return expired


@contextmanager
def quiet_powertools(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Thousands of invocations: no metric blobs, and only critical log lines, on stdout."""
    provider = powertools_metrics.provider
    monkeypatch.setattr(
        provider, "flush_metrics", lambda raise_on_empty_metrics=False: provider.clear_metrics()
    )
    level = powertools_logger.log_level
    powertools_logger.setLevel("CRITICAL")
    try:
        yield
    finally:
        powertools_logger.setLevel(level)


def run_until_settled(
    chaos: Chaos,
    stack: Stack,
    poller: ModuleType,
    processor: ModuleType,
    *,
    max_rounds: int = 8,
    after_round: Callable[[int], None] | None = None,
) -> ModuleType:
    """Scheduled polls, each followed by draining the queue, until a whole listing queues
    nothing new (everything is booked, held, failed or on its way)."""
    for round_number in range(max_rounds):
        chaos.stats.rounds += 1
        report = chaos.poll(poller)
        processor = chaos.drive(stack, processor)
        if after_round is not None:
            after_round(round_number)
        complete = report is not None and not report["stoppedBecause"].startswith(
            ("listing failed", "request budget busy", "time running out")
        )
        if complete and report is not None and report["enqueued"] == 0:
            return processor
    return processor


# --- the check --------------------------------------------------------------------------------


@dataclass
class Outcome:
    documents: int = 0
    booked_once: int = 0
    held: int = 0
    dead_lettered: int = 0
    lost: int = 0
    double_booked: int = 0
    puts_checked: int = 0
    applied_then_lost_bookings: int = 0
    applied_then_lost_puts: int = 0
    requests: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    by_endpoint: dict[str, int] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)

    @property
    def faults_total(self) -> int:
        return sum(self.faults.values())

    def summary(self) -> str:
        share = self.faults_total / self.requests if self.requests else 0.0
        return (
            f"{self.documents} documents; faults injected {self.faults_total} "
            f"({share:.1%} of {self.requests} Lucca requests) "
            f"{dict(sorted(self.faults.items()))}; "
            f"applied-then-lost: {self.applied_then_lost_bookings} bookings, "
            f"{self.applied_then_lost_puts} PUTs; "
            f"booked once {self.booked_once}, held {self.held}, in the DLQ {self.dead_lettered}, "
            f"lost {self.lost}, double-booked {self.double_booked}; "
            f"PUT bodies checked {self.puts_checked}; requests by endpoint {self.by_endpoint}"
        )


def seed_snapshot(sim: Simulator) -> dict[int, dict[str, Any]]:
    """Every document as first seeded (before any PUT), with its category."""
    snapshot: dict[int, dict[str, Any]] = {}
    for summary in sim.state()["documents"]:
        detail = sim.document(summary["id"])
        assert detail is not None
        snapshot[summary["id"]] = detail
    return snapshot


def check(sim: Simulator, stack: Stack, seeded: dict[int, dict[str, Any]]) -> Outcome:
    """Hold the end state against ground truth; every broken promise becomes a violation."""
    state = sim.state()
    outcome = Outcome(
        documents=len(state["documents"]),
        requests=state["totals"]["requests"],
        faults=dict(state["totals"]["faultsInjected"]),
        by_endpoint=dict(state["totals"]["byEndpoint"]),
    )
    ledger = Ledger(stack.dynamodb, stack.ledger_table)
    letters = dead_letters(stack)
    reasons: dict[int, list[str]] = {}
    for letter in letters:
        attributes = letter.get("MessageAttributes", {})
        reason = attributes.get("failureReason", {}).get("StringValue", "")
        try:
            document_id = int(json.loads(letter["Body"])["documentId"])
        except (ValueError, KeyError, TypeError):
            outcome.violations.append(f"a dead letter names no document: {letter['Body'][:80]}")
            continue
        if not reason:
            outcome.violations.append(
                f"document {document_id} is in the DLQ without a failureReason "
                f"(redriven after maxReceiveCount receives?)"
            )
        reasons.setdefault(document_id, []).append(reason)

    log = sim.requests()
    lost_bookings = {
        e["documentId"] for e in log if e["endpoint"] == "book" and e["faultAfterOperation"]
    }
    lost_puts = {
        e["documentId"] for e in log if e["endpoint"] == "put" and e["faultAfterOperation"]
    }
    outcome.applied_then_lost_bookings = len(lost_bookings)
    outcome.applied_then_lost_puts = len(lost_puts)

    for document in state["documents"]:
        doc_id, category, bookings = document["id"], document["category"], document["bookings"]
        recorded = ledger.states.state(doc_id)
        status = recorded.status if recorded else None
        in_dlq = doc_id in reasons and all(reasons[doc_id])
        where = f"document {doc_id} ({category})"
        if bookings > 1:
            outcome.double_booked += 1
            outcome.violations.append(f"{where} booked {bookings} times")
        if bookings == 1:
            outcome.booked_once += 1
            if status is not Status.BOOKED:
                outcome.violations.append(
                    f"{where} is booked in Lucca but the ledger says {status}"
                )
            if doc_id in reasons:
                outcome.violations.append(
                    f"{where} is booked but also in the DLQ: {reasons[doc_id]}"
                )
        elif status is Status.HELD and recorded is not None and recorded.reasons:
            outcome.held += 1
        elif in_dlq:
            outcome.dead_lettered += 1
        elif bookings == 0:
            outcome.lost += 1
            outcome.violations.append(
                f"{where} is lost: not booked, not held, not in the DLQ (ledger: {status})"
            )
        if category in BOOKABLE and bookings != 1:
            outcome.violations.append(f"{where} is bookable but was booked {bookings} times")
        if category in HELD and (bookings, document["puts"], status) != (0, 0, Status.HELD):
            outcome.violations.append(
                f"{where} should be held untouched: bookings {bookings}, "
                f"puts {document['puts']}, ledger {status}"
            )
        # Refused after a book call of ours that may have gone through (a timeout, a retry):
        # held for a person with the number kept, not dead-lettered (the processor's docstring).
        uncertain = (
            status is Status.HELD
            and recorded is not None
            and any(r.startswith(f"{BOOK_UNCERTAIN}:") for r in recorded.reasons)
            and document["bookAttempts"] > 1
        )
        if category in FAILING and (bookings != 0 or not (in_dlq or uncertain)):
            outcome.violations.append(
                f"{where} should be in the DLQ with a reason, or held as possibly booked, unbooked"
            )
        if doc_id in lost_bookings and category in BOOKABLE and bookings != 1:
            outcome.violations.append(f"{where}: a booking applied then lost was not settled once")

        detail = sim.document(doc_id)
        assert detail is not None
        for body in detail["putBodies"]:
            outcome.puts_checked += 1
            for problem in put_problems(seeded[doc_id]["document"], body):
                outcome.violations.append(f"{where}: PUT {problem}")
    return outcome


def put_problems(seeded: dict[str, Any], body: Any) -> list[str]:
    """What a PUT body dropped or changed, against the document as first seeded.

    Every writable field (known or not, at every level) must be present; its value must be the
    seeded one, except the fields the example rules fill in when they were empty.
    """
    if not isinstance(body, dict) or not isinstance(body.get("document"), dict):
        return [f"body is not a write shape: {str(body)[:80]}"]
    sent = body["document"]
    problems: list[str] = []
    owner = seeded.get("owner")
    if "ownerId" not in sent:
        problems.append("dropped document.ownerId")
    elif sent["ownerId"] != (owner["id"] if isinstance(owner, dict) else None):
        problems.append(f"changed document.ownerId to {sent['ownerId']!r}")
    for name, value in seeded.items():
        if name in READ_ONLY_DOCUMENT_FIELDS:
            continue
        if name not in sent:
            problems.append(f"dropped document.{name}")
        elif not (name in RULE_FILLED_FIELDS and value in (None, "")):
            problems += _differences(f"document.{name}", value, sent[name])
    return problems


def _differences(path: str, seeded: Any, sent: Any) -> list[str]:
    if path == "document.context.purchase" and isinstance(seeded, dict):
        # The write shape keeps the purchase's id and type; href and name are display only.
        seeded = {key: seeded.get(key) for key in ("id", "type")}
    if isinstance(seeded, dict):
        if not isinstance(sent, dict):
            return [f"changed {path} from an object to {sent!r}"]
        problems = [f"dropped {path}.{key}" for key in seeded if key not in sent]
        for key, value in seeded.items():
            if key in sent:
                problems += _differences(f"{path}.{key}", value, sent[key])
        return problems
    if isinstance(seeded, list):
        if not isinstance(sent, list) or len(sent) != len(seeded):
            return [f"changed {path} from {seeded!r} to {sent!r}"]
        problems = []
        for index, (left, right) in enumerate(zip(seeded, sent, strict=True)):
            problems += _differences(f"{path}[{index}]", left, right)
        return problems
    if seeded != sent:
        return [f"changed {path} from {seeded!r} to {sent!r}"]
    return []
