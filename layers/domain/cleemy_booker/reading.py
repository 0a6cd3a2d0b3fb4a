"""Reading one document again: Lucca's published read first, the inferred one only if refused.

Two GETs read one document (lucca-api.md):

* ``GET /cleemy-procurement/api/documents/{id}`` is published ("Retrieve a document by its ID").
  It answers an inbox item's ``document`` part only (with ``ocrStatus`` and ``modifiedAt``),
  keyed by "the document's id": whether that is the inbox item's ``id`` or its ``document.id``,
  Lucca does not say;
* ``GET /cleemy-procurement/services/inbox-documents/{id}`` (the PUT's and book's URL) answers a
  whole inbox item, keyed by the item's ``id``, but is only inferred: not in the reference.

So a read takes the published route, and the item it returns is the listed item's top level
with the ``document`` part Lucca answers now. ``DocumentReads`` decides once per client (per warm
Lambda instance) which route and which id, and logs each decision once:

* **Which id.** ``document.id`` first: the route is the documents resource, and ``document.id``
  is the id its answer carries. The item's ``id`` next, when it differs. An answer is used only
  if its ``id`` is the listed ``document.id``: under the other key, an id may name *another*
  document, and a PUT built from that would write its data onto ours. The key is remembered the
  first time one answers for a document whose two ids differ (when they are equal, either works
  and nothing is learnt, at no extra cost).
* **No such route, or no such document?** A 405 says the route is refused, whatever the body.
  A 403 (a key whose role may read the inbox but not the documents API) is proven like a 404.
  A 404 is ambiguous, and its body is no proof: Lucca's body for a missing document is not
  published, and a routing miss may come as an HTML page, an empty body, .NET's
  ``{"Message": ...}`` or problem+json. So the proof is the document itself: when the published
  route answers 404 under both ids, the inferred route is asked once for the same document; if
  it serves it, the published route is refused for this tenant, and every later read takes the
  inferred route. If it does not, the document is gone (or neither route serves it): a 404, and
  nothing is decided. That one request more is spent only when a 404 is a surprise: the listing
  showed the document moments ago with no booking call of ours since (``just_listed``: the read
  before a PUT), or the 404 does not look like a document's answer (not problem+json). A read
  after a booking call of ours, or of a listing gone stale, expects a 404 now and then: a
  problem+json 404 there is taken for what it says, and costs nothing more.
* **What it costs.** Nothing in the normal path: a fresh listed item needs no read at all, and
  once decided a read is one request. Deciding costs at most two requests more, once per
  instance; while undecided, a document found gone may cost one or two more.
* **Not remembered across instances.** A cold start decides again at that cost; sharing the
  decision would need a store the functions do not have for it, and a wrong or outdated
  decision shared by every instance would outlive a change of Lucca's.
* **A message without the listed item** (an item too large for a message, one that did not
  parse, or a replay by hand) is read by the inferred route: it is the only read keyed by the
  id the message carries (the published one wants ``document.id`` unless proven otherwise), and
  the only one that answers the item's top level. A top level reduced to what the document part
  gives would make a PUT that leaves out any writable top-level field Lucca adds, which a PUT
  may reset, and a change stamp the listing would not agree with. If the inferred route is
  refused, the document fails with that reason (the dead-letter queue, or held as possibly
  booked after a booking call of ours) rather than be updated from half an item.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from .errors import InvalidResponseError, NotFoundError, PermanentError
from .models import Document, InboxItem
from .observability import logger

#: The status of a route that exists but not for this method: the read is refused.
METHOD_NOT_ALLOWED = 405
#: A key without the rights for this call (each key has its own role): refused to *us*, which
#: the inferred read's answer for the same document tells from a document we may not see.
FORBIDDEN = 403


class PublishedKey(StrEnum):
    """Which of an inbox item's ids the published route takes."""

    DOCUMENT_ID = "document.id"
    ITEM_ID = "id"


class DocumentGets(Protocol):
    """The two single-document GETs, as the client sends them."""

    def get_document(self, document_id: int) -> InboxItem:
        """The inferred route: one whole inbox item, by the item's id."""
        ...

    def get_published_document(self, document_id: int) -> Document:
        """The published route: one inbox item's ``document`` part, by the id given."""
        ...


