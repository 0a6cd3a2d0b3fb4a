"""Moto or ``sim/aws``: the simulation's own AWS calls, replayed on both, per second.

What it measures: how fast each model of AWS serves the DynamoDB and SQS calls the simulation
makes, and so how long the 100,000-document backlog (``python -m sim backlog --sizes 100000``)
would take on each: ``sim/aws`` (``InMemoryDynamoDB``, ``InMemorySqs``) against moto called in
process (``moto.mock_aws`` with boto3 clients, as the tests use it).

How:

1. Capture. The ``backlog`` scenario (``--documents`` documents, without and with updates) runs
   on ``sim/aws`` with every API method of ``InMemoryDynamoDB`` and ``InMemorySqs`` wrapped from
   outside, so the trace is every call the application's code (the handlers, the ledger, the
   budget, Powertools idempotency) and the event source make: arguments, items and outcomes.
2. Replay. Each trace is replayed, call by call and in order, on both models, each with the
   template's tables (``sim.template.TableSpec``) and queues. Every table's hash key gets a
   prefix per replay, so each replay has its own keys and meets the conditions it met in the
   simulation (the replay checks that each call had the outcome it had there); receipt handles
   are mapped to the ones each model returned. Only the call itself is timed, after an
   untimed warm-up of a few calls of each kind (botocore loads its models at the first call).
3. Table size. Moto's cost grows with its tables (its GSI ``Query`` reads every item), so the
   replay runs on empty tables (they grow to a few thousand items) and again after filling the
   ledger table with copies of the items the replay wrote, up to each ``--fill`` size.
4. Projection. Calls of the 100,000 backlog per operation (``BACKLOG``, measured with
   ``python -m sim backlog --sizes 100000``; ``--backlog DIR`` reads a newer run's JSON) times
   each model's seconds per call of that operation: the AWS time of the backlog on each model.
   The whole run on moto: ``sim/aws``'s measured wall time, less its AWS time, plus moto's.

``python -m bench.aws_models [--documents 200] [--fill 25000] [--backlog DIR]``; figures in
``bench/results/aws_models.json``. A report, not a test: single-threaded; each call is timed
in wall-clock time and in this process's CPU time, which a busy machine inflates less (the
load average is recorded with the figures).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import sys
import time
import warnings
from collections import Counter, defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import wraps
from importlib.metadata import version
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from sim.aws import InMemoryDynamoDB, InMemorySqs
from sim.scenarios import backlog, run
from sim.template import TableSpec, Template
from sim.world import WorldConfig

RESULTS = Path(__file__).resolve().parent / "results" / "aws_models.json"
REGION = "eu-west-3"
BACKLOG_SIZE = 100_000
#: The 15 minutes the issue allows the 100,000 backlog on moto.
LIMIT_SECONDS = 15 * 60

#: The 100,000 backlog on ``sim/aws`` (both scenarios, without and with updates), as measured:
#: calls per operation (``usage.dynamodbCallsByOperation`` and ``usage.sqsRequestsByAction``
#: of the two JSON files, table and queue creation left out) and the run's wall and CPU time
#: (``/usr/bin/time``). ``--backlog DIR`` (and ``--backlog-wall``) take a newer run's instead.
BACKLOG: dict[str, Any] = {
    "source": (
        "measured 2026-12-07 at commit ef247d2: PYTHONHASHSEED=0 /usr/bin/time -v python -m sim "
        "backlog --sizes 100000 (2 cores, busy: load average 4-10, the run got 52 % of a core)"
    ),
    "wallSeconds": 2453.0,  # 40 min 53 s (586 s + 1,697 s of scenarios, the rest setting up)
    "cpuSeconds": 1291.0,  # user 1,249 s + system 42 s
    "calls": {
        "UpdateItem": 1_402_360,
        "GetItem": 936_607,
        "PutItem": 889_187,
        "DeleteMessageBatch": 41_335,
        "ReceiveMessage": 41_335,
        "SendMessageBatch": 20_730,
        "DeleteItem": 8_700,
        "SendMessage": 6_673,
        "GetQueueAttributes": 2_027,
        "Query": 681,
    },
}

DYNAMODB_METHODS = (
    "get_item",
    "put_item",
    "update_item",
    "delete_item",
    "query",
    "scan",
)
SQS_METHODS = (
    "send_message",
    "send_message_batch",
    "receive_message",
    "delete_message",
    "delete_message_batch",
    "get_queue_attributes",
    "change_message_visibility",
    "change_message_visibility_batch",
)
#: Calls made once per run, not per document: left out of the mix and of the projection.
SETUP_OPERATIONS = frozenset({"CreateTable", "UpdateTimeToLive", "CreateQueue"})


def operation_name(method: str) -> str:
    """``update_item`` -> ``UpdateItem`` (the name the usage counters and AWS use)."""
    return "".join(part.capitalize() for part in method.split("_"))


# --- 1. capture ------------------------------------------------------------------------------


@dataclass(slots=True)
class Call:
    """One API call the simulation made, with what it answered."""

    service: str
    method: str
    kwargs: dict[str, Any]
    #: ``"ok"`` or the error code (``ConditionalCheckFailedException``).
    outcome: str
    #: ReceiveMessage: the receipt handles it returned, in order.
    handles: list[str] = field(default_factory=list)

    @property
    def operation(self) -> str:
        return operation_name(self.method)

    @property
    def label(self) -> str:
        """The operation, split where the work differs: a GSI, a condition."""
        if "IndexName" in self.kwargs:
            return f"{self.operation} (GSI {self.kwargs['IndexName']})"
        if "ConditionExpression" in self.kwargs:
            return f"{self.operation} (condition)"
        return self.operation


@dataclass
class Trace:
    scenario: str
    documents: int
    calls: list[Call]
    wall_seconds: float

    def counts(self) -> Counter[str]:
        return Counter(call.operation for call in self.calls)


@contextmanager
def recording(calls: list[Call]) -> Iterator[None]:
    """Wrap the API methods of ``InMemoryDynamoDB`` and ``InMemorySqs`` (from outside, for the
    duration only) so that each call is appended to ``calls``."""
    saved: list[tuple[type, str, Any]] = []

    def wrap(cls: type, service: str, method: str) -> None:
        original = getattr(cls, method)
        saved.append((cls, method, original))

        @wraps(original)
        def recorded(self: Any, *args: Any, **kwargs: Any) -> Any:
            call = Call(service, method, copy.deepcopy(kwargs), "ok")
            calls.append(call)
            try:
                response = original(self, *args, **kwargs)
            except ClientError as error:
                call.outcome = str(error.response["Error"]["Code"])
                raise
            if method == "receive_message":
                call.handles = [m["ReceiptHandle"] for m in response.get("Messages", [])]
            return response

        setattr(cls, method, recorded)

    for method in DYNAMODB_METHODS:
        wrap(InMemoryDynamoDB, "dynamodb", method)
    for method in SQS_METHODS:
        wrap(InMemorySqs, "sqs", method)
    try:
        yield
    finally:
        for cls, method, original in reversed(saved):
            setattr(cls, method, original)


def capture(documents: int, seed: int) -> list[Trace]:
    """The backlog scenario without and with updates, on ``sim/aws``, every call recorded."""
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    traces = []
    for updates in (False, True):
        scenario = backlog(documents, updates=updates, seed=seed)
        calls: list[Call] = []
        started = time.perf_counter()
        with recording(calls):
            result = run(scenario)
        wall = time.perf_counter() - started
        if not result["figures"].get("drained"):
            raise SystemExit(f"{scenario.name} did not drain: its call mix would not be whole")
        traces.append(Trace(scenario.name, documents, calls, wall))
    return traces


# --- 2. the two models -----------------------------------------------------------------------


@dataclass
class Model:
    """One model of AWS: its DynamoDB and SQS clients, with the template's tables and queues."""

    name: str
    dynamodb: Any
    sqs: Any
    tables: list[TableSpec]
    queue_urls: dict[str, str] = field(default_factory=dict)

    def setup(self) -> None:
        for table in self.tables:
            table.create(self.dynamodb)
        self.queue_urls.update(Template().create_documents_queues(self.sqs, REGION))

    def item_count(self, table: str) -> int:
        if isinstance(self.dynamodb, InMemoryDynamoDB):
            return len(self.dynamodb.items(table))
        count, start = 0, None
        while True:
            page = self.dynamodb.scan(
                TableName=table, Select="COUNT", **({"ExclusiveStartKey": start} if start else {})
            )
            count += int(page["Count"])
            start = page.get("LastEvaluatedKey")
            if not start:
                return count

    def put_many(self, table: str, items: list[dict[str, Any]]) -> None:
        """Load items (not timed): moto by BatchWriteItem, ``sim/aws`` (which has none) one by
        one."""
        if isinstance(self.dynamodb, InMemoryDynamoDB):
            for item in items:
                self.dynamodb.put_item(TableName=table, Item=item)
            return
        for start in range(0, len(items), 25):
            batch = [{"PutRequest": {"Item": item}} for item in items[start : start + 25]]
            pending: dict[str, Any] = {table: batch}
            while pending:
                pending = self.dynamodb.batch_write_item(RequestItems=pending)["UnprocessedItems"]


