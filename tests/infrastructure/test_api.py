"""API Gateway: authentication per method, usage plan, validation, logs; the API function's role."""

from __future__ import annotations

from typing import Any

from infra.constructs.api import (
    BURST_LIMIT,
    DAILY_QUOTA,
    KILLSWITCH_BURST_LIMIT,
    KILLSWITCH_DAILY_QUOTA,
    KILLSWITCH_RATE_LIMIT_RPS,
    RATE_LIMIT_RPS,
)
from tests.infrastructure.conftest import Synthesized
from tests.infrastructure.test_iam import SWITCH, _common, _grants


def _methods(synthesized: Synthesized) -> dict[str, dict[str, Any]]:
    paths: dict[str, str] = {}
    resources = synthesized.resources_of_type("AWS::ApiGateway::Resource")

    def full_path(logical_id: str) -> str:
        props = resources[logical_id]["Properties"]
        parent = props["ParentId"]
        prefix = full_path(parent["Ref"]) if "Ref" in parent else ""
        return f"{prefix}/{props['PathPart']}"

    for logical_id in resources:
        paths[logical_id] = full_path(logical_id)
    return {
        f"{m['Properties']['HttpMethod']} {paths[m['Properties']['ResourceId']['Ref']]}": m[
            "Properties"
        ]
        for m in synthesized.resources_of_type("AWS::ApiGateway::Method").values()
    }


def test_every_method_needs_an_api_key_and_the_kill_switch_needs_iam(
    synthesized: Synthesized,
) -> None:
    methods = _methods(synthesized)

    assert set(methods) == {
        "GET /health",
        "GET /api/v1/market/overview",
        "GET /api/v1/signals",
        "GET /api/v1/positions",
        "GET /api/v1/risk",
        "POST /api/v1/killswitch",
    }
    for name, props in methods.items():
        assert props["ApiKeyRequired"] is True, name
        assert "RequestValidatorId" in props, name
        assert props["Integration"]["Type"] == "AWS_PROXY", name
        expected = "AWS_IAM" if name.startswith("POST") else "NONE"
        assert props["AuthorizationType"] == expected, name


def _plans(synthesized: Synthesized) -> dict[str, dict[str, Any]]:
    api = synthesized.stack.api
    return {
        "reads": synthesized.resources[synthesized.logical_id(api.rest_api.node.find_child(
            "UsagePlan"))]["Properties"],
        "killswitch": synthesized.resources[synthesized.logical_id(api.killswitch_plan)][
            "Properties"],
    }  # fmt: skip


def test_usage_plan_throttles_and_limits_the_key(synthesized: Synthesized) -> None:
    plans = synthesized.resources_of_type("AWS::ApiGateway::UsagePlan")
    assert len(plans) == 2
    props = _plans(synthesized)["reads"]
    assert props["Throttle"] == {"RateLimit": RATE_LIMIT_RPS, "BurstLimit": BURST_LIMIT}
    assert props["Quota"] == {"Limit": DAILY_QUOTA, "Period": "DAY"}
    # one key per plan
    assert len(synthesized.resources_of_type("AWS::ApiGateway::UsagePlanKey")) == 2


def test_the_kill_switch_post_has_its_own_stricter_usage_plan(synthesized: Synthesized) -> None:
    plans = _plans(synthesized)
    strict = {"RateLimit": KILLSWITCH_RATE_LIMIT_RPS, "BurstLimit": KILLSWITCH_BURST_LIMIT}
    # Its own plan (and key): far stricter than the reads, with a small daily quota
    killswitch = plans["killswitch"]
    assert killswitch["Throttle"] == strict
    assert killswitch["Quota"] == {"Limit": KILLSWITCH_DAILY_QUOTA, "Period": "DAY"}
    assert KILLSWITCH_RATE_LIMIT_RPS < RATE_LIMIT_RPS and KILLSWITCH_DAILY_QUOTA < DAILY_QUOTA
    # and in every plan the POST method is throttled to that pace, whichever key calls it
    for name, props in plans.items():
        (stage,) = props["ApiStages"]
        assert stage["Throttle"] == {"/api/v1/killswitch/POST": strict}, name
    keys = {
        k["Properties"]["UsagePlanId"]["Ref"]: k["Properties"]["KeyId"]["Ref"]
        for k in synthesized.resources_of_type("AWS::ApiGateway::UsagePlanKey").values()
    }
    api = synthesized.stack.api
    assert keys[synthesized.logical_id(api.killswitch_plan)] == synthesized.logical_id(
        api.killswitch_api_key
    )


def test_stage_logs_json_access_logs_and_traces(synthesized: Synthesized) -> None:
    (stage,) = synthesized.resources_of_type("AWS::ApiGateway::Stage").values()
    props = stage["Properties"]
    assert props["TracingEnabled"] is True
    assert "requestId" in props["AccessLogSetting"]["Format"]
    (validator,) = synthesized.resources_of_type("AWS::ApiGateway::RequestValidator").values()
    assert validator["Properties"]["ValidateRequestBody"] is True
    assert validator["Properties"]["ValidateRequestParameters"] is True


def test_api_role_reads_state_and_writes_only_the_switch_and_audit(
    synthesized: Synthesized,
) -> None:
    stack = synthesized.stack
    construct = stack.api.lambda_
    tables = stack.tables

    grants = _grants(synthesized, construct)

    assert grants == {
        **_common(synthesized, construct),
        synthesized.logical_id(stack.lake.bucket): {"s3:ListBucket"},
        SWITCH: {
            "ssm:DescribeParameters",
            "ssm:GetParameter",
            "ssm:GetParameters",
            "ssm:GetParameterHistory",
            "ssm:PutParameter",
        },
        synthesized.logical_id(tables.state): {
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:Query",
        },
        synthesized.logical_id(tables.positions): {"dynamodb:Scan"},
        synthesized.logical_id(tables.orders): {"dynamodb:Scan"},
    }


def test_operator_policy_allows_only_the_kill_switch_call(synthesized: Synthesized) -> None:
    policy = synthesized.resources[synthesized.logical_id(synthesized.stack.api.operator_policy)]
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Action"] == "execute-api:Invoke"
    resource = str(statement["Resource"])
    assert "/POST/api/v1/killswitch" in resource
