"""The processor's wiring (``ProcessorRuntime``) as an operator relies on it: what a record ends
in (booked, held, deferred, dead-lettered, raised for SQS to deliver again), the messages it
sends for that (their body, delay and attributes), the ledger entries left by a last delivery
that still fails, the settings that reach the processor, the idempotency record, the rules a
warm instance picks up, and the metrics (``LuccaThrottled`` among them) and log lines every
record leaves.

Lucca is the simulator's request handling in this process, AWS is moto and time a fake clock
(``tests.harness.World``), but for the 429s counted per record, where Lucca answers from a script
(``tests.harness.CannedLucca``); the log lines are read as Powertools writes them (JSON)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import httpx
import pytest
from aws_lambda_powertools.utilities import parameters

from cleemy_booker.clock import utc_iso
from cleemy_booker.config import ProcessorSettings
from cleemy_booker.errors import RetryableError
from cleemy_booker.ledger import Ledger, Status
from cleemy_booker.models import DocumentMessage
from cleemy_booker.processor import BOOK_UNCERTAIN
from cleemy_booker.rules import RuleSet, load_rules
from cleemy_booker.wiring.aws import AwsClients
from cleemy_booker.wiring.processor import ProcessorRuntime, load_processor_rules
from cleemy_booker.wiring.shared import Seams, decision_config
from local.lucca_simulator.app import Route
from tests.aws import REGION, Stack
from tests.clocks import NOW, FakeClock
from tests.factories import COMPLETE, EXAMPLE_RULES_FILE
from tests.harness import (
    LOOPBACK_URL,
    TENANT_URL,
    CannedLucca,
    FakeLambdaContext,
    InProcessLucca,
    Killed,
    RecordingSqs,
    World,
    on,
    stamp,
)
from tests.logs import JsonLines, values

#: The runtimes here mostly get no Lambda context: Powertools says so on every record.
pytestmark = pytest.mark.filterwarnings("ignore:Couldn't determine the remaining time left")

#: The suffix of a last delivery's reason when a booking call of ours may have gone through.
MAY_HAVE_GONE_THROUGH = "; a booking call of ours may have gone through (the listing will tell)"
RULES_PARAMETER = "/cleemy-booker/rules"


@pytest.fixture
def fresh_parameters() -> Iterator[None]:
    """Powertools' SSM provider and cache built anew, inside this test's moto."""
    parameters.clear_caches()
    parameters.base.DEFAULT_PROVIDERS.clear()
    yield
    parameters.clear_caches()
    parameters.base.DEFAULT_PROVIDERS.clear()


def settings_of(world: World, **env: str) -> ProcessorSettings:
    return ProcessorSettings.from_env(world.stack.env(LOOPBACK_URL, **env))


def build(
    world: World,
    *,
    transport: InProcessLucca | None = None,
    sqs: Any = None,
    rules: RuleSet | None = None,
    **env: str,
) -> ProcessorRuntime:
    """A processor instance as its cold start builds it (no invocation started yet)."""
    settings = settings_of(world, **env)
    http = httpx.Client(transport=transport or world.transport())
    return ProcessorRuntime(
        settings,
        AwsClients(world.stack.dynamodb, sqs or world.stack.sqs),
        world.app.config.api_key,
        load_rules(None) if rules is None else rules,
        Seams(clock=world.clock, http=http),
    )


def started(world: World, *, time_left: float = 60.0, **options: Any) -> ProcessorRuntime:
    runtime = build(world, **options)
    runtime.start_invocation(lambda: time_left)
    return runtime


def bare(document_id: int) -> str:
    """A message naming the document alone (a replay): the processor reads it from Lucca."""
    return json.dumps({"documentId": document_id})


def state_item(world: World, document_id: int) -> dict[str, Any]:
    key = {"pk": {"S": f"doc#{document_id}"}, "sk": {"S": "state"}}
    item: dict[str, Any] = world.stack.dynamodb.get_item(
        TableName=world.stack.ledger_table, Key=key, ConsistentRead=True
    )["Item"]
    return item


def event_items(world: World, document_id: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = world.stack.dynamodb.query(
        TableName=world.stack.ledger_table,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :events)",
        ExpressionAttributeValues={":pk": {"S": f"doc#{document_id}"}, ":events": {"S": "event#"}},
    )["Items"]
    return found


def idempotency_items(world: World) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = world.stack.dynamodb.scan(
        TableName=world.stack.idempotency_table
    )["Items"]
    return found


def letter(
    world: World,
    body: str,
    message_id: str,
    reason: str,
    error_type: str,
    document_id: int | None = None,
) -> dict[str, Any]:
    """The ``send_message`` call that dead-letters ``body``: the body as it came (replayable),
    why, and where it came from."""
    attributes: dict[str, Any] = {
        "failureReason": {"DataType": "String", "StringValue": reason[:1000]},
        "errorType": {"DataType": "String", "StringValue": error_type},
        "sourceMessageId": {"DataType": "String", "StringValue": message_id},
    }
    if document_id is not None:
        attributes["documentId"] = {"DataType": "Number", "StringValue": str(document_id)}
    return {
        "QueueUrl": world.stack.dlq_url,
        "MessageBody": body,
        "MessageAttributes": attributes,
    }


def names(emitted: list[tuple[str, str, float]]) -> list[str]:
    """The metrics a record left, but for ``LuccaThrottled`` (the budget's own)."""
    return [name for name, _, _ in emitted if name != "LuccaThrottled"]


def fail_every(world: World, *endpoints: str) -> None:
    """Lucca answers every request to ``endpoints`` with a 503 (an outage)."""
    world.app.configure(
        {"fault_rate": 1.0, "fault_kinds": {"503": 1.0}, "fault_endpoints": list(endpoints)}
    )


def unreachable(world: World, *endpoints: str) -> InProcessLucca:
    """Lucca as an instance reaches it during an outage: no request to ``endpoints`` connects
    (so none can have been applied)."""

    def refuse(route: Route) -> None:
        if route.endpoint in endpoints:
            raise httpx.ConnectError("Lucca is unreachable")

    lucca = world.transport()
    lucca.before.append(refuse)
    return lucca


def throttle_every_book(world: World, retry_after: int) -> None:
    """Lucca's limiter refuses every book, asking to wait ``retry_after`` seconds."""
    world.app.configure(
        {
            "fault_rate": 1.0,
            "fault_kinds": {"429": 1.0},
            "fault_endpoints": ["book"],
            "fault_retry_after_seconds": retry_after,
        }
    )


def throttled_without_retry_after(route: Route, response: httpx.Response) -> httpx.Response | None:
    """Every read answered with a 429 that says nothing of how long to wait."""
    if route.endpoint != "get":
        return None
    return httpx.Response(429, json={"error": "slow down"}, request=response.request)


def scripted_processor(stack: Stack, clock: FakeClock, lucca: CannedLucca) -> ProcessorRuntime:
    """A processor instance whose Lucca answers from ``lucca``, its invocation started."""
    settings = ProcessorSettings.from_env(stack.env(TENANT_URL))
    aws = AwsClients(stack.dynamodb, stack.sqs)
    runtime = ProcessorRuntime(
        settings, aws, "key", load_rules(None), Seams(clock=clock, http=lucca.http())
    )
    runtime.start_invocation(lambda: 60.0)
    return runtime


# --- a record Lucca answers: the result, its metrics and its log line ------------------------


def test_a_booked_record_is_answered_counted_and_logged_with_its_result(
    world: World, emitted: list[tuple[str, str, float]], logs: JsonLines
) -> None:
    doc = world.add(701, **COMPLETE)
    runtime = started(world)

    result = runtime.handle_record(world.listed(doc).model_dump_json(), "m-1")

    (booked,) = [event for event in world.ledger().queries.history(doc) if event.kind == "booked"]
    assert result == {
        "documentId": doc,
        "outcome": "booked",
        "reasons": [],
        "updated": False,
        "requests": 1,
        "requestIds": booked.detail["requestIds"],
    }
    assert len(result["requestIds"]) == 1
    assert emitted == [("DocumentsBooked", "Count", 1), ("LuccaRequests", "Count", 1)]
    (line,) = logs.named("document processed")
    assert line["level"] == "INFO"
    assert line["result"] == result
    assert line["document_id"] == doc
    assert world.bookings(doc) == (1, 1)


@pytest.mark.parametrize(
    ("outcome", "metric"),
    [
        ("held", "DocumentsHeld"),
        ("dry_run", "DocumentsDryRun"),
        ("already_booked", "DocumentsAlreadyBooked"),
    ],
)
def test_each_outcome_has_its_own_metric(
    world: World, emitted: list[tuple[str, str, float]], outcome: str, metric: str
) -> None:
    """Each decided on the listed item or the ledger alone: no request to Lucca."""
    if outcome == "held":
        doc = world.add(703, documentNumber=None)  # no invoice number: a person must look
        runtime = started(world)
    elif outcome == "dry_run":
        doc = world.add(704, **COMPLETE)
        runtime = started(world, DRY_RUN="true")
    else:
        doc = world.add(705, **COMPLETE)
        world.ledger().states.record(doc, Status.BOOKED, "booked")
        runtime = started(world)

    result = runtime.handle_record(world.listed(doc).model_dump_json(), "m-1")

    assert (result["documentId"], result["outcome"], result["requests"]) == (doc, outcome, 0)
    assert emitted == [(metric, "Count", 1), ("LuccaRequests", "Count", 0)]
    assert world.bookings(doc) == (0, 0)


@pytest.mark.filterwarnings("ignore:Couldn't determine the remaining time left")
def test_the_processor_emits_the_429s_of_each_record_and_nothing_when_there_were_none(
    stack: Stack, clock: FakeClock, emitted: list[tuple[str, str, float]]
) -> None:
    # Record 1: four 429s (every attempt), deferred. Record 2: one 429, then not in the inbox.
    # Record 3: not in the inbox at once. Record 4: a 429, then 503s: raised for SQS to retry.
    lucca = CannedLucca(429, 429, 429, 429, 429, 404, 404, 429, 503, 503, 503)
    runtime = scripted_processor(stack, clock, lucca)
    ledger = Ledger(stack.dynamodb, stack.ledger_table)
    for listed in (2, 3):  # claimed by the poller when it listed them
        ledger.states.claim_for_queue(listed, "", now=clock.time(), ttl_seconds=3600)

    deferred = runtime.handle_record(json.dumps({"documentId": 1}), "m1")
    gone = runtime.handle_record(json.dumps({"documentId": 2}), "m2")
    clean = runtime.handle_record(json.dumps({"documentId": 3}), "m3")
    with pytest.raises(RetryableError):
        runtime.handle_record(json.dumps({"documentId": 4}), "m4")

    assert (deferred["outcome"], gone["outcome"], clean["outcome"]) == (
        "deferred",
        "gone",
        "gone",
    )
    assert len(lucca.requests) == 11
    assert values(emitted, "LuccaThrottled") == [4, 1, 1]


def test_a_held_document_delivered_again_is_decided_again(world: World) -> None:
    """A hold is not remembered by the idempotency record: once a person completed the
    document, the next delivery of the same message books it."""
    doc = world.add(706, documentNumber=None, **COMPLETE)
    runtime = started(world)
    body = bare(doc)

    held = runtime.handle_record(body, "m-1")
    assert held["outcome"] == "held"
    assert [reason.split(":")[0] for reason in held["reasons"]] == ["missing_field"]
    world.app.touch(doc, {"documentNumber": "F-706"}, None)  # a person fills the number in

    again = runtime.handle_record(body, "m-2")

    assert again["outcome"] == "booked"
    assert world.bookings(doc) == (1, 1)


def test_a_superseded_copy_is_not_remembered_and_the_newer_message_is_decided(
    world: World,
) -> None:
    """The idempotency record is keyed on the document: a superseded copy remembered there
    would answer "superseded" to every message of the document for a day."""
    doc = world.add(708, **COMPLETE)
    runtime = started(world)
    stale = world.listed(doc)
    world.app.touch(doc, {"comment": "checked"}, None)  # a person's edit: a newer version
    newer = world.listed(doc)
    assert newer.item is not None
    assert newer.item.changed_at is not None
    world.ledger().states.claim_for_queue(
        doc, newer.item.changed_at.isoformat(), now=time.time(), ttl_seconds=3600
    )

    superseded = runtime.handle_record(stale.model_dump_json(), "m-1")
    booked = runtime.handle_record(newer.model_dump_json(), "m-2")

    assert (superseded["outcome"], superseded["requests"]) == ("superseded", 0)
    assert booked["outcome"] == "booked"
    assert world.bookings(doc) == (1, 1)


@pytest.mark.parametrize(("delivery", "renewed"), [(1, False), (2, True)])
def test_a_redelivered_message_renews_its_documents_claim(
    world: World, delivery: int, renewed: bool
) -> None:
    """SQS delivers a message up to MAX_RECEIVE_COUNT times, a visibility timeout apart: the
    claim the poller took must not lapse meanwhile, or the document is queued twice."""
    doc = world.add(709, documentNumber=None, **COMPLETE)  # held: decided with no request
    world.ledger().states.claim_for_queue(doc, "", now=NOW - 3000, ttl_seconds=3600)  # 600 s left

    started(world).handle_record(bare(doc), "m-1", delivery)

    until = state_item(world, doc)["queuedUntil"]["N"]
    assert int(until) == (NOW + 3600 if renewed else NOW + 600)


def test_a_dry_run_delivered_again_is_decided_again(world: World) -> None:
    doc = world.add(707, **COMPLETE)
    runtime = started(world, DRY_RUN="true")
    body = bare(doc)
    planned = runtime.handle_record(body, "m-1")
    assert (planned["outcome"], planned["reasons"]) == ("dry_run", ["dry run: would book"])
    world.app.touch(doc, {"documentNumber": None}, None)  # a person clears the number

    again = runtime.handle_record(body, "m-2")

    assert again["outcome"] == "held"
    assert world.bookings(doc) == (0, 0)


# --- an invalid body --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("[1]", "invalid message: 1 problem(s): (body): Input should be an object"),
        (
            '{"documentId": "abc", "deferrals": -1}',
            "invalid message: 2 problem(s): documentId: Input should be a valid integer, "
            "unable to parse string as an integer",
        ),
        (
            '{"documentId": 7, "colour": "blue"}',
            "invalid message: 1 problem(s): colour: Extra inputs are not permitted",
        ),
    ],
    ids=["not an object", "two problems", "unknown key"],
)
def test_an_invalid_body_is_dead_lettered_with_its_first_problem_and_no_document(
    world: World,
    emitted: list[tuple[str, str, float]],
    logs: JsonLines,
    body: str,
    reason: str,
) -> None:
    """After a valid record for another document: the letter and its log line must not
    carry that document's id."""
    doc = world.add(708, **COMPLETE)
    sent = RecordingSqs(world.stack.sqs)
    runtime = started(world, sqs=sent)
    assert runtime.handle_record(world.listed(doc).model_dump_json(), "m-1")["outcome"] == "booked"
    emitted.clear()
    asked = len(world.app.requests())

    result = runtime.handle_record(body, "m-bad")

    assert result == {"documentId": None, "outcome": "dead_lettered", "reasons": [reason]}
    assert sent.to(world.stack.dlq_url) == [letter(world, body, "m-bad", reason, "InvalidMessage")]
    assert sent.to(world.stack.queue_url) == []
    assert len(world.app.requests()) == asked  # Lucca was asked nothing
    assert emitted == [("DocumentsDeadLettered", "Count", 1)]
    (line,) = logs.named("document dead-lettered")
    assert line["level"] == "ERROR"
    assert (line["reason"], line["errorType"]) == (reason, "InvalidMessage")
    assert "document_id" not in line
    (processed,) = logs.named("document processed")
    assert processed["document_id"] == doc


