"""The processor handler's own reading of an SQS record (the rest is the runtime's)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from tests.harness import load_handler

EVENTS = Path(__file__).resolve().parents[3] / "events"


def replay_record() -> dict[str, Any]:
    record: dict[str, Any] = json.loads((EVENTS / "replay-document.json").read_text())["Records"][0]
    return record


def test_the_receive_count_is_the_one_sqs_reports() -> None:
    app = load_handler("document_processor")
    raw = copy.deepcopy(replay_record())
    raw["attributes"]["ApproximateReceiveCount"] = "4"
    assert app.receive_count(SQSRecord(raw)) == 4  # what decides "retries exhausted"


def test_a_hand_written_record_without_attributes_is_a_first_delivery() -> None:
    app = load_handler("document_processor")
    raw = copy.deepcopy(replay_record())
    del raw["attributes"]
    assert app.receive_count(SQSRecord(raw)) == 1
