"""The audit CLI answers "what happened to document N?" and lists held documents."""

from __future__ import annotations

import json
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from cleemy_booker import audit
from cleemy_booker.ledger import Ledger, Status
from tests.aws import REGION, create_ledger_table


@pytest.fixture
def ledger() -> Iterator[Ledger]:
    with mock_aws():
        ddb = boto3.client("dynamodb", region_name=REGION)
        yield Ledger(ddb, create_ledger_table(ddb))


def test_a_booked_document_tells_its_whole_story(ledger: Ledger) -> None:
    ledger.claim_for_queue(123, "m1", now=1_800_000_000, ttl_seconds=3600)
    ledger.record(
        123,
        Status.UPDATED,
        "updated",
        detail={
            "rulesApplied": ["label from number"],
            "diff": [{"field": "document.accountingLabel", "before": None, "after": "F-1"}],
            "requestIds": ["req-put"],
        },
    )
    ledger.record(123, Status.BOOKING, "booking")
    ledger.record(123, Status.BOOKED, "booked", detail={"requestIds": ["req-book"]})
    text = audit.describe_document(ledger, 123)
    assert text.startswith("document 123: BOOKED")
    assert "rules: label from number" in text
    assert "document.accountingLabel: None -> 'F-1'" in text
    assert "req-book" in text
    assert text.index("updated") < text.index("booking") < text.rindex("booked")


def test_an_unknown_document_says_so(ledger: Ledger) -> None:
    assert audit.describe_document(ledger, 9) == "document 9: never seen by the pipeline"


def test_held_documents_are_listed_with_reasons(
    ledger: Ledger, capsys: pytest.CaptureFixture[str]
) -> None:
    ledger.record(1, Status.HELD, "held", reasons=["amounts_mismatch: off by 1.50 EUR"])
    ledger.record(2, Status.BOOKED, "booked")
    text, rows = audit.describe_held(ledger)
    assert "1 document(s) held" in text
    assert "amounts_mismatch: off by 1.50 EUR" in text
    assert [row["documentId"] for row in rows] == [1]
    assert audit.main(["--table", ledger.table, "held", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["reasons"] == [
        "amounts_mismatch: off by 1.50 EUR"
    ]
    assert audit.main(["--table", ledger.table, "show", "2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["state"]["status"] == "BOOKED"
