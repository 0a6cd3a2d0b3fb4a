"""The simulator's switches for Lucca's published read of one document and for currencies that
are not currencies.

``GET /cleemy-procurement/api/documents/{id}`` is published, but which id it takes (the inbox
item's ``id`` or its ``document.id``) is not, nor whether every tenant serves it: the simulator
plays each answer (``published_route``, ``published_key``, ``absent_published_status``). Lucca's
published currency examples all read ``"Invalid"``: the opt-in category ``currency_invalid``
plays documents whose amounts carry such a value (``invalid_currency``).
"""

from __future__ import annotations

from typing import Any

import pytest

from local.lucca_simulator import ConfigError, SimulatorConfig
from local.lucca_simulator.app import SimulatorApp
from local.lucca_simulator.config import DEFAULT_CATEGORY_WEIGHTS, OPT_IN_CATEGORIES
from local.lucca_simulator.faults import Fault
from tests.harness import book_url, doc_url, simulator_client

LIST = "/cleemy-procurement/services/inbox"


def published_url(url_id: int) -> str:
    return f"/cleemy-procurement/api/documents/{url_id}"


def ready(app: SimulatorApp) -> list[dict[str, Any]]:
    """(id, documentId, ...) of the ready documents, the two ids differing by the offset."""
    return [d for d in app.state()["documents"] if d["category"] == "ready"]


# --- the published read -----------------------------------------------------------------------


def test_by_default_it_is_served_keyed_by_the_document_id_and_answers_the_document_part() -> None:
    app, client = simulator_client()
    doc = ready(app)[0]
    item_id, document_id = doc["id"], doc["documentId"]
    assert item_id != document_id

    answer = client.get(published_url(document_id))

    assert answer.status_code == 200
    assert answer.json() == client.get(doc_url(item_id)).json()["document"]
    assert {"ocrStatus", "modifiedAt", "id"} <= answer.json().keys()
    # The item's id names no document here: a document's 404, as problem+json.
    missing = client.get(published_url(item_id))
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/problem+json")


def test_keyed_by_the_item_id_it_answers_the_same_document_under_the_other_id() -> None:
    app, client = simulator_client(published_key="item")
    doc = ready(app)[0]

    answer = client.get(published_url(doc["id"]))

    assert answer.status_code == 200
    assert answer.json()["id"] == doc["documentId"]  # the answer still carries document.id
    assert client.get(published_url(doc["documentId"])).status_code == 404


@pytest.mark.parametrize("status", [404, 405])
def test_absent_it_answers_the_same_routing_refusal_for_every_id(status: int) -> None:
    app, client = simulator_client(published_route="absent", absent_published_status=status)
    doc = ready(app)[0]

    answers = [client.get(published_url(i)) for i in (doc["id"], doc["documentId"], 999_999)]

    assert {a.status_code for a in answers} == {status}
    assert all(set(a.json()) == {"Status", "Message"} for a in answers)  # not a document's 404
    if status == 405:
        assert all(a.headers["Allow"] == "PUT" for a in answers)
    assert client.get(doc_url(doc["id"])).status_code == 200  # the other GET is as ever


def test_the_two_gets_are_switched_apart() -> None:
    app, client = simulator_client(get_route="absent")
    doc = ready(app)[0]
    assert client.get(published_url(doc["documentId"])).status_code == 200
    assert client.get(doc_url(doc["id"])).status_code == 405
    app.configure({"published_route": "absent", "get_route": "present"})  # no reset needed
    assert client.get(published_url(doc["documentId"])).status_code == 404
    assert client.get(doc_url(doc["id"])).status_code == 200


def test_a_booked_document_is_not_found_by_it() -> None:
    app, client = simulator_client()
    doc = ready(app)[0]
    assert client.post(book_url(doc["id"])).status_code == 200
    assert client.get(published_url(doc["documentId"])).status_code == 404


def test_it_is_logged_and_faulted_as_the_item_it_reads() -> None:
    """Requests are counted per inbox item, whichever GET read it and by whichever id."""
    app, client = simulator_client()
    doc = ready(app)[0]
    app.script_faults("get", doc["id"], [Fault("503", after_operation=False, variant=0.0)])

    assert client.get(published_url(doc["documentId"])).status_code == 503
    assert client.get(published_url(doc["documentId"])).status_code == 200
    assert client.put(published_url(doc["documentId"]), json={}).status_code == 405

    log = app.requests()
    assert [(e["endpoint"], e["documentId"], e["status"]) for e in log] == [
        ("get", doc["id"], 503),
        ("get", doc["id"], 200),
        ("other", doc["documentId"], 405),
    ]
    assert app.state()["totals"]["byEndpoint"]["get"] == 2


def test_published_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="published_route"):
        SimulatorConfig(published_route="sometimes")
    with pytest.raises(ConfigError, match="published_key"):
        SimulatorConfig(published_key="uuid")
    with pytest.raises(ConfigError, match="absent_published_status"):
        SimulatorConfig(absent_published_status=410)


# --- currencies that are not currencies -------------------------------------------------------


def amounts_currencies(item: dict[str, Any]) -> set[str]:
    amounts = item["document"]["amountIncludingTaxes"]
    lines = [amounts["excludingTaxes"], *amounts["taxes"], amounts["includingTaxes"]]
    return {line["currency"] for line in lines}


def test_the_invalid_currency_category_is_off_by_default() -> None:
    assert "currency_invalid" in OPT_IN_CATEGORIES
    assert "currency_invalid" not in DEFAULT_CATEGORY_WEIGHTS
    app, _ = simulator_client(invoices=200)
    assert {d["category"] for d in app.state()["documents"]} <= set(DEFAULT_CATEGORY_WEIGHTS)


@pytest.mark.parametrize("value", ["Invalid", "EURO", "€"])
def test_invalid_currency_documents_carry_the_value_on_every_amount(value: str) -> None:
    app, client = simulator_client(
        category_weights={"ready": 1.0, "currency_invalid": 1.0}, invalid_currency=value
    )
    items = client.get(LIST, params={"limit": 1000}).json()["items"]
    category = {d["id"]: d["category"] for d in app.state()["documents"]}
    invalid = [item for item in items if category[item["id"]] == "currency_invalid"]
    others = [item for item in items if category[item["id"]] == "ready"]
    assert invalid
    assert others

    assert all(amounts_currencies(item) == {value} for item in invalid)
    assert all(value not in amounts_currencies(item) for item in others)
    # Otherwise complete and consistent: only the currency is wrong.
    for item in invalid:
        document = item["document"]
        assert document["ocrStatus"] in ("Processed", "NotApplicable")
        assert document["documentNumber"]


def test_invalid_currency_shapes_the_inbox_so_it_takes_a_reset() -> None:
    app, _ = simulator_client()
    with pytest.raises(ConfigError, match="reset"):
        app.configure({"invalid_currency": "EURO"})
    with pytest.raises(ConfigError, match="invalid_currency"):
        SimulatorConfig(invalid_currency=" ")
