"""Settling the bookings the processor could not prove, from Lucca's booked documents: a proof
that holds whatever the inbox's size.

A booking call of ours whose answer was lost, with no later attempt able to prove it, leaves the
document ``BOOKING`` or held ``book_uncertain`` (``processor.booking``). The free proof is the
document's absence from a one-page listing of the whole inbox (``Confirmation``); an inbox of
more than one page never gives it. This part looks for the booking itself instead.

What the proof rests on:

* **Facts** (lucca-api.md). A booked document leaves the inbox and later shows under
  ``GET /cleemy-procurement/api/booked-documents``, which filters on ``createdAt.from`` and
  pages like every v4 list (``limit``/``page``, at most 1000 a page, ``fields.root=count``;
  Lucca's own guide counts it with ``limit=0&page=1&fields.root=count``).
* **Inferences, made here and nowhere else.**

  1. A booked document's ``createdAt`` is either the inbox document's own creation or the
     booking time; both are at or after the inbox document's ``createdAt`` (recorded in the
     ledger's summary with the ``BOOKING`` mark). So filtering ``createdAt.from`` by the day
     *before* the oldest uncertain document's creation (in UTC: whether Lucca reads a day in
     its tenant's time zone or takes a date-time, that day starts earlier) cannot leave it
     out under either reading.
  2. The booked document's shape is the inbox ``document``'s (``id``, ``type``,
     ``documentNumber``, ``documentDate``, ``amountIncludingTaxes``, ``attachments``,
     ``createdAt``): Lucca does not publish it (``models.BookedDocument``).
  3. How an inbox item's id maps to a booked document's id is not published. A booked
     document whose ``id`` is the item's ``document.id`` or the item's ``id`` is taken for
     it only if nothing they both carry disagrees (type, number, date, amount including
     taxes and its currency, the attachments' file ids, and a creation not before ours):
     the two ids may come from different sequences.
  4. Otherwise the invoice's identity (type, number, date, amount including taxes and its
     currency, all present) must match **exactly one** booked document, whose attachments'
     file ids equal ours when both sides carry them: two uploads of one invoice have
     different files, so a copy booked by someone else does not pass for ours when the files
     are shown. Where they are not, an identical invoice booked twice is what the processor's
     number guard holds back, and an ambiguity settles nothing.

* **What it proves.** A match says the invoice is booked in Lucca: by our lost call, or by a
  person since. Either way the document is booked once, which is what ``BOOKED`` records
  (the detail says which booked document and which rule matched). No match proves nothing:
  pages numbered over changing data may skip a document, and the next sweep looks again; the
  document stays held for a person, and the digest lists it with its age.
* **Safety.** A document this run's listing still showed is not settled whatever matches; a
  booked document matched by two uncertain documents settles neither; ``confirm_booked``
  writes only if the state is still the one read.

What it costs: nothing while no booking is uncertain (no Lucca request, no ledger read between
sweeps). A sweep is at most once per ``interval_seconds``: one count, then pages of 1000 of the
documents booked since the oldest uncertain one's creation, at most ``max_pages`` a run (the
next run goes on from there), each through the same client and request budget as the listing.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError

from ..budget import BudgetBusy
from ..client import LuccaClient
from ..endpoints import MAX_PAGE_SIZE
from ..errors import LuccaError
from ..ledger import DocumentState, DocumentStates, DocumentSummary, LedgerQueries, Status
from ..models import BookedDocument, attachment_file_ids
from ..observability import logger
from .confirmation import record_confirmed
from .report import PollReport

#: A sweep at most this often: an uncertain booking is rare and waits for a person anyway; a
#: sweep of a busy tenant's month of bookings is a few requests of the shared 50 a minute.
SETTLE_INTERVAL_SECONDS = 30 * 60
#: A ``BOOKING`` mark younger than this may be a call in flight: its processor decides.
BOOKING_MIN_AGE_SECONDS = 15 * 60
#: Pages read per run at most (1000 each): a sweep longer than that goes on at the next run.
MAX_PAGES_PER_RUN = 5
#: Proof names, as the report counts them and the ledger's detail says.
BY_ID = "booked-documents: id"
BY_IDENTITY = "booked-documents: invoice identity"


@dataclass(frozen=True)
class Identity:
    """What names an invoice to an accountant, every part present."""

    type: str
    number: str
    date: str
    amount: Decimal
    currency: str


@dataclass
class SweepMemory:
    """What a warm poller remembers between runs: when the last sweep began, and where an
    unfinished one goes on (a cold start sweeps again from the first page)."""

    last_started: float | None = None
    created_from: str | None = None
    next_page: int = 1
    pages: int = 0


@dataclass
class Settling:
    """Uncertain bookings recorded booked when Lucca's booked documents show them."""

    client: LuccaClient
    states: DocumentStates
    queries: LedgerQueries
    memory: SweepMemory
    clock: Callable[[], float]
    time_left: Callable[[], float] = lambda: float("inf")
    stop_margin_seconds: float = 10.0
    interval_seconds: float = SETTLE_INTERVAL_SECONDS
    booking_min_age_seconds: float = BOOKING_MIN_AGE_SECONDS
    max_pages: int = MAX_PAGES_PER_RUN
    page_size: int = MAX_PAGE_SIZE
    dry_run: bool = False

    def settle(self, seen: set[int], report: PollReport) -> None:
        """Sweep when one is due and a booking is uncertain; record each one proven."""
        if self.dry_run or not self._due():
            return
        candidates = self._candidates(seen)
        if not candidates:
            self.memory.last_started = self.clock()
            return
        created_from = sweep_start(candidates)
        if created_from is None:
            return
        sent_before = self.client.requests_sent["booked"]
        try:
            booked = self._read(created_from)
        finally:
            spent = self.client.requests_sent["booked"] - sent_before
            report.settle_requests += spent
            report.requests += spent
        for state, document, proof in match_all(candidates, booked):
            self._confirm(state, document, proof, created_from, report)

    def _due(self) -> bool:
        """A sweep under way goes on at once; a new one waits for the interval."""
        last = self.memory.last_started
        if self.memory.created_from is not None:
            return True
        return last is None or self.clock() - last >= self.interval_seconds

    def _candidates(self, seen: set[int]) -> list[DocumentState]:
        try:
            found = self.queries.uncertain_bookings()
        except ClientError:
            logger.warning("uncertain bookings not read", exc_info=True)
            return []
        now = self.clock()
        return [
            state
            for state in found
            if state.document_id not in seen
            and state.summary is not None
            and state.summary.created_at
            and (
                state.status is not Status.BOOKING
                or _age(state, now) >= self.booking_min_age_seconds
            )
        ]

    def _read(self, created_from: str) -> list[BookedDocument]:
        """This run's share of the sweep: a count first when it starts, then pages until the
        count is read, a page comes back short, or this run's share, the budget or the time is
        spent. Whatever was read is matched, also when a request fails."""
        memory = self.memory
        if memory.created_from != created_from:
            memory.created_from, memory.next_page, memory.pages = created_from, 1, 0
            memory.last_started = self.clock()
        read: list[BookedDocument] = []
        try:
            if memory.pages == 0:
                count = self.client.count_booked(created_from)
                memory.pages = math.ceil(count / self.page_size)
            for _ in range(self.max_pages):
                if memory.next_page > memory.pages or self.time_left() < self.stop_margin_seconds:
                    break
                page = self.client.booked_page(
                    page=memory.next_page, limit=self.page_size, created_from=created_from
                )
                read += page.items
                memory.next_page += 1
                if len(page.items) < self.page_size:
                    memory.next_page = memory.pages + 1  # a short page: the end
            if memory.next_page > memory.pages:
                memory.created_from = None  # swept to the end: the next sweep waits its interval
        except BudgetBusy:
            logger.info("settling deferred: request budget busy")
        except LuccaError as error:
            logger.warning("booked documents not read", extra={"error": str(error)})
            memory.created_from = None
        return read

    def _confirm(
        self,
        state: DocumentState,
        document: BookedDocument,
        proof: str,
        created_from: str,
        report: PollReport,
    ) -> None:
        detail = {
            "confirmedBy": (
                f"booked in Lucca: booked document {document.id} matched on "
                f"{proof.partition(': ')[2]} (booked documents created from {created_from})"
            ),
            "bookedDocumentId": document.id,
            "was": state.status.value,
            "wasReasons": list(state.reasons),
        }
        if record_confirmed(self.states, state, detail, report):
            report.settled[proof] += 1
            logger.info(
                "booking confirmed by Lucca's booked documents",
                extra={"documentId": state.document_id, "bookedDocumentId": document.id},
            )


