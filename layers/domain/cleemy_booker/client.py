"""The one client through which everything talks to Lucca's Cleemy Procurement inbox API."""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx
from pydantic import BaseModel, ValidationError

from .endpoints import (
    BOOK_PATH,
    BOOKED_DOCUMENTS_PATH,
    DOCUMENT_PATH,
    INBOX_PATH,
    MAX_PAGE_SIZE,
    PUBLISHED_DOCUMENT_PATH,
    validate_base_url,
)
from .errors import (
    DeadlineExceededError,
    InvalidResponseError,
    LuccaError,
    RetryableError,
    TransportError,
    error_for_status,
    parse_problem,
)
from .models import BookedPage, Document, InboxDocumentWrite, InboxItem
from .reading import DocumentReads
from .retry import RetryPolicy, parse_retry_after
from .validation import summary

#: Lucca aborts a request after 5 s (408); we give up a little earlier so the retry is ours.
DEFAULT_TIMEOUT = httpx.Timeout(4.5, connect=2.0)
#: Lucca's limiter answers 429 before the operation runs: such an attempt did nothing.
RATE_LIMITED = 429
#: Transport failures before a request could be sent: nothing reached Lucca.
NEVER_CONNECTED = (httpx.ConnectError, httpx.ConnectTimeout)


class RequestHook(Protocol):
    """Every request passes through here: the tenant request budget plugs in at this point."""

    def before_request(self, endpoint: str) -> None:
        """Called before each attempt; may wait, or raise to refuse the request."""

    def after_response(self, endpoint: str, status: int | None, retry_after: float | None) -> None:
        """Called after each attempt with its status (None when no answer came)."""


class _ApiKeyAuth(httpx.Auth):
    """Adds Lucca's header; holds the key where no repr, log or exception can show it.

    The key may be a callable, asked on every request, so a rotated key (cached by the caller
    for a few minutes) is picked up by a warm function without a restart.
    """

    def __init__(self, api_key: str | Callable[[], str]) -> None:
        self.__key = api_key

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        key = self.__key() if callable(self.__key) else self.__key
        request.headers["Authorization"] = f"lucca application={key}"
        yield request

    def __repr__(self) -> str:
        return "_ApiKeyAuth(***)"


@dataclass(frozen=True)
class Response:
    """What a successful call returned, with the ids that tie it to Lucca's logs."""

    status: int
    body: Any
    request_id: str | None


