"""The retry arithmetic: ``Retry-After`` in seconds or as an HTTP date, capped exponential
back-off with full jitter, and the server's wait winning within bounds."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from cleemy_booker.retry import RetryPolicy, parse_retry_after


def test_retry_after_in_seconds_and_as_http_date() -> None:
    assert parse_retry_after("7") == 7.0
    now = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after("Wed, 25 Nov 2026 12:00:30 GMT", now=lambda: now) == 30.0
    assert parse_retry_after("Wed, 25 Nov 2026 11:00:00 GMT", now=lambda: now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_backoff_is_capped_exponential_with_full_jitter() -> None:
    policy = RetryPolicy(base_delay=1.0, max_delay=5.0)
    rng = random.Random(1)
    samples = [policy.backoff(attempt, rng) for attempt in (1, 2, 3, 4, 10) for _ in range(200)]
    assert all(0 <= s <= 5.0 for s in samples)
    first = [policy.backoff(1, rng) for _ in range(200)]
    assert max(first) <= 1.0
    assert max(policy.backoff(10, rng) for _ in range(200)) > 2.5  # the cap, not the exponent


def test_server_retry_after_wins_but_is_bounded() -> None:
    policy = RetryPolicy(max_retry_after=60)
    assert policy.delay(1, 12.0, random.Random(0)) == 12.0
    assert policy.delay(1, 3600.0, random.Random(0)) == 60.0
