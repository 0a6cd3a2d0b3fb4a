"""The ledger's snapshots in DynamoDB (moto): a shard written is read back as written, each
shard its own item (rewriting one leaves the others), a shard never written or unreadable is left
out, a shard too large for an item is not written, and the items stay out of the status index."""

from __future__ import annotations

import random

from cleemy_booker.ledger import Ledger
from cleemy_booker.ledger.snapshots import MAX_SHARD_BYTES, decode_shard, encode_shard


def test_shards_written_are_read_back_and_the_others_are_left_out(ledger: Ledger) -> None:
    first = {"config": "c1", "refused": [[64, "m1", None], [128, "m2", 1_800_000_000]]}
    third = {"config": "c1", "refused": [[2, "m3", 1_800_000_100]]}

    assert ledger.snapshots.write("refusals", 0, first)
    assert ledger.snapshots.write("refusals", 2, third)

    assert ledger.snapshots.read("refusals", 4) == {0: first, 2: third}
    assert ledger.snapshots.read("other", 4) == {}


def test_rewriting_a_shard_replaces_it_alone(ledger: Ledger) -> None:
    ledger.snapshots.write("refusals", 0, {"refused": [[1, "m1", None]]})
    ledger.snapshots.write("refusals", 1, {"refused": [[2, "m2", None]]})

    ledger.snapshots.write("refusals", 0, {"refused": []})

    assert ledger.snapshots.read("refusals", 2) == {
        0: {"refused": []},
        1: {"refused": [[2, "m2", None]]},
    }


def test_a_shard_is_one_item_outside_the_status_index(ledger: Ledger) -> None:
    ledger.snapshots.write("refusals", 5, {"refused": [[5, "m", None]]})

    item = ledger.db.client.get_item(
        TableName=ledger.table, Key={"pk": {"S": "snapshot#refusals"}, "sk": {"S": "shard#005"}}
    )["Item"]

    assert "statusKey" not in item
    assert decode_shard(bytes(item["data"]["B"])) == {"refused": [[5, "m", None]]}
    assert item["savedAt"]["S"]


def test_a_shard_too_large_for_an_item_is_not_written(ledger: Ledger) -> None:
    # Random text compresses little: past DynamoDB's item size once compressed.
    noise = random.Random(0).randbytes(400_000).hex()
    value = {"refused": [[1, noise, None]]}
    assert len(encode_shard(value)) > MAX_SHARD_BYTES

    assert not ledger.snapshots.write("refusals", 0, value)
    assert ledger.snapshots.read("refusals", 1) == {}


def test_an_unreadable_shard_is_left_out(ledger: Ledger) -> None:
    ledger.snapshots.write("refusals", 1, {"refused": []})
    ledger.db.client.update_item(
        TableName=ledger.table,
        Key={"pk": {"S": "snapshot#refusals"}, "sk": {"S": "shard#000"}},
        UpdateExpression="SET #d = :d",
        ExpressionAttributeNames={"#d": "data"},
        ExpressionAttributeValues={":d": {"B": b"not compressed JSON"}},
    )

    assert ledger.snapshots.read("refusals", 2) == {1: {"refused": []}}


def test_the_same_value_encodes_to_the_same_bytes() -> None:
    """Keys sorted, no spaces: a shard's bytes depend on its value only."""
    assert encode_shard({"b": 1, "a": [1, 2]}) == encode_shard({"a": [1, 2], "b": 1})
    assert decode_shard(encode_shard({"a": [1, None, "x"]})) == {"a": [1, None, "x"]}
