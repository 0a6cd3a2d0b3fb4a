"""Each exactly-once invariant guarded by a fast test that fails when the line keeping it goes.

What each line protects, and the test that says so:

* the ``BOOKING`` mark before the book call: a booking whose answer died with its instance is
  recorded booked by the next delivery, never booked again nor dead-lettered;
* ``_left_inbox`` asking Lucca: a refused book after a call that may have booked is held for a
  person while the document is still in the inbox, never recorded booked;
* the idempotency record: a second instance given a document being booked defers it;
* no listed item once an earlier attempt touched the document: the decision is taken on what
  Lucca holds after our own update, not on the listing;
* the stale-claim clause: a document in progress is queued again only once its claim time is
  over (and then it is, so a dead instance does not strand it);
* ids de-duplicated across pages: a document pushed onto the next page is listed and queued once.

And the paths a user relies on that no other fast test runs: deferral (budget busy, time short),
retries exhausted, the duplicate-number hold, a 404 while booking, a poll whose messages cannot
be sent, the budget's lost race. Lucca is the simulator's request handling in this process
(``InProcessLucca``, one transport per instance so hooks act on one instance's requests); AWS is
moto; time is a fake clock.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from cleemy_booker.budget import DynamoSlotStore
from cleemy_booker.client import LuccaClient
from cleemy_booker.config import PollerSettings, ProcessorSettings
from cleemy_booker.errors import RetryableError
from cleemy_booker.gate import GateConfig
from cleemy_booker.ledger import DocumentState, Ledger, Status
from cleemy_booker.listing import ListingStats, iter_inbox
from cleemy_booker.models import DocumentMessage, InboxItem
from cleemy_booker.poller import InboxPoller
from cleemy_booker.processor import BOOK_UNCERTAIN, DocumentProcessor, ProcessResult, summarize
from cleemy_booker.rules import RuleSet, load_rules
from cleemy_booker.wiring.aws import AwsClients
from cleemy_booker.wiring.poller import PollerRuntime
from cleemy_booker.wiring.processor import IN_PROGRESS_DELAY, ProcessorRuntime
from cleemy_booker.wiring.shared import Seams
from local.lucca_simulator import SimulatorConfig
from local.lucca_simulator.app import Route, SimulatorApp
from tests.aws import Stack, create_pk_sk_table, create_stack
from tests.factories import example_rules
from tests.harness import AfterHook, InProcessLucca, add_document, dead_letters
from tests.unit.test_processor_edits import on
from tests.unit.test_runtime import NOW, FakeClock

BASE_URL = "http://127.0.0.1"
SCOPE = "purchase:90"  # every factory item is attached to purchase 90
#: Labelled and due already: booked as it is, without a PUT, under every rule set used here.
COMPLETE = {"accountingLabel": "Paper", "dueDate": "2026-11-01"}
#: The runtimes here are given no Lambda context: Powertools says so on every record.
pytestmark = pytest.mark.filterwarnings("ignore:Couldn't determine the remaining time left")


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
            BASE_URL,
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
        settings = ProcessorSettings.from_env(self.stack.env(BASE_URL, **env))
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
        settings = PollerSettings.from_env(self.stack.env(BASE_URL))
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


@pytest.fixture
def world() -> Iterator[World]:
    with simulated_world() as found:
        yield found


def die_after(endpoint: str) -> AfterHook:
    """Lucca has done the operation and answered; the instance dies before reading it."""

    def after(route: Route, response: httpx.Response) -> httpx.Response | None:
        if route.endpoint == endpoint:
            raise Killed(f"killed as Lucca answered the {endpoint}")
        return None

    return after


def codes(result: ProcessResult) -> list[str]:
    return [reason.split(":", 1)[0] for reason in result.reasons]


def stamp(message: DocumentMessage) -> str:
    """The listed item's ``modifiedAt``, as the poller claims it."""
    assert message.item is not None
    assert message.item.changed_at is not None
    return message.item.changed_at.isoformat()


def kinds(world: World, document_id: int) -> list[str]:
    return [event.kind for event in world.ledger().queries.history(document_id)]


# --- the BOOKING mark before the book call ----------------------------------------------------


