"""Read shape → write shape: read-only fields out, owner → ownerId, unknown fields through."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from cleemy_booker.models import (
    KNOWN_VALUES,
    OCR_STATUSES,
    DocumentMessage,
    InboxDocumentWrite,
    InboxItem,
    WriteAction,
    is_unknown_value,
    to_write_shape,
)
from local.lucca_simulator.writeshape import READ_ONLY_DOCUMENT_FIELDS
from tests.factories import raw_item


def test_write_shape_leaves_out_read_only_fields_and_maps_owner() -> None:
    body = to_write_shape(InboxItem.model_validate(raw_item())).to_json()
    document = body["document"]
    # The simulator's list (Lucca's read-only fields as it plays them), not ours: owner included.
    for read_only in READ_ONLY_DOCUMENT_FIELDS:
        assert read_only not in document
    assert document["ownerId"] == 7
    assert document["context"] == {"purchase": {"id": 90, "type": "Subscription"}}


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


def test_item_level_unknown_fields_are_sent_and_read_only_ones_are_not() -> None:
    body = to_write_shape(InboxItem.model_validate(raw_item())).to_json()
    # ``action`` of the read shape is what is available, not a command: never copied.
    assert set(body) == {"document", "workflowHint"}
    assert body["workflowHint"] == {"step": 1}


# --- open enumerations ------------------------------------------------------------------------

UNKNOWN_VALUES: dict[str, Any] = {
    "ocrStatus": "Archived",
    "type": "Receipt",
    "paymentDetails": {"paymentMethod": "DirectDebit", "bankAccount": None},
    "context": {"purchase": {"id": 90, "href": "/p/90", "name": "P", "type": "Framework"}},
}


def test_unknown_enum_values_parse_and_are_kept() -> None:
    raw = raw_item(**UNKNOWN_VALUES)
    raw["source"] = {"type": "api"}

    item = InboxItem.model_validate(raw)

    assert item.document.ocrStatus == "Archived"
    assert item.source is not None
    assert item.source.type == "api"


def test_unknown_enum_values_survive_the_write_unchanged() -> None:
    document = to_write_shape(InboxItem.model_validate(raw_item(**UNKNOWN_VALUES))).to_json()[
        "document"
    ]
    assert document["type"] == "Receipt"
    assert document["paymentDetails"]["paymentMethod"] == "DirectDebit"
    assert document["context"]["purchase"]["type"] == "Framework"


@pytest.mark.parametrize(
    ("path", "value", "unknown"),
    [
        ("document.ocrStatus", "Archived", True),
        ("document.ocrStatus", "Processed", False),
        ("document.ocrStatus", None, False),  # null is "not said", not a new value
        ("document.type", "Receipt", True),
        ("document.type", "CreditNote", False),
        ("document.paymentDetails.paymentMethod", "DirectDebit", True),
        ("document.paymentDetails.paymentMethod", "BankTransfer", False),
        ("source.type", "api", False),  # no list is published: no value is unknown
    ],
)
def test_is_unknown_value(path: str, value: str | None, unknown: bool) -> None:
    assert is_unknown_value(path, value) is unknown


def test_the_known_ocr_statuses_are_the_published_ones() -> None:
    assert KNOWN_VALUES["document.ocrStatus"] == OCR_STATUSES
    assert set(OCR_STATUSES) == {"Pending", "Processing", "Processed", "Failed", "NotApplicable"}


# --- nothing dropped, nothing invented --------------------------------------------------------


def test_every_key_of_context_and_purchase_is_sent_but_display_data() -> None:
    context = {
        "purchase": {
            "id": 90,
            "href": "/purchases/90",
            "name": "Paper",
            "type": "Subscription",
            "orderNumber": "BC-90",
        },
        "matchedBy": "supplierReference",
    }
    document = to_write_shape(InboxItem.model_validate(raw_item(context=context))).to_json()[
        "document"
    ]
    assert document["context"] == {
        "purchase": {"id": 90, "type": "Subscription", "orderNumber": "BC-90"},
        "matchedBy": "supplierReference",
    }


def test_a_context_without_purchase_keeps_its_other_keys() -> None:
    raw = raw_item(context={"purchase": None, "matchedBy": None})
    document = to_write_shape(InboxItem.model_validate(raw)).to_json()["document"]
    assert document["context"] == {"purchase": None, "matchedBy": None}


def test_action_is_left_out_without_a_command() -> None:
    body = to_write_shape(InboxItem.model_validate(raw_item())).to_json()
    assert "action" not in body


def test_a_command_is_sent_with_its_nulls() -> None:
    write = to_write_shape(InboxItem.model_validate(raw_item()))
    commanded = InboxDocumentWrite.model_validate(
        {**write.model_dump(), "action": WriteAction(type="AttachPurchase", purchaseId=5)}
    )
    assert commanded.to_json()["action"] == {
        "type": "AttachPurchase",
        "purchaseId": 5,
        "paymentId": None,
        "installmentId": None,
        "disputeId": None,
        "autoConfirmation": None,
    }


def test_the_document_still_sends_its_nulls() -> None:
    document = to_write_shape(InboxItem.model_validate(raw_item())).to_json()["document"]
    assert document["accountingLabel"] is None
    assert document["dueDate"] is None


def test_an_unknown_read_field_named_like_a_write_field_does_not_replace_the_mapping() -> None:
    # Lucca adding ``ownerId`` to the read shape must not override ``owner.id``, nor crash.
    document = to_write_shape(InboxItem.model_validate(raw_item(ownerId=999))).to_json()["document"]
    assert document["ownerId"] == 7


def test_a_put_answer_without_type_ocr_status_or_currency_parses() -> None:
    # developers.luccasoftware.com's PUT response leaves those three out.
    raw = raw_item()
    del raw["document"]["type"], raw["document"]["ocrStatus"]
    amounts = raw["document"]["amountIncludingTaxes"]
    for money in (amounts["excludingTaxes"], amounts["includingTaxes"], *amounts["taxes"]):
        del money["currency"]

    item = InboxItem.model_validate(raw)

    assert item.document.amountIncludingTaxes is not None
    assert item.document.amountIncludingTaxes.includingTaxes is not None
    assert item.document.amountIncludingTaxes.includingTaxes.currency is None


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
