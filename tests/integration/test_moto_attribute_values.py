"""moto's DynamoDB answers with item values passed through (fast_moto_attribute_values): the same
bytes as moto's own serializer for every attribute type, without its per-member look-ups."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core import serialize

from cst_devtools.local_aws import fast_moto_attribute_values

ITEM: dict[str, Any] = {
    "pk": {"S": "a"},
    "n": {"N": "1.50"},
    "b": {"B": b"\x00\x01"},
    "ss": {"SS": ["x", "y"]},
    "ns": {"NS": ["1", "2"]},
    "bs": {"BS": [b"a", b"b"]},
    "m": {"M": {"k": {"S": "v"}, "z": {"NULL": True}, "l": {"L": [{"N": "3"}, {"BOOL": False}]}}},
    "empty": {"M": {}},
    "l": {"L": []},
    "t": {"BOOL": True},
    "e": {"S": ""},
    "u": {"S": "Börse ✓"},
    "nested_binary": {"M": {"bin": {"B": b"zz"}}},
}


@pytest.fixture
def bodies(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The JSON body of every answer moto serializes."""
    for key, value in {"AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t"}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    fast_moto_attribute_values()
    seen: list[str] = []
    encode = serialize.BaseJSONSerializer._serialize_body

    def recording(self: Any, body: Any) -> str:
        seen.append(encode(self, body))
        return seen[-1]

    monkeypatch.setattr(serialize.BaseJSONSerializer, "_serialize_body", recording)
    return seen


def _item_calls(items: list[dict[str, Any]]) -> list[Any]:
    """Every item call's answer on a fresh table (describe calls left out: they carry times)."""
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(
            TableName="t",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        for item in items:
            client.put_item(TableName="t", Item=item)
        keys = [{"pk": item["pk"]} for item in items]
        return [
            *(client.get_item(TableName="t", Key=key)["Item"] for key in keys),
            client.scan(TableName="t")["Items"],
            client.query(
                TableName="t",
                KeyConditionExpression="pk = :p",
                ExpressionAttributeValues={":p": keys[0]["pk"]},
            )["Items"],
            client.update_item(
                TableName="t",
                Key=keys[0],
                UpdateExpression="SET x = :x",
                ExpressionAttributeValues={":x": {"L": [{"S": "q"}, {"M": {"n": {"N": "1"}}}]}},
                ReturnValues="ALL_NEW",
            )["Attributes"],
            client.batch_get_item(RequestItems={"t": {"Keys": keys}})["Responses"],
            client.delete_item(TableName="t", Key=keys[0], ReturnValues="ALL_OLD")["Attributes"],
        ]


def test_item_answers_are_the_bytes_moto_s_own_serializer_writes(
    bodies: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given items of every attribute type, binary ones included (left to moto's serializer)
    items = [ITEM, {k: v for k, v in ITEM.items() if "b" not in k} | {"pk": {"S": "b"}}]

    # When the same calls are answered with the values passed through, then by moto alone
    fast = _item_calls(items)
    fast_bodies = [b for b in bodies if '"Table' not in b]
    bodies.clear()
    current = serialize.BaseJSONSerializer._serialize_type_structure
    monkeypatch.setattr(
        serialize.BaseJSONSerializer, "_serialize_type_structure", current._cst_original
    )
    own = _item_calls(items)
    own_bodies = [b for b in bodies if '"Table' not in b]

    # Then every body is byte for byte the same, and the client reads back what was written
    assert fast_bodies and fast_bodies == own_bodies
    assert fast == own
    assert fast[0] == ITEM


def test_the_member_look_ups_do_not_grow_with_an_item_s_attributes(
    bodies: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given moto's attribute picker, counted
    calls = []
    pick = serialize.XFormedAttributePicker.__call__

    def counting(self: Any, context: Any) -> Any:
        calls.append(context.key)
        return pick(self, context)

    monkeypatch.setattr(serialize.XFormedAttributePicker, "__call__", counting)

    # When an item of one attribute and one of forty are read
    looked_up = []
    for width in (1, 40):
        item = {"pk": {"S": "k"}} | {f"a{i}": {"S": "v"} for i in range(width - 1)}
        calls.clear()
        _item_calls([item])
        looked_up.append(len(calls))

    # Then the serializer looked up as many members for both: their values were passed through
    assert looked_up[0] == looked_up[1], looked_up
