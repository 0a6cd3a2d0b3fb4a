"""The simulation's virtual clock: time passes only in sleeps, tasks interleave by time, a
task past its deadline is killed and can reach nothing afterwards."""

from __future__ import annotations

import threading

import pytest

from sim.clock import Killed, Simulation


def test_tasks_interleave_in_time_order_and_time_passes_only_in_sleeps() -> None:
    sim = Simulation(start=1000.0)
    seen: list[tuple[str, float]] = []

    def worker(name: str, step: float) -> None:
        for _ in range(3):
            sim.sleep(step)
            seen.append((name, sim.now))

    sim.spawn("a", lambda: worker("a", 2.0))
    sim.spawn("b", lambda: worker("b", 3.0))
    sim.run(until=2000.0)
    assert seen == [
        ("a", 1002.0),
        ("b", 1003.0),
        ("a", 1004.0),
        ("b", 1006.0),  # a tie goes to the one that went to sleep first (b, at 1003)
        ("a", 1006.0),
        ("b", 1009.0),
    ]
    assert sim.now == 2000.0  # run() ends at its horizon


def test_a_task_sleeping_past_its_deadline_is_killed_at_the_deadline() -> None:
    sim = Simulation(start=0.0)
    events: list[str] = []

    def body() -> None:
        task = sim.current
        assert task is not None
        task.deadline = 10.0
        sim.sleep(4.0)
        events.append(f"awake at {sim.now:g}")
        try:
            sim.sleep(60.0)
        finally:
            events.append(f"unwinding at {sim.now:g}")
            with pytest.raises(Killed):
                sim.sleep(0.0)  # nothing can be reached after the kill
            events.append("still dead")

    task = sim.spawn("invocation", body)
    sim.run(until=100.0)
    assert events == ["awake at 4", "unwinding at 10", "still dead"]
    assert task.killed
    assert task.done


def test_callbacks_run_at_their_instant_and_may_not_sleep() -> None:
    sim = Simulation(start=0.0)
    times: list[float] = []
    sim.call_at(5.0, lambda: times.append(sim.now))
    sim.call_later(1.0, lambda: times.append(sim.now))
    sim.run(until=10.0)
    assert times == [1.0, 5.0]
    with pytest.raises(RuntimeError, match="only a task may sleep"):
        sim.sleep(1.0)


def test_shutdown_ends_every_waiting_thread() -> None:
    sim = Simulation(start=0.0)
    before = threading.active_count()
    for n in range(5):
        sim.spawn(f"t{n}", lambda: sim.sleep(1e9))
    sim.spawn("never-started", lambda: None, at=1e12)
    sim.run(until=10.0)
    sim.shutdown()
    assert threading.active_count() == before


def test_an_error_in_a_task_stops_the_run_with_its_cause() -> None:
    sim = Simulation(start=0.0)

    def broken() -> None:
        sim.sleep(1.0)
        raise ValueError("model bug")

    sim.spawn("broken", broken)
    with pytest.raises(RuntimeError, match="model bug"):
        sim.run(until=10.0)
    sim.shutdown()
