"""Reading the ledger: a document's trail, and the documents in a status (through the status
index), listed, counted, or the oldest one."""

from __future__ import annotations

import json
from typing import Any

from ..novelty import Novelty
from .items import STATUS_INDEX, _state_from_item
from .records import (
    BOOK_UNCERTAIN,
    BookingTrail,
    DocumentState,
    LedgerEvent,
    Status,
    booking_trail,
)
from .table import LedgerTable

#: Pages one count reads at most. A ``Select="COUNT"`` query still reads (and bills) every item
#: it counts, up to 1 MB a page: thousands of documents. Past ten pages the count is a lower
#: bound: an alarm on held documents needs to know there are many, not exactly how many, and a
#: runaway pile of holds cannot make each count read the whole index.
COUNT_MAX_PAGES = 10


class LedgerQueries:
    """The audit queries: what the digest, the operator's tools and the poller (its count of
    held documents, its reconciliation) read."""

    def __init__(self, table: LedgerTable) -> None:
        self._db = table

    def history(self, document_id: int) -> list[LedgerEvent]:
        """Every decision recorded for a document, oldest first."""
        events: list[LedgerEvent] = []
        for item in self._db.query(
            KeyConditionExpression="pk = :pk AND begins_with(sk, :event)",
            ExpressionAttributeValues={
                ":pk": {"S": f"doc#{document_id}"},
                ":event": {"S": "event#"},
            },
        ):
            events.append(
                LedgerEvent(
                    document_id=int(item["documentId"]["N"]),
                    at=item["at"]["S"],
                    kind=item["kind"]["S"],
                    detail=json.loads(item["detail"]["S"]),
                )
            )
        return events

    def in_status(self, status: Status) -> list[DocumentState]:
        """Every document currently in ``status`` (e.g. held ones, with their reasons)."""
        return [
            _state_from_item(item)
            for item in self._db.query(
                IndexName=STATUS_INDEX,
                KeyConditionExpression="statusKey = :s",
                ExpressionAttributeValues={":s": {"S": status}},
            )
        ]

    def in_status_between(self, status: Status, start: str, end: str) -> list[DocumentState]:
        """Documents in ``status`` whose state was last written in [``start``, ``end``), oldest
        first: booked (or failed) in a period, as booking is the last write a booked document
        gets. Bounds are ledger stamps (``clock.utc_iso``), which sort as text."""
        if start >= end:
            return []  # DynamoDB refuses a BETWEEN whose bounds are the wrong way round
        found = self._db.query(
            IndexName=STATUS_INDEX,
            KeyConditionExpression="statusKey = :s AND updatedAt BETWEEN :start AND :end",
            ExpressionAttributeValues={
                ":s": {"S": status},
                ":start": {"S": start},
                ":end": {"S": end},
            },
        )
        # BETWEEN includes its upper bound: a state written at exactly ``end`` belongs to the
        # next period, so consecutive periods neither miss nor repeat a document.
        return [_state_from_item(item) for item in found if item["updatedAt"]["S"] != end]

    def oldest_in_status(self, status: Status) -> DocumentState | None:
        """The document that has been in ``status`` the longest (one item read)."""
        page = self._db.client.query(
            TableName=self._db.name,
            IndexName=STATUS_INDEX,
            KeyConditionExpression="statusKey = :s",
            ExpressionAttributeValues={":s": {"S": status}},
            ScanIndexForward=True,
            Limit=1,
        )
        items = page.get("Items", [])
        return _state_from_item(items[0]) if items else None

    def uncertain_bookings(self) -> list[DocumentState]:
        """Documents a booking call of ours may have booked unseen: in ``BOOKING`` (in flight,
        or its attempt ended without an answer), or held as ``book_uncertain``.

        Two index queries. The held one reads every held entry (a filter is applied after the
        read, and billed as read); the poller asks only after a listing that can settle them.
        """
        found = self.in_status(Status.BOOKING)
        held = self._db.query(
            IndexName=STATUS_INDEX,
            KeyConditionExpression="statusKey = :s",
            # ``reasons`` is a JSON list of "code: words" texts.
            FilterExpression="contains(reasons, :code)",
            ExpressionAttributeValues={
                ":s": {"S": Status.HELD},
                ":code": {"S": f'"{BOOK_UNCERTAIN}:'},
            },
        )
        return found + [_state_from_item(item) for item in held]

    def trail_of_booking(
        self, document_id: int, state: DocumentState | None = None
    ) -> BookingTrail:
        """How a booked document was booked: from its ``state`` when that carries it (no read),
        else from its events (one query). A month's export is one query of the status index
        rather than one more for each document (see README, "What the ledger keeps")."""
        if state is not None and state.trail is not None:
            return state.trail
        return booking_trail(self.history(document_id))

    def count_in_status(self, status: Status) -> int:
        """How many documents are in ``status``, without reading them out (``Select="COUNT"``);
        a lower bound past ``COUNT_MAX_PAGES`` pages."""
        query: dict[str, Any] = {
            "TableName": self._db.name,
            "IndexName": STATUS_INDEX,
            "KeyConditionExpression": "statusKey = :s",
            "ExpressionAttributeValues": {":s": {"S": status}},
            "Select": "COUNT",
        }
        total = 0
        for _ in range(COUNT_MAX_PAGES):
            page = self._db.client.query(**query)
            total += page["Count"]
            if "LastEvaluatedKey" not in page:
                break
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return total

    def count_since(self, status: Status, since: str, at_most: int) -> int:
        """How many documents moved to ``status`` at or after ``since`` (a ledger stamp) and
        are still in it, counted up to ``at_most``: one page of the status index, so a few
        items read however many there are."""
        page = self._db.client.query(
            TableName=self._db.name,
            IndexName=STATUS_INDEX,
            KeyConditionExpression="statusKey = :s AND updatedAt >= :since",
            ExpressionAttributeValues={":s": {"S": status}, ":since": {"S": since}},
            Select="COUNT",
            Limit=at_most,
        )
        return int(page["Count"])

    def novelties(self, since: str = "") -> list[Novelty]:
        """What Lucca sent that is new, first seen at or after ``since`` (a ledger stamp;
        empty: all of them), oldest first."""
        condition = "statusKey = :s"
        values: dict[str, Any] = {":s": {"S": Status.NOVELTY}}
        if since:  # a key condition takes no empty string
            condition += " AND updatedAt >= :since"
            values[":since"] = {"S": since}
        found = self._db.query(
            IndexName=STATUS_INDEX,
            KeyConditionExpression=condition,
            ExpressionAttributeValues=values,
        )
        return [_novelty_from_item(item) for item in found]


def _novelty_from_item(item: dict[str, Any]) -> Novelty:
    document = item.get("documentId", {}).get("N")
    kind = item["kind"]["S"]
    return Novelty(
        kind=kind if kind in ("field", "value", "route") else "field",
        key=item["novelty"]["S"],
        example=item.get("example", {}).get("S", ""),
        document_id=int(document) if document is not None else None,
        first_seen=item["updatedAt"]["S"],
    )