def test_a_booking_whose_answer_died_with_its_instance_is_held_then_confirmed_by_the_listing(
    world: World,
) -> None:
    doc = world.add(601, **COMPLETE)
    message = world.listed(doc)
    dying = world.transport()
    dying.after.append(die_after("book"))
    with pytest.raises(Killed):
        world.processor(dying).process(message)
    assert world.bookings(doc) == (1, 1)  # Lucca booked it; nobody of ours heard

    # SQS delivers the message again. No DocumentFailed: not the DLQ (a replay would book blind).
    result = world.processor().process(message)

    assert world.bookings(doc) == (1, 1)  # never booked (or tried) again
    assert world.state(doc).status is not Status.FAILED
    assert world.claim_holder("F-601") == doc  # its number keeps blocking a duplicate
    # A 404 after our own call proves nothing (the GET is only inferred): possibly booked ...
    assert codes(result) == [BOOK_UNCERTAIN]
    # ... until a listing of the whole inbox no longer shows it: then recorded as booked.
    assert world.poll() == [doc]
    assert world.state(doc).status is Status.BOOKED
    assert world.bookings(doc) == (1, 1)


def test_a_document_gone_from_the_inbox_while_booking_is_booked_once_the_listing_confirms_it(
    world: World,
) -> None:
    """The 404-while-BOOKING path: the earlier attempt marked BOOKING and its book went
    through unseen; the redelivery finds the document gone and holds it as possibly booked,
    and the poller's next complete listing records it booked."""
    doc = world.add(602, **COMPLETE)
    message = world.listed(doc)
    ledger = world.ledger()
    assert message.item is not None
    assert ledger.numbers.claim_number(SCOPE, "F-602", doc) is None
    ledger.states.record(doc, Status.BOOKING, "booking", summary=summarize(message.item))
    world.client().book_document(doc)  # the earlier attempt's call, its answer lost
    before = len(world.requests(doc))

    result = world.runtime().handle_record(message.model_dump_json(), "m-2")

    assert world.requests(doc)[before:] == ["get"]  # asked once, not booked again
    assert world.bookings(doc) == (1, 1)
    assert dead_letters(world.stack) == []
    assert world.claim_holder("F-602") == doc
    state = world.state(doc)
    assert state.summary is not None
    assert state.summary.document_number == "F-602"  # the BOOKING mark's summary is kept
    # Possibly booked (the 404 proves nothing) until the next complete listing confirms it.
    assert result["outcome"] == "held"
    assert state.status is Status.HELD
    assert world.poll() == [doc]
    assert world.state(doc).status is Status.BOOKED
    assert world.requests(doc)[before:] == ["get"]  # the listing asked nothing of the document
    (booked,) = [e for e in world.ledger().queries.history(doc) if e.kind == "booked"]
    assert "left the inbox" in booked.detail["confirmedBy"]


# --- _left_inbox: never recorded BOOKED unless booked -----------------------------------------


@pytest.mark.parametrize("earlier", ["a BOOKING mark", "this attempt's unanswered call"])
def test_a_book_refused_after_a_possible_booking_is_held_while_still_in_the_inbox(
    world: World, earlier: str
) -> None:
    doc = world.add(603, **COMPLETE)
    lucca = world.transport()
    if earlier == "a BOOKING mark":
        world.app.touch(doc, {}, "book_rejected")
        assert world.ledger().numbers.claim_number(SCOPE, "F-603", doc) is None
        world.ledger().states.record(doc, Status.BOOKING, "booking")
        message = DocumentMessage(documentId=doc)
    else:
        message = world.listed(doc)

        def no_answer() -> None:
            raise httpx.ReadTimeout("no answer in time")  # sent; applied or not, who knows

        def refuse() -> None:
            world.app.touch(doc, {}, "book_rejected")

        # The refusal's hook first: the one that raises ends the hooks of its request.
        lucca.before += [on("book", refuse, call=2), on("book", no_answer, call=1)]

    result = world.processor(lucca).process(message)

    assert result.outcome == "held"
    assert codes(result) == [BOOK_UNCERTAIN]
    assert world.bookings(doc)[0] == 0
    assert world.detail(doc)["inInbox"]
    assert world.state(doc).status is Status.HELD  # a person checks: not recorded BOOKED
    assert "booked" not in kinds(world, doc)
    assert world.claim_holder("F-603") == doc  # may have been booked: the number stays


