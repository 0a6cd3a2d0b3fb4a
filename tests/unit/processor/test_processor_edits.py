"""The processor against a person editing the document, Lucca's answer to the PUT, and refusals.

Lucca is the simulator's request handling in this process (``InProcessLucca``), so a hook can
act at an exact point of a request: a person editing the document as our GET reaches Lucca, or
right after our PUT; Lucca answering a PUT with something else than it was sent. Every Lucca
request is counted per document from the simulator's own log: an update costs at most one
request more than the PUT and the book, a document booked as it is costs its book alone.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from cleemy_booker.budget import MemorySlotStore, RequestBudget
from cleemy_booker.client import LuccaClient
from cleemy_booker.ledger import Status
from cleemy_booker.models import DocumentMessage, InboxItem
from cleemy_booker.processor import BOOK_UNCERTAIN, UPDATE_NOT_KEPT, DocumentFailed
from cleemy_booker.rules import load_rules
from local.lucca_simulator.app import Route
from tests.factories import SCOPE, raw_item
from tests.harness import Lucca, answer_put_with, on, reason_codes, stamp

PERSONS_COMMENT = "Checked by Ada: paid by card, do not pay again"


def first_book_answers_then_is_refused(lucca: Lucca, document_id: int, status: str) -> None:
    """The first book call of the document meets a ``status`` fault; from the second on, Lucca
    rejects the book."""
    lucca.app.configure(
        {"fault_rate": 1.0, "fault_kinds": {status: 1.0}, "fault_endpoints": ["book"]}
    )

    def refuse_from_now_on() -> None:
        lucca.app.configure({"fault_rate": 0.0})
        lucca.app.touch(document_id, {}, "book_rejected")

    lucca.transport.before.append(on("book", refuse_from_now_on, call=2))


def history(lucca: Lucca, document_id: int) -> list[tuple[str, dict[str, Any]]]:
    return [(e.kind, e.detail) for e in lucca.ledger.queries.history(document_id)]


# --- a person's edits are never reverted ------------------------------------------------------


def test_an_edit_before_the_processor_starts_is_kept_and_costs_one_get(lucca: Lucca) -> None:
    doc = lucca.add(501)
    message = lucca.listed(doc)
    lucca.edit(doc, comment=PERSONS_COMMENT)

    result = lucca.processor().process(message)

    assert (result.outcome, result.updated) == ("booked", True)
    document = lucca.document(doc)
    assert document["document"]["comment"] == PERSONS_COMMENT  # not put back to the listing's
    assert document["document"]["accountingLabel"] == "F-501"  # the rule's change, made
    assert (document["puts"], document["bookings"]) == (1, 1)
    assert lucca.requests(doc) == ["get", "put", "book"]  # one request more than PUT + book
    assert result.requests == 3
    updated = next(detail for kind, detail in history(lucca, doc) if kind == "updated")
    assert updated["changedSinceListing"]["listedModifiedAt"] == stamp(message)


@pytest.mark.parametrize("moment", ["as our GET reaches Lucca", "between our PUT and our book"])
def test_an_edit_while_the_processor_works_is_kept(lucca: Lucca, moment: str) -> None:
    doc = lucca.add(502)
    message = lucca.listed(doc)
    person = on("get" if moment.startswith("as") else "book", lambda: _comment(lucca, doc))
    lucca.transport.before.append(person)

    result = lucca.processor().process(message)

    assert (result.outcome, result.updated) == ("booked", True)
    document = lucca.document(doc)
    assert document["document"]["comment"] == PERSONS_COMMENT
    assert document["document"]["accountingLabel"] == "F-502"
    assert (document["puts"], document["bookings"]) == (1, 1)
    assert lucca.requests(doc) == ["get", "put", "book"]


@pytest.mark.xfail(
    strict=True,
    reason=(
        "Lucca honours no precondition on PUT: an edit landing after our last read and before "
        "our PUT is overwritten, and nothing in the PUT's answer can show it. No client can "
        "close this window; the processor narrows it to its local work and the PUT's way to "
        "Lucca (no budget wait between the two: see the back-to-back test)."
    ),
)
def test_an_edit_after_our_get_and_before_our_put_is_kept(lucca: Lucca) -> None:
    doc = lucca.add(503)
    message = lucca.listed(doc)
    lucca.transport.before.append(on("put", lambda: _comment(lucca, doc)))

    lucca.processor().process(message)

    assert lucca.document(doc)["document"]["comment"] == PERSONS_COMMENT


def test_the_put_is_built_from_the_read_made_just_before_it(lucca: Lucca) -> None:
    doc = lucca.add(504)
    message = lucca.listed(doc)
    lucca.edit(doc, comment=PERSONS_COMMENT)

    lucca.processor().process(message)

    sent = lucca.document(doc)["putBodies"][0]["document"]
    assert sent["comment"] == PERSONS_COMMENT  # built from the read, not from the listing
    assert sent["accountingLabel"] == "F-504"
    assert lucca.requests(doc) == ["get", "put", "book"]


def test_the_read_the_put_and_the_book_go_out_back_to_back_not_a_budget_interval_apart(
    lucca: Lucca,
) -> None:
    """Paced by the request budget (40 a minute: 1.5 s apart), an edit would have 1.5 s to land
    between our read and our PUT; back to back, only the PUT's own way to Lucca. The book
    follows at once: a budget too busy for all three defers before the first."""
    now = [1_000_000.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    budget = RequestBudget(
        MemorySlotStore(),
        limit=40,
        window_seconds=60,
        max_wait_seconds=20,
        clock=lambda: now[0],
        sleep=sleep,
    )
    lucca.client.hooks.append(budget)
    doc = lucca.add(509)
    message = lucca.listed(doc)  # a request of its own: the next slot is 1.5 s away
    sent: dict[str, float] = {}

    def when_sent(route: Route) -> None:
        sent.setdefault(route.endpoint, now[0])

    lucca.transport.before.append(when_sent)

    lucca.processor().process(message)

    assert sent["book"] == sent["put"] == sent["get"] == 1_000_001.5
    # The three spent three slots all the same: the next request waits for the fourth.
    lucca.listed(lucca.add(510))
    assert now[0] == 1_000_001.5 + 3 * 1.5


def test_a_document_a_person_completed_since_the_listing_is_booked_without_a_put(
    lucca: Lucca,
) -> None:
    doc = lucca.add(505)
    message = lucca.listed(doc)
    lucca.edit(doc, accountingLabel="Paper, October", dueDate="2026-11-30")

    result = lucca.processor().process(message)

    assert (result.outcome, result.updated) == ("booked", False)
    document = lucca.document(doc)
    assert document["document"]["accountingLabel"] == "Paper, October"
    assert document["document"]["dueDate"] == "2026-11-30"
    assert (document["puts"], document["bookings"]) == (0, 1)
    assert lucca.requests(doc) == ["get", "book"]


def test_a_document_a_person_broke_since_the_listing_is_held_on_what_lucca_holds(
    lucca: Lucca,
) -> None:
    doc = lucca.add(506)
    message = lucca.listed(doc)
    amounts = raw_item(doc)["document"]["amountIncludingTaxes"]
    amounts["includingTaxes"]["value"] = 125.0
    lucca.edit(doc, amountIncludingTaxes=amounts)

    result = lucca.processor().process(message)

    assert result.outcome == "held"
    assert reason_codes(result) == ["amounts_mismatch"]
    document = lucca.document(doc)
    assert (document["puts"], document["bookings"]) == (0, 0)
    assert lucca.requests(doc) == ["get"]
    state = lucca.ledger.states.state(doc)
    assert state is not None
    now = InboxItem.model_validate(document).changed_at
    assert now is not None
    assert state.modified_at == now.isoformat() != stamp(message)  # held as Lucca holds it now


def test_a_document_booked_as_it_is_spends_no_extra_request(lucca: Lucca) -> None:
    doc = lucca.add(507, accountingLabel="Paper, October", dueDate="2026-11-01")
    message = lucca.listed(doc)
    lucca.edit(doc, comment=PERSONS_COMMENT)  # booking reverts nothing: no GET for it

    result = lucca.processor().process(message)

    assert (result.outcome, result.updated) == ("booked", False)
    document = lucca.document(doc)
    assert document["document"]["comment"] == PERSONS_COMMENT
    assert (document["puts"], document["bookings"]) == (0, 1)
    assert lucca.requests(doc) == ["book"]


def test_an_item_read_by_get_in_this_attempt_is_not_read_again(lucca: Lucca) -> None:
    doc = lucca.add(508)
    result = lucca.processor().process(DocumentMessage(documentId=doc))  # a bare replay

    assert (result.outcome, result.updated) == ("booked", True)
    assert lucca.requests(doc) == ["get", "put", "book"]


# --- Lucca's answer to the PUT ----------------------------------------------------------------


def test_an_answer_that_resets_what_was_sent_is_held_naming_the_fields(lucca: Lucca) -> None:
    doc = lucca.add(511)
    message = lucca.listed(doc)
    answer_put_with(lucca, lambda item: item["document"].update(accountingLabel=None))

    result = lucca.processor().process(message)

    assert result.outcome == "held"
    assert reason_codes(result) == [UPDATE_NOT_KEPT]
    assert "accounting label (document.accountingLabel)" in result.reasons[0]
    assert 'sent "F-511", Lucca holds null' in result.reasons[0]
    document = lucca.document(doc)
    assert (document["puts"], document["bookings"]) == (1, 0)  # no second PUT, no book
    assert lucca.requests(doc) == ["get", "put"]
    state = lucca.state_item(doc)
    assert state["status"]["S"] == Status.HELD
    assert "recheckAt" not in state  # asking again later would get the same answer
    assert lucca.claim_holder(doc) is None  # held before any book: the number is free


def test_an_answer_normalising_an_amount_is_booked_when_the_gate_passes(lucca: Lucca) -> None:
    amounts = raw_item(0)["document"]["amountIncludingTaxes"]
    amounts["excludingTaxes"]["value"] = 100.004
    amounts["includingTaxes"]["value"] = 120.004
    doc = lucca.add(512, amountIncludingTaxes=amounts)
    message = lucca.listed(doc)

    def round_amounts(item: dict[str, Any]) -> None:
        for name in ("excludingTaxes", "includingTaxes"):
            money = item["document"]["amountIncludingTaxes"][name]
            money["value"] = round(money["value"], 2)

    answer_put_with(lucca, round_amounts)

    result = lucca.processor().process(message)

    assert (result.outcome, result.updated) == ("booked", True)
    assert lucca.document(doc)["bookings"] == 1
    booked = history(lucca, doc)[-1]
    assert booked[0] == "booked"
    assert {d["field"] for d in booked[1]["answerDiffers"]} == {
        "document.amountIncludingTaxes.excludingTaxes.value",
        "document.amountIncludingTaxes.includingTaxes.value",
    }


def test_an_answer_the_gate_refuses_is_held_and_not_booked(lucca: Lucca) -> None:
    doc = lucca.add(513)
    message = lucca.listed(doc)
    # The fields sent were kept, but Lucca reads the document again after the update.
    answer_put_with(lucca, lambda item: item["document"].update(ocrStatus="Processing"))

    result = lucca.processor().process(message)

    assert result.outcome == "held"
    assert reason_codes(result) == ["ocr_not_finished"]
    assert lucca.document(doc)["bookings"] == 0
    assert lucca.requests(doc) == ["get", "put"]
    assert lucca.claim_holder(doc) is None


def test_an_answer_silent_on_type_ocr_status_and_currencies_is_not_a_reset(
    lucca: Lucca,
) -> None:
    """developers.luccasoftware.com's PUT response has no type, ocrStatus or currency."""
    doc = lucca.add(514)
    message = lucca.listed(doc)

    def luccasoftware_shape(item: dict[str, Any]) -> None:
        document = item["document"]
        del document["type"], document["ocrStatus"]
        amounts = document["amountIncludingTaxes"]
        for money in (amounts["excludingTaxes"], amounts["includingTaxes"], *amounts["taxes"]):
            del money["currency"]

    answer_put_with(lucca, luccasoftware_shape, holds=False)

    result = lucca.processor().process(message)

    assert (result.outcome, result.reasons) == ("booked", ())
    assert lucca.document(doc)["bookings"] == 1
    assert "answerDiffers" not in history(lucca, doc)[-1][1]


