"""The digest's message: its subject, and its text put together from the sections, kept under
what SNS takes whatever the numbers. A pure function of plain data, tested without AWS."""

from __future__ import annotations

from datetime import UTC, tzinfo

from .data import Digest, DigestData, Health
from .sections import (
    QUEUE_ALERT_SECONDS,
    _discrepancy_section,
    _done_section,
    _failed_section,
    _gone_section,
    _health_line,
    _held_section,
    _novelty_section,
    _queue_section,
)
from .words import _seconds_since, _when, _zone_name

#: SNS takes 256 KiB; a digest stays at a quarter of that, counted in UTF-8 bytes, whatever the
#: numbers. A mail much longer than this is not read anyway: the lists are cut well before.
MAX_BYTES = 64 * 1024
#: Lines per list (documents of one hold reason, failures, rules) before "… and N more".
LIST_LIMIT = 25
#: Shorter lists tried in turn when a digest is still over ``MAX_BYTES``.
_FALLBACK_LIMITS = (10, 5, 2, 0)
#: SNS refuses a subject of 100 characters or more.
SUBJECT_MAX = 99


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
    failed, booked, gone, stuck in the queue or disagreeing with Lucca) unless ``all_clear`` asks
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
        or data.novelties
        or data.gone
        or (health.dead_letters or 0) > 0
        or (queued_for is not None and queued_for > QUEUE_ALERT_SECONDS)
    )


def _subject(data: DigestData, stack: str) -> str:
    counts = [
        (len(data.held), "held"),
        (len(data.failed), "failed"),
        (len(data.booked), "booked"),
        (len(data.discrepancies), "to reconcile"),
        (len(data.gone), "left the inbox"),
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
        _novelty_section(data, limit),
    )
    if person:
        person = [*_heading("WHAT NEEDS A PERSON"), *person]
    done_lines = _blocks(
        _done_section(data, limit) if data.booked else [], _gone_section(data, limit)
    )
    done = [*_heading("WHAT WAS DONE"), *done_lines] if done_lines else []
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
