"""The package logger's lines as Powertools writes them to CloudWatch, for tests that assert
what an operator reads or queries (the message, its level, its fields, a traceback)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from cleemy_booker.observability import logger


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
