"""Rules applied to one inbox item: the PUT body it gets, and what changed, by which rule.

Rules apply in order, each to the view as the earlier ones left it. A rule's values are computed
from the view before it and validated as a whole write body, so a rule applies entirely or not
at all; one that cannot apply is recorded as failed (the processor holds the document).
"""

from __future__ import annotations

import copy
import importlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from ..models import InboxDocumentWrite, InboxItem, to_write_shape
from ..validation import summary
from .conditions import Condition
from .exceptions import RuleNotApplicable
from .paths import assign, check_read_path, check_write_path, get_path, lookup
from .values import SetValue, check_literal_type, compile_set_value

#: A rule's ``hook``: the view (a copy) in, write path → value out (or None for nothing).
Hook = Callable[[dict[str, Any]], Mapping[str, Any] | None]

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
                check_literal_type(path, compiled[path])
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
        assign(view, _write_to_view_path(path), copy.deepcopy(value))


def apply_rules(rules: Sequence[Rule], item: InboxItem) -> RulesOutcome:
    """The rules in order over one item; a rule that cannot apply is recorded, not raised."""
    original = to_write_shape(item)
    current = original
    view = item.model_dump(mode="json")
    applied: list[str] = []
    failed: list[tuple[str, str]] = []
    for rule in rules:
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
        assign(candidate, path, value)
    try:
        updated = InboxDocumentWrite.model_validate(candidate)
    except ValidationError as exc:
        raise RuleNotApplicable(f"the result is not a valid update: {summary(exc)}") from None
    before, after = current.to_json(), updated.to_json()
    changed = [path for path in values if get_path(before, path) != get_path(after, path)]
    _reflect_in_view(view, after, changed)
    return updated, changed
