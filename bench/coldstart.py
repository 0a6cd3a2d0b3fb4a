"""Cold-start import time of each handler, against ``import boto3`` alone.

Each sample is a fresh interpreter that times only the import (interpreter start-up is the
same for everyone and is left out), with the layer's folder first on ``sys.path`` as Lambda puts
``/opt/python``, and ``LAMBDA_TASK_ROOT`` set so Powertools' Tracer behaves as in Lambda (it
switches itself off outside Lambda). One unmeasured warm-up first compiles the bytecode, as a
deployed package would ship it. Median of ``runs`` samples, interleaved so drift hits all alike.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
LAYER = ROOT / "layers" / "domain"
HANDLERS = ("inbox_poller", "document_processor")

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


def subjects() -> list[Subject]:
    found = [Subject("boto3", "import boto3", ROOT, None)]
    for handler in HANDLERS:
        path = ROOT / "functions" / handler / "app.py"
        body = _IMPORT_HANDLER.format(path=str(path))
        for disabled in (True, False):
            label = f"{handler} (trace {'disabled' if disabled else 'enabled'})"
            found.append(Subject(label, body, path.parent, disabled))
    return found


def _environment(subject: Subject) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POWERTOOLS_TRACE")}
    env.update(
        PYTHONPATH=str(LAYER),
        LAMBDA_TASK_ROOT=str(subject.task_root),
        AWS_LAMBDA_FUNCTION_NAME="bench-cold-start",
    )
    if subject.trace_disabled:
        env["POWERTOOLS_TRACE_DISABLED"] = "true"
    return env


def sample(subject: Subject) -> float:
    result = subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", _TIMER.format(body=subject.body)],
        env=_environment(subject),
        cwd=subject.task_root,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return float(result.stdout.strip().splitlines()[-1])


def measure(runs: int) -> dict[str, Any]:
    """Median seconds per subject, and each handler's ratio to ``import boto3``."""
    found = subjects()
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
