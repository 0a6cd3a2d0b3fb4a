"""One HTTP request as the simulator sees it: shared by the server, the app and the admin side.

Its own module so that ``admin`` needs nothing from ``app`` (``app`` dispatches to ``admin``):
the import graph stays a tree.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Request:
    method: str
    path: str
    query: str
    params: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes
    body_too_large: bool = False
