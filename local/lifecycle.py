"""``with`` for the local stand-ins that are started and stopped (ministack, the whole pipeline)."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class Startable:
    """A thing with ``start()`` and an idempotent ``stop()``: ``with`` starts it, and stops it
    on the way out whatever happened, so a failed run leaves no process or stack behind."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
