"""The API function's router answers as the Event Handler it replaced did (paths, parameters,
bodies, CORS), and every answer — errors included — carries the correlation id and is counted.

These requests are answered before any service runs (no AWS needed): unknown routes, invalid
parameters or bodies, the public liveness route, CORS preflights.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest

from cryptosmarttrader.handlers import _common
from cryptosmarttrader.services.dashboard import SYMBOL_PATTERN
from cst_devtools.moto_shims import emf_points, emf_records
from tests.integration.test_api import USER_ARN, Context, api_event

DASHBOARD = "https://dashboard.example.com"


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    for key, value in {
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_SERVICE_NAME": "cst-api",
        "POWERTOOLS_METRICS_NAMESPACE": "CryptoSmartTrader",
        "CST_STAGE": "staging",
    }.items():
        monkeypatch.setenv(key, value)
    from cryptosmarttrader.handlers import api as module

    _common.reset_caches()
    yield module
    _common.reset_caches()


def answer(api: ModuleType, event: dict[str, Any]) -> tuple[int, Any, dict[str, str]]:
    result = api.handler(event, Context())
    headers = {k: v[-1] for k, v in (result.get("multiValueHeaders") or {}).items()}
    body = json.loads(result["body"]) if result["body"] else None
    return result["statusCode"], body, headers


def test_the_symbol_pattern_is_the_dashboards() -> None:
    from cryptosmarttrader.handlers import api

    assert api.SYMBOL_PATTERN == SYMBOL_PATTERN


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/health", 200),
        ("/health/", 200),  # trailing slashes reach the same route
        ("/health//", 200),
        ("//health", 404),
        ("/HEALTH", 404),
        ("/health.json", 404),
        ("/openapi.json/x", 404),
        ("/openapiXjson", 404),  # a dot in a route is a dot
    ],
)
def test_a_route_matches_its_path_exactly_up_to_trailing_slashes(
    api: ModuleType, path: str, status: int
) -> None:
    assert answer(api, api_event("GET", path, api_key_id=None))[0] == status


def test_a_path_parameter_is_one_segment_validated_as_sent(api: ModuleType) -> None:
    assert answer(api, api_event("GET", "/api/v1/coins/bitcoin/bars"))[0] == 404
    assert answer(api, api_event("GET", "/api/v1/coins/"))[0] == 404
    status, body, _ = answer(api, api_event("GET", "/api/v1/coins/BTC%2FUSDT"))
    assert status == 422
    assert [(d["loc"], d["type"]) for d in body["detail"]] == [
        (["path", "symbol"], "string_pattern_mismatch")
    ]


def test_another_method_on_a_route_is_not_found(api: ModuleType) -> None:
    for method in ("POST", "PUT", "DELETE", "HEAD", "OPTIONS"):
        status, body, _ = answer(api, api_event(method, "/api/v1/risk"))
        assert (status, body) == (404, {"statusCode": 404, "message": "Not found"}), method


def test_every_invalid_parameter_is_reported_path_then_query_in_declared_order(
    api: ModuleType,
) -> None:
    query = {"timeframe": "5m", "days": "1"}
    status, body, _ = answer(api, api_event("GET", "/api/v1/coins/Bitcoin", query=query))

    assert status == 422
    assert [(d["loc"], d["type"]) for d in body["detail"]] == [
        (["path", "symbol"], "string_pattern_mismatch"),
        (["query", "days"], "greater_than_equal"),
        (["query", "timeframe"], "literal_error"),
    ]
    assert body["detail"][1]["msg"] == "Input should be greater than or equal to 7"


def test_a_repeated_query_parameter_is_refused_by_a_scalar_parameter(api: ModuleType) -> None:
    event = api_event("GET", "/api/v1/signals", query={"limit": "7"})
    event["multiValueQueryStringParameters"] = {"limit": ["5", "7"]}

    status, body, _ = answer(api, event)

    assert status == 422
    assert body["detail"] == [
        {"loc": ["query", "limit"], "msg": "Input should be a valid integer", "type": "int_type"}
    ]


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ("[]", [(["body"], "model_attributes_type")]),
        # a list of bodies is not a body (the Event Handler took its first element)
        ('[{"on": true, "reason": "list"}]', [(["body"], "model_attributes_type")]),
        ("{", [(["body", 1], "json_invalid")]),
        ("null", [(["body"], "missing")]),
        ('{"on": true, "reason": "okay", "x": 1}', [(["body", "x"], "extra_forbidden")]),
    ],
)
def test_a_malformed_body_is_a_422_naming_the_field(
    api: ModuleType, body: str, detail: list[tuple[list[Any], str]]
) -> None:
    event = api_event("POST", "/api/v1/killswitch", user_arn=USER_ARN)
    event["body"] = body

    status, answered, _ = answer(api, event)

    assert status == 422
    assert [(d["loc"], d["type"]) for d in answered["detail"]] == detail


def test_a_body_that_is_not_base64_is_a_422(api: ModuleType) -> None:
    event = api_event("POST", "/api/v1/killswitch", user_arn=USER_ARN)
    event["body"], event["isBase64Encoded"] = "not base64!", True

    status, body, _ = answer(api, event)

    assert status == 422 and body["detail"][0]["type"] == "json_invalid"


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]
)
def test_a_body_that_is_not_json_by_its_content_type_is_a_415(
    api: ModuleType, content_type: str
) -> None:
    event = api_event("POST", "/api/v1/killswitch", user_arn=USER_ARN,
                      headers={"Content-Type": content_type},
                      body={"on": True, "reason": "plain text"})  # fmt: skip

    status, body, _ = answer(api, event)

    assert (status, body) == (
        415,
        {"statusCode": 415, "detail": [{"loc": ["body"], "type": "unsupported_content_type"}]},
    )


def test_a_body_is_declared_in_its_base64_form_too(api: ModuleType) -> None:
    event = api_event("POST", "/api/v1/killswitch", user_arn=USER_ARN)
    event["body"] = base64.b64encode(b'{"on": true}').decode()
    event["isBase64Encoded"] = True

    status, body, _ = answer(api, event)

    assert status == 422
    assert body["detail"] == [
        {"loc": ["body", "reason"], "msg": "Field required", "type": "missing"}
    ]


def test_every_error_answer_carries_the_correlation_id_and_is_counted(
    api: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a caller's correlation id
    headers = {"X-Correlation-Id": "corr-errors-1"}
    capsys.readouterr()

    # When it gets a 404, a 422 (a parameter) and a 422 (a body)
    answers = [
        answer(api, api_event("GET", "/api/v1/secrets", headers=headers)),
        answer(api, api_event("GET", "/api/v1/signals", query={"limit": "0"}, headers=headers)),
        answer(api, api_event("POST", "/api/v1/killswitch", body={"on": True}, headers=headers)),
    ]

    # Then each echoes the correlation id
    assert [status for status, _, _ in answers] == [404, 422, 422]
    assert all(h["X-Correlation-Id"] == "corr-errors-1" for _, _, h in answers)
    # and each is one ApiRequests sample of its route, status class 4xx, and one latency
    points = emf_points(emf_records(capsys.readouterr().out))
    requests = [p for p in points if p["name"] == "ApiRequests"]
    assert [(p["dimensions"]["route"], p["dimensions"]["status"]) for p in requests] == [
        ("/api/v1/secrets", "4xx"),
        ("/api/v1/signals", "4xx"),
        ("/api/v1/killswitch", "4xx"),
    ]
    assert len([p for p in points if p["name"] == "ApiLatency"]) == 3


def test_cors_answers_the_dashboards_origin_only(
    api: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the API deployed with the dashboard's origin
    monkeypatch.setattr(api.app, "cors", api.cors_config(DASHBOARD))

    # When the dashboard and another origin call it, and the dashboard sends a preflight
    _, _, ours = answer(api, api_event("GET", "/health", headers={"Origin": DASHBOARD}))
    _, _, theirs = answer(api, api_event("GET", "/health", headers={"Origin": "https://x.example"}))
    status, body, preflight = answer(
        api, api_event("OPTIONS", "/api/v1/killswitch", headers={"Origin": DASHBOARD})
    )

    # Then only the dashboard's answers carry the CORS headers
    cors = {
        "Access-Control-Allow-Origin": DASHBOARD,
        "Access-Control-Allow-Headers": "Authorization,Content-Type,X-Amz-Date,"
        "X-Amz-Security-Token,X-Api-Key,X-Correlation-Id,x-api-key",
        "Access-Control-Expose-Headers": "X-Correlation-Id",
        "Access-Control-Max-Age": "3600",
    }
    assert {k: ours[k] for k in cors} == cors
    assert not any(k.startswith("Access-Control") for k in theirs)
    # and the preflight is a 204 naming the API's methods
    assert (status, body) == (204, None)
    assert preflight["Access-Control-Allow-Methods"] == "GET,OPTIONS,POST"
    assert preflight["Access-Control-Allow-Origin"] == DASHBOARD


def test_without_cors_a_preflight_is_not_found(api: ModuleType) -> None:
    assert api.app.cors is None
    assert answer(api, api_event("OPTIONS", "/api/v1/killswitch"))[0] == 404


@pytest.mark.parametrize("stage", [None, "staging", "canary", "production", "Canary", "prod"])
def test_the_stage_is_read_as_the_deployment_settings_read_it(
    api: ModuleType, monkeypatch: pytest.MonkeyPatch, stage: str | None
) -> None:
    from cryptosmarttrader.settings import DeploymentSettings

    monkeypatch.delenv("CST_STAGE", raising=False)
    if stage is not None:
        monkeypatch.setenv("cst_stage", stage)  # names are not case-sensitive
    try:
        expected: str | None = DeploymentSettings().stage
    except ValueError:  # pydantic's ValidationError: not a stage
        expected = None

    if expected is None:
        with pytest.raises(ValueError, match="stage must be one of"):
            api.stage_slis()
    else:
        assert api.stage_slis().stage == expected