def test_a_reason_too_long_for_an_attribute_is_cut_in_the_letter_only(
    world: World, logs: JsonLines
) -> None:
    key = "k" * 1500
    body = json.dumps({"documentId": 7, key: 1})
    sent = RecordingSqs(world.stack.sqs)

    result = started(world, sqs=sent).handle_record(body, "m-bad")

    reason = f"invalid message: 1 problem(s): {key}: Extra inputs are not permitted"
    assert result["reasons"] == [reason]
    (sent_letter,) = sent.to(world.stack.dlq_url)
    assert sent_letter["MessageAttributes"]["failureReason"]["StringValue"] == reason[:1000]
    assert len(reason[:1000]) == 1000
    (line,) = logs.named("document dead-lettered")
    assert line["reason"] == reason


# --- a document that cannot succeed: the dead-letter queue ----------------------------------


def test_a_document_not_in_the_inbox_is_recorded_gone_and_not_dead_lettered(
    world: World, emitted: list[tuple[str, str, float]], logs: JsonLines
) -> None:
    """Deleted or booked by a person since the listing: nobody's fault, nothing to replay."""
    sent = RecordingSqs(world.stack.sqs)
    body = bare(799)
    claimed(world, 799)  # listed, then deleted by a person before we got to it

    result = started(world, sqs=sent).handle_record(body, "m-gone")

    state = world.state(799)
    assert state.status is Status.GONE
    (reason,) = state.reasons
    assert reason.startswith("not_in_inbox: ")
    assert (result["documentId"], result["outcome"], result["reasons"]) == (799, "gone", [reason])
    assert sent.to(world.stack.dlq_url) == []
    assert "DocumentsDeadLettered" not in names(emitted)
    assert values(emitted, "DocumentsGone") == [1]
    assert not logs.named("document dead-lettered")


