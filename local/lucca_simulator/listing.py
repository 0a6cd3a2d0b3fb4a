"""Query of ``GET /cleemy-procurement/services/inbox``: paging, count and the supported filters.

Lucca's v4 endpoints reject filters outside their reference; which ones the inbox accepts is not
published, so the simulator accepts a small plausible set and answers 400 for anything else:
a client that relies on an unlisted filter finds out here rather than in production.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from .clock import parse_timestamp

OCR_STATUSES = ("Pending", "Processing", "Processed", "Failed", "NotApplicable")
DOCUMENT_TYPES = ("Invoice", "CreditNote")
SUPPORTED_PARAMETERS: frozenset[str] = frozenset(
    {"limit", "page", "fields.root", "document.type", "document.ocrStatus", "createdAt", "id"}
)

Predicate = Callable[[dict[str, Any]], bool]


class QueryError(ValueError):
    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter
        self.message = message


@dataclass
class ListQuery:
    limit: int
    page: int
    with_count: bool
    predicates: list[Predicate] = field(default_factory=list)

    def matches(self, item: dict[str, Any]) -> bool:
        return all(predicate(item) for predicate in self.predicates)


def parse_list_query(params: dict[str, list[str]], default_limit: int, max_limit: int) -> ListQuery:
    """Raises ``QueryError`` naming the offending parameter."""
    limit, page, with_count = parse_paging(params, SUPPORTED_PARAMETERS, default_limit, max_limit)
    query = ListQuery(limit=limit, page=page, with_count=with_count)
    for value in params.get("document.type", []):
        query.predicates.append(_in_filter("document.type", value, DOCUMENT_TYPES, "type"))
    for value in params.get("document.ocrStatus", []):
        statuses = _in_filter("document.ocrStatus", value, OCR_STATUSES, "ocrStatus")
        query.predicates.append(statuses)
    for value in params.get("id", []):
        query.predicates.append(_id_filter(value))
    for value in params.get("createdAt", []):
        query.predicates.append(_created_at_filter(value))
    return query


def parse_paging(
    params: dict[str, list[str]], supported: frozenset[str], default_limit: int, max_limit: int
) -> tuple[int, int, bool]:
    """A v4 list's paging, as every such endpoint reads it: ``limit``, ``page`` (from 1) and
    whether ``fields.root=count`` asks for the count; a parameter outside ``supported`` is
    refused. Raises ``QueryError`` naming the offending parameter."""
    for name in params:
        if name not in supported:
            raise QueryError(name, f"'{name}' is not a supported filter of this endpoint.")
    with_count = parse_fields_root(params.get("fields.root"))
    limit = parse_int(params, "limit", default_limit)
    if not 0 <= limit <= max_limit:
        raise QueryError("limit", f"limit must be between 0 and {max_limit}.")
    if limit == 0 and not with_count:
        raise QueryError("limit", "limit=0 only asks for the count: add fields.root=count.")
    page = parse_int(params, "page", 1)
    if page < 1:
        raise QueryError("page", "page starts at 1.")
    return limit, page, with_count


def parse_fields_root(values: list[str] | None) -> bool:
    if not values:
        return False
    for value in values:
        if any(part.strip() != "count" for part in value.split(",")):
            raise QueryError("fields.root", "fields.root only supports 'count'.")
    return True


def parse_int(params: dict[str, list[str]], name: str, default: int) -> int:
    values = params.get(name)
    if not values:
        return default
    try:
        return int(values[-1])
    except ValueError:
        raise QueryError(name, f"{name} must be an integer.") from None


def _split(parameter: str, value: str) -> list[str]:
    parts = [part.strip() for part in value.split(",")]
    if not all(parts):
        raise QueryError(parameter, f"{parameter} has an empty value.")
    return parts


def _in_filter(parameter: str, value: str, allowed: tuple[str, ...], key: str) -> Predicate:
    wanted = set(_split(parameter, value))
    unknown = sorted(wanted - set(allowed))
    if unknown:
        raise QueryError(parameter, f"Unknown value(s) for {parameter}: {', '.join(unknown)}.")
    return lambda item: item["document"].get(key) in wanted


def _id_filter(value: str) -> Predicate:
    try:
        wanted = {int(part) for part in _split("id", value)}
    except ValueError:
        raise QueryError("id", "id takes a comma-separated list of integers.") from None
    return lambda item: item.get("id") in wanted


def _created_at_filter(value: str) -> Predicate:
    """Lucca's comparison syntax: ``since,D``, ``until,D``, ``between,D1,D2`` or an exact day.

    A bare date compares with the creation day (``until,2026-03-31`` includes that whole day);
    a date-time compares instants.
    """
    operator, _, rest = value.partition(",")
    operands = _split("createdAt", rest) if rest else []
    expected = {"since": 1, "until": 1, "between": 2}
    if operator in expected and len(operands) == expected[operator]:
        bounds = [_parse_moment(operand) for operand in operands]
        low = bounds[0] if operator in ("since", "between") else None
        high = bounds[-1] if operator in ("until", "between") else None
    elif not operands:
        low = high = _parse_moment(operator)
    else:
        raise QueryError("createdAt", "createdAt takes since,D | until,D | between,D1,D2 | D.")
    return lambda item: _within(item.get("createdAt"), low, high)


def _parse_moment(text: str) -> date | datetime:
    try:
        if "T" in text:
            return datetime.fromisoformat(text)
        return date.fromisoformat(text)
    except ValueError:
        raise QueryError("createdAt", f"'{text}' is not a date.") from None


def _within(stamp: Any, low: date | datetime | None, high: date | datetime | None) -> bool:
    created = parse_timestamp(stamp)
    if created is None:
        return False
    return all(
        _compare(created, bound, at_least=is_low)
        for bound, is_low in ((low, True), (high, False))
        if bound is not None
    )


def _compare(created: datetime, bound: date | datetime, *, at_least: bool) -> bool:
    if isinstance(bound, datetime):
        if bound.tzinfo is None:  # a naive bound reads as the tenant's local time
            created = created.replace(tzinfo=None)
        return created >= bound if at_least else created <= bound
    day = created.date()  # the creation day in the tenant's (Paris) time
    return day >= bound if at_least else day <= bound
