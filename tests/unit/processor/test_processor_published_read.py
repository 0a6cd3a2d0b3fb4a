"""The processor's reads of one document go through Lucca's published route: where a tenant
serves only that one, documents a rule updates are still updated and booked (not
dead-lettered); where it serves only the inferred one, the fallback is paid for once.

The simulator runs in this process; requests are counted from its log, by path.
"""

from __future__ import annotations

import pytest

from cleemy_booker.ledger import Status
from tests.factories import raw_item
from tests.harness import Lucca

PUBLISHED = "/cleemy-procurement/api/documents/"
INFERRED = "/cleemy-procurement/services/inbox-documents/"
#: The nested ``document.id`` of an item added here: another number than the item's id.
OFFSET = 500_000


def add(lucca: Lucca, item_id: int) -> int:
    """An invoice the example rules update (no accounting label, no due date yet)."""
    item = raw_item(item_id, documentNumber=f"F-{item_id}")
    item["document"]["id"] = item_id + OFFSET
    lucca.app.add_items([item], "custom")
    return item_id


def gets(lucca: Lucca, prefix: str) -> list[str]:
    return [
        e["path"]
        for e in lucca.app.requests()
        if e["endpoint"] == "get" and e["path"].startswith(prefix)
    ]


def test_where_only_the_published_read_answers_updated_documents_are_booked(
    lucca: Lucca,
) -> None:
    """No inferred GET at all: the read before each PUT, and the read of a stale listing, take
    the published route; every document is updated from it and booked, none dead-lettered."""
    lucca.app.configure({"get_route": "absent"})
    fresh, stale = add(lucca, 601), add(lucca, 602)
    old = lucca.listed(stale)
    assert old.listedAt is not None
    messages = [
        lucca.listed(fresh),
        old.model_copy(update={"listedAt": old.listedAt.replace(year=2020)}),
    ]

    results = [lucca.processor().process(message) for message in messages]

    assert [(r.outcome, r.updated, r.requests) for r in results] == [("booked", True, 3)] * 2
    assert gets(lucca, INFERRED) == []
    assert gets(lucca, PUBLISHED) == [
        f"{PUBLISHED}{fresh + OFFSET}",
        f"{PUBLISHED}{stale + OFFSET}",
    ]
    for doc in (fresh, stale):
        detail = lucca.document(doc)
        assert (detail["bookings"], detail["puts"]) == (1, 1)
        sent = detail["putBodies"][0]
        assert sent["document"]["accountingLabel"] == f"F-{doc}"  # the rule's change
        assert sent["workflowHint"] == {"step": 1}  # the listed top level, kept
        assert sent["document"]["costCenterCode"] == "CC-7"  # the document's own extras
        state = lucca.ledger.states.state(doc)
        assert state is not None
        assert state.status is Status.BOOKED


@pytest.mark.parametrize("status", [404, 405])
def test_where_only_the_inferred_read_answers_the_fallback_is_decided_once(
    lucca: Lucca, status: int
) -> None:
    lucca.app.configure({"published_route": "absent", "absent_published_status": status})
    docs = [add(lucca, 601 + n) for n in range(3)]

    # A processor per attempt, as the runtime makes them: the client (and what it learnt) is
    # the warm instance's.
    results = [lucca.processor().process(lucca.listed(doc)) for doc in docs]

    assert [(r.outcome, r.updated) for r in results] == [("booked", True)] * 3
    assert [lucca.document(doc)["bookings"] for doc in docs] == [1, 1, 1]
    # The refusal is paid for once, by the first document; the others read once each.
    probes = 2 if status == 404 else 1
    assert len(gets(lucca, PUBLISHED)) == probes
    assert [r.requests for r in results] == [3 + probes, 3, 3]
    assert gets(lucca, INFERRED) == [f"{INFERRED}{doc}" for doc in docs]
