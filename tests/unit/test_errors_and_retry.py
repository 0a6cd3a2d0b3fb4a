"""Error bodies in every format, and the retry arithmetic."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from cleemy_booker.errors import (
    AuthError,
    NotFoundError,
    PermanentError,
    RateLimitedError,
    RetryableError,
    error_for_status,
    parse_problem,
)
from cleemy_booker.retry import RetryPolicy, parse_retry_after


def test_problem_json_is_parsed_with_its_field_errors() -> None:
    problem = parse_problem(
        b'{"type": "about:blank", "title": "Invalid document", "status": 400,'
        b' "errors": {"document.type": ["required"]}}',
        "application/problem+json",
    )
    assert problem.format == "problem+json"
    assert "Invalid document" in problem.summary()
    assert "document.type" in problem.summary()


def test_old_dotnet_message_body_is_parsed() -> None:
    problem = parse_problem(b'{"Status": 404, "Message": "Entity not found"}', "application/json")
    assert (problem.format, problem.title) == ("message-json", "Entity not found")


def test_html_error_page_gives_its_title() -> None:
    html = b"<html><head><title>503 Service Unavailable</title></head><body>x</body></html>"
    problem = parse_problem(html, "text/html")
    assert (problem.format, problem.title) == ("html", "503 Service Unavailable")


def test_plain_text_and_empty_bodies() -> None:
    assert parse_problem(b"Bad things\n happened", "text/plain").title == "Bad things happened"
    assert parse_problem(b"", None).title == "(empty body)"
    assert parse_problem(b'["json but not an object"]', "application/json").format == "text"


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, PermanentError),
        (401, AuthError),
        (403, AuthError),
        (404, NotFoundError),
        (413, PermanentError),
        (431, PermanentError),
        (408, RetryableError),
        (429, RateLimitedError),
        (500, RetryableError),
        (503, RetryableError),
        (422, PermanentError),
    ],
)
def test_each_status_maps_to_its_error_class(status: int, kind: type) -> None:
    error = error_for_status(
        status,
        endpoint="book",
        problem=parse_problem(b"x", None),
        request_id="r-1",
        retry_after=None,
    )
    assert type(error) is kind
    assert "book -> " + str(status) in str(error)
    assert "r-1" in str(error)
    assert error.retryable == (status in (408, 429, 500, 503))


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
