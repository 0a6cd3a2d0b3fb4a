"""``python -m sim SCENARIO``: run a scenario on the virtual clock, print its table, write JSON.

python -m sim backlog --sizes 1000,10000,100000
python -m sim week | neighbour | outage | faults | people | standing
python -m sim all
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path
from typing import Any

from sim.report import table
from sim.scenarios import SCENARIOS, Scenario, deterministic_json, run

RESULTS = Path(__file__).resolve().parent / "results"


def _scenarios(name: str, args: argparse.Namespace) -> list[Scenario]:
    factory = SCENARIOS[name]
    if name == "backlog":
        sizes = tuple(int(s) for s in args.sizes.split(","))
        built = factory(sizes=sizes, seed=args.seed)
    elif name == "week":
        built = factory(seed=args.seed, per_day=args.per_day, rules=args.rules)
    elif name in ("outage", "faults", "people", "standing"):
        built = factory(seed=args.seed, per_day=args.per_day)
    else:
        built = factory(seed=args.seed)
    return built if isinstance(built, list) else [built]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sim", description=__doc__)
    parser.add_argument("scenario", choices=[*SCENARIOS, "all"])
    parser.add_argument("--sizes", default="1000,10000,100000", help="backlog sizes")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--per-day", type=int, default=500, help="week: invoices a day")
    parser.add_argument(
        "--rules", type=Path, default=None, help="week: a rules file (default: none, as deployed)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for the JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.add_argument(
        "--horizon-hours",
        type=float,
        default=None,
        help="stop after this much simulated time (the figures then say the run was cut)",
    )
    args = parser.parse_args(argv)
    # A poller run that lists nothing publishes no metric; Powertools warns each time.
    warnings.filterwarnings("ignore", message="No application metrics to publish")
    if os.environ.get("PYTHONHASHSEED") != "0":
        print("note: set PYTHONHASHSEED=0 for bit-identical JSON across runs", file=sys.stderr)
    names = list(SCENARIOS) if args.scenario == "all" else [args.scenario]
    args.out.mkdir(parents=True, exist_ok=True)
    results: list[dict[str, Any]] = []
    for name in names:
        for scenario in _scenarios(name, args):
            if args.horizon_hours is not None:
                scenario.horizon = min(scenario.horizon, args.horizon_hours * 3600)
            progress = None if args.quiet else (lambda text: print(text, file=sys.stderr))
            result = run(scenario, progress)
            results.append(result)
            path = args.out / f"{scenario.name}.json"
            path.write_text(deterministic_json(result))
            print(table(result))
            if "report" in result:
                print(f"\n{result['report']}")
            print(f"  JSON: {path}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
