"""The real template, deployed on ministack (no Docker, no AWS account), against the simulator.

One deploy for every e2e test of the run (``deployed`` in conftest): the poller is invoked once,
the SQS event source drives the processor until the queue is empty, then every document is
checked against the simulator's ground truth, the ledger and the dead-letter queue.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from cleemy_booker.ledger import Status
from cleemy_booker.processor import BOOK_UNCERTAIN
from cleemy_booker_tools import audit
from local.demo import (
    BOOKABLE,
    CATEGORIES,
    FAILING,
    HELD,
    LocalPipeline,
    format_summary,
    uncertain_refusals,
)
from tests.pins import normalised, read_pins

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
#: Lambda event files shared with ``sam local/remote invoke`` (E2E_EVENTS_DIR to try others).
EVENTS_DIR = Path(os.environ.get("E2E_EVENTS_DIR") or ROOT / "events")
EVENT_FILES = sorted(EVENTS_DIR.glob("**/*.json")) if EVENTS_DIR.is_dir() else []


def by_category(pipeline: LocalPipeline) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for document in pipeline.simulator.state()["documents"]:
        grouped.setdefault(document["category"], []).append(document)
    return grouped


def test_the_first_poll_queues_every_document_with_one_listing(deployed: LocalPipeline) -> None:
    report = deployed.poll_reports[0]
    documents = deployed.options.documents
    assert report["listed"] == report["enqueued"] == documents
    assert report["requests"] == 1  # one 1000-item page
    assert set(by_category(deployed)) == set(CATEGORIES)  # the seed covers every category


def test_every_bookable_document_is_booked_exactly_once(deployed: LocalPipeline) -> None:
    ledger = deployed.ledger
    bookable = [d for c, docs in by_category(deployed).items() if c in BOOKABLE for d in docs]
    assert bookable
    for document in bookable:
        assert document["bookings"] == 1, document
        assert not document["inInbox"], document
        state = ledger.states.state(document["id"])
        assert state is not None
        assert state.status is Status.BOOKED, document


def test_held_documents_are_untouched_and_held_with_their_reasons(
    deployed: LocalPipeline,
) -> None:
    ledger = deployed.ledger
    held = [d for c, docs in by_category(deployed).items() if c in HELD for d in docs]
    assert held
    for document in held:
        assert (document["puts"], document["bookings"]) == (0, 0), document
        assert document["inInbox"], document
        state = ledger.states.state(document["id"])
        assert state is not None, document
        assert state.status is Status.HELD, document
        assert state.reasons, document
        assert [e.kind for e in ledger.queries.history(document["id"])][-1] == "held"
    # A rejected document refused after a book call that met a fault is held as possibly
    # booked (its number kept), not dead-lettered: the client cannot tell it was not applied.
    uncertain = uncertain_refusals(deployed.simulator.requests())
    for doc_id in uncertain:
        state = ledger.states.state(doc_id)
        assert state is not None, doc_id
        assert state.status is Status.HELD, doc_id
        assert any(r.startswith(f"{BOOK_UNCERTAIN}:") for r in state.reasons), state
    assert {s.document_id for s in ledger.queries.in_status(Status.HELD)} == {
        d["id"] for d in held
    } | uncertain


def test_the_dlq_holds_exactly_the_rejected_documents_with_their_reason(
    deployed: LocalPipeline,
) -> None:
    letters = deployed.dead_letters()
    rejected = {d["id"] for c, docs in by_category(deployed).items() if c in FAILING for d in docs}
    rejected -= uncertain_refusals(deployed.simulator.requests())  # held instead: see above
    assert rejected
    assert Counter(letter.document_id for letter in letters) == Counter(rejected)
    for letter in letters:
        assert letter.failure_reason, letter
        assert "locked by a pending approval" in letter.failure_reason, letter
        assert letter.error_type, letter
        state = deployed.ledger.states.state(letter.document_id or 0)
        assert state is not None, letter
        assert state.status is Status.FAILED, letter
    for document in by_category(deployed)["book_rejected"]:
        assert document["bookings"] == 0, document


def test_nothing_is_lost_or_double_booked_and_the_demo_check_agrees(
    deployed: LocalPipeline,
) -> None:
    state = deployed.simulator.state()
    assert state["totals"]["doubleBooked"] == 0
    assert all(d["bookings"] <= 1 for d in state["documents"])
    assert deployed.queue_counts() == (0, 0, 0)
    verdict = deployed.verify()
    print("\n" + format_summary(verdict))
    assert verdict.ok, "\n".join(verdict.problems)
    assert verdict.total.lost == 0
    # The budget keeps us under Lucca's limit: no 429 came from the limiter itself.
    assert state["totals"]["rateLimited"] == 0


def test_the_processor_is_wired_to_the_queue_as_the_template_says(
    deployed: LocalPipeline,
) -> None:
    mappings = deployed.client("lambda").list_event_source_mappings(
        FunctionName=deployed.outputs["DocumentProcessorFunctionName"]
    )["EventSourceMappings"]
    (mapping,) = mappings
    assert mapping["BatchSize"] == 5
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert int(mapping["ScalingConfig"]["MaximumConcurrency"]) == 2


def test_a_second_poll_queues_nothing_already_settled(deployed: LocalPipeline) -> None:
    report = deployed.invoke_poller({"source": "e2e"})
    in_inbox = sum(d["inInbox"] for d in deployed.simulator.state()["documents"])
    assert report["listed"] == in_inbox  # held and rejected ones stay in the inbox
    assert report["enqueued"] == 0
    assert set(report["skipped"]) <= {"held", "failed"}


# --- events/: the replay files, against the deployed functions --------------------------------


def _target(event: Any) -> str | None:
    """Which function an event file is for: SQS records go to the processor, a bare message
    body is wrapped as one, a scheduler-style event goes to the poller."""
    if isinstance(event, dict) and isinstance(event.get("Records"), list):
        sources = {r.get("eventSource") for r in event["Records"] if isinstance(r, dict)}
        return "processor" if sources <= {"aws:sqs"} else None
    if isinstance(event, dict) and "documentId" in event:
        return "message"
    if isinstance(event, dict) and (
        event.get("source") in ("schedule", "aws.scheduler") or "detail-type" in event
    ):
        return "poller"
    return None


def _sqs_event(body: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": "replay-0",
                "receiptHandle": "replay-0",
                "body": json.dumps(body),
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": "eu-west-1",
            }
        ]
    }


@pytest.mark.skipif(not EVENT_FILES, reason="no events/*.json replay files yet")
@pytest.mark.parametrize("path", EVENT_FILES, ids=lambda p: str(p.relative_to(EVENTS_DIR)))
def test_an_events_file_replays_against_the_deployed_stack(
    deployed: LocalPipeline, path: Path
) -> None:
    """Runs last: a replayed id unknown to the simulator goes to the DLQ (by design)."""
    event = json.loads(path.read_text(encoding="utf-8"))
    target = _target(event)
    if target is None:
        pytest.skip(f"{path.name}: not an SQS, message or schedule event")
    before = deployed.simulator.state()["totals"]
    if target == "poller":
        answer = deployed.invoke_poller(event)
        assert "listed" in answer, answer
    else:
        if target == "message":
            arn = f"arn:aws:sqs:eu-west-1:000000000000:{deployed.options.stack_name}-documents"
            event = _sqs_event(event, arn)
        answer = deployed.invoke_processor(event)  # raises on a function error
        assert isinstance(answer.get("batchItemFailures"), list), answer
    after = deployed.simulator.state()
    assert after["totals"]["doubleBooked"] == before["doubleBooked"] == 0
    for document in after["documents"]:
        if document["category"] in HELD:
            assert (document["puts"], document["bookings"]) == (0, 0), document


def test_the_built_layer_holds_exactly_the_pinned_versions(deployed: LocalPipeline) -> None:
    """What ``sam build`` put in the layer (its packages' metadata) is what the tests ran."""
    layer = deployed.build_dir / "DomainLayer" / "python"
    built = {}
    for metadata in layer.glob("*.dist-info/METADATA"):
        fields = dict(
            line.split(": ", 1) for line in metadata.read_text().splitlines() if ": " in line
        )
        built[normalised(fields["Name"])] = fields["Version"]
    assert built == read_pins(ROOT / "layers" / "domain" / "requirements.txt")
    # Built for the architecture ministack runs (the template's default is arm64).
    (compiled,) = layer.glob("pydantic_core/_pydantic_core.*.so")
    assert "x86_64" in compiled.name


def test_the_deployed_digest_tells_what_awaits_a_person(deployed: LocalPipeline) -> None:
    """The scheduled digest function runs on the stack: it reads the held documents the ledger
    has and publishes (the period then counts as told)."""
    text, report = deployed.morning_digest()
    held = len(by_category(deployed).get("incomplete", [])) + len(
        by_category(deployed).get("amounts_mismatch", [])
    )
    assert report["sent"] is True
    assert report["held"] >= held > 0
    assert "WHAT NEEDS A PERSON" in text
    assert "held for review" in text
    assert "arn:" not in text


def test_the_export_of_the_run_opens_as_a_spreadsheet_one_row_per_booked_document(
    deployed: LocalPipeline, tmp_path: Path
) -> None:
    """``audit export`` against the deployed stack's ledger, read back by Python's csv."""
    out = tmp_path / "booked.csv"
    argv = ["--stack", deployed.options.stack_name, "--endpoint-url", deployed.endpoint]
    assert audit.main([*argv, "export", "--since", "2000-01-01", "--output", str(out)]) == 0
    raw = out.read_bytes()
    assert raw.startswith(codecs.BOM_UTF8)  # Excel reads the accents right
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    booked = {doc["id"] for doc in deployed.simulator.state()["documents"] if doc["bookings"] == 1}
    assert len(rows) == len(booked)
    assert {int(next(iter(row.values()))) for row in rows} == booked
