"""Ground truth vs what the pipeline recorded: the per-category table, the checks, the text.

Pure functions over plain data (the simulator's ``state()``, ledger states, dead letters), so
they are the same for the demo and the e2e tests.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cleemy_booker.processor import BOOK_UNCERTAIN

if TYPE_CHECKING:
    from cleemy_booker.ledger import DocumentState

#: The simulator's ground-truth categories and what the pipeline must do with each.
BOOKABLE = frozenset({"ready", "ready_needs_label", "credit_note"})  # booked exactly once
HELD = frozenset({"ocr_pending", "ocr_failed", "incomplete", "amounts_mismatch"})  # untouched
FAILING = frozenset({"book_rejected"})  # dead-letter queue, with the reason
CATEGORIES = (
    "ready",
    "ready_needs_label",
    "credit_note",
    "ocr_pending",
    "ocr_failed",
    "incomplete",
    "amounts_mismatch",
    "book_rejected",
)
#: Problems listed per kind before "... and N more".
_SHOWN = 5


def expected_outcome(category: str) -> str:
    if category in BOOKABLE:
        return "booked"
    if category in HELD:
        return "held"
    if category in FAILING:
        return "DLQ"
    return "?"


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    document_id: int | None
    failure_reason: str | None
    error_type: str | None
    body: str

    @classmethod
    def from_message(cls, message: Mapping[str, Any]) -> DeadLetter:
        attributes = message.get("MessageAttributes") or {}

        def attr(name: str) -> str | None:
            value = attributes.get(name, {}).get("StringValue")
            return str(value) if value is not None else None

        body = str(message.get("Body", ""))
        document_id: int | None = None
        try:
            parsed = json.loads(body)
            if isinstance(parsed, dict) and isinstance(parsed.get("documentId"), int):
                document_id = parsed["documentId"]
        except json.JSONDecodeError:
            pass
        if document_id is None and (text := attr("documentId")) and text.isdigit():
            document_id = int(text)
        return cls(
            message_id=str(message.get("MessageId", "")),
            document_id=document_id,
            failure_reason=attr("failureReason"),
            error_type=attr("errorType"),
            body=body,
        )


@dataclass(frozen=True)
class Progress:
    """One look at the pipeline: the simulator's truth, the ledger, the queues."""

    elapsed: float
    documents: int
    bookable: int
    booked: int
    double_booked: int
    held: int
    failed: int
    dead_lettered: int
    visible: int
    in_flight: int
    delayed: int
    requests: int
    in_window: int
    rate_limited: int  # 429s from the simulator's own limiter (our budget should avoid them)
    throttled: int  # every 429, injected ones included
    faults: int
    settled: int  # documents booked, held or failed for good
    polls: int = 0  # poller runs seen in its log group (ours and the schedule's)
    scheduled_polls: int = 0

    @property
    def queue_empty(self) -> bool:
        return self.visible == self.in_flight == self.delayed == 0


@dataclass
class CategoryRow:
    category: str
    documents: int = 0
    booked_once: int = 0
    held: int = 0
    in_dlq: int = 0
    double_booked: int = 0
    lost: int = 0
    #: Documents of this category with any problem (touched, ledger disagreeing, ...).
    flagged: int = 0
    #: Failing documents rightly held instead (refused after a call that may have applied).
    excused: int = 0

    @property
    def expected(self) -> str:
        return expected_outcome(self.category)

    @property
    def ok(self) -> bool:
        wanted = {"booked": self.booked_once, "held": self.held, "DLQ": self.in_dlq}
        if self.expected not in wanted:
            return False
        # An excused document is held where the row expects the dead-letter queue.
        wanted["held"] -= self.excused
        others = sum(v for k, v in wanted.items() if k != self.expected)
        return (
            wanted[self.expected] + self.excused == self.documents
            and others == 0
            and self.double_booked == 0
            and self.lost == 0
            and self.flagged == 0
        )


@dataclass
class Verdict:
    rows: list[CategoryRow]
    problems: list[str]
    dead_letters: list[DeadLetter]
    totals: dict[str, Any]
    documents: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and all(row.ok for row in self.rows)

    @property
    def total(self) -> CategoryRow:
        total = CategoryRow("total")
        for row in self.rows:
            total.documents += row.documents
            total.booked_once += row.booked_once
            total.held += row.held
            total.in_dlq += row.in_dlq
            total.double_booked += row.double_booked
            total.lost += row.lost
            total.flagged += row.flagged
            total.excused += row.excused
        return total

    @property
    def booked(self) -> int:
        return sum(1 for d in self.documents if d["bookings"] >= 1)

    @property
    def requests(self) -> int:
        return int(self.totals.get("requests", 0))


