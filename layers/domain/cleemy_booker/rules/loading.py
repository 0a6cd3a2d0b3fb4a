"""Where rules come from (the bundled default, a file, SSM) and what their author is told.

``RuleSet`` is a rules file as a whole: parsed from JSON (or YAML on a workstation), validated,
and refused with a ``RulesConfigError`` naming the source, the rule and the field, because the
person reading it is the one who wrote the file, not the one who wrote this code.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import date
from pathlib import Path
from typing import Any, Self, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..fingerprint import DEFAULT_RULES_RESOURCE, SSM_PREFIX, bundled_rules_text
from ..models import InboxItem
from ..validation import Location, error_lines
from .engine import Rule, RulesOutcome, apply_rules
from .exceptions import RulesConfigError
from .values import SetValue


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
        return apply_rules(self.rules, item)


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


def _describe_errors(exc: ValidationError, data: Mapping[str, Any], source: str) -> str:
    lines = error_lines(exc, limit=10, where=lambda loc: _rule_location(data, loc))
    return f"{source}: " + "\n  ".join(lines)


def _rule_location(data: Mapping[str, Any], loc: Location) -> str | None:
    """``rule #2 'label': set`` for an error inside a rule; None (the dotted path) elsewhere."""
    if len(loc) < 2 or loc[0] != "rules" or not isinstance(loc[1], int):
        return None
    where = _rule_label(data, loc[1])
    field = ".".join(str(part) for part in loc[2:] if not _is_union_tag(part))
    return f"{where}: {field}" if field else where


def _rule_label(data: Mapping[str, Any], index: int) -> str:
    rules = data.get("rules")
    raw = rules[index] if isinstance(rules, list) and index < len(rules) else None
    name = raw.get("name") if isinstance(raw, dict) else None
    return f"rule #{index + 1} {name!r}" if isinstance(name, str) else f"rule #{index + 1}"


def _is_union_tag(part: int | str) -> bool:
    """Pydantic names union members in error locations; they mean nothing to a rule author."""
    return isinstance(part, str) and part in _UNION_TAGS


#: The members of ``SetValue`` by name, read from the union so a new kind of value is covered.
_UNION_TAGS = frozenset(member.__name__ for member in get_args(SetValue))


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
