"""The simulator's request handling, independent of the HTTP server.

An API request goes through the same stages as at Lucca, in this order:

1. latency (``latency_ms``), counted against the 5 s server limit;
2. authentication (401; does not consume the budget);
3. the tenant's sliding-window rate limit (429 + Retry-After; does not consume the budget);
4. the seeded fault injector (status faults answer before the operation; drop and slow on PUT and
   book happen after it in half the cases, so the client never learns it worked);
5. the operation itself, under the state lock.

Admin requests (``/_sim/...``) skip all of that: no auth, no budget, no faults, no log entry.
"""

from __future__ import annotations

import copy
import dataclasses
import hmac
import math
import random
import re
import threading
import uuid
from collections import Counter
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any

from .admin import handle_admin
from .booked import parse_booked_query
from .clock import SYSTEM_CLOCK, Clock
from .config import (
    API_ENDPOINTS,
    FIXED_SETTINGS,
    GET_ROUTE_ABSENT,
    INBOX_SETTINGS,
    ConfigError,
    SimulatorConfig,
)
from .faults import STATUS_FAULTS, Fault, FaultInjector
from .inbox import Inbox
from .listing import QueryError, parse_list_query
from .ratelimit import SlidingWindowLimiter
from .request import Request
from .responses import (
    Response,
    html_error,
    legacy_error,
    problem,
    server_timeout,
    text_error,
)

LIST_PATH = "/cleemy-procurement/services/inbox"
_DOCUMENT_PATH = re.compile(r"^/cleemy-procurement/services/inbox-documents/(\d+)(/book)?$")
#: The published read of one document (config.published_route): its document part.
_PUBLISHED_PATH = re.compile(r"^/cleemy-procurement/api/documents/(\d+)$")
#: Where booked documents show later (see ``booked``).
BOOKED_PATH = "/cleemy-procurement/api/booked-documents"
ADMIN_PREFIX = "/_sim"

__all__ = ["ADMIN_PREFIX", "LIST_PATH", "Request", "Route", "SimulatorApp", "route_api"]


@dataclass(frozen=True)
class Route:
    endpoint: str  # list | get | put | book | booked | other
    #: The inbox item the request is about (for the published read, once resolved: see
    #: ``SimulatorApp.resolve_route``; else the id in its URL).
    document_id: int | None
    #: Why an "other" request fails: 404 (no such path) or 405 (wrong method).
    error_status: int | None = None
    #: The id in the URL of the published read (a "get" of ``/cleemy-procurement/api/
    #: documents/{id}``); None for every other route, the inferred GET included.
    published_id: int | None = None


def route_api(method: str, path: str) -> Route:
    """The route a request takes, from its method and path alone (the published read's id is
    not yet resolved to the item it names: ``SimulatorApp.resolve_route``)."""
    published = _PUBLISHED_PATH.match(path)
    if published is not None:
        url_id = int(published.group(1))
        if method != "GET":
            return Route("other", url_id, 405)
        return Route("get", url_id, published_id=url_id)
    if path == LIST_PATH:
        return Route("list", None) if method == "GET" else Route("other", None, 405)
    if path == BOOKED_PATH:
        return Route("booked", None) if method == "GET" else Route("other", None, 405)
    match = _DOCUMENT_PATH.match(path)
    if match is None:
        return Route("other", None, 404)
    doc_id = int(match.group(1))
    if match.group(2):
        return Route("book", doc_id) if method == "POST" else Route("other", doc_id, 405)
    endpoint = {"GET": "get", "PUT": "put"}.get(method)
    return Route(endpoint, doc_id) if endpoint else Route("other", doc_id, 405)


