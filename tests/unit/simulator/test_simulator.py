"""The Lucca simulator, over real HTTP on loopback.

The simulator is the stand-in every other test, the benchmark and the demo trust, so its
behaviour is pinned here: the API facts of lucca-api.md, its inferences, and the ground truth.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from cleemy_booker import models
from local.lucca_simulator import ConfigError, Simulator, SimulatorConfig
from local.lucca_simulator.app import SimulatorApp
from tests.clocks import FakeClock
from tests.harness import InProcessLucca, book_url, doc_url

LIST = "/cleemy-procurement/services/inbox"
BASELINE = SimulatorConfig(invoices=80, seed=7, rate_limit=10_000, window_seconds=60.0)
STAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{7}[+-]\d{2}:\d{2}$")


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(BASELINE) as simulator:
        yield simulator


@pytest.fixture(autouse=True)
def fresh(sim: Simulator) -> None:
    """Every test starts from the baseline inbox, logs and settings."""
    sim.reset(**{k: v for k, v in BASELINE.to_dict().items() if k != "port"})


@pytest.fixture
def client(sim: Simulator) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"lucca application={sim.api_key}", "Accept": "application/json"}
    with httpx.Client(base_url=sim.url, headers=headers, timeout=5.0) as http:
        yield http


@pytest.fixture
def admin(sim: Simulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.url, timeout=5.0) as http:
        yield http


def ids_in(sim: Simulator, category: str) -> list[int]:
    return [d["id"] for d in sim.state()["documents"] if d["category"] == category and d["inInbox"]]


def list_all(client: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    page = 1
    while True:
        batch = client.get(LIST, params={**params, "limit": 7, "page": page}).json()["items"]
        if not batch:
            return items
        items += batch
        page += 1


def write_shape(item: dict[str, Any]) -> dict[str, Any]:
    """The PUT body for an item, written independently of the project's own mapping."""
    doc = item["document"]
    read_only = {"id", "attachments", "ocrStatus", "createdAt", "modifiedAt", "author"}
    read_only |= {"modifier", "owner", "documentBreakdown"}
    body = {k: v for k, v in doc.items() if k not in read_only}
    body["ownerId"] = doc["owner"]["id"] if doc["owner"] else None
    if doc["context"] and doc["context"]["purchase"]:
        purchase = doc["context"]["purchase"]
        body["context"] = {"purchase": {"id": purchase["id"], "type": purchase["type"]}}
    return {"document": body}


def is_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert {"type", "title", "detail"} <= body.keys()
    return body


# --- auth ------------------------------------------------------------------------------------


def test_requests_without_the_api_key_get_401_and_spend_no_budget(
    sim: Simulator, client: httpx.Client
) -> None:
    sim.configure(rate_limit=2)
    with httpx.Client(base_url=sim.url) as anonymous:
        for headers in ({}, {"Authorization": "lucca application=wrong"}, {"Authorization": "x"}):
            response = anonymous.get(LIST, headers=headers)
            is_problem(response, 401)
            assert response.headers["X-Request-Id"]

    assert client.get(LIST).status_code == 200
    assert client.get(LIST).status_code == 200
    assert client.get(LIST).status_code == 429


# --- listing ---------------------------------------------------------------------------------


def test_count_rides_on_a_page_request(client: httpx.Client) -> None:
    body = client.get(LIST, params={"fields.root": "count", "limit": 10, "page": 1}).json()

    assert body["count"] == 80
    assert len(body["items"]) == 10
    assert "count" not in client.get(LIST, params={"limit": 10}).json()


def test_limit_zero_answers_the_count_without_items(client: httpx.Client) -> None:
    assert client.get(LIST, params={"fields.root": "count", "limit": 0}).json() == {
        "count": 80,
        "items": [],
    }
    is_problem(client.get(LIST, params={"limit": 0}), 400)


def test_default_page_is_100_items_from_page_1(sim: Simulator, client: httpx.Client) -> None:
    sim.reset(invoices=150)

    assert len(client.get(LIST).json()["items"]) == 100
    assert len(client.get(LIST, params={"page": 2}).json()["items"]) == 50
    assert client.get(LIST, params={"page": 3}).json() == {"items": []}


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"limit": 1001}, "limit"),
        ({"limit": -1}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"page": 0}, "page"),
        ({"supplier": "OVH"}, "supplier"),
        ({"orderBy": "id,desc"}, "orderBy"),
        ({"document.ocrStatus": "Done"}, "document.ocrStatus"),
        ({"createdAt": "after,2026-01-01"}, "createdAt"),
        ({"fields.root": "items"}, "fields.root"),
    ],
)
def test_bad_paging_and_unknown_filters_get_400_naming_the_parameter(
    client: httpx.Client, params: dict[str, Any], named: str
) -> None:
    body = is_problem(client.get(LIST, params=params), 400)
    assert named in body["errors"]


def test_pages_are_ordered_by_id_and_cover_the_inbox(client: httpx.Client) -> None:
    items = list_all(client)
    ids = [item["id"] for item in items]

    assert ids == sorted(set(ids))
    assert len(ids) == 80
    # The nested document's id is another number than the item's (the one the URLs take).
    offset = SimulatorConfig().document_id_offset
    assert all(item["document"]["id"] == item["id"] + offset != item["id"] for item in items)
    assert client.get(LIST, params={"limit": 1000}).json()["items"] == items


