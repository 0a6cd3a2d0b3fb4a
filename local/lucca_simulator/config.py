"""The simulator's settings: one dataclass, validated on every change.

Settings come from Python keyword arguments, the command line and admin JSON bodies, so every
change goes through ``SimulatorConfig.updated``: JSON numbers and lists are coerced to the field's
type and every value is range-checked there, in one place.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

#: Ground-truth categories of generated documents and their default share of the inbox.
DEFAULT_CATEGORY_WEIGHTS: dict[str, float] = {
    "ready": 0.55,
    "ready_needs_label": 0.10,
    "credit_note": 0.05,
    "ocr_pending": 0.08,
    "ocr_failed": 0.03,
    "incomplete": 0.07,
    "amounts_mismatch": 0.07,
    "book_rejected": 0.05,
}
#: Categories a test or a run asks for by weight; none of the default inbox is drawn from them,
#: so a seed's default inbox (and every figure measured on it) stays what it was.
#: ``currency_invalid``: a complete, consistent document whose every amount is in
#: ``invalid_currency`` (Lucca's published examples all read ``"Invalid"``).
OPT_IN_CATEGORIES: frozenset[str] = frozenset({"currency_invalid"})
CATEGORIES: frozenset[str] = frozenset(DEFAULT_CATEGORY_WEIGHTS) | OPT_IN_CATEGORIES

#: Faults the injector knows. 502 is available but off by default (weight 0).
FAULT_KINDS: tuple[str, ...] = ("408", "429", "500", "502", "503", "drop", "slow")
DEFAULT_FAULT_KINDS: dict[str, float] = {
    "408": 1.0,
    "429": 1.0,
    "500": 1.0,
    "503": 1.0,
    "drop": 1.0,
    "slow": 1.0,
}
API_ENDPOINTS: tuple[str, ...] = ("list", "get", "put", "book", "booked")
RETRY_AFTER_FORMATS: frozenset[str] = frozenset({"seconds", "http-date"})
#: Which of Lucca's two published PUT bodies the server follows (see writeshape.py).
WRITE_SHAPE_LUCCA_FR = "lucca.fr"
WRITE_SHAPE_LUCCASOFTWARE = "luccasoftware.com"
WRITE_SHAPES: frozenset[str] = frozenset({WRITE_SHAPE_LUCCA_FR, WRITE_SHAPE_LUCCASOFTWARE})

# --- What nobody outside Lucca knows (lucca-api.md "Unknowns" and "Inferences") ----------------
# The simulator must not share a guess with the code it tests: each setting below plays one
# answer Lucca might give, and the invariant tests (tests/integration/test_unknowns.py) run the
# pipeline under each of them.
GET_ROUTE_PRESENT = "present"
GET_ROUTE_ABSENT = "absent"
GET_ROUTES: frozenset[str] = frozenset({GET_ROUTE_PRESENT, GET_ROUTE_ABSENT})
#: What a route that does not exist answers. ASP.NET (Web API 2 and Core's endpoint routing
#: alike) answers 405 when the path matches a route of another method (PUT does exist on it);
#: a 404 is what a gateway routing on method and path, or an app without that matcher, answers.
ABSENT_GET_STATUSES: frozenset[int] = frozenset({404, 405})
#: FACT: ``GET /cleemy-procurement/api/documents/{id}`` is published ("Retrieve a document by
#: its ID") and answers an inbox item's ``document`` part. UNKNOWN: which id it takes (the
#: item's ``id`` or ``document.id``), and whether every tenant serves it. "absent" plays a tenant
#: that does not (``absent_published_status``: 404, a gateway that routes on method and path, or
#: 405 with ``Allow: PUT``, since the published PUT shares the path).
PUBLISHED_ROUTES: frozenset[str] = frozenset({GET_ROUTE_PRESENT, GET_ROUTE_ABSENT})
PUBLISHED_KEY_DOCUMENT = "document"
PUBLISHED_KEY_ITEM = "item"
PUBLISHED_KEYS: frozenset[str] = frozenset({PUBLISHED_KEY_DOCUMENT, PUBLISHED_KEY_ITEM})
SECOND_BOOK_STATUSES: frozenset[int] = frozenset({400, 404})
LISTING_ORDERS: frozenset[str] = frozenset({"id", "reverse", "shuffled"})
NEW_DOCUMENTS: frozenset[str] = frozenset({"in_order", "first", "last"})

#: Settings that shape the generated inbox: they only take effect through a reset.
INBOX_SETTINGS: frozenset[str] = frozenset(
    {"invoices", "seed", "category_weights", "first_id", "document_id_offset", "invalid_currency"}
)
#: Settings fixed for the life of the server.
FIXED_SETTINGS: frozenset[str] = frozenset({"port"})


class ConfigError(ValueError):
    """A setting was unknown or out of range; the message names it."""


@dataclass(frozen=True)
class SimulatorConfig:
    # --- the inbox (applied by reset) ---
    invoices: int = 200
    seed: int = 7
    category_weights: dict[str, float] = field(
        default_factory=lambda: dict(DEFAULT_CATEGORY_WEIGHTS)
    )
    first_id: int = 10001
    # FACT: an inbox item has an ``id`` and its nested ``document`` has another ``id``.
    # UNKNOWN: how the two relate. INFERENCE (models.InboxItem.document_id): the
    # ``inbox-documents/{id}`` URLs take the item's ``id``. Generated documents get
    # ``document.id = id + document_id_offset``, so code that sends the nested id asks for a
    # document that does not exist (404) instead of passing every test by coincidence. 0 plays
    # "the same number" (every id of the generated inbox then also names its document).
    # Items added verbatim (``add_items``) keep the ids they were given.
    document_id_offset: int = 500_000
    # The currency of every amount of a ``currency_invalid`` document: Lucca's "Invalid", or any
    # other text that is not an ISO 4217 code ("EURO", "€", "eur"...).
    invalid_currency: str = "Invalid"
    # --- the server ---
    port: int = 0
    api_key: str = "sim-api-key"
    # Lucca aborts a request running over 5 s with a 408.
    server_timeout_seconds: float = 5.0
    latency_ms: float = 0.0
    default_page_size: int = 100
    max_page_size: int = 1000
    book_success_status: int = 200
    # developers.lucca.fr's PUT body (type, purchase type, currencies, payment method writable)
    # or developers.luccasoftware.com's (those four not bound, and not in the PUT response).
    write_shape: str = WRITE_SHAPE_LUCCA_FR
    # INFERENCE: ``GET /cleemy-procurement/services/inbox-documents/{id}`` returns one item (the
    # PUT and book URLs share that path; it is not in the public reference). "absent" plays the
    # inference being wrong: every GET of one document answers ``absent_get_status``, whatever
    # the id. 405 (with ``Allow: PUT``) is what Lucca's .NET stack most plausibly answers; 404
    # is the dangerous variant, indistinguishable from "this document left the inbox".
    get_route: str = GET_ROUTE_PRESENT
    absent_get_status: int = 405
    # The published read of one document (PUBLISHED_ROUTES above): served or not, and keyed by
    # the nested ``document.id`` ("document", what its page calls "the document's id") or by
    # the item's ``id`` ("item"). It answers the document part of an item in the inbox, and a
    # problem+json 404 for an id that names none (what it answers for a booked document is not
    # published: here, the same 404 as the inferred route).
    published_route: str = GET_ROUTE_PRESENT
    published_key: str = PUBLISHED_KEY_DOCUMENT
    absent_published_status: int = 404
    # INFERENCE: booking a document no longer in the inbox (already booked) answers a 4xx,
    # "400 or 404"; which one is UNKNOWN. A document that never existed answers 404 either way.
    second_book: int = 404
    # UNKNOWN: whether and how the inbox list sorts. "id": by item id; "reverse": newest id
    # first; "shuffled": a new order on every request (the worst a missing ORDER BY can do:
    # pages overlap and skip even when nothing changes). ``new_documents`` places documents
    # added after the seeded inbox: "in_order" where the order puts them (by id: last, as
    # new ids are higher), "first" before every earlier one (each arrival shifts every page),
    # "last" after them; within one addition the order above applies.
    listing_order: str = "id"
    new_documents: str = "in_order"
    # --- the per-tenant rate limit (Lucca: 50 requests per 60 s, shared by integrations) ---
    rate_limit: int = 50
    window_seconds: float = 60.0
    external_requests_per_window: int = 0
    retry_after_format: str = "seconds"
    # --- fault injection ---
    fault_rate: float = 0.0
    fault_kinds: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_FAULT_KINDS))
    fault_endpoints: tuple[str, ...] = API_ENDPOINTS
    slow_seconds: float = 6.0
    # Retry-After sent with an injected 429 (the real limiter computes its own).
    fault_retry_after_seconds: int = 1

    def __post_init__(self) -> None:
        _validate(self)

    def updated(self, changes: dict[str, Any]) -> SimulatorConfig:
        """A copy with ``changes`` applied (coerced from JSON types, then validated)."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - names)
        if unknown:
            raise ConfigError(f"unknown setting(s): {', '.join(unknown)}")
        coerced = {name: _coerce(name, value) for name, value in changes.items()}
        return dataclasses.replace(self, **coerced)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["fault_endpoints"] = list(self.fault_endpoints)
        return data