# --- the idempotency record: another instance is processing it --------------------------------


def test_a_second_instance_given_a_document_being_booked_defers_it_and_books_nothing(
    world: World,
) -> None:
    doc = world.add(604, **COMPLETE)
    body = world.listed(doc).model_dump_json()
    first_lucca, second_lucca = world.transport(), world.transport()
    sent = RecordingSqs(world.stack.sqs)
    first = world.runtime(first_lucca, sent)
    second = world.runtime(second_lucca, sent)
    overlapping: list[dict[str, Any]] = []
    # SQS delivers the message to another instance while the first one's book is on its way.
    first_lucca.before.append(
        on("book", lambda: overlapping.append(second.handle_record(body, "m-2")))
    )

    result = first.handle_record(body, "m-1")

    (other,) = overlapping
    assert result["outcome"] == "booked"
    assert other == {
        "documentId": doc,
        "outcome": "deferred",
        "reasons": ["another instance is processing it"],
    }
    assert world.bookings(doc) == (1, 1)  # the second instance sent no book
    assert world.requests(doc) == ["book"]
    assert world.state(doc).status is Status.BOOKED
    assert dead_letters(world.stack) == []
    (again,) = sent.to(world.stack.queue_url)  # looked at again after a while
    assert again["DelaySeconds"] == IN_PROGRESS_DELAY + 1


# --- no listed item once an earlier attempt touched the document ------------------------------


def _number_normalised_by_lucca(world: World, doc: int, number: str) -> AfterHook:
    """Lucca answers (and holds) our PUT with the invoice number written its own way."""

    def after(route: Route, response: httpx.Response) -> httpx.Response | None:
        if route.endpoint != "put" or route.document_id != doc or not response.is_success:
            return None
        touched = world.app.touch(doc, {"documentNumber": number}, None)
        assert touched is not None
        answered = response.json()
        answered["document"]["documentNumber"] = number
        answered["modifiedAt"] = answered["document"]["modifiedAt"] = touched["modifiedAt"]
        return httpx.Response(200, json=answered, request=response.request)

    return after


def test_a_redelivery_after_our_own_update_decides_on_what_lucca_holds_not_on_the_listing(
    world: World,
) -> None:
    doc = world.add(605, documentNumber="f 605")  # no label, no due date: the rules update it
    message = world.listed(doc)
    lucca = world.transport()
    lucca.after.append(_number_normalised_by_lucca(world, doc, "F-605"))
    world.faults("book")  # updated, then Lucca is down for the book: SQS delivers it again
    with pytest.raises(RetryableError):
        world.processor(lucca, example_rules()).process(message)
    world.heal()
    assert world.state(doc).status is Status.BOOKING
    assert world.claim_holder("F-605") == doc  # the claim followed Lucca's number ...
    assert world.claim_holder("f 605") is None  # ... and gave the listed one back
    # Meanwhile another document carrying the number as first listed is booked: its right.
    other = world.add(606, documentNumber="f 605", **COMPLETE)
    assert world.processor().process(world.listed(other)).outcome == "booked"

    result = world.processor(rules=example_rules()).process(message)  # the listing still fresh

    # What Lucca holds (F-605, labelled and due) duplicates nothing: booked, not held on the
    # listing's number, which is no longer the document's.
    assert (result.outcome, result.reasons) == ("booked", ())
    assert world.bookings(doc)[0] == 1
    assert world.detail(doc)["puts"] == 1
    assert world.state(doc).status is Status.BOOKED
    assert world.claim_holder("F-605") == doc


# --- the stale-claim clause -------------------------------------------------------------------


@pytest.mark.parametrize("status", [Status.UPDATED, Status.BOOKING])
def test_a_document_in_progress_is_queued_again_only_once_its_claim_time_is_over(
    world: World, status: Status
) -> None:
    ledger = world.ledger()
    assert ledger.states.claim_for_queue(1, "m1", now=NOW, ttl_seconds=3600).claimed
    ledger.states.record(1, status, status.lower(), modified_at="m1")  # an instance is on it, now

    world.clock.now = NOW + 300  # the next poll lists it again
    during = ledger.states.claim_for_queue(1, "m1", now=world.clock.now, ttl_seconds=3600)
    assert (during.claimed, during.previous) == (False, status)  # one instance at a time
    assert during.retry_after == NOW + 3600

    world.clock.now = NOW + 3601  # that instance died: the claim time is over
    stuck = ledger.states.claim_for_queue(1, "m1", now=world.clock.now, ttl_seconds=3600)
    assert (stuck.claimed, stuck.previous) == (True, status)  # not stranded


