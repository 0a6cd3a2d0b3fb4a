"""The audit CLI answers "what happened to document N?" and lists held documents."""

from __future__ import annotations

import csv
import json
from decimal import Decimal
from pathlib import Path

import pytest

from cleemy_booker.ledger import DocumentSummary, Ledger, Status
from cleemy_booker_tools import audit
from tests.factories import document_summary


def test_a_booked_document_tells_its_whole_story(ledger: Ledger) -> None:
    ledger.states.claim_for_queue(123, "m1", now=1_800_000_000, ttl_seconds=3600)
    ledger.states.record(
        123,
        Status.UPDATED,
        "updated",
        detail={
            "rulesApplied": ["label from number"],
            "diff": [{"field": "document.accountingLabel", "before": None, "after": "F-1"}],
            "requestIds": ["req-put"],
        },
    )
    ledger.states.record(123, Status.BOOKING, "booking")
    ledger.states.record(123, Status.BOOKED, "booked", detail={"requestIds": ["req-book"]})
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
    ledger.states.record(1, Status.HELD, "held", reasons=["amounts_mismatch: off by 1.50 EUR"])
    ledger.states.record(2, Status.BOOKED, "booked")
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


# --- export and held as tables ----------------------------------------------------------------

NOW = 1_800_000_000.0  # Friday 15 January 2027, 08:00 UTC
BOM = "\ufeff".encode()
#: Accents and a hyphen in the owner's name: the CSV must keep them.
BOOKED = document_summary(
    document_number="F-2027-001", owner_name="Léa Müller-Étienne", document_date="2027-01-10"
)


@pytest.fixture
def filled(ledger: Ledger) -> Ledger:
    """Three bookings (the day before, the day, the day after) and a hold, at known times."""
    clock = [NOW]
    at = Ledger(ledger.db.client, ledger.table, clock=lambda: clock[0])
    for document_id, when in ((40, NOW - 86400), (41, NOW), (42, NOW + 86400)):
        clock[0] = when - 2  # updated, then booking, then booked, a second apart
        at.states.record(
            document_id,
            Status.UPDATED,
            "updated",
            detail={
                "rulesApplied": ["label from number"],
                "diff": [
                    {"field": "document.accountingLabel", "before": None, "after": "F-2027-001"},
                    {"field": "document.dueDate", "before": "", "after": "2027-02-09"},
                ],
                "requestIds": [f"get-{document_id}", f"put-{document_id}"],
            },
        )
        clock[0] = when - 1
        at.states.record(document_id, Status.BOOKING, "booking", summary=BOOKED)
        clock[0] = when
        at.states.record(
            document_id,
            Status.BOOKED,
            "booked",
            detail={"requestIds": [f"put-{document_id}", f"book-{document_id}"]},
        )
    clock[0] = NOW - 3 * 86400
    suspicious = DocumentSummary(
        document_number='=HYPERLINK("http://x")', including_taxes=Decimal("-12.5"), currency="EUR"
    )
    at.states.record(
        50,
        Status.HELD,
        "held",
        reasons=["amounts_mismatch: off by 1.50 EUR", "date_in_future: 2027-03-01"],
        summary=suspicious,
    )
    clock[0] = NOW  # looked at again today, held since three days
    at.states.record(50, Status.HELD, "held", reasons=["amounts_mismatch: off by 1.50 EUR"])
    return ledger


def read_csv(path: Path, delimiter: str = ",") -> list[dict[str, str]]:
    assert path.read_bytes().startswith(BOM)  # Excel reads UTF-8 only with it
    with path.open(encoding="utf-8-sig", newline="") as file:
        return list(csv.DictReader(file, delimiter=delimiter))


def test_export_writes_one_row_per_document_booked_in_the_period(
    filled: Ledger, tmp_path: Path
) -> None:
    out = tmp_path / "january.csv"
    argv = ["--table", filled.table, "export", "--since", "2027-01-15", "--until", "2027-01-15"]
    assert audit.main([*argv, "--format", "csv", "--output", str(out)]) == 0

    rows = read_csv(out)
    assert [row["document id"] for row in rows] == ["41"]  # the day, its end included
    row = rows[0]
    assert row["invoice number"] == "F-2027-001"
    assert (row["type"], row["owner id"], row["owner"]) == ("Invoice", "7", "Léa Müller-Étienne")
    assert (row["amount excluding taxes"], row["taxes"], row["amount including taxes"]) == (
        "1000.00",
        "234.50",
        "1234.50",
    )
    assert (row["currency"], row["invoice date"]) == ("EUR", "2027-01-10")
    assert row["booked at (UTC)"] == "2027-01-15 08:00:00"
    assert row["rules applied"] == "label from number"
    assert row["changes"] == (
        "accounting label: (empty) → F-2027-001; due date: (empty) → 2027-02-09"
    )
    assert row["Lucca request ids"] == "get-41; put-41; book-41"


def test_export_for_excel_set_to_french_and_in_a_time_zone(filled: Ledger, tmp_path: Path) -> None:
    out = tmp_path / "janvier.csv"
    argv = ["--table", filled.table, "export", "--since", "2027-01-14", "--until", "2027-01-15"]
    options = ["--decimal-comma", "--time-zone", "Europe/Paris", "--output", str(out)]
    assert audit.main([*argv, *options]) == 0

    rows = read_csv(out, delimiter=";")
    assert [row["document id"] for row in rows] == ["40", "41"]
    assert rows[1]["amount including taxes"] == "1234,50"
    assert rows[1]["booked at (Europe/Paris)"] == "2027-01-15 09:00:00"


def test_export_as_json_is_a_list_of_objects(
    filled: Ledger, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    period = ["--since", "2027-01-14T00:00", "--until", "2027-01-17T00:00"]  # times, not days
    assert audit.main(["--table", filled.table, "export", *period, "--format", "json"]) == 0
    rows = json.loads(capsysbinary.readouterr().out.decode())
    assert [row["documentId"] for row in rows] == [40, 41, 42]
    assert rows[0]["amountIncludingTaxes"] == "1234.50"  # exact, as text
    assert rows[0]["ownerName"] == "Léa Müller-Étienne"
    assert rows[0]["changes"][0] == {
        "field": "document.accountingLabel",
        "before": None,
        "after": "F-2027-001",
    }
    assert rows[0]["requestIds"] == ["get-40", "put-40", "book-40"]


def test_held_as_csv_says_why_and_since_when(filled: Ledger, tmp_path: Path) -> None:
    out = tmp_path / "held.csv"
    argv = ["--table", filled.table, "held", "--format", "csv", "--output", str(out)]
    assert audit.main(argv) == 0
    rows = read_csv(out)
    assert len(rows) == 1
    row = rows[0]
    assert row["document id"] == "50"
    # Text from a supplier's document is never a formula to the spreadsheet; amounts stay numbers.
    assert row["invoice number"] == '\'=HYPERLINK("http://x")'
    assert (row["amount including taxes"], row["currency"]) == ("-12.50", "EUR")
    assert row["reason codes"] == "amounts_mismatch"
    assert row["reasons"] == "amounts_mismatch: off by 1.50 EUR"
    assert row["waiting since (UTC)"] == "2027-01-12 08:00:00"  # the first hold, not the recheck


def test_a_bad_date_is_refused_in_words(filled: Ledger, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        audit.main(["--table", filled.table, "export", "--since", "15/01/2027"])
    assert "expected a day (2026-03-01)" in capsys.readouterr().err
