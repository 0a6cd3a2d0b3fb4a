"""Admin endpoints (``/_sim/...``): ground truth and control for tests, the benchmark and demos.

No auth, no rate limit, no faults, not logged: they observe the simulation without disturbing it.
"""

from __future__ import annotations

import json
import re
from typing import Any, Protocol

from .config import ConfigError, SimulatorConfig
from .inbox import is_category
from .request import Request
from .responses import Response, json_response, problem


class AdminTarget(Protocol):
    """What the admin endpoints need of the application (``app.SimulatorApp`` provides it).

    A protocol, not an import: ``app`` dispatches to this module, so this module must not
    import ``app``, even for type checking (the import graph stays acyclic).
    """

    def state(self) -> dict[str, Any]: ...

    def requests(self) -> list[dict[str, Any]]: ...

    def reset(self, overrides: dict[str, Any]) -> SimulatorConfig: ...

    def configure(self, changes: dict[str, Any]) -> SimulatorConfig: ...

    def document_detail(self, doc_id: int) -> dict[str, Any] | None: ...

    def add_items(self, items: list[Any], category: str) -> list[int]: ...

    def add_generated(self, count: int) -> list[int]: ...

    def touch(
        self, doc_id: int, patch: dict[str, Any], category: str | None
    ) -> dict[str, Any] | None: ...

    def person_moves(self, doc_id: int, move: str) -> bool | None: ...


_DOCUMENT = re.compile(r"^/_sim/documents/(\d+)$")
_TOUCH = re.compile(r"^/_sim/documents/(\d+)/touch$")
#: A person's move in Lucca, outside the API: ``delete`` it, or ``book`` it by hand.
_PERSON = re.compile(r"^/_sim/documents/(\d+)/person/(delete|book)$")


class AdminError(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def handle_admin(app: AdminTarget, request: Request) -> Response:
    try:
        return _dispatch(app, request)
    except AdminError as exc:
        return problem(exc.status, exc.detail)
    except ConfigError as exc:
        return problem(400, str(exc), title="Invalid configuration")


def _dispatch(app: AdminTarget, request: Request) -> Response:
    path, method = request.path, request.method
    if (method, path) == ("GET", "/_sim/state"):
        return json_response(200, app.state())
    if (method, path) == ("GET", "/_sim/requests"):
        return json_response(200, {"requests": app.requests()})
    if (method, path) == ("POST", "/_sim/reset"):
        config = app.reset(_json_object(request.body))
        return json_response(200, {"config": config.to_dict()})
    if (method, path) == ("POST", "/_sim/config"):
        config = app.configure(_json_object(request.body))
        return json_response(200, {"config": config.to_dict()})
    if (method, path) == ("POST", "/_sim/documents"):
        return json_response(200, {"added": _add_documents(app, _json_object(request.body))})
    if method == "GET" and (match := _DOCUMENT.match(path)):
        detail = app.document_detail(int(match.group(1)))
        if detail is None:
            raise AdminError(404, f"document {match.group(1)} does not exist")
        return json_response(200, detail)
    if method == "POST" and (match := _TOUCH.match(path)):
        return json_response(200, _touch(app, int(match.group(1)), _json_object(request.body)))
    if method == "POST" and (match := _PERSON.match(path)):
        moved = app.person_moves(int(match.group(1)), match.group(2))
        if moved is None:
            raise AdminError(404, f"document {match.group(1)} does not exist")
        return json_response(200, {"moved": moved})
    raise AdminError(404, f"no admin endpoint {method} {path}")


def _json_object(body: bytes) -> dict[str, Any]:
    """An optional JSON object body: empty means ``{}``."""
    if not body.strip():
        return {}
    try:
        value = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise AdminError(400, f"body is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise AdminError(400, "body must be a JSON object")
    return value


def _add_documents(app: AdminTarget, body: dict[str, Any]) -> list[int]:
    """``{"items": [...], "category": "custom"}`` verbatim, or ``{"count": n}`` generated."""
    if "items" in body:
        items, category = body["items"], body.get("category", "custom")
        if not isinstance(items, list) or not isinstance(category, str):
            raise AdminError(400, "items must be a list and category a string")
        if not is_category(category):
            raise AdminError(400, f"unknown category {category!r}")
        try:
            return app.add_items(items, category)
        except ValueError as exc:
            raise AdminError(400, str(exc)) from None
    count = body.get("count")
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise AdminError(400, 'send {"items": [...]} or {"count": n} with n >= 0')
    return app.add_generated(count)


def _touch(app: AdminTarget, doc_id: int, body: dict[str, Any]) -> dict[str, Any]:
    """``{"patch": {document fields}, "category": "ready"}``, both optional."""
    patch, category = body.get("patch", {}), body.get("category")
    if not isinstance(patch, dict):
        raise AdminError(400, "patch must be an object of document fields")
    if category is not None and not (isinstance(category, str) and is_category(category)):
        raise AdminError(400, f"unknown category {category!r}")
    item = app.touch(doc_id, patch, category)
    if item is None:
        raise AdminError(404, f"document {doc_id} does not exist")
    return item
