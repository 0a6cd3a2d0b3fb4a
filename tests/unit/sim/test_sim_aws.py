"""The simulation's in-memory DynamoDB and SQS (``sim/aws``) agree with moto.

Each agreement test runs once on moto and once on the in-memory model and asserts the same
observable results (responses, error codes and messages, items) on both. Where moto and AWS
differ, the model follows AWS's documented behaviour: those tests run on the model alone and
say what moto does instead. moto ties time-dependent behaviour (visibility timeouts, delays,
retention, TTL) to the wall clock, so those run on the model alone, on a fake clock.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
)
from botocore.exceptions import ClientError
from moto import mock_aws

from cleemy_booker.budget import BudgetState, DynamoSlotStore
from cleemy_booker.ledger import Ledger, Status
from sim.aws import InMemoryDynamoDB, InMemorySqs
from tests.aws import create_idempotency_table, create_ledger_table, create_pk_sk_table
from tests.clocks import NOW, FakeClock

REGION = "eu-west-3"
URL = "https://sqs.eu-west-3.amazonaws.com/123456789012/"
ARN = "arn:aws:sqs:eu-west-3:123456789012:"
KEY = {"pk": {"S": "a"}, "sk": {"S": "b"}}


@dataclass
class Aws:
    backend: str
    dynamodb: Any
    sqs: Any


@pytest.fixture(params=["moto", "memory"])
def aws(request: pytest.FixtureRequest) -> Iterator[Aws]:
    if request.param == "moto":
        with mock_aws():
            yield Aws(
                "moto",
                boto3.client("dynamodb", region_name=REGION),
                boto3.client("sqs", region_name=REGION),
            )
    else:
        yield Aws("memory", InMemoryDynamoDB(), InMemorySqs())


def clean(response: dict[str, Any]) -> dict[str, Any]:
    """A response without transport details. moto also adds ``ConsumedCapacity`` to writes
    that did not ask for it (AWS only returns it on request): dropped too."""
    return {k: v for k, v in response.items() if k not in ("ResponseMetadata", "ConsumedCapacity")}


def failure(call: Callable[[], Any]) -> ClientError:
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value


def code_and_message(call: Callable[[], Any]) -> tuple[str, str]:
    error = failure(call).response["Error"]
    return error["Code"], error["Message"]


def code(call: Callable[[], Any]) -> str:
    return str(failure(call).response["Error"]["Code"])


def s(value: str) -> dict[str, str]:
    return {"S": value}


def n(value: str) -> dict[str, str]:
    return {"N": value}


# --- DynamoDB: conditions ------------------------------------------------------------------------


def test_conditional_put_succeeds_once(aws: Aws) -> None:
    ddb = aws.dynamodb
    create_pk_sk_table(ddb, "t")
    item = {**KEY, "n": n("1")}
    put = {"TableName": "t", "Item": item, "ConditionExpression": "attribute_not_exists(pk)"}
    assert clean(ddb.put_item(**put)) == {}
    error = failure(lambda: ddb.put_item(**put))
    assert error.response["Error"]["Code"] == "ConditionalCheckFailedException"
    assert error.response["Error"]["Message"] == "The conditional request failed"
    assert "Item" not in error.response  # not asked for
    assert isinstance(error, ddb.exceptions.ConditionalCheckFailedException)
    assert clean(ddb.get_item(TableName="t", Key=KEY)) == {"Item": item}


def test_condition_failure_carries_the_old_item_when_asked(aws: Aws) -> None:
    ddb = aws.dynamodb
    create_pk_sk_table(ddb, "t")
    old = {**KEY, "status": s("HELD"), "n": n("7")}
    ddb.put_item(TableName="t", Item=old)
    never = {
        "ConditionExpression": "attribute_not_exists(pk)",
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }
    put = failure(lambda: ddb.put_item(TableName="t", Item={**KEY, "x": s("y")}, **never))
    update = failure(
        lambda: ddb.update_item(
            TableName="t",
            Key=KEY,
            UpdateExpression="SET x = :y",
            ExpressionAttributeValues={":y": s("y")},
            **never,
        )
    )
    delete = failure(lambda: ddb.delete_item(TableName="t", Key=KEY, **never))
    for error in (put, update, delete):
        assert error.response["Error"]["Code"] == "ConditionalCheckFailedException"
        assert error.response["Item"] == old
    missing = {"pk": s("nobody"), "sk": s("b")}
    absent = failure(
        lambda: ddb.put_item(
            TableName="t",
            Item=missing,
            ConditionExpression="attribute_exists(pk)",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    )
    assert "Item" not in absent.response


def test_conditional_update_and_delete(aws: Aws) -> None:
    ddb = aws.dynamodb
    create_pk_sk_table(ddb, "t")
    ddb.put_item(TableName="t", Item={**KEY, "n": n("1")})
    bump = {
        "TableName": "t",
        "Key": KEY,
        "UpdateExpression": "SET n = :two",
        "ConditionExpression": "n = :one",
        "ExpressionAttributeValues": {":one": n("1"), ":two": n("2")},
    }
    assert clean(ddb.update_item(**bump)) == {}
    assert code(lambda: ddb.update_item(**bump)) == "ConditionalCheckFailedException"
    delete = {
        "TableName": "t",
        "Key": KEY,
        "ConditionExpression": "n = :one",
        "ExpressionAttributeValues": {":one": n("1")},
    }
    assert code(lambda: ddb.delete_item(**delete)) == "ConditionalCheckFailedException"
    assert clean(ddb.get_item(TableName="t", Key=KEY)) == {"Item": {**KEY, "n": n("2")}}
    delete["ExpressionAttributeValues"] = {":one": n("2")}
    assert clean(ddb.delete_item(**delete, ReturnValues="ALL_OLD")) == {
        "Attributes": {**KEY, "n": n("2")}
    }
    assert clean(ddb.get_item(TableName="t", Key=KEY)) == {}


@pytest.mark.parametrize(
    ("condition", "values", "holds"),
    [
        ("st IN (:a, :b)", {":a": s("FAILED"), ":b": s("HELD")}, True),
        ("st IN (:a, :b)", {":a": s("FAILED"), ":b": s("BOOKED")}, False),
        ("NOT st IN (:a)", {":a": s("HELD")}, False),
        # "<>" with a missing attribute is true in DynamoDB (and "=" false): the ledger's
        # "modifiedAt <> :m" relies on it.
        ("absent <> :v", {":v": s("x")}, True),
        ("absent = :v", {":v": s("x")}, False),
        ("NOT absent = :v", {":v": s("x")}, True),
        ("absent < :v", {":v": n("1")}, False),
        # Numbers compare numerically, strings by their UTF-8 bytes.
        ("num > :v", {":v": n("9")}, True),
        ("num = :v", {":v": n("10.0")}, True),
        ("txt > :v", {":v": s("9")}, False),
        ("txt < :v", {":v": s("9")}, True),
        ("num BETWEEN :a AND :b", {":a": n("10"), ":b": n("11")}, True),
        ("begins_with(txt, :p)", {":p": s("1")}, True),
        ("contains(txt, :p)", {":p": s("0")}, True),
        ("size(txt) = :two", {":two": n("2")}, True),
        ("attribute_type(num, :t)", {":t": s("N")}, True),
        # NOT binds tighter than AND, AND tighter than OR; keywords in any case.
        (
            "attribute_exists(absent) and attribute_exists(absent) or attribute_exists(pk)",
            {},
            True,
        ),
        (
            "attribute_exists(pk) OR attribute_exists(absent) AND attribute_exists(absent)",
            {},
            True,
        ),
        ("NOT attribute_exists(absent) AND attribute_exists(pk)", {}, True),
        ("NOT (attribute_exists(pk) AND attribute_exists(absent))", {}, True),
        ("m.part[1] = :v", {":v": n("2")}, True),
    ],
)
def test_condition_expressions(
    aws: Aws, condition: str, values: dict[str, Any], holds: bool
) -> None:
    ddb = aws.dynamodb
    create_pk_sk_table(ddb, "t")
    item = {
        **KEY,
        "st": s("HELD"),
        "num": n("10"),
        "txt": s("10"),
        "m": {"M": {"part": {"L": [n("1"), n("2")]}}},
    }
    ddb.put_item(TableName="t", Item=item)
    call = {"TableName": "t", "Item": item, "ConditionExpression": condition}
    if values:
        call["ExpressionAttributeValues"] = values
    if holds:
        assert clean(ddb.put_item(**call)) == {}
    else:
        assert code(lambda: ddb.put_item(**call)) == "ConditionalCheckFailedException"


def test_reserved_words_need_a_placeholder(aws: Aws) -> None:
    ddb = aws.dynamodb
    create_pk_sk_table(ddb, "t")
    assert code_and_message(
        lambda: ddb.update_item(
            TableName="t",
            Key=KEY,
            UpdateExpression="SET status = :s",
            ExpressionAttributeValues={":s": s("x")},
        )
    ) == (
        "ValidationException",
        "Invalid UpdateExpression: Attribute name is a reserved keyword; reserved keyword: status",
    )


# --- DynamoDB: updates ---------------------------------------------------------------------------

BASE = {**KEY, "n": n("10"), "s": s("x"), "keep": s("k")}
# Every SET changes its attribute's value: moto leaves unchanged ones out of UPDATED_NEW/OLD.
CHANGES = {
    "UpdateExpression": "SET n = n + :five, added = :five REMOVE s",
    "ExpressionAttributeValues": {":five": n("5")},
}
RESULTS = {
    "NONE": {},
    "ALL_OLD": {"Attributes": BASE},
    "UPDATED_OLD": {"Attributes": {"n": n("10"), "s": s("x")}},
    "ALL_NEW": {"Attributes": {**KEY, "n": n("15"), "keep": s("k"), "added": n("5")}},
    "UPDATED_NEW": {"Attributes": {"n": n("15"), "added": n("5")}},
}


@pytest.mark.parametrize("mode", list(RESULTS))
def test_update_return_values(aws: Aws, mode: str) -> None:
    ddb = aws.dynamodb
    create_pk_sk_table(ddb, "t")
    ddb.put_item(TableName="t", Item=BASE)
    result = ddb.update_item(TableName="t", Key=KEY, ReturnValues=mode, **CHANGES)
    assert clean(result) == RESULTS[mode]


def test_update_creates_the_item_if_absent(aws: Aws) -> None:
    ddb = aws.dynamodb
    create_pk_sk_table(ddb, "t")
    values = {":v": s("v")}
    old = ddb.update_item(
        TableName="t",
        Key=KEY,
        UpdateExpression="SET x = :v",
        ExpressionAttributeValues=values,
        ReturnValues="ALL_OLD",
    )
    assert clean(old) == {}
    other = {"pk": s("a"), "sk": s("c")}
    new = ddb.update_item(
        TableName="t",
        Key=other,
        UpdateExpression="SET x = :v",
        ExpressionAttributeValues=values,
        ReturnValues="ALL_NEW",
    )
    assert clean(new) == {"Attributes": {**other, "x": s("v")}}
    assert clean(ddb.get_item(TableName="t", Key=KEY)) == {"Item": {**KEY, "x": s("v")}}


def test_if_not_exists_list_append_and_add(aws: Aws) -> None:
    ddb = aws.dynamodb
    create_pk_sk_table(ddb, "t")
    update = {
        "TableName": "t",
        "Key": KEY,
        "UpdateExpression": (
            "SET firstSeen = if_not_exists(firstSeen, :v), "
            "seen = list_append(if_not_exists(seen, :none), :one) ADD hits :inc, tags :tag"
        ),
        "ExpressionAttributeValues": {
            ":v": s("first"),
            ":none": {"L": []},
            ":one": {"L": [s("x")]},
            ":inc": n("1"),
            ":tag": {"SS": ["a"]},
        },
        "ReturnValues": "ALL_NEW",
    }
    assert clean(ddb.update_item(**update)) == {
        "Attributes": {
            **KEY,
            "firstSeen": s("first"),
            "seen": {"L": [s("x")]},
            "hits": n("1"),
            "tags": {"SS": ["a"]},
        }
    }
    update["ExpressionAttributeValues"] = {
        **update["ExpressionAttributeValues"],
        ":v": s("second"),
        ":tag": {"SS": ["b"]},
    }
    assert clean(ddb.update_item(**update)) == {
        "Attributes": {
            **KEY,
            "firstSeen": s("first"),
            "seen": {"L": [s("x"), s("x")]},
            "hits": n("2"),
            "tags": {"SS": ["a", "b"]},
        }
    }


def test_arithmetic_and_remove(aws: Aws) -> None:
    ddb = aws.dynamodb
    create_pk_sk_table(ddb, "t")
    ddb.put_item(TableName="t", Item={**KEY, "c": n("10"), "gone": s("x"), "also": s("y")})
    result = ddb.update_item(
        TableName="t",
        Key=KEY,
        UpdateExpression="REMOVE gone, also SET c = c + :n, d = :x - :y",
        ExpressionAttributeValues={":n": n("5"), ":x": n("2.5"), ":y": n("1")},
        ReturnValues="ALL_NEW",
    )
    assert clean(result) == {"Attributes": {**KEY, "c": n("15"), "d": n("1.5")}}
    missing = code_and_message(
        lambda: ddb.update_item(
            TableName="t",
            Key=KEY,
            UpdateExpression="SET e = nope + :n",
            ExpressionAttributeValues={":n": n("1")},
        )
    )
    assert missing == (
        "ValidationException",
        "The provided expression refers to an attribute that does not exist in the item",
    )


def test_nested_document_paths(aws: Aws) -> None:
    ddb = aws.dynamodb
    create_pk_sk_table(ddb, "t")
    ddb.put_item(TableName="t", Item={**KEY, "m": {"M": {"a": {"L": [n("1"), n("2")]}}}})
    result = ddb.update_item(
        TableName="t",
        Key=KEY,
        UpdateExpression="SET m.a[1] = :v, m.#b = :v",
        ExpressionAttributeNames={"#b": "b"},
        ExpressionAttributeValues={":v": n("9")},
        ReturnValues="ALL_NEW",
    )
    expected = {**KEY, "m": {"M": {"a": {"L": [n("1"), n("9")]}, "b": n("9")}}}
    assert clean(result) == {"Attributes": expected}
    projected = ddb.get_item(
        TableName="t", Key=KEY, ProjectionExpression="m.b, sk", ConsistentRead=True
    )
    assert clean(projected) == {"Item": {"m": {"M": {"b": n("9")}}, "sk": s("b")}}


@pytest.mark.parametrize(
    ("update", "names", "values"),
    [
        ("SET pk = :v", None, {":v": s("x")}),  # a key attribute
        ("SET a = :v SET b = :v", None, {":v": s("x")}),  # a clause twice
        ("SET a = :v, a = :v", None, {":v": s("x")}),  # two actions on one path
        ("SET m.a = :v REMOVE m", None, {":v": s("x")}),  # overlapping paths
        ("SET a = :v", {"#unused": "x"}, {":v": s("x")}),  # an unused name
        ("SET a = list_append(:v, :v)", None, {":v": s("x")}),  # wrong operand type
        ("SET a = :v +", None, {":v": n("1")}),  # syntax
    ],
)
def test_invalid_updates_are_refused(
    aws: Aws, update: str, names: dict[str, str] | None, values: dict[str, Any]
) -> None:
    ddb = aws.dynamodb
    create_pk_sk_table(ddb, "t")
    call: dict[str, Any] = {
        "TableName": "t",
        "Key": KEY,
        "UpdateExpression": update,
        "ExpressionAttributeValues": values,
    }
    if names:
        call["ExpressionAttributeNames"] = names
    assert code(lambda: ddb.update_item(**call)) == "ValidationException"
    assert clean(ddb.get_item(TableName="t", Key=KEY)) == {}


# --- DynamoDB: keys, tables, queries -------------------------------------------------------------


def test_key_attributes_are_validated(aws: Aws) -> None:
    ddb = aws.dynamodb
    create_pk_sk_table(ddb, "t")
    assert code_and_message(lambda: ddb.put_item(TableName="t", Item={"pk": s("a")})) == (
        "ValidationException",
        "One or more parameter values were invalid: Missing the key sk in the item",
    )
    assert code_and_message(
        lambda: ddb.put_item(TableName="t", Item={"pk": s("a"), "sk": n("1")})
    ) == (
        "ValidationException",
        "One or more parameter values were invalid: Type mismatch for key sk expected: S actual: N",
    )
    assert code(lambda: ddb.put_item(TableName="t", Item={"pk": s(""), "sk": s("x")})) == (
        "ValidationException"
    )
    assert code(lambda: ddb.get_item(TableName="t", Key={"pk": s("a")})) == "ValidationException"
    extra = {**KEY, "x": s("1")}
    assert code_and_message(lambda: ddb.get_item(TableName="t", Key=extra)) == (
        "ValidationException",
        "The provided key element does not match the schema",
    )


def test_unknown_tables(aws: Aws) -> None:
    ddb = aws.dynamodb
    error = failure(lambda: ddb.get_item(TableName="nope", Key=KEY))
    assert error.response["Error"] == {
        "Code": "ResourceNotFoundException",
        "Message": "Requested resource not found",
    }
    assert isinstance(error, ddb.exceptions.ResourceNotFoundException)


def test_query_with_begins_with_is_ordered_by_sort_key(aws: Aws) -> None:
    ddb = aws.dynamodb
    create_pk_sk_table(ddb, "t")
    for pk, sk in [
        ("doc#1", "event#b"),
        ("doc#1", "event#é"),  # after "z": UTF-8 byte order
        ("doc#1", "event#10"),
        ("doc#1", "event#2"),
        ("doc#1", "event#z"),
        ("doc#1", "state"),
        ("doc#2", "event#a"),
    ]:
        ddb.put_item(TableName="t", Item={"pk": s(pk), "sk": s(sk)})
    query = {
        "TableName": "t",
        "KeyConditionExpression": "pk = :pk AND begins_with(sk, :event)",
        "ExpressionAttributeValues": {":pk": s("doc#1"), ":event": s("event#")},
    }
    result = clean(ddb.query(**query))
    assert [i["sk"]["S"] for i in result["Items"]] == [
        "event#10",
        "event#2",
        "event#b",
        "event#z",
        "event#é",
    ]
    assert (result["Count"], result["ScannedCount"]) == (5, 5)
    backwards = clean(ddb.query(**query, ScanIndexForward=False, Limit=2))
    assert [i["sk"]["S"] for i in backwards["Items"]] == ["event#é", "event#z"]
    assert backwards["LastEvaluatedKey"] == {"pk": s("doc#1"), "sk": s("event#z")}


def test_numeric_sort_keys_and_pages(aws: Aws) -> None:
    ddb = aws.dynamodb
    ddb.create_table(
        TableName="t",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "N"},
        ],
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
    )
    for sk in ["10", "9", "100", "-1", "2.5"]:
        ddb.put_item(TableName="t", Item={"pk": s("p"), "sk": n(sk)})
    query = {
        "TableName": "t",
        "KeyConditionExpression": "pk = :p AND sk BETWEEN :lo AND :hi",
        "ExpressionAttributeValues": {":p": s("p"), ":lo": n("-5"), ":hi": n("1000")},
    }
    items = clean(ddb.query(**query))["Items"]
    assert [i["sk"]["N"] for i in items] == ["-1", "2.5", "9", "10", "100"]
    pages = list(ddb.get_paginator("query").paginate(**query, PaginationConfig={"PageSize": 2}))
    assert [[i["sk"]["N"] for i in page["Items"]] for page in pages] == [
        ["-1", "2.5"],
        ["9", "10"],
        ["100"],
    ]


def test_gsi_query_skips_items_without_the_index_key(aws: Aws) -> None:
    ddb = aws.dynamodb
    create_ledger_table(ddb)
    rows = [
        ("doc#1", {"statusKey": s("HELD"), "updatedAt": s("2026-01-02")}),
        ("doc#2", {"statusKey": s("HELD"), "updatedAt": s("2026-01-01")}),
        ("doc#3", {"statusKey": s("HELD")}),  # no range key: not in the index
        ("doc#4", {"updatedAt": s("2026-01-03")}),  # no hash key: not in the index
        ("doc#5", {"statusKey": s("BOOKED"), "updatedAt": s("2026-01-04")}),
    ]
    for pk, extra in rows:
        ddb.put_item(TableName="ledger", Item={"pk": s(pk), "sk": s("state"), **extra})
    query = {
        "TableName": "ledger",
        "IndexName": "ByStatus",
        "KeyConditionExpression": "statusKey = :s",
        "ExpressionAttributeValues": {":s": s("HELD")},
    }
    result = clean(ddb.query(**query))
    assert [i["pk"]["S"] for i in result["Items"]] == ["doc#2", "doc#1"]
    assert code_and_message(lambda: ddb.query(**query, ConsistentRead=True)) == (
        "ValidationException",
        "Consistent reads are not supported on global secondary indexes",
    )
    # Moving an item out of the index (REMOVE its index key) takes it out of the query.
    ddb.update_item(
        TableName="ledger",
        Key={"pk": s("doc#1"), "sk": s("state")},
        UpdateExpression="REMOVE statusKey",
    )
    assert [i["pk"]["S"] for i in clean(ddb.query(**query))["Items"]] == ["doc#2"]


def test_a_count_query_returns_counts_and_no_items(aws: Aws) -> None:
    ddb = aws.dynamodb
    create_ledger_table(ddb)
    for i in range(5):
        item = {"statusKey": s("HELD"), "updatedAt": s(f"2026-01-0{i + 1}"), "n": n(str(i))}
        ddb.put_item(TableName="ledger", Item={"pk": s(f"doc#{i}"), "sk": s("state"), **item})
    ddb.put_item(
        TableName="ledger",
        Item={"pk": s("doc#9"), "sk": s("state"), "statusKey": s("BOOKED"), "updatedAt": s("x")},
    )
    query: dict[str, Any] = {
        "TableName": "ledger",
        "IndexName": "ByStatus",
        "KeyConditionExpression": "statusKey = :s",
        "ExpressionAttributeValues": {":s": s("HELD")},
        "Select": "COUNT",
    }
    assert clean(ddb.query(**query)) == {"Count": 5, "ScannedCount": 5}
    first = clean(ddb.query(**query, Limit=3))
    assert (first["Count"], "Items" in first) == (3, False)
    assert first["LastEvaluatedKey"] == {
        "pk": s("doc#2"),
        "sk": s("state"),
        "statusKey": s("HELD"),
        "updatedAt": s("2026-01-03"),
    }
    rest = clean(ddb.query(**query, Limit=3, ExclusiveStartKey=first["LastEvaluatedKey"]))
    assert (rest["Count"], "Items" in rest, "LastEvaluatedKey" in rest) == (2, False, False)
    filtered = {
        **query,
        "FilterExpression": "n > :two",
        "ExpressionAttributeValues": {":s": s("HELD"), ":two": n("2")},
    }
    assert clean(ddb.query(**filtered)) == {"Count": 2, "ScannedCount": 5}


def test_condition_grid_agrees() -> None:
    """Differential: many conditions over several item shapes, on both backends at once."""
    shapes: list[dict[str, Any]] = [
        {},
        {"num": n("5")},
        {"num": n("-2.5"), "txt": s("abc")},
        {"txt": s("b"), "tags": {"SS": ["x", "y"]}},
        {"num": n("100"), "txt": s("a"), "flag": {"BOOL": True}, "l": {"L": [s("x")]}},
    ]
    conditions = [
        "num < :five",
        "num <= :five",
        "num > :five",
        "num >= :five",
        "num = :five",
        "num <> :five",
        "txt < :b",
        "txt >= :b",
        "txt <> :b",
        "num BETWEEN :minus AND :five",
        "begins_with(txt, :a)",
        "contains(tags, :x)",
        "contains(txt, :b)",
        "attribute_exists(num) AND NOT attribute_exists(txt)",
        "attribute_not_exists(num) OR txt = :b",
        "num IN (:five, :hundred) OR flag = :yes",
        # moto raises a ValueError for size() of a missing attribute (AWS: false): guarded.
        "attribute_exists(txt) AND size(txt) > :one",
        "attribute_exists(l) AND size(l) = :one",
        "NOT (num > :five OR txt = :a) AND attribute_exists(pk)",
    ]
    values = {
        ":five": n("5"),
        ":minus": n("-3"),
        ":hundred": n("100"),
        ":b": s("b"),
        ":a": s("a"),
        ":x": s("x"),
        ":yes": {"BOOL": True},
        ":one": n("1"),
    }

    def outcomes(ddb: Any) -> list[str]:
        create_pk_sk_table(ddb, "t")
        results: list[str] = []
        for i, shape in enumerate(shapes):
            key = {"pk": s(f"p{i}"), "sk": s("x")}
            ddb.put_item(TableName="t", Item={**key, **shape})
            for condition in conditions:
                used = {k: v for k, v in values.items() if k in condition}
                try:
                    ddb.update_item(
                        TableName="t",
                        Key=key,
                        UpdateExpression="SET probe = :one",
                        ConditionExpression=condition,
                        ExpressionAttributeValues={**used, ":one": n("1")},
                    )
                    ddb.update_item(TableName="t", Key=key, UpdateExpression="REMOVE probe")
                    results.append("holds")
                except ClientError as exc:
                    results.append(exc.response["Error"]["Code"])
        return results

    with mock_aws():
        expected = outcomes(boto3.client("dynamodb", region_name=REGION))
    assert outcomes(InMemoryDynamoDB()) == expected
    assert set(expected) == {"holds", "ConditionalCheckFailedException"}


# --- DynamoDB: the project's own code ------------------------------------------------------------


def test_the_ledger_behaves_the_same(aws: Aws) -> None:
    ledger = Ledger(aws.dynamodb, create_ledger_table(aws.dynamodb))
    claim = ledger.states.claim_for_queue
    seen = [
        claim(1, "m1", now=NOW, ttl_seconds=3600),
        claim(1, "m1", now=NOW + 60, ttl_seconds=3600),  # waiting in the queue
        claim(1, "m1", now=NOW + 3601, ttl_seconds=3600),  # the claim expired
    ]
    ledger.states.record(1, Status.HELD, "held", modified_at="m1", reasons=["amounts_mismatch: x"])
    seen += [
        claim(1, "m1", now=NOW + 7200, ttl_seconds=3600),  # held, unchanged
        claim(1, "m2", now=NOW + 7200, ttl_seconds=3600),  # held, changed in Lucca
    ]
    ledger.states.release_claim(1)
    assert ledger.states.state(1) is None
    ledger.states.extend_claim(2, until=NOW + 5000)
    seen.append(claim(2, "m1", now=NOW + 120, ttl_seconds=60))
    ledger.states.record(3, Status.BOOKED, "booked", modified_at="m1")
    ledger.states.release_claim(3)  # moved on: left alone
    seen.append(claim(3, "m9", now=NOW + 10**6, ttl_seconds=3600))
    ledger.states.record(4, Status.PLANNED, "dry_run", modified_at="m1")
    seen += [
        claim(4, "m1", now=NOW, ttl_seconds=60, dry_run=True),
        claim(4, "m2", now=NOW, ttl_seconds=60, dry_run=True),
    ]
    ledger.states.record(
        5, Status.UPDATED, "updated", detail={"diff": [{"field": "a", "after": "x"}]}
    )
    ledger.states.record(5, Status.BOOKED, "booked", detail={"requestIds": ["r1"]})
    ledger.states.record(6, Status.HELD, "held", reasons=["ocr_not_finished: Pending"])
    # A claim that succeeds says what it replaced too (ReturnValues=ALL_OLD): None only for a
    # document the ledger never saw, which the reconciliation looks at.
    assert [(r.claimed, r.previous) for r in seen] == [
        (True, None),
        (False, Status.QUEUED),
        (True, Status.QUEUED),
        (False, Status.HELD),
        (True, Status.HELD),
        (False, Status.QUEUED),
        (False, Status.BOOKED),
        (False, Status.PLANNED),
        (True, Status.PLANNED),
    ]
    assert [r.new for r in seen] == [True, *[False] * 8]
    assert [(e.kind, e.detail) for e in ledger.queries.history(5)] == [
        ("updated", {"status": "UPDATED", "reasons": [], "diff": [{"field": "a", "after": "x"}]}),
        ("booked", {"status": "BOOKED", "reasons": [], "requestIds": ["r1"]}),
    ]
    held = ledger.queries.in_status(Status.HELD)
    assert [(d.document_id, d.reasons) for d in held] == [(6, ("ocr_not_finished: Pending",))]
    # Document 2 was queued by extend_claim, which sets no updatedAt: not in the index.
    assert [d.document_id for d in ledger.queries.in_status(Status.QUEUED)] == [4]
    state = ledger.states.state(2)
    assert state is not None
    assert (state.status, state.queued_until) == (Status.QUEUED, NOW + 5000)
    assert ledger.numbers.claim_number("purchase:9", "F-1", 10) is None
    assert ledger.numbers.claim_number("purchase:9", "F-1", 10) is None  # the same document
    assert ledger.numbers.claim_number("purchase:9", "F-1", 11) == 10
    assert ledger.numbers.find_duplicate("purchase:9", "F-1", 11) == 10
    assert ledger.numbers.find_duplicate("purchase:9", "F-1", 10) is None
    ledger.numbers.release_number("purchase:9", "F-1", 11)  # not the holder: nothing happens
    assert ledger.numbers.find_duplicate("purchase:9", "F-1", 11) == 10
    ledger.numbers.release_number("purchase:9", "F-1", 10)
    assert ledger.numbers.claim_number("purchase:9", "F-1", 11) is None


def test_the_ledger_lease_and_count_behave_the_same(aws: Aws) -> None:
    clock = FakeClock()
    ledger = Ledger(aws.dynamodb, create_ledger_table(aws.dynamodb), clock=clock)
    results = [ledger.leases.acquire_lease("poller", "a", NOW + 300)]
    results.append(ledger.leases.acquire_lease("poller", "b", NOW + 600))  # held by a
    results.append(ledger.leases.acquire_lease("poller", "a", NOW + 400))  # a again: extended
    clock.now = NOW + 401
    results.append(ledger.leases.acquire_lease("poller", "b", NOW + 700))  # a's lapsed
    ledger.leases.release_lease("poller", "a")  # no longer a's: left alone
    results.append(ledger.leases.acquire_lease("poller", "c", NOW + 800))
    ledger.leases.release_lease("poller", "b")
    results.append(ledger.leases.acquire_lease("poller", "c", NOW + 800))
    assert [(r.acquired, r.holder, r.until) for r in results] == [
        (True, None, None),
        (False, "a", NOW + 300),
        (True, None, None),
        (True, None, None),
        (False, "b", NOW + 700),
        (True, None, None),
    ]
    for document_id in range(1, 4):
        ledger.states.record(document_id, Status.HELD, "held", reasons=["x"])
    ledger.states.record(4, Status.BOOKED, "booked")
    assert [ledger.queries.count_in_status(status) for status in Status] == [
        len(ledger.queries.in_status(status)) for status in Status
    ]
    assert ledger.queries.count_in_status(Status.HELD) == 3


def test_the_budget_slot_store_behaves_the_same(aws: Aws) -> None:
    store = DynamoSlotStore(aws.dynamodb, create_pk_sk_table(aws.dynamodb, "budget"))
    other = DynamoSlotStore(aws.dynamodb, "budget")  # a second Lambda instance
    slots = [s.reserve(1000.0, 1.2) for _ in range(3) for s in (store, other)]
    assert slots == pytest.approx([1000.0 + 1.2 * i for i in range(6)])
    store.push_back(2000.0, 1.5)
    store.push_back(1500.0, 1.5)  # never moves back
    store.relax(1.2)
    other.relax(1.4)  # never widens
    # Compared through read(): the raw item's numbers differ in form (moto keeps "2000.0" as
    # sent, DynamoDB and the model normalise it to "2000").
    assert store.read() == BudgetState(tat=2000.0, blocked_until=2000.0, slowdown=1.2)
    assert store.reserve(1990.0, 1.0) == 2000.0
    assert other.reserve(5000.0, 1.0) == 5000.0  # idle: starts fresh


# No Lambda context in a test: Powertools warns it cannot set an in-progress expiry.
@pytest.mark.filterwarnings("ignore:Couldn't determine the remaining time left")
def test_powertools_idempotency_behaves_the_same(aws: Aws) -> None:
    persistence = DynamoDBPersistenceLayer(
        table_name=create_idempotency_table(aws.dynamodb), boto3_client=aws.dynamodb
    )
    calls: list[int] = []

    @idempotent_function(
        data_keyword_argument="order", persistence_store=persistence, config=IdempotencyConfig()
    )
    def handle(order: dict[str, Any]) -> dict[str, Any]:
        calls.append(order["id"])
        if order.get("nested"):
            try:
                handle(order=order)  # the same payload while the first call runs
            except IdempotencyAlreadyInProgressError:
                return {"inner": "in progress"}
        return {"handled": order["id"]}

    assert handle(order={"id": 1}) == {"handled": 1}
    assert handle(order={"id": 1}) == {"handled": 1}  # the saved result
    assert handle(order={"id": 2, "nested": True}) == {"inner": "in progress"}
    assert calls == [1, 2]
    records = aws.dynamodb.scan(TableName="idempotency")["Items"]
    assert sorted((r["status"]["S"], r["data"]["S"]) for r in records) == [
        ("COMPLETED", '{"handled": 1}'),
        ("COMPLETED", '{"inner": "in progress"}'),
    ]


# --- SQS -----------------------------------------------------------------------------------------


def test_send_receive_delete(aws: Aws) -> None:
    sqs = aws.sqs
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    assert url == URL + "q"
    assert sqs.get_queue_url(QueueName="q")["QueueUrl"] == url
    sent = clean(sqs.send_message(QueueUrl=url, MessageBody="hello"))
    assert sorted(sent) == ["MD5OfMessageBody", "MessageId"]
    digest = hashlib.md5(b"hello", usedforsecurity=False).hexdigest()  # a checksum
    assert sent["MD5OfMessageBody"] == digest
    [message] = sqs.receive_message(QueueUrl=url, MessageSystemAttributeNames=["All"])["Messages"]
    assert message["MessageId"] == sent["MessageId"]
    assert (message["Body"], message["MD5OfBody"]) == ("hello", sent["MD5OfMessageBody"])
    assert sorted(message["Attributes"]) == [
        "ApproximateFirstReceiveTimestamp",
        "ApproximateReceiveCount",
        "SenderId",
        "SentTimestamp",
    ]
    assert message["Attributes"]["ApproximateReceiveCount"] == "1"
    assert "MessageAttributes" not in message
    assert clean(sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])) == {}
    assert clean(sqs.receive_message(QueueUrl=url)) == {}
    # Deleting again is accepted, as SQS accepts it.
    assert clean(sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])) == {}


def test_visibility_timeout_and_receive_count(aws: Aws) -> None:
    sqs = aws.sqs
    url = sqs.create_queue(QueueName="q", Attributes={"VisibilityTimeout": "30"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="x")
    [first] = sqs.receive_message(QueueUrl=url, AttributeNames=["ApproximateReceiveCount"])[
        "Messages"
    ]
    assert clean(sqs.receive_message(QueueUrl=url)) == {}  # hidden while in flight
    sqs.change_message_visibility(
        QueueUrl=url, ReceiptHandle=first["ReceiptHandle"], VisibilityTimeout=0
    )
    [second] = sqs.receive_message(QueueUrl=url, AttributeNames=["ApproximateReceiveCount"])[
        "Messages"
    ]
    assert second["MessageId"] == first["MessageId"]
    assert second["ReceiptHandle"] != first["ReceiptHandle"]
    assert [first["Attributes"], second["Attributes"]] == [
        {"ApproximateReceiveCount": "1"},
        {"ApproximateReceiveCount": "2"},
    ]
    assert code(
        lambda: sqs.change_message_visibility(
            QueueUrl=url, ReceiptHandle=second["ReceiptHandle"], VisibilityTimeout=43201
        )
    ) == ("InvalidParameterValue")


def test_redrive_to_the_dead_letter_queue(aws: Aws) -> None:
    sqs = aws.sqs
    dlq = sqs.create_queue(QueueName="dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]
    assert dlq_arn == {"QueueArn": ARN + "dlq"}
    policy = json.dumps({"deadLetterTargetArn": ARN + "dlq", "maxReceiveCount": "2"})
    url = sqs.create_queue(QueueName="q", Attributes={"RedrivePolicy": policy})["QueueUrl"]
    attributes = {"reason": {"DataType": "String", "StringValue": "why"}}
    sent = sqs.send_message(QueueUrl=url, MessageBody="poison", MessageAttributes=attributes)
    for count in ("1", "2"):
        [message] = sqs.receive_message(QueueUrl=url, AttributeNames=["All"])["Messages"]
        assert message["Attributes"]["ApproximateReceiveCount"] == count
        sqs.change_message_visibility(
            QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )
    # Received maxReceiveCount times: the next receive moves it instead of delivering it.
    assert clean(sqs.receive_message(QueueUrl=url)) == {}
    [dead] = sqs.receive_message(
        QueueUrl=dlq, AttributeNames=["All"], MessageAttributeNames=["All"]
    )["Messages"]
    assert dead["MessageId"] == sent["MessageId"]
    assert (dead["Body"], dead["MessageAttributes"]) == ("poison", attributes)
    assert dead["Attributes"]["ApproximateReceiveCount"] == "3"  # carried over, plus this one
    assert dead["Attributes"]["SentTimestamp"] == message["Attributes"]["SentTimestamp"]
    stored = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"])
    assert json.loads(stored["Attributes"]["RedrivePolicy"]) == {
        "deadLetterTargetArn": ARN + "dlq",
        "maxReceiveCount": 2,
    }


def test_message_attributes_round_trip(aws: Aws) -> None:
    sqs = aws.sqs
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    attributes = {
        "a": {"DataType": "String", "StringValue": "x"},
        "n": {"DataType": "Number", "StringValue": "5"},
        "b": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
    }
    sent = sqs.send_message(QueueUrl=url, MessageBody="hello", MessageAttributes=attributes)
    assert sent["MD5OfMessageAttributes"] == "82e2422a0b56a9c46f069178219ff0bd"
    [whole] = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"], VisibilityTimeout=0)[
        "Messages"
    ]
    assert whole["MessageAttributes"] == attributes
    assert whole["MD5OfMessageAttributes"] == sent["MD5OfMessageAttributes"]
    [part] = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["a", "n"])["Messages"]
    assert part["MessageAttributes"] == {"a": attributes["a"], "n": attributes["n"]}
    assert part["MD5OfMessageAttributes"] == "0bb1e79c13d87bfc20b40a8abe225158"


def test_delays(aws: Aws) -> None:
    sqs = aws.sqs
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    assert code_and_message(
        lambda: sqs.send_message(QueueUrl=url, MessageBody="x", DelaySeconds=901)
    ) == (
        "InvalidParameterValue",
        "Value 901 for parameter DelaySeconds is invalid. Reason: DelaySeconds must be >= 0 "
        "and <= 900.",
    )
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=60)
    assert clean(sqs.receive_message(QueueUrl=url)) == {}
    counts = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
    assert counts == {
        "ApproximateNumberOfMessages": "0",
        "ApproximateNumberOfMessagesNotVisible": "0",
        "ApproximateNumberOfMessagesDelayed": "1",
    }


def test_batch_limits(aws: Aws) -> None:
    sqs = aws.sqs
    url = sqs.create_queue(QueueName="q")["QueueUrl"]

    def batch(entries: list[dict[str, Any]]) -> Callable[[], Any]:
        return lambda: sqs.send_message_batch(QueueUrl=url, Entries=entries)

    eleven = [{"Id": str(i), "MessageBody": "x"} for i in range(11)]
    too_many = failure(batch(eleven))
    assert (too_many.response["Error"]["Code"], too_many.response["Error"]["Message"]) == (
        "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
        "Maximum number of entries per request are 10. You have sent 11.",
    )
    assert too_many.response["Error"]["QueryErrorCode"] == "TooManyEntriesInBatchRequest"
    assert isinstance(too_many, sqs.exceptions.TooManyEntriesInBatchRequest)
    assert code_and_message(batch([])) == (
        "AWS.SimpleQueueService.EmptyBatchRequest",
        "There should be at least one SendMessageBatchRequestEntry in the request.",
    )
    twice = [{"Id": "a", "MessageBody": "x"}, {"Id": "a", "MessageBody": "y"}]
    assert code_and_message(batch(twice)) == (
        "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
        "Id a repeated.",
    )
    # The batch limit is 1 MiB since SQS raised it from 256 KiB (August 2025; moto agrees).
    long = [{"Id": "a", "MessageBody": "x" * 600_000}, {"Id": "b", "MessageBody": "y" * 600_000}]
    assert code_and_message(batch(long)) == (
        "AWS.SimpleQueueService.BatchRequestTooLong",
        "Batch requests cannot be longer than 1048576 bytes. You have sent 1200000 bytes.",
    )
    assert clean(sqs.receive_message(QueueUrl=url)) == {}
    mixed = [
        {"Id": "ok", "MessageBody": "x"},
        {"Id": "late", "MessageBody": "y", "DelaySeconds": 901},
    ]
    result = clean(sqs.send_message_batch(QueueUrl=url, Entries=mixed))
    assert [e["Id"] for e in result["Successful"]] == ["ok"]
    assert result["Failed"] == [
        {
            "Id": "late",
            "SenderFault": True,
            "Code": "InvalidParameterValue",
            "Message": "Value 901 for parameter DelaySeconds is invalid. Reason: DelaySeconds "
            "must be >= 0 and <= 900.",
        }
    ]


def test_message_size_limit(aws: Aws) -> None:
    sqs = aws.sqs
    url = sqs.create_queue(QueueName="q", Attributes={"MaximumMessageSize": "262144"})["QueueUrl"]
    assert clean(sqs.send_message(QueueUrl=url, MessageBody="x" * 262_144))["MessageId"]
    too_long = (
        "InvalidParameterValue",
        "One or more parameters are invalid. Reason: Message must be shorter than 262144 bytes.",
    )
    assert code_and_message(lambda: sqs.send_message(QueueUrl=url, MessageBody="x" * 262_145)) == (
        too_long
    )
    entries = [{"Id": "a", "MessageBody": "x" * 262_145}, {"Id": "b", "MessageBody": "y"}]
    assert code_and_message(lambda: sqs.send_message_batch(QueueUrl=url, Entries=entries)) == (
        too_long
    )


def test_queue_attributes_and_counts(aws: Aws) -> None:
    sqs = aws.sqs
    url = sqs.create_queue(QueueName="q", Attributes={"VisibilityTimeout": "60"})["QueueUrl"]
    for body in ("a", "b", "c"):
        sqs.send_message(QueueUrl=url, MessageBody=body)
    sqs.receive_message(QueueUrl=url)
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    timestamps = {"CreatedTimestamp", "LastModifiedTimestamp"}  # moto: float seconds, AWS: int
    assert {k: v for k, v in attributes.items() if k not in timestamps} == {
        "ApproximateNumberOfMessages": "2",
        "ApproximateNumberOfMessagesDelayed": "0",
        "ApproximateNumberOfMessagesNotVisible": "1",
        "DelaySeconds": "0",
        "MaximumMessageSize": "1048576",
        "MessageRetentionPeriod": "345600",
        "QueueArn": ARN + "q",
        "ReceiveMessageWaitTimeSeconds": "0",
        "VisibilityTimeout": "60",
        "SqsManagedSseEnabled": "true",
    }
    assert timestamps <= set(attributes)
    assert clean(sqs.get_queue_attributes(QueueUrl=url)) == {}
    assert code(lambda: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Foo"])) == (
        "InvalidAttributeName"
    )


def test_sqs_errors(aws: Aws) -> None:
    sqs = aws.sqs
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    missing = failure(lambda: sqs.send_message(QueueUrl=URL + "nope", MessageBody="x"))
    assert missing.response["Error"]["Code"] == "AWS.SimpleQueueService.NonExistentQueue"
    assert missing.response["Error"]["QueryErrorCode"] == "QueueDoesNotExist"
    assert isinstance(missing, sqs.exceptions.QueueDoesNotExist)
    assert code(lambda: sqs.get_queue_url(QueueName="nope")) == (
        "AWS.SimpleQueueService.NonExistentQueue"
    )
    assert code(lambda: sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=11)) == (
        "InvalidParameterValue"
    )
    assert code(lambda: sqs.receive_message(QueueUrl=url, WaitTimeSeconds=21)) == (
        "InvalidParameterValue"
    )
    assert code(lambda: sqs.delete_message(QueueUrl=url, ReceiptHandle="garbage")) == (
        "ReceiptHandleIsInvalid"
    )
    assert clean(
        sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": "x", "ReceiptHandle": "garbage"}])
    ) == {
        "Successful": [],
        "Failed": [
            {
                "Id": "x",
                "SenderFault": True,
                "Code": "ReceiptHandleIsInvalid",
                "Message": 'The input receipt handle "garbage" is not a valid receipt handle.',
            }
        ],
    }
    assert code(lambda: sqs.create_queue(QueueName="q", Attributes={"DelaySeconds": "5"})) == (
        "QueueAlreadyExists"
    )
    assert sqs.create_queue(QueueName="q")["QueueUrl"] == url  # the same attributes: fine
    assert clean(sqs.purge_queue(QueueUrl=url)) == {}
    assert code_and_message(lambda: sqs.purge_queue(QueueUrl=url)) == (
        "AWS.SimpleQueueService.PurgeQueueInProgress",
        "Only one PurgeQueue operation on q is allowed every 60 seconds.",
    )


# --- the model alone: where moto differs from AWS -------------------------------------------------


def test_unused_and_undefined_placeholders_are_refused() -> None:
    # AWS refuses unused ExpressionAttributeValues; moto only checks unused names. An undefined
    # placeholder is a ValidationException in AWS; moto raises a KeyError from its parser.
    ddb = InMemoryDynamoDB()
    create_pk_sk_table(ddb, "t")
    update = {"TableName": "t", "Key": KEY, "UpdateExpression": "SET a = :v"}
    assert code_and_message(
        lambda: ddb.update_item(**update, ExpressionAttributeValues={":v": s("x"), ":w": s("y")})
    ) == (
        "ValidationException",
        "Value provided in ExpressionAttributeValues unused in expressions: keys: {:w}",
    )
    assert code_and_message(lambda: ddb.update_item(**update)) == (
        "ValidationException",
        "An expression attribute value used in expression is not defined; attribute value: :v",
    )
    assert code_and_message(
        lambda: ddb.update_item(
            TableName="t",
            Key=KEY,
            UpdateExpression="SET #a = :v",
            ExpressionAttributeValues={":v": s("x")},
        )
    ) == (
        "ValidationException",
        "An expression attribute name used in the document path is not defined; attribute name: #a",
    )


def test_numbers_are_normalised() -> None:
    # DynamoDB returns numbers in canonical form; moto returns them as sent ("1.50", "1E2").
    ddb = InMemoryDynamoDB()
    create_pk_sk_table(ddb, "t")
    ddb.put_item(
        TableName="t",
        Item={**KEY, "a": n("1.50"), "b": n("1E2"), "c": n("-0"), "d": n("0100"), "e": n(".5")},
    )
    item = ddb.get_item(TableName="t", Key=KEY)["Item"]
    assert [item[k]["N"] for k in "abcde"] == ["1.5", "100", "0", "100", "0.5"]
    result = ddb.update_item(
        TableName="t",
        Key=KEY,
        UpdateExpression="SET f = :x - :y",
        ExpressionAttributeValues={":x": n("1000.0"), ":y": n("0.50")},
        ReturnValues="UPDATED_NEW",
    )
    assert result == {"Attributes": {"f": n("999.5")}}  # moto: "999.50"
    for bad in ("abc", "1" * 39, "NaN", "1e126"):
        assert code(lambda bad=bad: ddb.put_item(TableName="t", Item={**KEY, "x": n(bad)})) == (
            "ValidationException"
        )


def test_updated_values_include_unchanged_and_nested_fragments() -> None:
    # AWS's UPDATED_NEW/OLD list every attribute the update names, changed or not; moto leaves
    # out unchanged ones. For a nested path AWS returns the fragment, moto the whole attribute.
    ddb = InMemoryDynamoDB()
    create_pk_sk_table(ddb, "t")
    ddb.put_item(
        TableName="t", Item={**KEY, "x": n("5"), "m": {"M": {"a": {"L": [n("1"), n("2")]}}}}
    )
    same = ddb.update_item(
        TableName="t",
        Key=KEY,
        UpdateExpression="SET x = if_not_exists(x, :v), y = :v",
        ExpressionAttributeValues={":v": n("7")},
        ReturnValues="UPDATED_NEW",
    )
    assert same == {"Attributes": {"x": n("5"), "y": n("7")}}
    nested = ddb.update_item(
        TableName="t",
        Key=KEY,
        UpdateExpression="SET m.a[1] = :v",
        ExpressionAttributeValues={":v": n("9")},
        ReturnValues="UPDATED_NEW",
    )
    assert nested == {"Attributes": {"m": {"M": {"a": {"L": [n("9")]}}}}}
    removed = ddb.update_item(
        TableName="t", Key=KEY, UpdateExpression="REMOVE y", ReturnValues="UPDATED_NEW"
    )
    assert removed == {}  # nothing set: no Attributes at all


def test_aws_validations_moto_skips() -> None:
    ddb = InMemoryDynamoDB()
    create_ledger_table(ddb)
    key = {"pk": s("doc#1"), "sk": s("state")}
    # moto treats a reversed BETWEEN as false and begins_with on a number as false; AWS refuses
    # both. moto raises a TypeError comparing a number with a string; AWS says false.
    ddb.put_item(TableName="ledger", Item={**key, "n": n("5")})

    def condition(expression: str, values: dict[str, Any]) -> Callable[[], Any]:
        return lambda: ddb.put_item(
            TableName="ledger",
            Item=key,
            ConditionExpression=expression,
            ExpressionAttributeValues=values,
        )

    assert code(condition("n BETWEEN :a AND :b", {":a": n("9"), ":b": n("1")})) == (
        "ValidationException"
    )
    assert code(condition("begins_with(pk, :p)", {":p": n("1")})) == "ValidationException"
    assert code(condition("n < :t", {":t": s("9")})) == "ConditionalCheckFailedException"
    # moto answers {} for a key of the wrong type; AWS refuses it.
    assert code(lambda: ddb.get_item(TableName="ledger", Key={**key, "sk": n("1")})) == (
        "ValidationException"
    )
    # moto stores a GSI key of the wrong type, or an empty set; AWS refuses both.
    assert code(lambda: ddb.put_item(TableName="ledger", Item={**key, "statusKey": n("1")})) == (
        "ValidationException"
    )
    assert code(lambda: ddb.put_item(TableName="ledger", Item={**key, "tags": {"SS": []}})) == (
        "ValidationException"
    )
    # moto answers an empty result for a key value of the wrong type; AWS refuses it.
    assert code(
        lambda: ddb.query(
            TableName="ledger",
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": n("1")},
        )
    ) == ("ValidationException")


def test_a_page_that_reaches_the_limit_has_a_last_evaluated_key() -> None:
    # DynamoDB stops at Limit and returns LastEvaluatedKey even if nothing is left (the next
    # page is then empty); moto leaves the key out when the last item was exactly the limit.
    ddb = InMemoryDynamoDB()
    create_pk_sk_table(ddb, "t")
    for sk in ("a", "b"):
        ddb.put_item(TableName="t", Item={"pk": s("p"), "sk": s(sk)})
    query = {
        "TableName": "t",
        "KeyConditionExpression": "pk = :p",
        "ExpressionAttributeValues": {":p": s("p")},
    }
    first = ddb.query(**query, Limit=2)
    assert first["LastEvaluatedKey"] == {"pk": s("p"), "sk": s("b")}
    rest = ddb.query(**query, Limit=2, ExclusiveStartKey=first["LastEvaluatedKey"])
    assert rest == {"Items": [], "Count": 0, "ScannedCount": 0}
    pages = list(ddb.get_paginator("query").paginate(**query, PaginationConfig={"PageSize": 2}))
    assert [p["Count"] for p in pages] == [2, 0]


def test_ttl_on_a_fake_clock() -> None:
    # moto never expires items. DynamoDB deletes them "typically within a few days" and serves
    # them until then: ttl_lag_seconds models that delay.
    clock = FakeClock()
    ddb = InMemoryDynamoDB(clock=clock, ttl_lag_seconds=3600)
    create_pk_sk_table(ddb, "t")
    ddb.update_time_to_live(
        TableName="t", TimeToLiveSpecification={"AttributeName": "expiresAt", "Enabled": True}
    )
    assert ddb.describe_time_to_live(TableName="t")["TimeToLiveDescription"] == {
        "TimeToLiveStatus": "ENABLED",
        "AttributeName": "expiresAt",
    }
    for sk, expires in (("soon", n(str(int(NOW + 60)))), ("later", n(str(int(NOW + 7200))))):
        ddb.put_item(TableName="t", Item={"pk": s("p"), "sk": s(sk), "expiresAt": expires})
    ddb.put_item(TableName="t", Item={"pk": s("p"), "sk": s("text"), "expiresAt": s("1")})
    clock.now = NOW + 60 + 3600  # not yet past expiry + lag
    assert len(ddb.items("t")) == 3
    clock.now += 1
    soon = {"pk": s("p"), "sk": s("soon")}
    assert ddb.get_item(TableName="t", Key=soon) == {}
    put = ddb.put_item(TableName="t", Item=soon, ConditionExpression="attribute_not_exists(pk)")
    assert put == {}  # the expired item counts as gone
    clock.now = NOW + 7200 + 3601
    assert ddb.sweep() == 1  # "later"; the new "soon" has no TTL attribute
    # A TTL attribute that is not a number never expires.
    assert [i["sk"]["S"] for i in ddb.items("t")] == ["soon", "text"]


def test_capacity_units() -> None:
    ddb = InMemoryDynamoDB()
    create_pk_sk_table(ddb, "t")
    big = {**KEY, "body": s("x" * 5000)}  # 5000 + 4 + 4 bytes
    ddb.put_item(TableName="t", Item=big)
    assert ddb.usage.write_units["t"] == 5  # ceil(5008 / 1024)
    ddb.get_item(TableName="t", Key=KEY, ConsistentRead=True)
    ddb.get_item(TableName="t", Key=KEY)
    assert ddb.usage.read_units["t"] == 2 + 1  # ceil(5008 / 4096) = 2, halved when eventual
    failed = failure(
        lambda: ddb.update_item(
            TableName="t",
            Key=KEY,
            UpdateExpression="SET a = :v",
            ConditionExpression="attribute_not_exists(pk)",
            ExpressionAttributeValues={":v": s("v")},
            ReturnConsumedCapacity="TOTAL",
        )
    )
    assert failed.response["Error"]["Code"] == "ConditionalCheckFailedException"
    assert ddb.usage.write_units["t"] == 10  # a failed condition still costs the item's units
    small = ddb.update_item(
        TableName="t",
        Key={"pk": s("p"), "sk": s("q")},
        UpdateExpression="SET a = :v",
        ExpressionAttributeValues={":v": s("v")},
        ReturnConsumedCapacity="TOTAL",
    )
    assert small["ConsumedCapacity"] == {"TableName": "t", "CapacityUnits": 1.0}
    ddb.query(
        TableName="t",
        KeyConditionExpression="pk = :p",
        ExpressionAttributeValues={":p": s("nobody")},
    )
    assert ddb.usage.read_units["t"] == 3.5  # an empty query still costs 0.5
    assert ddb.usage.calls == {
        "CreateTable": 1,
        "UpdateTimeToLive": 1,  # the template gives the table an expiry
        "PutItem": 1,
        "GetItem": 2,
        "UpdateItem": 2,
        "Query": 1,
    }


def test_concurrent_budget_reservations_never_share_a_slot() -> None:
    # moto does not make concurrent conditional writes atomic; DynamoDB (and the model) do.
    ddb = InMemoryDynamoDB()
    create_pk_sk_table(ddb, "budget")
    slots: list[float] = []
    lock = threading.Lock()

    def worker() -> None:
        store = DynamoSlotStore(ddb, "budget")
        for _ in range(50):
            slot = store.reserve(1000.0, 1.0)
            with lock:
                slots.append(slot)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(slots) == [1000.0 + i for i in range(200)]


def test_visibility_delay_and_retention_on_a_fake_clock() -> None:
    # moto runs these on the wall clock; the model reads only the clock it is given.
    clock = FakeClock()
    sqs = InMemorySqs(clock=clock)
    url = sqs.create_queue(
        QueueName="q", Attributes={"VisibilityTimeout": "30", "MessageRetentionPeriod": "600"}
    )["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="now")
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=10)
    assert sqs.counts(url) == (1, 0, 1)
    assert sqs.next_visible_at(url) == NOW
    [first] = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    assert first["Body"] == "now"
    assert sqs.counts(url) == (0, 1, 1)
    assert sqs.next_visible_at(url) == NOW + 10
    clock.now += 10
    [later] = sqs.receive_message(QueueUrl=url)["Messages"]
    assert later["Body"] == "later"
    clock.now += 20  # "now" visible again after its 30 s
    [again] = sqs.receive_message(QueueUrl=url, AttributeNames=["All"])["Messages"]
    assert (again["Body"], again["Attributes"]["ApproximateReceiveCount"]) == ("now", "2")
    assert again["Attributes"]["ApproximateFirstReceiveTimestamp"] == str(int(NOW * 1000))
    assert sqs.oldest_age(url) == 30
    assert [(m["Body"], m["State"], m["ReceiveCount"]) for m in sqs.messages(url)] == [
        ("now", "in_flight", 2),
        ("later", "in_flight", 1),
    ]
    clock.now = NOW + 600  # retention: both gone
    assert sqs.counts(url) == (0, 0, 0)
    assert sqs.messages(url) == []
    assert sqs.next_visible_at(url) is None
    assert sqs.oldest_age(url) == 0.0


def test_receipt_handles_follow_aws() -> None:
    # A stale handle (received again since): AWS accepts the delete but "might not" delete the
    # message; the model never does (moto deletes it). Changing the visibility of a message that
    # is gone or no longer in flight is refused as AWS documents (moto: ReceiptHandleIsInvalid,
    # or accepted).
    clock = FakeClock()
    sqs = InMemorySqs(clock=clock)
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="x")
    old = sqs.receive_message(QueueUrl=url)["Messages"][0]["ReceiptHandle"]
    clock.now += 30
    new = sqs.receive_message(QueueUrl=url)["Messages"][0]["ReceiptHandle"]
    assert sqs.delete_message(QueueUrl=url, ReceiptHandle=old) == {}
    assert sqs.counts(url) == (0, 1, 0)
    stale = code(
        lambda: sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=old, VisibilityTimeout=0)
    )
    assert stale == "InvalidParameterValue"
    clock.now += 30
    assert code(
        lambda: sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=new, VisibilityTimeout=5)
    ) == ("AWS.SimpleQueueService.MessageNotInflight")
    sqs.delete_message(QueueUrl=url, ReceiptHandle=new)  # the latest handle still deletes
    assert sqs.counts(url) == (0, 0, 0)
    assert code(
        lambda: sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=new, VisibilityTimeout=0)
    ) == ("InvalidParameterValue")
    other = sqs.create_queue(QueueName="other")["QueueUrl"]
    assert code(lambda: sqs.delete_message(QueueUrl=other, ReceiptHandle=new)) == (
        "ReceiptHandleIsInvalid"
    )


def test_sqs_validations_moto_skips() -> None:
    sqs = InMemorySqs()
    url = sqs.create_queue(QueueName="q", Attributes={"MaximumMessageSize": "1024"})["QueueUrl"]
    # Sizes count UTF-8 bytes and attributes (moto counts the body's characters only).
    assert code(lambda: sqs.send_message(QueueUrl=url, MessageBody="é" * 600)) == (
        "InvalidParameterValue"
    )
    padded = {"k": {"DataType": "String", "StringValue": "v" * 1000}}
    assert code(
        lambda: sqs.send_message(QueueUrl=url, MessageBody="x" * 100, MessageAttributes=padded)
    ) == ("InvalidParameterValue")
    assert code(lambda: sqs.send_message(QueueUrl=url, MessageBody="x", DelaySeconds=-1)) == (
        "InvalidParameterValue"
    )
    eleven = {f"a{i}": {"DataType": "String", "StringValue": "1"} for i in range(11)}
    assert code(
        lambda: sqs.send_message(QueueUrl=url, MessageBody="x", MessageAttributes=eleven)
    ) == ("InvalidParameterValue")
    empty = {"e": {"DataType": "String", "StringValue": ""}}
    assert code(
        lambda: sqs.send_message(QueueUrl=url, MessageBody="x", MessageAttributes=empty)
    ) == ("InvalidParameterValue")
    assert code(
        lambda: sqs.create_queue(QueueName="z", Attributes={"VisibilityTimeout": "50000"})
    ) == ("InvalidAttributeValue")
    missing_dlq = json.dumps({"deadLetterTargetArn": ARN + "nope", "maxReceiveCount": 3})
    assert code(
        lambda: sqs.create_queue(QueueName="z", Attributes={"RedrivePolicy": missing_dlq})
    ) == ("InvalidParameterValue")


def test_ground_truth_billing_and_determinism() -> None:
    def run() -> tuple[list[dict[str, Any]], dict[str, int], str]:
        clock = FakeClock()
        sqs = InMemorySqs(clock=clock)
        url = sqs.create_queue(QueueName="q")["QueueUrl"]
        sqs.send_message(QueueUrl=url, MessageBody="x" * 70_000)  # two 64 KiB chunks
        sqs.send_message_batch(
            QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": "y"} for i in range(3)]
        )
        handle = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"][0][
            "ReceiptHandle"
        ]
        sqs.receive_message(QueueUrl=url)  # empty: still a request
        return sqs.messages(url), dict(sqs.usage.billed), handle

    first, second = run(), run()
    assert first == second  # ids, handles and order come from counters, not randomness
    messages, billed, _ = first
    assert [m["MessageId"] for m in messages] == [
        "00000000-0000-0000-0000-000000000001",
        "00000000-0000-0000-0000-000000000002",
        "00000000-0000-0000-0000-000000000003",
        "00000000-0000-0000-0000-000000000004",
    ]
    assert billed == {
        "CreateQueue": 1,
        "SendMessage": 2,
        "SendMessageBatch": 1,
        "ReceiveMessage": 2 + 1,  # 70,003 bytes returned, then an empty receive
    }


def test_query_filters_and_projections(aws: Aws) -> None:
    ddb = aws.dynamodb
    create_pk_sk_table(ddb, "t")
    for i in range(5):
        ddb.put_item(TableName="t", Item={"pk": s("p"), "sk": s(f"e{i}"), "n": n(str(i))})
    result = ddb.query(
        TableName="t",
        KeyConditionExpression="pk = :p AND sk > :from",
        FilterExpression="n <> :two",
        ProjectionExpression="sk, #n",
        ExpressionAttributeNames={"#n": "n"},
        ExpressionAttributeValues={":p": s("p"), ":from": s("e0"), ":two": n("2")},
    )
    assert clean(result) == {
        "Items": [
            {"sk": s("e1"), "n": n("1")},
            {"sk": s("e3"), "n": n("3")},
            {"sk": s("e4"), "n": n("4")},
        ],
        "Count": 3,
        "ScannedCount": 4,
    }


def test_gsi_membership_follows_random_writes() -> None:
    """Differential: random writes that add, change and drop index keys; same GSI answers."""
    rng = random.Random(7)
    statuses = ["QUEUED", "HELD", "BOOKED"]
    operations: list[tuple[str, int, dict[str, Any]]] = []
    for _ in range(120):
        doc = rng.randrange(12)
        kind = rng.choice(["put", "update", "remove", "delete"])
        extra: dict[str, Any] = {}
        if kind in ("put", "update"):
            if rng.random() < 0.8:
                extra["statusKey"] = s(rng.choice(statuses))
            if rng.random() < 0.8:
                extra["updatedAt"] = s(f"2026-01-{rng.randrange(1, 29):02d}")
        operations.append((kind, doc, extra))

    def answers(ddb: Any) -> list[list[str]]:
        create_ledger_table(ddb)
        for kind, doc, extra in operations:
            key = {"pk": s(f"doc#{doc}"), "sk": s("state")}
            if kind == "put":
                ddb.put_item(TableName="ledger", Item={**key, **extra})
            elif kind == "update" and extra:
                names = {f"#{k}": k for k in extra}
                ddb.update_item(
                    TableName="ledger",
                    Key=key,
                    UpdateExpression="SET " + ", ".join(f"#{k} = :{k}" for k in extra),
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues={f":{k}": v for k, v in extra.items()},
                )
            elif kind == "remove":
                ddb.update_item(TableName="ledger", Key=key, UpdateExpression="REMOVE statusKey")
            elif kind == "delete":
                ddb.delete_item(TableName="ledger", Key=key)
        results = []
        for status in statuses:
            items = ddb.query(
                TableName="ledger",
                IndexName="ByStatus",
                KeyConditionExpression="statusKey = :s",
                ExpressionAttributeValues={":s": s(status)},
            )["Items"]
            # Sorted by updatedAt; ties are in no documented order, so compare as sorted pairs.
            results.append(sorted(f"{i['updatedAt']['S']} {i['pk']['S']}" for i in items))
        return results

    with mock_aws():
        expected = answers(boto3.client("dynamodb", region_name=REGION))
    assert answers(InMemoryDynamoDB()) == expected
    assert all(expected)


def test_queue_counts_match_a_recount() -> None:
    """The incremental visible / in-flight / delayed counts against a recount of messages()."""
    rng = random.Random(11)
    clock = FakeClock()
    sqs = InMemorySqs(clock=clock)
    url = sqs.create_queue(QueueName="q", Attributes={"VisibilityTimeout": "20"})["QueueUrl"]
    handles: list[str] = []
    refusals: set[str] = set()
    for _ in range(2000):
        action = rng.random()
        if action < 0.3:
            sqs.send_message(QueueUrl=url, MessageBody="x", DelaySeconds=rng.choice([0, 0, 5, 30]))
        elif action < 0.6:
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=rng.randint(1, 10))
            handles += [m["ReceiptHandle"] for m in got.get("Messages", [])]
        elif action < 0.75 and handles:
            sqs.delete_message(QueueUrl=url, ReceiptHandle=handles.pop(rng.randrange(len(handles))))
        elif action < 0.85 and handles:
            handle = handles[rng.randrange(len(handles))]
            try:
                sqs.change_message_visibility(
                    QueueUrl=url, ReceiptHandle=handle, VisibilityTimeout=rng.choice([0, 10, 60])
                )
            except ClientError as exc:  # stale, gone, or no longer in flight
                handles.remove(handle)
                refusals.add(exc.response["Error"]["Code"])
        else:
            clock.now += rng.choice([0.5, 1, 3, 10])
        states = [m["State"] for m in sqs.messages(url)]
        recount = (states.count("visible"), states.count("in_flight"), states.count("delayed"))
        assert sqs.counts(url) == recount
    assert refusals <= {"InvalidParameterValue", "AWS.SimpleQueueService.MessageNotInflight"}
