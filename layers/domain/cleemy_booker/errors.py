"""Errors raised by the Lucca client: a small hierarchy, retryable vs permanent.

Every error names the endpoint and status, carries the problem body parsed whatever its format
(RFC 7807 problem+json, the older ``{"Status", "Message"}``, plain text or an HTML page) and the
request id when the server sent one. None of them ever holds a request header, so the API key
cannot leak through an exception message or a repr.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

#: Statuses Lucca documents as worth retrying (408 simplified, 429 later, 500 maybe, 503 yes).
RETRYABLE_STATUSES: frozenset[int] = frozenset({408, 429, 500, 502, 503, 504})
#: Statuses Lucca documents as not worth retrying.
PERMANENT_STATUSES: frozenset[int] = frozenset({400, 401, 403, 404, 413, 431})

_MAX_DETAIL_CHARS = 300
_TAG = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Problem:
    """An error body, normalised: a one-line summary plus whatever structure it had."""

    title: str
    detail: str | None = None
    errors: dict[str, Any] = field(default_factory=dict)
    format: str = "empty"

    def summary(self) -> str:
        parts = [self.title]
        if self.detail and self.detail != self.title:
            parts.append(self.detail)
        if self.errors:
            parts.append("; ".join(f"{k}: {v}" for k, v in sorted(self.errors.items())))
        return " - ".join(parts)[:_MAX_DETAIL_CHARS]


def _clip(text: str) -> str:
    return _SPACE.sub(" ", text).strip()[:_MAX_DETAIL_CHARS]


def _problem_from_json(body: Any) -> Problem | None:
    if not isinstance(body, dict):
        return None
    if "title" in body or "type" in body:  # RFC 7807
        errors = body.get("errors")
        return Problem(
            title=str(body.get("title") or body.get("type")),
            detail=_clip(str(body["detail"])) if body.get("detail") else None,
            errors=errors if isinstance(errors, dict) else {},
            format="problem+json",
        )
    if "Message" in body or "message" in body:  # older .NET endpoints
        return Problem(
            title=_clip(str(body.get("Message") or body.get("message"))), format="message-json"
        )
    return None


def parse_problem(content: bytes, content_type: str | None) -> Problem:
    """Turn any error body into a ``Problem``; never raises."""
    text = content.decode("utf-8", errors="replace")
    if not text.strip():
        return Problem(title="(empty body)")
    try:
        parsed = _problem_from_json(json.loads(text))
    except ValueError:
        parsed = None
    if parsed is not None:
        return parsed
    if "html" in (content_type or "").lower() or text.lstrip().lower().startswith("<"):
        title_match = re.search(r"<title>(.*?)</title>", text, re.IGNORECASE | re.DOTALL)
        title = title_match.group(1) if title_match else _TAG.sub(" ", text)
        return Problem(title=_clip(title) or "(HTML page)", format="html")
    return Problem(title=_clip(text), format="text")


class LuccaError(Exception):
    """Base of every error talking to Lucca."""

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        endpoint: str,
        status: int | None = None,
        problem: Problem | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.status = status
        self.problem = problem
        self.request_id = request_id
        self.retry_after = retry_after
        where = f"{endpoint} -> {status}" if status is not None else endpoint
        suffix = f" [request {request_id}]" if request_id else ""
        super().__init__(f"{where}: {message}{suffix}")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


class RetryableError(LuccaError):
    """Worth trying again later: throttling, timeouts, server trouble, lost connections."""

    retryable = True


class PermanentError(LuccaError):
    """Trying again will not help: the request or the document must change first."""


class RateLimitedError(RetryableError):
    """429: the tenant's shared budget is spent; ``retry_after`` says for how long."""


class TransportError(RetryableError):
    """No usable answer: connection refused or dropped, or our own timeout."""


class NotFoundError(PermanentError):
    """404: unknown id, or a document no longer in the inbox (booked, deleted)."""


class AuthError(PermanentError):
    """401/403: wrong key, or a key without the rights for this call."""


class InvalidResponseError(PermanentError):
    """A 2xx whose body is not what the API documents (not JSON, missing fields, wrong types)."""


class DeadlineExceededError(RetryableError):
    """The caller's deadline arrived before an answer could be had; try again later."""


def error_for_status(
    status: int,
    *,
    endpoint: str,
    problem: Problem,
    request_id: str | None,
    retry_after: float | None,
) -> LuccaError:
    """The right error class for an HTTP status (one place, so the policy is visible)."""
    message = problem.summary()
    kwargs: dict[str, Any] = {
        "endpoint": endpoint,
        "status": status,
        "problem": problem,
        "request_id": request_id,
        "retry_after": retry_after,
    }
    if status == 429:
        return RateLimitedError(message, **kwargs)
    if status == 404:
        return NotFoundError(message, **kwargs)
    if status in (401, 403):
        return AuthError(message, **kwargs)
    if status in RETRYABLE_STATUSES:
        return RetryableError(message, **kwargs)
    # 400, 413, 431 and anything unlisted (409, 422, ...): retrying the same request won't help.
    return PermanentError(message, **kwargs)