def sweep_start(candidates: Iterable[DocumentState]) -> str | None:
    """The ``createdAt.from`` day that cannot leave out any candidate's booked document
    (inference 1): the day before the oldest creation, in UTC."""
    stamps = [_created_at(state.summary) for state in candidates if state.summary is not None]
    known = [stamp for stamp in stamps if stamp is not None]
    if not known:
        return None
    return (min(known).astimezone(UTC).date() - timedelta(days=1)).isoformat()


def match_all(
    candidates: Sequence[DocumentState], booked: Sequence[BookedDocument]
) -> list[tuple[DocumentState, BookedDocument, str]]:
    """Each candidate with the one booked document that proves it (inferences 3 and 4); a
    booked document two candidates would claim proves neither."""
    by_id: dict[int, list[BookedDocument]] = defaultdict(list)
    by_identity: dict[Identity, list[BookedDocument]] = defaultdict(list)
    for document in booked:
        by_id[document.id].append(document)
        identity = booked_identity(document)
        if identity is not None:
            by_identity[identity].append(document)
    found = [
        (state, *match)
        for state in candidates
        if state.summary is not None
        and (match := match_one(state.summary, state.document_id, by_id, by_identity))
    ]
    claims: dict[int, int] = defaultdict(int)
    for _, document, _ in found:
        claims[id(document)] += 1
    return [entry for entry in found if claims[id(entry[1])] == 1]


