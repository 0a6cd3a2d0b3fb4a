"""The HTTP server on loopback, and ``Simulator``: start/stop plus ground truth from Python."""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .app import Request, SimulatorApp
from .config import SimulatorConfig
from .faults import Fault
from .responses import Response

HOST = "127.0.0.1"  # loopback only: the simulator has no business on a network
#: Above this a body is refused with 413 (read and discarded, so the client can finish sending).
MAX_BODY_BYTES = 1_000_000
#: Above this the body is not even read: 413 and the connection is closed.
_MAX_DRAIN_BYTES = 16_000_000


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    app: SimulatorApp
    verbose: bool

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client closing its end mid-answer is normal here (timeouts, drop faults).
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 keeps connections alive, as Lucca's front does; every answer has a length.
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without this, Nagle + delayed ACK add ~40 ms.
    disable_nagle_algorithm = True
    server: _Server

    def version_string(self) -> str:
        return "LuccaSimulator/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    def _serve(self) -> None:
        request = self._read_request()
        if request is None:
            return
        response = self.server.app.handle(request)
        if response is None:
            self._drop()
        else:
            self._send(response, close=self.close_connection)

    # The app routes every method itself (a wrong one gets Lucca's 405): one path for all.
    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

    def _read_request(self) -> Request | None:
        body, too_large = b"", False
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = self._read_chunked()
        else:
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                self._send(Response(400, b"Bad Content-Length"), close=True)
                return None
            too_large = length > MAX_BODY_BYTES
            if too_large and length <= _MAX_DRAIN_BYTES:
                self._discard(length)
            elif too_large:
                self.close_connection = True  # the unread body cannot be skipped
            elif not too_large and length > 0:
                body = self.rfile.read(length)
        split = urlsplit(self.path)
        path = split.path.rstrip("/") or "/"
        return Request(
            method=self.command,
            path=path,
            query=split.query,
            params=parse_qs(split.query, keep_blank_values=True),
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
            body_too_large=too_large,
        )

    def _discard(self, length: int) -> None:
        while length > 0:
            length -= len(self.rfile.read(min(length, 65_536))) or length

    def _read_chunked(self) -> bytes:
        chunks: list[bytes] = []
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline().strip():  # trailers
                    pass
                return b"".join(chunks)
            chunks.append(self.rfile.read(size))
            self.rfile.readline()

    def _send(self, response: Response, *, close: bool = False) -> None:
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        if response.content_type:
            self.send_header("Content-Type", response.content_type)
        if response.status != 204:
            self.send_header("Content-Length", str(len(response.body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if response.body and response.status != 204 and self.command != "HEAD":
            self.wfile.write(response.body)

    def _drop(self) -> None:
        """Close the connection without a byte of answer."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


class Simulator:
    """A local stand-in for Lucca's inbox API. ``start()`` serves on 127.0.0.1 in a thread."""

    def __init__(self, config: SimulatorConfig | None = None, *, verbose: bool = False) -> None:
        self.app = SimulatorApp(config or SimulatorConfig())
        self._verbose = verbose
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Simulator:
        if self._server is not None:
            return self
        server = _Server((HOST, self.app.config.port), _Handler)
        server.app = self.app
        server.verbose = self._verbose
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def serve_forever(self) -> None:
        """Block until interrupted (the command line)."""
        self.start()
        thread = self._thread
        try:
            while thread is not None and thread.is_alive():
                thread.join(timeout=0.5)
        finally:
            self.stop()

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    # --- where it is -------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the simulator is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def api_key(self) -> str:
        return self.app.config.api_key

    @property
    def config(self) -> SimulatorConfig:
        return self.app.config

    # --- ground truth and control (same as the /_sim endpoints) ------------------------------

    def state(self) -> dict[str, Any]:
        return self.app.state()

    def requests(self) -> list[dict[str, Any]]:
        return self.app.requests()

    def reset(self, **overrides: Any) -> SimulatorConfig:
        return self.app.reset(overrides)

    def configure(self, **changes: Any) -> SimulatorConfig:
        return self.app.configure(changes)

    def document(self, doc_id: int) -> dict[str, Any] | None:
        return self.app.document_detail(doc_id)

    def script_faults(self, endpoint: str, doc_id: int, faults: list[Fault | None]) -> None:
        self.app.script_faults(endpoint, doc_id, faults)

    def add_documents(self, items: list[dict[str, Any]], category: str = "custom") -> list[int]:
        return self.app.add_items(items, category)

    def generate_documents(self, count: int) -> list[int]:
        return self.app.add_generated(count)

    def touch(
        self, doc_id: int, patch: dict[str, Any] | None = None, category: str | None = None
    ) -> dict[str, Any] | None:
        return self.app.touch(doc_id, patch or {}, category)