def test_filters(client: httpx.Client) -> None:
    every = client.get(LIST, params={"limit": 1000}).json()["items"]

    credit = client.get(LIST, params={"document.type": "CreditNote", "fields.root": "count"})
    assert credit.json()["count"] == sum(i["document"]["type"] == "CreditNote" for i in every)
    assert all(i["document"]["type"] == "CreditNote" for i in credit.json()["items"])

    waiting = list_all(client, **{"document.ocrStatus": "Pending,Processing"})
    assert waiting
    assert {i["document"]["ocrStatus"] for i in waiting} <= {"Pending", "Processing"}

    chosen = [every[3]["id"], every[40]["id"]]
    by_id = client.get(LIST, params={"id": f"{chosen[0]},{chosen[1]}"}).json()["items"]
    assert [i["id"] for i in by_id] == chosen

    march = list_all(client, createdAt=["since,2026-03-01", "until,2026-03-31"])
    assert march
    assert all(i["createdAt"].startswith("2026-03") for i in march)
    assert len(march) == sum(i["createdAt"].startswith("2026-03") for i in every)


def test_booking_between_pages_shifts_later_pages(sim: Simulator, client: httpx.Client) -> None:
    first = client.get(LIST, params={"limit": 10, "page": 1}).json()["items"]
    every = [i["id"] for i in client.get(LIST, params={"limit": 1000}).json()["items"]]
    bookable = [i["id"] for i in first if i["id"] in ids_in(sim, "ready")][:3]
    for doc_id in bookable:
        assert client.post(book_url(doc_id)).status_code == 200

    second = [i["id"] for i in client.get(LIST, params={"limit": 10, "page": 2}).json()["items"]]

    # Page 2 now starts where page 1 used to end + the booked ones: those are never seen.
    assert second == every[10 + len(bookable) : 20 + len(bookable)]
    assert client.get(LIST, params={"fields.root": "count", "limit": 0}).json()["count"] == 77


# --- the seeded inbox ------------------------------------------------------------------------


def test_same_seed_gives_the_same_inbox(sim: Simulator, client: httpx.Client) -> None:
    first = client.get(LIST, params={"limit": 1000}).content
    sim.reset(seed=7)
    again = client.get(LIST, params={"limit": 1000}).content
    sim.reset(seed=8)
    other = client.get(LIST, params={"limit": 1000}).content

    assert first == again
    assert first != other


def test_generated_documents_are_realistic_and_match_their_category(
    sim: Simulator, client: httpx.Client
) -> None:
    sim.reset(invoices=400, seed=3)
    items = {i["id"]: i for i in client.get(LIST, params={"limit": 1000}).json()["items"]}
    categories = {d["id"]: d["category"] for d in sim.state()["documents"]}
    assert set(categories.values()) == set(BASELINE.category_weights)

    for doc_id, item in items.items():
        doc, category = item["document"], categories[doc_id]
        assert STAMP.match(item["createdAt"])
        assert STAMP.match(doc["modifiedAt"])
        assert {"supplierReference", "costCenterCode"} <= doc.keys()
        assert "workflowHint" in item
        if doc["context"] is not None:  # unknown fields a PUT must keep, in context too
            assert "matchedBy" in doc["context"]
        if doc["context"] and doc["context"]["purchase"]:
            assert doc["context"]["purchase"]["orderNumber"].startswith("BC-")
        assert item["source"]["type"] in {"email", "upload"}
        assert item["action"] == {}
        assert doc["attachments"][0]["file"]["id"]
        _check_category(doc, category)


def _check_category(doc: dict[str, Any], category: str) -> None:
    finished = doc["ocrStatus"] in {"Processed", "NotApplicable"}
    if category == "ocr_pending":
        assert doc["ocrStatus"] in {"Pending", "Processing"}
        return
    if category == "ocr_failed":
        assert doc["ocrStatus"] == "Failed"
        return
    assert finished
    if category == "incomplete":
        amounts = doc["amountIncludingTaxes"]
        assert None in (doc["documentNumber"], doc["documentDate"], amounts) or (
            amounts["includingTaxes"] is None
        )
        return
    assert re.match(r"^(F|FA|INV|AV)-2026-\d{5}$", doc["documentNumber"])
    assert doc["documentDate"].startswith("2026-")
    gap = abs(_excluding_plus_taxes(doc) - _including(doc))
    if category == "amounts_mismatch":
        assert gap > Decimal("0.01")
        return
    assert gap == 0
    assert doc["amountIncludingTaxes"]["roundingMode"] == "HalfUp"
    assert doc["type"] == ("CreditNote" if category == "credit_note" else "Invoice")
    if category == "ready_needs_label":
        assert doc["accountingLabel"] is None or doc["dueDate"] is None
    else:
        assert doc["accountingLabel"]
        assert doc["dueDate"]


def _including(doc: dict[str, Any]) -> Decimal:
    return Decimal(str(doc["amountIncludingTaxes"]["includingTaxes"]["value"]))


def _excluding_plus_taxes(doc: dict[str, Any]) -> Decimal:
    amounts = doc["amountIncludingTaxes"]
    taxes = sum((Decimal(str(t["value"])) for t in amounts["taxes"]), Decimal(0))
    return Decimal(str(amounts["excludingTaxes"]["value"])) + taxes


def test_items_parse_with_the_project_models(client: httpx.Client) -> None:
    page = models.InboxPage.model_validate_json(
        client.get(LIST, params={"limit": 1000, "fields.root": "count"}).content
    )

    assert page.count == len(page.items) == 80


