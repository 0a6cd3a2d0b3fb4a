"""Move dead-lettered documents back to the documents queue, once their cause is fixed.

    cleemy-booker replay --stack cleemy-booker                  # what is there, and why
    cleemy-booker replay --stack cleemy-booker --yes            # move everything back
    cleemy-booker replay --stack cleemy-booker --document-id 123 --yes
    cleemy-booker replay --dlq-url URL --queue-url URL --endpoint-url http://127.0.0.1:4566

Without ``--yes`` nothing moves: the dead letters are listed with the document, the reason and
the error type the processor attached, and when each arrived; they stay in the DLQ as found.

With ``--yes`` the whole DLQ moves with SQS ``StartMessageMoveTask`` (server side, at SQS's own
pace) where it is available. Where it is not (local emulators), and whenever only one document
is to move (``--document-id``), messages are received, sent to the documents queue with their
body unchanged and without the failure attributes, then deleted from the DLQ: sent before
deleted, so a crash in between leaves a duplicate (harmless: processing is idempotent), never a
loss.

Replaying is safe for any document: one already booked is recognised and not booked again.
Needs ``sqs:ReceiveMessage``/``ChangeMessageVisibility``/``GetQueueAttributes`` on the DLQ, plus
``sqs:StartMessageMoveTask`` (or ``SendMessage`` on the queue and ``DeleteMessage`` on the DLQ)
to move, and ``cloudformation:DescribeStacks`` with ``--stack``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from cleemy_booker_tools.dead_letters import DeadLetter, replayed_attributes

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef, SendMessageBatchRequestEntryTypeDef

#: Error codes meaning "this SQS has no message move tasks" (emulators), not "you may not".
MOVE_TASK_UNAVAILABLE = frozenset(
    {
        "InvalidAction",
        "UnknownOperationException",
        "UnsupportedOperation",
        "AWS.SimpleQueueService.UnsupportedOperation",
        "NotImplemented",
        "InternalFailure",
    }
)
#: While a batch is being listed or moved, nobody else receives it for this long (seconds).
HOLD_SECONDS = 60
#: A safety net: never walk more messages than this in one run.
MAX_MESSAGES = 100_000
EXIT_OK, EXIT_AWS_ERROR, EXIT_USAGE = 0, 1, 2


@dataclass
class ReplayReport:
    method: str = ""
    moved: int = 0
    left: int = 0
    failed: int = 0
    task_handle: str | None = None
    documents: list[int | None] = field(default_factory=list)
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "moved": self.moved,
            "left": self.left,
            "failed": self.failed,
            "taskHandle": self.task_handle,
            "documents": self.documents,
            "note": self.note,
        }


# --- where the queues are ---------------------------------------------------------------------


def queues_of_stack(cloudformation: Any, stack: str) -> tuple[str, str]:
    """(DLQ URL, documents queue URL) from the stack's outputs."""
    outputs = cloudformation.describe_stacks(StackName=stack)["Stacks"][0].get("Outputs", [])
    found = {output["OutputKey"]: str(output["OutputValue"]) for output in outputs}
    missing = [key for key in ("DeadLetterQueueUrl", "DocumentsQueueUrl") if key not in found]
    if missing:
        raise LookupError(f"stack {stack!r} has no {' or '.join(missing)} output")
    return found["DeadLetterQueueUrl"], found["DocumentsQueueUrl"]


def queue_arn(sqs: SQSClient, url: str) -> str:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
    return attributes["Attributes"]["QueueArn"]


# --- reading the DLQ --------------------------------------------------------------------------


def _receive_all(sqs: SQSClient, dlq_url: str, wait_seconds: int) -> Iterator[list[MessageTypeDef]]:
    """Every message once, in batches, each hidden for ``HOLD_SECONDS`` while it is handled."""
    seen: set[str] = set()
    while len(seen) < MAX_MESSAGES:
        messages = sqs.receive_message(
            QueueUrl=dlq_url,
            MaxNumberOfMessages=10,
            VisibilityTimeout=HOLD_SECONDS,
            WaitTimeSeconds=wait_seconds,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        fresh = [m for m in messages if m["MessageId"] not in seen]
        if not fresh:
            return
        seen.update(m["MessageId"] for m in fresh)
        yield fresh


def _release(sqs: SQSClient, dlq_url: str, letters: Sequence[DeadLetter]) -> None:
    """Make messages visible again at once: the DLQ is left as it was found."""
    for start in range(0, len(letters), 10):
        chunk = letters[start : start + 10]
        sqs.change_message_visibility_batch(
            QueueUrl=dlq_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": letter.receipt_handle, "VisibilityTimeout": 0}
                for i, letter in enumerate(chunk)
            ],
        )


