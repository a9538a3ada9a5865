"""Least privilege: each function's role grants named actions on named resources only."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest

from infra.constructs.kill_switch import KILL_SWITCH_PARAMETER_NAME
from infra.constructs.python_function import PythonFunction
from tests.infrastructure.conftest import Synthesized

Grants = dict[str, set[str]]  # resource (logical id or literal) → actions
SWITCH = f"param:{KILL_SWITCH_PARAMETER_NAME}"  # the parameter, by name: the stack does not own it


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
    objects under a prefix, ``*``, ``param:/name`` (the kill-switch, by name)."""
    if resource == "*":
        return "*"
    if isinstance(resource, dict) and set(resource) == {"Ref"}:  # a secret, by its ARN
        return str(resource["Ref"])
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
        tail = parts[-1]
        if ":ssm:" in parts and isinstance(tail, str) and tail.startswith(":parameter/"):
            return f"param:{tail.removeprefix(':parameter')}"
        if parts[0] == "arn:" and all(isinstance(p, str) or "Ref" in p for p in parts):
            # other service ARNs (SageMaker, Lambda): the literal text with <Ref> placeholders
            return "".join(p if isinstance(p, str) else f"<{p['Ref']}>" for p in parts)
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

    # Then it may read/write candle, market-cap, funding/mark, sentiment and withdrawal
    # objects only (no delete, never models/), list the lake, use the state table (watermarks,
    # breaker, the stored universe) and read Binance's read-only keys secret (the signed
    # currency data); nothing on orders, positions, the kill-switch or trading keys
    writes = {"s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"}
    (binance_keys,) = stack.ingestion.read_only_keys.values()
    assert grants == {
        **_common(synthesized, ingest),
        f"{lake}/exchange=*": writes,
        f"{lake}/dataset=market_cap/*": writes,
        f"{lake}/dataset=funding/*": writes,
        f"{lake}/dataset=sentiment/*": writes,
        f"{lake}/dataset=withdrawals/*": writes,
        synthesized.logical_id(binance_keys): {
            "secretsmanager:GetSecretValue",
            "secretsmanager:DescribeSecret",
        },
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

    # Then the lake is read-only (the market data, the agents' funding/mark, sentiment and
    # withdrawal inputs, and the ranking model group's registered artefacts, never another group's), the
    # kill-switch read-only, and each table gets only the calls the DynamoDB adapters make (the
    # registry's versions are read from the state table: GetItem/Query)
    assert grants == {
        **_common(synthesized, scan),
        f"{lake}/exchange=*": {"s3:GetObject"},
        f"{lake}/dataset=market_cap/*": {"s3:GetObject"},
        f"{lake}/dataset=funding/*": {"s3:GetObject"},
        f"{lake}/dataset=sentiment/*": {"s3:GetObject"},
        f"{lake}/dataset=withdrawals/*": {"s3:GetObject"},
        f"{lake}/models/cst-rank/*": {"s3:GetObject"},
        lake: {"s3:ListBucket"},
        SWITCH: {
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
    # EMERGENCY); positions are never deleted
    assert grants == {
        **_common(synthesized, execution),
        f"{lake}/exchange=*": {"s3:GetObject"},
        f"{lake}/dataset=market_cap/*": {"s3:GetObject"},
        lake: {"s3:ListBucket"},
        SWITCH: {
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
        SWITCH: {"ssm:GetParameter"},
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


def _lake_object_grants(grants: Grants, lake: str) -> Grants:
    return {k: v for k, v in grants.items() if k.startswith(f"{lake}/")}


@pytest.mark.parametrize("name", ["drift", "canary"])
def test_drift_and_canary_read_their_prefixes_and_write_only_registry_state(
    synthesized: Synthesized, name: str
) -> None:
    # Given the drift or canary function's role
    stack = synthesized.stack
    construct = {"drift": stack.ml.drift, "canary": stack.ml.canary}[name]
    lake = synthesized.logical_id(stack.lake.bucket)

    # When its lake grants are collected per key prefix
    grants = _lake_object_grants(_grants(synthesized, construct), lake)

    # Then it reads candles, market caps and the registered versions, and writes nothing but
    # each version's state.json: not a model, not the serving code the endpoint runs
    assert grants == {
        f"{lake}/exchange=*": {"s3:GetObject"},
        f"{lake}/dataset=market_cap/*": {"s3:GetObject"},
        f"{lake}/models/cst-daily-ml/*": {"s3:GetObject"},
        f"{lake}/models/cst-daily-ml/*/state.json": {"s3:PutObject"},
    }


def test_no_function_role_may_write_model_artifacts_or_serving_code(
    synthesized: Synthesized,
) -> None:
    # Given every function role of the stack
    lake = synthesized.logical_id(synthesized.stack.lake.bucket)
    functions = [c for c in synthesized.stack.node.find_all() if isinstance(c, PythonFunction)]
    assert len(functions) >= 10

    # Then no role can put an object under models/ other than a version's state.json, and no
    # role holds a whole-bucket object grant
    for construct in functions:
        for key, actions in _grants(synthesized, construct).items():
            if not key.startswith(f"{lake}/"):
                continue
            assert key != f"{lake}/*", construct.node.path
            if "s3:PutObject" in actions and key.startswith(f"{lake}/models/"):
                assert key == f"{lake}/models/cst-daily-ml/*/state.json", construct.node.path


def _statement_resources(document: dict[str, Any], action: str, lake: str) -> set[str]:
    found: set[str] = set()
    for statement in document["Statement"]:
        if action in _as_list(statement["Action"]):
            for resource in _as_list(statement["Resource"]):
                key = _resource_key(resource)
                if key.startswith(f"{lake}/"):
                    found.add(key.removeprefix(f"{lake}/"))
    return found


def test_sagemaker_role_writes_training_output_only(synthesized: Synthesized) -> None:
    # Given the role training jobs and the endpoint run as
    stack = synthesized.stack
    lake = synthesized.logical_id(stack.lake.bucket)
    role_id = synthesized.logical_id(stack.ml.sagemaker_role)
    (policy,) = [
        p["Properties"]["PolicyDocument"]
        for p in synthesized.resources_of_type("AWS::IAM::Policy").values()
        if {"Ref": role_id} in p["Properties"]["Roles"]
    ]

    # Then jobs read their channel and source, the endpoint reads registered versions, and the
    # only write is a job's own output: a job cannot replace a registered model.tar.gz
    assert _statement_resources(policy, "s3:GetObject", lake) == {
        "ml/training/*", "models/code/*", "models/cst-daily-ml/*",
    }  # fmt: skip
    assert _statement_resources(policy, "s3:PutObject", lake) == {"models/training-jobs/*"}


def test_the_training_launcher_policy_writes_its_own_prefixes(synthesized: Synthesized) -> None:
    stack = synthesized.stack
    lake = synthesized.logical_id(stack.lake.bucket)
    document = synthesized.resources[synthesized.logical_id(stack.ml.launcher_policy)][
        "Properties"
    ]["PolicyDocument"]
    assert _statement_resources(document, "s3:PutObject", lake) == {
        "ml/training/*", "models/code/*", "models/cst-daily-ml/*",
    }  # fmt: skip
    assert _statement_resources(document, "s3:GetObject", lake) == {
        "models/training-jobs/*", "models/cst-daily-ml/*",
    }  # fmt: skip


def test_the_lake_prefixes_granted_are_the_ones_the_adapters_write() -> None:
    from datetime import date
    from fnmatch import fnmatchcase

    from cryptosmarttrader.adapters.s3_lake import partition_key
    from cryptosmarttrader.adapters.s3_market_caps import market_cap_key
    from infra.constructs.grants import LAKE_CANDLES, LAKE_MARKET_CAPS

    assert fnmatchcase(partition_key("binance", "1h", "BTC/USDT", date(2024, 1, 1)), LAKE_CANDLES)
    assert fnmatchcase(market_cap_key("coingecko", date(2024, 1, 1)), LAKE_MARKET_CAPS)


def test_only_the_ingest_function_may_read_the_read_only_keys(synthesized: Synthesized) -> None:
    # Given the read-only keys secret and every function of the stack
    stack = synthesized.stack
    (secret,) = stack.ingestion.read_only_keys.values()
    secret_id = synthesized.logical_id(secret)
    functions = [c for c in stack.node.find_all() if isinstance(c, PythonFunction)]

    # When each role's grants are collected
    readers = {f.node.path for f in functions if secret_id in _grants(synthesized, f)}

    # Then the ingest function alone may read it, and it gets the secret's ARN, never a value
    assert readers == {stack.ingestion.lambda_.node.path}
    (function,) = [
        r
        for r in synthesized.resources_of_type("AWS::Lambda::Function").values()
        if "CST_READ_ONLY_SECRETS" in r["Properties"]["Environment"]["Variables"]
    ]
    variable = function["Properties"]["Environment"]["Variables"]["CST_READ_ONLY_SECRETS"]
    assert {"Ref": secret_id} in variable["Fn::Join"][1]
    assert "api_key" not in str(variable)


def test_the_agent_input_prefixes_granted_are_the_ones_the_adapters_write() -> None:
    from datetime import date
    from fnmatch import fnmatchcase

    from cryptosmarttrader.adapters.s3_agent_inputs import withdrawals_key
    from infra.constructs.grants import LAKE_AGENT_INPUTS

    key = withdrawals_key("binance", date(2024, 1, 1))
    assert any(fnmatchcase(key, prefix) for prefix in LAKE_AGENT_INPUTS)
