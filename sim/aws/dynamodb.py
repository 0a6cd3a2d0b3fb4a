"""An in-memory DynamoDB shaped like boto3's low-level client, on a pluggable clock.

Implements what this project and AWS Lambda Powertools call: tables with a hash (and range) key
and global secondary indexes, TTL, ``GetItem``, ``PutItem``, ``UpdateItem``, ``DeleteItem``
with condition expressions and every ``ReturnValues`` mode, ``Query`` (tables and GSIs, filters,
projections, ``Limit``/``ExclusiveStartKey``), ``Scan``, and the ``query``/``scan`` paginators.
Errors are ``botocore.exceptions.ClientError`` with DynamoDB's codes and messages (subclasses
named after the code, also reachable as ``client.exceptions.<Code>``).

Where it simplifies DynamoDB:

* One account and region; tables are ``ACTIVE`` at once; no throttling, no capacity limits.
* Every read is strongly consistent, GSIs included (``ConsistentRead=False`` only halves the
  bill): a GSI query sees a write at once, where DynamoDB's index lags a little.
* ``Query`` and ``Scan`` return one page: there is no 1 MB page limit. ``Limit`` still cuts a page
  and sets ``LastEvaluatedKey`` as DynamoDB does (also when exactly ``Limit`` items were left).
  Items with equal GSI keys come back in table-key order (DynamoDB leaves that order open).
* TTL: with TTL on attribute ``A``, an item whose ``A`` is a number of epoch seconds with
  ``A + ttl_lag_seconds < clock()`` is treated as deleted, removed when touched or by
  ``sweep()``. Real DynamoDB deletes expired items "typically within a few days" and serves
  them until then: ``ttl_lag_seconds`` models that delay. Values more than five years in the
  past are ignored, as DynamoDB ignores them. TTL deletions cost nothing, as in DynamoDB.
* GSI projections are always ``ALL``. No LSIs, transactions, batch calls, streams, PartiQL.
* No client-side (botocore) parameter validation: only the service's own checks.
* Responses carry no ``ResponseMetadata``; ``ConsumedCapacity`` only when asked for.
* ``Scan`` counts as a call but bills no read units: the simulation uses it (like ``items()``)
  for ground-truth reads the application never makes.
* Capacity units follow the on-demand rules in ``DynamoDBUsage``; item sizes follow the
  developer guide's rules, approximately for numbers, lists and maps.

Where moto and DynamoDB differ, this follows DynamoDB (``tests/unit/sim/test_sim_aws.py`` lists the
cases): canonical numbers (``"1.50"`` comes back ``"1.5"``; moto returns what was sent), unused
or undefined placeholders refused, ``UPDATED_NEW``/``UPDATED_OLD`` naming every attribute the
update sets (moto drops unchanged ones), type checks on keys and index keys.

Ground truth for the simulation (not AWS API): ``items(table)``, ``sweep()``, ``usage``.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any, Final

from botocore.exceptions import ClientError

from sim.aws.expressions import (
    AndNode,
    AttributeValue,
    BetweenNode,
    CompareNode,
    Condition,
    ExpressionError,
    FunctionNode,
    Item,
    Names,
    Node,
    Path,
    PathNode,
    ValueNode,
    canonical_number,
    compare,
    export_item,
    import_value,
    item_size,
    parse_condition,
    parse_plan,
    parse_projection,
    project,
    resolve,
    show,
    sort_key,
)

MAX_ITEM_BYTES: Final = 400 * 1024
_FIVE_YEARS: Final = 5 * 365 * 86400
_NO_NAMES: Final[frozenset[str]] = frozenset()
_EMPTY_ITEM: Final[Item] = {}
_MODELED: Final = frozenset(
    {"ConditionalCheckFailedException", "ResourceNotFoundException", "ResourceInUseException"}
)
_ERROR_CODES: Final = (
    "ConditionalCheckFailedException",
    "ResourceNotFoundException",
    "ResourceInUseException",
    "ValidationException",
)
#: ``client.exceptions.<Code>``, as botocore builds them (subclasses of ``ClientError``).
_EXCEPTIONS: Final[dict[str, type[ClientError]]] = {
    code: type(code, (ClientError,), {}) for code in _ERROR_CODES
}
_UPDATE_RETURN_VALUES: Final = frozenset(
    {"NONE", "ALL_OLD", "UPDATED_OLD", "ALL_NEW", "UPDATED_NEW"}
)
_KEY_MISMATCH: Final = "The provided key element does not match the schema"


def _error(code: str, message: str, operation: str, **extra: Any) -> ClientError:
    response: dict[str, Any] = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": 400},
    }
    if code in _MODELED:
        response["message"] = message  # botocore copies a modeled error's members to the top
    response.update(extra)
    return _EXCEPTIONS.get(code, ClientError)(response, operation)  # type: ignore[arg-type]


@dataclass
class DynamoDBUsage:
    """What the calls would cost, as on-demand DynamoDB bills them.

    Writes: ``ceil(size / 1 KB)`` write request units, at least 1, with the larger of the item
    before and after (``PutItem``, ``UpdateItem``); ``DeleteItem`` the deleted item; a failed
    conditional write still consumes the units of the item it evaluated. Reads: ``GetItem``
    ``ceil(size / 4 KB)`` (at least 1, also for a missing item), ``Query`` the total size of the
    items read, rounded up to 4 KB (at least 1); eventually consistent reads cost half.
    """

    #: Calls per operation (``"UpdateItem"``), failed ones included.
    calls: Counter[str] = field(default_factory=Counter)
    #: Read request units per table.
    read_units: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    #: Write request units per table.
    write_units: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))


@dataclass(slots=True)
class _Row:
    item: Item
    size: int


@dataclass(slots=True)
class _Index:
    name: str
    hash_attr: str
    hash_type: str
    range_attr: str | None
    range_type: str | None
    spec: dict[str, Any]
    #: GSI hash value -> the table keys of the items in that index partition.
    members: dict[Any, dict[tuple[Any, Any], None]] = field(default_factory=dict)

    def key_of(self, item: Item) -> tuple[Any, Any] | None:
        """The item's index key, or None when it lacks one (then it is not in the index)."""
        found = item.get(self.hash_attr)
        if found is None or self.hash_type not in found:
            return None
        if self.range_attr is None:
            return found[self.hash_type], None
        sort = item.get(self.range_attr)
        if sort is None or self.range_type not in sort:
            return None
        return found[self.hash_type], sort[self.range_type]


