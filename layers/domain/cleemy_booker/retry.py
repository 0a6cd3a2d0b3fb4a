"""How long to wait before trying Lucca again.

Written by hand because no well-kept library does both things Lucca needs at once: honour a
``Retry-After`` given in seconds *or* as an HTTP date, and stop at a deadline the caller gives
(a Lambda's remaining time), while backing off exponentially with jitter otherwise.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


def parse_retry_after(
    value: str | None, *, now: Callable[[], datetime] | None = None
) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date), or None."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = now() if now is not None else datetime.now(UTC)
    return max(0.0, (when - current).total_seconds())


@dataclass(frozen=True)
class RetryPolicy:
    """Capped exponential backoff with full jitter, bounded by attempts and by a deadline.

    ``max_attempts`` bounds in-process tries; SQS redelivery is the outer loop, so this stays
    small to avoid stacking retries on retries.
    """

    max_attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 20.0
    #: Never sleep longer than this for one ``Retry-After``; longer waits are the queue's job.
    max_retry_after: float = 60.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Delay before attempt ``attempt + 1`` (attempt counts from 1): full jitter."""
        ceiling = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return rng.uniform(0, ceiling)

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """The wait before the next attempt: the server's word when it gave one."""
        if retry_after is not None:
            return min(retry_after, self.max_retry_after)
        return self.backoff(attempt, rng)
