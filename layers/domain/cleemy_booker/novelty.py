"""What Lucca sends that is new: a field no model declares, a value outside a published
enumeration, a route that answers differently from what the code expects.

Lucca's inbox is a legacy endpoint with no change guarantee. The models keep what they do not
know (a PUT must not drop it) and the gate holds a document with a value nobody here knows, but
neither tells anyone that Lucca started sending something new. ``novelties_in`` finds them on a
listed item; the poller records each once in the ledger (``Markers.record_novelty``) with the
date and an example document; the digest and ``cleemy-booker doctor`` tell a person.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel

from .models import KNOWN_VALUES, InboxItem, is_unknown_value

NoveltyKind = Literal["field", "value", "route"]
#: An example value is kept this short: enough to recognise it, never a whole document.
EXAMPLE_MAX = 200


@dataclass(frozen=True)
class Novelty:
    """One new thing, as first seen: ``key`` names it (a field's path, ``path=value``, or the
    route), ``example`` shows it, ``document_id`` is a document that carried it."""

    kind: NoveltyKind
    key: str
    example: str
    document_id: int | None = None
    #: When the ledger first recorded it (a ledger stamp); empty before it was recorded.
    first_seen: str = ""


def novelties_in(item: InboxItem) -> list[Novelty]:
    """Every field no model declares and every value outside its published enumeration."""
    fields: dict[str, Novelty] = {}
    for path, value in _extra_fields(item, ""):
        fields.setdefault(path, Novelty("field", path, _example(value), item.document_id))
    found = list(fields.values())
    for path in KNOWN_VALUES:
        value = _value_at(item, path)
        if isinstance(value, str) and is_unknown_value(path, value):
            found.append(Novelty("value", f"{path}={value}", _example(value), item.document_id))
    return found


def _extra_fields(model: BaseModel, prefix: str) -> Iterator[tuple[str, Any]]:
    """(path, value) of each undeclared field, at any depth; a list's items share one path
    (``document.amountIncludingTaxes.taxes[].x``), so a field new on every line is one novelty."""
    for name, value in (model.model_extra or {}).items():
        yield prefix + name, value
    for name in type(model).model_fields:
        child = getattr(model, name)
        if isinstance(child, BaseModel):
            yield from _extra_fields(child, f"{prefix}{name}.")
        elif isinstance(child, list):
            for element in child:
                if isinstance(element, BaseModel):
                    yield from _extra_fields(element, f"{prefix}{name}[].")


def _value_at(model: BaseModel, path: str) -> Any:
    value: Any = model
    for part in path.split("."):
        value = getattr(value, part, None)
        if value is None:
            return None
    return value


def _example(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str, sort_keys=True)
    return text if len(text) <= EXAMPLE_MAX else text[: EXAMPLE_MAX - 1] + "…"
