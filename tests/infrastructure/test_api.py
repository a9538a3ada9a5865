"""API Gateway: authentication per method, usage plan, validation, logs; the API function's role."""

from __future__ import annotations

import json
from typing import Any

from infra.constructs.api import (
    API_HANDLER,
    API_LAKE_HANDLER,
    API_LAKE_ROUTES,
    BURST_LIMIT,
    CORS_HEADERS,
    DAILY_QUOTA,
    KILLSWITCH_BURST_LIMIT,
    KILLSWITCH_DAILY_QUOTA,
    KILLSWITCH_RATE_LIMIT_RPS,
    RATE_LIMIT_RPS,
)
from tests.infrastructure.conftest import Synthesized
from tests.infrastructure.test_iam import SWITCH, _common, _grants


def _methods(synthesized: Synthesized) -> dict[str, dict[str, Any]]:
    """``"<HTTP method> <full path>"`` → the method's properties, for every method of the API."""
    (rest_api,) = synthesized.resources_of_type("AWS::ApiGateway::RestApi")
    root = {"Fn::GetAtt": [rest_api, "RootResourceId"]}
    resources = synthesized.resources_of_type("AWS::ApiGateway::Resource")

    def path_of(resource_id: Any) -> str:
        """The API's root resource (``GetAtt RootResourceId``) is ``/``; a child resource is
        referenced by ``Ref``; any other shape is an error, never a silent root."""
        if resource_id == root:
            return ""
        assert set(resource_id) == {"Ref"}, f"unexpected resource reference {resource_id!r}"
        props = resources[resource_id["Ref"]]["Properties"]
        return f"{path_of(props['ParentId'])}/{props['PathPart']}"

    methods: dict[str, dict[str, Any]] = {}
    for method in synthesized.resources_of_type("AWS::ApiGateway::Method").values():
        props = method["Properties"]
        name = f"{props['HttpMethod']} {path_of(props['ResourceId']) or '/'}"
        assert name not in methods, f"{name} is defined twice"
        methods[name] = props
    return methods


def _path_and_prefixes(path: str) -> set[str]:
    """``/api/v1/risk`` → ``{"/", "/api", "/api/v1", "/api/v1/risk"}``."""
    parts = path.split("/")[1:]
    return {"/" + "/".join(parts[:k]) for k in range(len(parts) + 1)}


def _assert_cors_preflight(name: str, props: dict[str, Any], dashboard: str) -> None:
    """An OPTIONS method is API Gateway's CORS preflight mock and nothing else: no key (browsers
    send none on a preflight), no authorizer, no integration with any function, and an answer
    that names the dashboard's origin (``dashboard``: the distribution's logical id) only."""
    assert set(props) == {
        "ApiKeyRequired",
        "AuthorizationType",
        "HttpMethod",
        "Integration",
        "MethodResponses",
        "ResourceId",
        "RestApiId",
    }, name
    assert props["AuthorizationType"] == "NONE", name
    assert props["ApiKeyRequired"] is False, name
    integration = props["Integration"]
    assert integration == {
        "Type": "MOCK",
        "RequestTemplates": {"application/json": "{ statusCode: 200 }"},
        "IntegrationResponses": integration["IntegrationResponses"],
    }, name
    (answer,) = integration["IntegrationResponses"]
    header = "method.response.header."
    assert answer == {
        "StatusCode": "204",
        "ResponseParameters": {
            f"{header}Access-Control-Allow-Origin": {
                "Fn::Join": ["", ["'https://", {"Fn::GetAtt": [dashboard, "DomainName"]}, "'"]]
            },
            f"{header}Vary": "'Origin'",
            f"{header}Access-Control-Allow-Headers": "'" + ",".join(CORS_HEADERS) + "'",
            f"{header}Access-Control-Allow-Methods": "'GET,POST,OPTIONS'",
            f"{header}Access-Control-Max-Age": "'3600'",
        },
    }, name
    assert props["MethodResponses"] == [
        {
            "StatusCode": "204",
            "ResponseParameters": dict.fromkeys(answer["ResponseParameters"], True),
        }
    ], name


PUBLIC = {"GET /health", "GET /openapi.json"}


