"""What the pipeline records is enough for the accountant: the export and the morning digest,
read from the ledger the real handlers filled against the simulator, with no Lucca request."""

from __future__ import annotations

import csv
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from cleemy_booker.digest import Health, compose, gather
from cleemy_booker.ledger import Ledger, Status
from cleemy_booker_tools import audit
from local.lucca_simulator import Simulator
from tests.aws import Stack, stack_fixture
from tests.harness import FakeLambdaContext, drive_queue, handlers_env, simulator_fixture
from tests.integration.test_pipeline import UPDATING

LABEL = "accounting label from the invoice number"
DUE = "due date 30 days after the invoice date"


sim = simulator_fixture(invoices=80, seed=11)
stack = stack_fixture()


@pytest.fixture
def booked_by_the_pipeline(
    monkeypatch: pytest.MonkeyPatch, sim: Simulator, stack: Stack
) -> dict[int, dict[str, Any]]:
    """Poll once and drive the queue dry with the example rules: each booked document as
    Lucca now holds it, by id."""
    with handlers_env(monkeypatch, stack, sim, **UPDATING) as (poller, processor):
        poller.lambda_handler({}, FakeLambdaContext(300))
        drive_queue(stack, processor.lambda_handler)
    booked = {}
    for document in sim.state()["documents"]:
        if document["bookings"] == 1:
            detail = sim.document(document["id"])
            assert detail is not None
            booked[document["id"]] = detail
    return booked


def amount(money: dict[str, Any] | None) -> str:
    assert money is not None
    return audit.plain_amount(Decimal(str(money["value"]))) or ""


def test_the_export_has_one_row_per_booked_document_as_lucca_holds_it(
    booked_by_the_pipeline: dict[int, dict[str, Any]],
    sim: Simulator,
    stack: Stack,
    tmp_path: Path,
) -> None:
    requests_before = sim.state()["totals"]["requests"]
    out = tmp_path / "booked.csv"
    # Days around now, whatever the hour the test runs at.
    yesterday, tomorrow = (
        time.strftime("%Y-%m-%d", time.gmtime(time.time() + d)) for d in (-86400, 86400)
    )
    argv = ["--table", stack.ledger_table, "export", "--since", yesterday, "--until", tomorrow]
    assert audit.main([*argv, "--format", "csv", "--output", str(out)]) == 0

    assert out.read_bytes().startswith("\ufeff".encode())
    with out.open(encoding="utf-8-sig", newline="") as file:
        rows = {int(row["document id"]): row for row in csv.DictReader(file)}
    assert set(rows) == set(booked_by_the_pipeline)
    assert len(rows) > 20
    updated = 0
    for doc_id, item in booked_by_the_pipeline.items():
        row, document = rows[doc_id], item["document"]
        amounts = document["amountIncludingTaxes"]
        assert row["invoice number"] == document["documentNumber"]
        assert row["type"] == document["type"]
        owner = document.get("owner")
        assert row["owner id"] == (str(owner["id"]) if owner else "")
        assert row["amount excluding taxes"] == amount(amounts["excludingTaxes"])
        assert row["amount including taxes"] == amount(amounts["includingTaxes"])
        taxes = sum((Decimal(str(t["value"])) for t in amounts["taxes"]), Decimal(0))
        assert row["taxes"] == (audit.plain_amount(taxes) if amounts["taxes"] else "")
        assert row["currency"] == amounts["includingTaxes"]["currency"]
        assert row["invoice date"] == document["documentDate"]
        # The rules column says what we changed, and Lucca holds it.
        if item["puts"]:
            updated += 1
            assert row["rules applied"], doc_id
            if LABEL in row["rules applied"]:
                label = document["accountingLabel"]
                assert f"accounting label: (empty) → {label}" in row["changes"]
            if DUE in row["rules applied"]:
                assert f"due date: (empty) → {document['dueDate']}" in row["changes"]
            assert len(row["Lucca request ids"].split("; ")) >= 2  # at least the PUT and book
        else:
            assert (row["rules applied"], row["changes"]) == ("", "")
            assert row["Lucca request ids"]
    assert updated > 0
    assert sim.state()["totals"]["requests"] == requests_before  # the ledger alone


def test_the_digest_tells_what_the_pipeline_did(
    booked_by_the_pipeline: dict[int, dict[str, Any]], sim: Simulator, stack: Stack
) -> None:
    requests_before = sim.state()["totals"]["requests"]
    ledger = Ledger(stack.dynamodb, stack.ledger_table)
    # Everything happened a moment ago: a digest an hour from now tells it.
    data = gather(ledger, now=time.time() + 3600)
    assert {b.state.document_id for b in data.booked} == set(booked_by_the_pipeline)
    held = ledger.queries.in_status(Status.HELD)
    assert {s.document_id for s in data.held} == {s.document_id for s in held}

    message = compose(data, Health(requests=requests_before, budget=10_000), stack="books")
    assert message is not None
    text = message.text
    assert f"{len(booked_by_the_pipeline)} documents booked since the last digest" in text
    rules = Counter(rule for b in data.booked if b.trail is not None for rule in b.trail.rules)
    for rule, count in rules.items():
        assert f"  - {rule}: {count} document" in text
    assert f"{len(held)} documents held for review" in text
    assert "Amounts do not add up" in text  # the simulator's amounts_mismatch documents
    assert sim.state()["totals"]["requests"] == requests_before
