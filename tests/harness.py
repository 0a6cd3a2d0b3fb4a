"""Run the real handlers the way Lambda does, against moto and the simulator; the in-process
worlds the fast tests run the domain and the runtimes in.

``drive_queue`` plays Lambda's SQS event source mapping: receive a batch, invoke the handler,
delete what succeeded, let the failures come back (visibility reset to 0 so tests need not wait),
and let moto's redrive policy move a message to the DLQ after ``maxReceiveCount`` receives.

``InProcessLucca`` puts the simulator's request handling behind an httpx transport in this
process, with hooks that act at an exact point of a request (a person editing the document as
our request reaches Lucca, Lucca answering a PUT with something else than it was sent); ``on``
makes such a hook.

``World`` is one simulated Lucca in process, the template's AWS resources in moto and a fake
clock: the poller, the processor and their runtimes as the fast tests run them. ``Lucca`` is a
smaller one for the processor alone: the simulator in process, its client and a ledger in moto,
on the real clock. ``CannedLucca`` answers the runtimes' requests from a script instead (httpx
mock transport), for tests of the runtimes' own duties.

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
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs

import boto3
import httpx
import pytest
from aws_lambda_powertools.utilities import parameters
from moto import mock_aws

from cleemy_booker.client import LuccaClient
from cleemy_booker.config import PollerSettings, ProcessorSettings
from cleemy_booker.gate import GateConfig
from cleemy_booker.ledger import DocumentState, Ledger
from cleemy_booker.models import DocumentMessage, InboxItem
from cleemy_booker.processor import DocumentProcessor, ProcessResult
from cleemy_booker.rules import RuleSet, load_rules
from cleemy_booker.wiring.aws import AwsClients
from cleemy_booker.wiring.poller import PollerRuntime
from cleemy_booker.wiring.processor import ProcessorRuntime
from cleemy_booker.wiring.shared import Seams
from local.lucca_simulator import Simulator, SimulatorConfig
from local.lucca_simulator.app import Request, Route, SimulatorApp
from tests.aws import REGION, Stack, create_ledger_table, create_stack
from tests.clocks import FakeClock
from tests.factories import SCOPE, example_rules, raw_item

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
        route = self.app.resolve_route(request.method, request.url.path)
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


def simulator_client(**settings: Any) -> tuple[SimulatorApp, httpx.Client]:
    """A small simulated inbox (12 documents, seed 5, no rate limit to speak of, ``settings``
    over that) and an httpx client talking to it in process, with the API key."""
    config = SimulatorConfig(invoices=12, seed=5, rate_limit=10_000).updated(settings)
    app = SimulatorApp(config)
    client = httpx.Client(
        transport=InProcessLucca(app),
        base_url="http://127.0.0.1",
        headers={"Authorization": f"lucca application={config.api_key}"},
    )
    return app, client


def on(endpoint: str, action: Callable[[], None], *, call: int = 1) -> Callable[[Route], None]:
    """A hook running ``action`` as the ``call``-th request to ``endpoint`` reaches Lucca."""
    seen = 0

    def hook(route: Route) -> None:
        nonlocal seen
        if route.endpoint == endpoint:
            seen += 1
            if seen == call:
                action()

    return hook


def doc_url(doc_id: int) -> str:
    """The path of one inbox document in Lucca's API."""
    return f"/cleemy-procurement/services/inbox-documents/{doc_id}"


def book_url(doc_id: int) -> str:
    """The path that books one inbox document."""
    return f"{doc_url(doc_id)}/book"


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


# --- in-process worlds: the simulator in this process, AWS in moto ----------------------------

#: Where the in-process simulator is reached (loopback: plain HTTP is allowed).
LOOPBACK_URL = "http://127.0.0.1"


def stamp(message: DocumentMessage) -> str:
    """The listed item's ``modifiedAt``, as the poller claims it."""
    assert message.item is not None
    assert message.item.changed_at is not None
    return message.item.changed_at.isoformat()


