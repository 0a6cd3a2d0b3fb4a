"""The simulator's switches for what lucca-api.md lists as unknown or only inferred.

Each plays one answer Lucca might give, so that a guess the code makes is not also the
simulator's (tests/integration/test_unknowns.py runs the pipeline under each of them).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from local.lucca_simulator import ConfigError, SimulatorConfig
from local.lucca_simulator.app import SimulatorApp
from local.lucca_simulator.faults import Fault
from tests.harness import book_url, doc_url, simulator_client

LIST = "/cleemy-procurement/services/inbox"
SIMULATOR = Path(__file__).resolve().parents[3] / "local" / "lucca_simulator"


@pytest.fixture
def default() -> Iterator[tuple[SimulatorApp, httpx.Client]]:
    app, client = simulator_client()
    yield app, client
    client.close()


def listed_ids(client: httpx.Client, **params: Any) -> list[int]:
    return [
        item["id"] for item in client.get(LIST, params={"limit": 1000, **params}).json()["items"]
    ]


def ready_id(app: SimulatorApp) -> int:
    return next(d["id"] for d in app.state()["documents"] if d["category"] == "ready")


# --- item ids and document ids ---------------------------------------------------------------


def test_by_default_the_nested_document_id_is_another_number(
    default: tuple[SimulatorApp, httpx.Client],
) -> None:
    app, client = default
    items = client.get(LIST, params={"limit": 1000}).json()["items"]
    offset = app.config.document_id_offset
    assert offset > 0
    assert all(item["document"]["id"] == item["id"] + offset for item in items)
    # Disjoint: a nested id never names another item either.
    assert not {item["document"]["id"] for item in items} & {item["id"] for item in items}
    truth = {d["id"]: d["documentId"] for d in app.state()["documents"]}
    assert truth == {item["id"]: item["document"]["id"] for item in items}


def test_the_urls_take_the_item_id_and_the_nested_id_names_nothing(
    default: tuple[SimulatorApp, httpx.Client],
) -> None:
    app, client = default
    doc_id = ready_id(app)
    nested = client.get(doc_url(doc_id)).json()["document"]["id"]

    assert client.get(doc_url(nested)).status_code == 404
    assert client.post(book_url(nested)).status_code == 404
    assert client.post(book_url(doc_id)).status_code == 200


def test_an_offset_of_zero_plays_the_same_number_and_keeps_the_seeded_inbox() -> None:
    _, client_a = simulator_client()
    _, client_b = simulator_client(document_id_offset=0)
    items_a = client_a.get(LIST, params={"limit": 1000}).json()["items"]
    items_b = client_b.get(LIST, params={"limit": 1000}).json()["items"]

    assert all(item["document"]["id"] == item["id"] for item in items_b)
    # No random draw depends on the offset: the same seed gives the same inbox otherwise.
    for item in (*items_a, *items_b):
        item["document"].pop("id")
    assert items_a == items_b


def test_items_added_verbatim_keep_their_ids(default: tuple[SimulatorApp, httpx.Client]) -> None:
    app, client = default
    item = client.get(doc_url(ready_id(app))).json()
    item["id"], item["document"]["id"] = 90_001, 77
    app.add_items([item], "ready")

    assert client.get(doc_url(90_001)).json()["document"]["id"] == 77


def test_the_offset_shapes_the_inbox_so_it_takes_a_reset(
    default: tuple[SimulatorApp, httpx.Client],
) -> None:
    app, _ = default
    with pytest.raises(ConfigError, match="reset"):
        app.configure({"document_id_offset": 0})
    with pytest.raises(ConfigError, match="document_id_offset"):
        SimulatorConfig(document_id_offset=-1)


# --- GET of one document: present or absent --------------------------------------------------


@pytest.mark.parametrize("status", [405, 404])
def test_an_absent_get_route_answers_the_same_for_every_id(status: int) -> None:
    app, client = simulator_client(get_route="absent", absent_get_status=status)
    doc_id, other = [d["id"] for d in app.state()["documents"] if d["category"] == "ready"][:2]
    assert client.post(book_url(doc_id)).status_code == 200
    # Booked, in the inbox, never existed: one answer.
    answers = [client.get(doc_url(i)) for i in (doc_id, other, 999_999)]

    assert {answer.status_code for answer in answers} == {status}
    # The older .NET body of a routing failure, not a document's problem+json.
    assert all(set(answer.json()) == {"Status", "Message"} for answer in answers)
    if status == 405:
        assert all(answer.headers["Allow"] == "PUT" for answer in answers)
    # Only the GET is missing: the listing, PUT and book answer as ever.
    assert doc_id not in listed_ids(client)
    assert client.post(book_url(other)).status_code == 200


def test_an_absent_get_route_still_spends_the_budget_and_is_logged() -> None:
    app, client = simulator_client(get_route="absent", rate_limit=2)
    doc_id = ready_id(app)
    assert [client.get(doc_url(doc_id)).status_code for _ in range(3)] == [405, 405, 429]
    assert [e["endpoint"] for e in app.requests()] == ["get"] * 3


def test_get_route_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="get_route"):
        SimulatorConfig(get_route="maybe")
    with pytest.raises(ConfigError, match="absent_get_status"):
        SimulatorConfig(absent_get_status=410)
    app, client = simulator_client()
    app.configure({"get_route": "absent"})  # a server setting: no reset needed
    assert client.get(doc_url(ready_id(app))).status_code == 405


# --- a second book ---------------------------------------------------------------------------


@pytest.mark.parametrize("status", [404, 400])
def test_a_second_book_answers_the_configured_status(status: int) -> None:
    app, client = simulator_client(second_book=status)
    doc_id = ready_id(app)
    assert client.post(book_url(doc_id)).status_code == 200

    again = client.post(book_url(doc_id))
    assert again.status_code == status
    assert again.headers["content-type"].startswith("application/problem+json")
    assert client.post(book_url(999_999)).status_code == 404  # never existed: 404 either way
    assert app.document_detail(doc_id)["bookings"] == 1  # type: ignore[index]


def test_second_book_is_400_or_404() -> None:
    with pytest.raises(ConfigError, match="second_book"):
        SimulatorConfig(second_book=409)


# --- listing order ---------------------------------------------------------------------------


def test_listing_orders() -> None:
    app, client = simulator_client()
    by_id = listed_ids(client)
    assert by_id == sorted(by_id)

    app.configure({"listing_order": "reverse"})
    assert listed_ids(client) == by_id[::-1]

    app.configure({"listing_order": "shuffled"})
    orders = [listed_ids(client) for _ in range(4)]
    assert all(sorted(order) == by_id for order in orders)
    assert len({tuple(order) for order in orders}) > 1  # a new order on every request


def test_shuffled_pages_overlap_and_skip_although_nothing_changes() -> None:
    _, client = simulator_client(listing_order="shuffled")
    seen: list[int] = []
    for page in (1, 2, 3):
        seen += listed_ids(client, limit=5, page=page)

    assert len(seen) == 12
    assert len(set(seen)) < 12  # what a missing ORDER BY does to numbered pages


def test_a_shuffled_listing_is_the_same_for_the_same_seed() -> None:
    orders = []
    for _ in range(2):
        _, client = simulator_client(listing_order="shuffled")
        orders.append([listed_ids(client) for _ in range(3)])
    assert orders[0] == orders[1]


@pytest.mark.parametrize("order", ["id", "reverse"])
def test_new_documents_first_last_or_in_order(order: str) -> None:
    app, client = simulator_client(listing_order=order)
    seeded = listed_ids(client)
    added = app.add_generated(3)
    arranged = sorted(added, reverse=order == "reverse")

    app.configure({"new_documents": "first"})
    assert listed_ids(client) == arranged + seeded
    app.configure({"new_documents": "last"})
    assert listed_ids(client) == seeded + arranged
    app.configure({"new_documents": "in_order"})
    assert listed_ids(client) == sorted(seeded + added, reverse=order == "reverse")


def test_new_documents_first_shift_the_next_page() -> None:
    app, client = simulator_client(new_documents="first")
    first_page = listed_ids(client, limit=5, page=1)
    app.add_generated(2)
    second_page = listed_ids(client, limit=5, page=2)

    assert first_page[-2:] == second_page[:2]  # read twice: the page moved under the reader


def test_listing_order_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="listing_order"):
        SimulatorConfig(listing_order="date")
    with pytest.raises(ConfigError, match="new_documents"):
        SimulatorConfig(new_documents="middle")


# --- faults placed by a test -----------------------------------------------------------------


def test_scripted_faults_hit_one_document_in_order_and_leave_the_seeded_draws() -> None:
    app, client = simulator_client()
    doc_id = ready_id(app)
    applied_then_lost = Fault("drop", after_operation=True, variant=0.0)
    app.script_faults("book", doc_id, [applied_then_lost, None])

    with pytest.raises(httpx.RemoteProtocolError):
        client.post(book_url(doc_id))
    assert app.document_detail(doc_id)["bookings"] == 1  # type: ignore[index]
    assert client.post(book_url(doc_id)).status_code == 404  # the retry meets "booked"
    with pytest.raises(ConfigError):
        app.script_faults("delete", doc_id, [None])


# --- the import graph ------------------------------------------------------------------------


def _imports(path: Path) -> set[str]:
    """The sibling modules a module imports, at any level (TYPE_CHECKING blocks too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(alias.name for alias in node.names)
    return found


def test_the_simulator_modules_import_one_another_without_a_cycle() -> None:
    graph = {path.stem: _imports(path) for path in SIMULATOR.glob("*.py")}
    assert "app" not in graph["admin"]

    visiting: list[str] = []
    done: set[str] = set()

    def visit(module: str) -> None:
        assert module not in visiting, f"import cycle: {' -> '.join([*visiting, module])}"
        if module in done:
            return
        visiting.append(module)
        for imported in graph.get(module, set()):
            visit(imported)
        visiting.pop()
        done.add(module)

    for module in graph:
        visit(module)