def list_dead_letters(sqs: SQSClient, dlq_url: str, *, wait_seconds: int = 1) -> list[DeadLetter]:
    """What is in the DLQ and why; nothing is removed."""
    letters: list[DeadLetter] = []
    try:
        for batch in _receive_all(sqs, dlq_url, wait_seconds):
            letters += [DeadLetter.from_message(message) for message in batch]
    finally:
        _release(sqs, dlq_url, letters)
    return letters


# --- moving -----------------------------------------------------------------------------------


def start_move_task(sqs: SQSClient, dlq_url: str, queue_url: str) -> str | None:
    """Move the whole DLQ with ``StartMessageMoveTask``; None where SQS does not offer it."""
    try:
        response = sqs.start_message_move_task(
            SourceArn=queue_arn(sqs, dlq_url), DestinationArn=queue_arn(sqs, queue_url)
        )
    except NotImplementedError:  # moto, in process
        return None
    except ClientError as error:
        code = str(error.response.get("Error", {}).get("Code", ""))
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in MOVE_TASK_UNAVAILABLE or status == 501:
            return None
        raise
    return response["TaskHandle"]


def move_by_hand(
    sqs: SQSClient,
    dlq_url: str,
    queue_url: str,
    *,
    document_id: int | None = None,
    wait_seconds: int = 1,
) -> ReplayReport:
    """Receive → send (same body, no failure attributes) → delete, in batches of 10.

    With ``document_id``, only that document's messages move; the others are left in the DLQ.
    """
    report = ReplayReport(method="receive-send-delete")
    left: list[DeadLetter] = []
    try:
        for batch in _receive_all(sqs, dlq_url, wait_seconds):
            letters = [DeadLetter.from_message(message) for message in batch]
            chosen = [
                letter
                for letter in letters
                if document_id is None or letter.document_id == document_id
            ]
            left += [letter for letter in letters if letter not in chosen]
            left += _send_then_delete(sqs, dlq_url, queue_url, chosen, report)
    finally:
        _release(sqs, dlq_url, left)
    report.left = len(left) - report.failed
    return report


def _send_then_delete(
    sqs: SQSClient,
    dlq_url: str,
    queue_url: str,
    letters: list[DeadLetter],
    report: ReplayReport,
) -> list[DeadLetter]:
    """Returns the letters that could not be sent (they stay in the DLQ)."""
    if not letters:
        return []
    by_id = {str(i): letter for i, letter in enumerate(letters)}
    entries: list[SendMessageBatchRequestEntryTypeDef] = []
    for key, letter in by_id.items():
        entry: SendMessageBatchRequestEntryTypeDef = {"Id": key, "MessageBody": letter.body}
        attributes = replayed_attributes(letter)
        if attributes:
            entry["MessageAttributes"] = attributes
        entries.append(entry)
    sent = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
    moved = [by_id[entry["Id"]] for entry in sent.get("Successful", [])]
    if moved:
        sqs.delete_message_batch(
            QueueUrl=dlq_url,
            Entries=[
                {"Id": str(i), "ReceiptHandle": letter.receipt_handle}
                for i, letter in enumerate(moved)
            ],
        )
    report.moved += len(moved)
    report.documents += [letter.document_id for letter in moved]
    unsent = [by_id[entry["Id"]] for entry in sent.get("Failed", [])]
    report.failed += len(unsent)
    return unsent


