"""Walking the inbox against the simulator: fewest requests, drift-safe, never an id twice."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest

from cleemy_booker.client import LuccaClient
from cleemy_booker.errors import PermanentError
from cleemy_booker.gate import UNKNOWN_VALUE, GateConfig, review
from cleemy_booker.listing import ListingStats, iter_inbox
from cleemy_booker.rules import RuleSet
from local.lucca_simulator import Simulator, SimulatorConfig
from tests.factories import raw_item


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
