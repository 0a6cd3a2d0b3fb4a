"""Powertools reads ``datetime.now()`` for idempotency expiry and the secrets cache.

Those are library internals with no clock parameter, so for the length of a run the simulation
puts a ``datetime`` whose ``now`` is the virtual clock into exactly those modules (and restores
the originals after). Nothing else in the process sees it.
"""

from __future__ import annotations

import datetime as real_datetime
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

_DT_MODULES = (
    "aws_lambda_powertools.utilities.idempotency.base",
    "aws_lambda_powertools.utilities.idempotency.persistence.base",
    "aws_lambda_powertools.utilities.idempotency.persistence.dynamodb",
    "aws_lambda_powertools.utilities.idempotency.persistence.datarecord",
)
_DATETIME_MODULES = ("aws_lambda_powertools.utilities.parameters.base",)


def _virtual_datetime(clock: Callable[[], float]) -> type[real_datetime.datetime]:
    class VirtualDatetime(real_datetime.datetime):
        @classmethod
        def now(cls, tz: real_datetime.tzinfo | None = None) -> VirtualDatetime:
            return cls.fromtimestamp(clock(), tz)

    return VirtualDatetime


@contextmanager
def virtual_powertools_time(clock: Callable[[], float]) -> Iterator[None]:
    import importlib

    virtual = _virtual_datetime(clock)
    shim = types.ModuleType("datetime")
    shim.__dict__.update(real_datetime.__dict__)
    shim.datetime = virtual  # type: ignore[attr-defined]
    saved: list[tuple[Any, str, Any]] = []
    for name in _DT_MODULES:
        module = importlib.import_module(name)
        saved.append((module, "dt", getattr(module, "dt")))  # noqa: B009
        setattr(module, "dt", shim)  # noqa: B010
    for name in _DATETIME_MODULES:
        module = importlib.import_module(name)
        saved.append((module, "datetime", getattr(module, "datetime")))  # noqa: B009
        setattr(module, "datetime", virtual)  # noqa: B010
    try:
        yield
    finally:
        for module, attribute, original in saved:
            setattr(module, attribute, original)
