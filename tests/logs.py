"""The package logger's lines as Powertools writes them to CloudWatch, and the metrics the
runtimes add, for tests that assert what an operator reads or queries (the message, its level,
its fields, a traceback; a metric's name, unit and value)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from cleemy_booker.observability import logger
from cleemy_booker.observability import metrics as powertools_metrics


class JsonLines(logging.Handler):
    """The package logger's lines, formatted by Powertools as they reach CloudWatch."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.setFormatter(logger.registered_formatter)
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))

    def named(self, message: str) -> list[dict[str, Any]]:
        return [line for line in self.lines if line.get("message") == message]


@contextmanager
def package_log_lines() -> Iterator[JsonLines]:
    """Every line of the package logger from INFO up (the functions' log level in Lambda; the
    tests otherwise run at WARNING), restored after."""
    handler = JsonLines()
    before = logger.log_level
    logger.setLevel("INFO")
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(before)


def capture_metrics(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, float]]:
    """Every metric the runtimes add from now on: (name, unit, value)."""
    seen: list[tuple[str, str, float]] = []

    def add_metric(name: str, unit: Any, value: float, **_: Any) -> None:
        seen.append((name, str(unit.value), value))

    monkeypatch.setattr(powertools_metrics, "add_metric", add_metric)
    return seen


def values(emitted: list[tuple[str, str, float]], name: str) -> list[float]:
    """The values of the ``Count`` metric ``name``, in the order they were added."""
    return [value for metric, unit, value in emitted if metric == name and unit == "Count"]
