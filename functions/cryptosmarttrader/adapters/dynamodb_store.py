"""DynamoDB adapters: idempotency claims, orders, positions and the generic state table.

The only module that knows DynamoDB's item format. Every write that must not be lost or doubled
is a conditional write; a ``ConditionalCheckFailedException`` is the expected "someone else got
there first" answer and becomes ``False``. Any other error propagates as :class:`StoreError`
naming the table and key.

Money is stored as DynamoDB numbers built from ``Decimal``; a float is converted exactly through
its shortest ``repr`` (``0.1`` → ``Decimal("0.1")``), never through binary expansion, and NaN or
infinity is rejected.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError

from cryptosmarttrader.domain.orders import OrderStatus, transition

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

__all__ = [
    "DynamoIdempotencyStore",
    "DynamoOrderStore",
    "DynamoPositionStore",
    "DynamoStateStore",
    "StoreError",
    "from_item",
    "to_item",
]

_CONDITION_FAILED = "ConditionalCheckFailedException"
_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


class StoreError(RuntimeError):
    """A DynamoDB call failed for a reason other than a failed condition."""

    def __init__(self, operation: str, table: str, key: Mapping[str, object], cause: Exception):
        self.operation = operation
        self.table = table
        self.key = dict(key)
        code = _error_code(cause) or type(cause).__name__
        super().__init__(
            f"DynamoDB {operation} on table {table!r} key {self.key!r} failed: {code}: {cause}"
        )


def _error_code(exc: Exception) -> str | None:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return None


def _is_condition_failure(exc: Exception) -> bool:
    return _error_code(exc) == _CONDITION_FAILED


def _exact(value: Any) -> Any:
    """Convert floats exactly via ``repr`` and recurse into containers; reject NaN / infinity."""
    if isinstance(value, bool):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot store non-finite number {value!r}")
        return Decimal(repr(value))
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"cannot store non-finite number {value!r}")
        return value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: store timezone-aware UTC only")
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _exact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_exact(v) for v in value]
    return value


def to_item(data: Mapping[str, Any]) -> dict[str, AttributeValueTypeDef]:
    """Python mapping → DynamoDB item (``None`` values are dropped)."""
    return {k: _serializer.serialize(_exact(v)) for k, v in data.items() if v is not None}


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """DynamoDB item → Python dict (numbers come back as ``Decimal``)."""
    return {k: _deserializer.deserialize(v) for k, v in item.items()}


def _scan_all(client: DynamoDBClient, table: str) -> Iterator[dict[str, Any]]:
    try:
        for page in client.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
            for item in page.get("Items", []):
                yield from_item(item)
    except ClientError as exc:
        raise StoreError("scan", table, {}, exc) from exc


class DynamoIdempotencyStore:
    """Claims on keys for a limited time (table pk ``id``, TTL attribute ``expiration``).

    DynamoDB deletes expired items lazily (up to days later), so expiry is enforced by the
    write condition itself: a claim succeeds if the item is absent or its ``expiration`` is in
    the past.
    """

    def __init__(self, table_name: str, client: DynamoDBClient) -> None:
        self._table = table_name
        self._client = client

    def claim(self, key: str, now: datetime, ttl_seconds: int) -> bool:
        if not key:
            raise ValueError("idempotency key must be non-empty")
        if ttl_seconds <= 0:
            raise ValueError(f"ttl_seconds must be > 0, got {ttl_seconds}")
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware UTC")
        now_s = int(now.timestamp())
        try:
            self._client.put_item(
                TableName=self._table,
                Item={
                    "id": {"S": key},
                    "expiration": {"N": str(now_s + ttl_seconds)},
                    "claimed_at": {"S": now.isoformat()},
                },
                ConditionExpression="attribute_not_exists(#id) OR #exp <= :now",
                ExpressionAttributeNames={"#id": "id", "#exp": "expiration"},
                ExpressionAttributeValues={":now": {"N": str(now_s)}},
            )
        except (ClientError, BotoCoreError) as exc:
            if _is_condition_failure(exc):
                return False
            raise StoreError("put_item(claim)", self._table, {"id": key}, exc) from exc
        return True

    def release(self, key: str) -> None:
        """Drop a claim (e.g. the guarded work failed before any side effect)."""
        try:
            self._client.delete_item(TableName=self._table, Key={"id": {"S": key}})
        except (ClientError, BotoCoreError) as exc:
            raise StoreError("delete_item", self._table, {"id": key}, exc) from exc


class DynamoOrderStore:
    """Orders keyed by ``client_order_id``; inserts are exactly-once, status moves are guarded."""

    def __init__(self, table_name: str, client: DynamoDBClient) -> None:
        self._table = table_name
        self._client = client

    def put_new(self, order: Mapping[str, Any]) -> bool:
        coid = order.get("client_order_id")
        if not isinstance(coid, str) or not coid:
            raise ValueError("order needs a non-empty string client_order_id")
        try:
            status = OrderStatus(str(order.get("status")))
        except ValueError as exc:
            raise ValueError(f"order {coid} has no valid status: {order.get('status')!r}") from exc
        item = to_item({**order, "status": status.value})
        try:
            self._client.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression="attribute_not_exists(client_order_id)",
            )
        except (ClientError, BotoCoreError) as exc:
            if _is_condition_failure(exc):
                return False
            raise StoreError("put_item", self._table, {"client_order_id": coid}, exc) from exc
        return True

    def get(self, client_order_id: str) -> dict[str, Any] | None:
        try:
            resp = self._client.get_item(
                TableName=self._table,
                Key={"client_order_id": {"S": client_order_id}},
                ConsistentRead=True,
            )
        except (ClientError, BotoCoreError) as exc:
            raise StoreError(
                "get_item", self._table, {"client_order_id": client_order_id}, exc
            ) from exc
        item = resp.get("Item")
        return from_item(item) if item else None

    def list_orders(self) -> list[dict[str, Any]]:
        return sorted(_scan_all(self._client, self._table), key=lambda o: str(o["client_order_id"]))

    def update_status(
        self,
        client_order_id: str,
        expected: OrderStatus,
        new: OrderStatus,
        *,
        at: datetime | None = None,
        fields: Mapping[str, Any] | None = None,
    ) -> bool:
        """Move ``expected`` → ``new`` if legal (else :class:`IllegalTransitionError`).

        False (nothing written) if the stored status is not ``expected`` or the order is missing.
        ``fields`` are extra attributes written in the same update (fills, exchange order id).
        """
        transition(expected, new)
        names: dict[str, str] = {"#s": "status", "#id": "client_order_id"}
        values: dict[str, Any] = {":expected": expected.value, ":new": new.value}
        sets = ["#s = :new"]
        extra = dict(fields or {})
        if at is not None:
            extra["updated_at"] = at
        for i, (name, value) in enumerate(sorted(extra.items())):
            if name in {"client_order_id", "status"}:
                raise ValueError(f"field {name!r} cannot be set through update_status")
            names[f"#f{i}"] = name
            values[f":f{i}"] = value
            sets.append(f"#f{i} = :f{i}")
        try:
            self._client.update_item(
                TableName=self._table,
                Key={"client_order_id": {"S": client_order_id}},
                UpdateExpression="SET " + ", ".join(sets),
                ConditionExpression="attribute_exists(#id) AND #s = :expected",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=to_item(values),
            )
        except (ClientError, BotoCoreError) as exc:
            if _is_condition_failure(exc):
                return False
            raise StoreError(
                "update_item(status)", self._table, {"client_order_id": client_order_id}, exc
            ) from exc
        return True


class DynamoPositionStore:
    """Positions keyed by ``symbol`` with an optimistic ``version`` counter."""

    def __init__(self, table_name: str, client: DynamoDBClient) -> None:
        self._table = table_name
        self._client = client

    def get_all(self) -> dict[str, dict[str, Any]]:
        return {str(p["symbol"]): p for p in _scan_all(self._client, self._table)}

    def get(self, symbol: str) -> dict[str, Any] | None:
        try:
            resp = self._client.get_item(
                TableName=self._table, Key={"symbol": {"S": symbol}}, ConsistentRead=True
            )
        except (ClientError, BotoCoreError) as exc:
            raise StoreError("get_item", self._table, {"symbol": symbol}, exc) from exc
        item = resp.get("Item")
        return from_item(item) if item else None

    def upsert(self, position: Mapping[str, Any], expected_version: int | None) -> bool:
        """Write ``position`` with ``version = expected_version + 1`` (1 for a new position).

        ``expected_version=None`` means "must not exist yet". False (nothing written) if the
        stored version differs: re-read and retry.
        """
        symbol = position.get("symbol")
        if not isinstance(symbol, str) or not symbol:
            raise ValueError("position needs a non-empty string symbol")
        new_version = 1 if expected_version is None else expected_version + 1
        item = to_item({**position, "version": new_version})
        if expected_version is None:
            condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(symbol)"}
        else:
            condition = {
                "ConditionExpression": "#v = :v",
                "ExpressionAttributeNames": {"#v": "version"},
                "ExpressionAttributeValues": {":v": {"N": str(expected_version)}},
            }
        try:
            self._client.put_item(TableName=self._table, Item=item, **condition)
        except (ClientError, BotoCoreError) as exc:
            if _is_condition_failure(exc):
                return False
            raise StoreError("put_item", self._table, {"symbol": symbol}, exc) from exc
        return True

    def delete(self, symbol: str, expected_version: int) -> bool:
        try:
            self._client.delete_item(
                TableName=self._table,
                Key={"symbol": {"S": symbol}},
                ConditionExpression="#v = :v",
                ExpressionAttributeNames={"#v": "version"},
                ExpressionAttributeValues={":v": {"N": str(expected_version)}},
            )
        except (ClientError, BotoCoreError) as exc:
            if _is_condition_failure(exc):
                return False
            raise StoreError("delete_item", self._table, {"symbol": symbol}, exc) from exc
        return True


class DynamoStateStore:
    """Small state records under (pk, sk): watermarks, breakers, risk transitions, audit."""

    def __init__(self, table_name: str, client: DynamoDBClient) -> None:
        self._table = table_name
        self._client = client

    def put(self, pk: str, sk: str, item: Mapping[str, Any]) -> None:
        if "pk" in item or "sk" in item:
            raise ValueError("item must not carry its own pk/sk")
        try:
            self._client.put_item(TableName=self._table, Item=to_item({**item, "pk": pk, "sk": sk}))
        except (ClientError, BotoCoreError) as exc:
            raise StoreError("put_item", self._table, {"pk": pk, "sk": sk}, exc) from exc

    def put_new(self, pk: str, sk: str, item: Mapping[str, Any]) -> bool:
        """Insert if (pk, sk) is absent; False (nothing written) if it exists."""
        return self._conditional_put(
            pk, sk, item, {"ConditionExpression": "attribute_not_exists(pk)"}
        )

    def put_if(self, pk: str, sk: str, item: Mapping[str, Any], field: str, expected: str) -> bool:
        """Overwrite if the stored ``field`` equals ``expected``; False (nothing written) if not."""
        return self._conditional_put(
            pk,
            sk,
            item,
            {
                "ConditionExpression": "#f = :expected",
                "ExpressionAttributeNames": {"#f": field},
                "ExpressionAttributeValues": {":expected": {"S": expected}},
            },
        )

    def put_versioned(
        self, pk: str, sk: str, item: Mapping[str, Any], expected_version: int
    ) -> bool:
        """Optimistic write: store ``item`` with ``version = expected_version + 1`` if the stored
        ``version`` is ``expected_version`` (0: the item, or its version, is absent); False
        (nothing written) if another writer got there first."""
        if expected_version < 0:
            raise ValueError(f"expected_version must be >= 0, got {expected_version}")
        condition: dict[str, Any] = {"ExpressionAttributeNames": {"#v": "version"}}
        if expected_version == 0:
            condition["ConditionExpression"] = "attribute_not_exists(#v)"
        else:
            condition["ConditionExpression"] = "#v = :v"
            condition["ExpressionAttributeValues"] = {":v": {"N": str(expected_version)}}
        return self._conditional_put(pk, sk, {**item, "version": expected_version + 1}, condition)

    def _conditional_put(
        self, pk: str, sk: str, item: Mapping[str, Any], condition: Mapping[str, Any]
    ) -> bool:
        if "pk" in item or "sk" in item:
            raise ValueError("item must not carry its own pk/sk")
        try:
            self._client.put_item(
                TableName=self._table, Item=to_item({**item, "pk": pk, "sk": sk}), **condition
            )
        except (ClientError, BotoCoreError) as exc:
            if _is_condition_failure(exc):
                return False
            raise StoreError("put_item", self._table, {"pk": pk, "sk": sk}, exc) from exc
        return True

    def get(self, pk: str, sk: str) -> dict[str, Any] | None:
        try:
            resp = self._client.get_item(
                TableName=self._table,
                Key={"pk": {"S": pk}, "sk": {"S": sk}},
                ConsistentRead=True,
            )
        except (ClientError, BotoCoreError) as exc:
            raise StoreError("get_item", self._table, {"pk": pk, "sk": sk}, exc) from exc
        item = resp.get("Item")
        if not item:
            return None
        data = from_item(item)
        data.pop("pk", None)
        data.pop("sk", None)
        return data

    def query(self, pk: str) -> list[dict[str, Any]]:
        """All items under ``pk``, ascending by ``sk`` (each dict includes its ``sk``)."""
        out: list[dict[str, Any]] = []
        try:
            pages = self._client.get_paginator("query").paginate(
                TableName=self._table,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": pk}},
                ConsistentRead=True,
            )
            for page in pages:
                for item in page.get("Items", []):
                    data = from_item(item)
                    data.pop("pk", None)
                    out.append(data)
        except (ClientError, BotoCoreError) as exc:
            raise StoreError("query", self._table, {"pk": pk}, exc) from exc
        return out
