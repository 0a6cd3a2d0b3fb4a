"""Pydantic's validation errors, told the same way across the domain.

Every place that validates outside input (rules files, the environment, Lucca's answers, queue
messages) reports pydantic's errors as ``location: message``. Written once, they read alike in a
log line, a dead letter and a rule author's terminal:

- ``summary``: the short form, one line, the first few errors (a reason in a log or a letter);
- ``error_lines``: the full form, one line per error (a configuration error a person must fix).

By default messages are tidied for people: pydantic's ``Value error,`` prefix is dropped (our
validators' messages are already sentences) and an unexpected key is called one. ``verbatim``
keeps pydantic's wording, for callers whose readers (and tests) know it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pydantic import ValidationError
from pydantic_core import ErrorDetails

#: Where an error is, as pydantic gives it: keys, list indexes and union members' names.
Location = tuple[int | str, ...]
#: Names a location in the caller's terms; ``None`` means "the dotted path will do".
Where = Callable[[Location], str | None]

_VALUE_ERROR = "Value error, "


def dotted(loc: Sequence[int | str], *, root: str = "") -> str:
    """``("document", "owner", "id")`` → ``document.owner.id``; ``root`` names the empty one."""
    return ".".join(str(part) for part in loc) or root


def error_lines(
    exc: ValidationError,
    *,
    limit: int | None = None,
    root: str = "",
    where: Where | None = None,
    verbatim: bool = False,
) -> list[str]:
    """The full form: ``location: message`` per error, the first ``limit`` (all by default).

    An unexpected key is named (``unknown key 'x'``): a caller's ``where`` may leave it out of
    the location. An error without a location (and no ``root``) is its message alone.
    """
    return _lines(exc, limit, root, where, verbatim, name_unknown_keys=True)


def summary(
    exc: ValidationError,
    *,
    limit: int = 3,
    root: str = "",
    verbatim: bool = False,
    separator: str = "; ",
) -> str:
    """The short form, on one line: the first ``limit`` errors, ``separator`` between them.

    An unexpected key reads ``key: unexpected key``: the location already names it.
    """
    return separator.join(_lines(exc, limit, root, None, verbatim, name_unknown_keys=False))


def _lines(
    exc: ValidationError,
    limit: int | None,
    root: str,
    where: Where | None,
    verbatim: bool,
    *,
    name_unknown_keys: bool,
) -> list[str]:
    lines = []
    for error in exc.errors()[:limit]:
        loc: Location = tuple(error["loc"])
        place = where(loc) if where is not None else None
        if place is None:
            place = dotted(loc, root=root)
        message = _message(error, verbatim=verbatim, name_unknown_keys=name_unknown_keys)
        lines.append(f"{place}: {message}" if place else message)
    return lines


def _message(error: ErrorDetails, *, verbatim: bool, name_unknown_keys: bool) -> str:
    if verbatim:
        return str(error["msg"])
    if error["type"] == "extra_forbidden":
        key = error["loc"][-1] if error["loc"] else None
        return f"unknown key {key!r}" if name_unknown_keys and key is not None else "unexpected key"
    return str(error["msg"]).removeprefix(_VALUE_ERROR)


__all__ = ["Location", "Where", "dotted", "error_lines", "summary"]
