"""The processor's exactly-once promises, each with what keeps it:

* the ``BOOKING`` mark before the book call: a booking whose answer was lost, or whose document
  is gone when looked at again, is held as possibly booked (never booked again, never
  dead-lettered) until a listing of the whole inbox confirms it;
* never ``BOOKED`` unless booked: a refusal after a call that may have booked holds it for a
  person; a book only Lucca's limiter refused ran nothing and leaves no mark;
* the idempotency record: a second instance given a document being booked defers it;
* no listed item once an earlier attempt touched the document: the decision is taken on what
  Lucca holds after our own update;
* deferral and retries exhausted are not the document's failure;
* the invoice-number claim: kept while a booking of ours may have gone through, given back when
  it certainly did not.

On ``tests.harness.World`` (the pipeline's instances, one transport each, on a fake clock) or
``tests.harness.Lucca`` (the processor alone, the simulator in process, a ledger in moto).
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from cleemy_booker.budget import MemorySlotStore, RequestBudget
from cleemy_booker.client import LuccaClient
from cleemy_booker.errors import RetryableError
from cleemy_booker.ledger import Status
from cleemy_booker.models import DocumentMessage
from cleemy_booker.processor import BOOK_UNCERTAIN, DeferDocument, DocumentFailed, summarize
from cleemy_booker.processor.gone import GONE_RUN
from cleemy_booker.rules import load_rules
from cleemy_booker.wiring.processor import IN_PROGRESS_DELAY
from local.lucca_simulator.app import Route
from tests.clocks import NOW
from tests.factories import COMPLETE, SCOPE, example_rules
from tests.harness import (
    AfterHook,
    Killed,
    Lucca,
    RecordingSqs,
    World,
    dead_letters,
    on,
    reason_codes,
    stamp,
)

#: The runtimes here are given no Lambda context: Powertools says so on every record.
pytestmark = pytest.mark.filterwarnings("ignore:Couldn't determine the remaining time left")


def die_after(endpoint: str) -> AfterHook:
    """Lucca has done the operation and answered; the instance dies before reading it."""

    def after(route: Route, response: httpx.Response) -> httpx.Response | None:
        if route.endpoint == endpoint:
            raise Killed(f"killed as Lucca answered the {endpoint}")
        return None

    return after


def kinds(world: World, document_id: int) -> list[str]:
    return [event.kind for event in world.ledger().queries.history(document_id)]


def book_by_hand(lucca: Lucca, document_id: int) -> None:
    """Someone books the document in Lucca: it leaves the inbox (a GET answers 404)."""
    someone = LuccaClient(
        "http://127.0.0.1", lucca.app.config.api_key, http=httpx.Client(transport=lucca.transport)
    )
    someone.book_document(document_id)


def queued(lucca: Lucca, document_id: int) -> DocumentMessage:
    """The document's id as the poller queues it: claimed in the ledger when it was listed."""
    lucca.ledger.states.claim_for_queue(document_id, "", now=time.time(), ttl_seconds=3600)
    return DocumentMessage(documentId=document_id)


def refuse(endpoint: str, status: int) -> Any:
    def after(route: Route, response: httpx.Response) -> httpx.Response | None:
        if route.endpoint != endpoint:
            return None
        headers = {"X-Request-Id": response.headers["X-Request-Id"]}  # Lucca's, as it answered
        return httpx.Response(
            status, headers=headers, json={"error": "refused"}, request=response.request
        )

    return after


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
    assert reason_codes(result) == [BOOK_UNCERTAIN]
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


def test_a_document_gone_after_our_booking_mark_is_held_as_possibly_booked(lucca: Lucca) -> None:
    """Our earlier call may be what booked it: not a failure, not the DLQ, the number kept."""
    doc = lucca.add(601, accountingLabel="Paper", dueDate="2026-11-01")
    assert lucca.ledger.numbers.claim_number(SCOPE, f"F-{doc}", doc) is None
    lucca.ledger.states.record(doc, Status.BOOKING, "booking", modified_at="m1")
    book_by_hand(lucca, doc)

    result = lucca.processor().process(DocumentMessage(documentId=doc))

    assert result.outcome == "held"
    assert reason_codes(result) == [BOOK_UNCERTAIN]
    assert str(doc) in result.reasons[0]
    state = lucca.ledger.states.state(doc)
    assert state is not None
    assert (state.status, state.reasons) == (Status.HELD, result.reasons)
    assert lucca.claim_holder(doc) == doc
    assert lucca.ledger.queries.history(doc)[-1].detail["errorType"] == "NotFoundError"