@dataclass
class DocumentReads:
    """Which route reads one document, learnt from Lucca's answers and then kept."""

    gets: DocumentGets
    #: The published route serves reads (True), is refused (False), or not known yet (None).
    published: bool | None = None
    #: The id the published route takes, once a document with two different ids proved it.
    key: PublishedKey | None = None

    def read(
        self, item_id: int, listed: InboxItem | None, *, just_listed: bool = False
    ) -> InboxItem:
        """The document as Lucca holds it now, with the listed item's top level when given.

        ``just_listed``: the listing showed ``listed`` moments ago and no booking call of ours
        went out since, so a 404 would be a surprise worth a request to explain."""
        if listed is None or listed.id != item_id:
            return self.gets.get_document(item_id)  # see "A message without the listed item"
        if self.published is False:
            return self.gets.get_document(item_id)
        return self._published(listed, just_listed=just_listed)

    def _published(self, listed: InboxItem, *, just_listed: bool) -> InboxItem:
        wanted = listed.document.id
        not_found: NotFoundError | None = None
        for key, url_id in self._keys(listed):
            try:
                document = self.gets.get_published_document(url_id)
            except NotFoundError as error:
                if self.key is not None:
                    raise  # the route and its key are known: the document is not there
                not_found = error
                continue
            except PermanentError as error:
                if error.status == METHOD_NOT_ALLOWED:
                    self._refused(f"published read: {error.status}")
                    return self.gets.get_document(listed.id)
                if error.status != FORBIDDEN or self.published:
                    raise
                return self._refused_if_inferred_serves(listed, f"published read: {error.status}")
            if document.id == wanted:
                self._served(key, listed)
                return with_document(listed, document)
            if self.key is not None:
                raise InvalidResponseError(
                    f"asked for document {url_id} ({key}), Lucca answered document "
                    f"{document.id}, not {wanted}",
                    endpoint="get",
                    status=200,
                )
            # Under the other key this id names another document: not ours, not used.
        if self.published or (not_found is not None and not _surprising(not_found, just_listed)):
            # Served, its key not yet known, or a document's 404 where one may be expected:
            # neither id names the document any more.
            raise not_found or _other_document(listed)
        return self._refused_if_inferred_serves(listed, "published read: not found by either id")

    def _refused_if_inferred_serves(self, listed: InboxItem, because: str) -> InboxItem:
        """Not known whether the published route serves us at all: does the document exist?
        If the inferred read serves it, the published one is refused; an error here (it is
        gone, or no route serves it) propagates and decides nothing."""
        item = self.gets.get_document(listed.id)
        self._refused(f"{because}, for a document the inferred read serves")
        return item

    def _keys(self, listed: InboxItem) -> list[tuple[PublishedKey, int]]:
        ids = {PublishedKey.DOCUMENT_ID: listed.document.id, PublishedKey.ITEM_ID: listed.id}
        if self.key is not None:
            return [(self.key, ids[self.key])]
        keys = [(PublishedKey.DOCUMENT_ID, listed.document.id)]
        if listed.id != listed.document.id:
            keys.append((PublishedKey.ITEM_ID, listed.id))
        return keys

    def _served(self, key: PublishedKey, listed: InboxItem) -> None:
        learnt_key = self.key is None and listed.id != listed.document.id
        if self.published and not learnt_key:
            return
        self.published = True
        if learnt_key:
            self.key = key
        logger.info(
            "reading documents by Lucca's published route",
            extra={
                "readRoute": "published",
                "publishedKey": str(self.key) if self.key else "not known yet (equal ids)",
                "documentId": listed.id,
            },
        )

    def _refused(self, because: str) -> None:
        self.published = False
        logger.warning(
            "reading documents by the inferred inbox-documents route",
            extra={"readRoute": "inferred", "because": because},
        )


def with_document(listed: InboxItem, document: Document) -> InboxItem:
    """The listed item's top level (its id, source, stamps and any field Lucca adds there) with
    the ``document`` part as Lucca answers it now: what the processor decides and PUTs from."""
    return listed.model_copy(update={"document": document})


def _surprising(not_found: NotFoundError, just_listed: bool) -> bool:
    """A 404 worth one request more to tell a missing route from a missing document."""
    looks_like_a_document = not_found.problem is not None and (
        not_found.problem.format == "problem+json"
    )
    return just_listed or not looks_like_a_document


def _other_document(listed: InboxItem) -> InvalidResponseError:
    return InvalidResponseError(
        f"the published read answered other documents under the ids of document "
        f"{listed.document.id} (item {listed.id})",
        endpoint="get",
        status=200,
    )