def replay(
    sqs: SQSClient,
    dlq_url: str,
    queue_url: str,
    *,
    document_id: int | None = None,
    wait_seconds: int = 1,
) -> ReplayReport:
    """Move dead letters back: a move task when SQS offers one and everything moves, else by
    hand."""
    if document_id is None:
        handle = start_move_task(sqs, dlq_url, queue_url)
        if handle is not None:
            return ReplayReport(
                method="StartMessageMoveTask",
                task_handle=handle,
                note="SQS moves the messages in the background; "
                "aws sqs list-message-move-tasks shows its progress",
            )
    report = move_by_hand(
        sqs, dlq_url, queue_url, document_id=document_id, wait_seconds=wait_seconds
    )
    if document_id is None:
        report.note = "StartMessageMoveTask is not available here: moved message by message"
    return report


# --- command line -----------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cleemy-booker replay",
        description="List the dead-lettered documents and why; with --yes, move them back to "
        "the documents queue.",
    )
    parser.add_argument("--stack", help="read both queue URLs from this stack's outputs")
    parser.add_argument("--dlq-url", help="the dead-letter queue (instead of --stack)")
    parser.add_argument("--queue-url", help="the documents queue (instead of --stack)")
    parser.add_argument("--document-id", type=int, help="replay only this document's messages")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="only list (the default)")
    mode.add_argument("--yes", action="store_true", help="really move the messages")
    parser.add_argument("--endpoint-url", help="a local AWS emulator, e.g. http://127.0.0.1:4566")
    parser.add_argument("--region", help="AWS region (default: the profile's)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


Clients = Callable[[argparse.Namespace], tuple[Any, "SQSClient"]]


def _aws_clients(args: argparse.Namespace) -> tuple[Any, SQSClient]:
    session = boto3.Session(region_name=args.region)
    return (
        session.client("cloudformation", endpoint_url=args.endpoint_url),
        session.client("sqs", endpoint_url=args.endpoint_url),
    )


def main(
    argv: Sequence[str] | None = None,
    *,
    clients: Clients = _aws_clients,
    out: TextIO | None = None,
) -> int:
    out = out or sys.stdout
    parser = _parser()
    args = parser.parse_args(argv)
    if bool(args.stack) == bool(args.dlq_url or args.queue_url):
        parser.error("give either --stack, or both --dlq-url and --queue-url")
    if not args.stack and not (args.dlq_url and args.queue_url):
        parser.error("--dlq-url and --queue-url go together")
    if args.document_id is not None and args.document_id <= 0:
        parser.error("--document-id must be a positive id")
    cloudformation, sqs = clients(args)
    try:
        if args.stack:
            dlq_url, queue_url = queues_of_stack(cloudformation, args.stack)
        else:
            dlq_url, queue_url = args.dlq_url, args.queue_url
        if args.yes:
            report = replay(sqs, dlq_url, queue_url, document_id=args.document_id)
            _print_report(report, queue_url, args.json, out)
        else:
            letters = list_dead_letters(sqs, dlq_url)
            if args.document_id is not None:
                letters = [x for x in letters if x.document_id == args.document_id]
            _print_letters(letters, dlq_url, queue_url, args.json, out)
    except (ClientError, BotoCoreError, LookupError) as error:
        print(f"replay: {error}", file=sys.stderr)
        return EXIT_AWS_ERROR
    return EXIT_OK


def _print_letters(
    letters: list[DeadLetter], dlq_url: str, queue_url: str, as_json: bool, out: TextIO
) -> None:
    if as_json:
        print(json.dumps([letter.as_dict() for letter in letters], indent=2), file=out)
        return
    print(f"{len(letters)} message(s) in {dlq_url}", file=out)
    for letter in letters:
        print(letter.describe(), file=out)
    if letters:
        print(f"Dry run: nothing moved. Add --yes to move them back to {queue_url}.", file=out)


def _print_report(report: ReplayReport, queue_url: str, as_json: bool, out: TextIO) -> None:
    if as_json:
        print(json.dumps(report.as_dict(), indent=2), file=out)
        return
    if report.task_handle:
        print(f"Started a message move task to {queue_url}: {report.task_handle}", file=out)
    else:
        print(
            f"Moved {report.moved} message(s) to {queue_url}; {report.left} left in the DLQ"
            + (f", {report.failed} could not be sent" if report.failed else ""),
            file=out,
        )
    if report.note:
        print(report.note, file=out)


if __name__ == "__main__":
    sys.exit(main())
