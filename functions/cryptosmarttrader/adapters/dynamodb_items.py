"""DynamoDB's item format and its error: the one codec every DynamoDB adapter shares.

Kept apart from :mod:`cryptosmarttrader.adapters.dynamodb_store` (orders, positions, state) so a
writer that needs only the codec (the audit trail of the alarm → kill-switch Lambda) does not
import the domain's aggregates with it.

Money is stored as DynamoDB numbers built from ``Decimal``; a float is converted exactly through
its shortest ``repr`` (``0.1`` → ``Decimal("0.1")``), never through binary expansion, and NaN or
infinity is rejected.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

__all__ = [
    "CONDITION_FAILED",
    "StoreError",
    "error_code",
    "from_item",
    "is_condition_failure",
    "to_item",
]

CONDITION_FAILED = "ConditionalCheckFailedException"
_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


class StoreError(RuntimeError):
    """A DynamoDB call failed for a reason other than a failed condition."""

    def __init__(self, operation: str, table: str, key: Mapping[str, object], cause: Exception):
        self.operation = operation
        self.table = table
        self.key = dict(key)
        code = error_code(cause) or type(cause).__name__
        super().__init__(
            f"DynamoDB {operation} on table {table!r} key {self.key!r} failed: {code}: {cause}"
        )


def error_code(exc: Exception) -> str | None:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return None


def is_condition_failure(exc: Exception) -> bool:
    return error_code(exc) == CONDITION_FAILED


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