class SimulatorApp:
    def __init__(self, config: SimulatorConfig, clock: Clock = SYSTEM_CLOCK) -> None:
        #: Every wait and timestamp goes through here, so a simulation can run it on virtual time.
        self.clock = clock
        self._lock = threading.RLock()
        # Bumped on reset so a request in flight across a reset does not log into the new run.
        self._generation = 0
        self._install(config)

    def _install(self, config: SimulatorConfig) -> None:
        """(Re)build all state from a config: the seeded inbox, limiter, injector and logs."""
        self.config = config
        self.inbox = Inbox(config, self.clock)
        self.limiter = SlidingWindowLimiter(
            config.rate_limit,
            config.window_seconds,
            config.external_requests_per_window,
            self.clock.monotonic(),
        )
        self.faults = FaultInjector(config.seed)
        self._request_ids = random.Random(f"{config.seed}:request-ids")
        self._log: list[dict[str, Any]] = []
        self._generation += 1

    # --- entry point -------------------------------------------------------------------------

    def handle(self, request: Request) -> Response | None:
        """The response to send, or None to close the connection without answering."""
        request_id = self._next_request_id()
        if request.path == ADMIN_PREFIX or request.path.startswith(ADMIN_PREFIX + "/"):
            response: Response | None = handle_admin(self, request)
        else:
            response = self._handle_api(request, request_id)
        if response is not None:
            response.headers["X-Request-Id"] = request_id
        return response

    def _next_request_id(self) -> str:
        with self._lock:
            return str(uuid.UUID(int=self._request_ids.getrandbits(128), version=4))

    # --- the API pipeline --------------------------------------------------------------------

    def resolve_route(self, method: str, path: str) -> Route:
        """``route_api``, with the published read attributed to the item its id names under
        the tenant's key (so logs, scripted faults and tests see one document, whichever of
        the two GETs read it); an id that names none stays as it is."""
        route = route_api(method, path)
        if route.published_id is None:
            return route
        with self._lock:
            record = self.inbox.named_by(route.published_id, self.config.published_key)
        if record is None:
            return route
        return dataclasses.replace(route, document_id=record.item["id"])

    def _handle_api(self, request: Request, request_id: str) -> Response | None:
        route = self.resolve_route(request.method, request.path)
        generation = self._generation
        entry: dict[str, Any] = {
            "t": self.clock.time(),
            "method": request.method,
            "path": request.path,
            "query": request.query,
            "endpoint": route.endpoint,
            "documentId": route.document_id,
            "status": None,
            "fault": None,
            "faultAfterOperation": False,
            "requestId": request_id,
        }
        response = self._api_pipeline(request, route, entry)
        entry["status"] = response.status if response is not None else None
        with self._lock:
            if generation == self._generation:
                self._log.append(entry)
        return response

    def _api_pipeline(
        self, request: Request, route: Route, entry: dict[str, Any]
    ) -> Response | None:
        config = self.config
        latency = config.latency_ms / 1000
        if latency >= config.server_timeout_seconds:
            self.clock.sleep(config.server_timeout_seconds)
            return server_timeout()
        if latency:
            self.clock.sleep(latency)
        if not _authorized(request, config.api_key):
            return problem(
                401, "Missing or invalid API key: send 'Authorization: lucca application={key}'."
            )
        fault, refusal = self._admit(request, route, config)
        if refusal is not None:
            return refusal
        if request.body_too_large:
            return text_error(413)
        if route.error_status == 404:
            return legacy_error(404, f"No HTTP resource was found that matches '{request.path}'.")
        if route.error_status == 405:
            return legacy_error(405, f"The requested resource does not support {request.method}.")
        if route.endpoint == "get" and _route_absent(route, config):
            # The route does not exist (config.get_route, config.published_route): the answer
            # does not depend on the id, and no fault can make it succeed.
            status = (
                config.absent_get_status
                if route.published_id is None
                else config.absent_published_status
            )
            return _missing_get(request.path, status)
        if fault is None:
            return self._operate(request, route, config)
        entry["fault"] = fault.kind
        entry["faultAfterOperation"] = fault.after_operation
        return self._faulted(request, route, config, fault, latency, entry)

    def _admit(
        self, request: Request, route: Route, config: SimulatorConfig
    ) -> tuple[Fault | None, Response | None]:
        """Rate limit, then fault decision, atomically: returns (fault, refusal)."""
        with self._lock:
            if route.endpoint == "book" and route.document_id is not None:
                self.inbox.count_book_attempt(route.document_id)
            wait = self.limiter.retry_after(self.clock.monotonic())
            if wait is not None:
                return None, self._rate_limited(wait, config)
            fault = None
            if route.endpoint in API_ENDPOINTS and not request.body_too_large:
                fault = self.faults.decide(
                    route.endpoint,
                    config.fault_rate,
                    config.fault_kinds,
                    config.fault_endpoints,
                    route.document_id,
                )
            # An injected 429 plays a refusal we did not see coming: it consumes nothing.
            if fault is None or fault.kind != "429":
                self.limiter.record(self.clock.monotonic())
            return fault, None

    def _rate_limited(self, wait: float, config: SimulatorConfig) -> Response:
        response = problem(
            429,
            f"Rate limit exceeded: {config.rate_limit} requests per "
            f"{config.window_seconds:g} s for this tenant.",
        )
        response.headers["Retry-After"] = retry_after_value(
            wait, config.retry_after_format, self.clock.time()
        )
        return response

    def _faulted(
        self,
        request: Request,
        route: Route,
        config: SimulatorConfig,
        fault: Fault,
        latency: float,
        entry: dict[str, Any],
    ) -> Response | None:
        if fault.kind in STATUS_FAULTS:
            return _status_fault(fault, config, self.clock.time())
        if fault.kind == "drop":
            if fault.after_operation:
                self._operate(request, route, config)
            return None
        # slow: under the server limit it is merely slow; over it, Lucca aborts with a 408.
        remaining = config.server_timeout_seconds - latency
        if config.slow_seconds < remaining:
            self.clock.sleep(config.slow_seconds)
            entry["faultAfterOperation"] = False  # the client gets the real answer
            return self._operate(request, route, config)
        if fault.after_operation:
            self._operate(request, route, config)
        self.clock.sleep(max(remaining, 0.0))
        return server_timeout()

    def _operate(self, request: Request, route: Route, config: SimulatorConfig) -> Response:
        with self._lock:
            if route.endpoint == "list":
                try:
                    query = parse_list_query(
                        request.params, config.default_page_size, config.max_page_size
                    )
                except QueryError as exc:
                    errors = {exc.parameter: [exc.message]}
                    return problem(400, exc.message, title="Invalid query", errors=errors)
                return self.inbox.list_items(query, config.listing_order, config.new_documents)
            if route.endpoint == "booked":
                return self._list_booked(request, config)
            doc_id = route.document_id or 0  # always set for get/put/book (see route_api)
            if route.endpoint == "get" and route.published_id is not None:
                return self.inbox.get_published(route.published_id, config.published_key)
            if route.endpoint == "get":
                return self.inbox.get(doc_id)
            if route.endpoint == "put":
                content_type = request.headers.get("content-type")
                return self.inbox.put(doc_id, request.body, content_type, config.write_shape)
            return self.inbox.book(
                doc_id, request.body, config.book_success_status, config.second_book
            )

    def _list_booked(self, request: Request, config: SimulatorConfig) -> Response:
        try:
            query = parse_booked_query(
                request.params, config.default_page_size, config.max_page_size
            )
        except QueryError as exc:
            errors = {exc.parameter: [exc.message]}
            return problem(400, exc.message, title="Invalid query", errors=errors)
        return self.inbox.list_booked(query)

    # --- ground truth and control (used by the admin endpoints and the Python API) -----------

    def state(self) -> dict[str, Any]:
        with self._lock:
            log = list(self._log)
            totals = {
                **self.inbox.summary(),
                "requests": len(log),
                "byStatus": dict(Counter(_status_key(entry["status"]) for entry in log)),
                "byEndpoint": _count_endpoints(log),
                "faultsInjected": dict(Counter(e["fault"] for e in log if e["fault"])),
                "rateLimited": sum(e["status"] == 429 and e["fault"] is None for e in log),
                "externalRequests": self.limiter.external_total,
                "inWindow": self.limiter.in_window(self.clock.monotonic()),
            }
            return {
                "config": self.config.to_dict(),
                "totals": totals,
                "documents": self.inbox.documents(),
            }

    def requests(self) -> list[dict[str, Any]]:
        with self._lock:
            # Entries are logged when answered; show them in arrival order.
            return sorted((dict(entry) for entry in self._log), key=lambda e: e["t"])

    def reset(self, overrides: dict[str, Any]) -> SimulatorConfig:
        fixed = sorted(
            name
            for name in FIXED_SETTINGS & overrides.keys()
            if overrides[name] != getattr(self.config, name)
        )
        if fixed:
            raise ConfigError(f"cannot change {', '.join(fixed)} on a running simulator")
        with self._lock:
            self._install(self.config.updated(overrides))
            return self.config

    def configure(self, changes: dict[str, Any]) -> SimulatorConfig:
        refused = sorted((INBOX_SETTINGS | FIXED_SETTINGS) & changes.keys())
        if refused:
            raise ConfigError(
                f"{', '.join(refused)} shape the inbox or the server: use reset instead"
            )
        with self._lock:
            config = self.config.updated(changes)
            if _limiter_settings(config) != _limiter_settings(self.config):
                self.limiter.reconfigure(*_limiter_settings(config), self.clock.monotonic())
            self.config = config
            return config

    def script_faults(self, endpoint: str, doc_id: int, faults: list[Fault | None]) -> None:
        """Place faults on the next requests to ``endpoint`` about ``doc_id`` (tests: a fault
        at an exact point, e.g. a book applied whose answer is lost, then its retry)."""
        if endpoint not in API_ENDPOINTS:
            raise ConfigError(f"no endpoint {endpoint!r}")
        with self._lock:
            self.faults.scripted.setdefault((endpoint, doc_id), []).extend(faults)

    def document_detail(self, doc_id: int) -> dict[str, Any] | None:
        with self._lock:
            detail = self.inbox.detail(doc_id)
            return _deep_copy_json(detail) if detail is not None else None

    def add_items(self, items: list[Any], category: str) -> list[int]:
        with self._lock:
            return self.inbox.add_items(items, category)

    def add_generated(self, count: int) -> list[int]:
        with self._lock:
            return self.inbox.add_generated(count)

    def touch(
        self, doc_id: int, patch: dict[str, Any], category: str | None
    ) -> dict[str, Any] | None:
        with self._lock:
            if doc_id not in self.inbox.records:
                return None
            return _deep_copy_json(self.inbox.touch(doc_id, patch, category))

    def person_moves(self, doc_id: int, move: str) -> bool | None:
        """A person ``delete``s the document or ``book``s it by hand in Lucca: True if it
        left the inbox, False if it had already, None if there is no such document."""
        with self._lock:
            if doc_id not in self.inbox.records:
                return None
            if move == "delete":
                return self.inbox.delete_by_person(doc_id)
            return self.inbox.book_by_person(doc_id)


