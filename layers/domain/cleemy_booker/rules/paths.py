"""Field paths: ``document.amountIncludingTaxes.includingTaxes.value`` read, checked and set.

Rules name fields by dotted paths, over two shapes: ``when`` and templates read the *view* (the
inbox item's read shape), ``set`` writes the PUT body. A path is checked against the known
fields when the rules load, so a typo stops the deployment rather than every night's run.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from typing import Any

from ..models import (
    READ_ONLY_DOCUMENT_FIELDS,
    READ_ONLY_ITEM_FIELDS,
    Document,
    InboxItem,
    WriteAction,
)
from .exceptions import RuleNotApplicable

_SEGMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|\d+")
#: ``ownerId`` is the write shape's name for ``owner.id``; reading it from the view works too.
_VIEW_ALIASES = {"document.ownerId": "document.owner.id"}
_ITEM_FIELDS = frozenset(InboxItem.model_fields)
_DOCUMENT_READ_FIELDS = frozenset(Document.model_fields) | {"ownerId"}

#: What a PUT takes under ``document``: ``None`` is a leaf; a dict lists the keys of an object.
#: The purchase keeps only id and type because that is all ``to_write_shape`` sends.
_MONEY = {"value": None, "currency": None}
WRITABLE_DOCUMENT: dict[str, Any] = {
    "ownerId": None,
    "type": None,
    "context": {"purchase": {"id": None, "type": None}},
    "documentDate": None,
    "documentNumber": None,
    "amountIncludingTaxes": {"excludingTaxes": _MONEY, "taxes": None, "includingTaxes": _MONEY},
    "accountingLabel": None,
    "comment": None,
    "intraCommunityTaxes": None,
    "dueDate": None,
    "paymentDetails": {"paymentMethod": None, "bankAccount": {"iban": None, "bic": None}},
}


def split_path(path: str) -> list[str]:
    """``a.b.0.c`` → segments; identifiers or list indexes, nothing else."""
    if not isinstance(path, str) or not path:
        raise ValueError(f"a path must be a non-empty dotted string, got {path!r}")
    parts = path.split(".")
    bad = [part for part in parts if not _SEGMENT.fullmatch(part)]
    if bad:
        raise ValueError(f"{path!r} is not a dotted path (bad part {bad[0]!r})")
    return parts


def near_miss(name: str, known: Iterable[str]) -> str | None:
    """The known name a typo most likely meant: same letters in another case, or very close."""
    known = sorted(known)
    for candidate in known:
        if candidate.lower() == name.lower():
            return candidate
    matches = difflib.get_close_matches(name, known, n=1, cutoff=0.8)
    return matches[0] if matches else None


def _refuse_typo(name: str, known: Iterable[str], where: str) -> None:
    """Unknown names are allowed (Lucca adds fields), but not ones that look like a typo."""
    guess = near_miss(name, known)
    if guess is not None and guess != name:
        raise ValueError(f"unknown field {name!r} in {where} (did you mean {guess!r}?)")


def check_read_path(path: str) -> str:
    """A path over the view (read shape); unknown fields are fine, likely typos are not."""
    parts = split_path(path)
    if parts[0] not in _ITEM_FIELDS:
        _refuse_typo(parts[0], _ITEM_FIELDS, "the inbox item")
    if parts[0] == "document" and len(parts) > 1 and parts[1] not in _DOCUMENT_READ_FIELDS:
        _refuse_typo(parts[1], _DOCUMENT_READ_FIELDS, "document")
    return path


def check_write_path(path: str) -> str:
    """A path the PUT body can carry; raises a ValueError saying why another cannot be set."""
    parts = split_path(path)
    root = parts[0]
    if root == "document":
        _check_document_write_path(path, parts[1:])
    elif root == "action":
        _check_action_write_path(path, parts[1:])
    elif root in READ_ONLY_ITEM_FIELDS or root in _ITEM_FIELDS:
        raise ValueError(f"{path!r} is read-only: {root!r} is not part of the update (PUT) body")
    else:
        raise ValueError(
            f"unknown top-level part {root!r} in {path!r}: set targets start with "
            "'document.' or 'action.'"
        )
    return path


def _check_document_write_path(path: str, parts: list[str]) -> None:
    if not parts:
        raise ValueError(
            "set a field of document (e.g. 'document.comment'), not the whole document"
        )
    field = parts[0]
    if field == "owner":
        raise ValueError(f"{path!r} is the read shape: set 'document.ownerId' to change the owner")
    if field in READ_ONLY_DOCUMENT_FIELDS:
        raise ValueError(f"{path!r} is read-only: Lucca fills document.{field} itself")
    if field not in WRITABLE_DOCUMENT:
        _refuse_typo(field, set(WRITABLE_DOCUMENT) | READ_ONLY_DOCUMENT_FIELDS, "document")
        return  # an unknown writable field: it rides along as it is
    _check_nested(path, parts, WRITABLE_DOCUMENT)


def _check_nested(path: str, parts: list[str], schema: dict[str, Any]) -> None:
    """Walk the known write structure so a typo deep in a path is caught at load."""
    node: dict[str, Any] | None = schema
    walked = "document"
    for part in parts:
        if node is None:
            raise ValueError(f"{path!r}: {walked} is not an object")
        if part not in node:
            guess = near_miss(part, node)
            hint = f" (did you mean {guess!r}?)" if guess else ""
            raise ValueError(
                f"{path!r}: {walked} has no writable field {part!r}{hint}; "
                f"writable: {', '.join(sorted(node))}"
            )
        node = node[part]
        walked = f"{walked}.{part}"


def _check_action_write_path(path: str, parts: list[str]) -> None:
    if not parts:
        return  # the whole action object
    known = set(WriteAction.model_fields)
    if parts[0] not in known:
        _refuse_typo(parts[0], known, "action")
    elif len(parts) > 1:
        raise ValueError(f"{path!r}: action.{parts[0]} is not an object")


def lookup(view: Mapping[str, Any], path: str) -> Any:
    """The value at ``path`` in the view (read shape, ``document.ownerId`` understood)."""
    return get_path(view, _VIEW_ALIASES.get(path, path))


def get_path(tree: Mapping[str, Any], path: str) -> Any:
    """The value at ``path`` in a JSON tree; missing is ``None`` (missing counts as null)."""
    node: Any = tree
    for part in path.split("."):
        if isinstance(node, Mapping):
            node = node.get(part)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def assign(tree: dict[str, Any], path: str, value: Any) -> None:
    """Set ``path`` in a nested dict, creating the objects on the way (a null becomes {})."""
    *parents, leaf = path.split(".")
    node = tree
    walked: list[str] = []
    for part in parents:
        walked.append(part)
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise RuleNotApplicable(f"{'.'.join(walked)} is not an object, cannot set {path}")
        node = child
    node[leaf] = value
