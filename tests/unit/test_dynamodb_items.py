"""The DynamoDB item codec encodes and decodes exactly as boto3's ``TypeSerializer`` and
``TypeDeserializer``, without importing boto3 for the attribute types the system writes."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from boto3.dynamodb.types import Binary, TypeDeserializer, TypeSerializer

from cryptosmarttrader.adapters.dynamodb_items import deserialize, from_item, serialize, to_item
from tests.support.fresh_interpreter import run_fresh

VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    -7,
    10**37,
    Decimal("0.1"),
    Decimal("-123.456E-10"),
    Decimal("1E+126"),
    "",
    "kill-switch on: é ✓",
    {},
    [],
    (),
    {"a": 1, "b": [Decimal("2.5"), "x", None, {"c": False}], "d": {"e": ()}},
    [1, [2, [3, {"n": None}]]],
    {"k1", "k2"},
    {1, Decimal("2.5")},
    set(),
    b"\x00\x01",
    bytearray(b"ab"),
    Binary(b"z"),
    {b"a", b"b"},
    {"nested": {"s": {"x"}, "b": b"y"}},
]
REFUSED: list[Any] = [
    1.5,
    Decimal("NaN"),
    Decimal("Infinity"),
    Decimal("1.00000000000000000000000000000000000001"),  # 39 digits: inexact
    10**40 + 1,
    object(),
    {"a": 0.5},
    [Decimal("NaN")],
]


def _ids(values: list[Any]) -> list[str]:
    """Stable test ids (a set's repr or an object's address differs between workers)."""
    return [f"{i}-{type(v).__name__}" for i, v in enumerate(values)]


@pytest.mark.parametrize("value", VALUES, ids=_ids(VALUES))
def test_each_attribute_value_is_boto3s_both_ways(value: Any) -> None:
    # Given a value of every attribute type
    expected = TypeSerializer().serialize(value)

    # When encoded, and the result decoded
    encoded = serialize(value)
    decoded = deserialize(encoded)

    # Then both equal boto3's, types included
    assert encoded == expected
    assert type(encoded) is type(expected)
    reference = TypeDeserializer().deserialize(expected)
    assert decoded == reference
    assert type(decoded) is type(reference)


@pytest.mark.parametrize("value", REFUSED, ids=_ids(REFUSED))
def test_a_value_boto3_refuses_is_refused_with_the_same_error(value: Any) -> None:
    # Given a value boto3 cannot encode
    with pytest.raises(Exception) as boto3_error:  # compared below
        TypeSerializer().serialize(value)

    # When encoded here, then the same error type and message
    with pytest.raises(type(boto3_error.value)) as error:
        serialize(value)
    assert str(error.value) == str(boto3_error.value)


def test_items_round_trip_and_money_stays_exact() -> None:
    # Given an item with money, a float, nested values and a None attribute
    item = to_item({"pk": "AUDIT", "qty": Decimal("0.00012345"), "px": 0.1, "d": {"x": [1]},
                    "gone": None})  # fmt: skip

    # Then the None attribute is dropped, the float is stored as its repr, and it reads back
    assert item == {"pk": {"S": "AUDIT"}, "qty": {"N": "0.00012345"}, "px": {"N": "0.1"},
                    "d": {"M": {"x": {"L": [{"N": "1"}]}}}}  # fmt: skip
    assert from_item(item) == {"pk": "AUDIT", "qty": Decimal("0.00012345"),
                               "px": Decimal("0.1"), "d": {"x": [Decimal(1)]}}  # fmt: skip


def test_encoding_what_the_system_writes_does_not_import_boto3() -> None:
    # Given a fresh interpreter that encodes and decodes an audit-like item
    code = (
        "from decimal import Decimal\n"
        "from cryptosmarttrader.adapters.dynamodb_items import from_item, to_item\n"
        "from_item(to_item({'pk': 'AUDIT', 'n': Decimal('1.5'), 'm': {'l': [None, True]}}))"
    )
    done = run_fresh(code, ["boto3"])

    # Then boto3 was never imported (botocore's errors only)
    assert done.loaded == []