def sim_aws_model(tables: list[TableSpec], start: float) -> Model:
    """``sim/aws`` on a clock that starts at the scenario's virtual start and runs in real time
    (TTL and visibility see the same instants as in the simulation, give or take the replay)."""
    origin = time.monotonic()

    def clock() -> float:
        return start + time.monotonic() - origin

    model = Model("sim/aws", InMemoryDynamoDB(clock=clock), InMemorySqs(clock=clock), tables)
    model.setup()
    return model


def moto_model(tables: list[TableSpec]) -> Model:
    """Moto in process: boto3 clients under an active ``mock_aws``."""
    import boto3

    model = Model(
        "moto",
        boto3.client("dynamodb", region_name=REGION),
        boto3.client("sqs", region_name=REGION),
        tables,
    )
    model.setup()
    return model


# --- 3. replay -------------------------------------------------------------------------------


@dataclass
class Timings:
    """Seconds and calls per label, and how far the replay agreed with the simulation."""

    seconds: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    #: CPU seconds of this process during the calls: what a busy machine does not inflate.
    cpu: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    calls: Counter[str] = field(default_factory=Counter)
    operations: dict[str, str] = field(default_factory=dict)
    outcomes_differing: Counter[str] = field(default_factory=Counter)
    messages_recorded: int = 0
    messages_received: int = 0
    skipped: int = 0

    def add(self, call: Call, seconds: float, cpu: float) -> None:
        self.seconds[call.label] += seconds
        self.cpu[call.label] += cpu
        self.calls[call.label] += 1
        self.operations[call.label] = call.operation

    def by_operation(self, cpu: bool = False) -> tuple[dict[str, float], Counter[str]]:
        seconds: defaultdict[str, float] = defaultdict(float)
        calls: Counter[str] = Counter()
        for label, spent in (self.cpu if cpu else self.seconds).items():
            seconds[self.operations[label]] += spent
            calls[self.operations[label]] += self.calls[label]
        return dict(seconds), calls

    @property
    def total_seconds(self) -> float:
        return sum(self.seconds.values())

    @property
    def total_cpu(self) -> float:
        return sum(self.cpu.values())

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())


