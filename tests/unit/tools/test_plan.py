"""The dry run: decisions per document, listing requests only, and its table, JSON and CLI."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from cleemy_booker.client import LuccaClient
from cleemy_booker.endpoints import INBOX_PATH
from cleemy_booker.gate import GateConfig
from cleemy_booker.rules import RuleSet
from cleemy_booker_tools import plan as plan_module
from cleemy_booker_tools.plan import Plan, build_plan, main
from cleemy_booker_tools.plan_report import TABLE_WIDTH
from local.lucca_simulator import Simulator, SimulatorConfig
from tests.factories import EXAMPLE_RULES_FILE, example_rules, raw_item

API_KEY = "secret-key-0123456789"
BASE_URL = "https://acme.ilucca.net"


def amounts(excluding: float, tax: float, including: float) -> dict[str, Any]:
    return {
        "excludingTaxes": {"value": excluding, "currency": "EUR"},
        "taxes": [{"rateTypeId": 1, "value": tax, "currency": "EUR"}],
        "includingTaxes": {"value": including, "currency": "EUR"},
    }


def document(document_id: int, **changes: Any) -> dict[str, Any]:
    # Dated well in the past, so the gate's "date in the future" check never depends on the clock.
    return raw_item(document_id, **({"documentDate": "2024-10-02"} | changes))


def inbox_items() -> list[dict[str, Any]]:
    return [
        document(501, accountingLabel="Paper October", dueDate="2024-11-01"),  # book
        document(502, documentNumber="F-502"),  # update+book: label and due date filled
        document(503, ocrStatus="Pending", documentNumber="F-503"),  # hold
        document(504, documentNumber="F-504", amountIncludingTaxes=amounts(100, 20, 121.5)),
        document(505, documentNumber="F-DUP", accountingLabel="x" * 60),  # hold: same number
        document(506, documentNumber="F-DUP"),  # … as this one, same purchase
        {"id": 507, "document": {"id": "not a number"}},  # unreadable: hold
    ]


class FakeLucca:
    """Lucca's list endpoint over a fixed inbox; any other request is recorded and refused."""

    def __init__(self, items: list[dict[str, Any]], status: int = 200) -> None:
        self.items = items
        self.status = status
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.status != 200:
            return httpx.Response(self.status, json={"title": "refused", "status": self.status})
        if request.method != "GET" or request.url.path != INBOX_PATH:
            return httpx.Response(405)
        limit, page = int(request.url.params["limit"]), int(request.url.params["page"])
        body: dict[str, Any] = {"items": self.items[(page - 1) * limit : page * limit]}
        if request.url.params.get("fields.root") == "count":
            body["count"] = len(self.items)
        return httpx.Response(200, json=body)

    def client(self, base_url: str = BASE_URL, api_key: str = API_KEY) -> LuccaClient:
        http = httpx.Client(transport=httpx.MockTransport(self))
        return LuccaClient(base_url, api_key, http=http)


@pytest.fixture
def lucca() -> FakeLucca:
    return FakeLucca(inbox_items())


def make_plan(lucca: FakeLucca, **kwargs: Any) -> Plan:
    kwargs.setdefault("page_size", 3)
    return build_plan(lucca.client(), None, example_rules(), GateConfig(), **kwargs)


def decisions(plan: Plan) -> dict[int, str]:
    return {entry.document_id: entry.decision for entry in plan.entries}


def reason_codes(plan: Plan, document_id: int) -> list[str]:
    entry = next(e for e in plan.entries if e.document_id == document_id)
    return [reason.code for reason in entry.reasons]


# --- building ---------------------------------------------------------------------------------


def test_each_document_gets_the_processors_decision(lucca: FakeLucca) -> None:
    plan = make_plan(lucca)
    assert decisions(plan) == {
        501: "book",
        502: "update+book",
        503: "hold",
        504: "hold",
        505: "hold",
        506: "hold",
        507: "hold",
    }
    assert reason_codes(plan, 503) == ["ocr_not_finished"]
    assert reason_codes(plan, 504) == ["amounts_mismatch"]
    assert reason_codes(plan, 507) == ["invalid_item"]


