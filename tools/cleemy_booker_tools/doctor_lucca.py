"""The doctor's look at the tenant: a few requests, taken from the stack's own request budget.

Lucca allows 50 requests a minute per tenant, shared with every other integration, so the
doctor's requests go through the same ``RequestBudget`` on the stack's budget table as the
functions' (``wiring.shared.build_client``): they wait their turn and count like any other.
It sends at most ``MAX_REQUESTS``, each once (no retry: a transient error is reported as such,
and the doctor never spends more than it says):

1. page 1 of the inbox as the poller asks for it (its page size and filters, the count riding
   on it): the key and its rights, the count, the page's shape, the fields and enumeration
   values this version does not know, the inbox's size and what a listing costs;
2. ``GET /cleemy-procurement/services/inbox-documents/{id}`` (inferred) on the page's first
   item, by its ``id``;
3. ``GET /cleemy-procurement/api/documents/{id}`` (published) on the same item, by its
   ``document.id``; which id the route takes is not published, so a 404 there is followed by
4. the same read by the item's id, when it differs.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import ValidationError

from cleemy_booker.budget import BudgetBusy
from cleemy_booker.client import LuccaClient
from cleemy_booker.config import PollerSettings
from cleemy_booker.endpoints import (
    DOCUMENT_PATH,
    INBOX_PATH,
    MAX_PAGE_SIZE,
    PUBLISHED_DOCUMENT_PATH,
)
from cleemy_booker.errors import (
    AuthError,
    InvalidResponseError,
    LuccaError,
    NotFoundError,
    PermanentError,
    RateLimitedError,
)
from cleemy_booker.models import Document, InboxItem
from cleemy_booker.novelty import novelties_in
from cleemy_booker.retry import RetryPolicy
from cleemy_booker.validation import summary
from cleemy_booker.wiring.aws import AwsClients
from cleemy_booker.wiring.shared import build_client
from cleemy_booker_tools.doctor_report import (
    Check,
    LuccaSpend,
    blocking,
    count_words,
    ok,
    warning,
)
from cleemy_booker_tools.doctor_resources import ApiKey
from cleemy_booker_tools.doctor_stack import AWS_ERRORS

#: The page, the inferred read, the published read (and, only when ``document.id`` answers 404
#: and the item's id differs, the published read by the item's id): never retried.
MAX_REQUESTS = 4
#: Statuses meaning "no such route" for a read of one document.
ABSENT = frozenset({404, 405})


@dataclass(frozen=True)
class Tenant:
    """What the doctor talks to Lucca with: the poller's settings and the key of its secret."""

    settings: PollerSettings
    key: ApiKey
    secret_name: str


class RequestCap:
    """A request hook that refuses any request past the doctor's stated maximum (before the
    budget reserves a slot for it)."""

    def __init__(self, most: int) -> None:
        self.most = most
        self.sent = 0

    def before_request(self, endpoint: str) -> None:
        if self.sent >= self.most:
            raise LuccaError(f"the doctor's {self.most} requests are spent", endpoint=endpoint)
        self.sent += 1

    def after_response(self, endpoint: str, status: int | None, retry_after: float | None) -> None:
        """Nothing to learn from an answer."""


def examine_tenant(
    tenant: Tenant, aws: AwsClients, *, http: httpx.Client | None = None
) -> tuple[list[Check], LuccaSpend]:
    settings = tenant.settings
    client, _ = build_client(settings, aws, tenant.key.reveal, http=http)
    client.retry = RetryPolicy(max_attempts=1)
    client.hooks.insert(0, RequestCap(MAX_REQUESTS))
    try:
        checks = _checks(client, tenant)
    except AWS_ERRORS as error:  # the budget's table: each request takes its slot there first
        checks = [_no_budget(settings.budget_table, error)]
    finally:
        client.close()
    budget = (
        f"{settings.budget_limit} per {settings.budget_window_seconds:g} s, "
        f"table {settings.budget_table}"
    )
    return checks, LuccaSpend(dict(client.requests_sent), MAX_REQUESTS, budget)


def _no_budget(table: str, error: BaseException) -> Check:
    return blocking(
        "Lucca tenant",
        f"not checked: the stack's request budget (table {table}) cannot be used: {error}",
        "run doctor as an identity allowed dynamodb:GetItem and UpdateItem on the budget table, "
        "as the functions are: its requests take their turn there",
    )


