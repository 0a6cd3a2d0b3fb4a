"""The bad-input catalogue: each bad input gets a clear error, and the good documents around it
still go through.

Queue messages, Lucca's answers and the configuration, each driven through the real handlers
(moto + the simulator). Answers the simulator would never give (HTML, an empty body, the wrong
shape) come from ``ScriptedLucca``, a transport that forwards everything else to the simulator.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from aws_lambda_powertools.utilities import parameters
from moto import mock_aws

from cleemy_booker.client import DEFAULT_TIMEOUT, LuccaClient
from cleemy_booker.config import ConfigError, PollerSettings, ProcessorSettings
from cleemy_booker.errors import AuthError, InvalidResponseError
from cleemy_booker.ledger import Ledger, Status
from cleemy_booker.rules import RulesConfigError
from cleemy_booker.wiring import shared as wiring_shared
from cleemy_booker.wiring.processor import load_processor_rules
from cleemy_booker.wiring.shared import read_api_key
from local.lucca_simulator import Simulator
from tests.aws import Stack, create_stack, stack_fixture
from tests.factories import raw_item
from tests.harness import (
    DriveReport,
    FakeLambdaContext,
    dead_letters,
    drive_queue,
    handlers_env,
    simulator_fixture,
    sqs_event,
)

DOCUMENT_PATH = "/cleemy-procurement/services/inbox-documents/{id}"
BOOK_PATH = DOCUMENT_PATH + "/book"
LIST_PATH = "/cleemy-procurement/services/inbox"
HTML_PAGE = "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"


sim = simulator_fixture(invoices=12, seed=8)
stack = stack_fixture(max_receive_count=10)


def ready_ids(sim: Simulator) -> list[int]:
    return [d["id"] for d in sim.state()["documents"] if d["category"] == "ready"]


def send(stack: Stack, *bodies: str) -> None:
    for body in bodies:
        stack.sqs.send_message(QueueUrl=stack.queue_url, MessageBody=body)


def letters_by_document(stack: Stack) -> dict[int | None, dict[str, str]]:
    """documentId (None when the body names none) → the message attributes, as plain strings."""
    found: dict[int | None, dict[str, str]] = {}
    for letter in dead_letters(stack):
        attributes = {k: v["StringValue"] for k, v in letter["MessageAttributes"].items()}
        raw = attributes.get("documentId")
        found[int(raw) if raw is not None else None] = {**attributes, "body": letter["Body"]}
    return found


def assert_booked_once(sim: Simulator, stack: Stack, *doc_ids: int) -> None:
    ledger = Ledger(stack.dynamodb, stack.ledger_table)
    for doc_id in doc_ids:
        document = sim.document(doc_id)
        assert document is not None
        assert document["bookings"] == 1, doc_id
        state = ledger.states.state(doc_id)
        assert state is not None
        assert state.status is Status.BOOKED


def assert_one_pass(drive: DriveReport) -> None:
    """Bad input is dead-lettered at once, not after a retry; good input succeeds at once."""
    assert (drive.invocations, drive.failures) == (1, 0)


# --- queue messages ---------------------------------------------------------------------------

MALFORMED_BODIES = {
    "not JSON": "{not json",
    "truncated JSON": '{"documentId": 10',
    "a JSON array": "[10001, 10002]",
    "a JSON string": '"10001"',
    "JSON null": "null",
    "no documentId": '{"id": 10001}',
    "documentId not a number": '{"documentId": "ten"}',
    "documentId zero": '{"documentId": 0}',
    "documentId negative": '{"documentId": -4}',
    "documentId a fraction": '{"documentId": 10001.5}',
    "documentId infinite": '{"documentId": 1e400}',
    "an unexpected field": '{"documentId": 10001, "command": "delete"}',
    "an item of the wrong shape": '{"documentId": 10001, "item": {"id": "x", "document": 3}}',
    "a bad listing time": '{"documentId": 10001, "listedAt": "yesterday"}',
    "negative deferrals": '{"documentId": 10001, "deferrals": -1}',
    "deeply nested JSON": "[" * 5000 + "]" * 5000,
    "control characters": "\x01\x02\x03",
}


@pytest.mark.parametrize("body", MALFORMED_BODIES.values(), ids=MALFORMED_BODIES.keys())
def test_a_malformed_message_is_dead_lettered_with_its_reason_and_the_batch_goes_on(
    monkeypatch: pytest.MonkeyPatch, sim: Simulator, stack: Stack, body: str
) -> None:
    good = ready_ids(sim)[:2]
    with handlers_env(monkeypatch, stack, sim) as (_, processor):
        send(stack, json.dumps({"documentId": good[0]}), body, json.dumps({"documentId": good[1]}))
        drive = drive_queue(stack, processor.lambda_handler, batch_size=10)

    assert_one_pass(drive)
    assert_booked_once(sim, stack, *good)
    (letter,) = dead_letters(stack)
    attributes = letter["MessageAttributes"]
    assert attributes["errorType"]["StringValue"] == "InvalidMessage"
    reason = attributes["failureReason"]["StringValue"]
    assert reason.startswith("invalid message: ")
    assert len(reason) < 400
    assert letter["Body"] == body  # kept verbatim, for a person to read and fix


def test_an_empty_body_is_dead_lettered_and_the_batch_goes_on(
    monkeypatch: pytest.MonkeyPatch, sim: Simulator, stack: Stack
) -> None:
    """SQS refuses an empty body, but an event can carry one (a test event, a bad replay)."""
    good = ready_ids(sim)[0]
    with handlers_env(monkeypatch, stack, sim) as (_, processor):
        send(stack, json.dumps({"documentId": good}))
        received = stack.sqs.receive_message(QueueUrl=stack.queue_url)["Messages"]
        empty = {**received[0], "MessageId": str(uuid.uuid4()), "Body": ""}
        event = sqs_event([empty, *received], "arn:aws:sqs:eu-west-1:123456789012:documents")
        response = processor.lambda_handler(event, FakeLambdaContext())

    assert response == {"batchItemFailures": []}
    assert_booked_once(sim, stack, good)
    (letter,) = dead_letters(stack)
    assert letter["MessageAttributes"]["errorType"]["StringValue"] == "InvalidMessage"
    assert "invalid message" in letter["MessageAttributes"]["failureReason"]["StringValue"]


def test_an_oversized_message_is_dead_lettered_with_a_short_reason(
    monkeypatch: pytest.MonkeyPatch, sim: Simulator, stack: Stack
) -> None:
    good = ready_ids(sim)[0]
    padding = "x" * 300_000  # over the poller's 200 kB and SQS's old 256 KiB
    oversized = json.dumps({"documentId": good, "padding": padding})
    with handlers_env(monkeypatch, stack, sim) as (_, processor):
        send(stack, oversized, json.dumps({"documentId": good}))
        drive = drive_queue(stack, processor.lambda_handler, batch_size=10)

    assert_one_pass(drive)
    assert_booked_once(sim, stack, good)
    (letter,) = dead_letters(stack)
    reason = letter["MessageAttributes"]["failureReason"]["StringValue"]
    assert reason.startswith("invalid message")
    assert "padding" in reason
    assert "xxxxxxxx" not in reason  # the reason names the problem, it does not echo the input
    assert len(reason) < 400


def test_an_oversized_but_valid_listing_is_processed(
    monkeypatch: pytest.MonkeyPatch, sim: Simulator, stack: Stack
) -> None:
    """A long comment makes a big message, not a bad one."""
    item = raw_item(90001, comment="c" * 150_000)
    sim.add_documents([item], category="custom")
    with handlers_env(monkeypatch, stack, sim) as (poller, processor):
        report = poller.lambda_handler({}, FakeLambdaContext(300))
        drive_queue(stack, processor.lambda_handler, batch_size=10)

    assert report["enqueued"] == report["listed"] == 13
    assert_booked_once(sim, stack, 90001, *ready_ids(sim))


def test_an_unknown_document_is_dead_lettered_at_once_and_the_batch_goes_on(
    monkeypatch: pytest.MonkeyPatch, sim: Simulator, stack: Stack
) -> None:
    good = ready_ids(sim)[0]
    with handlers_env(monkeypatch, stack, sim) as (_, processor):
        send(stack, json.dumps({"documentId": 999_999}), json.dumps({"documentId": good}))
        drive = drive_queue(stack, processor.lambda_handler, batch_size=10)

    assert_one_pass(drive)
    assert_booked_once(sim, stack, good)
    letter = letters_by_document(stack)[999_999]
    assert letter["errorType"] == "NotFoundError"
    assert letter["failureReason"].startswith("unknown to Lucca and to the ledger: get -> 404")
    state = Ledger(stack.dynamodb, stack.ledger_table).states.state(999_999)
    assert state is not None
    assert state.status is Status.FAILED


# --- documents already booked or gone ---------------------------------------------------------


def book_behind_our_back(sim: Simulator, doc_id: int) -> None:
    """Another integration (or a person in Lucca) books the document while its message waits."""
    response = httpx.post(
        sim.url + BOOK_PATH.format(id=doc_id),
        headers={"Authorization": f"lucca application={sim.api_key}"},
    )
    assert response.status_code == 200


def test_a_document_we_booked_is_not_booked_again_nor_asked_about(
    monkeypatch: pytest.MonkeyPatch, sim: Simulator, stack: Stack
) -> None:
    doc_id, other = ready_ids(sim)[:2]
    with handlers_env(monkeypatch, stack, sim) as (_, processor):
        send(stack, json.dumps({"documentId": doc_id}))
        drive_queue(stack, processor.lambda_handler)
        before = sim.state()["totals"]["requests"]
        send(stack, json.dumps({"documentId": doc_id}), json.dumps({"documentId": other}))
        drive = drive_queue(stack, processor.lambda_handler, batch_size=10)

    assert_one_pass(drive)
    assert_booked_once(sim, stack, doc_id, other)
    # Only the other document's GET and book: the booked one costs no request.
    assert sim.state()["totals"]["requests"] == before + 2
    assert dead_letters(stack) == []


@pytest.mark.parametrize("listed", [True, False], ids=["listed message", "bare message"])
def test_a_document_booked_by_someone_else_is_never_booked_again_nor_recorded_booked(
    monkeypatch: pytest.MonkeyPatch, sim: Simulator, stack: Stack, listed: bool
) -> None:
    """Booked in Lucca while its message waited: not booked again, and not recorded as booked
    by us. Listed by our poller: recorded gone (a person's move, no dead letter). A bare id no
    listing of ours showed (a message sent by hand): dead-lettered as unknown. The rest goes
    through."""
    with handlers_env(monkeypatch, stack, sim) as (poller, processor):
        if listed:
            poller.lambda_handler({}, FakeLambdaContext(300))
        else:
            send(stack, *(json.dumps({"documentId": i}) for i in ready_ids(sim)))
        taken = ready_ids(sim)[0]
        book_behind_our_back(sim, taken)
        drive_queue(stack, processor.lambda_handler, batch_size=10)

    document = sim.document(taken)
    assert document is not None
    assert (document["bookings"], document["bookAttempts"]) == (1, 2 if listed else 1)
    state = Ledger(stack.dynamodb, stack.ledger_table).states.state(taken)
    assert state is not None
    if listed:
        assert state.status is Status.GONE
        assert state.reasons[0].startswith("not_in_inbox: book -> 404")
        assert taken not in letters_by_document(stack)
    else:
        assert state.status is Status.FAILED
        letter = letters_by_document(stack)[taken]
        assert letter["failureReason"].startswith("unknown to Lucca and to the ledger: ")
        assert letter["errorType"] == "NotFoundError"
    assert_booked_once(sim, stack, *ready_ids(sim)[1:])


# --- Lucca's answers --------------------------------------------------------------------------

Script = Callable[[httpx.Request, httpx.BaseTransport], httpx.Response]


class ScriptedLucca(httpx.BaseTransport):
    """The simulator, except for scripted answers keyed by (method, path)."""

    def __init__(self) -> None:
        self.real = httpx.HTTPTransport()
        self.scripts: dict[tuple[str, str], Script] = {}

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        script = self.scripts.get((request.method, request.url.path))
        if script is None:
            return self.real.handle_request(request)
        return script(request, self.real)

    def close(self) -> None:
        self.real.close()


def answer(status: int, body: bytes | str = b"", content_type: str | None = None) -> Script:
    """Answer this instead of asking the simulator."""
    headers = {"content-type": content_type} if content_type else {}
    content = body.encode() if isinstance(body, str) else body

    def script(request: httpx.Request, real: httpx.BaseTransport) -> httpx.Response:
        return httpx.Response(status, content=content, headers=headers)

    return script


def forward_then(status: int, body: str, content_type: str) -> Script:
    """Let the simulator do it, then answer this instead of what it said."""

    def script(request: httpx.Request, real: httpx.BaseTransport) -> httpx.Response:
        response = real.handle_request(request)
        response.read()
        response.close()
        return httpx.Response(status, content=body.encode(), headers={"content-type": content_type})

    return script


@contextmanager
def scripted(monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptedLucca]:
    lucca = ScriptedLucca()

    def client_factory(*args: Any, **kwargs: Any) -> LuccaClient:
        kwargs["http"] = httpx.Client(transport=lucca, timeout=DEFAULT_TIMEOUT)
        return LuccaClient(*args, **kwargs)

    monkeypatch.setattr(wiring_shared, "LuccaClient", client_factory)
    yield lucca


BAD_DOCUMENT_ANSWERS = {
    "an HTML page": (HTML_PAGE, "text/html", "expected JSON, got '502 Bad Gateway'"),
    "an empty body": ("", "application/json", "not an inbox item: (root)"),
    "plain text": ("OK", "text/plain", "expected JSON, got 'OK'"),
    "a list instead of an item": ('{"items": []}', "application/json", "not an inbox item"),
    "an item without its document": ('{"id": 5}', "application/json", "document: Field required"),
}


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    BAD_DOCUMENT_ANSWERS.values(),
    ids=BAD_DOCUMENT_ANSWERS.keys(),
)
def test_a_document_answered_with_garbage_is_dead_lettered_and_the_batch_goes_on(
    monkeypatch: pytest.MonkeyPatch,
    sim: Simulator,
    stack: Stack,
    body: str,
    content_type: str,
    expected: str,
) -> None:
    bad, *good = ready_ids(sim)[:3]
    with scripted(monkeypatch) as lucca, handlers_env(monkeypatch, stack, sim) as (_, processor):
        lucca.scripts["GET", DOCUMENT_PATH.format(id=bad)] = answer(200, body, content_type)
        send(stack, *(json.dumps({"documentId": i}) for i in (bad, *good)))
        drive = drive_queue(stack, processor.lambda_handler, batch_size=10)

    assert_one_pass(drive)
    assert_booked_once(sim, stack, *good)
    letter = letters_by_document(stack)[bad]
    assert letter["errorType"] == "InvalidResponseError"
    assert letter["failureReason"].startswith("get -> 200: ")
    assert expected in letter["failureReason"]
    document = sim.document(bad)
    assert document is not None
    assert document["bookings"] == document["puts"] == 0


CRAFTED_ITEMS = {
    "an amount that is text": (
        {"amountIncludingTaxes": {"excludingTaxes": {"value": "cent", "currency": "EUR"}}},
        "document.amountIncludingTaxes.excludingTaxes.value",
    ),
    "a date in the wrong format": ({"documentDate": "31/12/2026"}, "document.documentDate"),
    "an owner without an id": ({"owner": {"name": "Ada"}}, "document.owner.id"),
    "a flag that is not a boolean": ({"intraCommunityTaxes": "maybe"}, "intraCommunityTaxes"),
}


@pytest.mark.parametrize(("changes", "field"), CRAFTED_ITEMS.values(), ids=CRAFTED_ITEMS.keys())
def test_an_item_of_the_wrong_shape_is_dead_lettered_naming_the_field(
    monkeypatch: pytest.MonkeyPatch,
    sim: Simulator,
    stack: Stack,
    changes: dict[str, Any],
    field: str,
) -> None:
    """Listed as it is (the poller still queues its id), fetched again, refused by name."""
    sim.add_documents([raw_item(90001, **changes)], category="custom")
    with handlers_env(monkeypatch, stack, sim) as (poller, processor):
        report = poller.lambda_handler({}, FakeLambdaContext(300))
        drive_queue(stack, processor.lambda_handler, batch_size=10)

    assert (report["listed"], report["enqueued"], report["invalidItems"]) == (13, 13, 1)
    letter = letters_by_document(stack)[90001]
    assert letter["errorType"] == "InvalidResponseError"
    assert letter["failureReason"].startswith("get -> 200: not an inbox item: ")
    assert field in letter["failureReason"]
    assert sim.document(90001)["bookings"] == 0  # type: ignore[index]
    assert_booked_once(sim, stack, *ready_ids(sim))


NEW_VALUES = {
    "a document type Lucca added": ({"type": "Receipt"}, "document.type", "'Receipt'"),
    "an OCR status Lucca added": ({"ocrStatus": "Done"}, "document.ocrStatus", "'Done'"),
}


@pytest.mark.parametrize(("changes", "field", "value"), NEW_VALUES.values(), ids=NEW_VALUES.keys())
def test_a_value_lucca_added_holds_its_document_naming_it_and_no_other(
    monkeypatch: pytest.MonkeyPatch,
    sim: Simulator,
    stack: Stack,
    changes: dict[str, Any],
    field: str,
    value: str,
) -> None:
    """Readable (the value is kept), never booked blindly, held with the value named; the rest
    of the page and the batch go on."""
    sim.add_documents([raw_item(90001, **changes)], category="custom")
    with handlers_env(monkeypatch, stack, sim) as (poller, processor):
        report = poller.lambda_handler({}, FakeLambdaContext(300))
        drive_queue(stack, processor.lambda_handler, batch_size=10)

    assert (report["listed"], report["invalidItems"]) == (13, 0)
    state = Ledger(stack.dynamodb, stack.ledger_table).states.state(90001)
    assert state is not None
    assert state.status is Status.HELD
    (reason,) = [r for r in state.reasons if r.startswith("unknown_value:")]
    assert field in reason
    assert value in reason
    assert sim.document(90001)["bookings"] == 0  # type: ignore[index]
    assert 90001 not in letters_by_document(stack)
    assert_booked_once(sim, stack, *ready_ids(sim))


def test_a_document_gone_from_the_inbox_is_never_recorded_as_booked(
    monkeypatch: pytest.MonkeyPatch, sim: Simulator, stack: Stack
) -> None:
    """Deleted in Lucca while its listed message waited: the book call and the check both say
    404. Nothing of ours booked it, so the ledger must not say BOOKED: it says gone."""
    gone, *good = ready_ids(sim)
    with scripted(monkeypatch) as lucca, handlers_env(monkeypatch, stack, sim) as (poller, proc):
        poller.lambda_handler({}, FakeLambdaContext(300))
        not_found = answer(404, '{"title": "Not Found", "status": 404}', "application/json")
        lucca.scripts["POST", BOOK_PATH.format(id=gone)] = not_found
        lucca.scripts["GET", DOCUMENT_PATH.format(id=gone)] = not_found
        drive_queue(stack, proc.lambda_handler, batch_size=10)

    state = Ledger(stack.dynamodb, stack.ledger_table).states.state(gone)
    assert state is not None
    assert state.status is Status.GONE  # a person's move: recorded, not dead-lettered
    assert state.reasons[0].startswith("not_in_inbox: book -> 404")
    assert gone not in letters_by_document(stack)
    assert_booked_once(sim, stack, *good)


@pytest.mark.parametrize(
    ("status", "body", "content_type"),
    [
        (200, "Booked.", "text/plain"),
        (200, HTML_PAGE, "text/html"),
        (201, "", "application/json"),
        (202, "{not json", "application/json"),
    ],
    ids=["text", "HTML", "empty 201", "broken JSON 202"],
)
def test_a_booking_answered_2xx_with_any_body_is_a_success(
    monkeypatch: pytest.MonkeyPatch,
    sim: Simulator,
    stack: Stack,
    status: int,
    body: str,
    content_type: str,
) -> None:
    """The book endpoint's success code and body are not published: any 2xx is success."""
    doc_id, *good = ready_ids(sim)[:3]
    with scripted(monkeypatch) as lucca, handlers_env(monkeypatch, stack, sim) as (_, proc):
        lucca.scripts["POST", BOOK_PATH.format(id=doc_id)] = forward_then(
            status, body, content_type
        )
        send(stack, *(json.dumps({"documentId": i}) for i in (doc_id, *good)))
        drive = drive_queue(stack, proc.lambda_handler, batch_size=10)

    assert_one_pass(drive)
    assert_booked_once(sim, stack, doc_id, *good)
    last = Ledger(stack.dynamodb, stack.ledger_table).queries.history(doc_id)[-1]
    assert last.kind == "booked"
    assert "confirmedBy" not in last.detail  # booked on its answer, not on a second look
    assert dead_letters(stack) == []


BAD_LIST_ANSWERS = {
    "an HTML page": (answer(200, HTML_PAGE, "text/html"), "expected JSON, got '502 Bad Gateway'"),
    "an empty body": (answer(200), "list response has no 'items' array"),
    "a data wrapper": (
        answer(200, '{"data": {"items": []}}', "application/json"),
        "list response has no 'items' array",
    ),
    "items that are not a list": (
        answer(200, '{"items": {"0": {}}}', "application/json"),
        "list response has no 'items' array",
    ),
}


@pytest.mark.parametrize(
    ("script", "expected"), BAD_LIST_ANSWERS.values(), ids=BAD_LIST_ANSWERS.keys()
)
def test_a_garbled_listing_page_stops_the_poll_clearly_and_keeps_what_was_listed(
    monkeypatch: pytest.MonkeyPatch, sim: Simulator, stack: Stack, script: Script, expected: str
) -> None:
    real_pages: list[str] = []

    def second_page_garbled(request: httpx.Request, real: httpx.BaseTransport) -> httpx.Response:
        if request.url.params.get("page") == "2":
            return script(request, real)
        real_pages.append(request.url.params["page"])
        return real.handle_request(request)

    with (
        scripted(monkeypatch) as lucca,
        handlers_env(monkeypatch, stack, sim, PAGE_SIZE="5") as (poller, processor),
    ):
        lucca.scripts["GET", LIST_PATH] = second_page_garbled
        # The invocation fails (so the poller's alarm calls a person) ...
        with pytest.raises(InvalidResponseError, match=re.escape(expected)) as failed:
            poller.lambda_handler({}, FakeLambdaContext(300))
        drive_queue(stack, processor.lambda_handler, batch_size=10)

    assert str(failed.value).startswith("list -> 200: ")
    # ... and what was listed before the garbled page was queued and processed all the same.
    first_page = sorted(d["id"] for d in sim.state()["documents"])[:5]
    booked = {d["id"] for d in sim.state()["documents"] if d["bookings"]}
    assert booked
    assert booked <= set(first_page)


def test_a_first_page_without_a_count_stops_the_poll_clearly(
    monkeypatch: pytest.MonkeyPatch, sim: Simulator, stack: Stack
) -> None:
    with scripted(monkeypatch) as lucca, handlers_env(monkeypatch, stack, sim) as (poller, _):
        lucca.scripts["GET", LIST_PATH] = answer(200, '{"items": []}', "application/json")
        with pytest.raises(InvalidResponseError) as failed:
            poller.lambda_handler({}, FakeLambdaContext(300))
    assert str(failed.value) == ("list -> 200: list response has no valid 'count' (got None)")
    assert (
        int(
            stack.sqs.get_queue_attributes(
                QueueUrl=stack.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
            )["Attributes"]["ApproximateNumberOfMessages"]
        )
        == 0
    )


# --- configuration ----------------------------------------------------------------------------

POLLER_ENV = {
    "LUCCA_BASE_URL": "https://acme.ilucca.net",
    "LUCCA_API_KEY_SECRET": "lucca/api-key",
    "BUDGET_TABLE": "budget",
    "DOCUMENTS_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/documents",
    "LEDGER_TABLE": "ledger",
}
PROCESSOR_ENV = {
    **POLLER_ENV,
    "DEAD_LETTER_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/dlq",
    "IDEMPOTENCY_TABLE": "idempotency",
}

BAD_SETTINGS = {
    "base URL not a URL": ("LUCCA_BASE_URL", "acme.ilucca.net"),
    "base URL over plain http": ("LUCCA_BASE_URL", "http://acme.ilucca.net"),
    "base URL of another scheme": ("LUCCA_BASE_URL", "ftp://acme.ilucca.net"),
    "base URL without a host": ("LUCCA_BASE_URL", "https://"),
    "base URL with credentials": ("LUCCA_BASE_URL", "https://user:pw@acme.ilucca.net"),
    "base URL with a query": ("LUCCA_BASE_URL", "https://acme.ilucca.net/?tenant=1"),
    "empty secret name": ("LUCCA_API_KEY_SECRET", ""),
    "empty queue": ("DOCUMENTS_QUEUE_URL", ""),
    "budget above the tenant's 50": ("BUDGET_LIMIT", "60"),
    "budget of zero": ("BUDGET_LIMIT", "0"),
    "budget not a number": ("BUDGET_LIMIT", "forty"),
    "negative budget wait": ("BUDGET_MAX_WAIT_SECONDS", "-1"),
    "zero budget window": ("BUDGET_WINDOW_SECONDS", "0"),
}
BAD_POLLER_SETTINGS = {
    "filter overriding the paging": ("INBOX_FILTERS", "limit=5"),
    "filter without a value": ("INBOX_FILTERS", "document.type="),
    "filter that is not a query": ("INBOX_FILTERS", "just-words"),
    "filter given twice": ("INBOX_FILTERS", "document.type=Invoice&document.type=CreditNote"),
    "page over Lucca's 1000": ("PAGE_SIZE", "5000"),
    "claim shorter than a minute": ("CLAIM_TTL_SECONDS", "5"),
    "held count more often than a minute": ("HELD_COUNT_SECONDS", "59"),
    "held count not a number": ("HELD_COUNT_SECONDS", "hourly"),
}
BAD_PROCESSOR_SETTINGS = {
    "empty DLQ": ("DEAD_LETTER_QUEUE_URL", ""),
    "dry run neither yes nor no": ("DRY_RUN", "perhaps"),
    "negative ceiling": ("MAX_AUTO_AMOUNT", "-5"),
    "ceiling not a number": ("MAX_AUTO_AMOUNT", "lots"),
    "retention of zero days": ("LEDGER_RETENTION_DAYS", "0"),
}


@pytest.mark.parametrize(
    ("variable", "value"),
    [*BAD_SETTINGS.values(), *BAD_POLLER_SETTINGS.values()],
    ids=[*BAD_SETTINGS, *BAD_POLLER_SETTINGS],
)
def test_a_bad_poller_setting_is_refused_naming_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError, match=rf"^invalid configuration: {variable}: "):
        PollerSettings.from_env({**POLLER_ENV, variable: value})