def claimed(world: World, document_id: int) -> None:
    """The claim the poller made when a listing showed the document."""
    world.ledger().states.claim_for_queue(document_id, "", now=time.time(), ttl_seconds=3600)


def test_a_gone_document_delivered_again_once_listed_again_is_decided_again(world: World) -> None:
    """Gone is not remembered by the idempotency record: a listing that shows the document
    again queues it, and that delivery books it."""
    runtime = started(world)
    claimed(world, 798)
    assert runtime.handle_record(bare(798), "m-1")["outcome"] == "gone"
    world.add(798, **COMPLETE)  # in the inbox after all

    again = runtime.handle_record(bare(798), "m-2")

    assert again["outcome"] == "booked"
    assert world.bookings(798) == (1, 1)


# --- retryable trouble: SQS delivers again, until the last delivery --------------------------


def test_a_retryable_failure_before_the_last_delivery_is_raised_for_sqs_to_deliver_again(
    world: World, emitted: list[tuple[str, str, float]], logs: JsonLines
) -> None:
    doc = world.add(710, **COMPLETE)
    fail_every(world, "book")
    sent = RecordingSqs(world.stack.sqs)

    with pytest.raises(RetryableError) as raised:
        started(world, sqs=sent).handle_record(world.listed(doc).model_dump_json(), "m-1", 2)

    assert raised.value.status == 503
    assert sent.sent == []  # neither the DLQ nor a deferred copy: the same message comes back
    assert names(emitted) == ["DocumentsRetried"]
    assert values(emitted, "DocumentsRetried") == [1]
    (line,) = logs.named("retryable failure; SQS will deliver again")
    assert line["level"] == "WARNING"
    assert line["error"] == str(raised.value)
    assert line["document_id"] == doc
    assert world.state(doc).status is not Status.FAILED


