"""Read shape → write shape: read-only fields out, owner → ownerId, unknown fields through."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from cleemy_booker.models import DocumentMessage, InboxItem, to_write_shape
from tests.factories import raw_item


def test_write_shape_leaves_out_read_only_fields_and_maps_owner() -> None:
    body = to_write_shape(InboxItem.model_validate(raw_item())).to_json()
    document = body["document"]
    for read_only in (
        "id",
        "attachments",
        "ocrStatus",
        "createdAt",
        "modifiedAt",
        "author",
        "modifier",
        "owner",
        "documentBreakdown",
    ):
        assert read_only not in document
    assert document["ownerId"] == 7
    assert document["context"] == {"purchase": {"id": 90, "type": "Subscription"}}
    assert "action" not in body or body["action"] is None


def test_unknown_fields_survive_the_round_trip_at_every_level() -> None:
    body = to_write_shape(InboxItem.model_validate(raw_item())).to_json()
    document = body["document"]
    assert document["supplierReference"] == "SUP-88"
    assert document["costCenterCode"] == "CC-7"
    assert document["amountIncludingTaxes"]["roundingMode"] == "HalfUp"


def test_amounts_and_dates_stay_json_numbers_and_iso_dates() -> None:
    document = to_write_shape(InboxItem.model_validate(raw_item())).to_json()["document"]
    amounts = document["amountIncludingTaxes"]
    assert amounts["excludingTaxes"] == {"value": 100, "currency": "EUR"}
    assert amounts["taxes"][0]["value"] == 20
    assert document["documentDate"] == "2026-10-02"
    fractional = to_write_shape(
        InboxItem.model_validate(
            raw_item(
                amountIncludingTaxes={
                    "excludingTaxes": {"value": 10.05, "currency": "EUR"},
                    "taxes": [],
                    "includingTaxes": {"value": 10.05, "currency": "EUR"},
                }
            )
        )
    ).to_json()["document"]["amountIncludingTaxes"]
    assert fractional["includingTaxes"]["value"] == 10.05
    json.dumps(document)  # serialisable as is


def test_a_null_owner_and_context_are_written_as_null() -> None:
    item = InboxItem.model_validate(raw_item(owner=None, context=None))
    document = to_write_shape(item).to_json()["document"]
    assert document["ownerId"] is None
    assert document["context"] is None


def test_item_level_unknown_fields_are_kept_on_read() -> None:
    item = InboxItem.model_validate(raw_item())
    assert item.model_extra == {"workflowHint": {"step": 1}}


def test_a_bare_document_id_is_a_valid_message() -> None:
    assert DocumentMessage.model_validate_json('{"documentId": 123}').documentId == 123


@pytest.mark.parametrize(
    "body",
    [
        '{"documentId": 0}',
        '{"documentId": "abc"}',
        "{}",
        '{"documentId": 1, "extra": 1}',
        "[1]",
        "not json",
    ],
)
def test_malformed_messages_are_refused(body: str) -> None:
    with pytest.raises(ValidationError):
        DocumentMessage.model_validate_json(body)