def uncertain_refusals(requests: Sequence[Mapping[str, Any]]) -> set[int]:
    """Documents whose book was refused after another book call of ours reached Lucca.

    From the client's side such a refusal proves nothing (the earlier call, answered with a
    fault or no answer at all, may have been applied): the processor holds the document as
    ``book_uncertain`` instead of dead-lettering it. A 429 does not count: the limiter runs
    nothing. The same rule as the client's ``maybe_applied``.
    """
    reached: Counter[int] = Counter()
    last_status: dict[int, int | None] = {}
    for entry in requests:
        if entry.get("endpoint") != "book" or entry.get("documentId") is None:
            continue
        doc_id, status = int(entry["documentId"]), entry["status"]
        last_status[doc_id] = status
        reached[doc_id] += status != 429
    return {
        doc_id
        for doc_id, calls in reached.items()
        if calls > 1 and _is_refusal(last_status[doc_id])
    }


def _is_refusal(status: int | None) -> bool:
    """A permanent answer: a 4xx other than the limiter's."""
    return status is not None and 400 <= status < 500 and status not in (408, 429)


def verify(
    sim_state: Mapping[str, Any],
    ledger: Mapping[int, DocumentState],
    dead_letters: Sequence[DeadLetter],
    requests: Sequence[Mapping[str, Any]] = (),
) -> Verdict:
    """Check every document against its category; every disagreement becomes a problem line.

    A document of a failing category whose refusal followed a call that may have been applied
    (``uncertain_refusals`` of the simulator's request log) is expected held as
    ``book_uncertain``, its number kept, rather than in the dead-letter queue.
    """
    documents: list[dict[str, Any]] = list(sim_state["documents"])
    uncertain = uncertain_refusals(requests)
    dlq_ids = Counter(d.document_id for d in dead_letters)
    known = {d["id"] for d in documents}
    rows = {name: CategoryRow(name) for name in CATEGORIES}
    problems: dict[str, list[str]] = {}

    flagged: set[int] = set()

    def problem(kind: str, text: str, doc_id: int | None = None) -> None:
        problems.setdefault(kind, []).append(text)
        if doc_id is not None:
            flagged.add(doc_id)

    for doc in documents:
        doc_id, category = doc["id"], doc["category"]
        row = rows.setdefault(category, CategoryRow(category))
        flagged_before = len(flagged)
        state = ledger.get(doc_id)
        status = state.status.value if state is not None else None
        row.documents += 1
        row.booked_once += doc["bookings"] == 1
        row.double_booked += doc["bookings"] > 1
        is_held = status == "HELD"
        row.held += is_held
        row.in_dlq += doc_id in dlq_ids
        if doc["bookings"] == 0 and not is_held and doc_id not in dlq_ids:
            row.lost += 1
            problem(
                "lost",
                f"{doc_id} ({category}): not booked, held or dead-lettered; ledger {status}",
                doc_id,
            )
        if doc["bookings"] > 1:
            problem(
                "double-booked", f"{doc_id} ({category}): booked {doc['bookings']} times", doc_id
            )
        if category in BOOKABLE:
            if doc["bookings"] == 1 and status != "BOOKED":
                problem(
                    "ledger",
                    f"{doc_id} ({category}): booked in Lucca, ledger says {status}",
                    doc_id,
                )
            if doc["bookings"] == 0 and doc_id not in dlq_ids and is_held:
                reasons = "; ".join(state.reasons) if state is not None else ""
                problem("held by mistake", f"{doc_id} ({category}): held: {reasons}", doc_id)
        elif category in HELD:
            if doc["bookings"] or doc["puts"]:
                problem(
                    "touched",
                    f"{doc_id} ({category}): {doc['puts']} PUT(s), {doc['bookings']} booking(s)",
                    doc_id,
                )
            if is_held and state is not None and not state.reasons:
                problem("ledger", f"{doc_id} ({category}): HELD without a reason", doc_id)
            if not is_held and (doc["bookings"] or doc_id in dlq_ids):  # else: reported lost
                problem("ledger", f"{doc_id} ({category}): ledger says {status}, not HELD", doc_id)
        elif category in FAILING and doc_id in uncertain and is_held:
            row.excused += 1
            if doc["bookings"] or not _held_as_uncertain(state):
                reasons = "; ".join(state.reasons) if state is not None else ""
                problem("ledger", f"{doc_id} ({category}): held, not as uncertain: {reasons}")
        elif category in FAILING:
            if doc_id not in dlq_ids:
                problem("DLQ", f"{doc_id} ({category}): not in the dead-letter queue", doc_id)
            if status != "FAILED":
                problem(
                    "ledger", f"{doc_id} ({category}): ledger says {status}, not FAILED", doc_id
                )
        row.flagged += len(flagged) > flagged_before
    for letter in dead_letters:
        if letter.document_id is None or letter.document_id not in known:
            problem("DLQ", f"message {letter.message_id}: unknown document ({letter.body[:80]})")
        elif _category(documents, letter.document_id) not in FAILING:
            category = _category(documents, letter.document_id)
            problem(
                "DLQ",
                f"{letter.document_id} ({category}) is in the DLQ: {letter.failure_reason}",
            )
        if not letter.failure_reason:
            problem("DLQ", f"message {letter.message_id}: no failureReason attribute")
    for doc_id, count in dlq_ids.items():
        if count > 1:
            problem("DLQ", f"{doc_id}: {count} messages in the DLQ")
    if int(sim_state["totals"].get("doubleBooked", 0)) and "double-booked" not in problems:
        problem("double-booked", f"simulator counts {sim_state['totals']['doubleBooked']}")
    lines = []
    for kind, texts in problems.items():
        lines += [f"{kind}: {text}" for text in texts[:_SHOWN]]
        if len(texts) > _SHOWN:
            lines.append(f"{kind}: ... and {len(texts) - _SHOWN} more")
    ordered = [rows[name] for name in CATEGORIES] + [
        row for name, row in rows.items() if name not in CATEGORIES
    ]
    return Verdict(
        rows=[row for row in ordered if row.documents or row.category in CATEGORIES],
        problems=lines,
        dead_letters=list(dead_letters),
        totals=dict(sim_state["totals"]),
        documents=documents,
    )