def test_a_record_without_a_receive_count_is_a_first_delivery(world: World) -> None:
    """With two deliveries allowed, a record that says nothing of its count is not the last."""
    doc = world.add(711, **COMPLETE)
    fail_every(world, "book")
    runtime = started(world, MAX_RECEIVE_COUNT="2")
    body = world.listed(doc).model_dump_json()

    with pytest.raises(RetryableError):
        runtime.handle_record(body, "m-1")

    assert runtime.handle_record(body, "m-1", 2)["outcome"] == "dead_lettered"


@pytest.mark.parametrize("listed", [True, False], ids=["listed item", "document id alone"])
def test_the_last_delivery_still_failing_dead_letters_the_document_and_records_it_failed(
    world: World, emitted: list[tuple[str, str, float]], logs: JsonLines, listed: bool
) -> None:
    """Lucca unreachable for the read: a listing too old to book from, or none. The poller
    queues the document again after the recheck time; the listed item, when the message has
    one, is what names the document in the digest (nothing else was read)."""
    doc = world.add(712, **COMPLETE)
    message = world.listed(doc)
    assert (
        world.ledger()
        .states.claim_for_queue(doc, stamp(message), now=NOW, ttl_seconds=3600)
        .claimed
    )
    body = message.model_dump_json() if listed else bare(doc)
    world.clock.sleep(1200)  # the listing is older than LISTING_FRESH_SECONDS (900)
    sent = RecordingSqs(world.stack.sqs)
    lucca = unreachable(world, "get", "book")
    runtime = started(world, transport=lucca, sqs=sent, HELD_RECHECK_SECONDS="7200")

    result = runtime.handle_record(body, "m-1", 3)

    (reason,) = result["reasons"]
    assert reason.startswith("still failing after 3 deliveries: get: no answer")
    assert MAY_HAVE_GONE_THROUGH not in reason
    assert result == {"documentId": doc, "outcome": "dead_lettered", "reasons": [reason]}
    assert sent.to(world.stack.dlq_url) == [
        letter(world, body, "m-1", reason, "RetriesExhausted", document_id=doc)
    ]
    assert sent.to(world.stack.queue_url) == []
    state = world.state(doc)
    assert (state.status, state.reasons) == (Status.FAILED, (reason,))
    if listed:
        assert state.summary is not None
        assert state.summary.document_number == f"F-{doc}"
    else:
        assert state.summary is None
    assert state_item(world, doc)["recheckAt"] == {"N": str(int(world.clock.now + 7200))}
    (failed,) = [event for event in world.ledger().queries.history(doc) if event.kind == "failed"]
    assert failed.detail["status"] == Status.FAILED.value
    assert failed.detail["reasons"] == [reason]
    assert names(emitted) == ["DocumentsDeadLettered"]
    (line,) = logs.named("document dead-lettered")
    assert (line["reason"], line["errorType"]) == (reason, "RetriesExhausted")
    assert world.bookings(doc)[0] == 0


