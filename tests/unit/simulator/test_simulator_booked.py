"""The simulator's ``GET /cleemy-procurement/api/booked-documents``: every document booked
shows there, as the inferences in ``local/lucca_simulator/booked.py`` make it (keyed by
``document.id``, created when booked, ``ToReview``); the published filters (``createdAt.from``
as a day or an instant, the conformity states), v4 paging (at most 1000, ``limit=0`` with
``fields.root=count`` for the count alone); what it refuses; and that its requests are logged
and spend the tenant's budget like every other."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from local.lucca_simulator import SimulatorConfig
from local.lucca_simulator.app import SimulatorApp
from tests.clocks import FakeClock
from tests.harness import InProcessLucca, book_url

BOOKED = "/cleemy-procurement/api/booked-documents"
DAY = 86_400.0


def lucca(**settings: Any) -> tuple[SimulatorApp, httpx.Client, FakeClock]:
    config = SimulatorConfig(invoices=12, seed=5, rate_limit=10_000).updated(settings)
    clock = FakeClock()
    app = SimulatorApp(config, clock)
    client = httpx.Client(
        transport=InProcessLucca(app),
        base_url="http://127.0.0.1",
        headers={"Authorization": f"lucca application={config.api_key}"},
    )
    return app, client, clock


def ready(app: SimulatorApp) -> list[dict[str, Any]]:
    return [d for d in app.state()["documents"] if d["category"] == "ready"]


def book(client: httpx.Client, item_id: int) -> None:
    assert client.post(book_url(item_id)).is_success


def booked(client: httpx.Client, **params: Any) -> httpx.Response:
    return client.get(BOOKED, params={"createdAt.from": "2020-01-01", **params})


def ids(answer: httpx.Response) -> list[int]:
    assert answer.status_code == 200, answer.text
    return [item["id"] for item in answer.json()["items"]]


def test_a_booked_document_shows_keyed_by_its_document_id_created_when_booked() -> None:
    app, client, clock = lucca()
    first, second = ready(app)[:2]
    before = app.document_detail(first["id"])
    assert before is not None
    clock.now += 3600

    book(client, first["id"])

    answer = booked(client)
    assert ids(answer) == [first["documentId"]]  # the one not booked is not there
    (document,) = answer.json()["items"]
    assert document["documentNumber"] == before["document"]["documentNumber"]
    assert document["amountIncludingTaxes"] == before["document"]["amountIncludingTaxes"]
    assert document["attachments"] == before["document"]["attachments"]
    assert document["createdAt"].startswith("2027-01-15T10:00:00")  # booked at NOW + 1 h, Paris
    assert document["invoice"] == {"conformityState": "ToReview"}
    assert second["documentId"] not in ids(answer)


def test_created_from_takes_a_day_or_an_instant() -> None:
    app, client, clock = lucca()
    early, late = ready(app)[:2]
    book(client, early["id"])  # 2027-01-15 09:00 Paris
    clock.now += 2 * DAY
    book(client, late["id"])  # 2027-01-17 09:00 Paris

    assert ids(booked(client, **{"createdAt.from": "2027-01-15"})) == sorted(
        [early["documentId"], late["documentId"]]
    )
    assert ids(booked(client, **{"createdAt.from": "2027-01-16"})) == [late["documentId"]]
    assert ids(booked(client, **{"createdAt.from": "2027-01-17T07:59:59+00:00"})) == [
        late["documentId"]
    ]
    assert ids(booked(client, **{"createdAt.from": "2027-01-17T08:00:01+00:00"})) == []


def test_the_conformity_filters_select_each_type_by_its_state() -> None:
    app, client, _ = lucca()
    book(client, ready(app)[0]["id"])

    assert len(ids(booked(client, **{"invoice.conformityStates": "ToReview,Confirmed"}))) == 1
    assert ids(booked(client, **{"invoice.conformityStates": "Confirmed"})) == []
    # A filter on credit notes leaves the invoices alone.
    assert len(ids(booked(client, **{"creditNote.conformityStates": "Confirmed"}))) == 1
    refused = booked(client, **{"invoice.conformityStates": "Approved"})
    assert refused.status_code == 400


def test_it_pages_like_every_v4_list_and_counts_with_limit_zero() -> None:
    app, client, _ = lucca()
    for doc in ready(app)[:5]:
        book(client, doc["id"])
    every = sorted(doc["documentId"] for doc in ready(app)[:5])

    count = booked(client, limit=0, page=1, **{"fields.root": "count"})
    assert count.json() == {"count": 5, "items": []}
    pages = [ids(booked(client, limit=2, page=page)) for page in (1, 2, 3, 4)]
    assert pages == [every[:2], every[2:4], every[4:], []]
    with_count = booked(client, limit=2, page=1, **{"fields.root": "count"}).json()
    assert (with_count["count"], len(with_count["items"])) == (5, 2)


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 1001},
        {"limit": 0},  # the count alone, without asking for it
        {"page": 0},
        {"createdAt.from": "last week"},
        {"document.type": "Invoice"},  # not one of this endpoint's filters
    ],
)
def test_a_query_outside_the_endpoint_s_reference_is_refused(params: dict[str, Any]) -> None:
    _, client, _ = lucca()

    answer = booked(client, **params)

    assert answer.status_code == 400
    assert answer.headers["content-type"].startswith("application/problem+json")


def test_only_get_is_served() -> None:
    _, client, _ = lucca()

    assert client.post(BOOKED).status_code == 405


def test_its_requests_are_logged_and_spend_the_tenant_s_budget() -> None:
    app, client, _ = lucca(rate_limit=2)

    assert booked(client).status_code == 200
    assert booked(client).status_code == 200
    assert booked(client).status_code == 429

    assert [entry["endpoint"] for entry in app.requests()] == ["booked"] * 3
    assert app.state()["totals"]["byEndpoint"]["booked"] == 3
