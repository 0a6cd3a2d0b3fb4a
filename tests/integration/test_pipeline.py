"""The whole flow: poller → queue → processor → DLQ, handlers against moto and the simulator."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from cleemy_booker.ledger import Ledger, Status
from local.lucca_simulator import Simulator
from tests.aws import Stack, stack_fixture
from tests.factories import EXAMPLE_RULES_FILE
from tests.harness import (
    FakeLambdaContext,
    dead_letters,
    drive_queue,
    handlers_env,
    simulator_fixture,
)

BOOKABLE = {"ready", "ready_needs_label", "credit_note"}
#: Rules that update documents (the packaged default has none): a label, a due date to fill in.
UPDATING = {"RULES_SOURCE": str(EXAMPLE_RULES_FILE)}
HELD = {"ocr_pending", "ocr_failed", "incomplete", "amounts_mismatch"}
FAILING = {"book_rejected"}


sim = simulator_fixture(invoices=300, seed=7)
stack = stack_fixture()


def documents_by_category(sim: Simulator) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for document in sim.state()["documents"]:
        grouped.setdefault(document["category"], []).append(document)
    return grouped


def test_every_document_is_booked_once_held_or_dead_lettered(
    monkeypatch: pytest.MonkeyPatch, sim: Simulator, stack: Stack
) -> None:
    with handlers_env(monkeypatch, stack, sim) as (poller, processor):
        report = poller.lambda_handler({"source": "schedule"}, FakeLambdaContext(300))
        drive = drive_queue(stack, processor.lambda_handler)

    state = sim.state()
    documents = state["documents"]
    assert report["listed"] == report["enqueued"] == len(documents) == 300
    ledger = Ledger(stack.dynamodb, stack.ledger_table)
    dlq_ids = {json.loads(m["Body"])["documentId"] for m in dead_letters(stack)}

    for document in documents:
        category, doc_id = document["category"], document["id"]
        if category in BOOKABLE:
            assert document["bookings"] == 1, document
        elif category in HELD:
            assert (document["bookings"], document["puts"]) == (0, 0), document
            held = ledger.states.state(doc_id)
            assert held is not None
            assert held.status is Status.HELD
            assert held.reasons, document
        else:
            assert category in FAILING
            assert document["bookings"] == 0
            assert doc_id in dlq_ids
    assert dlq_ids == {d["id"] for d in documents if d["category"] in FAILING}
    assert state["totals"]["doubleBooked"] == 0

    booked = sum(1 for d in documents if d["bookings"] == 1)
    requests = state["totals"]["requests"]
    print(
        f"\n{len(documents)} documents: {booked} booked, "
        f"{sum(1 for d in documents if d['category'] in HELD)} held, {len(dlq_ids)} in the DLQ; "
        f"{requests} Lucca requests = {requests / booked:.3f} per booked document "
        f"(by endpoint {state['totals']['byEndpoint']}); "
        f"{drive.invocations} processor invocations"
    )
    assert requests / booked < 1.3


def test_a_second_poll_queues_nothing_already_on_its_way_or_held(
    monkeypatch: pytest.MonkeyPatch, sim: Simulator, stack: Stack
) -> None:
    sim.reset(invoices=60, seed=3, rate_limit=50, window_seconds=1.0)
    with handlers_env(monkeypatch, stack, sim) as (poller, processor):
        first = poller.lambda_handler({}, FakeLambdaContext(300))
        overlapping = poller.lambda_handler({}, FakeLambdaContext(300))
        drive_queue(stack, processor.lambda_handler)
        after = poller.lambda_handler({}, FakeLambdaContext(300))

    assert first["enqueued"] == 60
    assert overlapping["enqueued"] == 0
    assert overlapping["skipped"] == {"queued": 60}
    remaining = [d for d in sim.state()["documents"] if d["inInbox"]]
    # Held documents are still in the inbox, unchanged: not queued again.
    assert after["listed"] == len(remaining)
    assert after["enqueued"] == 0
    assert set(after["skipped"]) <= {"held", "failed"}


def test_a_held_document_fixed_in_lucca_is_queued_again_and_booked(
    monkeypatch: pytest.MonkeyPatch, sim: Simulator, stack: Stack
) -> None:
    sim.reset(invoices=80, seed=4, rate_limit=50, window_seconds=1.0)
    mismatched = next(d for d in sim.state()["documents"] if d["category"] == "amounts_mismatch")
    with handlers_env(monkeypatch, stack, sim) as (poller, processor):
        poller.lambda_handler({}, FakeLambdaContext(300))
        drive_queue(stack, processor.lambda_handler)
        assert sim.document(mismatched["id"])["bookings"] == 0
        item = sim.document(mismatched["id"])
        amounts = item["document"]["amountIncludingTaxes"]
        excluding = amounts["excludingTaxes"]["value"]
        taxes = sum(t["value"] for t in amounts["taxes"])
        amounts["includingTaxes"]["value"] = round(excluding + taxes, 2)
        sim.touch(mismatched["id"], patch={"amountIncludingTaxes": amounts})
        again = poller.lambda_handler({}, FakeLambdaContext(300))
        drive_queue(stack, processor.lambda_handler)

    assert again["enqueued"] == 1
    assert sim.document(mismatched["id"])["bookings"] == 1
    history = Ledger(stack.dynamodb, stack.ledger_table).queries.history(mismatched["id"])
    kinds = [e.kind for e in history]
    assert (kinds[0], kinds[-1]) == ("held", "booked")


def test_duplicate_and_replayed_messages_book_nothing_again(
    monkeypatch: pytest.MonkeyPatch, sim: Simulator, stack: Stack
) -> None:
    sim.reset(invoices=20, seed=8, rate_limit=50, window_seconds=1.0)
    ready = [d["id"] for d in sim.state()["documents"] if d["category"] == "ready"][:3]
    with handlers_env(monkeypatch, stack, sim) as (_, processor):
        for doc_id in ready:
            for _ in range(2):  # the same document twice, as bare replays
                stack.sqs.send_message(
                    QueueUrl=stack.queue_url, MessageBody=json.dumps({"documentId": doc_id})
                )
        drive_queue(stack, processor.lambda_handler, batch_size=2)
        before = sim.state()["totals"]["requests"]
        for doc_id in ready:  # a replay after success
            stack.sqs.send_message(
                QueueUrl=stack.queue_url, MessageBody=json.dumps({"documentId": doc_id})
            )
        drive_queue(stack, processor.lambda_handler)
        after = sim.state()["totals"]["requests"]

    for doc_id in ready:
        assert sim.document(doc_id)["bookings"] == 1
    assert after == before  # a replay after success spends no Lucca request


def test_a_poison_message_fails_alone_and_reaches_the_dlq_with_its_reason(
    monkeypatch: pytest.MonkeyPatch, sim: Simulator, stack: Stack
) -> None:
    sim.reset(invoices=10, seed=8, rate_limit=50, window_seconds=1.0)
    good = next(d["id"] for d in sim.state()["documents"] if d["category"] == "ready")
    with handlers_env(monkeypatch, stack, sim) as (_, processor):
        for body in ("{not json", json.dumps({"documentId": good}), '{"documentId": -4}'):
            stack.sqs.send_message(QueueUrl=stack.queue_url, MessageBody=body)
        drive_queue(stack, processor.lambda_handler, batch_size=3)

    assert sim.document(good)["bookings"] == 1
    letters = dead_letters(stack)
    reasons = sorted(m["MessageAttributes"]["failureReason"]["StringValue"] for m in letters)
    assert len(letters) == 2
    assert all(reason.startswith("invalid message") for reason in reasons)


def test_an_unknown_document_goes_to_the_dlq_quickly(
    monkeypatch: pytest.MonkeyPatch, sim: Simulator, stack: Stack
) -> None:
    with handlers_env(monkeypatch, stack, sim) as (_, processor):
        stack.sqs.send_message(QueueUrl=stack.queue_url, MessageBody='{"documentId": 999999}')
        drive = drive_queue(stack, processor.lambda_handler)

    assert drive.invocations == 1  # sent to the DLQ at once, not after every retry
    (letter,) = dead_letters(stack)
    attributes = letter["MessageAttributes"]
    assert attributes["errorType"]["StringValue"] == "NotFoundError"
    assert "unknown to Lucca and to the ledger" in attributes["failureReason"]["StringValue"]


def test_retryable_errors_come_back_and_then_succeed(
    monkeypatch: pytest.MonkeyPatch, sim: Simulator, stack: Stack
) -> None:
    sim.reset(invoices=30, seed=9, rate_limit=50, window_seconds=1.0)
    with handlers_env(monkeypatch, stack, sim) as (poller, processor):
        poller.lambda_handler({}, FakeLambdaContext(300))
        # Lucca answers 503 to every booking for a while: records fail and come back.
        sim.configure(fault_rate=1.0, fault_kinds={"503": 1.0}, fault_endpoints=["book"])
        calls = Counter[str]()

        def heal(messages: list[dict[str, Any]]) -> None:
            calls["invocations"] += 1
            if calls["invocations"] == 3:
                sim.configure(fault_rate=0.0)

        drive = drive_queue(stack, processor.lambda_handler, before_invoke=heal)

    assert drive.failures > 0
    documents = sim.state()["documents"]
    assert all(d["bookings"] == 1 for d in documents if d["category"] in BOOKABLE)
    assert not [
        m
        for m in dead_letters(stack)
        if json.loads(m["Body"])["documentId"]
        in {d["id"] for d in documents if d["category"] in BOOKABLE}
    ]


def test_a_dry_run_changes_nothing_and_the_real_run_then_books(
    monkeypatch: pytest.MonkeyPatch, sim: Simulator, stack: Stack
) -> None:
    sim.reset(invoices=40, seed=12, rate_limit=50, window_seconds=1.0)
    with handlers_env(monkeypatch, stack, sim, DRY_RUN="true", **UPDATING) as (poller, processor):
        poller.lambda_handler({}, FakeLambdaContext(300))
        drive_queue(stack, processor.lambda_handler)
        again = poller.lambda_handler({}, FakeLambdaContext(300))
    totals = sim.state()["totals"]
    assert (totals["booked"], totals["byEndpoint"].get("put", 0)) == (0, 0)
    assert totals["byEndpoint"].get("book", 0) == 0
    assert again["enqueued"] == 0  # planned, unchanged: not planned again every run
    ledger = Ledger(stack.dynamodb, stack.ledger_table)
    needs_label = next(
        d["id"] for d in sim.state()["documents"] if d["category"] == "ready_needs_label"
    )
    planned = ledger.queries.history(needs_label)[-1]
    assert planned.kind == "dry_run"
    assert planned.detail["diff"], "the plan shows what would be PUT"

    with handlers_env(monkeypatch, stack, sim, DRY_RUN="false", **UPDATING) as (poller, processor):
        live = poller.lambda_handler({}, FakeLambdaContext(300))
        drive_queue(stack, processor.lambda_handler)
    assert live["enqueued"] > 0
    documents = sim.state()["documents"]
    assert all(d["bookings"] == 1 for d in documents if d["category"] in BOOKABLE)


def test_an_updated_document_costs_a_get_a_put_and_a_book_and_one_as_it_is_its_book(
    monkeypatch: pytest.MonkeyPatch, sim: Simulator, stack: Stack
) -> None:
    sim.reset(invoices=60, seed=5, rate_limit=50, window_seconds=1.0)
    with handlers_env(monkeypatch, stack, sim, **UPDATING) as (poller, processor):
        poller.lambda_handler({}, FakeLambdaContext(300))
        drive_queue(stack, processor.lambda_handler)

    asked = Counter((e["documentId"], e["endpoint"]) for e in sim.requests() if e["documentId"])
    grouped = documents_by_category(sim)
    ledger = Ledger(stack.dynamodb, stack.ledger_table)
    assert grouped["ready_needs_label"]
    assert grouped["ready"]
    for document in grouped["ready_needs_label"]:
        doc_id = document["id"]
        assert (document["puts"], document["bookings"]) == (1, 1), document
        # The GET just before the PUT: the listing is not a body to PUT back.
        assert [asked[(doc_id, e)] for e in ("get", "put", "book")] == [1, 1, 1]
        # Nobody edited it: the item through the queue compares equal to the one read again.
        updated = next(e for e in ledger.queries.history(doc_id) if e.kind == "updated")
        assert "changedSinceListing" not in updated.detail
    for document in grouped["ready"] + grouped.get("credit_note", []):
        doc_id = document["id"]
        assert (document["puts"], document["bookings"]) == (0, 1), document
        assert [asked[(doc_id, e)] for e in ("get", "put", "book")] == [0, 0, 1]


def test_with_the_packaged_rules_documents_are_booked_as_they_are(
    monkeypatch: pytest.MonkeyPatch, sim: Simulator, stack: Stack
) -> None:
    sim.reset(invoices=40, seed=5, rate_limit=50, window_seconds=1.0)
    with handlers_env(monkeypatch, stack, sim) as (poller, processor):  # no RULES_SOURCE
        poller.lambda_handler({}, FakeLambdaContext(300))
        drive_queue(stack, processor.lambda_handler)

    totals = sim.state()["totals"]
    assert totals["byEndpoint"]["put"] == 0
    needs_label = documents_by_category(sim)["ready_needs_label"]
    assert needs_label
    assert all(d["bookings"] == 1 for d in needs_label)