def test_a_poll_while_a_document_is_being_booked_queues_it_no_second_time(world: World) -> None:
    doc = world.add(607, **COMPLETE)
    poller = InboxPoller(
        client=world.client(),
        ledger=world.ledger(),
        sqs=world.stack.sqs,
        queue_url=world.stack.queue_url,
        filters={},
        clock=world.clock.time,
    )
    assert poller.run().enqueued == 1
    world.clock.now += 60
    world.ledger().states.record(doc, Status.BOOKING, "booking")  # the processor took it
    world.clock.now += 300

    again = poller.run()

    assert (again.enqueued, dict(again.skipped)) == (0, {"booking": 1})


# --- ids de-duplicated across pages -----------------------------------------------------------


def _a_document_arriving_in_front_after_page_one(world: World) -> AfterHook:
    """After page 1 is answered, a document with a lower id arrives: Lucca sorts by id, so
    every later document moves one place on, and page 2 starts with page 1's last one."""
    pages = 0

    def after(route: Route, response: httpx.Response) -> httpx.Response | None:
        nonlocal pages
        if route.endpoint == "list":
            pages += 1
            if pages == 1:
                world.add(5)
        return None

    return after


def test_a_document_pushed_onto_the_next_page_is_listed_once(world: World) -> None:
    for doc in (10, 11, 12, 13):
        world.add(doc)
    lucca = world.transport()
    lucca.after.append(_a_document_arriving_in_front_after_page_one(world))
    stats = ListingStats()

    ids = [
        listed.document_id for listed in iter_inbox(world.client(lucca), page_size=2, stats=stats)
    ]

    assert ids == [10, 11, 12, 13]  # 11 came back on page 2: not yielded again
    assert stats.duplicates_skipped == 1
    assert stats.stopped_because == "count reached"


def test_a_document_pushed_onto_the_next_page_is_queued_once(world: World) -> None:
    for doc in (10, 11, 12, 13):
        world.add(doc)
    lucca = world.transport()
    lucca.after.append(_a_document_arriving_in_front_after_page_one(world))
    poller = InboxPoller(
        client=world.client(lucca),
        ledger=world.ledger(),
        sqs=world.stack.sqs,
        queue_url=world.stack.queue_url,
        filters={},
        page_size=2,
        clock=world.clock.time,
    )

    report = poller.run()

    assert (report.listed, report.enqueued, dict(report.skipped)) == (4, 4, {})
    messages = world.stack.sqs.receive_message(
        QueueUrl=world.stack.queue_url, MaxNumberOfMessages=10
    )["Messages"]
    assert sorted(json.loads(m["Body"])["documentId"] for m in messages) == [10, 11, 12, 13]


# --- deferral: not now, and not a failure -----------------------------------------------------


@pytest.mark.parametrize(
    ("cause", "reason", "delay"),
    [
        ("budget busy", "request budget busy", 601),
        ("time short", "not enough time left in this invocation", 2),
    ],
)
def test_a_deferred_document_comes_back_later_without_burning_a_receive(
    world: World, cause: str, reason: str, delay: int
) -> None:
    doc = world.add(611, **COMPLETE)
    message = world.listed(doc)
    sent = RecordingSqs(world.stack.sqs)
    runtime = world.runtime(sqs=sent)
    if cause == "budget busy":
        runtime.budget.store.push_back(NOW + 600, 1.0)  # the tenant's budget is spent for 10 min
    else:
        runtime.start_invocation(lambda: 5.0)  # under the stop margin (10 s)
    listed_requests = len(world.app.requests())

    # The last delivery SQS allows: a failure here would go to the DLQ; a deferral does not.
    result = runtime.handle_record(message.model_dump_json(), "m-1", receive_count=3)

    assert result == {"documentId": doc, "outcome": "deferred", "reasons": [reason]}
    (again,) = sent.to(world.stack.queue_url)  # a new message: a fresh receive count
    assert again["DelaySeconds"] == delay
    deferred = DocumentMessage.model_validate_json(again["MessageBody"])
    assert deferred.deferrals == 1
    assert deferred.item == message.item
    assert deferred.listedAt == message.listedAt
    assert sent.to(world.stack.dlq_url) == []
    assert len(world.app.requests()) == listed_requests  # Lucca was asked nothing
    assert world.bookings(doc) == (0, 0)
    # Still on its way: the poller does not queue it a second time meanwhile.
    assert world.state(doc).queued_until == NOW + delay + 3600
    claim = world.ledger().states.claim_for_queue(
        doc, stamp(message), now=NOW + delay + 60, ttl_seconds=3600
    )
    assert not claim.claimed