def test_a_refused_read_after_our_booking_mark_is_held_as_possibly_booked(lucca: Lucca) -> None:
    """The tenant may not serve the inferred GET: after a book call of ours that is no
    reason to dead-letter (a replay would book blind)."""
    doc = lucca.add(616, accountingLabel="Paper", dueDate="2026-11-01")
    assert lucca.ledger.numbers.claim_number(SCOPE, f"F-{doc}", doc) is None
    lucca.ledger.states.record(doc, Status.BOOKING, "booking", modified_at="m1")
    lucca.transport.after.append(refuse("get", 405))

    result = lucca.processor().process(DocumentMessage(documentId=doc))

    assert (result.document_id, result.outcome) == (doc, "held")
    assert reason_codes(result) == [BOOK_UNCERTAIN]
    assert f"shows document {doc} " in result.reasons[0]
    assert "405" in result.reasons[0]
    state = lucca.ledger.states.state(doc)
    assert state is not None
    assert (state.status, state.reasons) == (Status.HELD, result.reasons)
    event = lucca.ledger.queries.history(doc)[-1]
    assert (event.kind, event.detail["errorType"], event.detail["status"]) == (
        "held",
        "PermanentError",
        405,
    )
    assert event.detail["requestIds"] == list(result.request_ids)
    assert len(result.request_ids) == result.requests == 1  # the read, and no book
    assert lucca.claim_holder(doc) == doc
    assert lucca.document(doc)["bookings"] == 0


def test_a_document_gone_with_no_booking_of_ours_is_recorded_gone_naming_why(
    lucca: Lucca,
) -> None:
    """Booked by a person between our listing and our attempt: Lucca answers 404, nobody's
    fault; recorded gone with the answer, not failed (no dead letter, nothing to replay)."""
    doc = lucca.add(602, accountingLabel="Paper", dueDate="2026-11-01")
    book_by_hand(lucca, doc)

    result = lucca.processor().process(queued(lucca, doc))

    assert result.outcome == "gone"
    state = lucca.ledger.states.state(doc)
    assert state is not None
    assert state.status is Status.GONE
    (reason,) = state.reasons
    assert reason.startswith("not_in_inbox: ")
    assert "404" in reason
    event = lucca.ledger.queries.history(doc)[-1]
    assert (event.kind, event.detail["errorType"]) == ("gone", "NotFoundError")


def test_a_document_gone_with_no_booking_of_ours_raises_nothing_for_the_queue(
    lucca: Lucca,
) -> None:
    doc = lucca.add(620, accountingLabel="Paper", dueDate="2026-11-01")
    book_by_hand(lucca, doc)

    result = lucca.processor().process(queued(lucca, doc))

    assert (result.document_id, result.outcome) == (doc, "gone")
    assert result.reasons[0].startswith("not_in_inbox: ")
    assert lucca.app.inbox.records[doc].bookings == 1  # the person's booking, not a second


def test_a_run_of_documents_gone_with_nothing_booked_fails_for_the_dead_letter_queue(
    lucca: Lucca,
) -> None:
    """Every document of a poll answering 404 is a wrong route or tenant, not people at work:
    the first few are recorded gone, then each one more fails, naming the run."""
    docs = [lucca.add(640 + n, accountingLabel="Paper", dueDate="2026-11-01") for n in range(6)]
    for doc in docs:
        book_by_hand(lucca, doc)
    processor = lucca.processor()

    first = [processor.process(queued(lucca, d)).outcome for d in docs[: GONE_RUN - 1]]
    for doc in docs[GONE_RUN - 1 :]:
        with pytest.raises(DocumentFailed, match="none was booked"):
            processor.process(queued(lucca, doc))

    assert first == ["gone"] * (GONE_RUN - 1)
    assert [lucca.ledger.states.state(d).status for d in docs] == (  # type: ignore[union-attr]
        [Status.GONE] * (GONE_RUN - 1) + [Status.FAILED] * (len(docs) - GONE_RUN + 1)
    )


