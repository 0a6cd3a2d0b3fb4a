"""The morning digest: composed from plain data (no AWS), gathered from the ledger (moto)."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from cleemy_booker import digest
from cleemy_booker.clock import utc_iso
from cleemy_booker.digest import BookedDocument, DigestData, Health, compose, gather
from cleemy_booker.ledger import BookingTrail, DocumentState, DocumentSummary, Ledger, Status
from tests.clocks import NOW, FakeClock

HOUR, DAY = 3600, 86400
AT, SINCE, UNTIL = utc_iso(NOW), utc_iso(NOW - DAY), utc_iso(NOW - 300)
LABEL = "accounting label from the invoice number"
DUE = "due date 30 days after the invoice date"


def summary(number: str | None, amount: str | None, currency: str = "EUR") -> DocumentSummary:
    return DocumentSummary(
        document_number=number,
        type="Invoice",
        owner_name="Ada Martin",
        including_taxes=None if amount is None else Decimal(amount),
        currency=currency,
    )


def held(
    document_id: int, waited: float, *reasons: str, doc: DocumentSummary | None = None
) -> DocumentState:
    # Looked at again an hour ago (``updated_at``); held since ``waited`` ago.
    return DocumentState(
        document_id,
        Status.HELD,
        updated_at=utc_iso(NOW - HOUR),
        held_since=utc_iso(NOW - waited),
        reasons=reasons,
        summary=doc,
    )


def booked(document_id: int, amount: str, currency: str, *rules: str) -> BookedDocument:
    state = DocumentState(
        document_id,
        Status.BOOKED,
        updated_at=utc_iso(NOW - 2 * HOUR),
        summary=summary(f"B-{document_id}", amount, currency),
    )
    return BookedDocument(state, BookingTrail(rules=rules))


MISMATCH = "amounts_mismatch: excluding 100.00 + taxes 20.00 = 120.00, but including taxes is "
CEILING = "above_ceiling: amount including taxes 12,500.00 USD is above the auto-booking ceiling"
MISSING = "missing_field: invoice number is missing (document.documentNumber)"


def normal_day() -> DigestData:
    return DigestData(
        at=AT,
        since=SINCE,
        until=UNTIL,
        held=(
            held(11, 5 * HOUR, MISMATCH + "121.50", doc=summary("F-11", "121.50")),
            held(12, 3 * DAY, CEILING, doc=summary("INV-12", "12500", "USD")),
            held(13, 4 * DAY, MISMATCH + "1,234.50", doc=summary("F-13", "1234.5")),
            held(14, 2 * DAY, MISSING, "missing_field: invoice date is missing", doc=None),
        ),
        failed=(
            DocumentState(
                21,
                Status.FAILED,
                updated_at=utc_iso(NOW - 3 * HOUR),
                reasons=("booking refused: the document is locked by a pending approval",),
                summary=summary("F-21", "50"),
            ),
        ),
        booked=(
            booked(31, "100.10", "EUR", LABEL),
            booked(32, "1000", "EUR", LABEL, DUE),
            booked(33, "99.90", "CHF"),
            booked(34, "0.50", "EUR", LABEL),
        ),
        oldest_queued_since=utc_iso(NOW - 120),
    )


# --- nothing to say ---------------------------------------------------------------------------


def test_a_day_with_nothing_to_say_sends_nothing() -> None:
    empty = DigestData(at=AT, since=SINCE, until=UNTIL, oldest_queued_since=utc_iso(NOW - 60))
    assert compose(empty, Health(requests=12, budget=57_600, throttled=0), stack="s") is None


def test_an_all_clear_is_sent_when_asked_for() -> None:
    empty = DigestData(at=AT, since=SINCE, until=UNTIL)
    message = compose(
        empty, Health(requests=12, budget=57_600, throttled=0), stack="books", all_clear=True
    )
    assert message is not None
    assert message.subject == "Cleemy booker books: all clear"
    assert "All clear: nothing is held for review, nothing failed and nothing was booked" in (
        message.text
    )
    assert "WHAT NEEDS A PERSON" not in message.text
    assert "12 Lucca requests of 57,600 allowed (0%); 0 requests answered 429" in message.text
    assert "no document waiting in the queue" in message.text


@pytest.mark.parametrize(
    ("health", "queued", "said"),
    [
        (Health(dead_letters=2), None, "The dead-letter queue holds 2 messages in all."),
        (Health(), utc_iso(NOW - 3 * HOUR), "A document has waited 3 hours in the queue"),
    ],
)
def test_a_dead_letter_or_a_stuck_queue_is_something_to_say(
    health: Health, queued: str | None, said: str
) -> None:
    quiet = DigestData(at=AT, since=SINCE, until=UNTIL, oldest_queued_since=queued)
    message = compose(quiet, health, stack="s")
    assert message is not None
    assert said in message.text
    assert "All clear" not in message.text


# --- documents that left the inbox ------------------------------------------------------------


def gone(document_id: int, minutes_ago: float) -> DocumentState:
    return DocumentState(
        document_id,
        Status.GONE,
        updated_at=utc_iso(NOW - minutes_ago * 60),
        reasons=("not_in_inbox: 404 Not Found",),
    )


def test_documents_gone_from_the_inbox_are_told_by_id_not_as_failures() -> None:
    data = DigestData(
        at=AT, since=SINCE, until=UNTIL, gone=(gone(43, 30), gone(41, 90), gone(42, 60))
    )

    message = compose(data, Health(), stack="s")

    assert message is not None
    assert (
        "3 documents left the inbox before the booker booked them (deleted or booked by a "
        "person in Lucca; not booked by the booker): 41, 42, 43."
    ) in message.text
    assert "WHAT WAS DONE" in message.text
    assert "WHAT NEEDS A PERSON" not in message.text
    assert "dead-letter" not in message.text
    assert message.subject == "Cleemy booker s: 3 left the inbox"


def test_a_long_list_of_gone_documents_is_cut_with_how_many_more() -> None:
    data = DigestData(at=AT, since=SINCE, until=UNTIL, gone=tuple(gone(n, n) for n in range(30)))

    message = compose(data, Health(), stack="s", list_limit=5)

    assert message is not None
    assert "30 documents left the inbox" in message.text
    assert ": 29, 28, 27, 26, 25 and 25 more." in message.text


def test_one_gone_document_reads_in_the_singular_beside_the_booked() -> None:
    data = replace(normal_day(), gone=(gone(44, 30),))

    message = compose(data, Health(), stack="s")

    assert message is not None
    assert "1 document left the inbox before the booker booked it" in message.text
    done = message.text.split("WHAT WAS DONE")[1]
    assert done.index("4 documents booked") < done.index("1 document left the inbox")


# --- a normal day -----------------------------------------------------------------------------


def test_a_normal_day_groups_the_held_by_reason_oldest_first_with_totals() -> None:
    health = Health(requests=1_234, budget=57_600, throttled=2, dead_letters=1)
    message = compose(normal_day(), health, stack="cleemy-booker", zone=ZoneInfo("Europe/Paris"))
    assert message is not None
    text = message.text
    assert message.subject == "Cleemy booker cleemy-booker: 4 held, 1 failed, 4 booked"
    assert "Friday 15 January 2027, 09:00 (Europe/Paris)" in text  # 08:00 UTC
    assert (
        "4 documents held for review, not booked (1,356.00 EUR, 12,500.00 USD, 1 without an "
        "amount), the oldest waiting 4 days." in text
    )
    # Groups in the order of their oldest document, documents oldest first within each.
    mismatch = text.index("Amounts do not add up: 2 documents (1,356.00 EUR)")
    ceiling = text.index("Above the automatic booking ceiling: 1 document (12,500.00 USD)")
    missing = text.index("Information missing on the document: 1 document (1 without an amount)")
    assert mismatch < ceiling < missing
    first = text.index(
        "  - document 13 | invoice F-13 | 1,234.50 EUR | Ada Martin | waiting 4 days"
    )
    second = text.index(
        "  - document 11 | invoice F-11 | 121.50 EUR | Ada Martin | waiting 5 hours"
    )
    assert mismatch < first < second < ceiling
    assert "  - document 14 | no number | amount unknown | waiting 2 days" in text
    # The reasons are quoted without their code, a document's second reason too.
    assert "      invoice date is missing\n" in text
    assert "missing_field" not in text


UNCERTAIN = "book_uncertain: the book call's answer was lost; the document is gone from the inbox"


def test_each_unsettled_uncertain_booking_is_counted_with_the_oldest_age_and_listed() -> None:
    """Whatever group a document falls in (its first reason), an uncertain booking is counted;
    each is listed with how long it waits."""
    data = normal_day()
    uncertain = (
        held(41, 2 * DAY, UNCERTAIN, doc=summary("F-41", "10")),
        held(42, 6 * HOUR, UNCERTAIN, doc=summary("F-42", "20")),
        held(43, DAY, MISSING, UNCERTAIN, doc=summary(None, "30")),
    )
    data = DigestData(data.at, data.since, data.until, held=(*data.held, *uncertain))

    message = compose(data, stack="s")

    assert message is not None
    text = message.text
    assert (
        "Booking uncertain for 3 documents, the oldest for 2 days: a book call's answer was "
        "lost and neither the inbox nor Lucca's booked documents showed it booked yet." in text
    )
    group = text.index("Booking uncertain: check in Lucca whether it is booked: 2 documents")
    first = text.index("  - document 41 | invoice F-41 | 10.00 EUR | Ada Martin | waiting 2 days")
    second = text.index("  - document 42 | invoice F-42 | 20.00 EUR | Ada Martin | waiting 6 hours")
    assert group < first < second
    assert "  - document 43 | no number | 30.00 EUR | Ada Martin | waiting 1 day" in text


def test_without_an_uncertain_booking_the_digest_says_nothing_of_them() -> None:
    message = compose(normal_day(), stack="s")

    assert message is not None
    assert "Booking uncertain for" not in message.text


def test_a_normal_day_lists_the_failures_with_the_replay_command() -> None:
    message = compose(normal_day(), Health(dead_letters=1), stack="cleemy-booker")
    assert message is not None
    text = message.text
    assert "1 document failed since the last digest and went to the dead-letter queue" in text
    assert "  - document 21 | invoice F-21 | 50.00 EUR | Ada Martin\n" in text
    assert "      booking refused: the document is locked by a pending approval" in text
    assert "    cleemy-booker replay --stack cleemy-booker --dry-run\n" in text
    assert "--yes instead of --dry-run" in text


def test_a_normal_day_says_what_was_booked_per_currency_and_rule() -> None:
    health = Health(requests=1_234, budget=57_600, throttled=2)
    message = compose(normal_day(), health, stack="s")
    assert message is not None
    text = message.text
    assert "4 documents booked since the last digest: 1,100.60 EUR, 99.90 CHF." in text
    assert "3 of them updated by a rule before booking:" in text
    assert f"  - {LABEL}: 3 documents\n  - {DUE}: 1 document\n" in text
    assert (
        "1,234 Lucca requests of 57,600 allowed (2%); 2 requests answered 429 (too many "
        "requests); the oldest queued document has waited 2 minutes." in text
    )
    # Words for an accountant: no JSON, no AWS resource.
    for engineer in ("{", "arn:", "https://", "sqs", "ledger"):
        assert engineer not in text


def test_booked_documents_whose_trail_was_not_read_are_counted_as_such() -> None:
    data = normal_day()
    partly = (BookedDocument(data.booked[0].state, None), *data.booked[1:])
    message = compose(DigestData(data.at, data.since, data.until, booked=partly), stack="s")
    assert message is not None
    assert "2 of them updated by a rule before booking (counted on the latest 3 of 4):" in (
        message.text
    )


# --- a day with thousands ---------------------------------------------------------------------


def many_held(count: int, codes: list[str]) -> tuple[DocumentState, ...]:
    return tuple(
        held(
            n,
            DAY + n,
            f"{codes[n % len(codes)]}: excluding 1,000.00 + taxes 200.00 = 1,200.00, but including"
            f" taxes is 1,300.00 (off by 100.00 EUR) {'é' * 200}",
            doc=summary(f"F-2026-{n:05d}", "1300", "EUR"),
        )
        for n in range(count)
    )


def test_five_thousand_held_documents_are_cut_and_stay_under_the_byte_budget() -> None:
    data = DigestData(at=AT, since=SINCE, until=UNTIL, held=many_held(5_000, ["amounts_mismatch"]))
    message = compose(data, stack="s")
    assert message is not None
    text = message.text
    assert len(text.encode("utf-8")) <= digest.MAX_BYTES
    assert "5,000 documents held for review, not booked (6,500,000.00 EUR)" in text
    assert text.count("  - document ") == digest.LIST_LIMIT
    assert f"  … and {5_000 - digest.LIST_LIMIT:,} more" in text
    assert "document 4999 |" in text  # the oldest first
    assert "document 0 |" not in text


def test_thousands_under_many_reasons_still_fit_by_shorter_lists() -> None:
    codes = [f"reason_{n}" for n in range(100)]
    data = DigestData(
        at=AT,
        since=SINCE,
        until=UNTIL,
        held=many_held(5_000, codes),
        booked=tuple(booked(10_000 + n, "10", "EUR", f"rule {n}") for n in range(5_000)),
    )
    message = compose(data, stack="s")
    assert message is not None
    assert len(message.text.encode("utf-8")) <= digest.MAX_BYTES
    assert message.text.count("Reason ") == digest.MAX_GROUPS - 1
    assert "Other reasons: " in message.text
    assert "more" in message.text


def test_the_byte_budget_holds_whatever_the_numbers() -> None:
    data = DigestData(at=AT, since=SINCE, until=UNTIL, held=many_held(5_000, ["x"]))
    message = compose(data, stack="s", max_bytes=400)  # not even the headings fit
    assert message is not None
    assert len(message.text.encode("utf-8")) <= 400
    assert "the message is cut here" in message.text
    assert "cleemy-booker audit --stack s held" in message.text


# --- words ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (20, "less than a minute"),
        (60, "1 minute"),
        (59 * 60, "59 minutes"),
        (5 * HOUR + 59 * 60, "5 hours"),
        (DAY, "1 day"),
        (3 * DAY + 23 * HOUR, "3 days"),
    ],
)
def test_durations_are_words(seconds: float, words: str) -> None:
    assert digest.duration(seconds) == words


def test_amounts_read_with_their_currency() -> None:
    assert digest.money(Decimal("1234.5"), "EUR") == "1,234.50 EUR"
    assert digest.money(Decimal("-12.345"), "KWD") == "-12.345 KWD"
    assert digest.money(Decimal(7), None) == "7.00 no currency"
    assert digest.money(None, "EUR") == "amount unknown"


def test_an_unknown_reason_code_still_reads_as_words() -> None:
    assert digest.reason_title("amounts_mismatch") == "Amounts do not add up"
    assert digest.reason_title("new_lucca_check") == "New lucca check"


# --- gathered from the ledger -----------------------------------------------------------------


def record_at(
    ledger: Ledger, clock: FakeClock, at: float, document_id: int, status: Status
) -> None:
    clock.now = at
    kind = {
        Status.BOOKED: "booked",
        Status.HELD: "held",
        Status.FAILED: "failed",
        Status.GONE: "gone",
    }[status]
    reasons = ["amounts_mismatch: off"] if status is Status.HELD else ["refused"]
    if status is Status.BOOKED:
        ledger.states.record(
            document_id,
            Status.UPDATED,
            "updated",
            detail={"rulesApplied": [LABEL], "diff": [], "requestIds": ["r"]},
        )
    ledger.states.record(
        document_id, status, kind, reasons=reasons, summary=summary(f"F-{document_id}", "10")
    )


def test_the_digest_tells_what_happened_since_the_last_one(
    clocked: tuple[Ledger, FakeClock],
) -> None:
    ledger, clock = clocked
    record_at(ledger, clock, NOW - 3 * DAY, 1, Status.HELD)  # held for days: still told
    record_at(ledger, clock, NOW - 2 * DAY, 2, Status.BOOKED)  # before the first window
    record_at(ledger, clock, NOW - 5 * HOUR, 3, Status.BOOKED)
    record_at(ledger, clock, NOW - 4 * HOUR, 4, Status.FAILED)
    record_at(ledger, clock, NOW - 3 * HOUR, 7, Status.GONE)
    record_at(ledger, clock, NOW - 60, 5, Status.BOOKED)  # after the settle margin: next time
    clock.now = NOW - 10 * 60
    ledger.states.claim_for_queue(6, "m", now=clock.now, ttl_seconds=3600)

    first = gather(ledger, now=NOW)

    assert (first.since, first.until) == (utc_iso(NOW - DAY - 300), utc_iso(NOW - 300))
    assert [s.document_id for s in first.held] == [1]
    assert first.held[0].summary == summary("F-1", "10")
    assert [s.document_id for s in first.failed] == [4]
    assert [s.document_id for s in first.gone] == [7]
    assert [b.state.document_id for b in first.booked] == [3]
    assert first.booked[0].trail == BookingTrail(rules=(LABEL,), request_ids=("r",))
    assert first.oldest_queued_since == utc_iso(NOW - 10 * 60)
    assert digest.mark_published(ledger, first)

    clock.now = NOW + DAY
    second = gather(ledger, now=NOW + DAY)
    assert second.since == first.until  # from where the last digest ended, nothing twice
    assert [b.state.document_id for b in second.booked] == [5]
    assert second.failed == ()
    assert second.gone == ()
    assert digest.mark_published(ledger, second)
    assert not digest.mark_published(ledger, first)  # a late run does not move it back


def test_only_the_latest_booked_documents_have_their_trail_read(
    clocked: tuple[Ledger, FakeClock],
) -> None:
    ledger, clock = clocked
    for n in range(1, 4):
        record_at(ledger, clock, NOW - 5 * HOUR + n, n, Status.BOOKED)
    data = gather(ledger, now=NOW, max_trails=2)
    assert [b.trail is not None for b in data.booked] == [False, True, True]