def test_a_book_the_budget_deferred_before_sending_it_is_not_taken_for_a_possible_booking(
    world: World,
) -> None:
    doc = world.add(617, **COMPLETE)
    message = world.listed(doc)
    sent = RecordingSqs(world.stack.sqs)
    runtime = world.runtime(sqs=sent)
    runtime.budget.store.push_back(NOW + 600, 1.0)
    assert runtime.handle_record(message.model_dump_json(), "m-1")["outcome"] == "deferred"
    assert world.bookings(doc) == (0, 0)  # no book request was sent
    world.app.touch(doc, {}, "book_rejected")  # meanwhile a pending approval locks it
    world.clock.now = NOW + 601  # the deferred copy comes back; the budget is free again
    (again,) = sent.to(world.stack.queue_url)

    result = world.runtime().handle_record(again["MessageBody"], "m-2")

    # Its first and only book refused: nothing was booked, as for any other refusal.
    assert result["outcome"] == "dead_lettered"
    assert "locked by a pending approval" in result["reasons"][0]
    assert world.claim_holder("F-617") is None


def test_a_book_only_the_limiter_refused_leaves_no_booking_mark(world: World) -> None:
    doc = world.add(618, **COMPLETE)
    message = world.listed(doc)
    sent = RecordingSqs(world.stack.sqs)
    world.app.configure(
        {"fault_rate": 1.0, "fault_kinds": {"429": 1.0}, "fault_endpoints": ["book"]}
    )

    deferred = world.runtime(sqs=sent).handle_record(message.model_dump_json(), "m-1")

    assert deferred["outcome"] == "deferred"  # Lucca busy: not the document's failure
    assert world.bookings(doc)[0] == 0  # tried, refused by the limiter every time
    assert world.state(doc).status is Status.QUEUED  # 429s ran nothing: no BOOKING mark
    assert "booking not sent" in kinds(world, doc)
    world.app.configure({"fault_rate": 0.0})
    world.app.touch(doc, {}, "book_rejected")
    (again,) = sent.to(world.stack.queue_url)

    result = world.runtime().handle_record(again["MessageBody"], "m-2")

    # Its only book that reached Lucca was refused: proof nothing was booked, so the DLQ.
    assert result["outcome"] == "dead_lettered"
    assert world.claim_holder("F-618") is None


# --- retries exhausted --------------------------------------------------------------------------


def test_retries_exhausted_dead_letter_the_document_with_its_reason_and_it_comes_back(
    world: World,
) -> None:
    doc = world.add(612, **COMPLETE)
    message = world.listed(doc)
    assert (
        world.ledger()
        .states.claim_for_queue(doc, stamp(message), now=NOW, ttl_seconds=3600)
        .claimed
    )
    body = message.model_dump_json()
    lucca = world.transport()
    outage = [True]

    def unreachable(route: Route) -> None:  # an outage: no book call gets through
        if outage[0] and route.endpoint == "book":
            raise httpx.ConnectError("unreachable")

    lucca.before.append(unreachable)
    runtime = world.runtime(lucca)

    with pytest.raises(RetryableError):  # SQS delivers it again: not the DLQ yet
        runtime.handle_record(body, "m-1", receive_count=2)
    assert dead_letters(world.stack) == []

    result = runtime.handle_record(body, "m-1", receive_count=3)  # the last delivery

    assert result["outcome"] == "dead_lettered"
    (letter,) = dead_letters(world.stack)
    attributes = letter["MessageAttributes"]
    assert attributes["errorType"]["StringValue"] == "RetriesExhausted"
    assert attributes["failureReason"]["StringValue"].startswith("still failing after 3 deliveries")
    assert attributes["documentId"]["StringValue"] == str(doc)
    assert attributes["sourceMessageId"]["StringValue"] == "m-1"
    assert json.loads(letter["Body"]) == json.loads(body)  # replayable as it came
    state = world.state(doc)
    assert state.status is Status.FAILED
    assert state.reasons[0].startswith("still failing after 3 deliveries")
    assert state.summary is not None
    assert state.summary.document_number == "F-612"  # the digest can name it
    assert world.bookings(doc)[0] == 0
    # The outage ends: once the recheck time is reached, the poller queues it again.
    outage[0] = False
    modified = stamp(message)
    ledger = world.ledger()
    soon = ledger.states.claim_for_queue(doc, modified, now=world.clock.now + 60, ttl_seconds=3600)
    assert not soon.claimed
    later = world.clock.now + 21600 + 1
    assert ledger.states.claim_for_queue(doc, modified, now=later, ttl_seconds=3600).claimed