# --- GET one ---------------------------------------------------------------------------------


def test_get_one_document_or_404(sim: Simulator, client: httpx.Client) -> None:
    first = client.get(LIST, params={"limit": 1}).json()["items"][0]

    assert client.get(doc_url(first["id"])).json() == first
    is_problem(client.get(doc_url(1)), 404)

    ready = ids_in(sim, "ready")[0]
    client.post(book_url(ready))
    is_problem(client.get(doc_url(ready)), 404)


# --- PUT -------------------------------------------------------------------------------------


def test_put_rejects_bad_bodies_and_changes_nothing(sim: Simulator, client: httpx.Client) -> None:
    doc_id = ids_in(sim, "ready")[0]
    item = client.get(doc_url(doc_id)).json()
    good = write_shape(item)

    def errors_of(body: Any) -> dict[str, Any]:
        errors: dict[str, Any] = is_problem(client.put(doc_url(doc_id), json=body), 400)["errors"]
        return errors

    assert "document" in errors_of({"action": None})
    assert "document.type" in errors_of({"document": {**good["document"], "type": None}})
    with_read_only = {
        **good["document"],
        "id": doc_id,
        "owner": item["document"]["owner"],
        "ocrStatus": "Processed",
        "attachments": [],
        "documentBreakdown": None,
    }
    assert {
        "document.id",
        "document.owner",
        "document.ocrStatus",
        "document.attachments",
        "document.documentBreakdown",
    } <= errors_of({"document": with_read_only}).keys()
    string_amount = json.loads(json.dumps(good))
    string_amount["document"]["amountIncludingTaxes"]["includingTaxes"]["value"] = "120.00"
    assert "document.amountIncludingTaxes.includingTaxes.value" in errors_of(string_amount)
    assert "document.dueDate" in errors_of({"document": {**good["document"], "dueDate": "31/12"}})
    malformed = client.put(
        doc_url(doc_id), content=b'{"document": ', headers={"Content-Type": "application/json"}
    )
    is_problem(malformed, 400)

    detail = sim.document(doc_id)
    assert detail is not None
    assert detail["puts"] == 0
    assert len(detail["putBodies"]) == 6  # every body received is kept
    assert detail["document"] == item["document"]


def test_put_is_a_real_put_left_out_fields_are_reset(sim: Simulator, client: httpx.Client) -> None:
    doc_id = ids_in(sim, "ready")[0]
    item = client.get(doc_url(doc_id)).json()
    assert item["document"]["costCenterCode"] or item["document"]["supplierReference"]
    body = write_shape(item)
    del body["document"]["costCenterCode"]  # a client that does not know this field
    del body["document"]["amountIncludingTaxes"]["roundingMode"]
    del body["document"]["comment"]
    body["document"]["ownerId"] = 438
    body["document"]["accountingLabel"] = "606400 Fournitures administratives"

    response = client.put(doc_url(doc_id), json=body)

    assert response.status_code == 200
    updated = response.json()["document"]
    assert updated["costCenterCode"] is None
    assert updated["comment"] is None
    assert "roundingMode" not in updated["amountIncludingTaxes"]
    assert updated["supplierReference"] == item["document"]["supplierReference"]
    assert updated["accountingLabel"] == "606400 Fournitures administratives"
    assert updated["owner"]["id"] == 438
    assert updated["owner"]["name"] == "Léa Moreau"
    assert STAMP.match(updated["modifiedAt"])
    assert _instant(updated["modifiedAt"]) > _instant(item["document"]["modifiedAt"])
    assert response.json()["modifiedAt"] == updated["modifiedAt"]
    assert updated["attachments"] == item["document"]["attachments"]
    detail = sim.document(doc_id)
    assert detail is not None
    assert detail["puts"] == 1
    assert detail["putBodies"] == [body]
    assert client.get(doc_url(doc_id)).json() == response.json()


def _instant(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp).astimezone(UTC)


@pytest.mark.parametrize("shape", ["lucca.fr", "luccasoftware.com"])
def test_a_full_put_of_the_project_write_shape_changes_nothing_but_stamps(
    sim: Simulator, client: httpx.Client, shape: str
) -> None:
    sim.configure(write_shape=shape)
    stamps = {"modifiedAt", "modifier"}
    for raw in client.get(LIST, params={"limit": 30}).json()["items"]:
        body = models.to_write_shape(models.InboxItem.model_validate(raw)).to_json()

        assert client.put(doc_url(raw["id"]), json=body).status_code == 200

        after = client.get(doc_url(raw["id"])).json()
        assert {k: v for k, v in after["document"].items() if k not in stamps} == {
            k: v for k, v in raw["document"].items() if k not in stamps
        }
        assert {k: v for k, v in after.items() if k not in stamps | {"document"}} == {
            k: v for k, v in raw.items() if k not in stamps | {"document"}
        }


# --- the two published write shapes and the unknown fields a PUT must keep -------------------


