"""The Lucca client against scripted answers (httpx mock transport): retries, errors, hooks."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from cleemy_booker.client import LuccaClient
from cleemy_booker.endpoints import validate_base_url
from cleemy_booker.errors import (
    AuthError,
    DeadlineExceededError,
    InvalidResponseError,
    NotFoundError,
    PermanentError,
    RateLimitedError,
    RetryableError,
    TransportError,
)
from cleemy_booker.models import InboxItem, to_write_shape
from cleemy_booker.retry import RetryPolicy
from tests.factories import raw_item

API_KEY = "s3cr3t-key-value"
Answer = httpx.Response | Exception


class Script:
    """Answers requests in order; records what was asked."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def __call__(self) -> float:
        return self.now


def make_client(script: Script, clock: Clock | None = None, **kwargs: Any) -> LuccaClient:
    clock = clock or Clock()
    return LuccaClient(
        "https://example.ilucca.net",
        API_KEY,
        http=httpx.Client(transport=httpx.MockTransport(script)),
        sleep=clock.sleep,
        clock=clock,
        **kwargs,
    )


def page(items: list[dict[str, Any]], count: int | None = None) -> httpx.Response:
    body: dict[str, Any] = {"items": items}
    if count is not None:
        body["count"] = count
    return httpx.Response(200, json=body)


def test_requests_carry_auth_and_accept_headers() -> None:
    script = Script(page([], count=0))
    make_client(script).count({"document.type": "Invoice"})
    request = script.requests[0]
    assert request.headers["Authorization"] == f"lucca application={API_KEY}"
    assert request.headers["Accept"] == "application/json"
    assert request.url.params["fields.root"] == "count"
    assert request.url.params["limit"] == "0"
    assert request.url.params["document.type"] == "Invoice"


def test_book_sends_no_body_and_accepts_any_2xx() -> None:
    for answer in (httpx.Response(204), httpx.Response(200, json={}), httpx.Response(200)):
        script = Script(answer)
        make_client(script).book_document(42)
        request = script.requests[0]
        assert request.method == "POST"
        assert request.url.path.endswith("/inbox-documents/42/book")
        assert request.headers["Content-Length"] == "0"
        assert request.content == b""


def test_put_sends_the_complete_write_shape() -> None:
    item = InboxItem.model_validate(raw_item())
    script = Script(httpx.Response(200, json=raw_item()))
    updated = make_client(script).update_document(501, to_write_shape(item))
    sent = script.requests[0]
    assert sent.method == "PUT"
    body = httpx.Response(200, content=sent.content).json()
    assert body["document"]["ownerId"] == 7
    assert body["document"]["supplierReference"] == "SUP-88"
    assert updated.id == 501


@pytest.mark.parametrize("status", [408, 429, 500, 503])
def test_retryable_statuses_are_retried_then_succeed(status: int) -> None:
    script = Script(httpx.Response(status, text="busy"), httpx.Response(200, json=raw_item()))
    client = make_client(script)
    assert client.get_document(501).id == 501
    assert len(script.requests) == 2
    assert client.requests_sent["get"] == 2


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413, 431])
def test_permanent_statuses_are_not_retried(status: int) -> None:
    script = Script(httpx.Response(status, json={"title": "no", "status": status}))
    with pytest.raises(PermanentError) as caught:
        make_client(script).get_document(501)
    assert len(script.requests) == 1
    assert caught.value.status == status
    assert caught.value.endpoint == "get"


def test_specific_error_classes() -> None:
    with pytest.raises(NotFoundError):
        make_client(Script(httpx.Response(404))).get_document(1)
    with pytest.raises(AuthError):
        make_client(Script(httpx.Response(401))).get_document(1)


def test_retry_after_seconds_is_honoured() -> None:
    clock = Clock()
    script = Script(httpx.Response(429, headers={"Retry-After": "7"}), page([], count=0))
    make_client(script, clock).count()
    assert clock.slept == [7.0]


def test_retry_after_http_date_is_honoured() -> None:
    clock = Clock()
    script = Script(
        httpx.Response(503, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}),
        page([], count=0),
    )
    make_client(script, clock).count()
    assert clock.slept == [0.0]  # a date in the past: retry at once


def test_gives_up_after_max_attempts_with_the_last_error() -> None:
    script = Script(
        httpx.Response(
            503,
            text="<html><title>Down</title></html>",
            headers={"content-type": "text/html", "x-request-id": "abc"},
        )
    )
    client = make_client(script, retry=RetryPolicy(max_attempts=3))
    with pytest.raises(RetryableError) as caught:
        client.get_document(9)
    assert len(script.requests) == 3
    assert caught.value.request_id == "abc"
    assert "Down" in str(caught.value)


