"""The tenant's documents and the four API operations on them (list, get, put, book).

Not thread-safe on its own: the application calls it under its lock. Every operation returns a
ready ``Response``, serialised while the lock is held, so no caller ever sees a half-applied write.
"""

from __future__ import annotations

import copy
import json
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .booked import BookedQuery, booked_document, booked_page
from .catalog import API_USER, USERS, user_ref
from .clock import SYSTEM_CLOCK, Clock, format_ticks, now_ticks, parse_ticks
from .config import CATEGORIES, PUBLISHED_KEY_ITEM, WRITE_SHAPE_LUCCA_FR, SimulatorConfig
from .data import InboxGenerator
from .listing import ListQuery
from .responses import (
    Response,
    empty_response,
    json_response,
    problem,
    validation_problem,
)
from .writeshape import apply_put, put_response, validate_put_body

OCR_NOT_FINISHED = ("Pending", "Processing")


@dataclass
class DocumentRecord:
    item: dict[str, Any]
    category: str
    in_inbox: bool = True
    bookings: int = 0
    book_attempts: int = 0
    puts: int = 0
    put_bodies: list[Any] = field(default_factory=list)
    modified_ticks: int = 0
    #: Which addition brought it: 0 for the seeded inbox, then 1, 2... (``new_documents``).
    arrival: int = 0
    #: A person deleted it from the inbox (``delete_by_person``): Lucca knows it no more.
    deleted_by_person: bool = False
    #: A person booked it by hand in Lucca (``book_by_person``), apart from ``bookings``
    #: (the API's, i.e. ours).
    person_bookings: int = 0
    #: When it was booked (ticks), for Lucca's booked documents (``booked``); None: not booked.
    booked_ticks: int | None = None

    @property
    def document(self) -> dict[str, Any]:
        document: dict[str, Any] = self.item["document"]
        return document


