"""The table printed at the end, the PASS/FAIL checks, and ``bench/results/latest.json``."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from bench.baseline import BaselineRun
from bench.figures import RunFigures
from bench.ours import OursRun

RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"

#: The issue's targets.
MAX_PER_BOOKED = {"ready": 1.01, "update": 2.01}
MAX_DRAIN_RATIO = 1.10
#: Under external load: the bench's own bar for "adapts" (the issue sets none): drain within
#: 1.25 x what the remaining capacity allows, i.e. at least 80 % of what the others leave us.
MAX_EXTERNAL_RATIO = 1.25

Run = OursRun | BaselineRun | str  # a string is the error that stopped the run


@dataclass(frozen=True)
class Check:
    name: str
    value: str
    target: str
    passed: bool | None  # None: could not be measured

    @property
    def verdict(self) -> str:
        return {True: "PASS", False: "FAIL", None: "ERROR"}[self.passed]

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "value": self.value,
            "target": self.target,
            "result": self.verdict,
        }


def figures(run: Run | None) -> RunFigures | None:
    return None if run is None or isinstance(run, str) else run.figures


def _check(
    name: str, run: Run | None, target: str, measure: Callable[[RunFigures], tuple[str, bool]]
) -> Check:
    found = figures(run)
    if found is None:
        return Check(name, f"error: {run}" if run else "not run", target, None)
    value, passed = measure(found)
    return Check(name, value, target, passed)


def checks(runs: dict[str, Run]) -> list[Check]:
    found = []
    for key, label in (("ready", "no update"), ("update", "every document updated")):
        limit = MAX_PER_BOOKED[key]
        found.append(
            _check(
                f"requests per booked invoice, {label}",
                runs.get(f"ours/{key}"),
                f"<= {limit}",
                partial(_per_booked_within, limit),
            )
        )
        found.append(
            _check(
                f"drain time / budget minimum, {label}",
                runs.get(f"ours/{key}"),
                f"<= {MAX_DRAIN_RATIO}",
                lambda f: (f"{f.drain_ratio:.3f}", f.drain_ratio <= MAX_DRAIN_RATIO),
            )
        )
        found.append(
            _check(
                f"429s when nobody else spends the budget, {label}",
                runs.get(f"ours/{key}"),
                "0",
                lambda f: (str(f.rate_limited), f.rate_limited == 0),
            )
        )
    found.append(_external_check(runs.get("ours/external")))
    return found


def _per_booked_within(limit: float, f: RunFigures) -> tuple[str, bool]:
    return f"{f.per_booked:.4f}", f.per_booked <= limit


def _external_check(run: Run | None) -> Check:
    target = f"drain <= {MAX_EXTERNAL_RATIO} x capacity minimum, all booked once, no DLQ"
    if not isinstance(run, OursRun):
        return _check("adapts under external load", run, target, lambda f: ("", False))
    f = run.figures
    from_429 = dlq_from_429(run)
    value = (
        f"{f.capacity_ratio:.3f}, booked once: {f.booked_exactly_once}, "
        f"DLQ {run.dead_letters['count']} ({from_429} after a 429)"
    )
    passed = (
        f.capacity_ratio <= MAX_EXTERNAL_RATIO
        and f.booked_exactly_once
        and f.double_booked == 0
        and run.dead_letters["count"] == 0
    )
    return Check("adapts under external load", value, target, passed)


def dlq_from_429(run: OursRun) -> int:
    """Dead-lettered documents that had been answered a 429 (the cause we must not have)."""
    throttled = set(run.figures.throttled_documents)
    return sum(1 for doc_id in run.dead_letters["documentIds"] if doc_id in throttled)


# --- the table ----------------------------------------------------------------------------------


def _cell(run: Run | None, show: Callable[[RunFigures], str]) -> str:
    found = figures(run)
    if found is None:
        return "error" if isinstance(run, str) else "-"
    return show(found)


def _row(cells: list[str]) -> str:
    widths = (44, 19, 19, 13, 9, 6)
    return "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=False))


#: What this benchmark compresses and what it does not: its figures describe pacing only.
COMPRESSION_NOTE = (
    "COMPRESSED: Lucca's 60 s window and the budget's (to the window above). NOT compressed: "
    "listing freshness 900 s, queue claim 3600 s,",
    "function timeouts 60/300 s, the 5-minute schedule, visibility 360 s, SQS's 900 s delay cap, "
    "the 1-day idempotency expiry, the 20 s budget wait.",
    "So drain times and requests per invoice here describe a pipeline whose other constants are "
    "30x longer than in production; `make sim` runs production constants on a virtual clock.",
)


def render(results: dict[str, Any], runs: dict[str, Run], found: list[Check]) -> str:
    config = results["config"]
    verdict = {c.name: c.verdict for c in found}
    lines = [
        "",
        f"Spend the tenant's 50 requests a minute well: {config['documents']} documents, "
        f"window {config['window']:g} s (time x{60 / config['window']:g}), "
        f"budget {config['budgetLimit']}/{config['tenantLimit']}, concurrency 2",
        *COMPRESSION_NOTE,
        "",
        _row(["", "ours", "baseline", "minimum", "target", "result"]),
    ]
    lines += _requests_section(runs, verdict)
    lines += _drain_section(runs, verdict)
    lines += _throttle_section(runs, verdict)
    lines += _external_section(runs, verdict)
    lines += _cold_start_section(results.get("coldStart"))
    lines += [
        "",
        "ours = the real poller and 2 processor handlers, AWS in memory (sim.aws: the real "
        "Ledger, DynamoSlotStore and idempotency on it);",
        "requests count every attempt Lucca saw, 429s included; drain times come from the "
        "simulator's request log.",
        f"Figures: {RESULTS.relative_to(RESULTS.parents[2])}",
        "",
    ]
    return "\n".join(lines)


_INBOXES = (("ready", "no update (all ready)"), ("update", "every document updated"))


def _compared_section(
    runs: dict[str, Run],
    verdict: dict[str, str],
    title: str,
    check: str,
    figure: Callable[[RunFigures], str],
    minimum: Callable[[RunFigures], str] | str,
    target: Callable[[str], str] | str,
    detail: tuple[str, Callable[[RunFigures], str]] | None = None,
) -> list[str]:
    """A row per inbox: ``figure`` for ours and for the baseline, the best possible (from ours),
    the target and the verdict of the ``check`` of that name; ``detail``: a line more of ours."""
    lines = [title]
    for key, label in _INBOXES:
        ours, base = runs.get(f"ours/{key}"), runs.get(f"baseline/{key}")
        lines.append(
            _row(
                [
                    f"  {label}",
                    _cell(ours, figure),
                    _cell(base, figure),
                    minimum if isinstance(minimum, str) else _cell(ours, minimum),
                    target if isinstance(target, str) else target(key),
                    verdict.get(f"{check}, {_label(key)}", ""),
                ]
            )
        )
        if detail is not None:
            lines.append(_row([detail[0], _cell(ours, detail[1])]))
    return lines


def _requests_section(runs: dict[str, Run], verdict: dict[str, str]) -> list[str]:
    return _compared_section(
        runs,
        verdict,
        "Lucca requests per booked invoice",
        "requests per booked invoice",
        figure=lambda f: f"{f.per_booked:.4f} ({f.requests})",
        minimum=lambda f: f"{f.minimum_per_booked:.4f}",
        target=lambda key: f"<= {MAX_PER_BOOKED[key]}",
    )


def _label(key: str) -> str:
    return "no update" if key == "ready" else "every document updated"


def _drain_section(runs: dict[str, Run], verdict: dict[str, str]) -> list[str]:
    return _compared_section(
        runs,
        verdict,
        "Drain time, first request -> last booking (x the budget's minimum)",
        "drain time / budget minimum",
        figure=lambda f: f"{f.drain_seconds:.1f} s ({f.drain_ratio:.3f})",
        minimum=lambda f: f"{f.budget_minimum_seconds:.1f} s",
        target=f"<= {MAX_DRAIN_RATIO}",
        detail=("    ours: where the time went", _pacing),
    )


def _pacing(f: RunFigures) -> str:
    p = f.pacing
    return (
        f"median gap {p.median_gap * 1000:.0f} ms (interval {p.interval * 1000:.0f} ms), "
        f"list -> next request {p.startup_seconds * 1000:.0f} ms, {p.stalls} stalls, "
        f"+{p.excess_seconds:.2f} s over {p.paced_seconds:.1f} s evenly paced"
    )


def _throttle_section(runs: dict[str, Run], verdict: dict[str, str]) -> list[str]:
    return _compared_section(
        runs,
        verdict,
        "429s, and the most requests accepted in any one window (of the tenant's 50)",
        "429s when nobody else spends the budget",
        figure=lambda f: f"{f.rate_limited} (peak {f.peak_in_window}/50)",
        minimum="0",
        target="0",
    )


def _external_section(runs: dict[str, Run], verdict: dict[str, str]) -> list[str]:
    run = runs.get("ours/external")
    title = "Another client spends half the tenant's budget (ours, no-update inbox)"
    if not isinstance(run, OursRun):
        return [title, f"  {run or 'not run'}"]
    f = run.figures
    return [
        title + f": {f.remaining_rate * f.window_seconds:g} of 50 per window left",
        _row(
            [
                "  drain (x the remaining capacity's minimum)",
                f"{f.drain_seconds:.1f} s ({f.capacity_ratio:.3f})",
                "",
                f"{f.capacity_minimum_seconds:.1f} s",
                f"<= {MAX_EXTERNAL_RATIO}",
                verdict.get("adapts under external load", ""),
            ]
        ),
        _row(["  accepted requests per second", f"{f.accepted_rate:.2f}", "", "", "", ""])
        + f"(left: {f.remaining_rate:g}/s, budget: {f.budget_rate:g}/s)",
        _row(["  429s / requests per booked invoice", f"{f.rate_limited} / {f.per_booked:.4f}"])
        + f"({f.pacing.doomed_429s} of the 429s left on a slot reserved before the previous 429)",
        _row(["  pauses after 429s", f"{f.pacing.after_429_seconds:.1f} s"])
        + f"(of {f.pacing.excess_seconds:.1f} s over the paced {f.pacing.paced_seconds:.1f} s; "
        "Retry-After is whole seconds)",
        _row(
            [
                "  booked exactly once / dead-lettered",
                f"{f.booked}/{f.bookable}, {'yes' if f.booked_exactly_once else 'NO'}",
                f"DLQ {run.dead_letters['count']} ({dlq_from_429(run)} after a 429)",
            ]
        ),
    ]


def _cold_start_section(cold: Any) -> list[str]:
    if cold is None:
        return []
    if "error" in cold:
        return ["Cold-start import", f"  error: {cold['error']}"]
    seconds = cold["seconds"]
    lines = [
        f"Cold-start import, median of {cold['runs']} fresh interpreters "
        f"(import boto3 alone: {seconds['boto3'] * 1000:.0f} ms)"
    ]
    for name, ratio in cold["ratioToBoto3"].items():
        lines.append(_row([f"  {name}", f"{seconds[name] * 1000:.0f} ms", f"{ratio:.2f} x boto3"]))
    return lines


def write(results: dict[str, Any]) -> Path:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, default=str) + "\n")
    return RESULTS
