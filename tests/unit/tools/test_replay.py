"""DLQ replay (``cleemy-booker replay``) against moto, and the ``events/`` fixtures
through the real handlers."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from cleemy_booker.ledger import Ledger, Status
from cleemy_booker_tools.replay import (
    EXIT_AWS_ERROR,
    EXIT_OK,
    list_dead_letters,
    main,
    move_by_hand,
    queues_of_stack,
    replay,
    start_move_task,
)
from local.lucca_simulator import Simulator
from tests.aws import Stack, stack_fixture
from tests.factories import EXAMPLE_RULES_FILE, raw_item
from tests.harness import (
    FakeLambdaContext,
    dead_letters,
    drive_queue,
    handlers_env,
    simulator_fixture,
)

ROOT = Path(__file__).resolve().parents[3]
EVENTS = ROOT / "events"


stack = stack_fixture("key", max_receive_count=2)


def dead_letter(
    stack: Stack, document_id: int, reason: str = "book -> 400: Document locked", **extra: str
) -> None:
    """A message as the processor dead-letters it (body, failureReason, errorType, ...)."""
    attributes: dict[str, Any] = {
        "failureReason": {"DataType": "String", "StringValue": reason},
        "errorType": {"DataType": "String", "StringValue": "PermanentError"},
        "sourceMessageId": {"DataType": "String", "StringValue": f"m-{document_id}"},
        "documentId": {"DataType": "Number", "StringValue": str(document_id)},
    }
    attributes |= {name: {"DataType": "String", "StringValue": v} for name, v in extra.items()}
    stack.sqs.send_message(
        QueueUrl=stack.dlq_url,
        MessageBody=json.dumps({"documentId": document_id}),
        MessageAttributes=attributes,
    )


def redriven(stack: Stack, body: str) -> None:
    """A message SQS moved here itself after maxReceiveCount receives: no reason attached."""
    stack.sqs.send_message(QueueUrl=stack.queue_url, MessageBody=body)
    for _ in range(3):
        stack.sqs.receive_message(QueueUrl=stack.queue_url, VisibilityTimeout=0)


def visible(stack: Stack, url: str) -> int:
    attributes = stack.sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def queued(stack: Stack) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    while batch := stack.sqs.receive_message(
        QueueUrl=stack.queue_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    ).get("Messages", []):
        messages += batch
    return messages


class FakeCloudFormation:
    def __init__(self, outputs: dict[str, str]) -> None:
        self.outputs = outputs
        self.asked: list[str] = []

    def describe_stacks(self, StackName: str) -> dict[str, Any]:
        self.asked.append(StackName)
        outputs = [{"OutputKey": k, "OutputValue": v} for k, v in self.outputs.items()]
        return {"Stacks": [{"StackName": StackName, "Outputs": outputs}]}


class MoveTaskSqs:
    """moto's SQS, with ``StartMessageMoveTask`` answered as AWS would (or refused)."""

    def __init__(self, sqs: Any, error: ClientError | None = None) -> None:
        self._sqs = sqs
        self.error = error
        self.tasks: list[dict[str, str]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sqs, name)

    def start_message_move_task(self, **kwargs: str) -> dict[str, str]:
        if self.error is not None:
            raise self.error
        self.tasks.append(kwargs)
        return {"TaskHandle": "eyJ0YXNrSWQiOiAiMSJ9"}


def client_error(code: str, status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "StartMessageMoveTask",
    )


def run(argv: list[str], stack: Stack, cloudformation: Any = None) -> tuple[int, str]:
    out = io.StringIO()
    code = main(argv, clients=lambda _: (cloudformation, stack.sqs), out=out)
    return code, out.getvalue()


# --- listing ----------------------------------------------------------------------------------


def test_the_dry_run_lists_each_document_and_why_and_moves_nothing(stack: Stack) -> None:
    dead_letter(stack, 10081, "book -> 400: Document locked - pending approval")
    dead_letter(stack, 999999, "not in the inbox: get -> 404: Not Found")
    redriven(stack, '{"documentId": 10090}')
    assert visible(stack, stack.dlq_url) == 3

    code, out = run(["--dlq-url", stack.dlq_url, "--queue-url", stack.queue_url], stack)

    assert code == EXIT_OK
    assert out.startswith(f"3 message(s) in {stack.dlq_url}")
    assert "document 10081  [PermanentError]" in out
    assert "book -> 400: Document locked - pending approval" in out
    assert "not in the inbox: get -> 404" in out
    assert "document 10090  [unknown]" in out
    assert "no reason attached: moved here by the queue's redrive policy" in out
    assert "first received" in out
    assert "Dry run: nothing moved. Add --yes" in out
    # Left as found: every message visible again, nothing in the documents queue.
    assert visible(stack, stack.dlq_url) == 3
    assert visible(stack, stack.queue_url) == 0


