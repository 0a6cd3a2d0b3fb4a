"""Each fault on its own, at a chosen point, with what the ledger and Lucca must show after it.

The large run (``test_chaos.py``) mixes them at random; these pin each one down so a failure
names the fault. Lucca answers normally unless a test says otherwise.
"""

from __future__ import annotations

import functools
import json
import time
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from cleemy_booker import client as client_module
from cleemy_booker.clock import SystemClock
from cleemy_booker.ledger import DocumentStates, Ledger, Status
from cleemy_booker.poller.enqueue import QueueSender
from cleemy_booker.retry import RetryPolicy
from local.lucca_simulator import Simulator
from tests.aws import Stack, stack_fixture
from tests.chaos.chaos import (
    BOOKABLE,
    SLOW_SECONDS,
    Chaos,
    ChaosSettings,
    CrashPlan,
    LambdaTimeout,
    check,
    quiet_powertools,
    run_until_settled,
    seed_snapshot,
)
from tests.harness import FakeLambdaContext, dead_letters, handlers_env, simulator_fixture

#: No random chaos: each test places its own fault.
CALM = ChaosSettings(documents=0, fault_rate=0.0, seed=1, timeout_rate=0.0, duplicate_rate=0.0)


sim = simulator_fixture(invoices=40, seed=3, slow_seconds=SLOW_SECONDS)
stack = stack_fixture(max_receive_count=10)


def ids_in(sim: Simulator, *categories: str) -> list[int]:
    return [d["id"] for d in sim.state()["documents"] if d["category"] in categories]


def kinds(stack: Stack, document_id: int) -> list[str]:
    return [e.kind for e in Ledger(stack.dynamodb, stack.ledger_table).queries.history(document_id)]


def settle_and_check(
    monkeypatch: pytest.MonkeyPatch, sim: Simulator, stack: Stack, chaos: Chaos
) -> None:
    seeded = seed_snapshot(sim)
    with quiet_powertools(monkeypatch), handlers_env(monkeypatch, stack, sim) as (poller, proc):
        run_until_settled(chaos, stack, poller, proc)
    assert_no_violations(sim, stack, seeded)


def crash_each_once(
    monkeypatch: pytest.MonkeyPatch, sim: Simulator, stack: Stack, point: str, ids: list[int]
) -> Chaos:
    """Each of ``ids`` crashes once at ``point`` (a ``CrashPlan`` field), then the pipeline
    settles and the check finds nothing wrong."""
    chaos = Chaos(monkeypatch, CALM, CrashPlan(**{point: set(ids)}))
    settle_and_check(monkeypatch, sim, stack, chaos)
    return chaos


def assert_no_violations(sim: Simulator, stack: Stack, seeded: dict[int, dict[str, Any]]) -> None:
    """``check`` against the seeded snapshot finds nothing wrong."""
    outcome = check(sim, stack, seeded)
    assert not outcome.violations, "\n".join(outcome.violations)


def test_a_crash_right_after_a_put_is_redelivered_and_booked_once(
    monkeypatch: pytest.MonkeyPatch, sim: Simulator, stack: Stack
) -> None:
    needs_label = ids_in(sim, "ready_needs_label")
    assert needs_label
    chaos = crash_each_once(monkeypatch, sim, stack, "after_put", needs_label)

    assert chaos.crashes.fired["after_put"] == len(needs_label)
    for doc_id in needs_label:
        document = sim.document(doc_id)
        assert document is not None
        # The ledger never heard of the first PUT, but the redelivery reads the document before
        # building another: the update is there, the rules have nothing left to change, so it
        # is booked without a second PUT.
        assert (document["bookings"], document["puts"]) == (1, 1)
        assert kinds(stack, doc_id)[-2:] == ["booking", "booked"]
        booked = Ledger(stack.dynamodb, stack.ledger_table).queries.history(doc_id)[-1]
        assert "changedSinceListing" in booked.detail


def test_a_crash_between_the_booking_marker_and_the_book_call_books_once(
    monkeypatch: pytest.MonkeyPatch, sim: Simulator, stack: Stack
) -> None:
    bookable = ids_in(sim, *BOOKABLE)
    crash_each_once(monkeypatch, sim, stack, "before_book", bookable)

    for doc_id in bookable:
        document = sim.document(doc_id)
        assert document is not None
        assert (document["bookings"], document["bookAttempts"]) == (1, 1)
        history = kinds(stack, doc_id)
        # BOOKING twice: the marker survives the crash; the next delivery re-reads the document.
        assert history.count("booking") == 2
        assert history[-1] == "booked"


