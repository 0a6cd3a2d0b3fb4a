"""Responses, and errors in each format a Lucca client meets.

Which format answers which error is fixed here, in one place:

- RFC 7807 ``application/problem+json`` (newer Lucca APIs): validation and filter errors, 401,
  404 of a document, book preconditions, the rate limiter's 429.
- The older .NET ``{"Status": ..., "Message": ...}``: unknown routes (404), wrong methods (405),
  and half of the injected 500s.
- ``text/plain``: 408 (server time limit or injected), 413, the injected 429 (a gateway's
  answer), the other half of the injected 500s.
- An HTML page, like a reverse proxy's: injected 502 and 503.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

JSON = "application/json; charset=utf-8"
PROBLEM_JSON = "application/problem+json; charset=utf-8"
TEXT = "text/plain; charset=utf-8"
HTML = "text/html; charset=utf-8"

# The "type" URIs ASP.NET Core puts in its problem details.
_PROBLEM_TYPES = {
    400: "https://tools.ietf.org/html/rfc9110#section-15.5.1",
    401: "https://tools.ietf.org/html/rfc9110#section-15.5.2",
    404: "https://tools.ietf.org/html/rfc9110#section-15.5.5",
    405: "https://tools.ietf.org/html/rfc9110#section-15.5.6",
    409: "https://tools.ietf.org/html/rfc9110#section-15.5.10",
    429: "https://tools.ietf.org/html/rfc6585#section-4",
}


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


def dump_json(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def json_response(status: int, payload: Any) -> Response:
    return Response(status, dump_json(payload), JSON)


def empty_response(status: int) -> Response:
    return Response(status)


def problem(
    status: int,
    detail: str,
    *,
    title: str | None = None,
    errors: dict[str, list[str]] | None = None,
) -> Response:
    """An RFC 7807 problem; ``errors`` maps a field or parameter to its messages."""
    payload: dict[str, Any] = {
        "type": _PROBLEM_TYPES.get(status, "about:blank"),
        "title": title or HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if errors:
        payload["errors"] = errors
    return Response(status, dump_json(payload), PROBLEM_JSON)


def validation_problem(errors: dict[str, list[str]]) -> Response:
    names = ", ".join(errors)
    return problem(
        400,
        f"Invalid or unexpected field(s): {names}.",
        title="One or more validation errors occurred.",
        errors=errors,
    )


def legacy_error(status: int, message: str) -> Response:
    """The older .NET error body: ``{"Status": 404, "Message": "..."}``."""
    return json_response(status, {"Status": status, "Message": message})


def text_error(status: int, message: str | None = None) -> Response:
    return Response(status, (message or HTTPStatus(status).phrase).encode("utf-8"), TEXT)


def html_error(status: int) -> Response:
    """What a reverse proxy in front of the API answers when the upstream is unavailable."""
    phrase = HTTPStatus(status).phrase
    page = (
        f"<html>\r\n<head><title>{status} {phrase}</title></head>\r\n<body>\r\n"
        f"<center><h1>{status} {phrase}</h1></center>\r\n<hr><center>nginx</center>\r\n"
        "</body>\r\n</html>\r\n"
    )
    return Response(status, page.encode("utf-8"), HTML)


def server_timeout() -> Response:
    """Lucca aborts a request running over 5 s."""
    return text_error(408, "The request took too long and was aborted by the server (5 s limit).")
