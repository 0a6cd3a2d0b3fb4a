"""Cold-start import time of each handler, against ``import boto3`` alone.

Each sample is a fresh interpreter that times only the import (interpreter start-up is the
same for everyone and is left out). It sees what a Lambda instance sees and nothing more: the
standard library, then the layer as ``sam build`` makes it — the pinned closure of
``layers/domain/requirements.txt`` (installed once into ``bench/results/layer-<hash>``) and the
domain package — on ``sys.path``, and ``-S`` so that no package of the development environment
is importable (httpx, for one, imports its command-line extras when it finds them, and the
dev tools bring them). ``LAMBDA_TASK_ROOT`` is set so Powertools' Tracer behaves as in Lambda
(it switches itself off outside Lambda). One unmeasured warm-up first compiles the bytecode, as
a deployed package would ship it. Median of ``runs`` samples, interleaved so drift hits all
alike.

``python -m bench.coldstart [--runs N] [--root TREE ...]`` measures one tree or several (e.g.
a worktree of an earlier commit) in one run, so their figures share the machine's state.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "layers" / "domain" / "requirements.txt"
HANDLERS = ("inbox_poller", "document_processor", "morning_digest")

_TIMER = """
import time
started = time.perf_counter()
{body}
print(time.perf_counter() - started)
"""
_IMPORT_HANDLER = """
import importlib.util
spec = importlib.util.spec_from_file_location("app", {path!r})
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
"""


@dataclass(frozen=True)
class Subject:
    name: str
    body: str
    task_root: Path
    trace_disabled: bool | None  # None: not a handler, the variable does not matter
    #: What ``sys.path`` holds after the standard library: the layer's closure, then the code.
    path: tuple[Path, ...]
    #: The environment the tree's template gives its functions (plain values only).
    constants: tuple[tuple[str, str], ...] = ()


def layer_dependencies(requirements: Path = REQUIREMENTS) -> Path:
    """The layer's pinned closure, installed as ``sam build`` would (once per requirements)."""
    digest = hashlib.sha256(requirements.read_bytes()).hexdigest()[:12]
    target = ROOT / "bench" / "results" / f"layer-{digest}"
    if not (target / ".complete").exists():
        pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target"]
        # our own interpreter, our pinned requirements
        subprocess.run([*pip, str(target), "-r", str(requirements)], check=True)  # noqa: S603
        (target / ".complete").touch()
    return target


def subjects(roots: list[Path] | None = None) -> list[Subject]:
    deps = layer_dependencies()
    found = [Subject("boto3", "import boto3", ROOT, None, (deps,))]
    for root in roots or [ROOT]:
        prefix = "" if root == ROOT else f"{root.name}: "
        for handler in HANDLERS:
            path = root / "functions" / handler / "app.py"
            if not path.exists():
                continue
            body = _IMPORT_HANDLER.format(path=str(path))
            for disabled in (True, False):
                label = f"{prefix}{handler} (trace {'disabled' if disabled else 'enabled'})"
                code = (deps, root / "layers" / "domain")
                constants = template_constants(root)
                found.append(Subject(label, body, path.parent, disabled, code, constants))
    return found


def template_constants(root: Path) -> tuple[tuple[str, str], ...]:
    """The functions' environment variables a tree's template sets to plain values
    (Powertools' and pydantic's settings among them), as Lambda hands them to the import."""
    from sim.template import load_template  # the bench runs from the project root

    template = load_template(root / "template.yaml")
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    return tuple((k, str(v)) for k, v in variables.items() if isinstance(v, str))


def _environment(subject: Subject) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("POWERTOOLS_TRACE", "PYTHON", "VIRTUAL_ENV"))
    }
    env.update(subject.constants)
    env.update(
        PYTHONPATH=os.pathsep.join(str(p) for p in subject.path),
        LAMBDA_TASK_ROOT=str(subject.task_root),
        AWS_LAMBDA_FUNCTION_NAME="bench-cold-start",
        AWS_DEFAULT_REGION=os.environ.get("AWS_DEFAULT_REGION", "eu-west-1"),
    )
    if subject.trace_disabled:
        env["POWERTOOLS_TRACE_DISABLED"] = "true"
    return env


def sample(subject: Subject) -> float:
    result = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-S", "-c", _TIMER.format(body=subject.body)],
        env=_environment(subject),
        cwd=subject.task_root,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return float(result.stdout.strip().splitlines()[-1])


def measure(runs: int, roots: list[Path] | None = None) -> dict[str, Any]:
    """Median seconds per subject, and each handler's ratio to ``import boto3``."""
    found = subjects(roots)
    for subject in found:
        sample(subject)  # warm-up: bytecode compiled, files in the page cache
    samples: dict[str, list[float]] = {subject.name: [] for subject in found}
    for _ in range(runs):
        for subject in found:
            samples[subject.name].append(sample(subject))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    boto3 = medians["boto3"]
    return {
        "runs": runs,
        "seconds": {name: round(value, 4) for name, value in medians.items()},
        "samples": {name: [round(v, 4) for v in values] for name, values in samples.items()},
        "ratioToBoto3": {
            name: round(value / boto3, 2) for name, value in medians.items() if name != "boto3"
        },
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.coldstart", description=__doc__)
    parser.add_argument("--runs", type=int, default=7, help="samples per subject (default 7)")
    parser.add_argument("--root", type=Path, action="append", help="a tree to measure (repeat)")
    args = parser.parse_args(argv)
    roots = [root.resolve() for root in args.root] if args.root else None
    result = measure(args.runs, roots)
    boto3 = result["seconds"]["boto3"]
    print(f"import boto3 alone: {boto3 * 1000:.0f} ms (median of {args.runs})")
    for name, ratio in result["ratioToBoto3"].items():
        print(f"  {name:<55} {result['seconds'][name] * 1000:6.0f} ms  {ratio:.2f} x boto3")
    print(json.dumps(result["ratioToBoto3"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
