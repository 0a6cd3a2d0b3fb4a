"""The morning digest: what needs a person, what was done, and the pipeline's health, as plain
text an accountant reads in a mail client.

``gather`` reads what the digest tells from the ledger (DynamoDB only: no Lucca request);
``compose`` turns it into the message, a pure function of plain data (tested without AWS);
``mark_published`` records that the digest went out, so the next one tells what happened since.
The scheduled function does, in this order::

    data = gather(ledger, now=time.time())
    digest = compose(data, Health(...), stack=STACK_NAME, zone=ZoneInfo(TIME_ZONE))
    if digest is not None:
        sns.publish(TopicArn=TOPIC, Subject=digest.subject, Message=digest.text)
    mark_published(ledger, data)

Amounts read ``1,234.50 EUR``: the digest is written in English, so English digit grouping (a
French ``1 234,50`` inside English sentences would meet commas that separate list items), and
the ISO code after the amount, as Lucca stores it and as the hold reasons quoted here already
write it (``money.format_amount``): one way of writing an amount across the message, and no
``$``/``£`` guesswork between currencies that share a symbol.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from decimal import Decimal

from .clock import utc_iso
from .ledger import BookingTrail, DocumentState, DocumentSummary, Ledger, Status
from .models import CREDIT_NOTE, INVOICE
from .money import currency_text, format_amount

#: The ledger item ``digest#daily`` remembers up to when the last digest reported.
DIGEST_NAME = "daily"
#: With no digest before it, the first one looks back this far.
FIRST_WINDOW_SECONDS = 86400
#: The period ends this long before ``now``: the status index is eventually consistent, and a
#: document booked a moment ago and not yet in the index must fall into the next period, not
#: between two.
SETTLE_SECONDS = 300
#: The booked documents whose trail is read (one query each) to count the rules that updated
#: them: the latest ones. A digest after weeks of silence stays a few seconds of reads.
MAX_TRAILS = 1000

#: SNS takes 256 KiB; a digest stays at a quarter of that, counted in UTF-8 bytes, whatever the
#: numbers. A mail much longer than this is not read anyway: the lists are cut well before.
MAX_BYTES = 64 * 1024
#: Lines per list (documents of one hold reason, failures, rules) before "… and N more".
LIST_LIMIT = 25
#: Shorter lists tried in turn when a digest is still over ``MAX_BYTES``.
_FALLBACK_LIMITS = (10, 5, 2, 0)
#: Hold reasons shown as groups of their own; past this, the rarest fold into one group.
MAX_GROUPS = 20
#: A reason quoted under a document is cut to this many characters.
REASON_TEXT_MAX = 240
#: A queued document waiting longer than this is something to say even on an empty day.
QUEUE_ALERT_SECONDS = 3600
#: SNS refuses a subject of 100 characters or more.
SUBJECT_MAX = 99

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
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


# --- the data ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class BookedDocument:
    state: DocumentState
    #: How it was booked (the rules that updated it); None: its trail was not read.
    trail: BookingTrail | None = None


@dataclass(frozen=True)
class DigestData:
    """What the ledger says for one digest. ``since``/``until``: the period, ledger stamps
    (``clock.utc_iso``), ``until`` excluded; ``at``: when it was gathered."""

    at: str
    since: str
    until: str
    held: tuple[DocumentState, ...] = ()
    #: Failed (and so dead-lettered) in the period, still failed.
    failed: tuple[DocumentState, ...] = ()
    booked: tuple[BookedDocument, ...] = ()
    #: When the document queued the longest was claimed for the queue (None: none queued).
    oldest_queued_since: str | None = None
    #: Open discrepancies (``recon#`` items): the ledger and Lucca disagree about these.
    discrepancies: tuple[DocumentState, ...] = ()


@dataclass(frozen=True)
class Health:
    """Figures the ledger does not hold, for the period, from whoever sends the digest (None:
    not known, and said so)."""

    #: Lucca requests the pipeline sent (the ``LuccaRequests`` metric, summed).
    requests: int | None = None
    #: Requests the budget allowed in the same time (limit per window x windows).
    budget: int | None = None
    #: Lucca's 429 answers (the ``LuccaThrottled`` metric, summed).
    throttled: int | None = None
    #: Messages in the dead-letter queue now, those the ledger cannot name included (an
    #: unreadable message, one SQS moved there itself).
    dead_letters: int | None = None


@dataclass(frozen=True)
class Digest:
    subject: str
    text: str


# --- gathering --------------------------------------------------------------------------------


def gather(
    ledger: Ledger,
    *,
    now: float,
    name: str = DIGEST_NAME,
    first_window_seconds: float = FIRST_WINDOW_SECONDS,
    settle_seconds: float = SETTLE_SECONDS,
    max_trails: int = MAX_TRAILS,
) -> DigestData:
    """Everything the digest tells, from the ledger: the held documents (all of them: they
    need a person however old), the failed and the booked ones since the last digest, and the
    oldest queued document. Reads only; queries, no scans."""
    until = utc_iso(now - settle_seconds)
    since = ledger.digest_published_until(name) or utc_iso(
        now - settle_seconds - first_window_seconds
    )
    booked = ledger.in_status_between(Status.BOOKED, since, until)
    oldest = ledger.oldest_in_status(Status.QUEUED)
    return DigestData(
        at=utc_iso(now),
        since=since,
        until=until,
        held=tuple(ledger.in_status(Status.HELD)),
        failed=tuple(ledger.in_status_between(Status.FAILED, since, until)),
        booked=_with_trails(ledger, booked, max_trails),
        oldest_queued_since=oldest.updated_at if oldest is not None else None,
        discrepancies=tuple(ledger.in_status(Status.DISCREPANCY)),
    )


def _with_trails(
    ledger: Ledger, booked: Sequence[DocumentState], max_trails: int
) -> tuple[BookedDocument, ...]:
    """The latest ``max_trails`` booked documents with their trail; older ones without."""
    first_read = max(0, len(booked) - max_trails)  # ``booked`` is oldest first
    return tuple(
        BookedDocument(
            state, ledger.trail_of_booking(state.document_id) if n >= first_read else None
        )
        for n, state in enumerate(booked)
    )


def mark_published(ledger: Ledger, data: DigestData, name: str = DIGEST_NAME) -> bool:
    """The digest of ``data`` went out (or had nothing to say): the next one starts at its
    end. False if a digest had already reported that far (a repeated run)."""
    return ledger.mark_digest_published(name, data.until)


# --- composing --------------------------------------------------------------------------------


def compose(
    data: DigestData,
    health: Health | None = None,
    *,
    stack: str,
    zone: tzinfo = UTC,
    all_clear: bool = False,
    max_bytes: int = MAX_BYTES,
    list_limit: int = LIST_LIMIT,
) -> Digest | None:
    """The digest's subject and text, or None when there is nothing to say (nothing held,
    failed, booked, stuck in the queue or disagreeing with Lucca) unless ``all_clear`` asks
    for a message anyway.

    ``stack`` names the stack in the replay command (no AWS resource id appears); ``zone`` is
    the one times are shown in. The text is under ``max_bytes`` in UTF-8, whatever the numbers:
    lists are cut shorter until it fits, and as a last resort the text itself is.
    """
    health = health or Health()
    if not _something_to_say(data, health) and not all_clear:
        return None
    limits = [list_limit, *(n for n in _FALLBACK_LIMITS if n < list_limit)]
    for limit in limits:
        text = _text(data, health, stack, zone, limit)
        if _size(text) <= max_bytes:
            break
    else:
        text = _cut(text, max_bytes, stack)
    return Digest(_subject(data, stack), text)


def _something_to_say(data: DigestData, health: Health) -> bool:
    queued_for = _seconds_since(data.oldest_queued_since, data.at)
    return bool(
        data.held
        or data.failed
        or data.booked
        or data.discrepancies
        or (health.dead_letters or 0) > 0
        or (queued_for is not None and queued_for > QUEUE_ALERT_SECONDS)
    )


def _subject(data: DigestData, stack: str) -> str:
    counts = [
        (len(data.held), "held"),
        (len(data.failed), "failed"),
        (len(data.booked), "booked"),
        (len(data.discrepancies), "to reconcile"),
    ]
    said = ", ".join(f"{n:,} {word}" for n, word in counts if n) or "all clear"
    # ASCII, one line: SNS takes nothing else in a subject.
    subject = f"Cleemy booker {stack}: {said}".encode("ascii", "replace").decode()
    return " ".join(subject.split())[:SUBJECT_MAX]


def _text(data: DigestData, health: Health, stack: str, zone: tzinfo, limit: int) -> str:
    person = _blocks(
        _held_section(data, limit),
        _failed_section(data, health, stack, limit),
        _queue_section(data),
        _discrepancy_section(data, limit),
    )
    if person:
        person = [*_heading("WHAT NEEDS A PERSON"), *person]
    done = [*_heading("WHAT WAS DONE"), *_done_section(data, limit)] if data.booked else []
    if not person and not done:
        done = [
            "All clear: nothing is held for review, nothing failed and nothing was booked "
            "since the last digest."
        ]
    health_block = [*_heading("PIPELINE HEALTH"), _health_line(data, health)]
    return "\n".join(_blocks(_header(data, stack, zone), person, done, health_block)) + "\n"


def _blocks(*blocks: list[str]) -> list[str]:
    """The non-empty blocks, one blank line between each."""
    lines: list[str] = []
    for block in blocks:
        if block and lines:
            lines.append("")
        lines += block
    return lines


def _heading(title: str) -> list[str]:
    return [title, "=" * len(title)]


def _header(data: DigestData, stack: str, zone: tzinfo) -> list[str]:
    return [
        f"Cleemy booker digest for {stack}, {_when(data.at, zone)} ({_zone_name(zone)})",
        f"Since the last digest: from {_when(data.since, zone)} to {_when(data.until, zone)}.",
    ]


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
    for title, group in _groups(held):
        totals = _totals(s.summary for s in group)
        lines += ["", f"{title}: {_count(len(group), 'document')} ({totals})"]
        lines += _cut_list([_held_lines(state, data.at) for state in group], limit)
    return lines


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
    return _clip(" ".join(text.split()), REASON_TEXT_MAX)


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
    return " | ".join(_clip(part, 80) for part in parts)


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
        [f"  - {_clip(rule, 120)}: {_count(n, 'document')}"] for rule, n in rules.most_common()
    ]
    return lines + _cut_list(rule_lines, limit)


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


# --- words ------------------------------------------------------------------------------------


def duration(seconds: float) -> str:
    """``3 days``, ``5 hours``, ``12 minutes``: the largest whole unit, rounded down."""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            return _count(int(seconds // size), unit)
    return "less than a minute"


def money(value: Decimal | None, currency: str | None) -> str:
    """``1,234.50 EUR`` (see the module's docstring for why)."""
    if value is None:
        return "amount unknown"
    return f"{format_amount(value)} {currency_text(currency)}"


def _money(summary: DocumentSummary) -> str:
    return money(summary.including_taxes, summary.currency)


def _totals(summaries: Iterable[DocumentSummary | None]) -> str:
    """Amounts including taxes added up per currency, the most used currency first."""
    sums: dict[str, Decimal] = defaultdict(Decimal)
    uses: Counter[str] = Counter()
    unknown = 0
    for summary in summaries:
        if summary is None or summary.including_taxes is None:
            unknown += 1
            continue
        currency = currency_text(summary.currency)
        sums[currency] += summary.including_taxes
        uses[currency] += 1
    parts = [f"{format_amount(sums[c])} {c}" for c in sorted(sums, key=lambda c: (-uses[c], c))]
    if unknown:
        parts.append(f"{unknown:,} without an amount")
    return ", ".join(parts)


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _cut_list(entries: Sequence[list[str]], limit: int) -> list[str]:
    """The lines of the first ``limit`` entries (one or more lines each), then how many more."""
    lines = [line for entry in entries[:limit] for line in entry]
    if len(entries) > limit:
        lines.append(f"  … and {len(entries) - limit:,} more")
    return lines


def _when(stamp: str, zone: tzinfo) -> str:
    """``Tuesday 3 March 2026, 07:00`` in ``zone`` (English names, whatever the locale)."""
    local = datetime.fromisoformat(stamp).astimezone(zone)
    return (
        f"{_WEEKDAYS[local.weekday()]} {local.day} {_MONTHS[local.month - 1]} {local.year}, "
        f"{local:%H:%M}"
    )


def _zone_name(zone: tzinfo) -> str:
    return str(getattr(zone, "key", None) or zone)


def _seconds_since(stamp: str | None, now: str) -> float | None:
    if not stamp:
        return None
    return max(0.0, (datetime.fromisoformat(now) - datetime.fromisoformat(stamp)).total_seconds())


def _size(text: str) -> int:
    return len(text.encode("utf-8"))


def _cut(text: str, max_bytes: int, stack: str) -> str:
    """The text cut at a line, under ``max_bytes``, saying where the rest is."""
    note = (
        "\n… the message is cut here to stay short; every held document is listed by\n"
        f"    cleemy-booker audit --stack {stack} held\n"
    )
    room = max(0, max_bytes - _size(note))
    head = text.encode("utf-8")[:room].decode("utf-8", errors="ignore")
    return head.rsplit("\n", 1)[0] + note if "\n" in head else note.lstrip("\n")