def test_the_listing_carries_reason_type_and_times(stack: Stack) -> None:
    dead_letter(stack, 10081)
    (letter,) = list_dead_letters(stack.sqs, stack.dlq_url, wait_seconds=0)
    assert letter.document_id == 10081
    assert letter.failure_reason == "book -> 400: Document locked"
    assert letter.error_type == "PermanentError"
    assert letter.dead_lettered_at is not None
    assert letter.first_received_at is not None
    assert letter.as_dict()["documentId"] == 10081


def test_an_unreadable_body_is_listed_too(stack: Stack) -> None:
    stack.sqs.send_message(
        QueueUrl=stack.dlq_url,
        MessageBody="{not json",
        MessageAttributes={
            "failureReason": {"DataType": "String", "StringValue": "invalid message: ..."},
            "errorType": {"DataType": "String", "StringValue": "InvalidMessage"},
        },
    )
    code, out = run(["--dlq-url", stack.dlq_url, "--queue-url", stack.queue_url, "--json"], stack)
    assert code == EXIT_OK
    (row,) = json.loads(out)
    assert (row["documentId"], row["errorType"]) == (None, "InvalidMessage")


def test_an_empty_dlq_says_so(stack: Stack) -> None:
    code, out = run(["--dlq-url", stack.dlq_url, "--queue-url", stack.queue_url], stack)
    assert (code, out.strip()) == (EXIT_OK, f"0 message(s) in {stack.dlq_url}")


# --- moving -----------------------------------------------------------------------------------


def test_yes_moves_everything_back_by_hand_where_move_tasks_are_unavailable(
    stack: Stack,
) -> None:
    """moto has no StartMessageMoveTask: receive → send → delete, body kept, reasons dropped."""
    for doc_id in range(10001, 10024):  # more than two batches of ten
        dead_letter(stack, doc_id, traceparent=f"t-{doc_id}")
    redriven(stack, '{"documentId": 10090}')

    code, out = run(["--dlq-url", stack.dlq_url, "--queue-url", stack.queue_url, "--yes"], stack)

    assert code == EXIT_OK
    assert "Moved 24 message(s)" in out
    assert "StartMessageMoveTask is not available here" in out
    assert visible(stack, stack.dlq_url) == 0
    messages = queued(stack)
    bodies = sorted(json.loads(m["Body"])["documentId"] for m in messages)
    assert bodies == [*range(10001, 10024), 10090]
    for message in messages:
        attributes = message.get("MessageAttributes", {})
        # The failure attributes are gone; the message's own ones are kept.
        assert not {"failureReason", "errorType", "sourceMessageId", "documentId"} & set(attributes)
        if json.loads(message["Body"])["documentId"] != 10090:
            assert set(attributes) == {"traceparent"}


def test_document_id_moves_only_that_document(stack: Stack) -> None:
    for doc_id in (10001, 10002, 10003):
        dead_letter(stack, doc_id)
    dead_letter(stack, 10002, "a second failure of the same document")

    report = move_by_hand(stack.sqs, stack.dlq_url, stack.queue_url, document_id=10002)

    assert (report.moved, report.left, report.failed) == (2, 2, 0)
    assert report.documents == [10002, 10002]
    assert [json.loads(m["Body"])["documentId"] for m in queued(stack)] == [10002, 10002]
    remaining = list_dead_letters(stack.sqs, stack.dlq_url, wait_seconds=0)
    assert sorted(letter.document_id or 0 for letter in remaining) == [10001, 10003]


def test_document_id_on_the_command_line_uses_the_message_by_message_path(stack: Stack) -> None:
    dead_letter(stack, 10001)
    dead_letter(stack, 10002)
    sqs = MoveTaskSqs(stack.sqs)
    out = io.StringIO()
    code = main(
        ["--dlq-url", stack.dlq_url, "--queue-url", stack.queue_url, "--yes", "--document-id",
         "10001"],
        clients=lambda _: (None, sqs),
        out=out,
    )  # fmt: skip
    assert code == EXIT_OK
    assert sqs.tasks == []  # a move task moves everything: not for one document
    assert "Moved 1 message(s)" in out.getvalue()
    assert visible(stack, stack.dlq_url) == 1


def test_yes_starts_a_message_move_task_from_the_dlq_to_the_queue_on_aws(stack: Stack) -> None:
    dead_letter(stack, 10001)
    sqs = MoveTaskSqs(stack.sqs)
    report = replay(sqs, stack.dlq_url, stack.queue_url)  # type: ignore[arg-type]
    assert report.method == "StartMessageMoveTask"
    assert report.task_handle == "eyJ0YXNrSWQiOiAiMSJ9"
    arn = "arn:aws:sqs:eu-west-1:123456789012:"
    assert sqs.tasks == [{"SourceArn": arn + "documents-dlq", "DestinationArn": arn + "documents"}]
    assert visible(stack, stack.dlq_url) == 1  # SQS moves them, not us