def match_one(
    summary: DocumentSummary,
    item_id: int,
    by_id: dict[int, list[BookedDocument]],
    by_identity: dict[Identity, list[BookedDocument]],
) -> tuple[BookedDocument, str] | None:
    ids = {item_id} if summary.lucca_document_id is None else {summary.lucca_document_id, item_id}
    same_id = [d for i in sorted(ids) for d in by_id.get(i, []) if consistent(summary, d)]
    if len(same_id) == 1:
        return same_id[0], BY_ID
    identity = summary_identity(summary)
    if identity is None:
        return None
    same = [d for d in by_identity.get(identity, []) if consistent(summary, d)]
    return (same[0], BY_IDENTITY) if len(same) == 1 else None


def consistent(summary: DocumentSummary, document: BookedDocument) -> bool:
    """Nothing both carry disagrees: a booked document of another invoice always differs in
    something an accountant would see, or in its files, or was created before ours."""
    ours, theirs = _fields_of_summary(summary), _fields_of_booked(document)
    if any(ours[k] is not None and theirs[k] is not None and ours[k] != theirs[k] for k in ours):
        return False
    created = _created_at(summary)
    return created is None or document.createdAt is None or document.createdAt >= created


def summary_identity(summary: DocumentSummary) -> Identity | None:
    return _identity(_fields_of_summary(summary))


def booked_identity(document: BookedDocument) -> Identity | None:
    return _identity(_fields_of_booked(document))


def _identity(fields: dict[str, Any]) -> Identity | None:
    if any(fields[name] is None for name in ("type", "number", "date", "amount", "currency")):
        return None
    return Identity(
        fields["type"], fields["number"], fields["date"], fields["amount"], fields["currency"]
    )


def _fields_of_summary(summary: DocumentSummary) -> dict[str, Any]:
    return {
        "type": summary.type,
        "number": summary.document_number,
        "date": summary.document_date,
        "amount": summary.including_taxes,
        "currency": summary.currency,
        "files": summary.attachment_files or None,
    }


def _fields_of_booked(document: BookedDocument) -> dict[str, Any]:
    amounts = document.amountIncludingTaxes
    including = amounts.includingTaxes if amounts is not None else None
    return {
        "type": document.type,
        "number": document.documentNumber,
        "date": document.documentDate.isoformat() if document.documentDate else None,
        "amount": including.value if including is not None else None,
        "currency": including.currency if including is not None else None,
        "files": attachment_file_ids(document.attachments) or None,
    }


def _created_at(summary: DocumentSummary | None) -> datetime | None:
    if summary is None or not summary.created_at:
        return None
    try:
        stamp = datetime.fromisoformat(summary.created_at)
    except ValueError:
        return None
    return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=UTC)


def _age(state: DocumentState, now: float) -> float:
    if not state.updated_at:
        return 0.0
    return now - datetime.fromisoformat(state.updated_at).timestamp()
