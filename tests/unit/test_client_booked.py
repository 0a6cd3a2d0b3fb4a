"""The client's read of Lucca's booked documents (``booked_page``, ``count_booked``) against
scripted answers (httpx mock transport): the query it sends (``createdAt.from``, v4 paging,
the count as Lucca's guide asks for it), the shape it accepts (unknown fields kept), the answers
it refuses, and the retries and request counting it shares with every other call."""

from __future__ import annotations

from decimal import Decimal

import httpx
import pytest

from cleemy_booker.errors import InvalidResponseError
from cleemy_booker.models import attachment_file_ids
from tests.unit.test_client import Script, make_client

BOOKED = {
    "id": 5001,
    "type": "Invoice",
    "documentNumber": "F-1",
    "documentDate": "2027-01-09",
    "amountIncludingTaxes": {"includingTaxes": {"value": 120.5, "currency": "EUR"}},
    "attachments": [{"id": 1, "file": {"id": "b-file"}}, {"id": 2, "file": {"id": "a-file"}}],
    "createdAt": "2027-01-12T10:00:00.1234567+01:00",
    "invoice": {"conformityState": "Confirmed"},
    "supplier": {"id": 9, "name": "Papeterie Dupont"},
}


def test_the_count_is_asked_as_lucca_s_guide_does_with_the_creation_filter() -> None:
    script = Script(httpx.Response(200, json={"count": 2345, "items": []}))
    client = make_client(script)

    assert client.count_booked("2027-01-08") == 2345

    (request,) = script.requests
    assert request.url.path == "/cleemy-procurement/api/booked-documents"
    assert dict(request.url.params) == {
        "createdAt.from": "2027-01-08",
        "limit": "0",
        "page": "1",
        "fields.root": "count",
    }
    assert client.requests_sent == {"booked": 1}


def test_a_page_is_read_into_booked_documents_keeping_what_lucca_added() -> None:
    script = Script(httpx.Response(200, json={"items": [BOOKED]}))
    client = make_client(script)

    page = client.booked_page(page=3, limit=1000, created_from="2027-01-08")

    (document,) = page.items
    assert document.id == 5001
    assert document.amountIncludingTaxes is not None
    assert document.amountIncludingTaxes.includingTaxes is not None
    assert document.amountIncludingTaxes.includingTaxes.value == Decimal("120.5")
    assert attachment_file_ids(document.attachments) == ("a-file", "b-file")
    assert document.model_dump()["supplier"] == {"id": 9, "name": "Papeterie Dupont"}
    assert dict(script.requests[0].url.params) == {
        "createdAt.from": "2027-01-08",
        "limit": "1000",
        "page": "3",
    }


@pytest.mark.parametrize(
    "body",
    [
        [BOOKED],  # a bare array
        {"items": [{"documentNumber": "F-1"}]},  # an item without an id
        {"data": {"items": []}},
    ],
)
def test_an_answer_that_is_no_page_of_booked_documents_is_refused(body: object) -> None:
    client = make_client(Script(httpx.Response(200, json=body)))

    with pytest.raises(InvalidResponseError) as raised:
        client.booked_page(page=1, limit=1000, created_from="2027-01-08")

    assert raised.value.endpoint == "booked"


@pytest.mark.parametrize("count", [None, -1, "many"])
def test_a_count_that_is_no_count_is_refused(count: object) -> None:
    client = make_client(Script(httpx.Response(200, json={"count": count, "items": []})))

    with pytest.raises(InvalidResponseError):
        client.count_booked("2027-01-08")


def test_more_than_lucca_s_page_is_not_asked() -> None:
    script = Script(httpx.Response(200, json={"items": []}))
    client = make_client(script)

    with pytest.raises(ValueError, match="limit"):
        client.booked_page(page=1, limit=1001, created_from="2027-01-08")

    assert script.requests == []


def test_a_busy_lucca_is_retried_as_for_every_call_and_each_attempt_counted() -> None:
    script = Script(
        httpx.Response(503, text="busy"),
        httpx.Response(200, json={"count": 3, "items": []}),
    )
    client = make_client(script)

    assert client.count_booked("2027-01-08") == 3
    assert client.requests_sent == {"booked": 2}
