"""Run the real handlers the way Lambda does, against moto and the simulator.

``drive_queue`` plays Lambda's SQS event source mapping: receive a batch, invoke the handler,
delete what succeeded, let the failures come back (visibility reset to 0 so tests need not wait),
and let moto's redrive policy move a message to the DLQ after ``maxReceiveCount`` receives.

``InProcessLucca`` puts the simulator's request handling behind an httpx transport in this
process, with hooks that act at an exact point of a request (a person editing the document as
our request reaches Lucca, Lucca answering a PUT with something else than it was sent).
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

from local.lucca_simulator import Simulator
from local.lucca_simulator.app import Request, Route, SimulatorApp, route_api
from tests.aws import Stack

ROOT = Path(__file__).resolve().parent.parent


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
    sqs = stack.sqs
    arn = sqs.get_queue_attributes(QueueUrl=stack.queue_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    report = DriveReport()
    idle = 0
    while report.invocations < max_invocations:
        messages = sqs.receive_message(
            QueueUrl=stack.queue_url,
            MaxNumberOfMessages=batch_size,
            AttributeNames=["All"],
            WaitTimeSeconds=0,
        ).get("Messages", [])
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
        failed = {f["itemIdentifier"] for f in response.get("batchItemFailures", [])}
        report.failures += len(failed)
        for message in messages:
            if message["MessageId"] in failed:
                sqs.change_message_visibility(
                    QueueUrl=stack.queue_url,
                    ReceiptHandle=message["ReceiptHandle"],
                    VisibilityTimeout=0,
                )
            else:
                sqs.delete_message(QueueUrl=stack.queue_url, ReceiptHandle=message["ReceiptHandle"])
    raise AssertionError(f"queue not drained after {max_invocations} invocations")


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
        runtime = module.runtime
        if runtime.cache_info().currsize:
            runtime().client.close()
        runtime.cache_clear()