@pytest.mark.parametrize(
    ("variable", "value"),
    [*BAD_SETTINGS.values(), *BAD_PROCESSOR_SETTINGS.values()],
    ids=[*BAD_SETTINGS, *BAD_PROCESSOR_SETTINGS],
)
def test_a_bad_processor_setting_is_refused_naming_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError, match=rf"^invalid configuration: {variable}: "):
        ProcessorSettings.from_env({**PROCESSOR_ENV, variable: value})


def test_every_missing_variable_is_named_at_once() -> None:
    with pytest.raises(ConfigError) as raised:
        ProcessorSettings.from_env({})
    for variable in PROCESSOR_ENV:
        assert f"{variable}: Field required" in str(raised.value)


def test_the_loopback_simulator_may_use_plain_http() -> None:
    settings = PollerSettings.from_env({**POLLER_ENV, "LUCCA_BASE_URL": "http://127.0.0.1:8900"})
    assert settings.lucca_base_url == "http://127.0.0.1:8900"


BAD_RULES = {
    "not JSON": ("{not json", "not valid JSON"),
    "a typo in a field": (
        '{"rules": [{"name": "x", "set": {"document.acountingLabel": "a"}}]}',
        "did you mean 'accountingLabel'?",
    ),
    "a read-only field": (
        '{"rules": [{"name": "x", "set": {"document.ocrStatus": "Processed"}}]}',
        "read-only",
    ),
    "an unknown key": ('{"rulez": []}', "unknown key 'rulez'"),
}


