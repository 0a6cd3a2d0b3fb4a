"""The digest's sections, each a list of lines: what needs a person (held, failed, stuck in the
queue, disagreeing with Lucca), what was done (booked, and by which rules), and the pipeline's
health. Each says nothing (an empty list) when it has nothing to tell."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Sequence

from ..ledger import DocumentState, DocumentSummary
from ..models import CREDIT_NOTE, INVOICE
from ..novelty import Novelty
from .data import DigestData, Health
from .words import _count, _cut_list, _money, _seconds_since, _shorten, _totals, duration

#: Hold reasons shown as groups of their own; past this, the rarest fold into one group.
MAX_GROUPS = 20
#: A reason quoted under a document is cut to this many characters.
REASON_TEXT_MAX = 240
#: A queued document waiting longer than this is something to say even on an empty day.
QUEUE_ALERT_SECONDS = 3600

#: What each hold reason code (``gate``, ``processor``) means, as a heading for a person.
REASON_TITLES = {
    "unknown_value": "A value the booker does not know: check in Lucca, book by hand",
    "ocr_not_finished": "Reading the document (OCR) not finished or failed",
    "rule_failed": "An update rule could not be applied",
    "missing_field": "Information missing on the document",
    "type_not_allowed": "Document type not booked automatically",
    "currency_mismatch": "Amounts in different currencies",
    "amounts_mismatch": "Amounts do not add up",
    "amount_sign": "Amount with an unexpected sign",
    "above_ceiling": "Above the automatic booking ceiling",
    "due_before_invoice_date": "Due date before the invoice date",
    "date_in_future": "Invoice date in the future",
    "duplicate_number": "Invoice number already used by another document",
    "book_uncertain": "Booking uncertain: check in Lucca whether it is booked",
    "update_not_kept": "Lucca did not keep the booker's update",
    "invalid_item": "The inbox item could not be read",
}
#: What each discrepancy code (``poller``) means, for a person.
DISCREPANCY_TITLES = {
    "booked_still_in_inbox": "booked according to the ledger, yet still in Lucca's inbox",
    "unknown_to_ledger": "in Lucca's inbox, yet unknown to the ledger",
}
#: A stored reason is ``"<code>: <message>"``; anything else is quoted whole.
_CODE = re.compile(r"[a-z][a-z0-9_]*")
_OTHER = "other"


# --- what needs a person ----------------------------------------------------------------------


def _held_section(data: DigestData, limit: int) -> list[str]:
    if not data.held:
        return []
    held = sorted(data.held, key=lambda s: (s.waiting_since, s.document_id))
    oldest = _seconds_since(held[0].waiting_since, data.at)
    waited = f", the oldest waiting {duration(oldest)}" if oldest is not None else ""
    lines = [
        f"{_count(len(held), 'document')} held for review, not booked "
        f"({_totals(s.summary for s in held)}){waited}.",
        "Fix each in Lucca (or book it there by hand): a document changed in Lucca is looked "
        "at again.",
    ]
    lines += _uncertain_lines(held, data.at)
    for title, group in _groups(held):
        totals = _totals(s.summary for s in group)
        lines += ["", f"{title}: {_count(len(group), 'document')} ({totals})"]
        lines += _cut_list([_held_lines(state, data.at) for state in group], limit)
    return lines


def _uncertain_lines(held: Sequence[DocumentState], now: str) -> list[str]:
    """Bookings still unsettled, whatever reason a document is grouped under: no listing of the
    whole inbox nor Lucca's booked documents proved them yet (``poller.settling``), so only a
    person can say whether each is booked."""
    uncertain = [s for s in held if any(_reason_code(r) == "book_uncertain" for r in s.reasons)]
    if not uncertain:
        return []
    oldest = _seconds_since(uncertain[0].waiting_since, now)  # ``held`` is oldest first
    age = f", the oldest for {duration(oldest)}" if oldest is not None else ""
    return [
        "",
        f"Booking uncertain for {_count(len(uncertain), 'document')}{age}: a book call's answer "
        "was lost and neither the inbox nor Lucca's booked documents showed it booked yet. "
        "Check each in Lucca: booked, nothing to do; still in the inbox, book it there.",
    ]


def _groups(held: Sequence[DocumentState]) -> list[tuple[str, list[DocumentState]]]:
    """Documents by their first reason (the gate lists the most basic first), groups in the
    order of their oldest document. Each document is in one group, so the totals add up; its
    other reasons are quoted under it."""
    by_code: dict[str, list[DocumentState]] = defaultdict(list)
    for state in held:
        by_code[_reason_code(state.reasons[0]) if state.reasons else _OTHER].append(state)
    codes = list(by_code)  # first seen = holds the oldest document
    if len(codes) > MAX_GROUPS:
        rare = sorted(codes, key=lambda c: len(by_code[c]))[: len(codes) - MAX_GROUPS + 1]
        folded = sorted((s for c in rare for s in by_code.pop(c)), key=lambda s: s.waiting_since)
        by_code["__folded"] = folded
    return [
        ("Other reasons" if code == "__folded" else reason_title(code), group)
        for code, group in by_code.items()
    ]


def reason_title(code: str) -> str:
    """A heading for a hold reason code; an unknown code still reads as words."""
    return REASON_TITLES.get(code) or code.replace("_", " ").capitalize() or "Other"


def _reason_code(reason: str) -> str:
    code, sep, _ = reason.partition(": ")
    return code if sep and _CODE.fullmatch(code) else _OTHER


def _reason_message(reason: str) -> str:
    code, sep, message = reason.partition(": ")
    text = message if sep and _CODE.fullmatch(code) else reason
    return _shorten(" ".join(text.split()), REASON_TEXT_MAX)


def _held_lines(state: DocumentState, now: str) -> list[str]:
    waited = _seconds_since(state.waiting_since, now)
    wait = f"waiting {duration(waited)}" if waited is not None else "waiting"
    lines = [f"  - {_document(state)} | {wait}"]
    return lines + [f"      {_reason_message(reason)}" for reason in state.reasons[:3]]


def _failed_section(data: DigestData, health: Health, stack: str, limit: int) -> list[str]:
    waiting = health.dead_letters or 0
    if not data.failed and waiting == 0:
        return []
    lines: list[str] = []
    if data.failed:
        lines.append(
            f"{_count(len(data.failed), 'document')} failed since the last digest and went to "
            "the dead-letter queue (not booked):"
        )
        failures = sorted(data.failed, key=lambda s: (s.updated_at, s.document_id))
        lines += _cut_list([_failed_lines(state) for state in failures], limit)
    if health.dead_letters is not None:
        lines.append(f"The dead-letter queue holds {_count(waiting, 'message')} in all.")
    lines += [
        "Once the cause is fixed, an engineer lists them with",
        f"    cleemy-booker replay --stack {stack} --dry-run",
        "and sends them through again with --yes instead of --dry-run.",
    ]
    return lines


def _queue_section(data: DigestData) -> list[str]:
    queued_for = _seconds_since(data.oldest_queued_since, data.at)
    if queued_for is None or queued_for <= QUEUE_ALERT_SECONDS:
        return []
    return [
        f"A document has waited {duration(queued_for)} in the queue to be booked: the booker "
        "may be stuck. Please tell an engineer."
    ]


def _discrepancy_section(data: DigestData, limit: int) -> list[str]:
    if not data.discrepancies:
        return []
    found = sorted(data.discrepancies, key=lambda s: (s.updated_at, s.document_id))
    lines = [
        f"The ledger and Lucca disagree about {_count(len(found), 'document')}. Check each "
        "in Lucca, then tell an engineer: the booker may have lost track of it.",
    ]
    return lines + _cut_list([_discrepancy_lines(state) for state in found], limit)


def _novelty_section(data: DigestData, limit: int) -> list[str]:
    if not data.novelties:
        return []
    lines = [
        f"Lucca started sending {_count(len(data.novelties), 'new thing')} its inbox did not "
        "send before (its legacy API changes without notice). The booker keeps new fields and "
        "holds documents with a new value; tell an engineer, so that they check what it means "
        "before it matters.",
    ]
    return lines + _cut_list([_novelty_lines(n) for n in data.novelties], limit)


def _novelty_lines(novelty: Novelty) -> list[str]:
    what = {"field": "a new field", "value": "a new value", "route": "a route answering anew"}
    where = f" on document {novelty.document_id}" if novelty.document_id else ""
    return [
        f"  - {what[novelty.kind]}: {novelty.key}",
        f"      first seen {novelty.first_seen}{where}, e.g. {_shorten(novelty.example, 120)}",
    ]


def _discrepancy_lines(state: DocumentState) -> list[str]:
    reason = state.reasons[0] if state.reasons else ""
    code = _reason_code(reason)
    what = DISCREPANCY_TITLES.get(code, "the ledger and Lucca disagree")
    return [f"  - document {state.document_id}: {what}", f"      {_reason_message(reason)}"]


def _failed_lines(state: DocumentState) -> list[str]:
    reason = _reason_message(state.reasons[0]) if state.reasons else "no reason recorded"
    return [f"  - {_document(state)}", f"      {reason}"]


def _document(state: DocumentState) -> str:
    """``document 123 | invoice F-1 | 1,234.50 EUR | Ada Martin``, as far as it is known."""
    summary = state.summary or DocumentSummary()
    kind = {INVOICE: "invoice", CREDIT_NOTE: "credit note"}.get(summary.type or "", "number")
    number = f"{kind} {summary.document_number}" if summary.document_number else "no number"
    parts = [f"document {state.document_id}", number, _money(summary)]
    if summary.owner_name:
        parts.append(summary.owner_name)
    return " | ".join(_shorten(part, 80) for part in parts)


# --- what was done ----------------------------------------------------------------------------


def _done_section(data: DigestData, limit: int) -> list[str]:
    booked = data.booked
    lines = [
        f"{_count(len(booked), 'document')} booked since the last digest: "
        f"{_totals(b.state.summary for b in booked)}."
    ]
    read = [b.trail for b in booked if b.trail is not None]
    rules = Counter(rule for trail in read for rule in trail.rules)
    updated = sum(1 for trail in read if trail.rules)
    of = (
        f" (counted on the latest {len(read):,} of {len(booked):,})"
        if len(read) < len(booked)
        else ""
    )
    if not rules:
        return [*lines, f"None was updated by a rule before booking{of}."]
    lines.append(f"{updated:,} of them updated by a rule before booking{of}:")
    rule_lines = [
        [f"  - {_shorten(rule, 120)}: {_count(n, 'document')}"] for rule, n in rules.most_common()
    ]
    return lines + _cut_list(rule_lines, limit)


def _gone_section(data: DigestData, limit: int) -> list[str]:
    """Documents that left the inbox between a listing and their booking: a person's doing,
    told so that nobody looks for them, not something to act on."""
    if not data.gone:
        return []
    gone = sorted(data.gone, key=lambda s: (s.updated_at, s.document_id))
    ids = ", ".join(str(state.document_id) for state in gone[:limit])
    more = f" and {len(gone) - limit:,} more" if len(gone) > limit else ""
    return [
        f"{_count(len(gone), 'document')} left the inbox before the booker booked "
        f"{'it' if len(gone) == 1 else 'them'} (deleted or booked by a person in Lucca; "
        f"not booked by the booker): {ids}{more}."
    ]


# --- health -----------------------------------------------------------------------------------


def _health_line(data: DigestData, health: Health) -> str:
    if health.requests is None:
        requests = "Lucca requests not counted"
    elif health.budget:
        share = round(100 * health.requests / health.budget)
        requests = f"{health.requests:,} Lucca requests of {health.budget:,} allowed ({share}%)"
    else:
        requests = f"{health.requests:,} Lucca requests"
    if health.throttled is None:
        throttled = "429 answers not counted"
    else:
        throttled = f"{_count(health.throttled, 'request')} answered 429 (too many requests)"
    queued_for = _seconds_since(data.oldest_queued_since, data.at)
    queue = (
        "no document waiting in the queue"
        if queued_for is None
        else f"the oldest queued document has waited {duration(queued_for)}"
    )
    return f"{requests}; {throttled}; {queue}."
