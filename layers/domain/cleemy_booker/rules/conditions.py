"""Conditions: what one field must look like for a rule to apply (the ``when`` of a rule).

A plain literal means ``equals`` and ``null`` means ``is_null``; operators are validated at load
(an unknown one is named with a suggestion), and a condition that cannot be evaluated on a
document (a text compared with a number) simply does not hold.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictBool,
    field_validator,
    model_validator,
)

from .paths import near_miss
from .scalars import JsonValue, as_text, comparable_bound, compare, same

OPERATORS = (
    "equals", "not_equals", "is_null", "not_null", "in", "not_in", "regex", "range",
    "gte", "gt", "lte", "lt",
)  # fmt: skip


class Range(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    min: Any = None
    max: Any = None

    @field_validator("min", "max")
    @classmethod
    def _number_or_date(cls, value: Any) -> Any:
        return None if value is None else comparable_bound(value)

    @model_validator(mode="after")
    def _has_a_bound(self) -> Self:
        if self.min is None and self.max is None:
            raise ValueError("range needs min, max or both")
        return self


class Condition(BaseModel):
    """What one field must look like. A plain literal means equals; null means is null."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    equals: JsonValue = None
    not_equals: JsonValue = None
    is_null: StrictBool | None = None
    not_null: StrictBool | None = None
    in_: list[JsonValue] | None = Field(default=None, alias="in")
    not_in: list[JsonValue] | None = None
    regex: str | None = None
    range: Range | None = None
    gte: JsonValue = None
    gt: JsonValue = None
    lte: JsonValue = None
    lt: JsonValue = None
    _pattern: re.Pattern[str] | None = PrivateAttr(default=None)

    @model_validator(mode="before")
    @classmethod
    def _literal_means_equals(cls, raw: Any) -> Any:
        if raw is None:
            return {"is_null": True}
        if isinstance(raw, list):
            raise ValueError("a list is not a condition: use {in: [...]} or {equals: [...]}")
        if not isinstance(raw, dict):
            return {"equals": raw}
        if not raw:
            raise ValueError("empty condition {}: give an operator or a value")
        for key in raw:
            if key not in OPERATORS:
                guess = near_miss(str(key), OPERATORS)
                hint = f" (did you mean {guess!r}?)" if guess else ""
                raise ValueError(
                    f"unknown operator {key!r}{hint}; operators: {', '.join(OPERATORS)} "
                    "(to compare with an object, use {equals: {...}})"
                )
        return raw

    @field_validator("gte", "gt", "lte", "lt")
    @classmethod
    def _number_or_date(cls, value: Any) -> Any:
        return None if value is None else comparable_bound(value)

    @model_validator(mode="after")
    def _compile_regex(self) -> Self:
        if self.regex is not None:
            try:
                self._pattern = re.compile(self.regex)
            except re.error as exc:
                raise ValueError(f"bad regex {self.regex!r}: {exc}") from None
        return self

    def holds(self, value: Any) -> bool:
        return all(self._checks(value))

    def _checks(self, value: Any) -> Iterator[bool]:
        """One verdict per operator given, lazily: ``all`` stops at the first that fails."""
        given = self.model_fields_set
        if "equals" in given:
            yield _equals_or_null(value, self.equals)
        if "not_equals" in given:
            yield not _equals_or_null(value, self.not_equals)
        if self.is_null is not None:
            yield (value is None) == self.is_null
        if self.not_null is not None:
            yield (value is not None) == self.not_null
        if self.in_ is not None:
            yield any(_equals_or_null(value, option) for option in self.in_)
        if self.not_in is not None:
            yield not any(_equals_or_null(value, option) for option in self.not_in)
        if self._pattern is not None:
            yield _full_match(self._pattern, value)
        for op, bound in self._bounds():
            yield _ordered(value, op, bound)

    def _bounds(self) -> list[tuple[str, Any]]:
        bounds = [(op, getattr(self, op)) for op in ("gte", "gt", "lte", "lt")]
        if self.range is not None:
            bounds += [("gte", self.range.min), ("lte", self.range.max)]
        return [(op, bound) for op, bound in bounds if bound is not None]


def _equals_or_null(value: Any, expected: Any) -> bool:
    if expected is None or value is None:
        return expected is None and value is None
    return same(value, expected)


def _full_match(pattern: re.Pattern[str] | None, value: Any) -> bool:
    text = as_text(value)
    return pattern is not None and text is not None and pattern.fullmatch(text) is not None


def _ordered(value: Any, op: str, bound: Any) -> bool:
    order = compare(value, bound)
    if order is None:
        return False
    return {"gte": order >= 0, "gt": order > 0, "lte": order <= 0, "lt": order < 0}[op]
