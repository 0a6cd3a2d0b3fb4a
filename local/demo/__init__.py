"""The real template on ministack against the Lucca simulator: ``make demo`` and the e2e tests.

One machine, no AWS account, no Docker. ``LocalPipeline`` starts the simulator and ministack,
creates the API-key secret, builds and deploys ``template.yaml`` with parameter overrides for
the local differences only, shortens the documents queue's retry timing, and tears it all
down again; ``progress()`` and ``verify()`` compare what happened with the simulator's ground
truth, the ledger and the dead-letter queue.

    from local.demo import LocalPipeline, PipelineOptions

    with LocalPipeline(PipelineOptions(documents=60, window_seconds=3)) as pipeline:
        pipeline.invoke_poller()
        pipeline.wait_until_drained(timeout=120)
        verdict = pipeline.verify()
        assert verdict.ok, verdict.problems

Command line: ``python -m local.demo --documents 300 --window 6 --fault-rate 0.03 [--keep]``.
"""

from local.demo.pipeline import (
    BOOKABLE,
    CATEGORIES,
    FAILING,
    HELD,
    SECRET_NAME,
    DeadLetter,
    LocalPipeline,
    PipelineOptions,
    Progress,
    SetupError,
    preflight,
)
from local.demo.report import (
    CategoryRow,
    Verdict,
    format_progress,
    format_summary,
    uncertain_refusals,
    verify,
)

__all__ = [
    "BOOKABLE",
    "CATEGORIES",
    "FAILING",
    "HELD",
    "SECRET_NAME",
    "CategoryRow",
    "DeadLetter",
    "LocalPipeline",
    "PipelineOptions",
    "Progress",
    "SetupError",
    "Verdict",
    "format_progress",
    "format_summary",
    "preflight",
    "uncertain_refusals",
    "verify",
]
