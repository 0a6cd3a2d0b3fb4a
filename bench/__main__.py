"""``python -m bench`` (``make bench``): ours against the naive walkthrough, on the simulator.

Flags: ``--documents`` (1000), ``--window`` (2.0 s: Lucca's 60 s compressed 30x), ``--quick``
(a smoke run: 200 documents, 3 cold-start samples), ``--cold-start-runs``, ``--skip``. A report,
not a test: it exits 0 whatever the verdicts. It compresses Lucca's window (and the budget's)
only, so its figures describe pacing, not production: ``make sim`` runs production constants.
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

from bench import env

env.configure()  # before boto3 and Powertools are imported

from bench import coldstart, report  # noqa: E402
from bench.baseline import run_baseline  # noqa: E402
from bench.ours import run_ours  # noqa: E402
from bench.scenario import BUDGET_LIMIT, NOISE, TENANT_LIMIT, Scenario, say  # noqa: E402

PARTS = ("cold-start", "ours", "external", "baseline")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    add = parser.add_argument
    add("--documents", type=int, default=1000, help="documents per inbox (default 1000)")
    add("--window", type=float, default=2.0, help="rate-limit window in seconds (default 2.0)")
    add("--quick", action="store_true", help="smoke run: 200 documents, fewer samples")
    add("--cold-start-runs", type=int, default=None, help="samples per import (default 5)")
    add("--external", type=int, default=25, help="requests per window another client spends")
    add("--seed", type=int, default=7)
    add("--skip", action="append", choices=PARTS, default=[], help="leave a part out")
    return parser


def scenarios(args: argparse.Namespace) -> dict[str, Scenario]:
    def make(key: str, category: str, documents: int, external: int = 0) -> Scenario:
        return Scenario(key, documents, args.window, category, external, args.seed)

    return {
        "ready": make("ready", "ready", args.documents),
        "update": make("update", "ready_needs_label", args.documents),
        "external": make("external", "ready", args.documents, args.external),
    }


def _attempt(label: str, action: Callable[[], Any]) -> Any:
    """Run one part; an error is reported in the table instead of ending the benchmark."""
    started = time.perf_counter()
    say(f"  {label} ...")
    try:
        result = action()
    except Exception as error:
        say(f"  {label}: ERROR {type(error).__name__}: {error}")
        return f"{type(error).__name__}: {error}"
    say(f"  {label}: done in {time.perf_counter() - started:.0f} s")
    return result


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.quick:
        args.documents = min(args.documents, 200)
    runs_per_import = args.cold_start_runs or (3 if args.quick else 5)
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    started = time.perf_counter()
    plan = scenarios(args)
    say(f"bench: {args.documents} documents, window {args.window:g} s, skipping {args.skip}")
    results: dict[str, Any] = {
        "startedAt": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": {
            "documents": args.documents,
            "window": args.window,
            "tenantLimit": TENANT_LIMIT,
            "budgetLimit": BUDGET_LIMIT,
            "externalPerWindow": args.external,
            "seed": args.seed,
            "concurrency": 2,
        },
    }
    if "cold-start" not in args.skip:
        cold = _attempt("cold-start imports", lambda: coldstart.measure(runs_per_import))
        results["coldStart"] = {"error": cold} if isinstance(cold, str) else cold
    runs: dict[str, report.Run] = {}
    if "ours" not in args.skip:
        for key in ("ready", "update"):
            runs[f"ours/{key}"] = _attempt(f"ours, {key}", partial(run_ours, plan[key]))
    if "external" not in args.skip:
        runs["ours/external"] = _attempt(
            f"ours, {args.external} external requests per window",
            lambda: run_ours(plan["external"]),
        )
    if "baseline" not in args.skip:
        for key in ("ready", "update"):
            runs[f"baseline/{key}"] = _attempt(f"baseline, {key}", partial(run_baseline, plan[key]))
    found = report.checks(runs)
    results["runs"] = {
        key: run if isinstance(run, str) else run.as_dict() for key, run in runs.items()
    }
    results["checks"] = [check.as_dict() for check in found]
    results["handlerOutputLines"] = {"count": NOISE.lines, "last": NOISE.last}
    results["wallSeconds"] = round(time.perf_counter() - started, 1)
    report.write(results)
    say(report.render(results, runs, found))
    say(f"wall time {results['wallSeconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
