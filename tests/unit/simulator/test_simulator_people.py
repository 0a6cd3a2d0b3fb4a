"""A person's moves in Lucca, outside the API, between our listing and our booking: a deletion
(the document leaves the inbox and Lucca knows it no more: reads, updates and books answer
404) and a booking by hand (it leaves the inbox as booked, counted apart from the API's
bookings; our later book meets what ``second_book`` plays for a booked document)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from local.lucca_simulator.app import SimulatorApp
from tests.harness import book_url, doc_url, simulator_client

LIST = "/cleemy-procurement/services/inbox"
PUBLISHED = "/cleemy-procurement/api/documents/{}"


@pytest.fixture
def default() -> Iterator[tuple[SimulatorApp, httpx.Client]]:
    app, client = simulator_client()
    yield app, client
    client.close()


def listed_ids(client: httpx.Client) -> list[int]:
    return [item["id"] for item in client.get(LIST, params={"limit": 1000}).json()["items"]]


def ready_ids(app: SimulatorApp) -> list[int]:
    return [d["id"] for d in app.state()["documents"] if d["category"] == "ready"]


def test_a_deleted_document_leaves_the_listing_and_every_call_answers_404(
    default: tuple[SimulatorApp, httpx.Client],
) -> None:
    app, client = default
    doc = ready_ids(app)[0]
    document_id = app.inbox.records[doc].document["id"]
    assert doc in listed_ids(client)

    assert client.post(f"/_sim/documents/{doc}/person/delete").json() == {"moved": True}

    assert doc not in listed_ids(client)
    assert client.get(doc_url(doc)).status_code == 404
    assert client.get(PUBLISHED.format(document_id)).status_code == 404
    assert client.put(doc_url(doc), json={"document": {}}).status_code == 404
    assert client.post(book_url(doc)).status_code == 404


@pytest.mark.parametrize("second_book", [400, 404])
def test_a_deleted_document_answers_404_to_a_book_whatever_a_booked_one_answers(
    second_book: int,
) -> None:
    app, client = simulator_client(second_book=second_book)
    doc = ready_ids(app)[0]
    app.person_moves(doc, "delete")

    assert client.post(book_url(doc)).status_code == 404
    assert app.inbox.records[doc].bookings == 0


@pytest.mark.parametrize("second_book", [400, 404])
def test_a_document_booked_by_a_person_answers_our_book_as_a_booked_one(
    second_book: int,
) -> None:
    app, client = simulator_client(second_book=second_book)
    doc = ready_ids(app)[0]

    assert app.person_moves(doc, "book") is True

    assert doc not in listed_ids(client)
    assert client.get(doc_url(doc)).status_code == 404
    assert client.post(book_url(doc)).status_code == second_book
    record = app.inbox.records[doc]
    assert (record.bookings, record.person_bookings, record.in_inbox) == (0, 1, False)


def test_the_ground_truth_counts_a_persons_moves_apart_from_the_apis_bookings(
    default: tuple[SimulatorApp, httpx.Client],
) -> None:
    app, client = default
    deleted, by_hand, ours = ready_ids(app)[:3]
    app.person_moves(deleted, "delete")
    app.person_moves(by_hand, "book")
    assert client.post(book_url(ours)).status_code == 200

    totals = app.state()["totals"]

    assert (totals["deletedByPerson"], totals["bookedByPerson"], totals["booked"]) == (1, 1, 1)
    assert totals["doubleBooked"] == 0
    detail = client.get(f"/_sim/documents/{by_hand}").json()
    assert (detail["personBookings"], detail["bookings"], detail["deletedByPerson"]) == (
        1,
        0,
        False,
    )
    documents = {d["id"]: d for d in app.state()["documents"]}
    assert documents[deleted]["deletedByPerson"] is True


def test_a_move_on_a_document_out_of_the_inbox_changes_nothing(
    default: tuple[SimulatorApp, httpx.Client],
) -> None:
    app, client = default
    doc = ready_ids(app)[0]
    assert client.post(book_url(doc)).status_code == 200

    assert client.post(f"/_sim/documents/{doc}/person/book").json() == {"moved": False}
    assert app.person_moves(doc, "delete") is False

    record = app.inbox.records[doc]
    assert (record.bookings, record.person_bookings, record.deleted_by_person) == (1, 0, False)
    assert client.post("/_sim/documents/999999/person/delete").status_code == 404
