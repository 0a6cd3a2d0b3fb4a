"""What each function needs of Lambda's memory setting, measured: ``make memory``.

Lambda gives a function CPU in proportion to its memory (one full vCPU at 1,769 MB), so the
setting buys two things: room for the process, and speed for its CPU work. Each function is
measured in a fresh interpreter, as a cold instance starts: the handler imported with tracing
on (the X-Ray SDK is loaded as in production), then the heaviest work of one invocation:

* the poller: one listing page of 1,000 items (Lucca's maximum, ``PageSize``) parsed into the
  domain's models and turned into 1,000 queue messages;
* the processor: a batch of ``BatchSize`` messages parsed, the example rules applied and the
  review gate run on each.

Peak memory is the process's maximum resident set (``ru_maxrss``); CPU is process time on this
machine's core, taken as one vCPU, then scaled to each memory size's share. The processor's
time is mostly waiting for budget slots (about 1.5 s a request at 40 a minute), which memory
does not shorten; GB-s grow with the setting whether the function computes or waits.

The choice: the smallest size where the peak leaves half the memory free, where the CPU
work of one invocation at that size's share stays under a tenth of the invocation's slot time
(the poller's 300 s timeout; the processor's paced requests for one batch), and where the
cold start's import (its CPU scaled, its file reads not) stays under half of Lambda's 10 s
limit on the init phase (the core here may be faster than Lambda's).

The figures used by the template (and checked against it by
``tests/unit/template/test_template_on_aws.py``) are stored in ``sim/measured.json``; ``make
memory`` measures afresh and compares.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from sim.lambdas import FULL_VCPU_MB

ROOT = Path(__file__).resolve().parent.parent
LAYER = ROOT / "layers" / "domain"
SIZES = (128, 256, 512, 1024)
#: The example rules that update documents: the processor's heaviest decision.
EXAMPLE_RULES = ROOT / "config" / "rules.label-and-due-date.json"
#: The part of memory the peak may fill: the rest absorbs larger pages, longer batches, and
#: the growth of a warm instance's caches.
PEAK_SHARE = 0.5
#: The CPU work of one invocation may take this part of its time at most.
CPU_SHARE = 0.1
#: Lambda stops an init phase after 10 s; the import may take half of it at most.
INIT_LIMIT_SECONDS = 10.0
INIT_SHARE = 0.5

_CHILD = r"""
import importlib.util, json, resource, sys, time
from datetime import date, datetime, timezone