@dataclass
class Lucca:
    """The simulator, a client talking to it in-process, and a ledger in moto."""

    app: SimulatorApp
    transport: InProcessLucca
    client: LuccaClient
    ledger: Ledger
    ddb: Any

    def add(self, document_id: int, category: str = "custom", **changes: Any) -> int:
        return add_document(self.app, document_id, category, **changes)

    def listed(self, document_id: int) -> DocumentMessage:
        """The message the poller sends: the item as the listing shows it now."""
        page = self.client.list_page(page=1, limit=1000)
        raw = next(item for item in page["items"] if item["id"] == document_id)
        return DocumentMessage(
            documentId=document_id,
            item=InboxItem.model_validate(raw),
            listedAt=datetime.now(UTC),
        )

    def processor(self, rules: RuleSet | None = None) -> DocumentProcessor:
        return DocumentProcessor(
            client=self.client,
            ledger=self.ledger,
            rules=example_rules() if rules is None else rules,
            gate=GateConfig(),
            config="test-config",
        )

    def document(self, document_id: int) -> dict[str, Any]:
        detail = self.app.document_detail(document_id)
        assert detail is not None
        return detail

    def edit(self, document_id: int, **patch: Any) -> None:
        """A person changes the document in Lucca (``modifiedAt`` moves on)."""
        self.app.touch(document_id, patch, None)

    def requests(self, document_id: int) -> list[str]:
        """The Lucca requests about this document, in order (the listing is not one of them)."""
        return [e["endpoint"] for e in self.app.requests() if e["documentId"] == document_id]

    def claim_holder(self, document_id: int) -> int | None:
        """Who holds the document's invoice number, asked as another document would."""
        return self.ledger.numbers.find_duplicate(SCOPE, f"F-{document_id}", document_id=-1)

    def state_item(self, document_id: int) -> dict[str, Any]:
        key = {"pk": {"S": f"doc#{document_id}"}, "sk": {"S": "state"}}
        found: dict[str, Any] = self.ddb.get_item(TableName="ledger", Key=key)["Item"]
        return found


@contextmanager
def in_process_lucca() -> Iterator[Lucca]:
    """An empty simulated inbox in process, its client, and a ledger on moto."""
    app = SimulatorApp(SimulatorConfig(invoices=0, rate_limit=10_000))
    transport = InProcessLucca(app)
    client = LuccaClient(
        LOOPBACK_URL,
        app.config.api_key,
        http=httpx.Client(transport=transport),
        sleep=lambda seconds: None,
    )
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name=REGION)
        create_ledger_table(ddb)
        yield Lucca(app, transport, client, Ledger(ddb, "ledger"), ddb)
    client.close()


def answer_put_with(
    lucca: Lucca, change: Callable[[dict[str, Any]], None], *, holds: bool = True
) -> None:
    """Lucca answers a PUT with the item as ``change`` leaves its JSON; with ``holds``, Lucca
    also holds what it answers (a normalised or reset field), else it merely says less."""

    def after(route: Route, response: httpx.Response) -> httpx.Response | None:
        if route.endpoint != "put" or route.document_id is None or not response.is_success:
            return None
        answered, kept = response.json(), response.json()["document"]
        change(answered)
        moved = {k: v for k, v in answered["document"].items() if kept.get(k) != v}
        if holds and moved:
            touched = lucca.app.touch(route.document_id, moved, None)
            assert touched is not None
            answered["modifiedAt"] = answered["document"]["modifiedAt"] = touched["modifiedAt"]
        return httpx.Response(200, json=answered, request=response.request)

    lucca.transport.after.append(after)


def reason_codes(result: ProcessResult) -> list[str]:
    """The codes of a processing result's reasons (``amounts_mismatch: ...`` -> its code)."""
    return [reason.split(":", 1)[0] for reason in result.reasons]


class Killed(BaseException):
    """The Lambda instance dies here (timeout, out of memory): nothing of ours runs after."""


class RecordingSqs:
    """An SQS client that remembers every ``send_message`` (the delay of a deferred message
    would keep moto from showing it for real minutes)."""

    def __init__(self, sqs: Any) -> None:
        self._sqs = sqs
        self.sent: list[dict[str, Any]] = []

    def send_message(self, **kwargs: Any) -> Any:
        self.sent.append(kwargs)
        return self._sqs.send_message(**kwargs)

    def to(self, queue_url: str) -> list[dict[str, Any]]:
        return [message for message in self.sent if message["QueueUrl"] == queue_url]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sqs, name)