def test_documents_gone_among_bookings_are_each_recorded_gone(lucca: Lucca) -> None:
    """One booking in the hour says the routes are right: gone stays gone however many."""
    booked = lucca.add(659, accountingLabel="Paper", dueDate="2026-11-01")
    assert lucca.processor().process(lucca.listed(booked)).outcome == "booked"
    docs = [lucca.add(660 + n, accountingLabel="Paper", dueDate="2026-11-01") for n in range(6)]
    for doc in docs:
        book_by_hand(lucca, doc)

    outcomes = [lucca.processor().process(queued(lucca, d)).outcome for d in docs]

    assert outcomes == ["gone"] * len(docs)


def test_the_booking_mark_records_the_version_and_summary_it_books(lucca: Lucca) -> None:
    """A book call whose answer is lost leaves ``BOOKING`` with what was being booked: a
    later attempt that finds the document gone books it in the ledger under that name."""
    doc = lucca.add(603, accountingLabel="Paper", dueDate="2026-11-01")
    message = lucca.listed(doc)

    def lose_the_answer(route: Route, response: httpx.Response) -> httpx.Response | None:
        if route.endpoint == "book":
            raise httpx.RemoteProtocolError("connection lost", request=response.request)
        return None

    lucca.transport.after.append(lose_the_answer)
    with pytest.raises(RetryableError):  # the message comes back; this attempt ends here
        lucca.processor().process(message)

    state = lucca.ledger.states.state(doc)
    assert state is not None
    assert state.status is Status.BOOKING
    assert message.item is not None
    assert message.item.changed_at is not None
    assert state.modified_at == message.item.changed_at.isoformat()
    assert state.summary is not None
    assert state.summary.document_number == f"F-{doc}"
    assert [event.kind for event in lucca.ledger.queries.history(doc)][-1] == "booking"
    assert lucca.claim_holder(doc) == doc  # it may be booked: the number stays


def test_a_booked_document_is_recorded_with_the_rules_and_requests_that_booked_it(
    lucca: Lucca,
) -> None:
    doc = lucca.add(615)  # the example rules change it: a PUT, then the book

    result = lucca.processor().process(lucca.listed(doc))

    assert (result.document_id, result.outcome, result.updated) == (doc, "booked", True)
    assert lucca.document(doc)["bookings"] == 1
    booked = lucca.ledger.queries.history(doc)[-1]
    assert booked.kind == "booked"
    assert booked.detail["rulesApplied"]
    assert booked.detail["requestIds"] == list(result.request_ids)
    assert len(result.request_ids) == result.requests == 3  # the read, the PUT, the book


# --- never recorded BOOKED unless booked ------------------------------------------------------


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
    assert reason_codes(result) == [BOOK_UNCERTAIN]
    assert world.bookings(doc)[0] == 0
    assert world.detail(doc)["inInbox"]
    assert world.state(doc).status is Status.HELD  # a person checks: not recorded BOOKED
    assert "booked" not in kinds(world, doc)
    assert world.claim_holder("F-603") == doc  # may have been booked: the number stays


def test_a_book_refused_after_our_booking_mark_is_held_with_what_lucca_answered(
    lucca: Lucca,
) -> None:
    doc = lucca.add(617, accountingLabel="Paper", dueDate="2026-11-01")
    assert lucca.ledger.numbers.claim_number(SCOPE, f"F-{doc}", doc) is None
    lucca.ledger.states.record(doc, Status.BOOKING, "booking", modified_at="m1")
    lucca.app.touch(doc, {}, "book_rejected")

    result = lucca.processor().process(DocumentMessage(documentId=doc))

    assert (result.document_id, result.outcome) == (doc, "held")
    (reason,) = result.reasons
    assert reason.startswith(f"{BOOK_UNCERTAIN}: Lucca answered ")
    assert "Lucca answered None" not in reason
    assert f"shows document {doc} " in reason
    state = lucca.ledger.states.state(doc)
    assert state is not None
    assert state.status is Status.HELD
    item = lucca.state_item(doc)  # neither time nor new rules tell: a listing or a person does
    assert "recheckAt" not in item
    assert "configVersion" not in item
    event = lucca.ledger.queries.history(doc)[-1]
    assert event.kind == "held"
    assert event.detail["errorType"] != "NoneType"
    assert event.detail["status"] in (400, 409, 422)
    assert event.detail["requestIds"] == list(result.request_ids)
    assert result.request_ids
    assert lucca.claim_holder(doc) == doc