def crafted_item(doc_id: int, **document_changes: Any) -> dict[str, Any]:
    """An item with every part the four shape-dependent fields live in, and unknown fields."""
    money = {"value": 100.0, "currency": "USD"}
    document = {
        "id": doc_id,
        "owner": None,
        "type": "Invoice",
        "context": {
            "purchase": {"id": 77, "href": "/p/77", "name": "P", "type": "Framework", "po": "X"},
            "matchedBy": "supplierReference",
        },
        "documentDate": "2026-10-02",
        "documentNumber": "F-1",
        "amountIncludingTaxes": {
            "excludingTaxes": money,
            "taxes": [{"rateTypeId": 1, "value": 20.0, "currency": "USD"}],
            "includingTaxes": {"value": 120.0, "currency": "USD"},
        },
        "accountingLabel": None,
        "comment": None,
        "intraCommunityTaxes": False,
        "ocrStatus": "Processed",
        "dueDate": None,
        "paymentDetails": {"paymentMethod": "Cheque", "bankAccount": None, "payee": "Z"},
        **document_changes,
    }
    return {"id": doc_id, "document": document, "action": {}, "workflowHint": {"step": 2}}


def full_body(item: dict[str, Any]) -> dict[str, Any]:
    """The lucca.fr body, every unknown field included (written independently of models.py)."""
    doc = copy.deepcopy(item["document"])
    for name in ("id", "ocrStatus", "owner"):
        doc.pop(name)
    doc["ownerId"] = None
    purchase = doc["context"]["purchase"]
    for name in ("href", "name"):
        purchase.pop(name)
    return {"document": doc, "workflowHint": item["workflowHint"]}


def short_body(item: dict[str, Any]) -> dict[str, Any]:
    """The luccasoftware.com body: no type, purchase type, currencies or payment method."""
    body = full_body(item)
    doc = body["document"]
    del doc["type"], doc["context"]["purchase"]["type"], doc["paymentDetails"]["paymentMethod"]
    amounts = doc["amountIncludingTaxes"]
    for money in (amounts["excludingTaxes"], amounts["includingTaxes"], *amounts["taxes"]):
        del money["currency"]
    return body


def the_four(document: dict[str, Any]) -> tuple[Any, ...]:
    amounts = document.get("amountIncludingTaxes") or {}
    currencies = [
        (money or {}).get("currency")
        for money in (amounts.get("excludingTaxes"), amounts.get("includingTaxes"))
    ] + [tax.get("currency") for tax in amounts.get("taxes", [])]
    return (
        document.get("type"),
        document["context"]["purchase"].get("type"),
        (document.get("paymentDetails") or {}).get("paymentMethod"),
        tuple(currencies),
    )


STORED_FOUR = ("Invoice", "Framework", "Cheque", ("USD", "USD", "USD"))


def test_write_shape_is_one_of_the_two_published() -> None:
    assert SimulatorConfig().write_shape == "lucca.fr"
    with pytest.raises(ConfigError, match="write_shape"):
        SimulatorConfig(write_shape="lucca.com")


def test_under_lucca_fr_the_four_fields_are_written_and_reset_like_any_other(
    sim: Simulator, client: httpx.Client
) -> None:
    sim.add_documents([crafted_item(901)])
    item = client.get(doc_url(901)).json()
    changed = full_body(item)
    changed["document"]["type"] = "CreditNote"
    changed["document"]["context"]["purchase"]["type"] = "Subscription"
    changed["document"]["paymentDetails"]["paymentMethod"] = "BankTransfer"
    changed["document"]["amountIncludingTaxes"]["taxes"][0]["currency"] = "EUR"

    assert client.put(doc_url(901), json=changed).status_code == 200
    after = client.get(doc_url(901)).json()["document"]
    assert the_four(after) == ("CreditNote", "Subscription", "BankTransfer", ("USD", "USD", "EUR"))

    left_out = full_body(item)
    del left_out["document"]["paymentDetails"]["paymentMethod"]
    del left_out["document"]["context"]["purchase"]["type"]
    assert client.put(doc_url(901), json=left_out).status_code == 200
    after = client.get(doc_url(901)).json()["document"]
    assert after["paymentDetails"]["paymentMethod"] is None
    assert after["context"]["purchase"]["type"] is None  # 77 is no purchase of the catalog
    errors = is_problem(client.put(doc_url(901), json=short_body(item)), 400)["errors"]
    assert {"document.type", "document.amountIncludingTaxes.includingTaxes.currency"} <= set(errors)


def test_under_luccasoftware_com_the_four_fields_are_not_bound(
    sim: Simulator, client: httpx.Client
) -> None:
    sim.configure(write_shape="luccasoftware.com")
    sim.add_documents([crafted_item(902)])
    item = client.get(doc_url(902)).json()

    short = client.put(doc_url(902), json=short_body(item))

    assert short.status_code == 200
    assert the_four(client.get(doc_url(902)).json()["document"]) == STORED_FOUR
    answered = short.json()["document"]
    assert "type" not in answered
    assert "ocrStatus" not in answered
    assert "currency" not in answered["amountIncludingTaxes"]["includingTaxes"]
    assert "currency" not in answered["amountIncludingTaxes"]["taxes"][0]

    ignored = full_body(item)
    ignored["document"]["type"] = "CreditNote"
    ignored["document"]["context"]["purchase"]["type"] = "Subscription"
    ignored["document"]["paymentDetails"]["paymentMethod"] = "BankTransfer"
    ignored["document"]["amountIncludingTaxes"]["includingTaxes"]["currency"] = "EUR"
    assert client.put(doc_url(902), json=ignored).status_code == 200
    assert the_four(client.get(doc_url(902)).json()["document"]) == STORED_FOUR


