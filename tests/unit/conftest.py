"""The fixtures more than one unit-test module uses, in one place. What they are built from
(the in-process worlds, the fake clock, moto's resources, the log and metric capture) lives in
the shared modules beside ``tests/unit``: ``tests.harness``, ``tests.clocks``, ``tests.aws``,
``tests.logs``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cleemy_booker.ledger import Ledger
from tests.aws import clocked_ledger, moto_ledger, stack_fixture
from tests.clocks import FakeClock
from tests.harness import Lucca, World, in_process_lucca, simulated_world
from tests.logs import JsonLines, capture_metrics, package_log_lines

#: The template's resources in a fresh moto, for the runtimes Lucca answers from a script
#: (``tests.harness.CannedLucca``): no simulator, so a placeholder API key. A module that runs a
#: simulator defines its own ``stack`` (``stack_fixture()``), keyed with the simulator's key.
stack = stack_fixture("placeholder")


@pytest.fixture
def clock() -> FakeClock:
    """A fake clock at ``tests.clocks.NOW``."""
    return FakeClock()


@pytest.fixture
def emitted(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, float]]:
    """Every metric the runtimes add during the test: (name, unit, value)."""
    return capture_metrics(monkeypatch)


@pytest.fixture
def logs() -> Iterator[JsonLines]:
    """The package logger's lines from INFO up, as Powertools writes them."""
    with package_log_lines() as lines:
        yield lines


@pytest.fixture
def ledger() -> Iterator[Ledger]:
    """A ledger on the template's table in a fresh moto, on the real clock."""
    with moto_ledger() as found:
        yield found


@pytest.fixture
def clocked() -> Iterator[tuple[Ledger, FakeClock]]:
    """A ledger on the template's table in a fresh moto, and the fake clock it runs on."""
    with clocked_ledger() as found:
        yield found


@pytest.fixture
def world() -> Iterator[World]:
    """An empty simulated inbox in process, the stack in moto, a fake clock at ``NOW``."""
    with simulated_world() as found:
        yield found


@pytest.fixture
def lucca() -> Iterator[Lucca]:
    """An empty simulated inbox in process, its client and a ledger in moto, on the real
    clock (``test_plan`` has a ``lucca`` of its own: a fake of the listing alone)."""
    with in_process_lucca() as found:
        yield found
