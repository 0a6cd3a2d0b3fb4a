"""Declarative update rules: each company's accounting habits, declared rather than coded.

Booking is hard to undo, so what the pipeline changes on an invoice before booking it is written
down as data (JSON in Lambda, JSON or YAML on a workstation), validated when loaded, and applied
the same way by the processor and by the dry run (``plan``)::

    rules:
      - name: label from number
        when: {document.accountingLabel: null, document.documentNumber: {not_null: true}}
        set: {document.accountingLabel: "Invoice {document.documentNumber}"}

Paths in ``when`` and in templates read the *view*: the inbox item's JSON (read shape) with the
sets of earlier rules applied. Paths in ``set`` name the *write* shape (``document.ownerId``, not
``document.owner``). Within one rule every value is computed from the view as it was before the
rule, then all of them are applied together, or none when one cannot be computed.
"""

from __future__ import annotations

import calendar
import copy
import difflib
import importlib
import json
import re
import string
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictBool,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from .fingerprint import DEFAULT_RULES_RESOURCE, SSM_PREFIX, bundled_rules_text
from .models import (
    KNOWN_VALUES,
    READ_ONLY_DOCUMENT_FIELDS,
    READ_ONLY_ITEM_FIELDS,
    Document,
    InboxDocumentWrite,
    InboxItem,
    WriteAction,
    WriteDocument,
    to_write_shape,
)

JsonValue = Any
Hook = Callable[[dict[str, Any]], Mapping[str, Any] | None]


class RulesConfigError(ValueError):
    """A rules file that cannot be used; the message names the rule and the field."""


class RuleNotApplicable(Exception):
    """A rule whose conditions held but which cannot produce its values for this document."""


# --- paths ------------------------------------------------------------------------------------

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


def _near_miss(name: str, known: Iterable[str]) -> str | None:
    """The known name a typo most likely meant: same letters in another case, or very close."""
    known = sorted(known)
    for candidate in known:
        if candidate.lower() == name.lower():
            return candidate
    matches = difflib.get_close_matches(name, known, n=1, cutoff=0.8)
    return matches[0] if matches else None


def _refuse_typo(name: str, known: Iterable[str], where: str) -> None:
    """Unknown names are allowed (Lucca adds fields), but not ones that look like a typo."""
    guess = _near_miss(name, known)
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
            guess = _near_miss(part, node)
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


def _assign(tree: dict[str, Any], path: str, value: Any) -> None:
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


# --- values: text, numbers, dates ------------------------------------------------------------


def as_text(value: Any) -> str | None:
    """The string form used by templates and ``regex``: JSON's spelling for non-strings."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return format(Decimal(str(value)), "f")
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def as_decimal(value: Any) -> Decimal | None:
    """A number as Decimal (floats through their shortest repr), or None if it is not one."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int | float | str):
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            return None
        return number if number.is_finite() else None
    return None