def test_a_new_tax_line_under_luccasoftware_com_takes_the_document_currency(
    sim: Simulator, client: httpx.Client
) -> None:
    sim.configure(write_shape="luccasoftware.com")
    sim.add_documents([crafted_item(903)])
    body = short_body(client.get(doc_url(903)).json())
    body["document"]["amountIncludingTaxes"]["taxes"].append({"rateTypeId": 2, "value": 1.0})

    assert client.put(doc_url(903), json=body).status_code == 200
    taxes = client.get(doc_url(903)).json()["document"]["amountIncludingTaxes"]["taxes"]
    assert [tax["currency"] for tax in taxes] == ["USD", "USD"]


def test_unknown_fields_of_item_context_and_purchase_are_written_and_reset_when_left_out(
    sim: Simulator, client: httpx.Client
) -> None:
    sim.add_documents([crafted_item(904)])
    item = client.get(doc_url(904)).json()

    assert client.put(doc_url(904), json=full_body(item)).status_code == 200
    kept = client.get(doc_url(904)).json()
    assert kept["workflowHint"] == {"step": 2}
    assert kept["document"]["context"]["matchedBy"] == "supplierReference"
    assert kept["document"]["context"]["purchase"]["po"] == "X"
    assert kept["document"]["paymentDetails"]["payee"] == "Z"

    # A client that rebuilds context from the purchase's id and type, and drops the top level:
    assert client.put(doc_url(904), json=write_shape(item)).status_code == 200
    reset = client.get(doc_url(904)).json()
    assert reset["workflowHint"] is None
    assert "matchedBy" not in reset["document"]["context"]
    assert "po" not in reset["document"]["context"]["purchase"]
    assert reset["action"] == {}  # the read shape's action is not a field a PUT writes


def test_a_type_the_server_already_holds_is_accepted_back(
    sim: Simulator, client: httpx.Client
) -> None:
    sim.add_documents([crafted_item(905, type="Receipt")])
    body = full_body(client.get(doc_url(905)).json())

    assert client.put(doc_url(905), json=body).status_code == 200
    body["document"]["type"] = "Bill"
    assert "document.type" in is_problem(client.put(doc_url(905), json=body), 400)["errors"]


def test_attaching_a_purchase_keeps_the_other_context_keys(
    sim: Simulator, client: httpx.Client
) -> None:
    sim.add_documents([crafted_item(906)])
    body = full_body(client.get(doc_url(906)).json())
    body["action"] = {"type": "AttachPurchase", "purchaseId": 3101}

    assert client.put(doc_url(906), json=body).status_code == 200
    context = client.get(doc_url(906)).json()["document"]["context"]
    assert context["purchase"]["id"] == 3101
    assert context["matchedBy"] == "supplierReference"


def test_put_of_an_unknown_or_booked_document_is_404(sim: Simulator, client: httpx.Client) -> None:
    doc_id = ids_in(sim, "ready")[0]
    body = write_shape(client.get(doc_url(doc_id)).json())
    client.post(book_url(doc_id))

    is_problem(client.put(doc_url(1), json=body), 404)
    is_problem(client.put(doc_url(doc_id), json=body), 404)

    detail = sim.document(doc_id)
    assert detail is not None
    assert (detail["puts"], detail["putBodies"]) == (0, [body])  # seen, not applied


# --- book ------------------------------------------------------------------------------------


def test_booking_removes_the_document_and_a_second_booking_is_404(
    sim: Simulator, client: httpx.Client
) -> None:
    doc_id = ids_in(sim, "ready")[0]

    first = client.post(book_url(doc_id))
    second = client.post(book_url(doc_id))

    assert first.status_code == 200
    assert first.json() == {}
    is_problem(second, 404)
    assert doc_id not in [i["id"] for i in client.get(LIST, params={"limit": 1000}).json()["items"]]
    detail = sim.document(doc_id)
    assert detail is not None
    assert (detail["bookings"], detail["bookAttempts"], detail["inInbox"]) == (1, 2, False)
    totals = sim.state()["totals"]
    assert (totals["booked"], totals["doubleBooked"], totals["inInbox"]) == (1, 0, 79)
    assert totals["bookedByCategory"] == {"ready": 1}
    is_problem(client.post(book_url(1)), 404)


def test_concurrent_bookings_of_one_document_book_it_once(
    sim: Simulator, client: httpx.Client
) -> None:
    doc_id = ids_in(sim, "ready")[0]
    headers = dict(client.headers)

    def book(_: int) -> int:
        return httpx.post(f"{sim.url}{book_url(doc_id)}", headers=headers).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = sorted(pool.map(book, range(8)))

    assert statuses == [200] + [404] * 7
    detail = sim.document(doc_id)
    assert detail is not None
    assert (detail["bookings"], detail["bookAttempts"]) == (1, 8)


def test_book_takes_no_body(sim: Simulator, client: httpx.Client) -> None:
    doc_id = ids_in(sim, "ready")[0]

    is_problem(client.post(book_url(doc_id), json={}), 400)
    assert sim.state()["totals"]["booked"] == 0


def test_book_refuses_a_document_whose_ocr_is_not_finished(
    sim: Simulator, client: httpx.Client
) -> None:
    doc_id = ids_in(sim, "ocr_pending")[0]

    is_problem(client.post(book_url(doc_id)), 400)
    assert client.get(doc_url(doc_id)).status_code == 200


