"""Lucca in the same process: httpx requests go straight to the simulator's request handling.

The simulator's HTTP server is bypassed (it would block on real sockets and real time); its
``SimulatorApp`` answers every request as it does behind the server, on the virtual clock.
Time passes for the network and Lucca's own work by ``LatencyModel``: assumed figures for a
Lucca tenant seen from AWS in Paris, written here because they are an assumption.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs

import httpx

from local.lucca_simulator.app import Request, SimulatorApp
from sim.clock import Simulation


@dataclass(frozen=True)
class LatencyModel:
    """Seconds from sending a request to its last byte back, by endpoint (assumed)."""

    list_base: float = 0.25
    list_per_item: float = 0.0006  # a 1,000-item page (~2.5 MB) takes ~0.85 s
    get: float = 0.12
    put: float = 0.25
    book: float = 0.2
    other: float = 0.1

    def of(self, endpoint: str, limit: int) -> float:
        if endpoint in ("list", "booked"):  # a booked document is about an inbox item's size
            return self.list_base + self.list_per_item * limit
        return float(getattr(self, endpoint, self.other))


@dataclass
class VersionLog:
    """Which version of each document the pipeline read, when, and which one Lucca booked.

    A version is the simulator's ``modified_ticks`` (``modifiedAt`` in 100 ns ticks), read off
    the record as the answer is made: the simulation is single-threaded, so it is exactly
    what the answer carried."""

    #: document id -> [(when, version)] of each list, GET and PUT answer that carried it.
    reads: dict[int, list[tuple[float, int]]] = field(default_factory=dict)
    #: document id -> (when, version) at each book call Lucca accepted.
    books: dict[int, list[tuple[float, int]]] = field(default_factory=dict)
    #: document id -> when each GET was answered, and when each PUT was applied.
    gets: dict[int, list[float]] = field(default_factory=dict)
    puts: dict[int, list[float]] = field(default_factory=dict)

    def read(self, doc_id: int, at: float, version: int) -> None:
        self.reads.setdefault(doc_id, []).append((at, version))

    def booked(self, doc_id: int, at: float, version: int) -> None:
        self.books.setdefault(doc_id, []).append((at, version))


class SimulatedLucca(httpx.BaseTransport):
    """An httpx transport whose far end is ``SimulatorApp`` on virtual time."""

    def __init__(
        self,
        app: SimulatorApp,
        sim: Simulation,
        latency: LatencyModel,
        crash: Callable[[str], None] | None = None,
    ) -> None:
        self.app = app
        self.sim = sim
        self.latency = latency
        #: Called before and after each PUT and book: a point where the sandbox may die.
        self._crash = crash or (lambda where: None)
        self.versions = VersionLog()
        #: Called with each document id a list answer carries (a scenario's person reacts).
        self.on_listed: Callable[[int], None] | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        query = request.url.query.decode()
        params = parse_qs(query, keep_blank_values=True)
        limit = int(params.get("limit", ["0"])[0] or 0) if "limit" in params else 0
        route = self.app.resolve_route(request.method, request.url.path)
        endpoint = route.endpoint
        mutating = endpoint in ("put", "book")
        if mutating:
            self._crash(f"before the {endpoint}")
        started = self.sim.now
        self.sim.sleep(self.latency.of(endpoint, limit))
        booked_version = self._version(route.document_id) if endpoint == "book" else None
        answer = self.app.handle(
            Request(
                method=request.method,
                path=request.url.path,
                query=query,
                params=params,
                headers={name.lower(): value for name, value in request.headers.items()},
                body=request.read(),
            )
        )
        timeout = (request.extensions.get("timeout") or {}).get("read")
        if timeout is not None and self.sim.now - started > timeout:
            raise httpx.ReadTimeout("timed out waiting for Lucca", request=request)
        if answer is None:
            raise httpx.RemoteProtocolError("Lucca closed the connection", request=request)
        if 200 <= answer.status < 300:
            self._record_versions(endpoint, route.document_id, answer.body, booked_version)
        if mutating and 200 <= answer.status < 300:
            self._crash(f"after the {endpoint}, before its answer was recorded")
        headers = dict(answer.headers)
        if answer.content_type:
            headers["Content-Type"] = answer.content_type
        return httpx.Response(answer.status, headers=headers, content=answer.body, request=request)

    def _version(self, doc_id: int | None) -> int:
        record = self.app.inbox.records.get(doc_id) if doc_id is not None else None
        return record.modified_ticks if record is not None else -1

    def _record_versions(
        self, endpoint: str, doc_id: int | None, body: bytes, booked_version: int | None
    ) -> None:
        now = self.sim.now
        if endpoint == "list":
            for item in json.loads(body).get("items", []):
                self.versions.read(int(item["id"]), now, self._version(int(item["id"])))
                if self.on_listed is not None:
                    self.on_listed(int(item["id"]))
        elif endpoint in ("get", "put") and doc_id is not None:
            self.versions.read(doc_id, now, self._version(doc_id))
            kept = self.versions.gets if endpoint == "get" else self.versions.puts
            kept.setdefault(doc_id, []).append(now)
        elif endpoint == "book" and doc_id is not None and booked_version is not None:
            self.versions.booked(doc_id, now, booked_version)