@pytest.mark.parametrize("code", ["InvalidAction", "UnsupportedOperation", "NotImplemented"])
def test_an_emulator_refusing_move_tasks_falls_back_to_moving_by_hand(
    stack: Stack, code: str
) -> None:
    dead_letter(stack, 10001)
    sqs = MoveTaskSqs(stack.sqs, client_error(code))
    report = replay(sqs, stack.dlq_url, stack.queue_url)  # type: ignore[arg-type]
    assert (report.method, report.moved) == ("receive-send-delete", 1)
    assert visible(stack, stack.queue_url) == 1


def test_a_refusal_for_want_of_rights_is_reported_not_worked_around(stack: Stack) -> None:
    dead_letter(stack, 10001)
    sqs = MoveTaskSqs(stack.sqs, client_error("AccessDenied", 403))
    with pytest.raises(ClientError):
        start_move_task(sqs, stack.dlq_url, stack.queue_url)  # type: ignore[arg-type]
    out = io.StringIO()
    code = main(
        ["--dlq-url", stack.dlq_url, "--queue-url", stack.queue_url, "--yes"],
        clients=lambda _: (None, sqs),
        out=out,
    )
    assert code == EXIT_AWS_ERROR
    assert visible(stack, stack.dlq_url) == 1  # nothing moved


def test_the_stack_outputs_name_the_queues(stack: Stack) -> None:
    dead_letter(stack, 10001)
    cloudformation = FakeCloudFormation(
        {"DeadLetterQueueUrl": stack.dlq_url, "DocumentsQueueUrl": stack.queue_url}
    )
    assert queues_of_stack(cloudformation, "cleemy-booker") == (stack.dlq_url, stack.queue_url)
    code, out = run(["--stack", "cleemy-booker", "--yes"], stack, cloudformation)
    assert code == EXIT_OK
    assert "Moved 1 message(s)" in out
    assert cloudformation.asked == ["cleemy-booker", "cleemy-booker"]
    assert visible(stack, stack.queue_url) == 1


def test_a_stack_without_the_outputs_is_a_clear_error(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    cloudformation = FakeCloudFormation({"DocumentsQueueUrl": stack.queue_url})
    code, _ = run(["--stack", "other-stack"], stack, cloudformation)
    assert code == EXIT_AWS_ERROR
    assert "stack 'other-stack' has no DeadLetterQueueUrl output" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["--dlq-url", "https://q/dlq"],
        ["--stack", "s", "--queue-url", "https://q/documents"],
        ["--stack", "s", "--yes", "--dry-run"],
        ["--stack", "s", "--document-id", "0"],
    ],
    ids=["nothing", "one url", "stack and url", "yes and dry run", "bad id"],
)
def test_bad_arguments_are_refused(argv: list[str], stack: Stack) -> None:
    with pytest.raises(SystemExit) as raised:
        run(argv, stack)
    assert raised.value.code == 2


# --- the whole loop: dead-lettered, fixed in Lucca, replayed, booked --------------------------


#: The inbox `make simulator` serves (200 invoices, seed 7): the events/ files name its ids.
sim = simulator_fixture(invoices=200, seed=7)
sim_stack = stack_fixture(max_receive_count=10)


def test_a_document_fixed_in_lucca_is_booked_once_after_its_replay(
    monkeypatch: pytest.MonkeyPatch, sim: Simulator, sim_stack: Stack
) -> None:
    stack = sim_stack
    rejected = [d["id"] for d in sim.state()["documents"] if d["category"] == "book_rejected"]
    ready = [d["id"] for d in sim.state()["documents"] if d["category"] == "ready"][:2]
    with handlers_env(monkeypatch, stack, sim) as (_, processor):
        for doc_id in (*rejected[:2], *ready):
            stack.sqs.send_message(
                QueueUrl=stack.queue_url, MessageBody=json.dumps({"documentId": doc_id})
            )
        drive_queue(stack, processor.lambda_handler)
        letters = list_dead_letters(stack.sqs, stack.dlq_url, wait_seconds=0)
        assert {letter.document_id for letter in letters} == set(rejected[:2])
        assert all(letter.failure_reason for letter in letters)
        sim.touch(rejected[0], category="ready")  # the pending approval is granted in Lucca
        report = move_by_hand(stack.sqs, stack.dlq_url, stack.queue_url, document_id=rejected[0])
        assert report.moved == 1
        drive_queue(stack, processor.lambda_handler)

    ledger = Ledger(stack.dynamodb, stack.ledger_table)
    for doc_id in (rejected[0], *ready):
        assert sim.document(doc_id)["bookings"] == 1  # type: ignore[index]
        assert ledger.states.state(doc_id).status is Status.BOOKED  # type: ignore[union-attr]
    assert [json.loads(m["Body"])["documentId"] for m in dead_letters(stack)] == [rejected[1]]