class LuccaClient:
    """Count, list, read, update and book inbox documents, with retries and a request hook.

    Reading one document goes through ``read_document``: which of Lucca's two GETs answers is
    decided once for the life of the client and kept in ``reads`` (see ``reading``).

    ``deadline`` (a ``time.monotonic()`` instant, set with ``until``) bounds every retry loop:
    no wait is started that would end after it.
    """

    def __init__(
        self,
        base_url: str,
        api_key: str | Callable[[], str],
        *,
        http: httpx.Client | None = None,
        retry: RetryPolicy | None = None,
        hooks: Sequence[RequestHook] = (),
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        if isinstance(api_key, str):
            if not api_key.strip():
                raise ValueError("Lucca API key is empty")
            api_key = api_key.strip()
        self.base_url = validate_base_url(base_url)
        self._http = http or httpx.Client(timeout=timeout, transport=httpx.HTTPTransport(retries=1))
        self._auth = _ApiKeyAuth(api_key)
        self.retry = retry or RetryPolicy()
        self.hooks = list(hooks)
        self._sleep = sleep
        self._clock = clock
        self._wall_clock = wall_clock
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not security
        self.deadline: float | None = None
        #: Requests sent per endpoint (every attempt counts: that is what the budget sees).
        self.requests_sent: Counter[str] = Counter()
        #: Attempts per endpoint that may have reached the operation: every one sent, but for
        #: those answered 429 (Lucca's limiter refuses before anything runs) and those that
        #: never connected. A refusal proves nothing was done only if no other attempt of the
        #: same call is counted here.
        self.maybe_applied: Counter[str] = Counter()
        self.request_ids: list[str] = []
        #: Which route reads one document, learnt from the first reads and then kept.
        self.reads = DocumentReads(self)

    def __repr__(self) -> str:
        return f"LuccaClient(base_url={self.base_url!r})"

    def close(self) -> None:
        self._http.close()

    def time_left(self) -> float | None:
        """Seconds to the deadline of the current ``until`` block (None outside one)."""
        return None if self.deadline is None else self.deadline - self._clock()

    @contextmanager
    def until(self, deadline: float | None) -> Iterator[None]:
        """Bound every retry inside the block by ``deadline`` (monotonic seconds)."""
        previous, self.deadline = self.deadline, deadline
        try:
            yield
        finally:
            self.deadline = previous

    @contextmanager
    def back_to_back(self, requests: int) -> Iterator[None]:
        """The next ``requests`` requests go out one right after the other, for hooks that pace
        them (the request budget's ``back_to_back``); others are unaffected."""
        with ExitStack() as stack:
            for hook in self.hooks:
                together = getattr(hook, "back_to_back", None)
                if together is not None:
                    stack.enter_context(together(requests))
            yield

    # --- endpoints ---------------------------------------------------------------------------

    def list_page(
        self,
        *,
        page: int,
        limit: int,
        filters: Mapping[str, str] | None = None,
        with_count: bool = False,
    ) -> dict[str, Any]:
        """One page of the inbox, raw; ``with_count`` lets the total ride on this request."""
        if not 0 <= limit <= MAX_PAGE_SIZE:
            raise ValueError(f"limit must be between 0 and {MAX_PAGE_SIZE}, got {limit}")
        params: dict[str, str | int] = dict(filters or {})
        params.update({"limit": limit, "page": page})
        if with_count:
            params["fields.root"] = "count"
        body = self._call("list", "GET", INBOX_PATH, params=params).body
        return _require_list_shape(body, with_count=with_count)

    def count(self, filters: Mapping[str, str] | None = None) -> int:
        """The number of inbox documents matching ``filters`` (``limit=0``: no items)."""
        page = self.list_page(page=1, limit=0, filters=filters, with_count=True)
        return int(page["count"])

    def booked_page(
        self,
        *,
        page: int,
        limit: int,
        created_from: str,
        with_count: bool = False,
    ) -> BookedPage:
        """One page of Lucca's booked documents created on or after ``created_from`` (the
        ``createdAt.from`` filter, as sent); ``with_count`` adds the total, ``limit=0`` asks for
        the count alone (Lucca's guide counts this endpoint so)."""
        if not 0 <= limit <= MAX_PAGE_SIZE:
            raise ValueError(f"limit must be between 0 and {MAX_PAGE_SIZE}, got {limit}")
        params: dict[str, str | int] = {
            "createdAt.from": created_from,
            "limit": limit,
            "page": page,
        }
        if with_count:
            params["fields.root"] = "count"
        response = self._call("booked", "GET", BOOKED_DOCUMENTS_PATH, params=params)
        parsed = _parse_answer(
            BookedPage, response, endpoint="booked", what="a page of booked documents"
        )
        if with_count and (parsed.count is None or parsed.count < 0):
            raise InvalidResponseError(
                f"booked documents answer has no valid 'count' (got {parsed.count!r})",
                endpoint="booked",
                status=response.status,
                request_id=response.request_id,
            )
        return parsed

    def count_booked(self, created_from: str) -> int:
        """How many booked documents were created on or after ``created_from`` (no items)."""
        page = self.booked_page(page=1, limit=0, created_from=created_from, with_count=True)
        return page.count or 0

    def read_document(
        self, document_id: int, listed: InboxItem | None = None, *, just_listed: bool = False
    ) -> InboxItem:
        """The document as Lucca holds it now: by the published read, with ``listed``'s top
        level (the item as listed), or by the inferred one (see ``reading``). Every read of one
        document goes through here. ``just_listed``: the listing showed it moments ago and no
        booking call of ours went out since (a 404 would be a surprise)."""
        return self.reads.read(document_id, listed, just_listed=just_listed)

    def get_document(self, document_id: int) -> InboxItem:
        """One inbox item. Inference: the PUT/book path also answers GET (not in the reference).
        Used by ``read_document`` when the published read is refused or cannot be used."""
        response = self._call("get", "GET", DOCUMENT_PATH.format(id=document_id))
        return _parse_answer(InboxItem, response, endpoint="get", what="an inbox item")

    def get_published_document(self, document_id: int) -> Document:
        """One inbox item's ``document`` part, by Lucca's published read (``id``: whichever of
        the item's ids the route takes; ``read_document`` works that out)."""
        response = self._call("get", "GET", PUBLISHED_DOCUMENT_PATH.format(id=document_id))
        return _parse_answer(Document, response, endpoint="get", what="a document")

    def update_document(self, document_id: int, body: InboxDocumentWrite) -> InboxItem:
        """PUT the complete write shape; Lucca answers with the whole updated item."""
        response = self._call(
            "put", "PUT", DOCUMENT_PATH.format(id=document_id), json_body=body.to_json()
        )
        return _parse_answer(InboxItem, response, endpoint="put", what="an inbox item")

    def book_document(self, document_id: int) -> Response:
        """Book: no body, ``Content-Length: 0``. Any 2xx is success (code and body unknown)."""
        return self._call(
            "book",
            "POST",
            BOOK_PATH.format(id=document_id),
            content=b"",
            headers={"Content-Length": "0"},
        )

    def get_json(
        self, endpoint: str, path: str, params: Mapping[str, str | int] | None = None
    ) -> Any:
        """One GET as it came back, through the hooks (the budget), the retries and the error
        mapping, but no shape check: for a diagnosis (``cleemy-booker doctor``) that wants to
        say what is wrong with an answer rather than fail on it."""
        return self._call(endpoint, "GET", path, params=params).body

    # --- the request loop --------------------------------------------------------------------

    def _call(
        self,
        endpoint: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        json_body: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        attempt = 0
        while True:
            attempt += 1
            try:
                return self._attempt(endpoint, method, path, params, json_body, content, headers)
            except RetryableError as error:
                self._wait_or_raise(error, attempt)

    def _wait_or_raise(self, error: RetryableError, attempt: int) -> None:
        if attempt >= self.retry.max_attempts:
            raise error
        delay = self.retry.delay(attempt, error.retry_after, self._rng)
        if self.deadline is not None and self._clock() + delay >= self.deadline:
            raise DeadlineExceededError(
                f"no time left to retry after: {error}",
                endpoint=error.endpoint,
                status=error.status,
                problem=error.problem,
                request_id=error.request_id,
                retry_after=error.retry_after,
            ) from error
        self._sleep(delay)

    def _attempt(
        self,
        endpoint: str,
        method: str,
        path: str,
        params: Mapping[str, str | int] | None,
        json_body: Any,
        content: bytes | None,
        headers: Mapping[str, str] | None,
    ) -> Response:
        for hook in self.hooks:
            hook.before_request(endpoint)
        self.requests_sent[endpoint] += 1
        request_headers = {"Accept": "application/json", **(headers or {})}
        try:
            response = self._http.request(
                method,
                self.base_url + path,
                params=params,
                json=json_body,
                content=content,
                headers=request_headers,
                auth=self._auth,
            )
        except httpx.TransportError as exc:
            if not isinstance(exc, NEVER_CONNECTED):
                self.maybe_applied[endpoint] += 1
            self._notify(endpoint, None, None)
            raise TransportError(f"no answer ({type(exc).__name__})", endpoint=endpoint) from None
        request_id = response.headers.get("x-request-id") or response.headers.get(
            "x-correlation-id"
        )
        if request_id:
            self.request_ids.append(request_id)
        if response.status_code != RATE_LIMITED:
            self.maybe_applied[endpoint] += 1
        retry_after = parse_retry_after(response.headers.get("retry-after"), now=self._now)
        self._notify(endpoint, response.status_code, retry_after)
        if response.is_success:
            return Response(response.status_code, _decode_json(response, endpoint), request_id)
        problem = parse_problem(response.content, response.headers.get("content-type"))
        raise error_for_status(
            response.status_code,
            endpoint=endpoint,
            problem=problem,
            request_id=request_id,
            retry_after=retry_after,
        )

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._wall_clock(), UTC)

    def _notify(self, endpoint: str, status: int | None, retry_after: float | None) -> None:
        for hook in self.hooks:
            hook.after_response(endpoint, status, retry_after)


# --- response validation ----------------------------------------------------------------------


def _decode_json(response: httpx.Response, endpoint: str) -> Any:
    """A 2xx body as JSON; an empty body is ``None`` (book may answer with no content)."""
    if not response.content.strip():
        return None
    try:
        return json.loads(response.content)
    except ValueError:
        if endpoint == "book":  # its success body is not published: any 2xx is success
            return None
        snippet = parse_problem(response.content, response.headers.get("content-type")).title
        raise InvalidResponseError(
            f"expected JSON, got {snippet[:80]!r}",
            endpoint=endpoint,
            status=response.status_code,
            request_id=response.headers.get("x-request-id"),
        ) from None


def _require_list_shape(body: Any, *, with_count: bool) -> dict[str, Any]:
    if not isinstance(body, dict) or not isinstance(body.get("items"), list):
        raise InvalidResponseError(
            "list response has no 'items' array", endpoint="list", status=200
        )
    count = body.get("count")
    if with_count and (not isinstance(count, int) or isinstance(count, bool) or count < 0):
        raise InvalidResponseError(
            f"list response has no valid 'count' (got {count!r})", endpoint="list", status=200
        )
    return body


def _parse_answer[Answer: BaseModel](
    model: type[Answer], response: Response, *, endpoint: str, what: str
) -> Answer:
    """The answer's body as ``model``, or an ``InvalidResponseError`` saying it is not ``what``."""
    try:
        return model.model_validate(response.body)
    except ValidationError as exc:
        raise InvalidResponseError(
            f"not {what}: {summary(exc, root='(root)', verbatim=True)}",
            endpoint=endpoint,
            status=response.status,
            request_id=response.request_id,
        ) from None


__all__ = [
    "LuccaClient",
    "LuccaError",
    "RequestHook",
    "Response",
]