def test_an_answer_with_a_normalised_invoice_number_moves_the_claim_to_it(lucca: Lucca) -> None:
    doc = lucca.add(515, documentNumber="f 515")
    message = lucca.listed(doc)
    answer_put_with(lucca, lambda item: item["document"].update(documentNumber="F-515"))

    result = lucca.processor().process(message)

    assert result.outcome == "booked"
    assert lucca.claim_holder(doc) == doc  # booked under the number Lucca holds ...
    assert lucca.ledger.numbers.find_duplicate(SCOPE, "f 515", document_id=-1) is None  # ... only


# --- the invoice-number claim -----------------------------------------------------------------


def test_a_retried_book_answered_with_a_refusal_keeps_the_number_and_holds(lucca: Lucca) -> None:
    doc = lucca.add(521, accountingLabel="Paper", dueDate="2026-11-01")
    message = lucca.listed(doc)
    # The first book call meets a 503 (it may have been applied for all we know); the retry
    # is refused.
    first_book_answers_then_is_refused(lucca, doc, "503")

    result = lucca.processor().process(message)  # no DocumentFailed: not the DLQ

    assert result.outcome == "held"
    assert reason_codes(result) == [BOOK_UNCERTAIN]
    assert "may have gone through" in result.reasons[0]
    assert "check in Lucca" in result.reasons[0]
    assert lucca.claim_holder(doc) == doc  # kept
    # No GET to ask whether it left the inbox: that route is only inferred, and its 404 would
    # prove nothing; the poller's next whole-inbox listing settles it.
    assert lucca.requests(doc) == ["book", "book"]
    state = lucca.state_item(doc)
    assert state["status"]["S"] == Status.HELD
    assert "recheckAt" not in state  # a person checks; time tells nothing
    assert "configVersion" not in state  # nor do new rules