def as_date(value: Any) -> date | None:
    """An ISO date, or the date part of an ISO date-time (``createdAt``); else None."""
    if isinstance(value, date):
        return value.date() if isinstance(value, datetime) else value
    if not isinstance(value, str) or len(value) < 10:
        return None
    if len(value) > 10 and value[10] not in "T ":
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def _same(left: Any, right: Any) -> bool:
    """Equality as an accountant means it: 120 == 120.0 == "120.00"; true is not 1."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if isinstance(left, int | float | Decimal) or isinstance(right, int | float | Decimal):
        a, b = as_decimal(left), as_decimal(right)
        return a is not None and b is not None and a == b
    return bool(left == right)


def _compare(value: Any, bound: Any) -> int | None:
    """-1, 0 or 1; None when the two are not comparable (then the condition does not hold)."""
    bound_date = as_date(bound) if isinstance(bound, str) and len(bound) == 10 else None
    if bound_date is not None:
        left_date = as_date(value)
        if left_date is None:
            return None
        return (left_date > bound_date) - (left_date < bound_date)
    left, right = as_decimal(value), as_decimal(bound)
    if left is None or right is None:
        return None
    return (left > right) - (left < right)


def _comparable_bound(value: Any) -> Any:
    """Comparison operands are numbers or ISO dates, checked at load."""
    if isinstance(value, str) and len(value) == 10 and as_date(value) is not None:
        return value
    if as_decimal(value) is None:
        raise ValueError(f"{value!r} is neither a number nor an ISO date (YYYY-MM-DD)")
    return value


# --- conditions -------------------------------------------------------------------------------

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
        return None if value is None else _comparable_bound(value)

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
                guess = _near_miss(str(key), OPERATORS)
                hint = f" (did you mean {guess!r}?)" if guess else ""
                raise ValueError(
                    f"unknown operator {key!r}{hint}; operators: {', '.join(OPERATORS)} "
                    "(to compare with an object, use {equals: {...}})"
                )
        return raw

    @field_validator("gte", "gt", "lte", "lt")
    @classmethod
    def _number_or_date(cls, value: Any) -> Any:
        return None if value is None else _comparable_bound(value)

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
    return _same(value, expected)


def _full_match(pattern: re.Pattern[str] | None, value: Any) -> bool:
    text = as_text(value)
    return pattern is not None and text is not None and pattern.fullmatch(text) is not None


def _ordered(value: Any, op: str, bound: Any) -> bool:
    order = _compare(value, bound)
    if order is None:
        return False
    return {"gte": order >= 0, "gt": order > 0, "lte": order <= 0, "lt": order < 0}[op]


# --- set values -------------------------------------------------------------------------------


class LiteralValue(BaseModel):
    """A value written as it is (string without braces, number, bool, null, object, list)."""

    model_config = ConfigDict(frozen=True)

    value: JsonValue

    def compute(self, view: Mapping[str, Any]) -> Any:
        return copy.deepcopy(self.value)


class Template(BaseModel):
    """A string with ``{path}`` placeholders over the view; ``{{`` and ``}}`` are braces."""

    model_config = ConfigDict(frozen=True)

    text: str
    _parts: list[tuple[str, str | None]] = PrivateAttr(default_factory=list)

    @model_validator(mode="after")
    def _parse(self) -> Self:
        try:
            parsed = list(string.Formatter().parse(self.text))
        except ValueError as exc:
            raise ValueError(
                f"bad template {self.text!r}: {exc} (write {{{{ or }}}} for a brace)"
            ) from None
        parts: list[tuple[str, str | None]] = []
        for literal, field, spec, conversion in parsed:
            if field is not None:
                if not field:
                    raise ValueError(f"bad template {self.text!r}: empty placeholder {{}}")
                if spec or conversion:
                    raise ValueError(
                        f"bad template {self.text!r}: {{{field}}} has a format; "
                        "placeholders are plain paths"
                    )
                try:
                    check_read_path(field)
                except ValueError as exc:
                    raise ValueError(f"bad template path {{{field}}}: {exc}") from None
            parts.append((literal, field))
        self._parts = parts  # assigned, not appended: pydantic may run this validator twice
        return self

    def compute(self, view: Mapping[str, Any]) -> str:
        pieces: list[str] = []
        for literal, field in self._parts:
            pieces.append(literal)
            if field is not None:
                text = as_text(lookup(view, field))
                if text is None:
                    raise RuleNotApplicable(
                        f"{field} is null, so the template {self.text!r} cannot be filled"
                    )
                pieces.append(text)
        return "".join(pieces)


class _DateSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def _base(self, view: Mapping[str, Any], path: str) -> date:
        raw = lookup(view, path)
        if raw is None:
            raise RuleNotApplicable(f"{path} is null, so no date can be computed from it")
        base = as_date(raw)
        if base is None:
            raise RuleNotApplicable(f"{path} is {raw!r}, not a date")
        return base


def _end_of_month(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


def _add_months(day: date, months: int) -> date:
    """Same day of the month N months later, or the month's last day if it is shorter."""
    years, month_index = divmod(day.month - 1 + months, 12)
    year, month = day.year + years, month_index + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


