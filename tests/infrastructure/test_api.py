"""API Gateway: authentication per method, usage plan, validation, logs; the API function's role."""

from __future__ import annotations

from typing import Any

from infra.constructs.api import BURST_LIMIT, DAILY_QUOTA, RATE_LIMIT_RPS
from tests.infrastructure.conftest import Synthesized
from tests.infrastructure.test_iam import _common, _grants


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
    # (the CORS preflight OPTIONS methods are checked in test_web.py)
    methods = {k: v for k, v in _methods(synthesized).items() if not k.startswith("OPTIONS ")}

    assert set(methods) == {
        "GET /health",
        "GET /api/v1/market/overview",
        "GET /api/v1/signals",
        "GET /api/v1/positions",
        "GET /api/v1/risk",
        "GET /api/v1/coins/{symbol}",
        "GET /api/v1/portfolio",
        "GET /api/v1/audit",
        "GET /api/v1/breakers",
        "GET /api/v1/golive",
        "GET /api/v1/models",
        "POST /api/v1/killswitch",
    }
    for name, props in methods.items():
        assert props["ApiKeyRequired"] is True, name
        assert "RequestValidatorId" in props, name
        assert props["Integration"]["Type"] == "AWS_PROXY", name
        expected = "AWS_IAM" if name.startswith("POST") else "NONE"
        assert props["AuthorizationType"] == expected, name


def test_usage_plan_throttles_and_limits_the_key(synthesized: Synthesized) -> None:
    (plan,) = synthesized.resources_of_type("AWS::ApiGateway::UsagePlan").values()
    props = plan["Properties"]
    assert props["Throttle"] == {"RateLimit": RATE_LIMIT_RPS, "BurstLimit": BURST_LIMIT}
    assert props["Quota"] == {"Limit": DAILY_QUOTA, "Period": "DAY"}
    assert len(synthesized.resources_of_type("AWS::ApiGateway::UsagePlanKey")) == 1


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
        f"param:{synthesized.logical_id(stack.kill_switch.parameter)}": {
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
