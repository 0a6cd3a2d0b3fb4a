"""Virtual time: a discrete-event loop, and tasks that run real (blocking) code on it.

The pipeline's code sleeps (budget slots, retry back-off) and waits on I/O (Lucca, AWS) as
ordinary blocking calls. Each Lambda invocation therefore runs in a thread of its own, but only
one thread ever runs at a time: a baton passes between the event loop and the task it resumes,
and a task gives it back only in ``sleep``. Time moves only there, when no other event is due
earlier, so a run is deterministic (the order of events is their time, then their scheduling
order) and weeks of production time pass in minutes.

A task may carry a deadline (a Lambda invocation's timeout). A task that would sleep past it is
resumed at the deadline with ``Killed`` raised from its ``sleep``: its sandbox is gone. Every
later ``sleep`` of a killed task raises again, and every modelled call to AWS or Lucca sleeps
first, so the unwinding code (``finally`` blocks) cannot reach the outside world, as in Lambda.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field


class Killed(BaseException):
    """The invocation ran past its timeout (a BaseException: no ``except Exception`` stops it)."""


@dataclass(order=True)
class _Event:
    at: float
    seq: int
    action: Callable[[], object] = field(compare=False)


class Task:
    """Blocking code on virtual time; started and resumed only by ``Simulation``."""

    def __init__(self, sim: Simulation, name: str, body: Callable[[], None]) -> None:
        self.sim = sim
        self.name = name
        self.deadline: float | None = None
        self.killed = False
        self.done = False
        self.error: BaseException | None = None
        self._body = body
        self._baton = threading.Lock()
        self._baton.acquire()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()

    def _main(self) -> None:
        self._baton.acquire()
        try:
            if not self.killed:
                self._body()
        except Killed:
            self.killed = True
        except BaseException as exc:  # a bug in the model or the code under test: report it
            self.error = exc
        finally:
            self.done = True
            self.sim._task_finished(self)

    def _resume(self) -> None:
        self._baton.release()

    def _wait_for_baton(self) -> None:
        self._baton.acquire()

    def join(self) -> None:
        self._thread.join()


class Simulation:
    """The event loop and the virtual clock (``cleemy_booker.clock.Clock``'s three methods)."""

    def __init__(self, start: float) -> None:
        self.start = start
        self.now = start
        self._events: list[_Event] = []
        self._seq = itertools.count()
        self._current: Task | None = None
        self._loop_baton = threading.Lock()
        self._loop_baton.acquire()
        self._live: dict[int, Task] = {}
        self.events_run = 0
        #: The horizon of the current ``run``: a task's fast path never passes it.
        self._until = float("inf")
        self.errors: list[tuple[str, BaseException]] = []

    # --- the Clock protocol ----------------------------------------------------------------

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now - self.start

    def sleep(self, seconds: float) -> None:
        task = self._current
        if task is None:
            raise RuntimeError("only a task may sleep: event callbacks run at one instant")
        if task.killed:
            raise Killed(task.name)
        wake = self.now + max(0.0, seconds)
        killed = task.deadline is not None and wake > task.deadline
        if killed:
            wake = float(task.deadline)  # type: ignore[arg-type]
        elif wake <= self._until and (not self._events or self._events[0].at > wake):
            self.now = wake  # nothing else is due first: no need to hand the baton round
            return
        self._schedule(wake, lambda: self._run_task(task))
        self._current = None
        self._loop_baton.release()
        task._wait_for_baton()
        if killed or task.killed:
            task.killed = True
            raise Killed(task.name)

    # --- scheduling ------------------------------------------------------------------------

    @property
    def current(self) -> Task | None:
        return self._current

    def call_at(self, at: float, action: Callable[[], object]) -> None:
        """Run ``action`` on the loop at ``at`` (it must not sleep)."""
        self._schedule(max(at, self.now), action)

    def call_later(self, delay: float, action: Callable[[], object]) -> None:
        self.call_at(self.now + delay, action)

    def spawn(self, name: str, body: Callable[[], None], *, at: float | None = None) -> Task:
        """Start ``body`` as a task at ``at`` (now by default)."""
        task = Task(self, name, body)
        self._live[id(task)] = task
        self._schedule(self.now if at is None else max(at, self.now), lambda: self._run_task(task))
        return task

    def _schedule(self, at: float, action: Callable[[], object]) -> None:
        heapq.heappush(self._events, _Event(at, next(self._seq), action))

    def _run_task(self, task: Task) -> None:
        if task.done:
            return
        self._current = task
        task._resume()
        self._loop_baton.acquire()  # until the task sleeps or ends
        self._current = None

    def _task_finished(self, task: Task) -> None:
        self._live.pop(id(task), None)
        if task.error is not None:
            self.errors.append((task.name, task.error))
        self._current = None
        self._loop_baton.release()

    # --- running ---------------------------------------------------------------------------

    def run(self, until: float, stop: Callable[[], bool] | None = None, every: int = 200) -> None:
        """Run events up to ``until``; ``stop`` is asked every ``every`` events."""
        self._until = until
        while self._events and self._events[0].at <= until:
            event = heapq.heappop(self._events)
            self.now = max(self.now, event.at)
            event.action()
            self.events_run += 1
            if self.errors:
                name, error = self.errors[0]
                raise RuntimeError(f"task {name} failed: {error!r}") from error
            if stop is not None and self.events_run % every == 0 and stop():
                return
        if not self._events or self._events[0].at > until:
            self.now = max(self.now, until)

    def shutdown(self) -> None:
        """Kill every task still waiting, so no thread outlives the run."""
        for task in list(self._live.values()):
            task.killed = True
            self._run_task(task)
            task.join()
        self._events.clear()