def test_book_rejected_documents_fail_every_time(sim: Simulator, client: httpx.Client) -> None:
    doc_id = ids_in(sim, "book_rejected")[0]

    for _ in range(3):
        body = is_problem(client.post(book_url(doc_id)), 400)
        assert "locked by a pending approval" in body["detail"]

    detail = sim.document(doc_id)
    assert detail is not None
    assert (detail["bookings"], detail["bookAttempts"], detail["inInbox"]) == (0, 3, True)


def test_book_success_status_can_be_204(sim: Simulator, client: httpx.Client) -> None:
    sim.configure(book_success_status=204)

    response = client.post(book_url(ids_in(sim, "ready")[0]))

    assert response.status_code == 204
    assert response.content == b""


# --- rate limit ------------------------------------------------------------------------------


def test_rate_limit_answers_429_with_retry_after_seconds_and_recovers(
    sim: Simulator, client: httpx.Client
) -> None:
    sim.configure(rate_limit=5, window_seconds=0.5)
    assert [client.get(LIST, params={"limit": 1}).status_code for _ in range(5)] == [200] * 5

    refused = [client.get(LIST, params={"limit": 1}) for _ in range(3)]

    for response in refused:
        is_problem(response, 429)
        assert response.headers["Retry-After"] == "1"
    time.sleep(0.55)
    assert [client.get(LIST, params={"limit": 1}).status_code for _ in range(5)] == [200] * 5
    assert client.get(LIST).status_code == 429
    assert sim.state()["totals"]["rateLimited"] == 4


def test_retry_after_as_an_http_date(sim: Simulator, client: httpx.Client) -> None:
    sim.configure(rate_limit=1, window_seconds=2.0, retry_after_format="http-date")
    client.get(LIST)
    before = datetime.now(UTC)

    response = client.get(LIST)

    assert response.status_code == 429
    when = parsedate_to_datetime(response.headers["Retry-After"])
    assert 0 < (when - before).total_seconds() <= 4


def test_another_integration_eats_the_shared_budget(sim: Simulator, client: httpx.Client) -> None:
    # 6 of 10 requests per window are spent by someone else, spread evenly (one every 1.7 s).
    sim.configure(rate_limit=10, window_seconds=10.0, external_requests_per_window=6)

    statuses = [client.get(LIST, params={"limit": 1}).status_code for _ in range(6)]

    assert statuses == [200] * 4 + [429] * 2
    assert sim.state()["totals"]["inWindow"] == 10


def test_admin_endpoints_are_outside_the_budget(
    sim: Simulator, client: httpx.Client, admin: httpx.Client
) -> None:
    sim.configure(rate_limit=1, fault_rate=1.0)

    for _ in range(5):
        assert admin.get("/_sim/state").status_code == 200

    assert sim.state()["totals"]["requests"] == 0


# --- faults ----------------------------------------------------------------------------------


def _outcomes(client: httpx.Client, count: int) -> list[int | None]:
    outcomes: list[int | None] = []
    for _ in range(count):
        try:
            outcomes.append(client.get(LIST, params={"limit": 1}).status_code)
        except httpx.TransportError:
            outcomes.append(None)
    return outcomes


def test_faults_are_seeded_and_reproducible(sim: Simulator, client: httpx.Client) -> None:
    settings = {"seed": 11, "fault_rate": 0.5, "slow_seconds": 0.01}
    sim.reset(**settings)
    first = _outcomes(client, 30)
    first_log = [(e["status"], e["fault"]) for e in sim.requests()]
    sim.reset(**settings)
    second = _outcomes(client, 30)

    assert first == second
    assert first_log == [(e["status"], e["fault"]) for e in sim.requests()]
    faults = {fault for _, fault in first_log if fault}
    assert len(faults) >= 4
    assert 5 <= sum(fault is not None for _, fault in first_log) <= 25


@pytest.mark.parametrize(
    ("kind", "status", "content_type"),
    [
        ("408", 408, "text/plain"),
        ("429", 429, "text/plain"),
        ("502", 502, "text/html"),
        ("503", 503, "text/html"),
    ],
)
def test_status_faults(
    sim: Simulator, client: httpx.Client, kind: str, status: int, content_type: str
) -> None:
    sim.configure(fault_rate=1.0, fault_kinds={kind: 1})

    response = client.get(LIST)

    assert response.status_code == status
    assert response.headers["content-type"].startswith(content_type)
    assert response.headers["X-Request-Id"]
    if kind == "429":
        assert response.headers["Retry-After"] == "1"
        assert sim.state()["totals"]["inWindow"] == 0  # an injected 429 spends nothing
    assert sim.requests()[-1]["fault"] == kind


def test_injected_500s_answer_legacy_json_or_plain_text(
    sim: Simulator, client: httpx.Client
) -> None:
    sim.configure(fault_rate=1.0, fault_kinds={"500": 1})
    bodies = [client.get(LIST) for _ in range(12)]

    assert {r.status_code for r in bodies} == {500}
    kinds = {r.headers["content-type"].split(";")[0] for r in bodies}
    assert kinds == {"application/json", "text/plain"}
    legacy = next(r for r in bodies if r.headers["content-type"].startswith("application/json"))
    assert legacy.json()["Status"] == 500
    assert legacy.json()["Message"]


