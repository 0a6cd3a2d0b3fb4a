"""Reading one document (``reading``, through ``LuccaClient.read_document``): Lucca's published
route first, the inferred one only when the published one is refused; which id the published
route takes; each decided once for the life of the client.

The simulator runs in this process, playing each answer Lucca might give (the published read
keyed by ``document.id`` or by the item's ``id``, or not served with a 404 or a 405; the
inferred read served or not). Every request is counted from the simulator's own log, by path:
which route read, how many times, and that a choice was paid for once, not per document.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from cleemy_booker.errors import NotFoundError, PermanentError
from cleemy_booker.models import InboxItem
from cleemy_booker.reading import PublishedKey
from local.lucca_simulator.app import Route
from tests.factories import raw_item
from tests.harness import Lucca
from tests.logs import JsonLines

PUBLISHED = "/cleemy-procurement/api/documents/"
INFERRED = "/cleemy-procurement/services/inbox-documents/"
#: The nested ``document.id`` of an item added here: another number than the item's id.
OFFSET = 500_000
#: The one line each fallback decision writes.
FELL_BACK = "reading documents by the inferred inbox-documents route"


def add(lucca: Lucca, item_id: int, *, nested: int | None = None, **changes: Any) -> int:
    """An invoice in the inbox, its ``document.id`` ``nested`` (``item_id + OFFSET``)."""
    changes.setdefault("documentNumber", f"F-{item_id}")
    item = raw_item(item_id, **changes)
    item["document"]["id"] = item_id + OFFSET if nested is None else nested
    lucca.app.add_items([item], "custom")
    return item_id


def listed(lucca: Lucca, item_id: int) -> InboxItem:
    message = lucca.listed(item_id)
    assert message.item is not None
    return message.item


def gets(lucca: Lucca, prefix: str = "/") -> list[str]:
    """The paths of the GETs of one document so far, in order (under ``prefix``)."""
    return [
        e["path"]
        for e in lucca.app.requests()
        if e["endpoint"] == "get" and e["path"].startswith(prefix)
    ]


def test_the_published_read_gives_the_document_now_under_the_listed_top_level(
    lucca: Lucca,
) -> None:
    lucca.app.configure({"get_route": "absent"})
    doc = add(lucca, 601)
    before = listed(lucca, doc)
    lucca.edit(doc, comment="edited since the listing")

    item = lucca.client.read_document(doc, before)

    assert gets(lucca) == [f"{PUBLISHED}{doc + OFFSET}"]  # one request, the published one
    assert (item.id, item.document.id) == (doc, doc + OFFSET)
    assert item.document.comment == "edited since the listing"  # the document as it is now
    assert item.document.modifiedAt is not None
    assert before.document.modifiedAt is not None
    assert item.document.modifiedAt > before.document.modifiedAt
    # The top level is the listed item's, the fields no model knows included.
    assert item.model_extra == before.model_extra == {"workflowHint": {"step": 1}}
    assert (item.source, item.createdAt) == (before.source, before.createdAt)
    assert lucca.client.reads.published is True
    assert lucca.client.reads.key is PublishedKey.DOCUMENT_ID


def test_a_route_keyed_by_the_item_id_is_learnt_once(lucca: Lucca) -> None:
    lucca.app.configure({"published_key": "item", "get_route": "absent"})
    first, second = add(lucca, 601), add(lucca, 602)

    read = lucca.client.read_document(first, listed(lucca, first))
    assert gets(lucca) == [f"{PUBLISHED}{first + OFFSET}", f"{PUBLISHED}{first}"]
    assert read.document.id == first + OFFSET
    assert lucca.client.reads.key is PublishedKey.ITEM_ID

    lucca.client.read_document(second, listed(lucca, second))
    assert gets(lucca)[2:] == [f"{PUBLISHED}{second}"]  # straight to the right id


def test_an_answer_about_another_document_is_never_used(lucca: Lucca) -> None:
    """Keyed by item id, item 700's ``document.id`` (800) is also item 800's id: asked by
    ``document.id`` first, the route answers item 800's document. Built on, a PUT would write
    another invoice's data onto ours."""
    lucca.app.configure({"published_key": "item", "get_route": "absent"})
    ours = add(lucca, 700, nested=800, comment="ours")
    add(lucca, 800, nested=900, comment="someone else's", documentNumber="F-OTHER")

    item = lucca.client.read_document(ours, listed(lucca, ours))

    assert gets(lucca) == [f"{PUBLISHED}800", f"{PUBLISHED}700"]
    assert (item.id, item.document.id, item.document.comment) == (700, 800, "ours")
    assert lucca.client.reads.key is PublishedKey.ITEM_ID


