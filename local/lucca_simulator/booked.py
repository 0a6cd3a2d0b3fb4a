"""``GET /cleemy-procurement/api/booked-documents``: where a booked document shows later.

Facts (lucca-api.md): the endpoint exists; it filters on ``createdAt.from``,
``invoice.conformityStates`` and ``creditNote.conformityStates``; it pages like every v4 list
(``limit``/``page`` from 1, at most 1000 a page, ``fields.root=count``, ``limit=0`` for the
count alone). Lucca publishes neither its item shape nor how an inbox item maps to it, so the
simulator makes these inferences, here and nowhere else:

* a booked document is the inbox item's ``document`` as booked, keyed by ``document.id``;
* its ``createdAt`` is the booking time (the other reading, the document's own creation, is
  earlier, so a client's ``createdAt.from`` that holds for this one holds for both);
* it carries ``invoice: {conformityState}`` (or ``creditNote``), as the filters' names say;
  every document starts ``ToReview`` (the first state Lucca lists);
* ``createdAt.from`` takes a day (compared with the creation day in the tenant's Paris time)
  or a date-time; a filter on one type's conformity states leaves the other type alone;
* items come in the order of their ids.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from .clock import format_ticks, paris_offset, parse_timestamp
from .listing import QueryError, parse_paging

#: Lucca's conformity states of a booked document (published on the invoice's reference).
CONFORMITY_STATES = (
    "ToReview",
    "PendingBreakdown",
    "Confirmed",
    "Litigation",
    "Discarded",
    "Removed",
    "Bypassed",
)
FIRST_CONFORMITY_STATE = "ToReview"
_STATE_FILTERS = {
    "invoice.conformityStates": "invoice",
    "creditNote.conformityStates": "creditNote",
}
SUPPORTED_PARAMETERS: frozenset[str] = frozenset(
    {"limit", "page", "fields.root", "createdAt.from", *_STATE_FILTERS}
)

Predicate = Callable[[dict[str, Any]], bool]


@dataclass
class BookedQuery:
    limit: int
    page: int
    with_count: bool
    predicates: list[Predicate] = field(default_factory=list)

    def matches(self, booked: dict[str, Any]) -> bool:
        return all(predicate(booked) for predicate in self.predicates)


def booked_document(item: dict[str, Any], booked_ticks: int) -> dict[str, Any]:
    """The booked document an inbox item becomes (the inferences above)."""
    document: dict[str, Any] = copy.deepcopy(item["document"])
    document["createdAt"] = format_ticks(booked_ticks)
    kind = "creditNote" if document.get("type") == "CreditNote" else "invoice"
    document[kind] = {"conformityState": FIRST_CONFORMITY_STATE}
    return document


def booked_page(documents: Iterable[dict[str, Any]], query: BookedQuery) -> dict[str, Any]:
    """One page of the booked documents matching ``query``, in id order."""
    matching = sorted((d for d in documents if query.matches(d)), key=lambda d: d["id"])
    start = (query.page - 1) * query.limit
    payload: dict[str, Any] = {}
    if query.with_count:
        payload["count"] = len(matching)
    payload["items"] = matching[start : start + query.limit] if query.limit else []
    return payload


def parse_booked_query(
    params: dict[str, list[str]], default_limit: int, max_limit: int
) -> BookedQuery:
    """Raises ``QueryError`` naming the offending parameter."""
    limit, page, with_count = parse_paging(params, SUPPORTED_PARAMETERS, default_limit, max_limit)
    query = BookedQuery(limit=limit, page=page, with_count=with_count)
    for value in params.get("createdAt.from", []):
        query.predicates.append(_created_from(value))
    for name, kind in _STATE_FILTERS.items():
        for value in params.get(name, []):
            query.predicates.append(_states(name, kind, value))
    return query


def _created_from(value: str) -> Predicate:
    text = value.strip()
    try:
        bound: date | datetime = (
            datetime.fromisoformat(text) if "T" in text else date.fromisoformat(text)
        )
    except ValueError:
        raise QueryError("createdAt.from", f"'{text}' is not a date.") from None

    def at_or_after(booked: dict[str, Any]) -> bool:
        created = parse_timestamp(booked.get("createdAt"))
        if created is None:
            return False
        if isinstance(bound, datetime):
            if bound.tzinfo is None:  # a naive bound reads as the tenant's local time
                return created.replace(tzinfo=None) >= bound
            return created >= bound
        utc = created.astimezone(UTC) if created.tzinfo else created.replace(tzinfo=UTC)
        return (utc + paris_offset(utc)).date() >= bound

    return at_or_after


def _states(name: str, kind: str, value: str) -> Predicate:
    wanted = {part.strip() for part in value.split(",")}
    unknown = sorted(wanted - set(CONFORMITY_STATES))
    if unknown or not all(wanted):
        raise QueryError(name, f"Unknown value(s) for {name}: {', '.join(unknown) or '(empty)'}.")

    def in_states(booked: dict[str, Any]) -> bool:
        own = booked.get(kind)
        return own is None or own.get("conformityState") in wanted

    return in_states