@dataclass(slots=True)
class _Table:
    name: str
    arn: str
    hash_attr: str
    hash_type: str
    range_attr: str | None
    range_type: str | None
    definitions: dict[str, str]
    key_schema: list[dict[str, str]]
    indexes: dict[str, _Index]
    created: float
    billing_mode: str
    #: (attribute, type, index) for index key attributes that are not table keys.
    index_attrs: tuple[tuple[str, str, _Index], ...]
    ttl_attr: str | None = None
    #: hash value -> range value (None without a range key) -> row.
    partitions: dict[Any, dict[Any, _Row]] = field(default_factory=dict)

    @property
    def key_names(self) -> tuple[str, ...]:
        return (self.hash_attr,) if self.range_attr is None else (self.hash_attr, self.range_attr)

    def key_item(self, hash_value: Any, range_value: Any) -> Item:
        item: Item = {self.hash_attr: {self.hash_type: hash_value}}
        if self.range_attr is not None:
            item[self.range_attr] = {str(self.range_type): range_value}
        return item

    def rows(self) -> Iterator[tuple[Any, Any, _Row]]:
        for hash_value, partition in self.partitions.items():
            for range_value, row in partition.items():
                yield hash_value, range_value, row


class _Paginator:
    """``get_paginator(...)``: follows ``LastEvaluatedKey`` (only ``Limit`` makes pages)."""

    def __init__(self, call: Callable[..., dict[str, Any]]) -> None:
        self._call = call

    def paginate(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        config = kwargs.pop("PaginationConfig", None) or {}
        if "PageSize" in config:
            kwargs["Limit"] = config["PageSize"]
        if "StartingToken" in config:
            kwargs["ExclusiveStartKey"] = config["StartingToken"]
        left = config.get("MaxItems")
        while True:
            page = self._call(**kwargs)
            if left is not None:
                page["Items"] = page.get("Items", [])[:left]
                left -= len(page["Items"])
            yield page
            start = page.get("LastEvaluatedKey")
            if start is None or (left is not None and left <= 0):
                return
            kwargs["ExclusiveStartKey"] = start


class _Operation:
    """``with``: one item call, under the lock, counted (failed ones too), a request DynamoDB
    would refuse answered with its ``ValidationException``. A class, not a generator-based
    context manager: it wraps every call, and this costs a fraction of one."""

    __slots__ = ("_calls", "_lock", "_op")

    def __init__(self, lock: threading.Lock, calls: Counter[str], op: str) -> None:
        self._lock = lock
        self._calls = calls
        self._op = op

    def __enter__(self) -> None:
        self._lock.acquire()
        self._calls[self._op] += 1

    def __exit__(self, *exc_info: object) -> None:
        self._lock.release()
        exc = exc_info[1]
        if isinstance(exc, ExpressionError):
            raise _error("ValidationException", str(exc), self._op) from None


class InMemoryDynamoDB:
    """A thread-safe, deterministic DynamoDB in memory (see the module docstring)."""

    def __init__(
        self,
        clock: Callable[[], float] = time.time,
        ttl_lag_seconds: float = 0.0,
        *,
        region: str = "eu-west-3",
        account_id: str = "123456789012",
    ) -> None:
        self._clock = clock
        self.ttl_lag_seconds = ttl_lag_seconds
        self.region = region
        self.account_id = account_id
        self._lock = threading.Lock()
        self._tables: dict[str, _Table] = {}
        self.usage = DynamoDBUsage()
        self.exceptions = SimpleNamespace(ClientError=ClientError, **_EXCEPTIONS)

    # --- tables ----------------------------------------------------------------------------------

    def create_table(
        self,
        *,
        TableName: str,
        KeySchema: list[dict[str, str]],
        AttributeDefinitions: list[dict[str, str]],
        GlobalSecondaryIndexes: list[dict[str, Any]] | None = None,
        BillingMode: str | None = None,
        **_: Any,
    ) -> dict[str, Any]:
        with self._lock:
            self.usage.calls["CreateTable"] += 1
            op = "CreateTable"
            if TableName in self._tables:
                raise _error("ResourceInUseException", f"Table already exists: {TableName}", op)
            definitions = {d["AttributeName"]: d["AttributeType"] for d in AttributeDefinitions}
            for kind in definitions.values():
                if kind not in ("S", "N", "B"):
                    raise _error(
                        "ValidationException",
                        f"1 validation error detected: Value '{kind}' at "
                        "'attributeDefinitions.1.member.attributeType' failed to satisfy "
                        "constraint: Member must satisfy enum value set: [B, N, S]",
                        op,
                    )
            hash_attr, range_attr = self._key_schema(KeySchema, op)
            used = {hash_attr} | ({range_attr} if range_attr else set())
            indexes: dict[str, _Index] = {}
            for spec in GlobalSecondaryIndexes or []:
                index_hash, index_range = self._key_schema(spec["KeySchema"], op)
                used |= {index_hash} | ({index_range} if index_range else set())
                indexes[spec["IndexName"]] = _Index(
                    name=spec["IndexName"],
                    hash_attr=index_hash,
                    hash_type=definitions.get(index_hash, "S"),
                    range_attr=index_range,
                    range_type=definitions.get(index_range) if index_range else None,
                    spec={
                        "IndexName": spec["IndexName"],
                        "KeySchema": [dict(k) for k in spec["KeySchema"]],
                        "Projection": dict(spec.get("Projection") or {"ProjectionType": "ALL"}),
                    },
                )
            undefined = sorted(used - definitions.keys())
            if undefined:
                raise _error(
                    "ValidationException",
                    "One or more parameter values were invalid: Some index key attributes are not "
                    f"defined in AttributeDefinitions. Keys: [{', '.join(undefined)}], "
                    f"AttributeDefinitions: [{', '.join(definitions)}]",
                    op,
                )
            if definitions.keys() - used:
                raise _error(
                    "ValidationException",
                    "One or more parameter values were invalid: Number of attributes in KeySchema "
                    "does not exactly match number of attributes defined in AttributeDefinitions",
                    op,
                )
            table_keys = {hash_attr, range_attr}
            index_attrs = tuple(
                (attr, definitions[attr], index)
                for index in indexes.values()
                for attr in (index.hash_attr, index.range_attr)
                if attr is not None and attr not in table_keys
            )
            table = _Table(
                name=TableName,
                arn=f"arn:aws:dynamodb:{self.region}:{self.account_id}:table/{TableName}",
                hash_attr=hash_attr,
                hash_type=definitions[hash_attr],
                range_attr=range_attr,
                range_type=definitions[range_attr] if range_attr else None,
                definitions=definitions,
                key_schema=[dict(k) for k in KeySchema],
                indexes=indexes,
                created=self._clock(),
                billing_mode=BillingMode or "PROVISIONED",
                index_attrs=index_attrs,
            )
            self._tables[TableName] = table
            return {"TableDescription": self._describe(table)}

    @staticmethod
    def _key_schema(schema: list[dict[str, str]], op: str) -> tuple[str, str | None]:
        kinds = [k["KeyType"] for k in schema]
        if kinds not in (["HASH"], ["HASH", "RANGE"]):
            raise _error(
                "ValidationException",
                "Invalid KeySchema: The first KeySchemaElement is not a HASH key type"
                if kinds and kinds[0] != "HASH"
                else "1 validation error detected: Value at 'keySchema' failed to satisfy "
                "constraint: Member must have length less than or equal to 2",
                op,
            )
        return schema[0]["AttributeName"], (schema[1]["AttributeName"] if len(schema) > 1 else None)

    def describe_table(self, *, TableName: str, **_: Any) -> dict[str, Any]:
        with self._lock:
            self.usage.calls["DescribeTable"] += 1
            return {"Table": self._describe(self._table(TableName, "DescribeTable"))}

    def delete_table(self, *, TableName: str, **_: Any) -> dict[str, Any]:
        with self._lock:
            self.usage.calls["DeleteTable"] += 1
            table = self._table(TableName, "DeleteTable")
            description = self._describe(table)
            description["TableStatus"] = "DELETING"
            del self._tables[TableName]
            return {"TableDescription": description}

    def list_tables(self, **_: Any) -> dict[str, Any]:
        with self._lock:
            self.usage.calls["ListTables"] += 1
            return {"TableNames": sorted(self._tables)}

    def update_time_to_live(
        self, *, TableName: str, TimeToLiveSpecification: dict[str, Any], **_: Any
    ) -> dict[str, Any]:
        with self._lock:
            self.usage.calls["UpdateTimeToLive"] += 1
            table = self._table(TableName, "UpdateTimeToLive")
            enabled = bool(TimeToLiveSpecification.get("Enabled"))
            table.ttl_attr = TimeToLiveSpecification["AttributeName"] if enabled else None
            return {"TimeToLiveSpecification": dict(TimeToLiveSpecification)}

    def describe_time_to_live(self, *, TableName: str, **_: Any) -> dict[str, Any]:
        with self._lock:
            self.usage.calls["DescribeTimeToLive"] += 1
            table = self._table(TableName, "DescribeTimeToLive")
            if table.ttl_attr is None:
                return {"TimeToLiveDescription": {"TimeToLiveStatus": "DISABLED"}}
            return {
                "TimeToLiveDescription": {
                    "TimeToLiveStatus": "ENABLED",
                    "AttributeName": table.ttl_attr,
                }
            }

    def _describe(self, table: _Table) -> dict[str, Any]:
        count = sum(len(p) for p in table.partitions.values())
        size = sum(row.size for _, _, row in table.rows())
        description: dict[str, Any] = {
            "AttributeDefinitions": [
                {"AttributeName": name, "AttributeType": kind}
                for name, kind in table.definitions.items()
            ],
            "TableName": table.name,
            "KeySchema": [dict(k) for k in table.key_schema],
            "TableStatus": "ACTIVE",
            "CreationDateTime": datetime.fromtimestamp(table.created, UTC),
            "ProvisionedThroughput": {
                "NumberOfDecreasesToday": 0,
                "ReadCapacityUnits": 0,
                "WriteCapacityUnits": 0,
            },
            "TableSizeBytes": size,
            "ItemCount": count,
            "TableArn": table.arn,
            "BillingModeSummary": {"BillingMode": table.billing_mode},
        }
        if table.indexes:
            description["GlobalSecondaryIndexes"] = [
                {
                    **index.spec,
                    "IndexStatus": "ACTIVE",
                    "ItemCount": sum(len(m) for m in index.members.values()),
                    "IndexArn": f"{table.arn}/index/{index.name}",
                }
                for index in table.indexes.values()
            ]
        return description

    def _table(self, name: str, op: str) -> _Table:
        table = self._tables.get(name)
        if table is None:
            raise _error("ResourceNotFoundException", "Requested resource not found", op)
        return table

    # --- items -----------------------------------------------------------------------------------

    def _operation(self, op: str) -> _Operation:
        return _Operation(self._lock, self.usage.calls, op)

    def get_item(
        self,
        *,
        TableName: str,
        Key: Mapping[str, Any],
        ConsistentRead: bool = False,
        ProjectionExpression: str | None = None,
        ExpressionAttributeNames: Mapping[str, str] | None = None,
        ReturnConsumedCapacity: str | None = None,
        **_: Any,
    ) -> dict[str, Any]:
        op = "GetItem"
        with self._operation(op):
            table = self._table(TableName, op)
            hash_value, range_value = self._key(table, Key)
            projection = parse_projection(ProjectionExpression) if ProjectionExpression else None
            names = self._names(
                ExpressionAttributeNames, projection.names if projection else _NO_NAMES
            )
            row = self._row(table, hash_value, range_value, self._clock())
            units = _read_units(row.size if row else 0, ConsistentRead)
            self.usage.read_units[TableName] += units
            result: dict[str, Any] = {}
            if row is not None:
                item = row.item
                if projection is not None:
                    item = project(item, projection.resolved(names))
                result["Item"] = export_item(item)
            return _with_capacity(result, ReturnConsumedCapacity, TableName, units)

    def put_item(
        self,
        *,
        TableName: str,
        Item: Mapping[str, Any],
        ConditionExpression: str | None = None,
        ExpressionAttributeNames: Mapping[str, str] | None = None,
        ExpressionAttributeValues: Mapping[str, Any] | None = None,
        ReturnValues: str | None = None,
        ReturnValuesOnConditionCheckFailure: str | None = None,
        ReturnConsumedCapacity: str | None = None,
        **_: Any,
    ) -> dict[str, Any]:
        op = "PutItem"
        with self._operation(op):
            table = self._table(TableName, op)
            _check_return_values(ReturnValues, ("NONE", "ALL_OLD"))
            _check_return_values(ReturnValuesOnConditionCheckFailure, ("NONE", "ALL_OLD"))
            new = self._import_item(table, Item)
            hash_value, range_value = self._item_key(table, new)
            condition, names, values = self._condition(
                ConditionExpression, ExpressionAttributeNames, ExpressionAttributeValues
            )
            size = item_size(new)
            if size > MAX_ITEM_BYTES:
                raise ExpressionError("Item size has exceeded the maximum allowed size")
            self._check_index_keys(table, new)
            row = self._row(table, hash_value, range_value, self._clock())
            self._check_condition(
                op, table, row, condition, names, values, ReturnValuesOnConditionCheckFailure
            )
            old = row.item if row is not None else None
            units = self._write(table, hash_value, range_value, row, new, size)
            return _with_capacity(
                _all_old(ReturnValues, old), ReturnConsumedCapacity, TableName, units
            )

    def update_item(
        self,
        *,
        TableName: str,
        Key: Mapping[str, Any],
        UpdateExpression: str | None = None,
        ConditionExpression: str | None = None,
        ExpressionAttributeNames: Mapping[str, str] | None = None,
        ExpressionAttributeValues: Mapping[str, Any] | None = None,
        ReturnValues: str | None = None,
        ReturnValuesOnConditionCheckFailure: str | None = None,
        ReturnConsumedCapacity: str | None = None,
        **_: Any,
    ) -> dict[str, Any]:
        op = "UpdateItem"
        with self._operation(op):
            table = self._table(TableName, op)
            _check_return_values(ReturnValues, _UPDATE_RETURN_VALUES)
            _check_return_values(ReturnValuesOnConditionCheckFailure, ("NONE", "ALL_OLD"))
            hash_value, range_value = self._key(table, Key)
            plan = parse_plan(UpdateExpression, ConditionExpression)
            update, condition = plan.update, plan.condition
            names = self._names(ExpressionAttributeNames, plan.names)
            values = self._values(ExpressionAttributeValues, plan.values)
            targets = update.targets(names) if update is not None else []
            key_names = table.key_names
            for target in targets:
                if target[0] in key_names:
                    raise ExpressionError(
                        "One or more parameter values were invalid: Cannot update attribute "
                        f"{target[0]}. This attribute is part of the key"
                    )
            row = self._row(table, hash_value, range_value, self._clock())
            self._check_condition(
                op, table, row, condition, names, values, ReturnValuesOnConditionCheckFailure
            )
            old = row.item if row is not None else None
            base = old if old is not None else table.key_item(hash_value, range_value)
            new = update.apply(base, targets, names, values) if update else dict(base)
            size = item_size(new)
            if size > MAX_ITEM_BYTES:
                raise ExpressionError("Item size to update has exceeded the maximum allowed size")
            if table.index_attrs:
                self._check_index_keys(table, new)
            units = self._write(table, hash_value, range_value, row, new, size)
            return _with_capacity(
                _update_result(ReturnValues, old, new, targets),
                ReturnConsumedCapacity,
                TableName,
                units,
            )

    def delete_item(
        self,
        *,
        TableName: str,
        Key: Mapping[str, Any],
        ConditionExpression: str | None = None,
        ExpressionAttributeNames: Mapping[str, str] | None = None,
        ExpressionAttributeValues: Mapping[str, Any] | None = None,
        ReturnValues: str | None = None,
        ReturnValuesOnConditionCheckFailure: str | None = None,
        ReturnConsumedCapacity: str | None = None,
        **_: Any,
    ) -> dict[str, Any]:
        op = "DeleteItem"
        with self._operation(op):
            table = self._table(TableName, op)
            _check_return_values(ReturnValues, ("NONE", "ALL_OLD"))
            _check_return_values(ReturnValuesOnConditionCheckFailure, ("NONE", "ALL_OLD"))
            hash_value, range_value = self._key(table, Key)
            condition, names, values = self._condition(
                ConditionExpression, ExpressionAttributeNames, ExpressionAttributeValues
            )
            row = self._row(table, hash_value, range_value, self._clock())
            # A delete bills the item it finds before the condition is evaluated, whatever the
            # outcome (also when evaluating it fails validation).
            units = self._charge_write(TableName, row.size if row else 0)
            self._check_condition(
                op,
                table,
                row,
                condition,
                names,
                values,
                ReturnValuesOnConditionCheckFailure,
                bill=False,
            )
            old = row.item if row is not None else None
            if row is not None:
                self._drop(table, hash_value, range_value, row)
            return _with_capacity(
                _all_old(ReturnValues, old), ReturnConsumedCapacity, TableName, units
            )

    def _condition(
        self,
        expression: str | None,
        raw_names: Mapping[str, str] | None,
        raw_values: Mapping[str, Any] | None,
        label: str = "ConditionExpression",
    ) -> tuple[Condition | None, Names, dict[str, Any]]:
        """An optional condition (or filter) expression, parsed, with its placeholders checked
        against exactly the names and values it uses."""
        condition = parse_condition(expression, label) if expression else None
        names = self._names(raw_names, condition.names if condition else _NO_NAMES)
        values = self._values(raw_values, condition.values if condition else _NO_NAMES)
        return condition, names, values

    def _check_condition(
        self,
        op: str,
        table: _Table,
        row: _Row | None,
        condition: Condition | None,
        names: Names,
        values: Mapping[str, AttributeValue],
        on_failure: str | None,
        *,
        bill: bool = True,
    ) -> None:
        """Raise DynamoDB's error unless a conditional write's condition holds on the row it
        acts on (None: no item). A failed condition still bills that item's write units, here
        unless ``bill`` is false (the caller has billed them already)."""
        if condition is not None and not condition.evaluate(
            _EMPTY_ITEM if row is None else row.item, names, values
        ):
            if bill:
                self._charge_write(table.name, row.size if row else 0)
            raise self._condition_failed(op, row.item if row else None, on_failure)

    def _write(
        self,
        table: _Table,
        hash_value: Any,
        range_value: Any,
        row: _Row | None,
        new: Item,
        size: int,
    ) -> float:
        """Store a put or update's new item and bill it; the units billed."""
        self._store(table, hash_value, range_value, row, new, size)
        # _store has already given ``row`` the new size: this bills the item as written.
        return self._charge_write(table.name, max(size, row.size if row else 0))

    # --- queries ---------------------------------------------------------------------------------

    def query(
        self,
        *,
        TableName: str,
        KeyConditionExpression: str,
        IndexName: str | None = None,
        FilterExpression: str | None = None,
        ProjectionExpression: str | None = None,
        ExpressionAttributeNames: Mapping[str, str] | None = None,
        ExpressionAttributeValues: Mapping[str, Any] | None = None,
        ScanIndexForward: bool = True,
        Limit: int | None = None,
        ExclusiveStartKey: Mapping[str, Any] | None = None,
        ConsistentRead: bool = False,
        Select: str | None = None,
        ReturnConsumedCapacity: str | None = None,
        **_: Any,
    ) -> dict[str, Any]:
        with self._operation("Query"):
            return self._query(
                TableName,
                KeyConditionExpression,
                IndexName,
                FilterExpression,
                ProjectionExpression,
                ExpressionAttributeNames,
                ExpressionAttributeValues,
                ScanIndexForward,
                Limit,
                ExclusiveStartKey,
                ConsistentRead,
                Select,
                ReturnConsumedCapacity,
            )

    def _query(
        self,
        table_name: str,
        key_expression: str,
        index_name: str | None,
        filter_expression: str | None,
        projection_expression: str | None,
        raw_names: Mapping[str, str] | None,
        raw_values: Mapping[str, Any] | None,
        forward: bool,
        limit: int | None,
        start: Mapping[str, Any] | None,
        consistent: bool,
        select: str | None,
        capacity: str | None,
    ) -> dict[str, Any]:
        table = self._table(table_name, "Query")
        index: _Index | None = None
        if index_name is not None:
            index = table.indexes.get(index_name)
            if index is None:
                raise ExpressionError(f"The table does not have the specified index: {index_name}")
            if consistent:
                raise ExpressionError(
                    "Consistent reads are not supported on global secondary indexes"
                )
        if limit is not None and limit < 1:
            raise ExpressionError(
                f"1 validation error detected: Value '{limit}' at 'limit' failed to satisfy "
                "constraint: Member must have value greater than or equal to 1"
            )
        key_condition = parse_condition(key_expression, "KeyConditionExpression")
        row_filter = (
            parse_condition(filter_expression, "FilterExpression") if filter_expression else None
        )
        projection = parse_projection(projection_expression) if projection_expression else None
        used_names = key_condition.names
        used_values = key_condition.values
        if row_filter is not None:
            used_names |= row_filter.names
            used_values |= row_filter.values
        if projection is not None:
            used_names |= projection.names
        names = self._names(raw_names, used_names)
        values = self._values(raw_values, used_values)
        if index is None:
            hash_attr, hash_type = table.hash_attr, table.hash_type
            range_attr, range_type = table.range_attr, table.range_type
        else:
            hash_attr, hash_type = index.hash_attr, index.hash_type
            range_attr, range_type = index.range_attr, index.range_type
        hash_value, range_test = _key_condition(
            key_condition.tree, names, values, hash_attr, hash_type, range_attr, range_type
        )
        now = self._clock()
        if index is None:
            candidates = list(table.partitions.get(hash_value, {}).items())
            keyed = [((hash_value, r), row) for r, row in candidates]
        else:
            keys = list(index.members.get(hash_value, {}))
            keyed = [(k, table.partitions[k[0]][k[1]]) for k in keys]
        rows: list[_Row] = []
        for (h, r), row in keyed:
            if table.ttl_attr is not None and self._expired(table, row.item, now):
                self._drop(table, h, r, row)
                continue
            if range_test is None or range_test(row.item):
                rows.append(row)
        order = self._order(table, index)
        rows.sort(key=lambda row: order(row.item), reverse=not forward)
        if start is not None:
            try:
                begin = order({k: import_value(v) for k, v in start.items()})
            except (KeyError, AttributeError):
                raise ExpressionError("The provided starting key is invalid") from None
            rows = [
                row
                for row in rows
                if (order(row.item) > begin if forward else order(row.item) < begin)
            ]
        last: dict[str, Any] | None = None
        if limit is not None and len(rows) >= limit:
            rows = rows[:limit]
            last = self._start_key(table, index, rows[-1].item)
        units = _read_units(sum(row.size for row in rows), consistent)
        self.usage.read_units[table_name] += units
        items = [row.item for row in rows]
        if row_filter is not None:
            evaluate = row_filter.evaluate
            items = [item for item in items if evaluate(item, names, values)]
        result: dict[str, Any] = {}
        if select != "COUNT":
            if projection is not None:
                paths = projection.resolved(names)
                items = [project(item, paths) for item in items]
            result["Items"] = [export_item(item) for item in items]
        result["Count"] = len(items)
        result["ScannedCount"] = len(rows)
        if last is not None:
            result["LastEvaluatedKey"] = last
        return _with_capacity(result, capacity, table_name, units)

    @staticmethod
    def _order(table: _Table, index: _Index | None) -> Callable[[Item], tuple[Any, ...]]:
        """Sort tuples: the (index) range key, then the table key to break GSI ties."""
        table_hash, table_range = table.hash_attr, table.range_attr

        def table_order(item: Item) -> tuple[Any, ...]:
            return (sort_key(item[table_range]),) if table_range is not None else ()

        if index is None:
            return table_order
        index_range = index.range_attr

        def index_order(item: Item) -> tuple[Any, ...]:
            first = sort_key(item[index_range]) if index_range is not None else 0
            return (first, sort_key(item[table_hash]), *table_order(item))

        return index_order

    @staticmethod
    def _start_key(table: _Table, index: _Index | None, item: Item) -> dict[str, Any]:
        attrs = list(table.key_names)
        if index is not None:
            attrs += [a for a in (index.hash_attr, index.range_attr) if a and a not in attrs]
        return export_item({a: item[a] for a in attrs})

    def scan(
        self,
        *,
        TableName: str,
        FilterExpression: str | None = None,
        ExpressionAttributeNames: Mapping[str, str] | None = None,
        ExpressionAttributeValues: Mapping[str, Any] | None = None,
        **_: Any,
    ) -> dict[str, Any]:
        """Every item in one page (partitions in creation order, range keys sorted)."""
        op = "Scan"
        with self._operation(op):
            table = self._table(TableName, op)
            row_filter, names, values = self._condition(
                FilterExpression,
                ExpressionAttributeNames,
                ExpressionAttributeValues,
                "FilterExpression",
            )
            items = self._live_items(table)
            scanned = len(items)
            if row_filter is not None:
                items = [i for i in items if row_filter.evaluate(i, names, values)]
            return {
                "Items": [export_item(i) for i in items],
                "Count": len(items),
                "ScannedCount": scanned,
            }

    def get_paginator(self, operation_name: str) -> _Paginator:
        if operation_name == "query":
            return _Paginator(self.query)
        if operation_name == "scan":
            return _Paginator(self.scan)
        raise ValueError(f"Operation cannot be paginated: {operation_name}")

    def can_paginate(self, operation_name: str) -> bool:
        return operation_name in ("query", "scan")

    # --- ground truth for the simulation (not AWS API) ------------------------------------------

    def items(self, TableName: str) -> list[Item]:
        """A copy of every live item, in ``scan`` order. Not counted as a call."""
        with self._lock:
            table = self._table(TableName, "Items")
            return [export_item(item) for item in self._live_items(table)]

    def sweep(self) -> int:
        """Delete every item whose TTL has passed (plus the lag); return how many went."""
        with self._lock:
            now = self._clock()
            removed = 0
            for table in self._tables.values():
                if table.ttl_attr is None:
                    continue
                expired = [
                    (h, r, row) for h, r, row in table.rows() if self._expired(table, row.item, now)
                ]
                for h, r, row in expired:
                    self._drop(table, h, r, row)
                removed += len(expired)
            return removed

    # --- internals -------------------------------------------------------------------------------

    def _live_items(self, table: _Table) -> list[Item]:
        now = self._clock()
        items: list[Item] = []
        expired: list[tuple[Any, Any, _Row]] = []
        sortable = table.range_attr is not None
        for hash_value, partition in table.partitions.items():
            rows = list(partition.items())
            if sortable:
                rows.sort(key=lambda entry: sort_key(entry[1].item[str(table.range_attr)]))
            for range_value, row in rows:
                if table.ttl_attr is not None and self._expired(table, row.item, now):
                    expired.append((hash_value, range_value, row))
                else:
                    items.append(row.item)
        for hash_value, range_value, row in expired:
            self._drop(table, hash_value, range_value, row)
        return items

    def _expired(self, table: _Table, item: Item, now: float) -> bool:
        found = item.get(str(table.ttl_attr))
        if found is None or "N" not in found:
            return False
        expires = float(found["N"])
        return expires + self.ttl_lag_seconds < now and expires > now - _FIVE_YEARS

    def _row(self, table: _Table, hash_value: Any, range_value: Any, now: float) -> _Row | None:
        partition = table.partitions.get(hash_value)
        if partition is None:
            return None
        row = partition.get(range_value)
        if row is not None and table.ttl_attr is not None and self._expired(table, row.item, now):
            self._drop(table, hash_value, range_value, row)
            return None
        return row

    def _store(
        self,
        table: _Table,
        hash_value: Any,
        range_value: Any,
        old: _Row | None,
        item: Item,
        size: int,
    ) -> None:
        previous = None
        if old is None:
            table.partitions.setdefault(hash_value, {})[range_value] = _Row(item, size)
        else:
            previous = old.item
            old.item, old.size = item, size
        if table.indexes:
            key = (hash_value, range_value)
            for index in table.indexes.values():
                before = index.key_of(previous) if previous is not None else None
                after = index.key_of(item)
                if before != after:
                    if before is not None:
                        _leave(index, before[0], key)
                    if after is not None:
                        index.members.setdefault(after[0], {})[key] = None

    def _drop(self, table: _Table, hash_value: Any, range_value: Any, row: _Row) -> None:
        partition = table.partitions[hash_value]
        del partition[range_value]
        if not partition:
            del table.partitions[hash_value]
        key = (hash_value, range_value)
        for index in table.indexes.values():
            before = index.key_of(row.item)
            if before is not None:
                _leave(index, before[0], key)

    def _charge_write(self, table_name: str, size: int) -> float:
        units = float(max(1, -(-size // 1024)))
        self.usage.write_units[table_name] += units
        return units

    def _condition_failed(self, op: str, old: Item | None, mode: str | None) -> ClientError:
        # boto3 puts the modeled error's "Item" at the top of the response, next to "Error".
        extra = {"Item": export_item(old)} if mode == "ALL_OLD" and old is not None else {}
        return _error(
            "ConditionalCheckFailedException", "The conditional request failed", op, **extra
        )

    def _key(self, table: _Table, key: Mapping[str, Any]) -> tuple[Any, Any]:
        """The raw (hash, range) values of a ``Key`` argument, which must match the schema."""
        if not isinstance(key, Mapping) or len(key) != (1 if table.range_attr is None else 2):
            raise ExpressionError(_KEY_MISMATCH)
        hash_value = _key_value(key.get(table.hash_attr), table.hash_type, table.hash_attr)
        if table.range_attr is None:
            return hash_value, None
        return hash_value, _key_value(
            key.get(table.range_attr), str(table.range_type), table.range_attr
        )

    @staticmethod
    def _item_key(table: _Table, item: Item) -> tuple[Any, Any]:
        values: list[Any] = []
        for attr, kind in (
            (table.hash_attr, table.hash_type),
            (table.range_attr, table.range_type),
        ):
            if attr is None:
                values.append(None)
                continue
            found = item.get(attr)
            if found is None:
                raise ExpressionError(
                    f"One or more parameter values were invalid: Missing the key {attr} in the item"
                )
            if kind not in found:
                raise ExpressionError(
                    "One or more parameter values were invalid: Type mismatch for key "
                    f"{attr} expected: {kind} actual: {next(iter(found))}"
                )
            data = found[kind]
            if kind != "N" and not data:
                raise ExpressionError(
                    "One or more parameter values are not valid. The AttributeValue for a key "
                    f"attribute cannot contain an empty {'string' if kind == 'S' else 'binary'} "
                    f"value. Key: {attr}"
                )
            values.append(data)
        return values[0], values[1]

    @staticmethod
    def _import_item(table: _Table, item: Mapping[str, Any]) -> Item:
        if not isinstance(item, Mapping):
            raise ExpressionError("Item must be a map of attribute names to values")
        return {str(name): import_value(value) for name, value in item.items()}

    @staticmethod
    def _check_index_keys(table: _Table, item: Item) -> None:
        for attr, kind, index in table.index_attrs:
            found = item.get(attr)
            if found is None:
                continue
            if kind not in found:
                raise ExpressionError(
                    "One or more parameter values were invalid: Type mismatch for Index Key "
                    f"{attr} Expected: {kind} Actual: {next(iter(found))} IndexName: {index.name}"
                )
            if kind != "N" and not found[kind]:
                raise ExpressionError(
                    "One or more parameter values are not valid. A value specified for a "
                    "secondary index key is not supported. The AttributeValue for a key "
                    f"attribute cannot contain an empty string value. IndexName: {index.name}, "
                    f"IndexKey: {attr}"
                )

    @staticmethod
    def _names(names: Mapping[str, str] | None, used: frozenset[str]) -> Names:
        _check_placeholders(
            names,
            used,
            "ExpressionAttributeNames",
            "An expression attribute name used in the document path is not defined; "
            "attribute name: ",
            "1 validation error detected: Value provided in ",
        )
        return {} if names is None else names

    @staticmethod
    def _values(values: Mapping[str, Any] | None, used: frozenset[str]) -> dict[str, Any]:
        _check_placeholders(
            values,
            used,
            "ExpressionAttributeValues",
            "An expression attribute value used in expression is not defined; attribute value: ",
            "Value provided in ",
        )
        if values is None:
            return {}
        imported: dict[str, Any] = {}
        for name, value in values.items():
            # Inlined common cases (a plain string, a canonical integer): this runs per value
            # per call; import_value handles everything else and validates.
            if type(value) is dict and len(value) == 1:
                text = value.get("S")
                if type(text) is str:
                    imported[name] = {"S": text}
                    continue
                text = value.get("N")
                if (
                    type(text) is str
                    and text.isdigit()
                    and text.isascii()
                    and text[0] != "0"
                    and len(text) <= 38
                ):
                    imported[name] = {"N": text}
                    continue
            try:
                imported[name] = import_value(value)
            except ExpressionError as exc:
                raise ExpressionError(
                    f"ExpressionAttributeValues contains invalid value: {exc} for key {name}"
                ) from None
        return imported


def _check_placeholders(
    given: Mapping[str, Any] | None,
    used: frozenset[str],
    parameter: str,
    undefined: str,
    unused: str,
) -> None:
    """Refuse, as DynamoDB does, a ``parameter`` (``ExpressionAttributeNames`` or ``...Values``)
    that is empty, lacks a placeholder the expressions use or has one they do not. ``undefined``
    and ``unused`` begin the two messages, which DynamoDB words differently for each parameter."""
    if given is None:
        if used:
            raise ExpressionError(f"{undefined}{min(used)}")
        return
    if given.keys() != used:
        if not given:
            raise ExpressionError(f"{parameter} must not be empty")
        missing = used - given.keys()
        if missing:
            raise ExpressionError(f"{undefined}{min(missing)}")
        keys = ", ".join(sorted(given.keys() - used))
        raise ExpressionError(f"{unused}{parameter} unused in expressions: keys: {{{keys}}}")


def _leave(index: _Index, hash_value: Any, key: tuple[Any, Any]) -> None:
    group = index.members[hash_value]
    del group[key]
    if not group:
        del index.members[hash_value]


def _key_value(found: Any, kind: str, attr: str) -> Any:
    if not isinstance(found, Mapping) or len(found) != 1 or kind not in found:
        raise ExpressionError(_KEY_MISMATCH)
    data = found[kind]
    if kind == "S":
        if not isinstance(data, str):
            raise ExpressionError(_KEY_MISMATCH)
        if not data:
            raise ExpressionError(
                "One or more parameter values are not valid. The AttributeValue for a key "
                f"attribute cannot contain an empty string value. Key: {attr}"
            )
        return str.__str__(data)
    if kind == "N":
        return canonical_number(data)
    return import_value(found)["B"]


def _read_units(size: int, consistent: bool) -> float:
    units = max(1, -(-size // 4096))
    return float(units) if consistent else units / 2


def _check_return_values(value: str | None, allowed: Collection[str]) -> None:
    if value is not None and value not in allowed:
        raise ExpressionError("Return values set to invalid value")


def _with_capacity(
    result: dict[str, Any], requested: str | None, table_name: str, units: float
) -> dict[str, Any]:
    """``result``, with the ``ConsumedCapacity`` that ``ReturnConsumedCapacity`` asked for."""
    if requested in ("TOTAL", "INDEXES"):
        result["ConsumedCapacity"] = {"TableName": table_name, "CapacityUnits": units}
    return result


def _all_old(mode: str | None, old: Item | None) -> dict[str, Any]:
    """What ``ReturnValues`` (``NONE`` or ``ALL_OLD``) returns: the item as it was, if any."""
    return {"Attributes": export_item(old)} if mode == "ALL_OLD" and old is not None else {}


def _update_result(
    mode: str | None, old: Item | None, new: Item, targets: list[Path]
) -> dict[str, Any]:
    if mode is None or mode == "NONE":
        return {}
    if mode == "ALL_NEW":
        return {"Attributes": export_item(new)}
    if mode == "ALL_OLD":
        return _all_old(mode, old)
    source = new if mode == "UPDATED_NEW" else old
    if source is None:
        return {}
    # Every attribute the update names, changed or not (moto leaves out unchanged ones).
    attributes = project(source, targets)
    return {"Attributes": export_item(attributes)} if attributes else {}


def _key_condition(
    tree: Node,
    names: Names,
    values: Mapping[str, AttributeValue],
    hash_attr: str,
    hash_type: str,
    range_attr: str | None,
    range_type: str | None,
) -> tuple[Any, Callable[[Item], bool] | None]:
    """The hash value and a test on the range key that a key condition expression describes."""
    terms = tree.terms if isinstance(tree, AndNode) else (tree,)
    hash_value: Any = None
    range_test: Callable[[Item], bool] | None = None
    seen: set[str] = set()
    for term in terms:
        attr, op, operands = _key_term(term, names, values)
        if attr in seen:
            raise ExpressionError("KeyConditionExpressions must only contain one condition per key")
        seen.add(attr)
        if attr == hash_attr:
            if op != "=":
                raise ExpressionError("Query key condition not supported")
            (value,) = operands
            if hash_type not in value:
                raise _schema_mismatch()
            hash_value = value[hash_type]
        elif attr == range_attr:
            for value in operands:
                if str(range_type) not in value:
                    raise _schema_mismatch()
            range_test = _range_test(attr, op, operands)
        else:
            raise ExpressionError("Query key condition not supported")
    if hash_attr not in seen:
        raise ExpressionError(f"Query condition missed key schema element: {hash_attr}")
    return hash_value, range_test


def _schema_mismatch() -> ExpressionError:
    return ExpressionError(
        "One or more parameter values were invalid: Condition parameter type does not match "
        "schema type"
    )


def _key_term(
    term: Node, names: Names, values: Mapping[str, AttributeValue]
) -> tuple[str, str, tuple[AttributeValue, ...]]:
    def key_attr(node: Node) -> str:
        if not isinstance(node, PathNode):
            raise ExpressionError(
                "Invalid condition in KeyConditionExpression: Multiple attribute names used in "
                "one condition"
            )
        path = resolve(node.parts, names)
        if len(path) != 1:
            raise ExpressionError(
                "Invalid KeyConditionExpression: Nested attributes are not supported in key "
                "conditions"
            )
        return str(path[0])

    def value(node: Node) -> AttributeValue:
        if not isinstance(node, ValueNode):
            raise ExpressionError(
                "Invalid condition in KeyConditionExpression: Multiple attribute names used in "
                "one condition"
            )
        return values[node.name]

    if isinstance(term, CompareNode):
        if term.op == "<>":
            raise ExpressionError("Unsupported operator in KeyConditionExpression: <>")
        return key_attr(term.left), term.op, (value(term.right),)
    if isinstance(term, BetweenNode):
        low, high = value(term.low), value(term.high)
        bounds = compare(low, high)
        if bounds is not None and bounds > 0:
            raise ExpressionError(
                "Invalid KeyConditionExpression: The BETWEEN operator requires upper bound to be "
                f"greater than or equal to lower bound; lower bound operand: AttributeValue: "
                f"{show(low)}, upper bound operand: AttributeValue: {show(high)}"
            )
        return key_attr(term.operand), "BETWEEN", (low, high)
    if isinstance(term, FunctionNode) and term.name == "begins_with":
        prefix = value(term.args[1])
        kind = next(iter(prefix))
        if kind not in ("S", "B"):
            raise ExpressionError(
                "Invalid KeyConditionExpression: Incorrect operand type for operator or "
                f"function; operator or function: begins_with, operand type: {kind}"
            )
        return key_attr(term.args[0]), "begins_with", (prefix,)
    if isinstance(term, FunctionNode):
        raise ExpressionError(
            f"Invalid KeyConditionExpression: Invalid function name; function: {term.name}"
        )
    raise ExpressionError(
        f"Invalid operator used in KeyConditionExpression: {type(term).__name__[:-4].upper()}"
    )


def _range_test(attr: str, op: str, operands: tuple[AttributeValue, ...]) -> Callable[[Item], bool]:
    if op == "begins_with":
        ((kind, prefix),) = operands[0].items()

        def begins(item: Item) -> bool:
            return bool(item[attr][kind].startswith(prefix))

        return begins
    if op == "BETWEEN":
        low, high = operands

        def between(item: Item) -> bool:
            above, below = compare(item[attr], low), compare(item[attr], high)
            return above is not None and below is not None and above >= 0 and below <= 0

        return between
    (bound,) = operands
    tests: dict[str, Callable[[int], bool]] = {
        "=": lambda c: c == 0,
        "<": lambda c: c < 0,
        "<=": lambda c: c <= 0,
        ">": lambda c: c > 0,
        ">=": lambda c: c >= 0,
    }
    test = tests[op]

    def compared(item: Item) -> bool:
        result = compare(item[attr], bound)
        return result is not None and test(result)

    return compared