@pytest.mark.parametrize(("text", "expected"), BAD_RULES.values(), ids=BAD_RULES.keys())
def test_bad_rules_are_refused_naming_the_file_and_the_rule(
    tmp_path: Path, text: str, expected: str
) -> None:
    path = tmp_path / "rules.json"
    path.write_text(text)
    settings = ProcessorSettings.from_env({**PROCESSOR_ENV, "RULES_SOURCE": str(path)})
    with pytest.raises(RulesConfigError) as raised:
        load_processor_rules(settings)
    assert str(raised.value).startswith(str(path))
    assert expected in str(raised.value)


def test_a_missing_rules_file_is_refused_clearly() -> None:
    settings = ProcessorSettings.from_env({**PROCESSOR_ENV, "RULES_SOURCE": "/no/such/rules.json"})
    with pytest.raises(RulesConfigError, match="cannot read the rules file"):
        load_processor_rules(settings)


@pytest.mark.parametrize(
    "secret", ["   ", "\n\t", b"  \n"], ids=["spaces", "blank lines", "binary blank"]
)
def test_an_empty_api_key_is_refused_clearly(secret: str | bytes) -> None:
    """Secrets Manager refuses an empty value; a blank one is the empty key it can hold."""
    with mock_aws():
        stack = create_stack("placeholder")
        if isinstance(secret, bytes):
            stack.secrets.put_secret_value(SecretId=stack.secret_name, SecretBinary=secret)
        else:
            stack.secrets.put_secret_value(SecretId=stack.secret_name, SecretString=secret)
        settings = PollerSettings.from_env(
            {**POLLER_ENV, "LUCCA_API_KEY_SECRET": stack.secret_name}
        )
        parameters.clear_caches()
        with pytest.raises(ValueError, match=r"^secret 'lucca/api-key' holds an empty API key$"):
            read_api_key(settings)


@pytest.mark.filterwarnings("ignore:No application metrics to publish")
def test_a_handler_with_bad_configuration_fails_at_cold_start_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, sim: Simulator, stack: Stack
) -> None:
    with handlers_env(monkeypatch, stack, sim, LUCCA_BASE_URL="http://example.ilucca.net") as (
        poller,
        processor,
    ):
        with pytest.raises(ConfigError, match=r"LUCCA_BASE_URL: Value error, .* must use https"):
            poller.lambda_handler({}, FakeLambdaContext())
        with pytest.raises(ConfigError, match="LUCCA_BASE_URL"):
            processor.lambda_handler({"Records": []}, FakeLambdaContext())


def test_a_wrong_key_fails_the_poll_so_the_alarm_calls_a_person(
    monkeypatch: pytest.MonkeyPatch, sim: Simulator, stack: Stack
) -> None:
    stack.secrets.put_secret_value(SecretId=stack.secret_name, SecretString="not-the-key")
    with (
        handlers_env(monkeypatch, stack, sim) as (poller, _),
        pytest.raises(AuthError, match="list -> 401"),
    ):
        poller.lambda_handler({}, FakeLambdaContext(300))
    assert sim.state()["totals"]["byEndpoint"]["list"] == 1  # no retry on 401