def test_duplicate_numbers_within_the_listing_are_flagged_on_both(lucca: FakeLucca) -> None:
    plan = make_plan(lucca)
    assert reason_codes(plan, 505) == ["duplicate_number"]
    assert reason_codes(plan, 506) == ["duplicate_number"]
    entry = next(e for e in plan.entries if e.document_id == 506)
    assert "also used by document 505 (same purchase 90)" in entry.reasons[0].message


def test_an_external_lookup_is_asked_too(lucca: FakeLucca) -> None:
    class Ledger:
        def find_duplicate(self, scope: str, number: str, document_id: int) -> int | None:
            return 42 if (scope, number) == ("purchase:90", "F-2026-00123") else None

    plan = make_plan(lucca, duplicates=Ledger())
    assert reason_codes(plan, 501) == ["duplicate_number"]


def test_the_plan_shows_the_changes_the_rules_would_make(lucca: FakeLucca) -> None:
    entry = next(e for e in make_plan(lucca).entries if e.document_id == 502)
    assert {(c.path, c.before, c.after) for c in entry.changes} == {
        ("document.accountingLabel", None, "F-502"),
        ("document.dueDate", None, "2024-11-01"),
    }
    assert entry.label == "F-502"  # the label as it would be booked
    assert entry.applied_rules == (
        "accounting label from the invoice number",
        "due date 30 days after the invoice date",
    )


def test_only_listing_requests_are_sent_and_counted(lucca: FakeLucca) -> None:
    plan = make_plan(lucca, page_size=3)
    assert {(r.method, r.url.path) for r in lucca.requests} == {("GET", INBOX_PATH)}
    assert len(lucca.requests) == 3  # 7 documents, 3 a page
    assert plan.requests == {"list": 3}
    assert plan.requests_spent == 3


def test_requests_spent_earlier_on_the_client_are_not_counted(lucca: FakeLucca) -> None:
    client = lucca.client()
    client.count()
    plan = build_plan(client, None, RuleSet.empty(), GateConfig(), page_size=1000)
    assert plan.requests == {"list": 1}


def test_totals(lucca: FakeLucca) -> None:
    totals = make_plan(lucca).totals
    assert totals.documents == 7
    assert totals.by_decision == {"book": 1, "update+book": 1, "hold": 5}
    assert totals.amounts["book"] == {"EUR": Decimal(240)}
    assert totals.amounts["hold"] == {"EUR": Decimal("481.5")}  # 120 + 121.50 + 120 + 120


def test_ceiling_from_the_gate_config(lucca: FakeLucca) -> None:
    plan = build_plan(
        lucca.client(), None, example_rules(), GateConfig(max_auto_amount=Decimal(100))
    )
    assert "above_ceiling" in reason_codes(plan, 501)


def test_filters_go_on_every_listing_request(lucca: FakeLucca) -> None:
    build_plan(
        lucca.client(), {"document.type": "Invoice"}, RuleSet.empty(), GateConfig(), page_size=3
    )
    assert all(r.url.params["document.type"] == "Invoice" for r in lucca.requests)


# --- rendering --------------------------------------------------------------------------------


def test_table_fits_120_columns_and_says_everything(lucca: FakeLucca) -> None:
    table = make_plan(lucca).render_table()
    lines = table.splitlines()
    assert max(len(line) for line in lines) <= TABLE_WIDTH
    assert lines[0] == "Dry run: nothing was changed in Lucca."
    assert lines[1].split() == ["ID", "Number", "Label", "Incl.", "taxes", "Cur", "OCR", "Decision"]
    rows = {line.split()[0]: line for line in lines if line[:8].strip().isdigit()}
    assert set(rows) == {"501", "502", "503", "504", "505", "506", "507"}
    assert rows["502"].split()[-1] == "update+book"
    assert "120.00  EUR" in rows["501"]
    assert "x" * 25 + "…" in rows["505"]  # a long label is cut, not wrapped
    assert any('set   document.dueDate: null -> "2024-11-01"' in line for line in lines)
    assert any("hold  amounts_mismatch: excluding 100.00 + taxes 20.00" in line for line in lines)
    assert "Totals: 7 documents: 1 book, 1 update+book, 5 hold" in table
    assert "to book: 240.00 EUR" in table
    assert "Requests to Lucca: 3 (list 3)" in table