def _held_as_uncertain(state: DocumentState | None) -> bool:
    return state is not None and any(r.startswith(f"{BOOK_UNCERTAIN}:") for r in state.reasons)


def _category(documents: Sequence[Mapping[str, Any]], doc_id: int) -> str:
    return next((str(d["category"]) for d in documents if d["id"] == doc_id), "?")


# --- text -------------------------------------------------------------------------------------


def format_progress(p: Progress, *, rate_limit: int, window: float) -> str:
    """One compact line: what is done, what is waiting, what Lucca has seen."""
    minutes, seconds = divmod(int(p.elapsed), 60)
    return (
        f"{minutes:2d}:{seconds:02d}  booked {p.booked:>4}/{p.bookable:<4} held {p.held:<4} "
        f"DLQ {p.dead_lettered:<3} queue {p.visible} waiting, {p.in_flight} in flight, "
        f"{p.delayed} delayed | requests {p.requests} ({p.in_window} in the last "
        f"{window:g} s, limit {rate_limit} per {window:g} s) | 429s {p.throttled} "
        f"({p.rate_limited} from the limit) | faults {p.faults} | polls {p.polls} "
        f"({p.scheduled_polls} scheduled)"
    )


_COLUMNS = ("documents", "booked once", "held", "in DLQ", "double-booked", "lost")


def format_summary(verdict: Verdict, *, elapsed: float | None = None) -> str:
    width = max(len(r.category) for r in [*verdict.rows, verdict.total]) + 2
    widths = [len(c) + 2 for c in _COLUMNS]
    header = "category".ljust(width) + "".join(
        f"{c:>{w}}" for c, w in zip(_COLUMNS, widths, strict=True)
    )
    header += "   expected  check"
    lines = [header, "-" * len(header)]
    for row in [*verdict.rows, verdict.total]:
        values = (row.documents, row.booked_once, row.held, row.in_dlq, row.double_booked, row.lost)
        is_total = row.category == "total"
        expected = "" if is_total else row.expected
        check = ("ok" if verdict.ok else "MISMATCH") if is_total else ("ok" if row.ok else "NO")
        if is_total:
            lines.append("-" * len(header))
        lines.append(
            row.category.ljust(width)
            + "".join(f"{v:>{w}}" for v, w in zip(values, widths, strict=True))
            + f"   {expected:<8}  {check}"
        )
    totals = verdict.totals
    booked = verdict.booked
    requests = verdict.requests
    per = f"{requests / booked:.2f}" if booked else "n/a"
    endpoints = ", ".join(f"{k} {v}" for k, v in totals.get("byEndpoint", {}).items() if v)
    statuses = totals.get("byStatus", {})
    faults = totals.get("faultsInjected", {})
    lines += [
        "",
        f"Lucca requests: {requests} for {booked} booked documents = {per} per booked document"
        f" ({endpoints})",
        f"429s: {statuses.get('429', 0)} ({totals.get('rateLimited', 0)} from the rate limit, "
        f"{faults.get('429', 0)} injected); faults injected: "
        + (", ".join(f"{k} x{v}" for k, v in sorted(faults.items())) or "none"),
        f"Dead-letter queue: {len(verdict.dead_letters)} message(s), "
        f"{sum(1 for d in verdict.dead_letters if d.failure_reason)} with a failureReason",
    ]
    if excused := verdict.total.excused:
        lines.append(
            f"Held as possibly booked instead of the DLQ: {excused} (refused after a book call "
            "of ours that met a fault and may have gone through; a person checks in Lucca)"
        )
    if elapsed is not None:
        minutes, seconds = divmod(elapsed, 60)
        lines.append(f"Total time: {int(minutes)}m {seconds:04.1f}s")
    if verdict.ok:
        lines.append("Result: OK - the simulator's ground truth, the ledger and the DLQ agree")
    else:
        lines.append(f"Result: MISMATCH - {len(verdict.problems)} problem(s):")
        lines += [f"  - {text}" for text in verdict.problems]
    return "\n".join(lines)
