"""Walking the inbox: the count riding on page one, the fewest requests, filters and the page
cap (against the simulator); never an id twice however the inbox moves between pages; a bad item
sent on by its id or set aside with its reason; the walk's end and why (against a fake inbox)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import date
from typing import Any

import pytest

from cleemy_booker.client import MAX_PAGE_SIZE, LuccaClient
from cleemy_booker.errors import PermanentError
from cleemy_booker.gate import UNKNOWN_VALUE, GateConfig, review
from cleemy_booker.listing import (
    END_COUNT_REACHED,
    END_EMPTY_PAGE,
    END_PAGE_CAP,
    END_SHORT_PAGE,
    INBOX_ENDS,
    ListingStats,
    iter_inbox,
)
from cleemy_booker.rules import RuleSet
from local.lucca_simulator import Simulator, SimulatorConfig
from tests.factories import raw_item

# --- against the simulator --------------------------------------------------------------------


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(SimulatorConfig(invoices=10, seed=3, rate_limit=100_000)) as simulator:
        yield simulator


def client_for(sim: Simulator) -> LuccaClient:
    return LuccaClient(sim.url, sim.api_key)


def list_requests(sim: Simulator) -> list[dict[str, object]]:
    return [r for r in sim.requests() if r["endpoint"] == "list"]


def walk(sim: Simulator, page_size: int, **kwargs: Any) -> tuple[list[int], ListingStats]:
    stats = ListingStats()
    listed = iter_inbox(client_for(sim), page_size=page_size, stats=stats, **kwargs)
    return [d.document_id for d in listed], stats


@pytest.mark.parametrize(
    ("size", "page_size", "expected_requests"),
    [
        (2500, 1000, 3),
        (1000, 1000, 1),
        (1001, 1000, 2),
        (0, 1000, 1),
        (2500, 100, 25),
        (250, 100, 3),
    ],
)
def test_the_count_rides_on_page_one(
    sim: Simulator, size: int, page_size: int, expected_requests: int
) -> None:
    sim.reset(invoices=size, seed=11, fault_rate=0.0)
    ids, stats = walk(sim, page_size)
    requests = list_requests(sim)
    assert len(ids) == len(set(ids)) == size
    assert len(requests) == expected_requests
    assert stats.count == size
    assert "fields.root=count" in str(requests[0]["query"])
    assert all("fields.root" not in str(r["query"]) for r in requests[1:])


def test_2500_documents_in_3_requests_versus_the_literal_walkthrough(sim: Simulator) -> None:
    """Page size 1000 with the count on page 1: 3 requests. The walkthrough done literally
    (a count request, then pages) takes 4 at page size 1000 and 26 at page size 100."""
    sim.reset(invoices=2500, seed=11)
    walk(sim, 1000)
    ours = len(list_requests(sim))

    def literal(page_size: int) -> int:
        sim.reset(invoices=2500, seed=11)
        client = client_for(sim)
        total = client.count()
        retrieved, page = 0, 0
        while retrieved < total:
            page += 1
            retrieved += len(client.list_page(page=page, limit=page_size)["items"])
        return len(list_requests(sim))

    assert (ours, literal(1000), literal(100)) == (3, 4, 26)
    print(f"\n2,500 documents: ours {ours} requests; literal walkthrough 4 (x1000), 26 (x100)")


def test_an_inbox_shrinking_while_paging_ends_without_repeats(sim: Simulator) -> None:
    sim.reset(invoices=300, seed=5)
    client = client_for(sim)
    booker = client_for(sim)
    seen: list[int] = []
    booked = 0
    stats = ListingStats()
    for listed in iter_inbox(client, page_size=100, stats=stats):
        seen.append(listed.document_id)
        if len(seen) == 100:  # after page 1: someone books documents of the first page
            for document_id in seen[:60]:
                try:
                    booker.book_document(document_id)
                    booked += 1
                except PermanentError:
                    pass  # not bookable (OCR pending, locked): stays in the inbox
    assert booked > 30
    assert len(seen) == len(set(seen))
    assert stats.stopped_because in ("short page", "empty page")
    # The booked ones shifted later documents into page 1 after we read it: those are the
    # next run's, not lost - and nothing was listed twice.
    assert len(seen) == 300 - booked


def test_an_inbox_growing_while_paging_stops_at_the_count(sim: Simulator) -> None:
    sim.reset(invoices=200, seed=5)
    stats = ListingStats()
    seen = []
    for listed in iter_inbox(client_for(sim), page_size=100, stats=stats):
        seen.append(listed.document_id)
        if len(seen) % 100 == 0:
            sim.generate_documents(100)  # documents arrive while we read
    assert stats.stopped_because == "count reached"
    assert len(seen) == len(set(seen)) == 200  # the newcomers are the next run's


def test_the_page_cap_bounds_a_walk(sim: Simulator) -> None:
    sim.reset(invoices=500, seed=5)
    ids, stats = walk(sim, 100, max_pages=2)
    assert (stats.stopped_because, stats.pages, len(ids)) == ("page cap", 2, 200)
    assert len(list_requests(sim)) == 2


def test_filters_go_on_every_request(sim: Simulator) -> None:
    sim.reset(invoices=350, seed=5)
    filters = {"document.type": "Invoice"}
    ids, stats = walk(sim, 100, filters=filters)
    requests = list_requests(sim)
    assert all("document.type=Invoice" in str(r["query"]) for r in requests)
    assert stats.count == len(ids)
    assert 0 < len(ids) < 350


def test_limit_out_of_range_is_refused_before_any_request(sim: Simulator) -> None:
    with pytest.raises(ValueError, match="page_size"):
        list(iter_inbox(client_for(sim), page_size=1001))


def test_a_value_lucca_added_holds_its_document_and_no_other(sim: Simulator) -> None:
    sim.reset(invoices=0)
    sim.add_documents([raw_item(601), raw_item(602, ocrStatus="Archived"), raw_item(603)])
    stats = ListingStats()

    listed = list(iter_inbox(client_for(sim), stats=stats))

    assert [(d.document_id, d.problem) for d in listed] == [(601, None), (602, None), (603, None)]
    assert stats.invalid_items == 0
    held = {}
    for document in listed:
        assert document.item is not None
        outcome = RuleSet.empty().apply(document.item)
        reasons = review(document.item, outcome, GateConfig(), today=date(2026, 10, 10))
        held[document.document_id] = [(r.code, r.message) for r in reasons]
    assert held[601] == held[603] == []
    [(code, message)] = held[602]
    assert code == UNKNOWN_VALUE
    assert "document.ocrStatus" in message
    assert "'Archived'" in message


# --- against a fake inbox: bad items, ids seen twice, the end of the walk ---------------------


class FakeInbox:
    """``LuccaClient.list_page`` over a list of raw items; ``count`` and ``page_items`` let a
    test play an inbox that moves between two pages."""

    def __init__(
        self,
        items: list[Any],
        *,
        count: int | None = None,
        page_items: Callable[[int, int], list[Any]] | None = None,
    ) -> None:
        self.items = items
        self.count = len(items) if count is None else count
        self.page_items = page_items
        self.calls: list[dict[str, Any]] = []

    def list_page(
        self,
        *,
        page: int,
        limit: int,
        filters: Mapping[str, str] | None = None,
        with_count: bool = False,
    ) -> dict[str, Any]:
        self.calls.append({"page": page, "limit": limit, "with_count": with_count})
        if self.page_items is not None:
            items = self.page_items(page, limit)
        else:
            items = self.items[(page - 1) * limit : page * limit]
        body: dict[str, Any] = {"items": items}
        if with_count:
            body["count"] = self.count
        return body


def walk_fake(inbox: FakeInbox, page_size: int, **kwargs: Any) -> tuple[list[Any], ListingStats]:
    stats = ListingStats()
    listed = list(iter_inbox(inbox, page_size=page_size, stats=stats, **kwargs))  # type: ignore[arg-type]
    return listed, stats


def test_a_bad_item_with_a_usable_id_is_sent_on_with_its_problem() -> None:
    """The processor dead-letters it naming the problem: it must not vanish from the walk."""
    bad = raw_item(1)
    bad["createdAt"] = "yesterday"
    listed, stats = walk_fake(FakeInbox([raw_item(5), bad]), 10)
    assert [d.document_id for d in listed] == [5, 1]
    assert listed[1].item is None
    assert listed[1].problem is not None
    assert listed[1].problem.startswith("item does not match the inbox item shape (")
    assert listed[0].problem is None
    assert listed[0].item is not None
    assert stats.invalid_items == 1
    assert stats.unusable == []


def test_a_walk_without_stats_of_its_own_yields_the_same() -> None:
    inbox = FakeInbox([raw_item(i) for i in range(1, 5)])
    listed = iter_inbox(inbox, page_size=3)  # type: ignore[arg-type]
    assert [d.document_id for d in listed] == [1, 2, 3, 4]


@pytest.mark.parametrize(
    "raw",
    [
        {"id": True, "document": "garbled"},
        {"id": 0, "document": "garbled"},
        {"id": -3, "document": "garbled"},
        {"id": "7", "document": "garbled"},
        {"document": "garbled"},
        ["not", "an", "object"],
    ],
    ids=["bool id", "zero id", "negative id", "text id", "no id", "not an object"],
)
def test_a_bad_item_without_a_usable_id_is_set_aside_with_its_reason(raw: Any) -> None:
    listed, stats = walk_fake(FakeInbox([raw_item(5), raw]), 10)
    assert [d.document_id for d in listed] == [5]
    assert stats.invalid_items == 1
    (reason,) = stats.unusable
    assert reason.startswith("item does not match the inbox item shape (")
    assert reason.endswith("errors), and it has no usable id")


def test_every_bad_item_is_counted_and_the_rest_of_its_page_still_listed() -> None:
    """The poll reports how many items were invalid (a person looks at them): all of them,
    and the good documents after them on the same page are not lost."""
    bad_with_id = raw_item(8)
    bad_with_id["createdAt"] = "yesterday"
    page = [
        {"document": "garbled"},
        ["not an object"],
        bad_with_id,
        raw_item(9),
        raw_item(9),
        raw_item(10),
    ]
    listed, stats = walk_fake(FakeInbox(page), 10)
    assert [d.document_id for d in listed] == [8, 9, 10]
    assert stats.invalid_items == 3
    assert len(stats.unusable) == 2
    assert all(reason.endswith("no usable id") for reason in stats.unusable)
    assert stats.duplicates_skipped == 1
    assert stats.items_seen == 6


def test_an_id_shifted_onto_the_next_page_is_yielded_once_and_counted() -> None:
    """A document booked meanwhile shifts the later pages: the last of page 1 shows again."""
    items = [raw_item(i) for i in range(1, 7)]

    def shifted(page: int, limit: int) -> list[Any]:
        start = (page - 1) * limit - (1 if page > 1 else 0)
        return items[start : start + limit]

    listed, stats = walk_fake(FakeInbox(items, page_items=shifted), 3)
    ids = [d.document_id for d in listed]
    assert ids == [1, 2, 3, 4, 5, 6]
    assert stats.duplicates_skipped == 1
    assert stats.items_seen == len(ids) + 1


def test_the_walk_ends_when_the_count_is_reached_without_reading_another_page() -> None:
    inbox = FakeInbox([raw_item(i) for i in range(1, 7)])
    listed, stats = walk_fake(inbox, 3)
    assert len(listed) == 6
    assert stats.stopped_because == END_COUNT_REACHED
    assert stats.pages == len(inbox.calls) == 2


def test_only_page_one_asks_for_the_count_and_pages_go_up_one_by_one() -> None:
    inbox = FakeInbox([raw_item(i) for i in range(1, 8)])
    walk_fake(inbox, 3)
    assert [(c["page"], c["limit"], c["with_count"]) for c in inbox.calls] == [
        (1, 3, True),
        (2, 3, False),
        (3, 3, False),
    ]


def test_a_short_page_ends_the_walk_even_if_the_count_says_more() -> None:
    """The count was taken when page 1 was read; documents booked since never show."""
    inbox = FakeInbox([raw_item(i) for i in range(1, 6)], count=9)
    listed, stats = walk_fake(inbox, 3)
    assert len(listed) == 5
    assert stats.stopped_because == END_SHORT_PAGE
    assert len(inbox.calls) == 2


def test_an_empty_page_ends_the_walk() -> None:
    inbox = FakeInbox([raw_item(i) for i in range(1, 4)], count=5)
    listed, stats = walk_fake(inbox, 3)
    assert len(listed) == 3
    assert stats.stopped_because == END_EMPTY_PAGE
    assert stats.pages == 2


def test_an_empty_inbox_is_one_request() -> None:
    inbox = FakeInbox([])
    listed, stats = walk_fake(inbox, 3)
    assert listed == []
    assert stats.stopped_because == END_EMPTY_PAGE
    assert stats.count == 0
    assert len(inbox.calls) == 1


def test_a_walk_that_never_reaches_the_count_stops_one_page_past_it() -> None:
    """Full pages that bring nothing new (an inbox reshuffled under us, a page parameter not
    honoured): the walk reads ceil(count / size) + 1 pages, then stops, and says so in a way
    that does not count as having seen the whole inbox."""

    def same_page(page: int, limit: int) -> list[Any]:
        return [raw_item(i) for i in range(1, limit + 1)]

    inbox = FakeInbox([], count=7, page_items=same_page)
    listed, stats = walk_fake(inbox, 3)
    assert stats.pages == len(inbox.calls) == 4  # ceil(7 / 3) + 1
    assert [d.document_id for d in listed] == [1, 2, 3]
    assert stats.duplicates_skipped == 9
    assert stats.stopped_because == END_PAGE_CAP
    assert END_PAGE_CAP not in INBOX_ENDS
    assert {END_EMPTY_PAGE, END_COUNT_REACHED, END_SHORT_PAGE} <= INBOX_ENDS


def test_a_lower_page_cap_wins_over_the_count() -> None:
    def always_new(page: int, limit: int) -> list[Any]:
        return [raw_item(1000 * page + i) for i in range(limit)]

    inbox = FakeInbox([], count=100, page_items=always_new)
    _, stats = walk_fake(inbox, 3, max_pages=2)
    assert stats.pages == len(inbox.calls) == 2
    assert stats.stopped_because == END_PAGE_CAP


def test_duplicates_do_not_count_towards_the_count() -> None:
    """Pages that repeat ids: only unique documents reach the count, so the walk reads on."""
    items = [raw_item(1), raw_item(1), raw_item(2), raw_item(3)]
    inbox = FakeInbox(items, count=3)
    listed, stats = walk_fake(inbox, 2)
    assert [d.document_id for d in listed] == [1, 2, 3]
    assert stats.stopped_because == END_COUNT_REACHED
    assert stats.pages == 2


@pytest.mark.parametrize("page_size", [0, MAX_PAGE_SIZE + 1])
def test_a_page_size_lucca_would_refuse_is_refused_before_any_request(page_size: int) -> None:
    inbox = FakeInbox([raw_item(1)])
    with pytest.raises(ValueError, match="page_size"):
        walk_fake(inbox, page_size)
    assert inbox.calls == []


@pytest.mark.parametrize("page_size", [1, MAX_PAGE_SIZE])
def test_the_smallest_and_largest_page_sizes_are_taken(page_size: int) -> None:
    listed, _ = walk_fake(FakeInbox([raw_item(1), raw_item(2)]), page_size)
    assert [d.document_id for d in listed] == [1, 2]