def test_empty_inbox_table() -> None:
    plan = build_plan(FakeLucca([]).client(), None, RuleSet.empty(), GateConfig())
    table = plan.render_table()
    assert "(the inbox is empty for these filters)" in table
    assert "Totals: 0 documents: 0 book, 0 update+book, 0 hold" in table


def test_json_output(lucca: FakeLucca) -> None:
    data = json.loads(make_plan(lucca).render_json())
    entries = {entry["documentId"]: entry for entry in data["entries"]}
    assert entries[501]["decision"] == "book"
    assert entries[501]["amountIncludingTaxes"] == 120
    assert entries[504]["reasons"][0]["code"] == "amounts_mismatch"
    assert entries[502]["changes"][0] == {
        "path": "document.accountingLabel",
        "before": None,
        "after": "F-502",
    }
    assert data["totals"]["byDecision"] == {"book": 1, "update+book": 1, "hold": 5}
    assert data["totals"]["amounts"]["hold"] == {"EUR": 481.5}
    assert data["requests"] == {"list": 3, "total": 3}
    assert data["listing"]["count"] == 7


# --- command line -----------------------------------------------------------------------------


@pytest.fixture
def cli_lucca(monkeypatch: pytest.MonkeyPatch, lucca: FakeLucca) -> Iterator[FakeLucca]:
    """The CLI's client, talking to the fake Lucca instead of the network."""
    made: list[tuple[str, str]] = []

    def fake_client(base_url: str, api_key: str) -> LuccaClient:
        made.append((base_url, api_key))
        return lucca.client(base_url, api_key)

    monkeypatch.setattr(plan_module, "LuccaClient", fake_client)
    yield lucca
    assert all(key == API_KEY for _, key in made)


def run(argv: list[str], env: dict[str, str] | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    environ = {"LUCCA_API_KEY": API_KEY} if env is None else env
    code = main(argv, environ=environ, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_cli_prints_the_table(cli_lucca: FakeLucca) -> None:
    argv = ["--base-url", BASE_URL, "--page-size", "5", "--rules", str(EXAMPLE_RULES_FILE)]
    code, out, err = run(argv)
    assert (code, err) == (0, "")
    assert "Totals: 7 documents: 1 book, 1 update+book, 5 hold" in out
    assert max(len(line) for line in out.splitlines()) <= TABLE_WIDTH
    assert API_KEY not in out
    assert len(cli_lucca.requests) == 2


def test_cli_without_rules_books_documents_as_they_are(cli_lucca: FakeLucca) -> None:
    code, out, _ = run(["--base-url", BASE_URL, "--json"])
    assert code == 0
    entries = {entry["documentId"]: entry for entry in json.loads(out)["entries"]}
    assert (entries[502]["decision"], entries[502]["changes"]) == ("book", [])


def test_cli_prints_json_with_the_ceiling_and_filters(cli_lucca: FakeLucca) -> None:
    argv = ["--base-url", BASE_URL, "--json", "--max-auto-amount", "100", "--filters", "a=b"]
    code, out, _ = run(argv)
    assert code == 0
    data = json.loads(out)
    first = next(e for e in data["entries"] if e["documentId"] == 501)
    assert first["reasons"][0]["code"] == "above_ceiling"
    assert cli_lucca.requests[0].url.params["a"] == "b"


def test_cli_reads_the_key_from_the_named_variable(cli_lucca: FakeLucca) -> None:
    code, _, _ = run(["--base-url", BASE_URL, "--api-key-env", "MY_KEY"], {"MY_KEY": API_KEY})
    assert code == 0
    assert cli_lucca.requests[0].headers["Authorization"] == f"lucca application={API_KEY}"


def test_cli_uses_a_rules_file(cli_lucca: FakeLucca, tmp_path: Any) -> None:
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"rules": [{"name": "c", "set": {"document.comment": "auto"}}]}))
    code, out, _ = run(["--base-url", BASE_URL, "--rules", str(rules), "--json"])
    assert code == 0
    entry = next(e for e in json.loads(out)["entries"] if e["documentId"] == 501)
    assert entry["rulesApplied"] == ["c"]


