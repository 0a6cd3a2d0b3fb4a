"""Walking the whole inbox: the walkthrough's count-then-pages, made drift-safe and cheaper.

The walkthrough asks for the count, then loops pages until the items retrieved equal the count.
Here the count rides on page 1 (one request fewer), and the loop also ends on an empty or short
page or at a page cap, because the inbox changes while we read it: documents booked meanwhile
shift later pages, so the count may never be reached. An id is never yielded twice in one walk.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from .client import LuccaClient
from .endpoints import MAX_PAGE_SIZE
from .models import InboxItem

#: Safety net for a count that keeps growing: never read more pages than this in one walk.
DEFAULT_MAX_PAGES = 100
#: Why a walk ended on its own (``ListingStats.stopped_because``).
END_EMPTY_PAGE = "empty page"
END_COUNT_REACHED = "count reached"
END_SHORT_PAGE = "short page"
END_PAGE_CAP = "page cap"
#: The ends that mean the walk reached the end of the inbox (the page cap does not).
INBOX_ENDS = frozenset({END_EMPTY_PAGE, END_COUNT_REACHED, END_SHORT_PAGE})


@dataclass(frozen=True)
class ListedDocument:
    """One id found in the inbox, with its item when the item parsed."""

    document_id: int
    item: InboxItem | None
    problem: str | None = None


@dataclass
class ListingStats:
    count: int | None = None
    pages: int = 0
    items_seen: int = 0
    duplicates_skipped: int = 0
    invalid_items: int = 0
    stopped_because: str = ""
    unusable: list[str] = field(default_factory=list)


def _listed(raw: Any) -> ListedDocument | str:
    """Parse one raw item; a bad item with a usable id is still worth sending on."""
    try:
        item = InboxItem.model_validate(raw)
    except ValidationError as exc:
        raw_id = raw.get("id") if isinstance(raw, dict) else None
        reason = f"item does not match the inbox item shape ({exc.error_count()} errors)"
        if isinstance(raw_id, int) and not isinstance(raw_id, bool) and raw_id > 0:
            return ListedDocument(raw_id, None, reason)
        return f"{reason}, and it has no usable id"
    return ListedDocument(item.document_id, item)


def iter_inbox(
    client: LuccaClient,
    filters: Mapping[str, str] | None = None,
    *,
    page_size: int = MAX_PAGE_SIZE,
    max_pages: int = DEFAULT_MAX_PAGES,
    stats: ListingStats | None = None,
) -> Iterator[ListedDocument]:
    """Yield every document in the inbox once, reading as few pages as the inbox allows."""
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
    stats = stats if stats is not None else ListingStats()
    seen: set[int] = set()
    page_number = 0
    while True:
        page_number += 1
        body = client.list_page(
            page=page_number, limit=page_size, filters=filters, with_count=page_number == 1
        )
        if page_number == 1:
            stats.count = int(body["count"])
            max_pages = min(max_pages, math.ceil(stats.count / page_size) + 1)
        stats.pages = page_number
        items = body["items"]
        stats.items_seen += len(items)
        for raw in items:
            listed = _listed(raw)
            if isinstance(listed, str):
                stats.invalid_items += 1
                stats.unusable.append(listed)
                continue
            if listed.problem:
                stats.invalid_items += 1
            if listed.document_id in seen:
                stats.duplicates_skipped += 1
                continue
            seen.add(listed.document_id)
            yield listed
        reason = _stop_reason(len(items), page_size, len(seen), stats.count, page_number, max_pages)
        if reason:
            stats.stopped_because = reason
            return


def _stop_reason(
    page_len: int, page_size: int, unique: int, count: int | None, page: int, max_pages: int
) -> str:
    if page_len == 0:
        return END_EMPTY_PAGE
    if count is not None and unique >= count:
        return END_COUNT_REACHED
    if page_len < page_size:
        return END_SHORT_PAGE
    if page >= max_pages:
        return END_PAGE_CAP
    return ""