def _checks(client: LuccaClient, tenant: Tenant) -> list[Check]:
    page = _first_page(client, tenant)
    if isinstance(page, Check):
        return [page]
    checks = [ok("Lucca API key", f"accepted by {client.base_url}: the inbox listed")]
    checks += page_checks(page, tenant.settings)
    return checks + read_checks(client, page.first)


# --- page 1 -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FirstPage:
    """Page 1 of the inbox as Lucca answered it, and what of it parses."""

    body: Any
    items: list[InboxItem] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)

    @property
    def raw_items(self) -> list[Any] | None:
        items = self.body.get("items") if isinstance(self.body, dict) else None
        return items if isinstance(items, list) else None

    @property
    def count(self) -> int | None:
        count = self.body.get("count") if isinstance(self.body, dict) else None
        valid = isinstance(count, int) and not isinstance(count, bool) and count >= 0
        return count if valid else None

    @property
    def first(self) -> InboxItem | None:
        return self.items[0] if self.items else None


def _send(
    client: LuccaClient, endpoint: str, path: str, params: Mapping[str, str | int] | None = None
) -> Any:
    """One GET through the client's hooks (the cap, the budget) and error mapping; its JSON.

    One level below ``list_page``: that one checks the page's shape itself and raises, where
    the doctor wants to see what came back and say what is wrong with it.
    """
    return client.get_json(endpoint, path, params)


def _first_page(client: LuccaClient, tenant: Tenant) -> FirstPage | Check:
    settings = tenant.settings
    params: dict[str, str | int] = dict(settings.inbox_filters)
    params.update({"limit": settings.page_size, "page": 1, "fields.root": "count"})
    try:
        body = _send(client, "list", INBOX_PATH, params)
    except BudgetBusy as busy:
        return warning(
            "Lucca API key",
            f"not checked: the stack's budget is taken for the next {busy.wait:.0f} s (the "
            "pipeline is spending it)",
            "run doctor again in a minute: its requests wait their turn like the functions'",
        )
    except LuccaError as error:
        return _listing_refused(error, tenant, client.base_url)
    return _parsed(body)


def _listing_refused(error: LuccaError, tenant: Tenant, base_url: str) -> Check:
    secret = tenant.secret_name
    said = error.problem.summary() if error.problem else str(error)
    if isinstance(error, AuthError) and error.status == 401:
        return blocking(
            "Lucca API key",
            f"the key in secret {secret} is refused (401): {said}",
            f"put the tenant's current API key in {secret} (aws secretsmanager put-secret-value "
            f"--secret-id {secret}); the functions take it within 5 minutes",
        )
    if isinstance(error, AuthError):
        return blocking(
            "Lucca API key",
            f"the key in secret {secret} may not list the inbox ({error.status}): {said}",
            "in Lucca, give the key's role access to Cleemy Procurement's inbox (read, update, "
            "book)",
        )
    if isinstance(error, RateLimitedError):
        return warning(
            "Lucca API key",
            f"not checked: Lucca answered 429, the tenant's 50 a minute are spent: {said}",
            "run doctor again in a minute; if 429s last, lower BudgetRequestsPerWindow",
        )
    if isinstance(error, InvalidResponseError):
        return blocking(
            "page shape",
            f"{base_url}{INBOX_PATH} answered {error.status}, but not JSON: {error}",
            "check LuccaBaseUrl: the tenant's API host (https://ACCOUNT.ilucca.net), not a page "
            "in front of it",
        )
    if isinstance(error, PermanentError):
        return blocking(
            "inbox listing",
            f"{base_url}{INBOX_PATH} refused the poller's first request: {error}",
            "check LuccaBaseUrl (the tenant's host) and InboxFilters (only the inbox's own "
            "filters)",
        )
    return warning(
        "Lucca API key",
        f"could not tell: {error}",
        "run doctor again; if it lasts, check LuccaBaseUrl and Lucca's status",
    )


def _parsed(body: Any) -> FirstPage:
    raw = body.get("items") if isinstance(body, dict) else None
    items: list[InboxItem] = []
    unreadable: list[str] = []
    for element in raw if isinstance(raw, list) else []:
        try:
            items.append(InboxItem.model_validate(element))
        except ValidationError as error:
            ident = element.get("id") if isinstance(element, dict) else None
            unreadable.append(f"item {ident}: {summary(error, root='(item)')}")
    return FirstPage(body, items, unreadable)


def page_checks(page: FirstPage, settings: PollerSettings) -> list[Check]:
    if page.raw_items is None:
        return [_shape_refused(page.body)]
    return [
        _count_check(page),
        _shape_check(page, settings.page_size),
        unknowns_check(page.items),
        *size_checks(page.count, settings),
    ]