def test_status_faults_happen_before_the_operation(sim: Simulator, client: httpx.Client) -> None:
    sim.configure(fault_rate=1.0, fault_kinds={"500": 1, "503": 1, "408": 1})
    doc_id = ids_in(sim, "ready")[0]

    for _ in range(5):
        assert client.post(book_url(doc_id)).status_code in {408, 500, 503}

    detail = sim.document(doc_id)
    assert detail is not None
    assert (detail["bookings"], detail["bookAttempts"], detail["inInbox"]) == (0, 5, True)


def test_a_dropped_request_gets_no_answer(sim: Simulator, client: httpx.Client) -> None:
    sim.configure(fault_rate=1.0, fault_kinds={"drop": 1})

    with pytest.raises(httpx.RemoteProtocolError):
        client.get(LIST)

    entry = sim.requests()[-1]
    assert (entry["status"], entry["fault"]) == (None, "drop")
    assert sim.state()["totals"]["byStatus"] == {"dropped": 1}


def test_slow_requests_are_aborted_with_408_past_the_server_limit() -> None:
    clock = FakeClock()  # the simulator's clock seam on virtual time: nothing waits for real
    config = SimulatorConfig(invoices=5, seed=7, fault_rate=1.0, fault_kinds={"slow": 1.0})
    app = SimulatorApp(replace(config, server_timeout_seconds=0.2, slow_seconds=2.0), clock)
    lucca = httpx.Client(
        transport=InProcessLucca(app),
        base_url="https://acme.ilucca.net",
        headers={"Authorization": f"lucca application={config.api_key}"},
    )

    started = clock.now
    aborted = lucca.get(LIST)
    waited = clock.now - started
    app.configure({"slow_seconds": 0.05})
    merely_slow = lucca.get(LIST)

    assert aborted.status_code == 408
    assert waited == pytest.approx(0.2)  # aborted at the limit, not after the full 2 s
    assert merely_slow.status_code == 200


@pytest.mark.parametrize("kind", ["drop", "slow"])
def test_drop_and_slow_on_book_sometimes_happen_after_the_booking(
    sim: Simulator, client: httpx.Client, kind: str
) -> None:
    sim.configure(
        fault_rate=1.0, fault_kinds={kind: 1}, slow_seconds=0.05, server_timeout_seconds=0.02
    )
    ready = ids_in(sim, "ready")[:12]

    for doc_id in ready:
        with pytest.raises(httpx.RemoteProtocolError) if kind == "drop" else nullcontext():
            assert client.post(book_url(doc_id)).status_code == 408

    entries = [e for e in sim.requests() if e["endpoint"] == "book"]
    booked = {d["id"] for d in sim.state()["documents"] if d["bookings"]}
    after = {e["documentId"] for e in entries if e["faultAfterOperation"]}
    assert all(e["fault"] == kind for e in entries)
    assert booked == after  # applied exactly when the fault hit after the operation
    assert 0 < len(after) < len(ready)  # seeded: some before, some after


def test_slow_put_after_the_operation_is_applied_but_answered_408(
    sim: Simulator, client: httpx.Client
) -> None:
    sim.configure(
        fault_rate=1.0, fault_kinds={"slow": 1}, slow_seconds=0.05, server_timeout_seconds=0.02
    )
    for doc_id in ids_in(sim, "ready")[:10]:
        item = sim.document(doc_id)
        assert item is not None
        body = write_shape(item)
        body["document"]["comment"] = "updated"

        assert client.put(doc_url(doc_id), json=body).status_code == 408

    entries = {e["documentId"]: e for e in sim.requests()}
    for doc_id, entry in entries.items():
        detail = sim.document(doc_id)
        assert detail is not None
        assert (detail["document"]["comment"] == "updated") is entry["faultAfterOperation"]


def test_faults_can_be_restricted_to_endpoints(sim: Simulator, client: httpx.Client) -> None:
    sim.configure(fault_rate=1.0, fault_kinds={"503": 1}, fault_endpoints=["book"])

    assert client.get(LIST).status_code == 200
    assert client.post(book_url(ids_in(sim, "ready")[0])).status_code == 503


def test_latency_counts_against_the_server_limit(sim: Simulator, client: httpx.Client) -> None:
    sim.configure(latency_ms=30)
    assert client.get(LIST).status_code == 200

    sim.configure(server_timeout_seconds=0.05, latency_ms=80)
    assert client.get(LIST).status_code == 408


# --- other errors ----------------------------------------------------------------------------


def test_unknown_routes_and_methods_answer_the_legacy_format(client: httpx.Client) -> None:
    missing = client.get("/cleemy-procurement/services/nothing")
    wrong_method = client.delete(doc_url(10001))

    assert missing.status_code == 404
    assert missing.json()["Status"] == 404
    assert missing.json()["Message"]
    assert wrong_method.status_code == 405
    assert wrong_method.json()["Status"] == 405


def test_oversized_bodies_get_413(sim: Simulator, client: httpx.Client) -> None:
    doc_id = ids_in(sim, "ready")[0]

    response = client.put(doc_url(doc_id), content=b"x" * 1_000_001)

    assert response.status_code == 413
    assert response.headers["content-type"].startswith("text/plain")


# --- ground truth ----------------------------------------------------------------------------