def book_one_then_replay(
    monkeypatch: pytest.MonkeyPatch, sim: Simulator, stack: Stack, *, forget_idempotency: bool
) -> tuple[int, dict[str, Any], int]:
    """Book a ready document, then hand the processor a replayed message for it (a new message
    id, as a DLQ move or a duplicate send gives): (document, the replay's result, the Lucca
    requests the replay made)."""
    doc_id = next(d["id"] for d in sim.state()["documents"] if d["category"] == "ready")
    with handlers_env(monkeypatch, stack, sim) as (_, processor):
        stack.sqs.send_message(
            QueueUrl=stack.queue_url, MessageBody=json.dumps({"documentId": doc_id})
        )
        drive_queue(stack, processor.lambda_handler)
        assert sim.document(doc_id)["bookings"] == 1  # type: ignore[index]
        if forget_idempotency:  # its record expired: only the ledger remembers
            table = stack.idempotency_table
            for item in stack.dynamodb.scan(TableName=table)["Items"]:
                stack.dynamodb.delete_item(TableName=table, Key={"id": item["id"]})
        runtime = processor.runtime()
        runtime.start_invocation(lambda: 60_000)
        before = len(sim.requests())
        result = runtime.handle_record(json.dumps({"documentId": doc_id}), "replayed-message")
        asked = [e for e in sim.requests()[before:] if e["documentId"] == doc_id]
    return doc_id, result, len(asked)


def test_a_replayed_booked_document_is_answered_by_its_idempotency_record(
    monkeypatch: pytest.MonkeyPatch, sim: Simulator, sim_stack: Stack
) -> None:
    doc_id, result, asked = book_one_then_replay(
        monkeypatch, sim, sim_stack, forget_idempotency=False
    )
    # The stored result of the first run, not a second decision: the idempotency record answered.
    assert result["outcome"] == "booked"
    assert asked == 0
    assert sim.document(doc_id)["bookings"] == 1  # type: ignore[index]


def test_once_its_idempotency_record_is_gone_the_ledger_still_books_nothing_twice(
    monkeypatch: pytest.MonkeyPatch, sim: Simulator, sim_stack: Stack
) -> None:
    doc_id, result, asked = book_one_then_replay(
        monkeypatch, sim, sim_stack, forget_idempotency=True
    )
    assert result["outcome"] == "already_booked"  # the ledger's BOOKED answered, not Lucca
    assert asked == 0
    assert sim.document(doc_id)["bookings"] == 1  # type: ignore[index]


# --- events/ ----------------------------------------------------------------------------------


def load_event(name: str) -> dict[str, Any]:
    event: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return event


def test_the_schedule_event_is_what_the_template_sends_and_runs_the_poller(
    monkeypatch: pytest.MonkeyPatch, sim: Simulator, sim_stack: Stack
) -> None:
    event = load_event("schedule.json")
    template = (ROOT / "template.yaml").read_text()
    assert f"Input: '{json.dumps(event)}'" in template
    with handlers_env(monkeypatch, sim_stack, sim) as (poller, _):
        report = poller.lambda_handler(event, FakeLambdaContext(300))
    assert report["listed"] == report["enqueued"] == 200


def test_the_sqs_batch_event_books_its_three_documents(
    monkeypatch: pytest.MonkeyPatch, sim: Simulator, sim_stack: Stack
) -> None:
    event = load_event("sqs-batch.json")
    ids = [json.loads(record["body"])["documentId"] for record in event["Records"]]
    assert len(ids) == 3
    rules = {"RULES_SOURCE": str(EXAMPLE_RULES_FILE)}  # the third one lacks a label
    with handlers_env(monkeypatch, sim_stack, sim, **rules) as (_, processor):
        response = processor.lambda_handler(event, FakeLambdaContext())
    assert response == {"batchItemFailures": []}
    for doc_id in ids:
        assert sim.document(doc_id)["bookings"] == 1  # type: ignore[index]
    assert sim.document(ids[2])["puts"] == 1  # type: ignore[index]  # needed a label


def test_the_replay_event_books_document_123(
    monkeypatch: pytest.MonkeyPatch, sim: Simulator, sim_stack: Stack
) -> None:
    event = load_event("replay-document.json")
    (record,) = event["Records"]
    assert json.loads(record["body"]) == {"documentId": 123}
    sim.add_documents([raw_item(123)], category="ready")
    with handlers_env(monkeypatch, sim_stack, sim) as (_, processor):
        response = processor.lambda_handler(event, FakeLambdaContext())
    assert response == {"batchItemFailures": []}
    assert sim.document(123)["bookings"] == 1  # type: ignore[index]
