"""How long the ledger keeps what it writes about a document: each event, the state (from its
last decision) and the invoice-number claim expire the retention after they were written, and
the template's default retention is the code's."""

from __future__ import annotations

from typing import Any

from cleemy_booker.ledger import Ledger, Status
from cleemy_booker.ledger.table import RETENTION_DAYS
from sim.template import load_template
from tests.aws import clocked_ledger
from tests.clocks import NOW

DAYS = 400


def _item(ledger: Ledger, pk: str, sk: str) -> dict[str, Any]:
    found = ledger.db.client.get_item(
        TableName=ledger.table, Key={"pk": {"S": pk}, "sk": {"S": sk}}, ConsistentRead=True
    )
    return dict(found["Item"])


def _expires(item: dict[str, Any]) -> int:
    return int(item["expiresAt"]["N"])


def test_each_decision_moves_the_state_s_expiry_to_the_retention_after_it() -> None:
    with clocked_ledger() as (ledger, clock):
        ledger.db.retention_seconds = DAYS * 86400
        ledger.states.claim_for_queue(1, "m1", now=clock(), ttl_seconds=3600)
        ledger.states.record(1, Status.HELD, "held", reasons=["missing_fields: due date"])
        assert _expires(_item(ledger, "doc#1", "state")) == int(NOW) + DAYS * 86400
        clock.now += 86400
        ledger.states.record(1, Status.BOOKED, "booked", detail={"requestIds": ["b"]})
        assert _expires(_item(ledger, "doc#1", "state")) == int(NOW) + (DAYS + 1) * 86400


def test_a_booking_confirmed_from_outside_moves_the_expiry_too() -> None:
    with clocked_ledger() as (ledger, clock):
        ledger.db.retention_seconds = DAYS * 86400
        ledger.states.record(1, Status.BOOKING, "booking")
        seen = ledger.states.state(1)
        assert seen is not None
        clock.now += 3600
        assert ledger.states.confirm_booked(seen, detail={"confirmedBy": "listing"})
        assert _expires(_item(ledger, "doc#1", "state")) == int(NOW) + 3600 + DAYS * 86400


def test_an_invoice_number_claim_is_kept_as_long_as_the_trail() -> None:
    with clocked_ledger() as (ledger, _):
        ledger.db.retention_seconds = DAYS * 86400
        assert ledger.numbers.claim_number("owner:7", "F-1", 1) is None
        claim = _item(ledger, "number#owner:7#F-1", "claim")
        assert _expires(claim) == int(NOW) + DAYS * 86400


def test_the_template_keeps_the_ledger_as_long_as_the_code_does() -> None:
    parameters = load_template()["Parameters"]
    assert parameters["LedgerRetentionDays"]["Default"] == RETENTION_DAYS
    assert RETENTION_DAYS >= 11 * 365  # 10 years from the close of a financial year