_FLOAT_FIELDS = frozenset(
    {"server_timeout_seconds", "latency_ms", "window_seconds", "fault_rate", "slow_seconds"}
)
_INT_FIELDS = frozenset(
    {
        "invoices",
        "seed",
        "first_id",
        "document_id_offset",
        "absent_get_status",
        "absent_published_status",
        "second_book",
        "port",
        "default_page_size",
        "max_page_size",
        "book_success_status",
        "rate_limit",
        "external_requests_per_window",
        "fault_retry_after_seconds",
    }
)
_WEIGHT_FIELDS = frozenset({"category_weights", "fault_kinds"})


def _coerce(name: str, value: Any) -> Any:
    """Turn a JSON or command-line value into the field's type, or say why it cannot be."""
    if name in _FLOAT_FIELDS:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{name} must be a number")
        return float(value)
    if name in _INT_FIELDS:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{name} must be an integer")
        return value
    if name in _WEIGHT_FIELDS:
        if not isinstance(value, dict):
            raise ConfigError(f"{name} must be an object of weights")
        return {str(key): _coerce_weight(name, weight) for key, weight in value.items()}
    if name == "fault_endpoints":
        if isinstance(value, str):
            value = [part for part in value.split(",") if part]
        if not isinstance(value, list | tuple):
            raise ConfigError("fault_endpoints must be a list")
        return tuple(str(part) for part in value)
    if not isinstance(value, str):
        raise ConfigError(f"{name} must be a string")
    return value