@dataclass
class World:
    """One simulated Lucca, the template's AWS resources in moto, and a fake clock."""

    app: SimulatorApp
    stack: Stack
    clock: FakeClock

    def add(self, document_id: int, category: str = "custom", **changes: Any) -> int:
        return add_document(self.app, document_id, category, **changes)

    def transport(self) -> InProcessLucca:
        """Lucca as one instance reaches it: hooks on it act on that instance's requests."""
        return InProcessLucca(self.app)

    def client(self, transport: InProcessLucca | None = None) -> LuccaClient:
        return LuccaClient(
            LOOPBACK_URL,
            self.app.config.api_key,
            http=httpx.Client(transport=transport or self.transport()),
            sleep=self.clock.sleep,
            clock=self.clock.monotonic,
            wall_clock=self.clock.time,
        )

    def listed(self, document_id: int) -> DocumentMessage:
        """The message the poller sends now: the item as the listing shows it."""
        page = self.client().list_page(page=1, limit=1000)
        raw = next(item for item in page["items"] if item["id"] == document_id)
        return DocumentMessage(
            documentId=document_id,
            item=InboxItem.model_validate(raw),
            listedAt=datetime.fromtimestamp(self.clock.now, UTC),
        )

    def ledger(self, dynamodb: Any = None) -> Ledger:
        ddb = dynamodb or self.stack.dynamodb
        return Ledger(ddb, self.stack.ledger_table, clock=self.clock.time)

    def processor(
        self,
        transport: InProcessLucca | None = None,
        rules: RuleSet | None = None,
        ledger: Ledger | None = None,
    ) -> DocumentProcessor:
        """One attempt of the consumer's domain side (a new instance each call)."""
        return DocumentProcessor(
            client=self.client(transport),
            ledger=ledger or self.ledger(),
            rules=load_rules(None) if rules is None else rules,
            gate=GateConfig(),
            clock=self.clock.time,
            config="test-config",
        )

    def runtime(
        self,
        transport: InProcessLucca | None = None,
        sqs: Any = None,
        dynamodb: Any = None,
        **env: str,
    ) -> ProcessorRuntime:
        """A processor Lambda instance: idempotency record, deferral, dead-letter queue."""
        settings = ProcessorSettings.from_env(self.stack.env(LOOPBACK_URL, **env))
        aws = AwsClients(dynamodb or self.stack.dynamodb, sqs or self.stack.sqs)
        http = httpx.Client(transport=transport or self.transport())
        seams = Seams(clock=self.clock, http=http)
        runtime = ProcessorRuntime(settings, aws, self.app.config.api_key, load_rules(None), seams)
        runtime.start_invocation(lambda: 60.0)
        return runtime

    def poll(self) -> list[int]:
        """One scheduled poller run, a second after what came before: the ids its listing
        confirmed booked."""
        self.clock.sleep(1.0)
        settings = PollerSettings.from_env(self.stack.env(LOOPBACK_URL))
        aws = AwsClients(self.stack.dynamodb, self.stack.sqs)
        seams = Seams(clock=self.clock, http=httpx.Client(transport=self.transport()))
        poller = PollerRuntime(settings, aws, self.app.config.api_key, seams)
        return poller.poll(lambda: 60.0).confirmed

    def detail(self, document_id: int) -> dict[str, Any]:
        found = self.app.document_detail(document_id)
        assert found is not None
        return found

    def bookings(self, document_id: int) -> tuple[int, int]:
        """(times Lucca booked it, book requests that reached Lucca)."""
        detail = self.detail(document_id)
        return detail["bookings"], detail["bookAttempts"]

    def state(self, document_id: int) -> DocumentState:
        found = self.ledger().states.state(document_id)
        assert found is not None
        return found

    def claim_holder(self, number: str) -> int | None:
        """Who holds ``number`` in the purchase's scope, asked as another document would."""
        return self.ledger().numbers.find_duplicate(SCOPE, number, document_id=-1)

    def requests(self, document_id: int) -> list[str]:
        return [e["endpoint"] for e in self.app.requests() if e["documentId"] == document_id]

    def faults(self, endpoint: str, kind: str = "503") -> None:
        """Lucca answers every ``endpoint`` request with ``kind``, before the operation."""
        self.app.configure(
            {"fault_rate": 1.0, "fault_kinds": {kind: 1.0}, "fault_endpoints": [endpoint]}
        )

    def heal(self) -> None:
        self.app.configure({"fault_rate": 0.0})


@contextmanager
def simulated_world() -> Iterator[World]:
    """An empty simulated inbox, the stack in moto, the clock at ``NOW``."""
    app = SimulatorApp(SimulatorConfig(invoices=0, rate_limit=10_000))
    with mock_aws():
        yield World(app, create_stack(app.config.api_key), FakeClock())


# --- a scripted Lucca for the runtimes' own duties --------------------------------------------

#: The tenant the scripted runtimes are configured for (never reached: answers are canned).
TENANT_URL = "https://acme.ilucca.net"


class CannedLucca:
    """Answers each request with the next scripted answer (the last one from then on); an
    answer is a status (429 with ``Retry-After: 1``, an empty body otherwise) or a JSON body."""

    def __init__(self, *answers: int | dict[str, Any]) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []
        #: Called on each request before it is answered: where a test does something meanwhile.
        self.meanwhile: Callable[[], None] = lambda: None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.meanwhile()
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, dict):
            return httpx.Response(200, json=answer)
        headers = {"Retry-After": "1"} if answer == 429 else {}
        return httpx.Response(answer, headers=headers)

    def http(self) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self))


def poller_runtime(stack: Stack, clock: FakeClock, lucca: CannedLucca, **env: str) -> PollerRuntime:
    """A poller Lambda instance on ``stack`` and ``clock``, Lucca answering from ``lucca``."""
    settings = PollerSettings.from_env(stack.env(TENANT_URL, **env))
    aws = AwsClients(stack.dynamodb, stack.sqs)
    return PollerRuntime(settings, aws, "key", Seams(clock=clock, http=lucca.http()))


def five_minutes() -> float:
    """The time left of a poller invocation that has just started."""
    return 300.0