def test_request_log_records_every_api_request(sim: Simulator, client: httpx.Client) -> None:
    doc_id = ids_in(sim, "ready")[0]
    responses = [
        client.get(LIST, params={"limit": 5, "document.type": "Invoice"}),
        client.get(doc_url(doc_id)),
        client.post(book_url(doc_id)),
        client.get(LIST, headers={"Authorization": "lucca application=nope"}),
    ]

    log = sim.requests()

    assert [(e["method"], e["endpoint"], e["documentId"], e["status"]) for e in log] == [
        ("GET", "list", None, 200),
        ("GET", "get", doc_id, 200),
        ("POST", "book", doc_id, 200),
        ("GET", "list", None, 401),
    ]
    assert [e["requestId"] for e in log] == [r.headers["X-Request-Id"] for r in responses]
    assert log[0]["query"] == "limit=5&document.type=Invoice"
    assert log[0]["path"] == LIST
    assert all(e["fault"] is None and isinstance(e["t"], float) for e in log)
    totals = sim.state()["totals"]
    assert totals["requests"] == 4
    assert totals["byStatus"] == {"200": 3, "401": 1}
    assert totals["byEndpoint"] == {
        "list": 2,
        "get": 1,
        "put": 0,
        "book": 1,
        "booked": 0,
        "other": 0,
    }


def test_admin_http_endpoints(sim: Simulator, client: httpx.Client, admin: httpx.Client) -> None:
    state = admin.get("/_sim/state").json()
    assert state["config"]["seed"] == 7
    assert state["totals"]["documents"] == 80
    assert {"id", "category", "inInbox", "bookings", "bookAttempts", "puts", "modifiedAt"} <= (
        state["documents"][0].keys()
    )

    doc_id = state["documents"][0]["id"]
    client.get(doc_url(doc_id))
    assert admin.get("/_sim/requests").json()["requests"][0]["documentId"] == doc_id
    detail = admin.get(f"/_sim/documents/{doc_id}").json()
    assert {"category", "bookings", "bookAttempts", "putBodies", "document"} <= detail.keys()
    assert admin.get("/_sim/documents/1").status_code == 404

    assert admin.post("/_sim/config", json={"rate_limit": 7}).json()["config"]["rate_limit"] == 7
    is_problem(admin.post("/_sim/config", json={"rate_limit": 0}), 400)
    is_problem(admin.post("/_sim/config", json={"seed": 3}), 400)  # inbox settings need a reset
    is_problem(admin.post("/_sim/config", json={"nope": 1}), 400)

    assert admin.post("/_sim/reset", json={"invoices": 12, "seed": 3}).status_code == 200
    assert admin.get("/_sim/requests").json() == {"requests": []}
    assert sim.state()["totals"]["documents"] == 12
    assert sim.config.rate_limit == 7  # a reset keeps the live settings not overridden


def test_touch_simulates_a_person_fixing_a_document(
    sim: Simulator, client: httpx.Client, admin: httpx.Client
) -> None:
    doc_id = ids_in(sim, "incomplete")[0]
    before = client.get(doc_url(doc_id)).json()

    touched = admin.post(
        f"/_sim/documents/{doc_id}/touch",
        json={"patch": {"documentNumber": "F-2026-99999"}, "category": "ready"},
    ).json()

    assert touched["document"]["documentNumber"] == "F-2026-99999"
    assert _instant(touched["modifiedAt"]) > _instant(before["modifiedAt"])
    assert _instant(touched["document"]["modifiedAt"]) > _instant(before["document"]["modifiedAt"])
    assert client.get(doc_url(doc_id)).json() == touched
    assert doc_id in ids_in(sim, "ready")


def test_adding_documents_verbatim_or_generated(
    sim: Simulator, client: httpx.Client, admin: httpx.Client
) -> None:
    crafted = {"id": 5, "document": {"id": 5, "type": "Invoice", "ocrStatus": "Processed"}}

    added = admin.post("/_sim/documents", json={"items": [crafted], "category": "ready"})
    more = admin.post("/_sim/documents", json={"count": 3}).json()["added"]

    assert added.json() == {"added": [5]}
    assert client.get(doc_url(5)).json() == crafted
    assert client.get(LIST, params={"limit": 1}).json()["items"] == [crafted]
    assert len(more) == 3
    assert min(more) > max(d["id"] for d in sim.state()["documents"][:-3])
    is_problem(admin.post("/_sim/documents", json={"items": [crafted]}), 400)  # duplicate id
    assert sim.state()["totals"]["documents"] == 84


def test_python_interface(sim: Simulator) -> None:
    assert sim.url.startswith("http://127.0.0.1:")
    assert sim.api_key == "sim-api-key"
    with pytest.raises(ConfigError):
        sim.configure(fault_rate=2.0)
    with pytest.raises(ConfigError):
        sim.reset(port=1)

    with Simulator(SimulatorConfig(invoices=3, seed=1, api_key="k")) as other:
        response = httpx.get(f"{other.url}{LIST}", headers={"Authorization": "lucca application=k"})
        assert len(response.json()["items"]) == 3
        assert other.port != sim.port


def test_command_line_serves_until_stopped() -> None:
    root = Path(__file__).resolve().parents[3]
    command = [sys.executable, "-m", "local.lucca_simulator", "--port", "0", "--invoices", "5"]
    command += ["--api-key", "cli-key"]
    process = subprocess.Popen(command, cwd=root, stdout=subprocess.PIPE, text=True)  # noqa: S603
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+", first)
        assert url, first
        assert "cli-key" in process.stdout.readline()
        response = httpx.get(
            f"{url.group(0)}{LIST}", headers={"Authorization": "lucca application=cli-key"}
        )
        assert len(response.json()["items"]) == 5
    finally:
        process.terminate()
        process.wait(timeout=5)