def _shape_refused(body: Any) -> Check:
    what = "a bare array" if isinstance(body, list) else f"{type(body).__name__}"
    if isinstance(body, dict):
        what = f"an object without an 'items' array (keys: {', '.join(sorted(body)) or 'none'})"
    return blocking(
        "page shape",
        f"page 1 is {what}, not {{'count', 'items': [...]}}: the poller cannot read it",
        "check LuccaBaseUrl; if Lucca changed the listing's shape, the client must follow it",
    )


def _count_check(page: FirstPage) -> Check:
    if page.count is None:
        got = page.body.get("count") if isinstance(page.body, dict) else None
        return blocking(
            "inbox count",
            f"page 1 asked with fields.root=count has no valid 'count' (got {got!r}): every "
            "poll fails",
            "the listing needs it (listing.py counts on page 1): report it to Lucca",
        )
    return ok("inbox count", f"fields.root=count puts the count on page 1: {page.count}")


def _shape_check(page: FirstPage, page_size: int) -> Check:
    served = len(page.raw_items or [])
    expected = min(page_size, page.count) if page.count is not None else served
    if page.unreadable:
        return warning(
            "page shape",
            f"{len(page.unreadable)} of {served} items do not parse as inbox items "
            f"({page.unreadable[0]}): each is held as invalid_item",
            "look at them in Lucca; if Lucca changed the item's shape, models.py must follow",
        )
    if served < expected:
        return warning(
            "page shape",
            f"Lucca served {served} items where page 1 holds {expected} at page size "
            f"{page_size}: its pages are smaller",
            f"set PageSize to {served}: a short page ends the poller's walk, so what lies past "
            "it is never listed",
        )
    return ok("page shape", f"{{'count', 'items'}} with {served} items, all inbox items")


# --- what this version does not know ----------------------------------------------------------


def unknowns_check(items: list[InboxItem]) -> Check:
    """Fields no model declares and values outside a published enumeration, found by the
    package's own ``novelties_in`` (what the poller records and the digest tells), counted by
    the items of page 1 that carry each."""
    seen: Counter[tuple[str, str]] = Counter(
        (novelty.kind, novelty.key) for item in items for novelty in novelties_in(item)
    )
    if not seen:
        return ok("unknown fields/values", f"none on page 1 ({len(items)} items)")
    fields = [(key, n) for (kind, key), n in seen.items() if kind == "field"]
    values = [(key, n) for (kind, key), n in seen.items() if kind == "value"]
    found = [
        f"{label} {count_words(pairs)}"
        for label, pairs in (("fields", fields), ("values", values))
        if pairs
    ]
    return warning(
        "unknown fields/values",
        f"on page 1 (how many items carry each): {'; '.join(found)}",
        "fields need nothing (every PUT carries them through untouched); a document with an "
        "unknown value is held (unknown_value) until the gate knows it",
    )


# --- what a listing costs ---------------------------------------------------------------------


def listing_cost(count: int, page_size: int) -> int:
    """Requests to walk ``count`` documents: the count rides on page 1, so one page at least."""
    return max(1, math.ceil(count / page_size))


def size_checks(count: int | None, settings: PollerSettings) -> list[Check]:
    if count is None:
        return []
    size, cost = settings.page_size, listing_cost(count, settings.page_size)
    seconds = cost * settings.budget_window_seconds / settings.budget_limit
    found = (
        f"{count} document(s) in the inbox; a complete listing costs {cost} request(s) at page "
        f"size {size}, {seconds:.{0 if seconds >= 10 else 1}f} s of the budget"
    )
    best = listing_cost(count, MAX_PAGE_SIZE)
    if best < cost:
        return [
            warning(
                "inbox size",
                found,
                f"set PageSize to {MAX_PAGE_SIZE} (Lucca's most): the same listing would cost "
                f"{best}",
            )
        ]
    return [ok("inbox size", found)]


# --- reading one document ---------------------------------------------------------------------

#: What it means when a read does not answer, and the other does not either.
NO_READ = (
    "nothing to do to book documents as listed; a document that must be read again (before a "
    "rule's PUT, after a lost booking answer) is dead-lettered or held for a person instead"
)


@dataclass(frozen=True)
class Read:
    """What one single-document read answered: whether it serves, and what was seen."""

    answers: bool
    found: str
    #: A transient trouble (429, 5xx, no answer, a busy budget): nothing learnt.
    unsure: bool = False