def test_retries_exhausted_after_a_book_that_went_through_end_booked_once_listed_gone(
    world: World,
) -> None:
    doc = world.add(613, **COMPLETE)
    body = world.listed(doc).model_dump_json()
    lucca = world.transport()
    down = [False]

    def lose_the_answer(route: Route, response: httpx.Response) -> httpx.Response | None:
        if route.endpoint == "book":
            down[0] = True  # booked; then the connection drops, and Lucca is unreachable
            raise httpx.ReadError("connection reset")
        return None

    def unreachable(route: Route) -> None:
        if down[0]:
            raise httpx.ConnectError("unreachable")

    lucca.after.append(lose_the_answer)
    lucca.before.append(unreachable)
    runtime = world.runtime(lucca)
    for count in (1, 2):
        with pytest.raises(RetryableError):
            runtime.handle_record(body, "m-1", receive_count=count)
    assert runtime.handle_record(body, "m-1", receive_count=3)["outcome"] == "dead_lettered"
    assert world.bookings(doc)[0] == 1
    # Not FAILED: the mark that a book call of ours may have gone through stays.
    assert world.state(doc).status is Status.BOOKING
    (letter,) = dead_letters(world.stack)
    assert "may have gone through" in letter["MessageAttributes"]["failureReason"]["StringValue"]
    down[0] = False  # Lucca is back; someone replays the dead letter

    replayed = world.runtime().handle_record(body, "m-replay")

    # The document is gone: a 404 after our call proves nothing, so held, never booked again
    assert replayed["outcome"] == "held"
    assert world.bookings(doc) == (1, 1)
    # ... and the next complete listing, which no longer shows it, records it booked.
    assert world.poll() == [doc]
    assert world.state(doc).status is Status.BOOKED


# --- the duplicate-number hold ----------------------------------------------------------------


def test_a_second_document_with_a_booked_invoice_number_is_held_naming_the_first(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = world.add(614, documentNumber="F-2026-77", **COMPLETE)
    second = world.add(615, documentNumber="F-2026-77", **COMPLETE)
    assert world.processor().process(world.listed(first)).outcome == "booked"
    processor = world.processor()

    def no_look(*args: Any, **kwargs: Any) -> int | None:
        raise AssertionError("the gate decides on data: only the claim reads the ledger")

    monkeypatch.setattr(processor.ledger.numbers, "find_duplicate", no_look)

    result = processor.process(world.listed(second))

    assert result.outcome == "held"
    assert codes(result) == ["duplicate_number"]
    assert "F-2026-77" in result.reasons[0]
    assert f"document {first}" in result.reasons[0]
    assert world.bookings(second) == (0, 0)
    state = world.state(second)
    assert state.status is Status.HELD
    assert state.reasons == result.reasons
    assert world.claim_holder("F-2026-77") == first  # the booked one keeps it


# --- a poll whose messages cannot be sent gives the claims back -------------------------------


class BrokenSqs:
    """SQS down (every batch call raises) or refusing one entry every time."""

    def __init__(self, sqs: Any, *, refuse: str | None = None) -> None:
        self._sqs = sqs
        self.refuse = refuse

    def send_message_batch(self, **kwargs: Any) -> Any:
        if self.refuse is None:
            error = {"Error": {"Code": "ServiceUnavailable", "Message": "SQS is down"}}
            raise ClientError(error, "SendMessageBatch")  # type: ignore[arg-type]
        entries = [e for e in kwargs["Entries"] if e["Id"] != self.refuse]
        answer: dict[str, Any] = {"Successful": [], "Failed": []}
        if entries:
            answer = self._sqs.send_message_batch(QueueUrl=kwargs["QueueUrl"], Entries=entries)
        if len(entries) < len(kwargs["Entries"]):
            failed = {"Id": self.refuse, "SenderFault": False, "Code": "InternalError"}
            answer.setdefault("Failed", []).append(failed)
        return answer

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sqs, name)