class Inbox:
    def __init__(self, config: SimulatorConfig, clock: Clock = SYSTEM_CLOCK) -> None:
        self._clock = clock
        self._generator = InboxGenerator(
            config.seed,
            config.first_id,
            config.category_weights,
            config.invoices,
            document_id_offset=config.document_id_offset,
            invalid_currency=config.invalid_currency,
        )
        # Its own stream: a shuffled listing draws nothing from the generator's.
        self._shuffler = random.Random(f"{config.seed}:listing-order")
        self._arrivals = 0
        self.records: dict[int, DocumentRecord] = {}
        #: Item id by ``document.id``, for the published read keyed by the document's id.
        self._by_document_id: dict[int, int] = {}
        self.add_generated(config.invoices)

    # --- API operations ----------------------------------------------------------------------

    def list_items(
        self, query: ListQuery, order: str = "id", new_documents: str = "in_order"
    ) -> Response:
        """One page, in the order ``order`` and ``new_documents`` play (see config.py)."""
        records = [
            record
            for _, record in sorted(self.records.items())
            if record.in_inbox and query.matches(record.item)
        ]
        if order == "reverse":
            records.reverse()
        elif order == "shuffled":
            self._shuffler.shuffle(records)  # every request anew
        if new_documents != "in_order":
            # A stable sort: within one arrival the order above stays.
            records.sort(key=lambda record: record.arrival, reverse=new_documents == "first")
        matching = [record.item for record in records]
        start = (query.page - 1) * query.limit
        payload: dict[str, Any] = {}
        if query.with_count:
            payload["count"] = len(matching)
        payload["items"] = matching[start : start + query.limit] if query.limit else []
        return json_response(200, payload)

    def get(self, doc_id: int) -> Response:
        record = self._in_inbox(doc_id)
        if record is None:
            return _not_found(doc_id)
        return json_response(200, record.item)

    def get_published(self, url_id: int, key: str) -> Response:
        """``GET /cleemy-procurement/api/documents/{id}``: the document part of the item in the
        inbox that ``url_id`` names under ``key`` (config.published_key)."""
        record = self.named_by(url_id, key)
        if record is None or not record.in_inbox:
            return problem(404, f"Document {url_id} was not found.")
        return json_response(200, record.document)

    def named_by(self, url_id: int, key: str) -> DocumentRecord | None:
        """The record an id of the published read names: by item id, or by ``document.id``."""
        if key == PUBLISHED_KEY_ITEM:
            return self.records.get(url_id)
        record = self.records.get(self._by_document_id.get(url_id, -1))
        return record if record is not None and record.document.get("id") == url_id else None

    def put(
        self,
        doc_id: int,
        raw_body: bytes,
        content_type: str | None,
        write_shape: str = WRITE_SHAPE_LUCCA_FR,
    ) -> Response:
        record = self.records.get(doc_id)
        if record is None:
            return _not_found(doc_id)
        body, error = _parse_json_body(raw_body, content_type)
        # Every body received is kept, even a rejected one or one sent after the document was
        # booked: ground truth of what the client sent. Malformed JSON is kept as text.
        record.put_bodies.append(body if error is None else raw_body.decode("utf-8", "replace"))
        if not record.in_inbox:
            return _not_found(doc_id)
        if error is not None:
            return error
        errors = validate_put_body(body, record.document, write_shape)
        if errors:
            return validation_problem(errors)
        apply_put(record.item, body, write_shape)
        self._bump(record, user_ref(API_USER.id))
        record.puts += 1
        return json_response(200, put_response(record.item, write_shape))

    def count_book_attempt(self, doc_id: int) -> None:
        record = self.records.get(doc_id)
        if record is not None:
            record.book_attempts += 1

    def book(
        self, doc_id: int, raw_body: bytes, success_status: int, second_book: int = 404
    ) -> Response:
        record = self.records.get(doc_id)
        if record is None:
            return _not_found(doc_id)
        if not record.in_inbox:
            # Deleted by a person: no such document any more.
            if record.deleted_by_person:
                return _not_found(doc_id)
            # Booked already (by us or by a person): config.second_book plays which 4xx Lucca
            # answers then.
            if second_book == 400:
                return problem(
                    400,
                    f"Inbox document {doc_id} is already booked.",
                    title="Document not in the inbox",
                )
            return _not_found(doc_id)
        if raw_body.strip():
            return problem(400, "This endpoint takes no request body.", title="Unexpected body")
        status = record.document.get("ocrStatus")
        if status in OCR_NOT_FINISHED:
            return problem(
                400,
                f"The document cannot be booked while its OCR is not finished ({status}).",
                title="Document not ready",
            )
        if record.category == "book_rejected":
            return problem(
                400, "The document is locked by a pending approval.", title="Document locked"
            )
        record.in_inbox = False
        record.bookings += 1
        record.booked_ticks = now_ticks(self._clock)
        return json_response(200, {}) if success_status == 200 else empty_response(204)

    def list_booked(self, query: BookedQuery) -> Response:
        """``GET /cleemy-procurement/api/booked-documents``: every record booked (see
        ``booked``)."""
        documents = (
            booked_document(record.item, record.booked_ticks)
            for record in self.records.values()
            if record.booked_ticks is not None
        )
        return json_response(200, booked_page(documents, query))

    def _in_inbox(self, doc_id: int) -> DocumentRecord | None:
        record = self.records.get(doc_id)
        return record if record is not None and record.in_inbox else None

    # --- ground truth and admin changes ------------------------------------------------------

    def add_generated(self, count: int) -> list[int]:
        arrival = self._next_arrival()
        added = []
        for generated in self._generator.generate(count):
            self._add(generated.item, generated.category, arrival)
            added.append(generated.item["id"])
        return added

    def add_items(self, items: list[Any], category: str) -> list[int]:
        """Add items verbatim (tests craft edge cases); raises ValueError on a bad item."""
        for item in items:
            _check_item(item)
            if item["id"] in self.records:
                raise ValueError(f"document {item['id']} already exists")
        if len({item["id"] for item in items}) != len(items):
            raise ValueError("duplicate ids in items")
        arrival = self._next_arrival()
        for item in items:
            self._add(copy.deepcopy(item), category, arrival)
        return [item["id"] for item in items]

    def touch(self, doc_id: int, patch: dict[str, Any], category: str | None) -> dict[str, Any]:
        """A person edits the document in Lucca: fields change and ``modifiedAt`` moves on."""
        record = self.records[doc_id]
        record.document.update(copy.deepcopy(patch))
        if category is not None:
            record.category = category
        person = record.document.get("owner") or user_ref(USERS[0].id)
        self._bump(record, person)
        return record.item

    def delete_by_person(self, doc_id: int) -> bool:
        """A person deletes the document from the inbox: it leaves every listing, and a read,
        an update or a book of it answers 404. False if it was no longer in the inbox."""
        record = self.records[doc_id]
        if not record.in_inbox:
            return False
        record.in_inbox = False
        record.deleted_by_person = True
        return True

    def book_by_person(self, doc_id: int) -> bool:
        """A person books the document by hand in Lucca: it leaves the inbox as booked (our
        later book meets what ``second_book`` plays for a booked document). False if it was
        no longer in the inbox."""
        record = self.records[doc_id]
        if not record.in_inbox:
            return False
        record.in_inbox = False
        record.person_bookings += 1
        record.booked_ticks = now_ticks(self._clock)  # it shows among Lucca's booked documents
        return True

    def detail(self, doc_id: int) -> dict[str, Any] | None:
        record = self.records.get(doc_id)
        if record is None:
            return None
        return {
            **record.item,
            "category": record.category,
            "inInbox": record.in_inbox,
            "bookings": record.bookings,
            "bookAttempts": record.book_attempts,
            "puts": record.puts,
            "putBodies": record.put_bodies,
            "deletedByPerson": record.deleted_by_person,
            "personBookings": record.person_bookings,
        }

    def summary(self) -> dict[str, Any]:
        records = [record for _, record in sorted(self.records.items())]
        booked = [record for record in records if record.bookings > 0]
        return {
            "documents": len(records),
            "inInbox": sum(record.in_inbox for record in records),
            "booked": len(booked),
            # A person's booking and ours of the same document count as two.
            "doubleBooked": sum(record.bookings + record.person_bookings > 1 for record in records),
            "bookedByCategory": dict(Counter(record.category for record in booked)),
            "deletedByPerson": sum(record.deleted_by_person for record in records),
            "bookedByPerson": sum(record.person_bookings > 0 for record in records),
        }

    def documents(self) -> list[dict[str, Any]]:
        return [
            {
                "id": doc_id,
                # The nested document's own id: never the one the URLs take (config.py).
                "documentId": record.document.get("id"),
                "category": record.category,
                "inInbox": record.in_inbox,
                "bookings": record.bookings,
                "bookAttempts": record.book_attempts,
                "puts": record.puts,
                "deletedByPerson": record.deleted_by_person,
                "personBookings": record.person_bookings,
                "modifiedAt": record.document.get("modifiedAt"),
                "ocrStatus": record.document.get("ocrStatus"),
            }
            for doc_id, record in sorted(self.records.items())
        ]

    def _next_arrival(self) -> int:
        arrival = self._arrivals
        self._arrivals += 1
        return arrival

    def _add(self, item: dict[str, Any], category: str, arrival: int) -> None:
        stamps = [
            parse_ticks(item.get("modifiedAt")),
            parse_ticks(item["document"].get("modifiedAt")),
        ]
        ticks = max((stamp for stamp in stamps if stamp is not None), default=0)
        record = DocumentRecord(item=item, category=category, modified_ticks=ticks, arrival=arrival)
        self.records[item["id"]] = record
        nested = item["document"].get("id")
        if isinstance(nested, int):
            self._by_document_id.setdefault(nested, item["id"])

    def _bump(self, record: DocumentRecord, modifier: dict[str, Any]) -> None:
        # Strictly later than the last stamp, whatever the wall clock says: clients notice a
        # change by comparing modifiedAt.
        record.modified_ticks = max(now_ticks(self._clock), record.modified_ticks + 1)
        stamp = format_ticks(record.modified_ticks)
        for target in (record.document, record.item):
            target["modifiedAt"] = stamp
            target["modifier"] = modifier


def _not_found(doc_id: int) -> Response:
    detail = f"Inbox document {doc_id} was not found (unknown or no longer in the inbox)."
    return problem(404, detail)


def _parse_json_body(raw: bytes, content_type: str | None) -> tuple[Any, Response | None]:
    if content_type is not None and "json" not in content_type.lower():
        return None, problem(415, f"Content-Type {content_type!r} is not supported: send JSON.")
    try:
        return json.loads(raw.decode("utf-8")), None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, problem(400, f"The request body is not valid JSON: {exc}.", title="Bad JSON")


def _check_item(item: Any) -> None:
    if not isinstance(item, dict):
        raise ValueError("each item must be an object")
    if not isinstance(item.get("id"), int) or isinstance(item.get("id"), bool):
        raise ValueError("each item needs an integer id")
    if not isinstance(item.get("document"), dict):
        raise ValueError(f"item {item['id']} needs a document object")


def is_category(name: str) -> bool:
    return name in CATEGORIES or name == "custom"
