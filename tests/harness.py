"""Run the real handlers the way Lambda does, against moto and the simulator.

``drive_queue`` plays Lambda's SQS event source mapping: receive a batch, invoke the handler,
delete what succeeded, let the failures come back (visibility reset to 0 so tests need not wait),
and let moto's redrive policy move a message to the DLQ after ``maxReceiveCount`` receives.

``InProcessLucca`` puts the simulator's request handling behind an httpx transport in this
process, with hooks that act at an exact point of a request (a person editing the document as
our request reaches Lucca, Lucca answering a PUT with something else than it was sent).

``simulator_fixture`` gives a test module its ``sim`` fixture in one line (``stack_fixture`` in
``tests.aws`` its ``stack``).
"""

from __future__ import annotations

import importlib.util
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest
from aws_lambda_powertools.utilities import parameters

from local.lucca_simulator import Simulator, SimulatorConfig
from local.lucca_simulator.app import Request, Route, SimulatorApp, route_api
from tests.aws import Stack
from tests.factories import raw_item

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def paced_simulator(**config: Any) -> Iterator[Simulator]:
    """The simulator over HTTP serving ``SimulatorConfig(**config)`` at the tests' pace: Lucca's
    tenant limit (50 requests a minute) with time compressed 60x, 50 requests a second."""
    with Simulator(SimulatorConfig(rate_limit=50, window_seconds=1.0, **config)) as simulator:
        yield simulator


def simulator_fixture(**config: Any) -> Any:
    """A ``sim`` fixture (assign it to ``sim`` in the module): ``paced_simulator(**config)``."""

    @pytest.fixture
    def sim() -> Iterator[Simulator]:
        with paced_simulator(**config) as simulator:
            yield simulator

    return sim


def add_document(
    app: SimulatorApp, document_id: int, category: str = "custom", **changes: Any
) -> int:
    """Put a factory item (``raw_item``) in the simulator's inbox, numbered ``F-<id>`` unless
    ``changes`` say otherwise; its id."""
    changes.setdefault("documentNumber", f"F-{document_id}")
    app.add_items([raw_item(document_id, **changes)], category)
    return document_id


#: Runs as a request reaches Lucca, before Lucca looks at it.
BeforeHook = Callable[[Route], None]
#: Runs once Lucca has answered; may return another response for the client to get.
AfterHook = Callable[[Route, httpx.Response], httpx.Response | None]


class InProcessLucca(httpx.BaseTransport):
    """httpx requests answered by a ``SimulatorApp`` in this process: no server, no sockets."""

    def __init__(self, app: SimulatorApp) -> None:
        self.app = app
        self.before: list[BeforeHook] = []
        self.after: list[AfterHook] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        query = request.url.query.decode()
        route = route_api(request.method, request.url.path)
        for before in self.before:
            before(route)
        answer = self.app.handle(
            Request(
                method=request.method,
                path=request.url.path,
                query=query,
                params=parse_qs(query, keep_blank_values=True),
                headers={name.lower(): value for name, value in request.headers.items()},
                body=request.read(),
            )
        )
        if answer is None:
            raise httpx.RemoteProtocolError("Lucca closed the connection", request=request)
        headers = dict(answer.headers)
        if answer.content_type:
            headers["Content-Type"] = answer.content_type
        response = httpx.Response(
            answer.status, headers=headers, content=answer.body, request=request
        )
        for after in self.after:
            response = after(route, response) or response
        return response


def load_handler(name: str) -> ModuleType:
    """Import ``functions/<name>/app.py`` under a unique module name (both are ``app``)."""
    path = ROOT / "functions" / name / "app.py"
    spec = importlib.util.spec_from_file_location(f"{name}_app_{uuid.uuid4().hex[:6]}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class FakeLambdaContext:
    timeout_seconds: float = 60.0
    function_name: str = "test-function"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:eu-west-1:123456789012:function:test-function"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        return int(max(0.0, self.timeout_seconds - (time.monotonic() - self.started)) * 1000)


def sqs_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": message.get("Attributes", {}),
                "messageAttributes": {},
                "md5OfBody": message["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": "eu-west-1",
            }
            for message in messages
        ]
    }


@dataclass
class DriveReport:
    invocations: int = 0
    records: int = 0
    failures: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)