def test_every_method_but_liveness_and_the_document_needs_a_key_and_the_switch_needs_iam(
    synthesized: Synthesized,
) -> None:
    # Given every method of the API, by method and full path
    methods = _methods(synthesized)
    preflights = {k: v for k, v in methods.items() if k.startswith("OPTIONS ")}
    calls = {k: v for k, v in methods.items() if k not in preflights}

    # Then the calls are exactly the routes, each behind the API key (but liveness and the
    # OpenAPI document), validated and proxied to the function; only the kill-switch needs IAM
    assert set(calls) == {
        *PUBLIC,
        "GET /api/v1/health",
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
    for name, props in calls.items():
        assert props["ApiKeyRequired"] is (name not in PUBLIC), name
        assert "RequestValidatorId" in props, name
        assert props["Integration"]["Type"] == "AWS_PROXY", name
        expected = "AWS_IAM" if name.startswith("POST") else "NONE"
        assert props["AuthorizationType"] == expected, name
    # and every resource (the root and each path prefix too) has one OPTIONS method that is
    # exactly a CORS preflight mock for the dashboard's origin: no key, no authorizer, never
    # the function
    resources = set().union(*(_path_and_prefixes(name.split(" ", 1)[1]) for name in calls))
    assert {name.split(" ", 1)[1] for name in preflights} == resources
    dashboard = synthesized.logical_id(synthesized.stack.web.distribution)
    for name, props in preflights.items():
        _assert_cors_preflight(name, props, dashboard)


def test_the_deployed_routes_are_the_handlers_routes_with_its_security() -> None:
    # The API Gateway methods and the function's OpenAPI document describe one API: the same
    # paths, and no key exactly where the document declares no security.
    from cryptosmarttrader.handlers.api import PUBLIC_ROUTES, openapi_json
    from infra.constructs.api import KILLSWITCH_ROUTE, READ_ROUTES
    from infra.constructs.api import PUBLIC_ROUTES as DEPLOYED_PUBLIC

    paths = json.loads(openapi_json())["paths"]
    assert set(paths) == {*DEPLOYED_PUBLIC, *READ_ROUTES, KILLSWITCH_ROUTE}
    assert set(DEPLOYED_PUBLIC) == set(PUBLIC_ROUTES)
    unsecured = {p for p, ops in paths.items() for op in ops.values() if not op.get("security")}
    assert unsecured == set(DEPLOYED_PUBLIC)


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

    lake = synthesized.logical_id(stack.lake.bucket)

    grants = _grants(synthesized, construct)

    # the lake: listing (the deep health check) only; the candles are the lake function's
    assert grants == {
        **_common(synthesized, construct),
        lake: {"s3:ListBucket"},
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


def test_the_lake_routes_go_to_the_lake_function_and_every_other_to_the_api_function(
    synthesized: Synthesized,
) -> None:
    # Given every proxied method of the API and the two functions
    api = synthesized.stack.api
    lean = synthesized.logical_id(api.lambda_.function)
    lake = synthesized.logical_id(api.lake_lambda.function)
    calls = {k: v for k, v in _methods(synthesized).items() if not k.startswith("OPTIONS ")}

    # Then the three routes that read Parquet or the registry invoke the lake function (the same
    # handler, from a bundle with polars), and every other route the polars-free API function
    for name, props in calls.items():
        target = json.dumps(props["Integration"]["Uri"])
        expected, other = (lake, lean) if name.split(" ", 1)[1] in API_LAKE_ROUTES else (lean, lake)
        assert expected in target and other not in target, name
    assert {n.split(" ", 1)[1] for n in calls} >= set(API_LAKE_ROUTES)
    handlers = {
        synthesized.resources[lean]["Properties"]["Handler"],
        synthesized.resources[lake]["Properties"]["Handler"],
    }
    assert handlers == {API_HANDLER, API_LAKE_HANDLER}


def test_the_lake_function_reads_the_candles_and_state_and_writes_nothing(
    synthesized: Synthesized,
) -> None:
    stack = synthesized.stack
    construct = stack.api.lake_lambda
    tables = stack.tables
    lake = synthesized.logical_id(stack.lake.bucket)

    grants = _grants(synthesized, construct)

    # the candles only (objects under exchange=, and listing that prefix: the lake finds a
    # coin's objects with ListObjectsV2), the switch read, state, positions and orders
    assert grants == {
        **_common(synthesized, construct),
        f"{lake}/exchange=*": {"s3:GetObject"},
        lake: {"s3:ListBucket"},
        SWITCH: {
            "ssm:DescribeParameters",
            "ssm:GetParameter",
            "ssm:GetParameters",
            "ssm:GetParameterHistory",
        },
        synthesized.logical_id(tables.state): {"dynamodb:GetItem", "dynamodb:Query"},
        synthesized.logical_id(tables.positions): {"dynamodb:Scan"},
        synthesized.logical_id(tables.orders): {"dynamodb:Scan"},
    }


def test_operator_policy_allows_only_the_kill_switch_call(synthesized: Synthesized) -> None:
    policy = synthesized.resources[synthesized.logical_id(synthesized.stack.api.operator_policy)]
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Action"] == "execute-api:Invoke"
    resource = str(statement["Resource"])
    assert "/POST/api/v1/killswitch" in resource


def test_the_lake_function_lists_only_the_candle_prefix(synthesized: Synthesized) -> None:
    # Given the lake function's policy statements
    role = synthesized.stack.api.lake_lambda.function.role
    assert role is not None
    policies = synthesized.resources_of_type("AWS::IAM::Policy").values()
    role_id = synthesized.logical_id(role)
    statements = [
        st
        for p in policies
        if {"Ref": role_id} in p["Properties"]["Roles"]
        for st in p["Properties"]["PolicyDocument"]["Statement"]
    ]
    # Then the bucket listing it needs to read a coin's candles is granted, on that prefix only
    [listing] = [st for st in statements if st["Action"] == "s3:ListBucket"]
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["exchange=*"]}}