def read_checks(client: LuccaClient, item: InboxItem | None) -> list[Check]:
    """Both single-document reads, once each, on the first item of page 1."""
    if item is None:
        empty = "not tried: no document on page 1 (the inbox is empty for the stack's filters)"
        again = "run doctor again once a document is in the inbox"
        return [warning("inferred read", empty, again), warning("published read", empty, again)]
    inferred, published = _inferred_read(client, item), _published_read(client, item)
    return [
        _inferred_verdict(inferred),
        _published_verdict(published, inferred_answers=inferred.answers),
    ]


def _inferred_verdict(read: Read) -> Check:
    if read.answers:
        return ok("inferred read", read.found)
    if read.unsure:
        return warning("inferred read", read.found, "run doctor again")
    return warning(
        "inferred read", read.found, NO_READ + " when the published read does not answer"
    )


def _published_verdict(read: Read, *, inferred_answers: bool) -> Check:
    if read.answers:
        return ok("published read", read.found)
    if read.unsure:
        return warning("published read", read.found, "run doctor again")
    if inferred_answers:
        return ok("published read", f"{read.found} (not needed while the inferred read answers)")
    return warning("published read", f"{read.found}; neither read answers", NO_READ)


def _inferred_read(client: LuccaClient, item: InboxItem) -> Read:
    """``inbox-documents/{id}`` (the PUT's and book's URL), keyed by the item's id."""
    path = DOCUMENT_PATH.format(id=item.id)
    try:
        got = client.get_document(item.id)
    except (LuccaError, BudgetBusy) as error:
        return _unread(path, "the item's id", item.id, error)
    if got.id != item.id:
        return Read(False, f"GET {path} answers another item ({got.id}): not usable")
    return Read(True, f"GET {path} answers the whole inbox item")


def _published_read(client: LuccaClient, item: InboxItem) -> Read:
    """``api/documents/{id}``, tried with ``document.id`` (what Lucca's page calls "the
    document's id"), then, only if that answers 404 and the item's id differs, with the item's
    id: which one keys the route is not published, and the pipeline tries both the same way
    (``reading``). Either answer must be about the listed document."""
    doc_id = item.document.id
    path = PUBLISHED_DOCUMENT_PATH.format(id=doc_id)
    try:
        return _published_answer(path, _send(client, "read", path), doc_id, "document.id")
    except (LuccaError, BudgetBusy) as error:
        if not (isinstance(error, NotFoundError) and doc_id != item.id):
            return _unread(path, "document.id", doc_id, error)
    by_item = PUBLISHED_DOCUMENT_PATH.format(id=item.id)
    try:
        return _published_answer(by_item, _send(client, "read", by_item), doc_id, "the item's id")
    except (LuccaError, BudgetBusy) as error:
        read = _unread(by_item, "the item's id", item.id, error)
        return Read(read.answers, f"404 by document.id {doc_id}; {read.found}", read.unsure)


def _published_answer(path: str, body: Any, doc_id: int, key: str) -> Read:
    document = body.get("document") if isinstance(body, dict) and "document" in body else body
    try:
        read = Document.model_validate(document)
    except ValidationError as error:
        return Read(False, f"GET {path} answers, but not a document: {summary(error)}")
    if read.id != doc_id:
        return Read(False, f"GET {path} answers another document ({read.id}): not usable")
    shape = "a whole inbox item" if document is not body else "the document part"
    stamps = f"ocrStatus {read.ocrStatus}, modifiedAt {'present' if read.modifiedAt else 'absent'}"
    return Read(True, f"GET {path} answers {shape}, by {key} ({stamps})")


def _absent(error: BaseException) -> bool:
    return isinstance(error, LuccaError) and error.status in ABSENT


def _unread(path: str, which: str, ident: int, error: Exception) -> Read:
    if isinstance(error, BudgetBusy):
        return Read(False, f"not tried: {error}", unsure=True)
    if isinstance(error, NotFoundError):
        return Read(
            False,
            f"GET {path} answered 404 for {which} {ident}, listed a moment ago: the route is "
            "most likely absent",
        )
    if isinstance(error, AuthError):
        return Read(False, f"GET {path} answered {error.status}: the key may not read it")
    if isinstance(error, PermanentError) and error.status == 405:
        return Read(False, f"GET {path} answered 405: the route does not exist")
    if isinstance(error, InvalidResponseError):
        return Read(False, f"GET {path} answers, but not as expected: {error}")
    return Read(False, f"could not tell: {error}", unsure=True)
