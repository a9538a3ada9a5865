"""DynamoDB's item format and its error: the one codec every DynamoDB adapter shares.

Kept apart from :mod:`cryptosmarttrader.adapters.dynamodb_store` (orders, positions, state) so a
writer that needs only the codec (the audit trail of the alarm → kill-switch Lambda) does not
import the domain's aggregates with it.

Money is stored as DynamoDB numbers built from ``Decimal``; a float is converted exactly through
its shortest ``repr`` (``0.1`` → ``Decimal("0.1")``), never through binary expansion, and NaN or
infinity is rejected.

The codec is boto3's (``boto3.dynamodb.types``): the same attribute values both ways, with
its number context (38 digits, inexact or rounded numbers refused). Strings, numbers, booleans,
nulls, maps and lists — every item this system writes — are encoded here with boto3's rules,
so a function that only writes such items (the alarm → kill-switch) never imports boto3: its
import is 0.15x ``import boto3`` of the kill-switch's cold start (``bench/
bench_cold_import.py``), which builds its two clients with botocore. Sets, binary values, floats
and anything else go to boto3's own serializer and deserializer, imported on that first use.
A test checks both directions equal boto3's on every attribute type.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from decimal import Clamped, Context, Decimal, Inexact, Overflow, Rounded, Underflow
from functools import cache
from typing import TYPE_CHECKING, Any

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
# boto3.dynamodb.types.DYNAMODB_CONTEXT
_NUMBER_CONTEXT = Context(
    Emin=-128, Emax=126, prec=38, traps=[Clamped, Overflow, Inexact, Rounded, Underflow]
)


@cache
def _boto3_codec() -> tuple[Any, Any]:
    """boto3's codec, for the attribute types not encoded here (imports boto3: first use only)."""
    from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

    return TypeSerializer(), TypeDeserializer()


def serialize(value: Any) -> dict[str, Any]:
    """One Python value → its DynamoDB attribute value, as ``TypeSerializer().serialize``."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | Decimal):
        number = str(_NUMBER_CONTEXT.create_decimal(value))
        if number in ("Infinity", "NaN"):
            raise TypeError("Infinity and NaN not supported")
        return {"N": number}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, Mapping):
        return {"M": {k: serialize(v) for k, v in value.items()}}
    if isinstance(value, list | tuple):
        return {"L": [serialize(v) for v in value]}
    return _boto3_codec()[0].serialize(value)  # type: ignore[no-any-return]


def deserialize(value: Mapping[str, Any]) -> Any:
    """One DynamoDB attribute value → Python, as ``TypeDeserializer().deserialize``."""
    kind = next(iter(value), None)
    if kind == "NULL":
        return None
    if kind in ("BOOL", "S"):
        return value[kind]
    if kind == "N":
        return _NUMBER_CONTEXT.create_decimal(value["N"])
    if kind == "M":
        return {k: deserialize(v) for k, v in value["M"].items()}
    if kind == "L":
        return [deserialize(v) for v in value["L"]]
    return _boto3_codec()[1].deserialize(value)


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
    return {k: serialize(_exact(v)) for k, v in data.items() if v is not None}  # type: ignore[misc]


def from_item(item: Mapping[str, Any]) -> dict[str, Any]:
    """DynamoDB item → Python dict (numbers come back as ``Decimal``)."""
    return {k: deserialize(v) for k, v in item.items()}