@pytest.mark.parametrize("status", [404, 405])
def test_a_refused_published_read_falls_back_once_for_the_life_of_the_client(
    lucca: Lucca, logs: JsonLines, status: int
) -> None:
    lucca.app.configure({"published_route": "absent", "absent_published_status": status})
    docs = [add(lucca, 601 + n) for n in range(4)]

    for doc in docs:
        item = lucca.client.read_document(doc, listed(lucca, doc))
        assert (item.id, item.document.id) == (doc, doc + OFFSET)

    # A 405 refuses the route at once; a 404 under both ids is proven a missing route by the
    # inferred read serving the document. Either way once, not per document.
    first = docs[0]
    tried = [f"{PUBLISHED}{first + OFFSET}"] + ([f"{PUBLISHED}{first}"] if status == 404 else [])
    assert gets(lucca, PUBLISHED) == tried
    assert gets(lucca, INFERRED) == [f"{INFERRED}{doc}" for doc in docs]
    assert lucca.client.reads.published is False
    assert len(logs.named(FELL_BACK)) == 1


def test_a_key_forbidden_the_published_read_falls_back_once_if_the_inferred_serves(
    lucca: Lucca,
) -> None:
    """A key's role may read the inbox but not the documents API: a 403 there is proven a
    refusal by the inferred read serving the document, not taken for one on its own."""

    def forbidden(route: Route, response: httpx.Response) -> httpx.Response | None:
        if route.published_id is None:
            return None
        return httpx.Response(403, json={"title": "Forbidden"}, request=response.request)

    lucca.transport.after.append(forbidden)
    docs = [add(lucca, 601), add(lucca, 602)]

    items = [lucca.client.read_document(doc, listed(lucca, doc)) for doc in docs]

    assert [item.id for item in items] == docs
    assert gets(lucca, PUBLISHED) == [f"{PUBLISHED}{docs[0] + OFFSET}"]
    assert gets(lucca, INFERRED) == [f"{INFERRED}{doc}" for doc in docs]
    assert lucca.client.reads.published is False


def test_a_document_gone_costs_no_probe_where_a_404_may_be_expected(lucca: Lucca) -> None:
    """After a booking call of ours, or from a stale listing, a document's 404 (problem+json)
    is taken for what it says: no request to the other route, and nothing decided. (Its key
    not yet known, the published read is asked under both ids.)"""
    gone, kept = add(lucca, 601), add(lucca, 602)
    seen = listed(lucca, gone)
    lucca.client.book_document(gone)

    with pytest.raises(NotFoundError):
        lucca.client.read_document(gone, seen)
    assert gets(lucca) == [f"{PUBLISHED}{gone + OFFSET}", f"{PUBLISHED}{gone}"]
    assert lucca.client.reads.published is None

    # Just listed, a 404 is a surprise: the inferred read is asked whether it is the route.
    with pytest.raises(NotFoundError):
        lucca.client.read_document(gone, seen, just_listed=True)
    assert gets(lucca)[-1] == f"{INFERRED}{gone}"
    assert lucca.client.reads.published is None  # gone for both: nothing learnt

    lucca.client.read_document(kept, listed(lucca, kept))
    assert lucca.client.reads.published is True


def test_once_the_published_read_is_known_a_404_is_the_document_gone(lucca: Lucca) -> None:
    known, gone = add(lucca, 601), add(lucca, 602)
    lucca.client.read_document(known, listed(lucca, known))
    seen = listed(lucca, gone)
    lucca.client.book_document(gone)
    before = len(gets(lucca))

    with pytest.raises(NotFoundError):
        lucca.client.read_document(gone, seen, just_listed=True)

    assert gets(lucca)[before:] == [f"{PUBLISHED}{gone + OFFSET}"]
    assert lucca.client.reads.published is True


def test_a_message_without_its_item_is_read_whole_by_the_inferred_route(lucca: Lucca) -> None:
    """The published read wants the document's id and answers its part only: without the
    listed item, the inferred read is the one that answers the whole item."""
    doc = add(lucca, 601)
    item = lucca.client.read_document(doc)
    assert gets(lucca) == [f"{INFERRED}{doc}"]
    assert item.model_extra == {"workflowHint": {"step": 1}}

    lucca.app.configure({"get_route": "absent"})
    with pytest.raises(PermanentError) as refused:
        lucca.client.read_document(doc)
    assert refused.value.status == 405
    assert gets(lucca)[1:] == [f"{INFERRED}{doc}"]  # not half an item from the published read
