"""Least privilege: each function's role grants named actions on named resources only."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest

from infra.constructs.python_function import PythonFunction
from tests.infrastructure.conftest import Synthesized

Grants = dict[str, set[str]]  # resource (logical id or literal) → actions


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# the scan and the execution cycle query the open-orders index (CDK grants a table's actions on
# its indexes too, as <table>/index/*)
ORDERS_WITH_OPEN_INDEX = {
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:Scan",
    "dynamodb:Query",
}


def _resource_key(resource: Any) -> str:
    """``Table`` for GetAtt Table.Arn, ``Bucket/*`` for its objects, ``Bucket/prefix=*`` for the
    objects under a prefix, ``*``, ``param:Name``."""
    if resource == "*":
        return "*"
    if isinstance(resource, dict) and "Fn::GetAtt" in resource:
        return str(resource["Fn::GetAtt"][0])
    if isinstance(resource, dict) and "Fn::Join" in resource:
        parts = resource["Fn::Join"][1]
        if (
            len(parts) == 2
            and isinstance(parts[0], dict)
            and "Fn::GetAtt" in parts[0]
            and isinstance(parts[1], str)
            and parts[1].startswith("/")
        ):
            return f"{parts[0]['Fn::GetAtt'][0]}{parts[1]}"
        refs = [p["Ref"] for p in parts if isinstance(p, dict) and "Ref" in p]
        if ":ssm:" in parts and refs:
            return f"param:{refs[-1]}"
    raise AssertionError(f"unexpected resource shape in a function policy: {resource!r}")


def _grants(synthesized: Synthesized, construct: PythonFunction) -> Grants:
    role_id = synthesized.logical_id(construct.role)
    grants: Grants = defaultdict(set)
    for policy in synthesized.resources_of_type("AWS::IAM::Policy").values():
        if {"Ref": role_id} not in policy["Properties"]["Roles"]:
            continue
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            assert statement["Effect"] == "Allow"
            for resource in _as_list(statement["Resource"]):
                grants[_resource_key(resource)].update(_as_list(statement["Action"]))
    return dict(grants)


def _common(synthesized: Synthesized, construct: PythonFunction) -> Grants:
    return {
        synthesized.logical_id(construct.log_group): {"logs:CreateLogStream", "logs:PutLogEvents"},
        "*": {"xray:PutTraceSegments", "xray:PutTelemetryRecords"},
        synthesized.logical_id(construct.dead_letter_queue): {
            "sqs:SendMessage",
            "sqs:GetQueueAttributes",
            "sqs:GetQueueUrl",
        },
    }


def test_ingest_role_grants_exactly_lake_objects_and_state(synthesized: Synthesized) -> None:
    # Given the ingest function's role
    stack = synthesized.stack
    ingest = stack.ingestion.lambda_
    lake = synthesized.logical_id(stack.lake.bucket)

    # When its policies are collected per resource
    grants = _grants(synthesized, ingest)

    # Then it may read/write lake objects (no delete), list the lake, and use the state table;
    # nothing on orders, positions, idempotency or the kill-switch
    assert grants == {
        **_common(synthesized, ingest),
        f"{lake}/*": {"s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"},
        lake: {"s3:ListBucket"},
        synthesized.logical_id(stack.tables.state): {
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:Query",
        },
    }


def test_scan_role_grants_exactly_its_reads_and_order_state(synthesized: Synthesized) -> None:
    # Given the scan function's role
    stack = synthesized.stack
    scan = stack.scan.lambda_
    lake = synthesized.logical_id(stack.lake.bucket)
    tables = stack.tables

    # When its policies are collected per resource
    grants = _grants(synthesized, scan)

    # Then the lake is read-only, the kill-switch read-only, and each table gets only the
    # calls the DynamoDB adapters make
    assert grants == {
        **_common(synthesized, scan),
        f"{lake}/*": {"s3:GetObject"},
        lake: {"s3:ListBucket"},
        f"param:{synthesized.logical_id(stack.kill_switch.parameter)}": {
            "ssm:DescribeParameters",
            "ssm:GetParameter",
            "ssm:GetParameters",
            "ssm:GetParameterHistory",
        },
        synthesized.logical_id(tables.orders): ORDERS_WITH_OPEN_INDEX,
        f"{synthesized.logical_id(tables.orders)}/index/*": ORDERS_WITH_OPEN_INDEX,
        synthesized.logical_id(tables.positions): {
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:DeleteItem",
            "dynamodb:Scan",
        },
        synthesized.logical_id(tables.idempotency): {
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
            "dynamodb:DeleteItem",
        },
        synthesized.logical_id(tables.state): {
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:Query",
        },
    }


def test_execution_role_grants_its_reads_order_state_and_the_kill_switch(
    synthesized: Synthesized,
) -> None:
    # Given the execution function's role
    stack = synthesized.stack
    execution = stack.execution.lambda_
    lake = synthesized.logical_id(stack.lake.bucket)
    tables = stack.tables

    # When its policies are collected per resource
    grants = _grants(synthesized, execution)

    # Then the lake is read-only; it may set the kill-switch (the RiskGuard turns it on at
    # EMERGENCY); positions are never deleted and idempotency keys never released
    assert grants == {
        **_common(synthesized, execution),
        f"{lake}/*": {"s3:GetObject"},
        lake: {"s3:ListBucket"},
        f"param:{synthesized.logical_id(stack.kill_switch.parameter)}": {
            "ssm:DescribeParameters",
            "ssm:GetParameter",
            "ssm:GetParameters",
            "ssm:GetParameterHistory",
            "ssm:PutParameter",
        },
        synthesized.logical_id(tables.orders): ORDERS_WITH_OPEN_INDEX,
        f"{synthesized.logical_id(tables.orders)}/index/*": ORDERS_WITH_OPEN_INDEX,
        synthesized.logical_id(tables.positions): {
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:Scan",
        },
        synthesized.logical_id(tables.idempotency): {
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:UpdateItem",
        },
        synthesized.logical_id(tables.state): {
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:Query",
        },
    }


def test_health_probe_role_grants_exactly_its_three_reads(synthesized: Synthesized) -> None:
    # Given the health probe's role
    stack = synthesized.stack
    probe = stack.probe.lambda_

    # When its policies are collected per resource
    grants = _grants(synthesized, probe)

    # Then it may make the probe's three calls and nothing else: no lake object, no write,
    # no other table
    assert grants == {
        **_common(synthesized, probe),
        synthesized.logical_id(stack.lake.bucket): {"s3:ListBucket"},
        f"param:{synthesized.logical_id(stack.kill_switch.parameter)}": {"ssm:GetParameter"},
        synthesized.logical_id(stack.tables.state): {"dynamodb:GetItem"},
    }


@pytest.mark.parametrize("name", ["ingest", "scan", "execution", "health_probe"])
def test_roles_have_no_managed_policies_and_trust_only_lambda(
    synthesized: Synthesized, name: str
) -> None:
    # Given a function role
    stack = synthesized.stack
    construct = {
        "ingest": stack.ingestion.lambda_,
        "scan": stack.scan.lambda_,
        "execution": stack.execution.lambda_,
        "health_probe": stack.probe.lambda_,
    }[name]
    role = synthesized.resources[synthesized.logical_id(construct.role)]["Properties"]

    # Then no AWS-managed policy widens it and only Lambda can assume it
    assert "ManagedPolicyArns" not in role
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "lambda.amazonaws.com"}
    assert trust["Action"] == "sts:AssumeRole"


def test_no_identity_policy_uses_an_action_wildcard(synthesized: Synthesized) -> None:
    # Given every identity policy of the stack
    actions = [
        action
        for policy in synthesized.resources_of_type("AWS::IAM::Policy").values()
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        for action in _as_list(statement["Action"])
    ]

    # Then every action is spelled out
    assert actions
    assert [a for a in actions if "*" in a] == []