@pytest.mark.parametrize("earlier", ["BOOKING mark", "book_uncertain hold"])
def test_the_last_delivery_after_a_booking_call_of_ours_keeps_the_state_and_says_why(
    world: World, earlier: str
) -> None:
    """The call may have booked it: FAILED would lose that (and a replay would book blind)."""
    doc = world.add(713, **COMPLETE)
    ledger = world.ledger()
    if earlier == "BOOKING mark":
        ledger.states.record(doc, Status.BOOKING, "booking", modified_at="m1")
    else:
        ledger.states.record(
            doc, Status.HELD, "held", reasons=[f"{BOOK_UNCERTAIN}: Lucca answered 409"]
        )
    before = world.state(doc)
    sent = RecordingSqs(world.stack.sqs)
    body = bare(doc)

    result = started(world, transport=unreachable(world, "get"), sqs=sent).handle_record(
        body, "m-1", 3
    )

    (reason,) = result["reasons"]
    assert reason.startswith("still failing after 3 deliveries: ")
    assert reason.endswith(MAY_HAVE_GONE_THROUGH)
    assert result["outcome"] == "dead_lettered"
    assert sent.to(world.stack.dlq_url) == [
        letter(world, body, "m-1", reason, "RetriesExhausted", document_id=doc)
    ]
    after = world.state(doc)
    assert (after.status, after.reasons) == (before.status, before.reasons)
    assert "failed" not in [event.kind for event in world.ledger().queries.history(doc)]