def test_a_warm_instance_takes_a_refusal_of_its_only_book_for_proof(lucca: Lucca) -> None:
    """Its book calls for other documents before do not count: one call, refused, nothing
    booked: dead-lettered with the reason, the number given back."""
    first = lucca.add(613, accountingLabel="Paper", dueDate="2026-11-01")
    second = lucca.add(614, accountingLabel="Paper", dueDate="2026-11-01")
    processor = lucca.processor()
    assert processor.process(lucca.listed(first)).outcome == "booked"
    lucca.app.touch(second, {}, "book_rejected")

    with pytest.raises(DocumentFailed) as failed:
        processor.process(lucca.listed(second))

    assert failed.value.document_id == second
    assert lucca.ledger.states.state(second).status is Status.FAILED  # type: ignore[union-attr]
    assert lucca.claim_holder(second) is None
    assert lucca.document(second)["bookings"] == 0


# --- a book only the limiter refused ran nothing ----------------------------------------------


def limiter_refuses_every_book(lucca: Lucca) -> None:
    """Lucca's limiter answers every book with a 429: nothing ran, however often it is tried."""
    lucca.app.configure(
        {"fault_rate": 1.0, "fault_kinds": {"429": 1.0}, "fault_endpoints": ["book"]}
    )


@pytest.mark.parametrize(
    ("before", "changes", "after"),
    [
        (None, {"accountingLabel": "Paper", "dueDate": "2026-11-01"}, Status.QUEUED),
        (None, {}, Status.UPDATED),  # this attempt's PUT went through: the next one reads
        (Status.UPDATED, {"accountingLabel": "Paper", "dueDate": "2026-11-01"}, Status.UPDATED),
    ],
    ids=["booked as it is", "updated now", "updated before"],
)
def test_a_book_only_the_limiter_refused_leaves_no_booking_mark(
    lucca: Lucca, before: Status | None, changes: dict[str, str], after: Status
) -> None:
    doc = lucca.add(611, **changes)
    message = lucca.listed(doc)
    if before is not None:
        lucca.ledger.states.record(doc, before, "updated", modified_at="m1")
        message = DocumentMessage(documentId=doc)
    limiter_refuses_every_book(lucca)
    rules = load_rules(None) if changes else None  # no rules: booked as it is, no PUT

    with pytest.raises(RetryableError):
        lucca.processor(rules).process(message)

    assert lucca.document(doc)["bookings"] == 0
    assert ("put" in lucca.requests(doc)) is (not changes)
    state = lucca.ledger.states.state(doc)
    assert state is not None
    assert state.status is after  # no BOOKING: no book call can have been applied
    event = lucca.ledger.queries.history(doc)[-1]
    assert (event.kind, event.detail["because"]) == (
        "booking not sent",
        "no book call reached Lucca",
    )


def test_a_book_the_limiter_refused_after_our_booking_mark_keeps_the_mark(lucca: Lucca) -> None:
    """The earlier attempt's call may have booked it: the mark (and the number) stay."""
    doc = lucca.add(612, accountingLabel="Paper", dueDate="2026-11-01")
    assert lucca.ledger.numbers.claim_number(SCOPE, f"F-{doc}", doc) is None
    lucca.ledger.states.record(doc, Status.BOOKING, "booking", modified_at="m1")
    limiter_refuses_every_book(lucca)

    with pytest.raises(RetryableError):
        lucca.processor().process(DocumentMessage(documentId=doc))

    state = lucca.ledger.states.state(doc)
    assert state is not None
    assert state.status is Status.BOOKING
    assert "booking not sent" not in [event.kind for event in lucca.ledger.queries.history(doc)]
    assert lucca.claim_holder(doc) == doc


def test_a_deferred_book_only_the_limiter_refused_leaves_no_booking_mark(world: World) -> None:
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