def _coerce_weight(name: str, weight: Any) -> float:
    if isinstance(weight, bool) or not isinstance(weight, int | float):
        raise ConfigError(f"{name} weights must be numbers")
    return float(weight)


def _validate(config: SimulatorConfig) -> None:
    """Range checks; each message names the setting."""
    checks: list[tuple[bool, str]] = [
        (config.invoices >= 0, "invoices must be >= 0"),
        (config.first_id >= 1, "first_id must be >= 1"),
        (config.document_id_offset >= 0, "document_id_offset must be >= 0"),
        (config.get_route in GET_ROUTES, f"get_route must be one of {_names(GET_ROUTES)}"),
        (
            config.absent_get_status in ABSENT_GET_STATUSES,
            f"absent_get_status must be one of {_names(ABSENT_GET_STATUSES)}",
        ),
        (
            config.published_route in PUBLISHED_ROUTES,
            f"published_route must be one of {_names(PUBLISHED_ROUTES)}",
        ),
        (
            config.published_key in PUBLISHED_KEYS,
            f"published_key must be one of {_names(PUBLISHED_KEYS)}",
        ),
        (
            config.absent_published_status in ABSENT_GET_STATUSES,
            f"absent_published_status must be one of {_names(ABSENT_GET_STATUSES)}",
        ),
        (bool(config.invalid_currency.strip()), "invalid_currency must not be empty"),
        (
            config.second_book in SECOND_BOOK_STATUSES,
            f"second_book must be one of {_names(SECOND_BOOK_STATUSES)}",
        ),
        (
            config.listing_order in LISTING_ORDERS,
            f"listing_order must be one of {_names(LISTING_ORDERS)}",
        ),
        (
            config.new_documents in NEW_DOCUMENTS,
            f"new_documents must be one of {_names(NEW_DOCUMENTS)}",
        ),
        (0 <= config.port <= 65535, "port must be 0..65535"),
        (bool(config.api_key), "api_key must not be empty"),
        (config.server_timeout_seconds > 0, "server_timeout_seconds must be > 0"),
        (config.latency_ms >= 0, "latency_ms must be >= 0"),
        (1 <= config.default_page_size <= config.max_page_size, "default_page_size out of range"),
        (config.book_success_status in (200, 204), "book_success_status must be 200 or 204"),
        (config.rate_limit >= 1, "rate_limit must be >= 1"),
        (config.window_seconds > 0, "window_seconds must be > 0"),
        (config.external_requests_per_window >= 0, "external_requests_per_window must be >= 0"),
        (config.retry_after_format in RETRY_AFTER_FORMATS, "retry_after_format unknown"),
        (config.write_shape in WRITE_SHAPES, f"write_shape must be one of {_shapes()}"),
        (0.0 <= config.fault_rate <= 1.0, "fault_rate must be within 0..1"),
        (config.slow_seconds >= 0, "slow_seconds must be >= 0"),
        (config.fault_retry_after_seconds >= 1, "fault_retry_after_seconds must be >= 1"),
        (set(config.fault_endpoints) <= set(API_ENDPOINTS), "fault_endpoints unknown"),
    ]
    checks += _weight_checks("category_weights", config.category_weights, CATEGORIES)
    checks += _weight_checks("fault_kinds", config.fault_kinds, frozenset(FAULT_KINDS))
    for ok, message in checks:
        if not ok:
            raise ConfigError(message)


def _shapes() -> str:
    return _names(WRITE_SHAPES)


def _names(values: frozenset[str] | frozenset[int]) -> str:
    return ", ".join(str(value) for value in sorted(values))


def _weight_checks(
    name: str, weights: dict[str, float], allowed: frozenset[str]
) -> list[tuple[bool, str]]:
    unknown = sorted(set(weights) - allowed)
    values = list(weights.values())
    return [
        (not unknown, f"{name}: unknown key(s) {', '.join(unknown)}"),
        (all(math.isfinite(v) and v >= 0 for v in values), f"{name}: weights must be >= 0"),
        (sum(values) > 0, f"{name}: at least one weight must be > 0"),
    ]
