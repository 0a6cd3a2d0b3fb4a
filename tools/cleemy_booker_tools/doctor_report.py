"""What ``cleemy-booker doctor`` found, as data and as a person reads it: one row per check,
each OK, a warning or blocking with its fix in one sentence; JSON for scripts."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Status = Literal["ok", "warning", "blocking"]
OK: Status = "ok"
WARNING: Status = "warning"
BLOCKING: Status = "blocking"
#: How a status reads in the table: blocking shouts, because it is what stops a go-live.
STATUS_WORDS: Mapping[Status, str] = {OK: "OK", WARNING: "warning", BLOCKING: "BLOCKING"}
TABLE_WIDTH = 120
#: What each endpoint label of the Lucca client means to a person.
ENDPOINT_WORDS: Mapping[str, str] = {
    "list": "listing",
    "get": "inferred read",
    "read": "published read",
}


@dataclass(frozen=True)
class Check:
    """One thing looked at: what was found, and when it is not OK, what to do, in a sentence."""

    name: str
    status: Status
    found: str
    fix: str = ""

    def to_json(self) -> dict[str, str]:
        return {"check": self.name, "status": self.status, "found": self.found, "fix": self.fix}


def ok(name: str, found: str) -> Check:
    return Check(name, OK, found)


def warning(name: str, found: str, fix: str) -> Check:
    return Check(name, WARNING, found, fix)


def blocking(name: str, found: str, fix: str) -> Check:
    return Check(name, BLOCKING, found, fix)


@dataclass(frozen=True)
class LuccaSpend:
    """The requests the doctor sent to the tenant, against the maximum it promises."""

    sent: Mapping[str, int] = field(default_factory=dict)
    most: int = 0
    #: How they were paced: the stack's budget, in words (empty when nothing was sent).
    budget: str = ""

    @property
    def total(self) -> int:
        return sum(self.sent.values())

    def to_json(self) -> dict[str, Any]:
        return {
            "sent": self.total,
            "byEndpoint": dict(self.sent),
            "atMost": self.most,
            "budget": self.budget,
        }

    def describe(self) -> str:
        parts = ", ".join(f"{ENDPOINT_WORDS.get(k, k)} {n}" for k, n in self.sent.items() if n)
        spent = f"{self.total} ({parts})" if parts else "0"
        paced = f", paced by the stack's budget ({self.budget})" if self.budget else ""
        return f"Lucca requests: {spent} of at most {self.most}{paced}"


@dataclass(frozen=True)
class Report:
    stack: str
    region: str | None
    checks: tuple[Check, ...]
    lucca: LuccaSpend = field(default_factory=LuccaSpend)

    @property
    def blocking(self) -> list[Check]:
        return [check for check in self.checks if check.status == BLOCKING]

    @property
    def warnings(self) -> list[Check]:
        return [check for check in self.checks if check.status == WARNING]

    @property
    def go(self) -> bool:
        return not self.blocking

    def verdict(self) -> str:
        if self.go:
            warned = len(self.warnings)
            return f"GO: nothing blocks ({warned} warning{'s' if warned != 1 else ''})"
        names = ", ".join(dict.fromkeys(check.name for check in self.blocking))
        return f"NO-GO: {len(self.blocking)} blocking ({names})"

    def to_json(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "region": self.region,
            "go": self.go,
            "verdict": self.verdict(),
            "checks": [check.to_json() for check in self.checks],
            "luccaRequests": self.lucca.to_json(),
        }

    def render_json(self) -> str:
        return json.dumps(self.to_json(), indent=2, ensure_ascii=False)

    def render_table(self) -> str:
        return render_table(self)


# --- rendering --------------------------------------------------------------------------------

#: (title, width) of the two fixed columns; what was found fills the rest of the line.
_NAME, _STATUS = ("Check", 24), ("Status", 8)
_FOUND_AT = _NAME[1] + 2 + _STATUS[1] + 2
_FOUND_WIDTH = TABLE_WIDTH - _FOUND_AT


def _wrapped(text: str, first: str, indent: str) -> list[str]:
    # Names, ARNs and commands stay whole, so that a fix can be copied from the table.
    return textwrap.wrap(
        " ".join(text.split()),
        width=TABLE_WIDTH,
        initial_indent=first,
        subsequent_indent=indent,
        break_long_words=False,
        break_on_hyphens=False,
    ) or [first.rstrip()]


def _check_lines(check: Check) -> list[str]:
    head = f"{check.name[: _NAME[1]]:<{_NAME[1]}}  {STATUS_WORDS[check.status]:<{_STATUS[1]}}  "
    lines = _wrapped(check.found, head, " " * _FOUND_AT)
    if check.fix and check.status != OK:
        lines += _wrapped(check.fix, " " * _FOUND_AT + "fix: ", " " * (_FOUND_AT + 5))
    return lines


def _header(report: Report) -> list[str]:
    where = f" in {report.region}" if report.region else ""
    rule = f"{'-' * _NAME[1]}  {'-' * _STATUS[1]}  {'-' * _FOUND_WIDTH}"
    title = (
        f"cleemy-booker doctor: stack {report.stack}{where} (reads only; its Lucca requests "
        "count against the tenant's 50 a minute)"
    )
    return [
        *_wrapped(title, "", "  "),
        f"{_NAME[0]:<{_NAME[1]}}  {_STATUS[0]:<{_STATUS[1]}}  Found",
        rule,
    ]


def render_table(report: Report) -> str:
    """At most ``TABLE_WIDTH`` columns: a row per check, its fix under it, then the requests
    spent and the verdict."""
    lines = _header(report)
    rule = lines[-1]
    for check in report.checks:
        lines += _check_lines(check)
    lines.append(rule)
    lines += _wrapped(report.lucca.describe(), "", "  ")
    lines.append(f"Verdict: {report.verdict()}")
    return "\n".join(lines)


def count_words(counts: Sequence[tuple[str, int]]) -> str:
    """``a (3), b (1)``: what a warning lists, most frequent first."""
    ordered = sorted(counts, key=lambda pair: (-pair[1], pair[0]))
    return ", ".join(f"{name} ({n})" for name, n in ordered)