class DaysAfter(_DateSpec):
    """``{days_after: path, days: N}``, optionally rounded to the end of that month."""

    days_after: str
    days: int = Field(ge=-3660, le=3660)
    end_of_month: bool = False

    @field_validator("days_after")
    @classmethod
    def _known_path(cls, path: str) -> str:
        return check_read_path(path)

    def compute(self, view: Mapping[str, Any]) -> str:
        try:
            due = self._base(view, self.days_after) + timedelta(days=self.days)
        except OverflowError:
            raise RuleNotApplicable(
                f"{self.days_after} + {self.days} days is out of range"
            ) from None
        return (_end_of_month(due) if self.end_of_month else due).isoformat()


class MonthsAfter(_DateSpec):
    """``{months_after: path, months: N}``, optionally rounded to the end of that month."""

    months_after: str
    months: int = Field(ge=-120, le=120)
    end_of_month: bool = False

    @field_validator("months_after")
    @classmethod
    def _known_path(cls, path: str) -> str:
        return check_read_path(path)

    def compute(self, view: Mapping[str, Any]) -> str:
        try:
            due = _add_months(self._base(view, self.months_after), self.months)
        except ValueError:
            raise RuleNotApplicable(
                f"{self.months_after} + {self.months} months is out of range"
            ) from None
        return (_end_of_month(due) if self.end_of_month else due).isoformat()


class EndOfMonth(_DateSpec):
    """``{end_of_month: path}``: the last day of that date's month."""

    end_of_month: str

    @field_validator("end_of_month")
    @classmethod
    def _known_path(cls, path: str) -> str:
        return check_read_path(path)

    def compute(self, view: Mapping[str, Any]) -> str:
        return _end_of_month(self._base(view, self.end_of_month)).isoformat()


SetValue = LiteralValue | Template | DaysAfter | MonthsAfter | EndOfMonth
_DATE_SPEC_KEYS = ("days_after", "months_after", "end_of_month")