# --- deferral: not now, and not a failure ------------------------------------------------------


#: What happens before the record, to the simulated Lucca or the runtime.
SetUp = Callable[[World, ProcessorRuntime], None]


def _time_short(world: World, runtime: ProcessorRuntime) -> None:
    runtime.start_invocation(lambda: 5.0)  # under the stop margin (10 s)


def _budget_busy_for(seconds: float) -> SetUp:
    def busy(world: World, runtime: ProcessorRuntime) -> None:
        runtime.budget.store.push_back(NOW + seconds, 1.0)

    return busy


def _throttled(retry_after: int) -> SetUp:
    def throttled(world: World, runtime: ProcessorRuntime) -> None:
        throttle_every_book(world, retry_after)

    return throttled


def _throttled_past_the_deadline(world: World, runtime: ProcessorRuntime) -> None:
    throttle_every_book(world, 7)
    runtime.start_invocation(lambda: 15.0)  # 5 s to the deadline: a 7 s wait is not started


def _nothing(world: World, runtime: ProcessorRuntime) -> None:
    pass


#: cause: (what happens first, the message names the document alone, the settings, the reason
#: (how it starts), the message's delay)
DEFERRALS: dict[str, tuple[SetUp, bool, dict[str, str], str, int]] = {
    "time short": (_time_short, False, {}, "not enough time left in this invocation", 2),
    "budget busy half a second": (
        _budget_busy_for(0.5),
        False,
        {"BUDGET_MAX_WAIT_SECONDS": "0"},
        "request budget busy",
        1,
    ),
    "budget busy an hour": (_budget_busy_for(3600), False, {}, "request budget busy", 900),
    "Lucca throttling": (_throttled(7), False, {}, "Lucca busy or time short: book -> 429", 8),
    "Lucca throttling, no Retry-After": (
        _nothing,
        True,
        {},
        "Lucca busy or time short: get -> 429",
        31,
    ),
    "no time left to wait": (
        _throttled_past_the_deadline,
        False,
        {},
        "Lucca busy or time short: book -> 429: no time left to retry",
        8,
    ),
}


@pytest.mark.parametrize("cause", list(DEFERRALS))
def test_a_deferred_document_is_sent_again_later_and_never_counts_towards_the_dlq(
    world: World, emitted: list[tuple[str, str, float]], logs: JsonLines, cause: str
) -> None:
    set_up, by_id, env, reason, delay = DEFERRALS[cause]
    doc = world.add(720, **COMPLETE)
    listed = world.listed(doc)
    message = (DocumentMessage(documentId=doc) if by_id else listed).model_copy(
        update={"deferrals": 2}
    )
    assert (
        world.ledger().states.claim_for_queue(doc, stamp(listed), now=NOW, ttl_seconds=3600).claimed
    )
    sent = RecordingSqs(world.stack.sqs)
    lucca = world.transport()
    if by_id:
        lucca.after.append(throttled_without_retry_after)
    runtime = started(world, transport=lucca, sqs=sent, **env)
    set_up(world, runtime)
    asked = len(world.app.requests())

    # The last delivery SQS allows: a failure here would go to the DLQ; a deferral does not.
    result = runtime.handle_record(message.model_dump_json(), "m-1", receive_count=3)

    (said,) = result["reasons"]
    assert said.startswith(reason)
    assert result == {"documentId": doc, "outcome": "deferred", "reasons": [said]}
    (again,) = sent.to(world.stack.queue_url)  # a new message: a fresh receive count
    assert set(again) == {"QueueUrl", "MessageBody", "DelaySeconds"}
    assert again["DelaySeconds"] == delay
    assert DocumentMessage.model_validate_json(again["MessageBody"]) == message.model_copy(
        update={"deferrals": 3}
    )
    assert sent.to(world.stack.dlq_url) == []
    # Still on its way: the poller does not queue it again meanwhile.
    assert world.state(doc).queued_until == int(world.clock.now + delay + 3600)
    assert names(emitted) == ["DocumentsDeferred"]
    assert values(emitted, "DocumentsDeferred") == [1]
    (line,) = logs.named("document deferred")
    assert (line["reason"], line["delay"], line["document_id"]) == (said, delay, doc)
    assert world.bookings(doc)[0] == 0
    if cause.startswith(("time", "budget")):
        assert len(world.app.requests()) == asked  # deferred before any request


def test_exactly_the_stop_margin_left_is_still_enough_to_start_a_document(
    world: World,
) -> None:
    doc = world.add(721, **COMPLETE)
    runtime = started(world, time_left=10.0)  # the stop margin, to the second

    assert runtime.handle_record(world.listed(doc).model_dump_json(), "m-1")["outcome"] == "booked"