@pytest.mark.parametrize(
    ("argv", "env", "words"),
    [
        ([], {}, "environment variable LUCCA_API_KEY is not set"),
        (["--api-key-env", "k3y-that-was-pasted-here"], {}, "variable given by --api-key-env"),
        (["--filters", "limit=5"], None, "--filters: filter 'limit' is set by the pipeline"),
        (["--max-auto-amount", "lots"], None, "--max-auto-amount must be a positive number"),
        (["--max-auto-amount", "-5"], None, "--max-auto-amount must be a positive number"),
        (["--page-size", "0"], None, "--page-size must be between 1 and 1000"),
        (["--rules", "/nonexistent/rules.json"], None, "cannot read the rules file"),
        (["--rules", "ssm:/cleemy/rules"], None, "save them to a file for the CLI"),
    ],
)
def test_cli_bad_config_exits_2(
    cli_lucca: FakeLucca, argv: list[str], env: dict[str, str] | None, words: str
) -> None:
    code, out, err = run(["--base-url", BASE_URL, *argv], env)
    assert (code, out) == (2, "")
    assert words in err
    assert "k3y-that-was-pasted-here" not in err
    assert cli_lucca.requests == []


def test_cli_bad_rules_name_the_rule(cli_lucca: FakeLucca, tmp_path: Any) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - name: oops\n    set: {document.ocrStatus: Processed}\n")
    code, _, err = run(["--base-url", BASE_URL, "--rules", str(rules)])
    assert code == 2
    assert "rule #1 'oops'" in err
    assert "read-only" in err


def test_cli_refuses_plain_http_off_loopback() -> None:
    code, _, err = run(["--base-url", "http://acme.ilucca.net"])
    assert code == 2
    assert "https" in err


def test_cli_wrong_key_exits_2_and_other_lucca_errors_exit_1(cli_lucca: FakeLucca) -> None:
    cli_lucca.status = 401
    code, _, err = run(["--base-url", BASE_URL])
    assert code == 2
    assert "refused the API key" in err
    assert API_KEY not in err
    cli_lucca.status = 404
    code, _, err = run(["--base-url", BASE_URL])
    assert code == 1
    assert "could not list the inbox" in err


def test_cli_needs_a_base_url() -> None:
    with pytest.raises(SystemExit) as exited:
        run([])
    assert exited.value.code == 2


# --- against the simulator --------------------------------------------------------------------


def test_cli_against_the_simulator_makes_only_list_requests() -> None:
    sim = Simulator(SimulatorConfig(invoices=40, seed=7)).start()
    try:
        code, out, err = run(["--base-url", sim.url, "--json"], {"LUCCA_API_KEY": sim.api_key})
        logged = httpx.get(f"{sim.url}/_sim/requests").json()["requests"]
    finally:
        sim.stop()
    assert (code, err) == (0, "")
    data = json.loads(out)
    assert len(data["entries"]) == 40
    assert {entry["endpoint"] for entry in logged} == {"list"}
    assert {entry["method"] for entry in logged} == {"GET"}
    assert data["requests"]["total"] == len(logged) == 1
    assert data["totals"]["byDecision"]["hold"] > 0
    assert data["totals"]["byDecision"]["book"] > 0
