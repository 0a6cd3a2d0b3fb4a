"""The processor's exactly-once promises that mutation testing found unguarded (``make mutate
MODULE=processor ARGS=--core``): what a later attempt does after a ``BOOKING`` mark of ours
(the document gone, a refusal), and what the mark itself records."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from cleemy_booker.budget import MemorySlotStore, RequestBudget
from cleemy_booker.client import LuccaClient
from cleemy_booker.errors import RetryableError
from cleemy_booker.ledger import Status
from cleemy_booker.models import DocumentMessage
from cleemy_booker.processor import BOOK_UNCERTAIN, DeferDocument, DocumentFailed
from cleemy_booker.rules import load_rules
from local.lucca_simulator.app import Route
from tests.unit.test_processor_edits import SCOPE, Lucca, in_process_lucca, reason_codes


@pytest.fixture
def lucca() -> Iterator[Lucca]:
    with in_process_lucca() as found:
        yield found


def book_by_hand(lucca: Lucca, document_id: int) -> None:
    """Someone books the document in Lucca: it leaves the inbox (a GET answers 404)."""
    someone = LuccaClient(
        "http://127.0.0.1", lucca.app.config.api_key, http=httpx.Client(transport=lucca.transport)
    )
    someone.book_document(document_id)


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


def test_a_document_gone_with_no_booking_of_ours_fails_naming_why(lucca: Lucca) -> None:
    doc = lucca.add(602, accountingLabel="Paper", dueDate="2026-11-01")
    book_by_hand(lucca, doc)

    with pytest.raises(DocumentFailed, match="not in the inbox"):
        lucca.processor().process(DocumentMessage(documentId=doc))

    state = lucca.ledger.states.state(doc)
    assert state is not None
    assert state.status is Status.FAILED
    (reason,) = state.reasons
    assert reason.startswith("not in the inbox")
    event = lucca.ledger.queries.history(doc)[-1]
    assert (event.kind, event.detail["errorType"]) == ("failed", "NotFoundError")


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


# --- added with mutation/RESULTS-processor-poller.md: the book call and what it leaves -------


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


def refuse(endpoint: str, status: int) -> Any:
    def after(route: Route, response: httpx.Response) -> httpx.Response | None:
        if route.endpoint != endpoint:
            return None
        headers = {"X-Request-Id": response.headers["X-Request-Id"]}  # Lucca's, as it answered
        return httpx.Response(
            status, headers=headers, json={"error": "refused"}, request=response.request
        )

    return after


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


def test_a_document_gone_with_no_booking_of_ours_is_dead_lettered_by_name(lucca: Lucca) -> None:
    doc = lucca.add(620, accountingLabel="Paper", dueDate="2026-11-01")
    book_by_hand(lucca, doc)

    with pytest.raises(DocumentFailed) as failed:
        lucca.processor().process(DocumentMessage(documentId=doc))

    assert (failed.value.document_id, failed.value.error_type) == (doc, "NotFoundError")
    assert failed.value.reason.startswith("not in the inbox")