def _tagged(value: dict[str, Any], key: str, tag: str) -> dict[str, Any]:
    """A copy of an item or a key whose hash key (a string) carries ``tag`` in front."""
    if key not in value or "S" not in value[key]:
        return value
    return {**value, key: {"S": tag + value[key]["S"]}}


class Replayer:
    """Replays traces on one model; ``tag`` keeps each replay's keys apart from the others."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self.hash_keys = {
            t.logical_id: next(k["AttributeName"] for k in t.key_schema if k["KeyType"] == "HASH")
            for t in model.tables
        }

    def _dynamodb_kwargs(self, call: Call, tag: str) -> dict[str, Any]:
        kwargs = dict(call.kwargs)
        key = self.hash_keys[kwargs["TableName"]]
        for name in ("Key", "Item", "ExclusiveStartKey"):
            if name in kwargs:
                kwargs[name] = _tagged(kwargs[name], key, tag)
        return kwargs

    def _sqs_kwargs(self, call: Call, handles: dict[str, str]) -> dict[str, Any] | None:
        kwargs = dict(call.kwargs)
        kwargs["QueueUrl"] = self.model.queue_urls[kwargs["QueueUrl"].rsplit("/", 1)[-1]]
        kwargs.pop("WaitTimeSeconds", None)  # a long poll would time the wait, not the model
        if "ReceiptHandle" in kwargs:
            if kwargs["ReceiptHandle"] not in handles:
                return None
            kwargs["ReceiptHandle"] = handles.pop(kwargs["ReceiptHandle"])
        if "Entries" in kwargs and call.method != "send_message_batch":
            entries = [
                {**entry, "ReceiptHandle": handles.pop(entry["ReceiptHandle"])}
                for entry in kwargs["Entries"]
                if entry["ReceiptHandle"] in handles
            ]
            if not entries:
                return None
            kwargs["Entries"] = entries
        return kwargs

    def replay(self, trace: Trace, tag: str, timings: Timings) -> None:
        clients = {"dynamodb": self.model.dynamodb, "sqs": self.model.sqs}
        #: The simulation's receipt handle -> the one this model returned for that receive.
        handles: dict[str, str] = {}
        clock, cpu_clock = time.perf_counter, time.process_time
        for call in trace.calls:
            if call.service == "dynamodb":
                kwargs: dict[str, Any] | None = self._dynamodb_kwargs(call, tag)
            else:
                kwargs = self._sqs_kwargs(call, handles)
            if kwargs is None:
                timings.skipped += 1
                continue
            method = getattr(clients[call.service], call.method)
            outcome = "ok"
            response: dict[str, Any] = {}
            started, cpu_started = clock(), cpu_clock()
            try:
                response = method(**kwargs)
            except ClientError as error:
                outcome = str(error.response["Error"]["Code"])
            timings.add(call, clock() - started, cpu_clock() - cpu_started)
            if outcome != call.outcome:
                timings.outcomes_differing[call.label] += 1
            if call.method == "receive_message":
                got = [m["ReceiptHandle"] for m in response.get("Messages", [])]
                handles.update(zip(call.handles, got, strict=False))
                timings.messages_recorded += len(call.handles)
                timings.messages_received += len(got)


def warm_up(replayer: Replayer, traces: list[Trace], per_label: int = 5) -> None:
    """A few calls of each kind first, not timed: botocore loads its service models, and
    moto its URL routes, at the first call of each operation."""
    seen: Counter[str] = Counter()
    calls = []
    for trace in traces:
        for call in trace.calls:
            if seen[call.label] < per_label:
                seen[call.label] += 1
                calls.append(call)
    replayer.replay(Trace("warm-up", 0, calls, 0.0), "warm-up:", Timings())


# --- 4. phases and figures -------------------------------------------------------------------


def fill_items(
    model: Model, source: dict[str, list[dict[str, Any]]], target: int, hash_keys: dict[str, str]
) -> dict[str, int]:
    """Fill the ledger table up to ``target`` items with copies of ``source``'s items (their
    hash keys tagged apart), and the other per-document table in the same proportion."""
    ledger = model.item_count("LedgerTable")
    missing = target - ledger
    if missing <= 0 or not source["LedgerTable"]:
        return {}
    rounds = -(-missing // len(source["LedgerTable"]))
    added: dict[str, int] = {}
    for table, items in source.items():
        if table == "BudgetTable" or not items:
            continue  # one item, shared by every request
        share = len(items) / len(source["LedgerTable"])
        wanted = round(missing * share)
        copies = [
            _tagged(item, hash_keys[table], f"fill{target}.{n}:")
            for n in range(rounds)
            for item in items
            if item.get(hash_keys[table], {}).get("S")
        ][:wanted]
        model.put_many(table, copies)
        added[table] = len(copies)
    return added


@dataclass
class Phase:
    name: str
    model: str
    ledger_items_before: int
    ledger_items_after: int
    timings: Timings

    def figures(self) -> dict[str, Any]:
        t = self.timings
        seconds, calls = t.by_operation()
        return {
            "phase": self.name,
            "model": self.model,
            "ledgerItems": {"before": self.ledger_items_before, "after": self.ledger_items_after},
            "calls": t.total_calls,
            "seconds": round(t.total_seconds, 3),
            "cpuSeconds": round(t.total_cpu, 3),
            "callsPerSecond": round(t.total_calls / t.total_seconds, 1),
            "callsPerCpuSecond": round(t.total_calls / t.total_cpu, 1),
            "byLabel": {
                label: {
                    "calls": t.calls[label],
                    "callsPerSecond": round(t.calls[label] / t.seconds[label], 1),
                    "microsecondsPerCall": round(1e6 * t.seconds[label] / t.calls[label], 1),
                    "cpuMicrosecondsPerCall": round(1e6 * t.cpu[label] / t.calls[label], 1),
                }
                for label in sorted(t.calls, key=lambda label: -t.calls[label])
            },
            "byOperation": {
                op: {
                    "calls": calls[op],
                    "microsecondsPerCall": round(1e6 * seconds[op] / calls[op], 1),
                }
                for op in sorted(calls)
            },
            "outcomesDifferingFromSimulation": dict(t.outcomes_differing),
            "messages": {"recorded": t.messages_recorded, "received": t.messages_received},
            "skippedUnmatchedHandles": t.skipped,
        }


def backlog_calls(path: Path | None) -> tuple[dict[str, int], str]:
    """The 100,000 backlog's calls per operation: from a run's JSON, or the measured ones."""
    if path is None:
        return dict(BACKLOG["calls"]), str(BACKLOG["source"])
    calls: Counter[str] = Counter()
    files = sorted(path.glob(f"backlog-{BACKLOG_SIZE}-*.json"))
    if not files:
        raise SystemExit(f"no backlog-{BACKLOG_SIZE}-*.json in {path}")
    for file in files:
        usage = json.loads(file.read_text())["figures"]["usage"]
        calls.update(usage["dynamodbCallsByOperation"])
        calls.update(usage["sqsRequestsByAction"])
    names = ", ".join(f.name for f in files)
    return {op: n for op, n in calls.items() if op not in SETUP_OPERATIONS}, f"{path}: {names}"


def project(phase: Phase, calls: dict[str, int], cpu: bool = False) -> float:
    """Seconds (wall, or CPU) the model would spend in the backlog's calls, at this phase's
    cost per call of each operation (an operation the replay never made: the replay's mean)."""
    seconds, counted = phase.timings.by_operation(cpu)
    total = phase.timings.total_cpu if cpu else phase.timings.total_seconds
    mean = total / phase.timings.total_calls
    return sum(
        n * (seconds[op] / counted[op] if counted.get(op) else mean) for op, n in calls.items()
    )


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.aws_models", description=__doc__)
    parser.add_argument("--documents", type=int, default=200, help="backlog size captured")
    parser.add_argument(
        "--fill", default="25000", help="ledger-table sizes to replay at (comma-separated)"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--backlog", type=Path, default=None, help="folder of a 100,000 backlog's JSON"
    )
    parser.add_argument(
        "--backlog-wall", type=float, default=None, help="that run's wall seconds on sim/aws"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    return parser


def _row(cells: list[str], widths: list[int]) -> str:
    return "  ".join(
        c.ljust(w) if i == 0 else c.rjust(w)
        for i, (c, w) in enumerate(zip(cells, widths, strict=True))
    )


def report(phases: list[Phase], mix: Counter[str], projections: dict[str, Any]) -> str:
    """Calls per second per label and model, one column per phase; then the projection."""
    columns = [(p.model, p.name, p) for p in phases]
    widths = [30, 8, *[16] * len(columns)]
    lines = [
        _row(["calls per second", "share", *[f"{m} {n}" for m, n, _ in columns]], widths),
        _row(["", "", *[f"ledger {p.ledger_items_before:,}+" for *_, p in columns]], widths),
    ]
    total = sum(mix.values())
    for label, n in mix.most_common():
        cells = []
        for *_, p in columns:
            calls, spent = p.timings.calls[label], p.timings.seconds[label]
            cells.append(f"{calls / spent:,.0f}" if spent else "-")
        lines.append(_row([label, f"{n / total:.1%}", *cells], widths))
    for name, attribute in (("the mix", "total_seconds"), ("the mix, per CPU second", "total_cpu")):
        rates = [
            f"{p.timings.total_calls / getattr(p.timings, attribute):,.0f}" for *_, p in columns
        ]
        lines.append(_row([name, "100%", *rates], widths))
    lines.append("")
    lines.append(f"100,000 backlog: {projections['backlogCalls']:,} AWS calls")
    lines.append(f"  ({projections['backlogSource']})")
    for row in projections["rows"]:
        whole = row.get("wholeRunSeconds")
        lines.append(
            f"  {row['model']:8} at {row['phase']:>14}: AWS calls alone "
            f"{row['awsSeconds'] / 60:8.1f} min ({row['awsCpuSeconds'] / 60:.1f} min of CPU)"
            + (f", whole run {whole / 60:8.1f} min" if whole is not None else "")
        )
    wall = projections.get("simAwsWallSeconds")
    if wall is not None:
        lines.append(f"  sim/aws whole run, measured: {wall / 60:.1f} min")
    lines.append(f"  verdict: {projections['verdict']}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    fills = sorted({int(s) for s in args.fill.split(",") if s.strip()})
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        os.environ.setdefault(name, value)
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        os.environ.pop(name, None)
    load_before = os.getloadavg()

    say(f"capturing the backlog of {args.documents} documents on sim/aws ...")
    traces = capture(args.documents, args.seed)
    for trace in traces:
        say(f"  {trace.scenario}: {len(trace.calls):,} calls in {trace.wall_seconds:.1f} s")
    mix: Counter[str] = Counter(call.label for trace in traces for call in trace.calls)

    from moto import mock_aws

    tables = Template().tables()
    phases: list[Phase] = []
    with mock_aws():
        models = [sim_aws_model(tables, WorldConfig().start), moto_model(tables)]
        replayers = {m.name: Replayer(m) for m in models}
        for replayer in replayers.values():
            warm_up(replayer, traces)
        hash_keys = next(iter(replayers.values())).hash_keys
        source: dict[str, list[dict[str, Any]]] = {}
        for number, fill in enumerate([0, *fills]):
            name = "empty tables" if fill == 0 else f"{fill:,} items"
            for model in models:
                if fill:
                    say(f"  {model.name}: filling the ledger table to {fill:,} items ...")
                    fill_items(model, source, fill, hash_keys)
                before = model.item_count("LedgerTable")
                timings = Timings()
                started = time.perf_counter()
                for index, trace in enumerate(traces):
                    replayers[model.name].replay(trace, f"r{number}.{index}:", timings)
                after = model.item_count("LedgerTable")
                say(
                    f"  {model.name}, {name}: {timings.total_calls:,} calls in "
                    f"{time.perf_counter() - started:.1f} s, ledger {before:,} -> {after:,} items"
                )
                phases.append(Phase(name, model.name, before, after, timings))
                if not source and isinstance(model.dynamodb, InMemoryDynamoDB):
                    source = {t.logical_id: model.dynamodb.items(t.logical_id) for t in tables}

    calls, origin = backlog_calls(args.backlog)
    if not calls:  # no measured backlog: the captured calls per document, scaled
        per_document: Counter[str] = Counter()
        for trace in traces:
            per_document.update(trace.counts())
        calls = {op: round(n * BACKLOG_SIZE / args.documents) for op, n in per_document.items()}
        origin = f"ESTIMATED: the {args.documents}-document capture scaled to {BACKLOG_SIZE:,}"
    wall = args.backlog_wall if args.backlog_wall is not None else BACKLOG["wallSeconds"]
    largest = {p.model: p for p in phases}  # the last phase of each model: its fullest tables
    rows = []
    for phase in phases:
        aws = project(phase, calls)
        row: dict[str, Any] = {
            "model": phase.model,
            "phase": phase.name,
            "awsSeconds": aws,
            "awsCpuSeconds": project(phase, calls, cpu=True),
        }
        if wall is not None:
            own = project(
                next(p for p in phases if p.model == "sim/aws" and p.name == phase.name), calls
            )
            row["wholeRunSeconds"] = wall - own + aws
        rows.append(row)
    moto_aws = project(largest["moto"], calls)
    verdict = (
        f"moto holds the backlog: {moto_aws / 60:.1f} min of AWS calls < 15 min"
        if moto_aws < LIMIT_SECONDS
        else f"moto cannot: {moto_aws / 60:.0f} min in its AWS calls alone > 15 min"
    )
    projections = {
        "backlogCalls": sum(calls.values()),
        "backlogCallsByOperation": calls,
        "backlogSource": origin,
        "simAwsWallSeconds": wall,
        "simAwsCpuSeconds": BACKLOG.get("cpuSeconds") if args.backlog is None else None,
        "rows": rows,
        "verdict": verdict,
    }
    print(report(phases, mix, projections))

    result = {
        "measuredAt": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "python -m bench.aws_models " + " ".join(argv or sys.argv[1:]),
        "machine": {
            "cpus": os.cpu_count(),
            "loadAverageBefore": [round(x, 2) for x in load_before],
            "loadAverageAfter": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version(),
            "moto": version("moto"),
            "boto3": version("boto3"),
        },
        "captured": [
            {
                "scenario": t.scenario,
                "calls": len(t.calls),
                "wallSeconds": round(t.wall_seconds, 2),
                "byOperation": dict(t.counts()),
            }
            for t in traces
        ],
        "mix": dict(mix.most_common()),
        "phases": [p.figures() for p in phases],
        "projection": projections,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"JSON: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
