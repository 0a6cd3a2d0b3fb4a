"""``make year`` on a week of a few documents: the year is written through the ledger's stores
(one state a document, the events its walk counted), and the figures are what they say: the
storage is the items' bytes plus DynamoDB's overhead, in the table and in the status index;
read units are the simulation's usage counters; requests are the calls made, the same in the
simulation and in moto."""

from __future__ import annotations

import json
from typing import Any

import pytest

from cleemy_booker.ledger import Ledger, Status
from sim.aws.dynamodb import InMemoryDynamoDB
from sim.aws.expressions import item_size
from sim.template import Template
from sim.year import (
    GIB,
    ITEM_OVERHEAD_BYTES,
    PRICES,
    YearShape,
    measure_simulation,
    run,
    storage,
    table,
)

SHAPE = YearShape(weeks=1, per_day=12, late_fix_days=(1.0, 3.0))


@pytest.fixture(scope="module")
def result() -> dict[str, Any]:
    return run(SHAPE)


def test_every_document_written_has_a_state_and_the_events_its_walk_counted(
    result: dict[str, Any],
) -> None:
    kinds = result["storage"]["byKind"]
    year = result["year"]
    assert kinds["doc#/state"]["items"] == year["documents"] > 0
    events = sum(e["items"] for e in result["storage"]["eventsByKind"].values())
    assert kinds["doc#/event"]["items"] == events
    assert round(events / year["documents"], 3) == year["eventsPerDocument"]["mean"]


def test_storage_is_the_items_bytes_and_their_overhead_in_the_table_and_the_index() -> None:
    indexed = {"pk": {"S": "doc#1"}, "sk": {"S": "state"}, "statusKey": {"S": "HELD"}}
    indexed["updatedAt"] = {"S": "2027-01-04T08:00:00+00:00"}
    plain = {"pk": {"S": "lease#poller"}, "sk": {"S": "lease"}}
    prices = json.loads(PRICES.read_text())
    found = storage([indexed, plain], prices)
    sizes = item_size(indexed), item_size(plain)
    assert found["tableBytes"] == sum(sizes) + 2 * ITEM_OVERHEAD_BYTES
    assert found["indexBytes"] == sizes[0] + ITEM_OVERHEAD_BYTES
    price = prices["dynamodb"]["storageGbMonth"]
    total = found["tableBytes"] + found["indexBytes"]
    assert found["dollarsPerMonth"] == round(total / GIB * price, 4)
    assert found["byStatus"] == {"HELD": 1}


def test_read_units_and_requests_are_the_simulation_s_counters() -> None:
    ddb = InMemoryDynamoDB(clock=lambda: 1_800_000_000.0)
    name = Template().table("LedgerTable").create(ddb, "ledger")
    ledger = Ledger(ddb, name, clock=lambda: 1_800_000_000.0)  # type: ignore[arg-type]
    for document in range(3):
        ledger.states.record(document, Status.HELD, "held", reasons=["missing_fields: x"])
    units, calls = ddb.usage.read_units[name], sum(ddb.usage.calls.values())

    def held(reader: Ledger) -> str:
        reader.states.state(0)
        return str(len(reader.queries.in_status(Status.HELD)))

    reading = measure_simulation(ddb, name, SHAPE, held)
    assert reading.units == ddb.usage.read_units[name] - units > 0
    assert reading.requests == sum(ddb.usage.calls.values()) - calls == 2
    assert (reading.items, reading.answer) == (4, "3")


def test_moto_answers_with_the_same_requests_and_items(result: dict[str, Any]) -> None:
    compared = [entry for entry in result["commands"] if "moto" in entry]
    assert compared
    for entry in compared:
        simulation, moto = entry["simulation"], entry["moto"]
        assert (moto["requests"], moto["items"]) == (
            simulation["requests"],
            simulation["items"],
        ), entry["command"]


def test_the_held_count_is_the_held_states_in_the_index(result: dict[str, Any]) -> None:
    [count] = [e for e in result["commands"] if e["command"].startswith("held count")]
    assert count["simulation"]["answer"] == f"{result['storage']['byStatus']['HELD']} held"


def test_the_table_names_every_command_and_whether_its_target_holds(
    result: dict[str, Any],
) -> None:
    printed = table(result)
    for entry in result["commands"]:
        assert entry["command"] in printed
    assert ": holds" in printed