def test_a_crash_after_a_successful_book_is_confirmed_not_booked_again(
    monkeypatch: pytest.MonkeyPatch, sim: Simulator, stack: Stack
) -> None:
    bookable = ids_in(sim, *BOOKABLE)
    crash_each_once(monkeypatch, sim, stack, "after_book", bookable)

    ledger = Ledger(stack.dynamodb, stack.ledger_table)
    for doc_id in bookable:
        document = sim.document(doc_id)
        assert document is not None
        assert (document["bookings"], document["bookAttempts"]) == (1, 1)
        last = ledger.queries.history(doc_id)[-1]
        assert last.kind == "booked"
        assert "left the inbox" in last.detail["confirmedBy"]


def test_an_invocation_killed_mid_batch_is_redelivered_whole_and_books_each_once(
    monkeypatch: pytest.MonkeyPatch, sim: Simulator, stack: Stack
) -> None:
    ready = ids_in(sim, "ready")[:5]
    chaos = Chaos(monkeypatch, CALM)
    # Killed while the third record's book call is answered: Lucca booked it, nobody recorded it.
    chaos.kill_plan = [2]
    chaos.kill.endpoint = "book"
    with quiet_powertools(monkeypatch), handlers_env(monkeypatch, stack, sim) as (poller, proc):
        for doc_id in ready:
            stack.sqs.send_message(
                QueueUrl=stack.queue_url, MessageBody=json.dumps({"documentId": doc_id})
            )
        chaos.drive(stack, proc)
        # The redelivery finds the third gone (a 404 proves nothing) and holds it as possibly
        # booked; the next poll's listing of the whole inbox no longer shows it: booked.
        chaos.poll(poller)

    assert chaos.stats.timeouts == 1
    assert dict(chaos.kill.fired) == {"after book -> 200": 1}
    for doc_id in ready:
        document = sim.document(doc_id)
        assert document is not None
        # The redelivered batch books nothing twice and asks Lucca nothing twice.
        assert (document["bookings"], document["bookAttempts"]) == (1, 1), doc_id
        ledger_state = Ledger(stack.dynamodb, stack.ledger_table).states.state(doc_id)
        assert ledger_state is not None
        assert ledger_state.status is Status.BOOKED
    confirmed = Ledger(stack.dynamodb, stack.ledger_table).queries.history(ready[2])[-1]
    assert "left the inbox" in confirmed.detail["confirmedBy"]


def test_slow_answers_beyond_the_client_timeout_are_applied_once(
    monkeypatch: pytest.MonkeyPatch, sim: Simulator, stack: Stack
) -> None:
    """Every book answer is slow for one invocation: Lucca books while the client has given up
    (each retry too), so the records fail; the next deliveries find the documents gone."""
    chaos = Chaos(monkeypatch, CALM)
    seeded = seed_snapshot(sim)
    with quiet_powertools(monkeypatch), handlers_env(monkeypatch, stack, sim) as (poller, proc):
        chaos.poll(poller)
        sim.configure(fault_rate=1.0, fault_kinds={"slow": 1.0}, fault_endpoints=["book"])
        proc = chaos.drive(stack, proc, max_invocations=1)
        sim.configure(fault_rate=0.0)
        time.sleep(SLOW_SECONDS)  # the last slow booking lands
        run_until_settled(chaos, stack, poller, proc)

    assert chaos.stats.record_failures >= 1
    slow = {e["documentId"] for e in sim.requests() if e["fault"] == "slow"}
    assert slow
    assert_no_violations(sim, stack, seeded)
    ledger = Ledger(stack.dynamodb, stack.ledger_table)
    for doc_id in slow:
        document = sim.document(doc_id)
        assert document is not None
        if document["category"] in BOOKABLE:
            assert document["bookings"] == 1
            assert "left the inbox" in ledger.queries.history(doc_id)[-1].detail["confirmedBy"]


def test_a_poller_that_dies_mid_listing_leaves_the_rest_to_the_next_run(
    monkeypatch: pytest.MonkeyPatch, sim: Simulator, stack: Stack
) -> None:
    chaos = Chaos(monkeypatch, CALM)
    chaos.poller_dies_after = 13  # after one batch of 10 was sent and 3 more were claimed
    settle_and_check(monkeypatch, sim, stack, chaos)
    assert chaos.stats.poller_crashes == 1