def test_a_book_refused_after_a_429_dead_letters_and_releases_the_number(lucca: Lucca) -> None:
    doc = lucca.add(524, accountingLabel="Paper", dueDate="2026-11-01")
    message = lucca.listed(doc)
    # The first book call is refused by the limiter (nothing ran); the retry is rejected: that
    # rejection answers the only call that reached Lucca, so it proves nothing was booked.
    first_book_answers_then_is_refused(lucca, doc, "429")

    with pytest.raises(DocumentFailed, match="locked by a pending approval"):
        lucca.processor().process(message)

    assert lucca.requests(doc) == ["book", "book"]  # no read to ask whether it left the inbox
    assert lucca.claim_holder(doc) is None
    state = lucca.ledger.states.state(doc)
    assert state is not None
    assert state.status is Status.FAILED


def test_a_book_refused_after_an_earlier_booking_marker_keeps_the_number_and_holds(
    lucca: Lucca,
) -> None:
    doc = lucca.add(522, "book_rejected", accountingLabel="Paper", dueDate="2026-11-01")
    # An earlier attempt claimed the number, marked BOOKING, and its book call's answer was lost.
    assert lucca.ledger.numbers.claim_number(SCOPE, f"F-{doc}", doc) is None
    lucca.ledger.states.record(doc, Status.BOOKING, "booking")

    result = lucca.processor().process(DocumentMessage(documentId=doc))

    assert reason_codes(result) == [BOOK_UNCERTAIN]
    assert lucca.claim_holder(doc) == doc

    # A later delivery takes that refusal for no proof either.
    again = lucca.processor().process(lucca.listed(doc))
    assert reason_codes(again) == [BOOK_UNCERTAIN]
    assert lucca.claim_holder(doc) == doc
    assert lucca.document(doc)["bookings"] == 0