def test_the_deadline_stops_waiting() -> None:
    clock = Clock()
    script = Script(httpx.Response(429, headers={"Retry-After": "30"}), page([], count=0))
    client = make_client(script, clock)
    with client.until(clock.now + 10), pytest.raises(DeadlineExceededError) as caught:
        client.count()
    assert clock.slept == []
    assert isinstance(caught.value.__cause__, RateLimitedError)
    assert len(script.requests) == 1


def test_connection_errors_are_retried_then_reported_as_transport_errors() -> None:
    script = Script(httpx.ConnectError("refused"))
    client = make_client(script, retry=RetryPolicy(max_attempts=2))
    with pytest.raises(TransportError) as caught:
        client.get_document(3)
    assert len(script.requests) == 2
    assert "ConnectError" in str(caught.value)


@pytest.mark.parametrize(
    ("first", "reached"),
    [
        (httpx.Response(429, headers={"Retry-After": "1"}), 1),  # the limiter ran nothing
        (httpx.ConnectError("refused"), 1),  # never sent
        (httpx.ConnectTimeout("slow"), 1),
        (httpx.Response(503, text="busy"), 2),  # may have run, for all we know
        (httpx.Response(500, text="oops"), 2),
        (httpx.Response(408, text="too slow"), 2),
        (httpx.ReadTimeout("no answer"), 2),
    ],
)
def test_only_attempts_that_may_have_reached_the_operation_count_as_applied(
    first: Answer, reached: int
) -> None:
    script = Script(first, httpx.Response(400, json={"title": "locked", "status": 400}))
    client = make_client(script)
    with pytest.raises(PermanentError):
        client.book_document(3)
    assert client.requests_sent["book"] == 2
    assert client.maybe_applied["book"] == reached


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (httpx.Response(200, text="<html>oops</html>"), "expected JSON"),
        (httpx.Response(200, json={"data": []}), "no 'items'"),
        (httpx.Response(200, json={"items": "x", "count": 1}), "no 'items'"),
        (httpx.Response(200, json={"items": []}), "no valid 'count'"),
        (httpx.Response(200, json={"items": [], "count": "3"}), "no valid 'count'"),
    ],
)
def test_bad_list_responses_are_clear_typed_errors(answer: httpx.Response, expected: str) -> None:
    with pytest.raises(InvalidResponseError, match=expected) as caught:
        make_client(Script(answer)).count()
    assert caught.value.endpoint == "list"


def test_a_get_answering_the_wrong_shape_names_the_field() -> None:
    broken = raw_item()
    broken["document"]["documentDate"] = "not a date"
    with pytest.raises(InvalidResponseError, match=r"document\.documentDate"):
        make_client(Script(httpx.Response(200, json=broken))).get_document(501)
    with pytest.raises(InvalidResponseError, match="not an inbox item"):
        make_client(Script(httpx.Response(200, json={}))).get_document(501)


class RecordingHook:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int | None, float | None]] = []

    def before_request(self, endpoint: str) -> None:
        self.calls.append(("before", endpoint, None, None))

    def after_response(self, endpoint: str, status: int | None, retry_after: float | None) -> None:
        self.calls.append(("after", endpoint, status, retry_after))


def test_every_attempt_passes_through_the_hook() -> None:
    hook = RecordingHook()
    script = Script(httpx.Response(429, headers={"Retry-After": "1"}), page([], count=0))
    make_client(script, hooks=[hook]).count()
    assert hook.calls == [
        ("before", "list", None, None),
        ("after", "list", 429, 1.0),
        ("before", "list", None, None),
        ("after", "list", 200, None),
    ]


def test_a_hook_may_refuse_a_request() -> None:
    class Refuse(RecordingHook):
        def before_request(self, endpoint: str) -> None:
            raise RuntimeError("no budget")

    script = Script(page([], count=0))
    with pytest.raises(RuntimeError, match="no budget"):
        make_client(script, hooks=[Refuse()]).count()
    assert script.requests == []


def test_the_api_key_never_shows_in_repr_or_errors() -> None:
    script = Script(httpx.Response(401, text="bad key"), httpx.ConnectError("x"))
    client = make_client(script)
    texts: list[str] = [repr(client), str(vars(client))]
    for call in (lambda: client.get_document(1), lambda: client.get_document(2)):
        try:
            call()
        except Exception as exc:
            texts += [str(exc), repr(exc)]
    assert all(API_KEY not in text for text in texts)


@pytest.mark.parametrize(
    "url",
    [
        "http://example.ilucca.net",
        "ftp://x",
        "example.ilucca.net",
        "https://u:p@x.net",
        "https://x.net/?a=1",
    ],
)
def test_insecure_or_odd_base_urls_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match="URL"):
        validate_base_url(url)


def test_loopback_may_use_http() -> None:
    assert validate_base_url("http://127.0.0.1:8900/") == "http://127.0.0.1:8900"
    assert validate_base_url("https://acme.ilucca.net") == "https://acme.ilucca.net"


def test_an_empty_key_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        LuccaClient("https://x.ilucca.net", "  ")