def _poller(world: World, sqs: Any) -> InboxPoller:
    return InboxPoller(
        client=world.client(),
        ledger=world.ledger(),
        sqs=sqs,
        queue_url=world.stack.queue_url,
        filters={},
        clock=world.clock.time,
    )


def _queued_ids(world: World) -> list[int]:
    messages = world.stack.sqs.receive_message(
        QueueUrl=world.stack.queue_url, MaxNumberOfMessages=10
    ).get("Messages", [])
    return sorted(json.loads(m["Body"])["documentId"] for m in messages)


def test_a_poll_whose_messages_cannot_be_sent_gives_the_claims_back(world: World) -> None:
    docs = [world.add(doc) for doc in (621, 622, 623)]

    with pytest.raises(ClientError, match="SQS is down"):
        _poller(world, BrokenSqs(world.stack.sqs)).run()

    assert [world.ledger().states.state(doc) for doc in docs] == [None, None, None]
    # SQS is back: the next poll queues every one of them now, not after the claim time.
    world.clock.now += 300
    report = _poller(world, world.stack.sqs).run()
    assert report.enqueued == 3
    assert _queued_ids(world) == docs


def test_a_message_sqs_keeps_refusing_gives_its_claim_back_and_no_other(world: World) -> None:
    docs = [world.add(doc) for doc in (624, 625, 626)]

    report = _poller(world, BrokenSqs(world.stack.sqs, refuse="625")).run()

    assert (report.enqueued, report.send_failed) == (2, 1)
    assert world.ledger().states.state(625) is None  # the next poll queues it at once
    assert [world.state(doc).status for doc in (624, 626)] == [Status.QUEUED, Status.QUEUED]
    assert _queued_ids(world) == [624, 626]
    world.clock.now += 300
    again = _poller(world, world.stack.sqs).run()
    assert (again.enqueued, dict(again.skipped)) == (1, {"queued": 2})
    assert _queued_ids(world) == [625]
    assert docs == [624, 625, 626]


# --- the budget's lost race -------------------------------------------------------------------


class RacedDynamo:
    """A DynamoDB client on which another instance acts right before our first attempt to
    start a fresh budget (``SET tat = :next``): the race ``_start_fresh`` can lose."""

    def __init__(self, ddb: Any, meanwhile: Callable[[], None]) -> None:
        self._ddb = ddb
        self._meanwhile: Callable[[], None] | None = meanwhile

    def update_item(self, **kwargs: Any) -> Any:
        if kwargs.get("UpdateExpression") == "SET tat = :next" and self._meanwhile is not None:
            meanwhile, self._meanwhile = self._meanwhile, None
            meanwhile()
        return self._ddb.update_item(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ddb, name)


def test_a_reservation_that_loses_the_race_to_start_the_budget_queues_behind_the_winner(
    world: World,
) -> None:
    ddb = world.stack.dynamodb
    table = create_pk_sk_table(ddb, "budget-race")
    theirs = DynamoSlotStore(ddb, table)
    won: list[float] = []
    raced: Any = RacedDynamo(ddb, lambda: won.append(theirs.reserve(1000.0, 1.5)))
    ours = DynamoSlotStore(raced, table)

    slot = ours.reserve(1000.0, 1.5)  # the budget is idle: both try to start it at once

    assert won == [1000.0]
    assert slot == 1001.5  # the next slot, not the same one
    assert theirs.read().tat == 1003.0  # two slots spent, two requests allowed
    assert ours.reserve(1000.0, 1.5) == 1003.0
