"""Lucca in the same process: httpx requests go straight to the simulator's request handling.

The simulator's HTTP server is bypassed (it would block on real sockets and real time); its
``SimulatorApp`` answers every request as it does behind the server, on the virtual clock.
Time passes for the network and Lucca's own work by ``LatencyModel``: assumed figures for a
Lucca tenant seen from AWS in Paris, written here because they are an assumption.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs

import httpx

from local.lucca_simulator.app import Request, SimulatorApp, route_api
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
        if endpoint == "list":
            return self.list_base + self.list_per_item * limit
        return float(getattr(self, endpoint, self.other))


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

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        query = request.url.query.decode()
        params = parse_qs(query, keep_blank_values=True)
        limit = int(params.get("limit", ["0"])[0] or 0) if "limit" in params else 0
        endpoint = route_api(request.method, request.url.path).endpoint
        mutating = endpoint in ("put", "book")
        if mutating:
            self._crash(f"before the {endpoint}")
        started = self.sim.now
        self.sim.sleep(self.latency.of(endpoint, limit))
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
        if mutating and 200 <= answer.status < 300:
            self._crash(f"after the {endpoint}, before its answer was recorded")
        headers = dict(answer.headers)
        if answer.content_type:
            headers["Content-Type"] = answer.content_type
        return httpx.Response(answer.status, headers=headers, content=answer.body, request=request)