def _pydantic_reason(exc: ValidationError) -> str:
    """A short, human reading of a pydantic error (no URLs, no 'Value error,' prefix)."""
    reasons = []
    for error in exc.errors()[:3]:
        where = ".".join(str(part) for part in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unexpected key"
        reasons.append(f"{where}: {message}" if where else message)
    return "; ".join(reasons)


def _date_spec(raw: dict[str, Any]) -> SetValue:
    if "days_after" in raw:
        model: type[_DateSpec] = DaysAfter
    elif "months_after" in raw:
        model = MonthsAfter
    else:
        model = EndOfMonth
    try:
        spec = model.model_validate(raw)
    except ValidationError as exc:
        raise ValueError(
            f"bad date spec {raw!r}: {_pydantic_reason(exc)}; use {{days_after: <path>, days: N}}, "
            "{months_after: <path>, months: N} or {end_of_month: <path>}"
        ) from None
    assert isinstance(spec, DaysAfter | MonthsAfter | EndOfMonth)  # noqa: S101 - narrowing
    return spec


def compile_set_value(raw: Any) -> SetValue:
    """Read one ``set`` value: a date spec, a template (a string with braces) or a literal."""
    if isinstance(raw, dict) and any(key in raw for key in _DATE_SPEC_KEYS):
        return _date_spec(raw)
    if isinstance(raw, dict) and ("days" in raw or "months" in raw):
        raise ValueError(
            f"bad date spec {raw!r}: say from which date, e.g. "
            "{days_after: document.documentDate, days: 30}"
        )
    if isinstance(raw, str) and ("{" in raw or "}" in raw):
        try:
            return Template(text=raw)
        except ValidationError as exc:
            raise ValueError(_pydantic_reason(exc)) from None
    return LiteralValue(value=raw)


def _check_literal_type(path: str, value: SetValue) -> None:
    """A literal for a known field must fit its type: caught at load, not on the night run."""
    if not isinstance(value, LiteralValue):
        return
    known = KNOWN_VALUES.get(path)
    if known is not None and value.value is not None and value.value not in known:
        # The model takes any string (Lucca adds values); a rule author's new value is a typo.
        choices = ", ".join(sorted(known))
        raise ValueError(f"{value.value!r} does not fit {path}: one of {choices} or null")
    parts = path.split(".")
    if parts[0] != "document" or len(parts) != 2:
        return
    field = WriteDocument.model_fields.get(parts[1])
    if field is None or field.annotation is None:
        return
    try:
        TypeAdapter(field.annotation).validate_python(value.value)
    except ValidationError as exc:
        raise ValueError(f"{value.value!r} does not fit {path}: {_pydantic_reason(exc)}") from None


# --- rules ------------------------------------------------------------------------------------

_HOOK_SPEC = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")


def _import_hook(spec: str) -> Hook:
    if not _HOOK_SPEC.fullmatch(spec):
        raise ValueError(f"hook {spec!r} must look like 'package.module:function'")
    module_name, function_name = spec.split(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # any import failure is a configuration error, named as such
        raise ValueError(f"hook {spec!r}: cannot import {module_name!r} ({exc})") from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise ValueError(f"hook {spec!r}: {module_name} has no function {function_name!r}")
    hook: Hook = function
    return hook


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str = Field(min_length=1)
    when: dict[str, Condition] = Field(default_factory=dict)
    set_: dict[str, SetValue] = Field(default_factory=dict, alias="set")
    hook: str | None = None
    _hook: Hook | None = PrivateAttr(default=None)

    @field_validator("name")
    @classmethod
    def _readable_name(cls, name: str) -> str:
        if not name.strip():
            raise ValueError("a rule name cannot be blank")
        return name.strip()

    @field_validator("when", mode="before")
    @classmethod
    def _check_when_paths(cls, when: Any) -> Any:
        if isinstance(when, dict):
            for path in when:
                check_read_path(path)
        return when

    @field_validator("set_", mode="before")
    @classmethod
    def _compile_set(cls, raw: Any) -> Any:
        if not isinstance(raw, dict):
            return raw  # pydantic says it is not a mapping
        compiled: dict[str, SetValue] = {}
        for path, value in raw.items():
            try:
                check_write_path(path)
                compiled[path] = compile_set_value(value)
                _check_literal_type(path, compiled[path])
            except ValueError as exc:
                message = str(exc)
                raise ValueError(message if path in message else f"{path}: {message}") from None
        return compiled

    @model_validator(mode="after")
    def _has_something_to_do(self) -> Self:
        if not self.set_ and self.hook is None:
            raise ValueError("the rule does nothing: give it 'set' or 'hook'")
        if self.hook is not None:
            self._hook = _import_hook(self.hook)
        return self

    def matches(self, view: Mapping[str, Any]) -> bool:
        return all(condition.holds(lookup(view, path)) for path, condition in self.when.items())

    def assignments(self, view: Mapping[str, Any]) -> dict[str, Any]:
        """Write path → JSON value, all computed from the same view; RuleNotApplicable if not."""
        values = {path: value.compute(view) for path, value in self.set_.items()}
        if self._hook is not None:
            values.update(self._call_hook(view))
        return values

    def _call_hook(self, view: Mapping[str, Any]) -> dict[str, Any]:
        try:
            result = self._hook(copy.deepcopy(dict(view))) if self._hook else None
        except Exception as exc:  # a broken hook holds the document, it does not crash the run
            raise RuleNotApplicable(f"hook {self.hook} raised {type(exc).__name__}: {exc}") from exc
        if result is None:
            return {}
        if not isinstance(result, Mapping):
            raise RuleNotApplicable(
                f"hook {self.hook} returned {type(result).__name__}, not a dict"
            )
        for path in result:
            try:
                check_write_path(path)
            except ValueError as exc:
                raise RuleNotApplicable(f"hook {self.hook} returned a bad path: {exc}") from None
        return dict(result)


# --- outcome ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldChange:
    path: str
    before: Any
    after: Any


@dataclass(frozen=True)
class RulesOutcome:
    #: The complete PUT body: ``to_write_shape(item)`` with the sets applied.
    write: InboxDocumentWrite
    applied: tuple[str, ...] = ()
    changes: tuple[FieldChange, ...] = ()
    #: (rule name, reason) for rules whose conditions held but that could not apply.
    failed: tuple[tuple[str, str], ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.changes)


def diff_json(before: Any, after: Any, path: str = "") -> list[FieldChange]:
    """Leaf-level differences between two JSON values (lists compare whole)."""
    if isinstance(before, dict) and isinstance(after, dict):
        changes: list[FieldChange] = []
        for key in [*before, *(k for k in after if k not in before)]:
            child = f"{path}.{key}" if path else str(key)
            changes += diff_json(before.get(key), after.get(key), child)
        return changes
    if before == after and type(before) is type(after):
        return []
    return [FieldChange(path, before, after)]


def _write_to_view_path(path: str) -> str:
    return "document.owner" if path == "document.ownerId" else path


def _reflect_in_view(
    view: dict[str, Any], written: Mapping[str, Any], paths: Iterable[str]
) -> None:
    """Let later rules see what this one set: the validated value, in the read shape's place."""
    for path in paths:
        value = get_path(written, path)
        if path == "document.ownerId":
            value = None if value is None else {"id": value}
        _assign(view, _write_to_view_path(path), copy.deepcopy(value))


class RuleSet(BaseModel):
    """An ordered list of rules, validated at load and applied to one inbox item at a time."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rules: list[Rule] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_names(self) -> Self:
        first_index: dict[str, int] = {}
        for index, rule in enumerate(self.rules):
            if rule.name in first_index:
                raise ValueError(
                    f"rule #{index + 1} {rule.name!r}: name: rule #{first_index[rule.name] + 1} "
                    "has the same name; names must be unique (they are what the audit log shows)"
                )
            first_index[rule.name] = index
        return self

    # --- loading ---

    @classmethod
    def empty(cls) -> RuleSet:
        return cls(rules=[])

    @classmethod
    def from_text(cls, text: str, *, source: str = "<rules>") -> RuleSet:
        """Rules from JSON, or YAML when PyYAML is importable; RulesConfigError on any problem."""
        data = _parse_text(text, source)
        return cls.from_data(data, source=source)

    @classmethod
    def from_file(cls, path: str | Path) -> RuleSet:
        file = Path(path)
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise RulesConfigError(f"{file}: cannot read the rules file ({exc.strerror})") from None
        return cls.from_text(text, source=str(file))

    @classmethod
    def from_data(cls, data: Any, *, source: str = "<rules>") -> RuleSet:
        if not isinstance(data, dict):
            raise RulesConfigError(f"{source}: expected a mapping with a 'rules' list at the top")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise RulesConfigError(_describe_errors(exc, data, source)) from None

    # --- applying ---

    def apply(self, item: InboxItem) -> RulesOutcome:
        original = to_write_shape(item)
        current = original
        view = item.model_dump(mode="json")
        applied: list[str] = []
        failed: list[tuple[str, str]] = []
        for rule in self.rules:
            if not rule.matches(view):
                continue
            try:
                updated, changed_paths = _apply_rule(rule, current, view)
            except RuleNotApplicable as exc:
                failed.append((rule.name, str(exc)))
                continue
            if changed_paths:
                current = updated
                applied.append(rule.name)
        changes = diff_json(original.to_json(), current.to_json())
        return RulesOutcome(current, tuple(applied), tuple(changes), tuple(failed))


def _apply_rule(
    rule: Rule, current: InboxDocumentWrite, view: dict[str, Any]
) -> tuple[InboxDocumentWrite, list[str]]:
    """All of one rule's sets, validated as a whole write body; the view follows."""
    values = rule.assignments(view)
    candidate = current.model_dump(mode="python")
    for path, value in values.items():
        _assign(candidate, path, value)
    try:
        updated = InboxDocumentWrite.model_validate(candidate)
    except ValidationError as exc:
        raise RuleNotApplicable(
            f"the result is not a valid update: {_pydantic_reason(exc)}"
        ) from None
    before, after = current.to_json(), updated.to_json()
    changed = [path for path in values if get_path(before, path) != get_path(after, path)]
    _reflect_in_view(view, after, changed)
    return updated, changed


# --- parsing and error messages ---------------------------------------------------------------


def _parse_text(text: str, source: str) -> Any:
    if text.lstrip().startswith(("{", "[")):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise RulesConfigError(
                f"{source}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
            ) from None
    return _parse_yaml(text, source)


def _parse_yaml(text: str, source: str) -> Any:
    try:
        import yaml  # optional: present on workstations, absent in Lambda
    except ImportError:
        raise RulesConfigError(
            f"{source}: not JSON, and YAML needs PyYAML, which is not installed here "
            "(Lambda takes rules as JSON only)"
        ) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RulesConfigError(f"{source}: not valid YAML ({exc})") from None
    return _dates_as_iso(data)


def _dates_as_iso(value: Any) -> Any:
    """YAML reads 2024-01-31 as a date; rules speak JSON, where dates are ISO strings."""
    if isinstance(value, dict):
        return {key: _dates_as_iso(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_dates_as_iso(item) for item in value]
    if isinstance(value, date):
        return value.isoformat()
    return value


def _rule_label(data: Mapping[str, Any], index: int) -> str:
    rules = data.get("rules")
    raw = rules[index] if isinstance(rules, list) and index < len(rules) else None
    name = raw.get("name") if isinstance(raw, dict) else None
    return f"rule #{index + 1} {name!r}" if isinstance(name, str) else f"rule #{index + 1}"


def _describe_errors(exc: ValidationError, data: Mapping[str, Any], source: str) -> str:
    lines = []
    for error in exc.errors()[:10]:
        loc = list(error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = f"unknown key {loc[-1]!r}"
        if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int):
            where = _rule_label(data, loc[1])
            field = ".".join(str(part) for part in loc[2:] if not _is_union_tag(part))
            lines.append(f"{where}: {field}: {message}" if field else f"{where}: {message}")
        else:
            lines.append(f"{'.'.join(map(str, loc))}: {message}" if loc else message)
    return f"{source}: " + "\n  ".join(lines)


def _is_union_tag(part: Any) -> bool:
    """Pydantic names union members in error locations; they mean nothing to a rule author."""
    return isinstance(part, str) and part in _UNION_TAGS


_UNION_TAGS: frozenset[str] = frozenset(
    {"LiteralValue", "Template", "DaysAfter", "MonthsAfter", "EndOfMonth"}
)


# --- where rules come from -------------------------------------------------------------------


def load_default_rules() -> RuleSet:
    """The conservative rules shipped inside the package (works from /opt/python in Lambda)."""
    return RuleSet.from_text(bundled_rules_text(), source=DEFAULT_RULES_RESOURCE)


def load_rules(
    source: str | None, *, fetch_parameter: Callable[[str], str] | None = None
) -> RuleSet:
    """None or "" → the packaged default; ``ssm:/name`` → ``fetch_parameter(name)``; else a file.

    Fetching from SSM is the caller's (the processor uses Powertools parameters, cached), so this
    module needs no AWS client and the dry-run CLI no AWS at all.
    """
    if not source:
        return load_default_rules()
    if source.startswith(SSM_PREFIX):
        name = source.removeprefix(SSM_PREFIX)
        if fetch_parameter is None:
            raise RulesConfigError(
                f"{source}: rules in SSM need a parameter fetcher; save them to a file for the CLI"
            )
        return RuleSet.from_text(fetch_parameter(name), source=source)
    return RuleSet.from_file(source)


__all__ = [
    "FieldChange",
    "Rule",
    "RuleSet",
    "RulesConfigError",
    "RulesOutcome",
    "check_read_path",
    "check_write_path",
    "get_path",
    "load_default_rules",
    "load_rules",
    "lookup",
]
