"""What Lucca sends that is new: found on a listed item (a field no model declares, at any depth;
a value outside a published enumeration), recorded once in the ledger with its date and an
example document, remembered by a warm poller, and told in the digest."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from cleemy_booker.clock import utc_iso
from cleemy_booker.digest import compose
from cleemy_booker.digest.data import DigestData
from cleemy_booker.digest.gathering import gather
from cleemy_booker.ledger import Ledger
from cleemy_booker.listing import ListedDocument
from cleemy_booker.models import InboxItem
from cleemy_booker.novelty import Novelty, novelties_in
from cleemy_booker.poller import PollReport
from cleemy_booker.poller.novelties import NoveltyLog
from tests.aws import moto_ledger
from tests.factories import raw_item

NOW = 1_800_000_000.0


def published(document_id: int = 501, **document_changes: Any) -> dict[str, Any]:
    """The factory's item without the fields it adds that no model declares (they stand for
    what Lucca may add, so a round trip keeps them): the item as Lucca publishes it."""
    raw = raw_item(document_id, **document_changes)
    raw.pop("workflowHint")
    raw["document"].pop("supplierReference")
    raw["document"].pop("costCenterCode")
    raw["document"]["amountIncludingTaxes"].pop("roundingMode")
    return raw


def item(**document_changes: Any) -> InboxItem:
    return InboxItem.model_validate(published(**document_changes))


def test_a_document_as_published_carries_nothing_new() -> None:
    assert novelties_in(item()) == []


def test_fields_no_model_declares_are_found_at_every_depth_once_per_path() -> None:
    raw = published()
    raw["workflowHint"] = {"step": 1}
    raw["document"]["costCenterCode"] = "CC-12"
    raw["document"]["amountIncludingTaxes"]["taxes"] = [
        {"rateTypeId": 1, "value": 10, "currency": "EUR", "roundingMode": "half-up"},
        {"rateTypeId": 2, "value": 5, "currency": "EUR", "roundingMode": "half-up"},
    ]

    found = novelties_in(InboxItem.model_validate(raw))

    keys = sorted(n.key for n in found if n.kind == "field")
    assert keys == [
        "document.amountIncludingTaxes.taxes[].roundingMode",
        "document.costCenterCode",
        "workflowHint",
    ]
    cost_center = next(n for n in found if n.key == "document.costCenterCode")
    assert cost_center.example == '"CC-12"'
    assert cost_center.document_id == 501


def test_a_value_outside_a_published_enumeration_is_new_and_null_is_not() -> None:
    found = novelties_in(item(type="Proforma", ocrStatus=None))

    assert [(n.kind, n.key) for n in found] == [("value", "document.type=Proforma")]


@pytest.fixture
def ledger() -> Iterator[Ledger]:
    with moto_ledger(clock=lambda: NOW) as found:
        yield found


def test_a_novelty_is_recorded_once_with_when_and_where_it_was_first_seen(ledger: Ledger) -> None:
    first = Novelty("field", "document.costCenterCode", '"CC-12"', 501)

    assert ledger.markers.record_novelty(first)
    assert not ledger.markers.record_novelty(Novelty("field", first.key, '"CC-99"', 777))

    [recorded] = ledger.queries.novelties()
    assert recorded == Novelty("field", first.key, '"CC-12"', 501, first_seen=utc_iso(NOW))
    assert ledger.queries.novelties(since=utc_iso(NOW + 1)) == []


class CountingMarkers:
    """``Markers.record_novelty`` over a real ledger, counting the writes it is asked for."""

    def __init__(self, ledger: Ledger, fail: bool = False) -> None:
        self.ledger = ledger
        self.fail = fail
        self.writes = 0

    def record_novelty(self, novelty: Novelty) -> bool:
        self.writes += 1
        if self.fail:
            raise ClientError({"Error": {"Code": "ProvisionedThroughputExceeded"}}, "UpdateItem")
        return self.ledger.markers.record_novelty(novelty)


def listed_with_new_field(document_id: int) -> ListedDocument:
    raw = published(document_id)
    raw["workflowHint"] = {"step": document_id}
    raw["document"]["costCenterCode"] = f"CC-{document_id}"
    return ListedDocument(document_id, InboxItem.model_validate(raw))


def test_a_warm_poller_writes_a_novelty_once_however_many_documents_carry_it(
    ledger: Ledger,
) -> None:
    markers = CountingMarkers(ledger)
    known: set[str] = set()
    first, second = PollReport(), PollReport()

    log = NoveltyLog(markers, known)  # type: ignore[arg-type]
    for document_id in (501, 502, 503):
        log.note(listed_with_new_field(document_id), first)
    NoveltyLog(markers, known).note(listed_with_new_field(504), second)  # type: ignore[arg-type]

    assert markers.writes == 2  # workflowHint and costCenterCode, once each
    assert sorted(first.novelties) == ["field:document.costCenterCode", "field:workflowHint"]
    assert second.novelties == []


def test_a_cold_poller_asks_once_per_novelty_and_reports_nothing_already_recorded(
    ledger: Ledger,
) -> None:
    NoveltyLog(ledger.markers, set()).note(listed_with_new_field(501), PollReport())
    cold = CountingMarkers(ledger)
    report = PollReport()

    log = NoveltyLog(cold, set())  # type: ignore[arg-type]
    for document_id in (502, 503):
        log.note(listed_with_new_field(document_id), report)

    assert cold.writes == 2
    assert report.novelties == []


def test_a_failed_write_is_tried_again_by_the_next_run_and_never_stops_the_listing(
    ledger: Ledger,
) -> None:
    failing = CountingMarkers(ledger, fail=True)
    known: set[str] = set()

    NoveltyLog(failing, known).note(listed_with_new_field(501), PollReport())  # type: ignore[arg-type]
    failing.fail = False
    report = PollReport()
    NoveltyLog(failing, known).note(listed_with_new_field(502), report)  # type: ignore[arg-type]

    assert sorted(report.novelties) == ["field:document.costCenterCode", "field:workflowHint"]


def test_the_digest_tells_what_is_new_since_the_last_one(ledger: Ledger) -> None:
    ledger.markers.record_novelty(Novelty("value", "document.type=Proforma", '"Proforma"', 501))

    data = gather(ledger, now=NOW + 3600)
    digest = compose(data, stack="prod")

    assert [n.key for n in data.novelties] == ["document.type=Proforma"]
    assert digest is not None
    assert "Lucca started sending 1 new thing" in digest.text
    assert "a new value: document.type=Proforma" in digest.text
    assert "on document 501" in digest.text


def test_a_digest_with_only_a_novelty_is_still_sent() -> None:
    at, since = "2026-12-07T08:00:00+00:00", "2026-12-06T08:00:00+00:00"
    quiet = DigestData(at=at, since=since, until=at)
    novelty = Novelty("route", "get: published read refused (405)", '"405"', None, since)

    assert compose(quiet, stack="prod") is None
    told = compose(DigestData(at, since, at, novelties=(novelty,)), stack="prod")
    assert told is not None
    assert "a route answering anew: get: published read refused (405)" in told.text