def test_a_runtime_not_told_its_time_left_has_no_deadline(world: World) -> None:
    doc = world.add(722, **COMPLETE)
    runtime = build(world)  # cold start, then a record before any invocation was started

    assert runtime.handle_record(world.listed(doc).model_dump_json(), "m-1")["outcome"] == "booked"


# --- the idempotency record: keyed on the document ---------------------------------------------


def test_another_message_for_a_document_being_booked_is_deferred_then_answered_as_booked(
    world: World,
) -> None:
    """The record is the document's, not the message's: a deferred copy (another body) that
    reaches a second instance while the first books is deferred, and a later message for it
    gets the booking's own result without a request."""
    doc = world.add(730, **COMPLETE)
    message = world.listed(doc)
    first_lucca = world.transport()
    sent = RecordingSqs(world.stack.sqs)
    first = started(world, transport=first_lucca, sqs=sent)
    second = started(world, sqs=sent)
    copy = message.model_copy(update={"deferrals": 1}).model_dump_json()
    overlapping: list[dict[str, Any]] = []
    first_lucca.before.append(
        on("book", lambda: overlapping.append(second.handle_record(copy, "m-2")))
    )

    booked = first.handle_record(message.model_dump_json(), "m-1")

    assert booked["outcome"] == "booked"
    assert overlapping == [
        {"documentId": doc, "outcome": "deferred", "reasons": ["another instance is processing it"]}
    ]
    (again,) = sent.to(world.stack.queue_url)
    assert again["DelaySeconds"] == 31
    world.clock.sleep(300)
    asked = len(world.app.requests())

    later = second.handle_record(bare(doc), "m-3")  # a replay: yet another body

    assert later == booked
    assert len(world.app.requests()) == asked
    assert world.bookings(doc) == (1, 1)


def test_the_idempotency_record_lasts_a_day_and_is_written_through_the_runtimes_client(
    world: World,
) -> None:
    """Through the client the runtime was given (its retries, its endpoint), not one of
    Powertools' own."""
    writes: list[tuple[str, str]] = []

    def seen(params: dict[str, Any], model: Any, **_: Any) -> None:
        writes.append((model.name, params.get("TableName", "")))

    world.stack.dynamodb.meta.events.register("provide-client-params.dynamodb", seen)
    doc = world.add(731, **COMPLETE)
    runtime = started(world)
    before = time.time()

    runtime.handle_record(world.listed(doc).model_dump_json(), "m-1")

    after = time.time()
    assert ("PutItem", world.stack.idempotency_table) in writes  # in progress
    assert ("UpdateItem", world.stack.idempotency_table) in writes  # completed
    (record,) = idempotency_items(world)
    assert record["status"] == {"S": "COMPLETED"}
    assert int(before) + 86400 <= int(record["expiration"]["N"]) <= int(after) + 86400


def test_a_document_whose_instance_died_is_taken_up_once_that_invocation_is_over(
    world: World,
) -> None:
    """With the Lambda context registered, the in-progress record lasts the invocation: a new
    delivery after it is processed, not deferred for a day."""
    doc = world.add(732, **COMPLETE)
    dying = world.transport()

    def die() -> None:
        raise Killed("the instance dies as its read reaches Lucca")

    dying.before.append(on("get", die))
    first = build(world, transport=dying)
    first.start_invocation(lambda: 60.0, FakeLambdaContext(timeout_seconds=0.05))
    with pytest.raises(Killed):
        first.handle_record(bare(doc), "m-1")
    (record,) = idempotency_items(world)
    assert record["status"] == {"S": "INPROGRESS"}
    assert "in_progress_expiration" in record
    time.sleep(0.1)  # that invocation's time is over

    result = started(world).handle_record(bare(doc), "m-1")

    assert result["outcome"] == "booked"
    assert world.bookings(doc) == (1, 1)


# --- the settings that reach the processor ---------------------------------------------------


def test_a_hold_over_the_ceiling_is_looked_at_again_once_the_configuration_changes(
    world: World,
) -> None:
    """MAX_AUTO_AMOUNT holds a 120 EUR invoice: a new configuration re-opens it, time does not
    (nothing in the document or the ceiling moves with the clock)."""
    doc = world.add(740, **COMPLETE)
    env = {"MAX_AUTO_AMOUNT": "100", "HELD_RECHECK_SECONDS": "600"}

    result = started(world, **env).handle_record(world.listed(doc).model_dump_json(), "m-1")

    assert result["outcome"] == "held"
    assert [reason.split(":")[0] for reason in result["reasons"]] == ["above_ceiling"]
    item = state_item(world, doc)
    assert "recheckAt" not in item
    assert item["configVersion"] == {"S": decision_config(settings_of(world, **env))}


