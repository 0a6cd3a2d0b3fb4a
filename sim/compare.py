"""``python -m sim.compare BEFORE AFTER``: the headline figures of two sets of runs side by side.

Each folder holds the JSON ``make sim`` wrote (``sim/results`` by default); a scenario present in
only one of them shows a dash on the other side.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

Column = tuple[str, Callable[[dict[str, Any]], str]]

COLUMNS: tuple[Column, ...] = (
    ("req/booked", lambda f: _n(f["lucca"]["perBooked"], 4)),
    ("min", lambda f: _n(f["lucca"]["perBookedMinimum"], 4)),
    ("GETs", lambda f: _n(f["lucca"]["byEndpoint"]["get"])),
    ("list", lambda f: _n(f["lucca"]["byEndpoint"]["list"])),
    ("drain x min", lambda f: _n(f["drainRatio"], 3)),
    ("fresh p95", lambda f: _minutes(f["freshnessBookableToBooked"]["p95"])),
    ("429s", lambda f: _n(f["lucca"]["throttled429"])),
    ("DLQ", lambda f: _n(f["deadLettered"])),
    ("lost/dbl/stuck", lambda f: f"{f['lost']}/{f['doubleBooked']}/{f['stuck']}"),
    ("queued twice", lambda f: _n(f.get("queuedWhileOnItsWay"))),
    ("list/day", lambda f: _n(f.get("listingRequestsPerDay"), 1)),
    ("budget", lambda f: _percent(f.get("tenantBudget", {}).get("share"))),
    ("peak min", lambda f: _percent(f.get("tenantBudget", {}).get("peakMinuteShare"))),
    ("WRU/poll", lambda f: _n(f.get("pollerDynamodb", {}).get("writeUnitsPerPoll"), 2)),
    ("WRU/cold", lambda f: _n(f.get("pollerDynamodb", {}).get("writeUnitsPerColdStart"), 1)),
    ("uncertain settled", lambda f: _settled(f.get("uncertainBookings"))),
    ("$/month", lambda f: f"{f['cost']['perMonthTotal']:.2f}"),
)


def _n(value: Any, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}" if digits else f"{value:,.0f}"


def _percent(share: float | None) -> str:
    return "-" if share is None else f"{share:.1%}"


def _settled(uncertain: dict[str, Any] | None) -> str:
    """Settled of held, and the longest wait (runs from before these figures show a dash)."""
    if not uncertain:
        return "-"
    longest = uncertain["waitSeconds"]["max"]
    wait = "" if longest is None else f" (max {longest / 3600:.1f} h)"
    return f"{uncertain['settled']}/{uncertain['held']}{wait}"


def _minutes(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds / 60:.1f} min"


def _load(folder: Path) -> dict[str, dict[str, Any]]:
    runs = {}
    for path in sorted(folder.glob("*.json")):
        data = json.loads(path.read_text())
        runs[data["scenario"]] = data["figures"]
    return runs


def table(before: dict[str, dict[str, Any]], after: dict[str, dict[str, Any]]) -> str:
    header = ["scenario", "", *(name for name, _ in COLUMNS)]
    rows = [header]
    for name in sorted(set(before) | set(after), key=_order):
        for label, runs in (("before", before), ("after", after)):
            figures = runs.get(name)
            cells = [fn(figures) if figures else "-" for _, fn in COLUMNS]
            rows.append([name if label == "before" else "", label, *cells])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows
    )


def _order(name: str) -> tuple[int, str]:
    for rank, prefix in enumerate(("backlog-1000-", "backlog-10000-", "backlog-100000-")):
        if name.startswith(prefix):
            return rank, name
    return 9, name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim.compare", description=__doc__)
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    args = parser.parse_args(argv)
    print(table(_load(args.before), _load(args.after)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