started, started_wall = time.process_time(), time.perf_counter()
spec = importlib.util.spec_from_file_location("app", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
import_cpu = time.process_time() - started
import_wall = time.perf_counter() - started_wall
import_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

from cleemy_booker.gate import GateConfig, review
from cleemy_booker.models import DocumentMessage, InboxItem
from cleemy_booker.rules import load_rules

items = json.loads(open(sys.argv[3], encoding="utf-8").read())
now = datetime.now(timezone.utc)
started = time.process_time()
if sys.argv[2] == "poller":
    for raw in items:
        item = InboxItem.model_validate(raw)
        DocumentMessage(documentId=item.document_id, item=item, listedAt=now).model_dump_json()
else:
    rules, gate = load_rules(sys.argv[4]), GateConfig()
    for raw in items:
        body = DocumentMessage(
            documentId=raw["id"], item=InboxItem.model_validate(raw), listedAt=now
        ).model_dump_json()
        message = DocumentMessage.model_validate_json(body)
        outcome = rules.apply(message.item)
        review(message.item, outcome, gate, today=date.today())
work_cpu = time.process_time() - started
print(json.dumps({
    "importCpuSeconds": import_cpu,
    "importWallSeconds": import_wall,
    "workCpuSeconds": work_cpu,
    "importPeakMb": import_rss / 1024,
    "peakMb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
}))
"""


def _items(count: int, path: Path) -> Path:
    """``count`` items as the Lucca simulator lists them (the same generator as every test)."""
    from local.lucca_simulator.config import SimulatorConfig
    from local.lucca_simulator.data import InboxGenerator

    config = SimulatorConfig(invoices=count)
    generated = InboxGenerator(config.seed, config.first_id, config.category_weights, count)
    path.write_text(json.dumps([doc.item for doc in generated.generate(count)]), encoding="utf-8")
    return path


def _measure(handler: str, kind: str, items: Path) -> dict[str, float]:
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(LAYER),
        "LAMBDA_TASK_ROOT": str(ROOT / "functions" / handler),
        "AWS_LAMBDA_FUNCTION_NAME": "bench-memory",
        "AWS_DEFAULT_REGION": "eu-west-3",
        "POWERTOOLS_SERVICE_NAME": "cleemy-booker",
    }
    result = subprocess.run(  # noqa: S603 - our own interpreter and code
        [
            sys.executable,
            "-c",
            _CHILD,
            str(ROOT / "functions" / handler / "app.py"),
            kind,
            items,
            str(EXAMPLE_RULES),
        ],
        env=env,
        cwd=ROOT / "functions" / handler,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    figures: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    return figures


def choose(figures: dict[str, float], slot_seconds: float) -> dict[str, Any]:
    """Each size's fit, and the smallest that fits (see the module's docstring)."""
    rows = []
    for size in SIZES:
        slower = FULL_VCPU_MB / min(size, FULL_VCPU_MB)
        work = figures["workCpuSeconds"] * slower
        # The import's CPU slows with the share; its reading of files does not.
        io = max(0.0, figures["importWallSeconds"] - figures["importCpuSeconds"])
        init = figures["importCpuSeconds"] * slower + io
        rows.append(
            {
                "memoryMb": size,
                "peakShare": round(figures["peakMb"] / size, 2),
                "workSecondsAtThisSize": round(work, 3),
                "importSecondsAtThisSize": round(init, 2),
                "fits": figures["peakMb"] <= PEAK_SHARE * size
                and work <= CPU_SHARE * slot_seconds
                and init <= INIT_SHARE * INIT_LIMIT_SECONDS,
            }
        )
    chosen = next((row["memoryMb"] for row in rows if row["fits"]), None)
    return {"sizes": rows, "chosenMb": chosen}


def _median(samples: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(s[key] for s in samples) for key in samples[0]}


def measure(template: Any, workdir: Path, runs: int = 5) -> dict[str, Any]:
    """Both functions (median of ``runs`` fresh interpreters each), with the template's page
    size, batch size, timeout and budget pace."""
    poller = template.function("InboxPollerFunction")
    page_size = int(template.parameters["PageSize"])
    batch = template.sqs_source("DocumentProcessorFunction").batch_size
    # The processor's slot time for one batch: its requests at our share of the budget (a
    # book per document at least), the part of the invocation that memory does not buy back.
    interval = float(template.parameters["BudgetWindowSeconds"]) / float(
        template.parameters["BudgetRequestsPerWindow"]
    )
    subjects = {
        "inbox_poller": ("poller", _items(page_size, workdir / "page.json"), poller.timeout),
        "document_processor": (
            "processor",
            _items(batch, workdir / "batch.json"),
            batch * interval,
        ),
    }
    found: dict[str, Any] = {}
    for handler, (kind, items, slot) in subjects.items():
        figures = _median([_measure(handler, kind, items) for _ in range(runs)])
        found[handler] = {
            **{k: round(v, 3) for k, v in figures.items()},
            "slotSeconds": round(slot, 1),
            **choose(figures, slot),
        }
    return found


def main() -> int:
    import tempfile

    from sim.template import Template

    template = Template()
    with tempfile.TemporaryDirectory() as tmp:
        found = measure(template, Path(tmp))
    print("Memory for each function: peak resident memory and one invocation's CPU work")
    print("(CPU measured on this machine's core, scaled to Lambda's share at each size)")
    for handler, figures in found.items():
        configured = template.function(
            "InboxPollerFunction" if handler == "inbox_poller" else "DocumentProcessorFunction"
        ).memory_mb
        print(
            f"\n{handler}: peak {figures['peakMb']:.0f} MB (after import "
            f"{figures['importPeakMb']:.0f} MB), import CPU {figures['importCpuSeconds']:.2f} s, "
            f"work CPU {figures['workCpuSeconds']:.3f} s against a slot of "
            f"{figures['slotSeconds']} s"
        )
        for row in figures["sizes"]:
            mark = "fits" if row["fits"] else "too small"
            print(
                f"  {row['memoryMb']:>5} MB  peak {row['peakShare']:>4.0%} of it, work "
                f"{row['workSecondsAtThisSize']:.3f} s, import "
                f"{row['importSecondsAtThisSize']:.2f} s  {mark}"
            )
        print(f"  chosen: {figures['chosenMb']} MB; the template says {configured} MB")
    out = ROOT / "bench" / "results" / "memory.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(found, indent=2) + "\n")
    print(f"\nwritten to {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