def _authorized(request: Request, api_key: str) -> bool:
    header = request.headers.get("authorization", "")
    scheme, _, credential = header.partition(" ")
    name, _, key = credential.partition("=")
    if scheme.lower() != "lucca" or name.strip().lower() != "application":
        return False
    return hmac.compare_digest(key.strip().encode(), api_key.encode())


def _route_absent(route: Route, config: SimulatorConfig) -> bool:
    """Whether the tenant does not serve this GET (the published one or the inferred one)."""
    if route.published_id is not None:
        return config.published_route == GET_ROUTE_ABSENT
    return config.get_route == GET_ROUTE_ABSENT


def _missing_get(path: str, status: int) -> Response:
    """What ASP.NET answers a GET on a path that only has a PUT: 405 with ``Allow``, or, from a
    router that matches on method and path, the 404 of an unknown route."""
    if status == 405:
        response = legacy_error(405, "The requested resource does not support http method 'GET'.")
        response.headers["Allow"] = "PUT"
        return response
    return legacy_error(404, f"No HTTP resource was found that matches the request URI '{path}'.")


def retry_after_value(seconds: float, style: str, now: float) -> str:
    """Whole seconds, rounded up and at least 1; or the same instant as an HTTP date."""
    whole = max(1, math.ceil(seconds))
    if style == "http-date":
        return formatdate(math.ceil(now) + whole, usegmt=True)
    return str(whole)


def _status_fault(fault: Fault, config: SimulatorConfig, now: float) -> Response:
    if fault.kind == "408":
        return server_timeout()
    if fault.kind == "429":
        response = text_error(429, "Too Many Requests")
        value = retry_after_value(config.fault_retry_after_seconds, config.retry_after_format, now)
        response.headers["Retry-After"] = value
        return response
    if fault.kind == "500":
        if fault.variant < 0.5:
            return legacy_error(500, "An error has occurred.")
        return text_error(500, "Internal Server Error")
    return html_error(int(fault.kind))


def _status_key(status: int | None) -> str:
    return "dropped" if status is None else str(status)


def _count_endpoints(log: list[dict[str, Any]]) -> dict[str, int]:
    counts = dict.fromkeys((*API_ENDPOINTS, "other"), 0)
    for entry in log:
        counts[entry["endpoint"]] += 1
    return counts


def _limiter_settings(config: SimulatorConfig) -> tuple[int, float, int]:
    return config.rate_limit, config.window_seconds, config.external_requests_per_window


def _deep_copy_json(value: dict[str, Any]) -> dict[str, Any]:
    return copy.deepcopy(value)