def test_a_queue_outage_mid_listing_gives_the_claims_back_for_the_next_run(
    monkeypatch: pytest.MonkeyPatch, sim: Simulator, stack: Stack
) -> None:
    """SQS refuses a whole batch (an outage past botocore's retries) while the poller sends it:
    the documents of that batch are claimed but not queued. The next run must queue them."""
    chaos = Chaos(monkeypatch, CALM)
    original = QueueSender._send_batch
    calls = {"n": 0}

    def send_batch(self: QueueSender, batch: list[tuple[int, str]]) -> list[int]:
        calls["n"] += 1
        if calls["n"] == 2:
            raise EndpointConnectionError(endpoint_url=stack.queue_url)
        return original(self, batch)

    monkeypatch.setattr(QueueSender, "_send_batch", send_batch)
    seeded = seed_snapshot(sim)
    with quiet_powertools(monkeypatch), handlers_env(monkeypatch, stack, sim) as (poller, proc):
        with pytest.raises(EndpointConnectionError):
            poller.lambda_handler({"source": "schedule"}, FakeLambdaContext(300))
        chaos.drive(stack, proc)
        run_until_settled(chaos, stack, poller, proc)
    assert_no_violations(sim, stack, seeded)


class _AnHourLater(SystemClock):
    def time(self) -> float:
        return time.time() + 3601


def test_a_poller_killed_mid_listing_strands_nothing_beyond_the_claim_time(
    monkeypatch: pytest.MonkeyPatch, sim: Simulator, stack: Stack
) -> None:
    """Lambda kills the poller between two claims: nothing after runs, so the documents claimed
    since the last send are marked queued but are not in the queue. The claim expires
    (CLAIM_TTL_SECONDS); the first run after that queues them."""
    chaos = Chaos(monkeypatch, CALM)
    original_claim = DocumentStates.claim_for_queue
    original_flush = QueueSender.flush
    state = {"claims": 0, "dead": False, "killed": False}

    def claim_for_queue(self: DocumentStates, document_id: int, *args: Any, **kwargs: Any) -> Any:
        if not state["killed"] and state["claims"] == 13:
            state["dead"] = state["killed"] = True
            raise LambdaTimeout("the poller is killed")
        state["claims"] += 1
        return original_claim(self, document_id, *args, **kwargs)

    def flush(self: QueueSender, pending: list[tuple[int, str]], report: Any) -> None:
        if not state["dead"]:  # a killed process runs no finally block
            original_flush(self, pending, report)

    monkeypatch.setattr(DocumentStates, "claim_for_queue", claim_for_queue)
    monkeypatch.setattr(QueueSender, "flush", flush)
    seeded = seed_snapshot(sim)
    with quiet_powertools(monkeypatch), handlers_env(monkeypatch, stack, sim) as (poller, proc):
        with pytest.raises(LambdaTimeout):
            poller.lambda_handler({"source": "schedule"}, FakeLambdaContext(300))
        state["dead"] = False
        monkeypatch.setattr(QueueSender, "flush", original_flush)
        run_until_settled(chaos, stack, poller, proc)
        stranded = [
            d for d in sim.state()["documents"] if d["inInbox"] and d["category"] in BOOKABLE
        ]
        assert len(stranded) == 3  # claimed, never sent: waiting for their claim to expire
        poller.runtime().clock = _AnHourLater()  # the poller's clock seam: the claims expire
        run_until_settled(chaos, stack, poller, proc)

    assert_no_violations(sim, stack, seeded)


def test_a_lucca_outage_past_the_redrive_limit_leaves_a_reason_in_the_dlq(
    monkeypatch: pytest.MonkeyPatch, sim: Simulator, stack: Stack
) -> None:
    """Every booking answers 503 for good: the document must end in the DLQ *with* a reason."""
    monkeypatch.setattr(
        client_module, "RetryPolicy", functools.partial(RetryPolicy, base_delay=0.01)
    )
    doc_id = ids_in(sim, "ready")[0]
    chaos = Chaos(monkeypatch, CALM)
    sim.configure(fault_rate=1.0, fault_kinds={"503": 1.0}, fault_endpoints=["book"])
    with quiet_powertools(monkeypatch), handlers_env(monkeypatch, stack, sim) as (_, proc):
        stack.sqs.send_message(
            QueueUrl=stack.queue_url, MessageBody=json.dumps({"documentId": doc_id})
        )
        chaos.drive(stack, proc)

    assert chaos.stats.record_failures == 9  # the 10th delivery dead-letters it, with a reason
    (letter,) = dead_letters(stack)
    assert json.loads(letter["Body"]) == {"documentId": doc_id}
    attributes = letter["MessageAttributes"]
    assert attributes["errorType"]["StringValue"] == "RetriesExhausted"
    assert "still failing after 10 deliveries" in attributes["failureReason"]["StringValue"]
