"""Lucca's error bodies in every format (problem+json, the old .NET message, HTML, plain text)
and the error class each status maps to."""

from __future__ import annotations

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
