"""The real template deployed on ministack against the Lucca simulator, once per test run.

Every e2e test shares that one deploy (``deployed`` is session-scoped). Under pytest-xdist
(``make test``) the root conftest's scheduler sends the whole of ``tests/e2e`` to one worker,
and a lock file makes sure no two processes ever build and deploy at once (they would share
``.aws-sam/build``): one ministack at a time, whatever ``--dist`` says.

Needs the environments ``make setup`` creates (``.venvs/sam``, ``.venvs/ministack``) and a
python3.12 for ``sam build``. Without them the tests FAIL, saying so: CI must not pass by
skipping the only test of the deployed stack.
"""

from __future__ import annotations

import fcntl
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from local.demo import LocalPipeline, PipelineOptions, SetupError, preflight

#: ~60 documents keep every category present (seed 11: 2+ of each) and the run short.
E2E_DOCUMENTS = 60
#: Lucca's 60 s window compressed to 3 s: the budget paces 40 requests per 3 s.
E2E_WINDOW_SECONDS = 3
E2E_SEED = 11
#: Held while a deploy is up; beside the build folder ``sam build`` writes (``.aws-sam/build``).
LOCK_FILE = Path(__file__).resolve().parents[2] / ".aws-sam" / "e2e.lock"


#: The first e2e test's setup is the deploy, up to 2 x 120 s of draining and settling on top: on
#: a busy machine, next to the other workers, it took 226 s. A test's own timeout mark wins.
E2E_TIMEOUT_SECONDS = 600


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """``--dist loadgroup`` too keeps every e2e test on one worker (one deploy)."""
    for item in items:
        if Path(__file__).parent in item.path.parents:
            item.add_marker(pytest.mark.xdist_group("e2e"))
            if item.get_closest_marker("timeout") is None:
                item.add_marker(pytest.mark.timeout(E2E_TIMEOUT_SECONDS))


@pytest.fixture(scope="session")
def one_deploy_at_a_time() -> Iterator[None]:
    """An exclusive lock for as long as the deploy lives: a second process waits for it."""
    LOCK_FILE.parent.mkdir(parents=True, exist_ok=True)
    with LOCK_FILE.open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"[e2e] another run holds {LOCK_FILE}: waiting for its deploy to end")
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def deployed(
    tmp_path_factory: pytest.TempPathFactory, one_deploy_at_a_time: None
) -> Iterator[LocalPipeline]:
    """Simulator + ministack + the stack, polled once and drained; torn down at the end of the
    run (of the worker's run, under xdist)."""
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