def test_a_first_and_only_book_refused_releases_the_number(lucca: Lucca) -> None:
    doc = lucca.add(523, "book_rejected", accountingLabel="Paper", dueDate="2026-11-01")

    with pytest.raises(DocumentFailed, match="locked by a pending approval"):
        lucca.processor().process(lucca.listed(doc))

    assert lucca.claim_holder(doc) is None
    assert lucca.requests(doc) == ["book"]
    state = lucca.ledger.states.state(doc)
    assert state is not None
    assert state.status is Status.FAILED


def test_an_update_refused_releases_the_number(lucca: Lucca) -> None:
    doc = lucca.add(524)
    message = lucca.listed(doc)
    someone = LuccaClient(
        "http://127.0.0.1", lucca.app.config.api_key, http=httpx.Client(transport=lucca.transport)
    )

    def book_by_hand() -> None:
        someone.book_document(doc)

    # Booked by hand in Lucca as our PUT is on its way: the PUT answers 404, ours never booked.
    lucca.transport.before.append(on("put", book_by_hand))

    result = lucca.processor().process(message)

    assert result.outcome == "gone"
    assert lucca.claim_holder(doc) is None


# --- the packaged default rules ---------------------------------------------------------------


def test_the_packaged_rules_book_a_document_as_it_is(lucca: Lucca) -> None:
    doc = lucca.add(531)  # no accounting label, no due date
    result = lucca.processor(load_rules(None)).process(lucca.listed(doc))

    assert (result.outcome, result.updated) == ("booked", False)
    document = lucca.document(doc)
    assert (document["puts"], document["bookings"]) == (0, 1)
    assert (document["document"]["accountingLabel"], document["document"]["dueDate"]) == (
        None,
        None,
    )
    assert lucca.requests(doc) == ["book"]


