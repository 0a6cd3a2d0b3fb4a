"""Shared fixtures: no network but loopback, AWS through moto, Lucca through the simulator."""

from __future__ import annotations

import os

import pytest

# Before anything imports boto3 or Powertools: no real AWS, no X-Ray, quiet metrics.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_SERVICE_NAME": "cleemy-booker-tests",
        "POWERTOOLS_METRICS_NAMESPACE": "CleemyBookerTests",
        "POWERTOOLS_DEV": "false",
        "POWERTOOLS_LOG_LEVEL": "WARNING",
    }
)
os.environ.pop("AWS_ENDPOINT_URL", None)
os.environ.pop("AWS_PROFILE", None)


# --- how the suite is split and run in parallel (make test, make check) ----------------------

#: Every test in this folder shares one deploy (``tests/e2e/conftest.py``): one worker runs them.
E2E_DIR = "tests/e2e"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """``slow``: a test that starts the Lucca simulator as an HTTP server (a ``sim`` fixture,
    ``tests.harness.simulator_fixture``). Paced at Lucca's limit, such a test waits more than
    it computes; ``make check`` leaves these to ``make test``, which runs everything. The rule
    reads the fixtures a test asks for, never its file, so tests can move freely."""
    for item in items:
        if "sim" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """``-n N --dist loadfile`` (``make test``): each test file runs whole on one worker, as it
    would alone, and so does all of ``tests/e2e``: one ministack, one deploy. ``--dist load``
    keeps its per-test spread for everything else, e2e together too. Either way e2e starts
    first: a deploy and what runs on it make the longest chain of the suite."""
    dist = config.getoption("dist")
    if dist not in ("load", "loadfile"):
        return None
    from xdist.scheduler import LoadScopeScheduling

    class Scheduling(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            if path == E2E_DIR or path.startswith(E2E_DIR + "/"):
                return E2E_DIR
            return path if dist == "loadfile" else nodeid

        def _assign_work_unit(self, node: object) -> None:
            if E2E_DIR in self.workqueue:
                self.workqueue.move_to_end(E2E_DIR, last=False)
            super()._assign_work_unit(node)

    return Scheduling(config, log)
