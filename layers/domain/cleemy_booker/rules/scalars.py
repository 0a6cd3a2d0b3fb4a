"""JSON values read as text, numbers and dates, and compared the way an accountant means it.

Shared by conditions (``equals``, ``regex``, ``gte``) and set values (templates, date specs), so
that a rule's ``when`` and its ``set`` read a field alike.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

#: Any JSON value, as a rule writes it: a literal to set, or one a condition compares with.
JsonValue = Any


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


def same(left: Any, right: Any) -> bool:
    """Equality as an accountant means it: 120 == 120.0 == "120.00"; true is not 1."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if isinstance(left, int | float | Decimal) or isinstance(right, int | float | Decimal):
        a, b = as_decimal(left), as_decimal(right)
        return a is not None and b is not None and a == b
    return bool(left == right)


def compare(value: Any, bound: Any) -> int | None:
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


def comparable_bound(value: Any) -> Any:
    """Comparison operands are numbers or ISO dates, checked at load."""
    if isinstance(value, str) and len(value) == 10 and as_date(value) is not None:
        return value
    if as_decimal(value) is None:
        raise ValueError(f"{value!r} is neither a number nor an ISO date (YYYY-MM-DD)")
    return value