# --- helpers ----------------------------------------------------------------------------------


def _comment(lucca: Lucca, document_id: int) -> None:
    lucca.edit(document_id, comment=PERSONS_COMMENT)


# --- a message whose copy a later listing superseded ------------------------------------------


def test_a_copy_a_later_listing_superseded_is_read_again_before_the_decision(lucca: Lucca) -> None:
    """Queued while Lucca was still reading it; the OCR finished and the poller listed the new
    version while the message was on its way: the processor decides on what Lucca has now."""
    doc = lucca.add(501, ocrStatus="Pending")
    message = lucca.listed(doc)
    lucca.ledger.states.claim_for_queue(doc, stamp(message), now=epoch_now(), ttl_seconds=3600)
    lucca.edit(doc, ocrStatus="Processed")
    lucca.ledger.states.note_listed_newer(doc, stamp(lucca.listed(doc)))

    result = lucca.processor().process(message)

    assert result.outcome == "booked"  # not held as "OCR still pending"
    assert lucca.requests(doc)[0] == "get"  # read first: the listed copy was not decided on


def test_a_copy_older_than_what_the_ledger_holds_is_superseded_and_costs_nothing(
    lucca: Lucca,
) -> None:
    """A message redelivered after a newer one was sent (its batch's invocation died after it
    was decided): no request, no decision taken on the older copy."""
    doc = lucca.add(501, documentNumber=None)
    stale = lucca.listed(doc)
    lucca.edit(doc, comment=PERSONS_COMMENT)
    newer = lucca.listed(doc)
    lucca.ledger.states.claim_for_queue(doc, stamp(newer), now=epoch_now(), ttl_seconds=3600)

    result = lucca.processor().process(stale)

    assert result.outcome == "superseded"
    assert lucca.requests(doc) == []
    state = lucca.ledger.states.state(doc)
    assert state is not None
    assert (state.status, state.modified_at) == (Status.QUEUED, stamp(newer))
    assert lucca.processor().process(newer).outcome == "held"  # the newer copy is decided on


def epoch_now() -> float:
    """Now, as the ledger's claims take it (epoch seconds)."""
    return datetime.now(UTC).timestamp()


def test_a_ledger_stamp_without_an_offset_still_compares_with_the_copys(lucca: Lucca) -> None:
    """Lucca writes offsets; a version stored without one (read as UTC) must not make the
    comparison of versions fail."""
    doc = lucca.add(502, documentNumber=None)
    message = lucca.listed(doc)
    assert message.item is not None
    assert message.item.changed_at is not None
    later = message.item.changed_at.astimezone(UTC).replace(tzinfo=None) + timedelta(minutes=5)
    lucca.ledger.states.claim_for_queue(doc, later.isoformat(), now=epoch_now(), ttl_seconds=3600)

    assert lucca.processor().process(message).outcome == "superseded"