def test_a_message_for_a_document_the_ledger_booked_books_nothing_and_asks_nothing(
    lucca: Lucca,
) -> None:
    """A redelivered or replayed message: answered from the ledger, no request to Lucca."""
    doc = lucca.add(606, accountingLabel="Paper", dueDate="2026-11-01")
    message = lucca.listed(doc)
    lucca.ledger.states.record(doc, Status.BOOKED, "booked", modified_at="m1")

    result = lucca.processor().process(message)

    assert (result.document_id, result.outcome) == (doc, "already_booked")
    assert lucca.requests(doc) == []
    assert lucca.document(doc)["bookings"] == 0


# --- deferral: not now, and not a failure -----------------------------------------------------


def test_a_busy_budget_defers_the_document_for_its_wait_before_any_request(
    lucca: Lucca,
) -> None:
    """Deferred, not failed: the message comes back after the budget's wait, and nothing was
    sent (no receive is burnt on a request that was never made)."""
    store = MemorySlotStore()
    budget = RequestBudget(
        store, limit=40, window_seconds=60, max_wait_seconds=20, clock=lambda: 1_000_000.0
    )
    doc = lucca.add(607, accountingLabel="Paper", dueDate="2026-11-01")
    message = lucca.listed(doc)
    lucca.client.hooks.append(budget)
    store.push_back(1_000_000.0 + 45, 1.0)  # someone else's 429: 45 s of pause for everyone

    with pytest.raises(DeferDocument) as deferred:
        lucca.processor().process(message)

    assert deferred.value.reason == "request budget busy"
    assert deferred.value.delay_seconds == pytest.approx(45)
    assert lucca.requests(doc) == []
    assert lucca.ledger.states.state(doc) is None  # no BOOKING mark: no book call can have gone out


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


# --- retries exhausted ------------------------------------------------------------------------


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


# --- the invoice-number claim -----------------------------------------------------------------


def test_a_refused_update_after_our_booking_mark_keeps_the_number(lucca: Lucca) -> None:
    """The earlier attempt's book may have gone through: its number must go on blocking
    another document that carries it, whatever this attempt meets before booking."""
    doc = lucca.add(604)  # the example rules change it: this attempt PUTs before booking
    assert lucca.ledger.numbers.claim_number(SCOPE, f"F-{doc}", doc) is None
    lucca.ledger.states.record(doc, Status.BOOKING, "booking", modified_at="m1")
    lucca.transport.after.append(refuse("put", 400))
    with pytest.raises(DocumentFailed):
        lucca.processor().process(DocumentMessage(documentId=doc))

    assert lucca.claim_holder(doc) == doc
    assert lucca.document(doc)["bookings"] == 0


def test_a_refused_update_with_no_booking_of_ours_gives_the_number_back(lucca: Lucca) -> None:
    doc = lucca.add(605)
    lucca.transport.after.append(refuse("put", 400))
    with pytest.raises(DocumentFailed):
        lucca.processor().process(lucca.listed(doc))

    assert lucca.claim_holder(doc) is None


def test_a_second_document_with_a_claimed_invoice_number_is_held_naming_the_first(
    lucca: Lucca,
) -> None:
    first = lucca.add(618, accountingLabel="Paper", dueDate="2026-11-01", documentNumber="F-77")
    second = lucca.add(619, accountingLabel="Paper", dueDate="2026-11-01", documentNumber="F-77")
    assert lucca.processor().process(lucca.listed(first)).outcome == "booked"

    result = lucca.processor().process(lucca.listed(second))

    assert (result.document_id, result.outcome) == (second, "held")
    assert result.reasons == (
        f"duplicate_number: invoice number F-77 is also used by document {first} "
        "(same purchase 90)",
    )
    state = lucca.ledger.states.state(second)
    assert state is not None
    assert (state.status, state.reasons) == (Status.HELD, result.reasons)
    assert lucca.document(second)["bookings"] == 0
    assert lucca.ledger.numbers.find_duplicate(SCOPE, "F-77", document_id=-1) == first


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
    assert reason_codes(result) == ["duplicate_number"]
    assert "F-2026-77" in result.reasons[0]
    assert f"document {first}" in result.reasons[0]
    assert world.bookings(second) == (0, 0)
    state = world.state(second)
    assert state.status is Status.HELD
    assert state.reasons == result.reasons
    assert world.claim_holder("F-2026-77") == first  # the booked one keeps it
