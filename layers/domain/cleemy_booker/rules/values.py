"""Set values: what a rule writes into a field, computed from the view.

A ``set`` value is a literal, a template (``"Invoice {document.documentNumber}"``) or a date
spec (``{days_after: document.documentDate, days: 30}``). Each is read and checked when the rules
load; computing one for a document raises ``RuleNotApplicable`` when the document lacks what it
needs (a null in a template, a date that is not one), so the rule is skipped, not guessed.
"""

from __future__ import annotations

import calendar
import copy
import string
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from ..models import KNOWN_VALUES, WriteDocument
from ..validation import summary
from .exceptions import RuleNotApplicable
from .paths import check_read_path, lookup
from .scalars import JsonValue, as_date, as_text


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
            f"bad date spec {raw!r}: {summary(exc)}; use {{days_after: <path>, days: N}}, "
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
            raise ValueError(summary(exc)) from None
    return LiteralValue(value=raw)


def check_literal_type(path: str, value: SetValue) -> None:
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
        raise ValueError(f"{value.value!r} does not fit {path}: {summary(exc)}") from None
