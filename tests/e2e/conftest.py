"""The real template deployed on ministack against the Lucca simulator, once per module.

Needs the environments ``make setup`` creates (``.venvs/sam``, ``.venvs/ministack``) and a
python3.12 for ``sam build``. Without them the tests FAIL, saying so: CI must not pass by
skipping the only test of the deployed stack.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from local.demo import LocalPipeline, PipelineOptions, SetupError, preflight

#: ~60 documents keep every category present (seed 11: 2+ of each) and the run short.
E2E_DOCUMENTS = 60
#: Lucca's 60 s window compressed to 3 s: the budget paces 40 requests per 3 s.
E2E_WINDOW_SECONDS = 3
E2E_SEED = 11


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPipeline]:
    """Simulator + ministack + the stack, polled once and drained; torn down afterwards."""
    missing = None
    try:
        preflight()
    except SetupError as exc:
        missing = str(exc)
    if missing:  # outside the except: the message alone, no chained traceback
        pytest.fail(missing, pytrace=False)
    options = PipelineOptions(
        documents=E2E_DOCUMENTS,
        window_seconds=E2E_WINDOW_SECONDS,
        fault_rate=0.03,
        seed=E2E_SEED,
        stack_name="cleemy-booker-e2e",
        workdir=tmp_path_factory.mktemp("e2e-stack"),
    )
    started = time.monotonic()
    with LocalPipeline(options, say=lambda line: print(f"[e2e] {line}")) as pipeline:
        pipeline.invoke_poller()
        pipeline.wait_until_drained(timeout=120)
        pipeline.settle(timeout=120)  # what the next scheduled poll would confirm
        print(
            f"[e2e] drained {E2E_DOCUMENTS} documents in {time.monotonic() - started:.1f}s "
            f"({', '.join(f'{k} {v:.1f}s' for k, v in pipeline.timings.items())})"
        )
        yield pipeline
        if pipeline.emu is not None:
            print(f"[e2e] ministack log: {pipeline.emu.log_path}")