def drive_queue(
    stack: Stack,
    handler: Callable[[dict[str, Any], Any], dict[str, Any]],
    *,
    batch_size: int = 5,
    max_invocations: int = 10_000,
    timeout_seconds: float = 60.0,
    idle_rounds: int = 3,
    before_invoke: Callable[[list[dict[str, Any]]], None] | None = None,
) -> DriveReport:
    """Deliver the documents queue to ``handler`` until it stays empty."""
    arn = queue_arn(stack)
    report = DriveReport()
    idle = 0
    while report.invocations < max_invocations:
        messages = receive_batch(stack, batch_size)
        if not messages:
            if queue_is_drained(stack):
                idle += 1
                if idle >= idle_rounds:
                    return report
            time.sleep(0.2)
            continue
        idle = 0
        if before_invoke is not None:
            before_invoke(messages)
        report.invocations += 1
        report.records += len(messages)
        response = handler(sqs_event(messages, arn), FakeLambdaContext(timeout_seconds))
        report.failures += settle_batch(stack, messages, response)
    raise AssertionError(f"queue not drained after {max_invocations} invocations")


def queue_arn(stack: Stack) -> str:
    """The documents queue's ARN, as the event source mapping names it in each record."""
    attributes = stack.sqs.get_queue_attributes(
        QueueUrl=stack.queue_url, AttributeNames=["QueueArn"]
    )["Attributes"]
    return str(attributes["QueueArn"])


def receive_batch(stack: Stack, batch_size: int) -> list[dict[str, Any]]:
    """One receive of up to ``batch_size`` messages of the documents queue, with their
    attributes, without waiting."""
    messages: list[dict[str, Any]] = stack.sqs.receive_message(
        QueueUrl=stack.queue_url,
        MaxNumberOfMessages=batch_size,
        AttributeNames=["All"],
        WaitTimeSeconds=0,
    ).get("Messages", [])
    return messages


def settle_batch(stack: Stack, messages: list[dict[str, Any]], response: dict[str, Any]) -> int:
    """What the event source mapping does with a batch's answer: delete the messages that
    succeeded, make the reported failures visible again at once; how many failed."""
    failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
    for message in messages:
        if message["MessageId"] in failed:
            stack.sqs.change_message_visibility(
                QueueUrl=stack.queue_url,
                ReceiptHandle=message["ReceiptHandle"],
                VisibilityTimeout=0,
            )
        else:
            stack.sqs.delete_message(
                QueueUrl=stack.queue_url, ReceiptHandle=message["ReceiptHandle"]
            )
    return len(failed)


def queue_is_drained(stack: Any) -> bool:
    """No message visible, in flight or delayed (``stack`` needs ``sqs`` and ``queue_url``)."""
    attributes = stack.sqs.get_queue_attributes(
        QueueUrl=stack.queue_url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
    return all(int(value) == 0 for value in attributes.values())


def dead_letters(stack: Stack) -> list[dict[str, Any]]:
    """Every message in the DLQ (received and left in place), with attributes."""
    found: dict[str, dict[str, Any]] = {}
    for _ in range(50):
        messages = stack.sqs.receive_message(
            QueueUrl=stack.dlq_url,
            MaxNumberOfMessages=10,
            MessageAttributeNames=["All"],
            VisibilityTimeout=30,
        ).get("Messages", [])
        if not messages:
            break
        for message in messages:
            found[message["MessageId"]] = message
    return list(found.values())


@contextmanager
def handlers_env(
    monkeypatch: pytest.MonkeyPatch, stack: Stack, sim: Simulator, **overrides: str
) -> Iterator[tuple[ModuleType, ModuleType]]:
    """The two handler modules, freshly imported, configured for ``stack`` and ``sim``."""
    env = stack.env(
        sim.url,
        BUDGET_LIMIT="40",
        BUDGET_WINDOW_SECONDS=str(sim.config.window_seconds),
        BUDGET_MAX_WAIT_SECONDS="30",
        STOP_MARGIN_SECONDS="2",
        **overrides,
    )
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    parameters.clear_caches()
    parameters.base.DEFAULT_PROVIDERS.clear()
    poller = load_handler("inbox_poller")
    processor = load_handler("document_processor")
    yield poller, processor
    for module in (poller, processor):
        forget_runtime(module)


def forget_runtime(handler: ModuleType) -> None:
    """Close the handler module's cached runtime (its Lucca client) and forget it: the next
    invocation builds another, as in a new execution environment."""
    runtime = handler.runtime
    if runtime.cache_info().currsize:
        runtime().client.close()
    runtime.cache_clear()