@pytest.mark.parametrize(
    ("changes", "reason", "rechecked"),
    [
        ({"documentDate": "2099-01-01", "dueDate": "2099-02-01"}, "date_in_future", True),
        ({"documentNumber": None}, "missing_field", False),
    ],
)
def test_only_a_hold_time_can_lift_is_looked_at_again_after_the_recheck_time(
    world: World, changes: dict[str, Any], reason: str, rechecked: bool
) -> None:
    """A date in the future stops being one with time: looked at again HELD_RECHECK_SECONDS
    later, on the fake clock. A missing number does not come with time: only a change in
    Lucca re-opens it."""
    doc = world.add(742, **{**COMPLETE, **changes})

    result = started(world, HELD_RECHECK_SECONDS="600").handle_record(
        world.listed(doc).model_dump_json(), "m-1"
    )

    assert result["outcome"] == "held"
    assert reason in [held.split(":")[0] for held in result["reasons"]]
    item = state_item(world, doc)
    assert item.get("recheckAt") == ({"N": str(int(NOW + 600))} if rechecked else None)


@pytest.mark.parametrize(("age", "requests"), [(30, ["book"]), (120, ["get", "book"])])
def test_a_listing_older_than_listing_fresh_seconds_is_read_again(
    world: World, age: int, requests: list[str]
) -> None:
    doc = world.add(741, **COMPLETE)
    message = world.listed(doc)
    world.clock.sleep(age)

    result = started(world, LISTING_FRESH_SECONDS="60").handle_record(
        message.model_dump_json(), "m-1"
    )

    assert result["outcome"] == "booked"
    assert world.requests(doc) == requests


def test_the_ledger_keeps_entries_for_the_retention_days_stamped_on_the_runtimes_clock(
    world: World,
) -> None:
    doc = world.add(742, **COMPLETE)

    started(world, LEDGER_RETENTION_DAYS="30").handle_record(
        world.listed(doc).model_dump_json(), "m-1"
    )

    events = world.ledger().queries.history(doc)
    assert [event.at for event in events] == [utc_iso(NOW)] * len(events)
    expiries = {int(item["expiresAt"]["N"]) for item in event_items(world, doc)}
    assert expiries == {int(NOW) + 30 * 86400}


# --- rules: from the configured source, and from SSM again under a warm instance -------------


def test_the_processors_rules_come_from_the_configured_source(
    world: World, fresh_parameters: None
) -> None:
    ssm = boto3.client("ssm", region_name=REGION)
    ssm.put_parameter(Name=RULES_PARAMETER, Value='{"rules": []}', Type="String")
    example = [rule.name for rule in load_rules(str(EXAMPLE_RULES_FILE)).rules]
    assert example

    from_file = load_processor_rules(settings_of(world, RULES_SOURCE=f" {EXAMPLE_RULES_FILE} "))
    from_ssm = load_processor_rules(settings_of(world, RULES_SOURCE=f"ssm:{RULES_PARAMETER}"))

    assert [rule.name for rule in from_file.rules] == example
    assert from_ssm.rules == []
    assert load_processor_rules(settings_of(world)) == load_rules(None)


def test_rules_changed_in_ssm_reach_a_warm_instance_at_its_next_invocation(
    world: World, fresh_parameters: None
) -> None:
    ssm = boto3.client("ssm", region_name=REGION)
    ssm.put_parameter(Name=RULES_PARAMETER, Value='{"rules": []}', Type="String")
    env = {"RULES_SOURCE": f"ssm:{RULES_PARAMETER}"}
    settings = settings_of(world, **env)
    runtime = build(world, rules=load_processor_rules(settings), **env)
    runtime.start_invocation(lambda: 60.0)
    held_before = world.add(750, documentNumber=None)  # no invoice number: held
    assert runtime.handle_record(bare(held_before), "m-1")["outcome"] == "held"
    config_before = state_item(world, held_before)["configVersion"]["S"]
    assert config_before == decision_config(settings)

    ssm.put_parameter(
        Name=RULES_PARAMETER, Value=EXAMPLE_RULES_FILE.read_text(), Type="String", Overwrite=True
    )
    parameters.clear_caches()  # Powertools' five minutes are over
    runtime.start_invocation(lambda: 60.0)
    updated = world.add(751)
    result = runtime.handle_record(bare(updated), "m-2")
    held_after = world.add(752, documentNumber=None)
    assert runtime.handle_record(bare(held_after), "m-3")["outcome"] == "held"

    assert (result["outcome"], result["updated"]) == ("booked", True)
    assert world.detail(updated)["document"]["accountingLabel"] == "F-751"
    config_after = state_item(world, held_after)["configVersion"]["S"]
    assert config_after == decision_config(settings)
    assert config_after != config_before
