"""API Lambda in-process, driven by API Gateway REST proxy events (the documented shape).

What a view answers (the overview, signals, positions and risk, query validation, damaged
records) and the kill-switch requests refused before any write (malformed, not UTF-8, no caller
identity) run on the stores' in-memory fakes (the ``views`` fixture, ``tests/support/api.py``).
What is about AWS runs on moto (the ``api`` fixture): the health probes, a store or audit write
that AWS refuses, the kill-switch's SSM parameter and audit items, the published logs and SLIs."""

from __future__ import annotations

import base64
import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest

from cryptosmarttrader.adapters.audit import DynamoAuditTrail
from cryptosmarttrader.adapters.aws_clients import AwsClients
from cryptosmarttrader.adapters.dynamodb_store import (
    DynamoStateStore,
)
from cryptosmarttrader.domain.clock import FixedClock
from cryptosmarttrader.domain.risk import RiskObservation
from cryptosmarttrader.handlers import _common
from cryptosmarttrader.services.risk_state import RiskStateService
from cryptosmarttrader.settings import AwsResources
from cst_devtools.local_aws import (
    ensure_resources,
    kill_switch_default,
    table_specs,
)
from cst_devtools.moto_shims import emf_points, emf_records
from tests.support.aws import moto_stack

if TYPE_CHECKING:
    from tests.support.api import ApiStores

API_KEY_ID = "a1b2c3d4e5"
USER_ARN = "arn:aws:iam::123456789012:user/risk-officer"


@dataclass
class Context:
    aws_request_id: str = "lambda-req-1"
    function_name: str = "cst-api"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:cst-api"


def api_event(
    method: str,
    path: str,
    *,
    query: dict[str, str] | None = None,
    body: Any = None,
    headers: dict[str, str] | None = None,
    api_key_id: str | None = API_KEY_ID,
    user_arn: str | None = None,
    request_id: str = "c6af9ac6-7b61-11e6-9a41-93e8deadbeef",
) -> dict[str, Any]:
    """A REST API proxy-integration event (API Gateway developer guide, 'input format')."""
    hdrs = {"Accept": "application/json", "Host": "abc123.execute-api.us-east-1.amazonaws.com"}
    hdrs.update(headers or {})
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": hdrs,
        "multiValueHeaders": {k: [v] for k, v in hdrs.items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "resourceId": "x1y2z3",
            "resourcePath": path,
            "httpMethod": method,
            "stage": "prod",
            "path": f"/prod{path}",
            "protocol": "HTTP/1.1",
            "requestId": request_id,
            "extendedRequestId": "DuqJMF8WIAMFmKw=",
            "requestTime": "09/Apr/2024:12:34:56 +0000",
            "requestTimeEpoch": 1712666096000,
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "identity": {
                "sourceIp": "203.0.113.7",
                "userAgent": "curl/8.5.0",
                "apiKey": "k3y" if api_key_id else None,
                "apiKeyId": api_key_id,
                "userArn": user_arn,
                "user": None if user_arn is None else "AIDAEXAMPLEUSERID",
                "caller": None,
                "accessKey": None,
                "accountId": None if user_arn is None else "123456789012",
                "cognitoIdentityPoolId": None,
                "cognitoIdentityId": None,
                "cognitoAuthenticationType": None,
                "cognitoAuthenticationProvider": None,
            },
        },
        "body": None if body is None else (body if isinstance(body, str) else json.dumps(body)),
        "isBase64Encoded": False,
    }


ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "POWERTOOLS_SERVICE_NAME": "cst-api",
    "POWERTOOLS_METRICS_NAMESPACE": "CryptoSmartTrader",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "CST_DATA_SOURCE": "recorded",
}


@pytest.fixture(scope="module")
def module_aws() -> Iterator[AwsClients]:
    """One moto account per module (creating resources costs ~1 s); tests reset its content."""
    with pytest.MonkeyPatch.context() as mp, moto_stack(mp, env=ENV) as clients:
        yield clients


@pytest.fixture
def aws(module_aws: AwsClients) -> Iterator[AwsClients]:
    """Empty tables, a lake bucket and the kill-switch off, as after a fresh deployment."""
    res = AwsResources()
    ensure_resources(module_aws)  # recreates what a previous test deleted
    for spec in table_specs(res):
        keys = [name for name, _ in spec.keys]
        for page in module_aws.dynamodb.get_paginator("scan").paginate(TableName=spec.name):
            for item in page["Items"]:
                module_aws.dynamodb.delete_item(TableName=spec.name, Key={k: item[k] for k in keys})
    module_aws.ssm.put_parameter(
        Name=res.kill_switch_param,
        Value=kill_switch_default(datetime(2024, 1, 1, tzinfo=UTC)),
        Type="String",
        Overwrite=True,
    )
    _common.reset_caches()
    yield module_aws
    _common.reset_caches()


@pytest.fixture
def api(aws: AwsClients) -> Iterator[ModuleType]:
    from cryptosmarttrader.handlers import api as module

    module._service.cache_clear()
    yield module
    module._service.cache_clear()


@pytest.fixture
def stores() -> ApiStores:
    from tests.support.api import ApiStores  # (this module is loaded where polars is refused)

    return ApiStores()


@pytest.fixture
def views(stores: ApiStores, monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    """The API handler serving from ``stores`` (no AWS), with the deployed function's settings."""
    from tests.support.api import serving

    yield serving(stores, monkeypatch, ENV)
    _common.reset_caches()


def call(api: ModuleType, event: dict[str, Any]) -> tuple[int, dict[str, Any], dict[str, str]]:
    result = api.handler(event, Context())
    headers = dict(result.get("headers") or {})
    headers.update({k: v[-1] for k, v in (result.get("multiValueHeaders") or {}).items()})
    return result["statusCode"], json.loads(result["body"]), headers


def state(aws: AwsClients) -> DynamoStateStore:
    return DynamoStateStore(AwsResources().state_table, aws.dynamodb)


REPORT = {
    "asof": "2024-03-01T00:00:00+00:00",
    "universe": 312,
    "excluded_by_quality": 7,
    "quality_totals": {"gap": 7},
    "abstained": 12,
    "orders_created": 1,
    "duplicates_prevented": 0,
    "rows": [
        {"rank": 1, "symbol": "SOL", "score": 0.91, "confidence": 0.86, "action": "buy",
         "client_order_id": "9f2c4a1be0d34c6f8a7b5e3d2c1f0a9b", "order_status": "NEW",
         "price": 126.4, "reasons": ["trend up", "paper order"]},
        {"rank": 2, "symbol": "ETH", "score": 0.55, "confidence": 0.62, "action": "hold",
         "client_order_id": None, "order_status": None, "price": 3430.1,
         "reasons": ["below gate"]},
        {"rank": 3, "symbol": "AVAX", "score": 0.88, "confidence": 0.84, "action": "buy",
         "client_order_id": None, "order_status": None, "price": 41.2,
         "reasons": ["rejected by RiskGuard rule kill_switch"]},
    ],
}  # fmt: skip


# --------------------------------------------------------------------------- health


def test_liveness_answers_without_a_key_and_reveals_nothing(
    api: ModuleType, aws: AwsClients
) -> None:
    # Given a caller without any API key, and a deployment whose lake bucket is gone
    aws.s3.delete_bucket(Bucket=AwsResources().lake_bucket)
    event = api_event("GET", "/health", api_key_id=None)

    # When the public liveness route is called
    status, body, _ = call(api, event)

    # Then it answers 200 {"status": "ok"}: no dependency is probed, named or described
    assert (status, body) == (200, {"status": "ok"})


def test_the_openapi_document_is_served_by_the_api_without_a_key(api: ModuleType) -> None:
    status, body, headers = call(api, api_event("GET", "/openapi.json", api_key_id=None))

    assert status == 200 and headers["Content-Type"] == "application/json"
    assert body == json.loads(api.openapi_json())
    assert {"/health", "/openapi.json", "/api/v1/health", "/api/v1/killswitch"} <= set(
        body["paths"]
    )


def test_the_document_declares_exactly_the_public_routes_without_security(
    api: ModuleType,
) -> None:
    paths = json.loads(api.openapi_json())["paths"]
    public = {p for p, ops in paths.items() for op in ops.values() if not op.get("security")}
    assert public == set(api.PUBLIC_ROUTES) == {"/health", "/openapi.json"}


def test_health_checks_every_aws_dependency_and_reports_the_exchange_honestly(
    api: ModuleType,
) -> None:
    # Given the local AWS resources and the recorded-data source (no exchange in use)
    event = api_event("GET", "/api/v1/health", headers={"X-Correlation-Id": "corr-health-1"})

    # When the deep health check is called
    status, body, headers = call(api, event)

    # Then DynamoDB, S3 and SSM answered and the exchange is reported as unknown, with why
    assert status == 200
    checks = {c["name"]: c for c in body["checks"]}
    assert {n: checks[n]["status"] for n in ("dynamodb", "s3", "ssm")} == {
        "dynamodb": "ok", "s3": "ok", "ssm": "ok",
    }  # fmt: skip
    assert checks["exchange"]["status"] == "unknown"
    assert "recorded" in checks["exchange"]["detail"]
    assert body["status"] == "ok"
    # and the caller's correlation id comes back
    assert headers["X-Correlation-Id"] == "corr-health-1"


def test_health_is_503_and_names_the_failed_dependency(api: ModuleType, aws: AwsClients) -> None:
    # Given the lake bucket is gone
    aws.s3.delete_bucket(Bucket=AwsResources().lake_bucket)

    # When the deep health check is called
    status, body, _ = call(api, api_event("GET", "/api/v1/health"))

    # Then the API says degraded with 503 and which check failed, with the AWS error code
    assert status == 503
    assert body["status"] == "degraded"
    s3 = next(c for c in body["checks"] if c["name"] == "s3")
    assert s3["status"] == "error"
    assert "404" in s3["detail"] or "NoSuchBucket" in s3["detail"]


# --------------------------------------------------------------------------- market / signals


def test_market_overview_before_any_scan_is_empty_but_reports_risk(views: ModuleType) -> None:
    status, body, _ = call(views, api_event("GET", "/api/v1/market/overview"))

    assert status == 200
    assert body["asof"] is None and body["top_opportunities"] == []
    assert body["risk_level"] == "NORMAL"
    assert body["kill_switch_on"] is False
    assert body["regime_source"] == "no scan report published yet"


def test_market_overview_comes_from_the_latest_published_scan(
    views: ModuleType, stores: ApiStores
) -> None:
    # Given a published scan report
    stores.signals.save("2024-03-01", REPORT)

    # When the overview is requested with top=1
    status, body, _ = call(views, api_event("GET", "/api/v1/market/overview", query={"top": "1"}))

    # Then it holds the scan's universe and only the best BUY, and says the regime is not published
    assert status == 200
    assert body["asof"] == "2024-03-01"
    assert body["universe"] == 312 and body["excluded_by_quality"] == 7
    assert [o["symbol"] for o in body["top_opportunities"]] == ["SOL"]
    assert body["regime"] is None
    assert body["regime_source"] == "not published by the scan"


def test_market_overview_says_when_no_promoted_model_served_the_scan(
    views: ModuleType, stores: ApiStores
) -> None:
    # the scan's wording, imported here: this module is loaded where polars is refused
    # (test_api_lean_routes), and the scan's wiring imports the lake readers
    from cryptosmarttrader.wiring import NO_PROMOTED_MODEL

    # Given a deployed scan that found no promoted model: it ordered nothing, every BUY became a
    # HOLD, and its decision basis says why
    basis = f"{NO_PROMOTED_MODEL} (technical agent only: 6 of 7 indicators agree)"
    rows = [
        {**row, "action": "hold", "client_order_id": None, "order_status": None,
         "reasons": [*row["reasons"], NO_PROMOTED_MODEL]}
        for row in REPORT["rows"]  # type: ignore[attr-defined]
    ]  # fmt: skip
    report = {**REPORT, "rows": rows, "orders_created": 0, "model_version": "technical-v1",
              "decision_basis": basis, "regime": "sideways"}  # fmt: skip
    stores.signals.save("2024-03-01", report)

    # When the overview is requested
    status, body, _ = call(views, api_event("GET", "/api/v1/market/overview"))

    # Then it has no opportunity to show, and says why: no promoted model served that scan
    assert status == 200
    assert body["top_opportunities"] == []
    assert body["decision_basis"] == basis
    assert body["model_version"] == "technical-v1"


def test_signals_filter_by_action_and_date(views: ModuleType, stores: ApiStores) -> None:
    signals = stores.signals
    signals.save("2024-03-01", REPORT)
    signals.save("2024-03-02", {**REPORT, "asof": "2024-03-02T00:00:00+00:00", "rows": []})

    latest = call(views, api_event("GET", "/api/v1/signals"))[1]
    buys = call(
        views, api_event("GET", "/api/v1/signals", query={"asof": "2024-03-01", "action": "buy"})
    )[1]
    missing = call(views, api_event("GET", "/api/v1/signals", query={"asof": "2020-01-01"}))[1]

    assert latest["asof"] == "2024-03-02" and latest["count"] == 0
    assert [s["symbol"] for s in buys["signals"]] == ["SOL", "AVAX"]
    assert missing == {
        "asof": "2020-01-01",
        "count": 0,
        "signals": [],
        "model_version": None,
        "decision_basis": None,
        "universe": None,
        "excluded_by_quality": None,
    }


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/api/v1/signals", {"asof": "yesterday"}),
        ("/api/v1/signals", {"action": "moon"}),
        ("/api/v1/signals", {"limit": "0"}),
        ("/api/v1/market/overview", {"top": "51"}),
        ("/api/v1/market/overview", {"top": "ten"}),
    ],
)
def test_malformed_query_is_rejected_with_422(
    views: ModuleType, path: str, query: dict[str, str]
) -> None:
    status, body, _ = call(views, api_event("GET", path, query=query))
    assert status == 422
    assert body["detail"] and all(d["loc"][0] == "query" for d in body["detail"])


@pytest.mark.parametrize(
    ("path", "query", "unknown"),
    [
        ("/api/v1/audit", {"limit": "1", "": "null"}, ""),  # a parameter without a name
        ("/api/v1/signals", {"limt": "5"}, "limt"),  # a typo would silently use the default
        ("/api/v1/risk", {"verbose": "1"}, "verbose"),  # a route without parameters
    ],
)
def test_an_unknown_query_parameter_is_rejected_with_422(
    views: ModuleType, path: str, query: dict[str, str], unknown: str
) -> None:
    status, body, _ = call(views, api_event("GET", path, query=query))

    assert status == 422
    assert body["detail"] == [
        {"loc": ["query", unknown], "msg": "unknown query parameter", "type": "extra_forbidden"}
    ]


def test_unknown_route_is_404(views: ModuleType) -> None:
    assert call(views, api_event("GET", "/api/v1/secrets"))[0] == 404
    # (with a query string too: no route, so no parameter of it can be unknown)
    assert call(views, api_event("GET", "/api/v1/secrets", query={"limit": "1"}))[0] == 404


# --------------------------------------------------------------------------- positions / risk


def test_positions_and_risk_show_positions_open_orders_and_exposure(
    views: ModuleType, stores: ApiStores
) -> None:
    # Given one position and one open and one filled paper order
    stores.positions.upsert(
        {"symbol": "SOL", "quantity": 10, "cost": 1200, "notional": 1200, "average_price": 120,
         "updated_at": "2024-03-01T00:20:00+00:00"},
        None,
    )  # fmt: skip
    stores.positions.upsert(  # sold down to zero: closed
        {"symbol": "ADA", "quantity": 0, "cost": 0, "notional": 0,
         "updated_at": "2024-03-01T02:10:00+00:00"},
        None,
    )  # fmt: skip
    orders = stores.orders
    base = {"side": "buy", "intent": "open", "strategy": "s", "signal_bar_ms": 1, "mode": "paper",
            "created_at": "2024-03-01T00:15:00+00:00"}  # fmt: skip
    orders.put_new({**base, "client_order_id": "a" * 32, "symbol": "AVAX", "quantity": 20,
                    "notional": 824, "status": "NEW"})  # fmt: skip
    orders.put_new({**base, "client_order_id": "b" * 32, "symbol": "SOL", "quantity": 1,
                    "notional": 126, "status": "FILLED"})  # fmt: skip

    # When positions and risk are requested
    pos_status, positions, _ = call(views, api_event("GET", "/api/v1/positions"))
    risk_status, risk, _ = call(views, api_event("GET", "/api/v1/risk"))

    # Then the open position and the open order are listed (the filled order and the closed
    # position are not)
    assert pos_status == 200
    assert [(p["symbol"], float(p["quantity"])) for p in positions["positions"]] == [("SOL", 10.0)]
    assert [o["client_order_id"] for o in positions["open_orders"]] == ["a" * 32]
    # and the exposure adds positions and open buys, against the 100k paper equity
    assert risk_status == 200
    assert {k: float(v) for k, v in risk["exposure_usd"].items()} == {"AVAX": 824.0, "SOL": 1200.0}
    assert float(risk["gross_exposure_pct"]) == 2.02
    assert risk["level"] == "NORMAL" and risk["kill_switch"]["on"] is False
    # no execution cycle has valued the account yet: unknown, not zero
    assert risk["account_equity_usd"] is None and risk["daily_pnl_pct"] is None

    # When two cycles have valued the account (100,000 then 98,000 the same day)
    clock = FixedClock(datetime(2024, 3, 1, 1, 10, tzinfo=UTC))
    risk_state = RiskStateService(stores.state, stores.switch, clock)
    risk_state.observe(RiskObservation(equity=Decimal("100000")))
    clock.current = datetime(2024, 3, 1, 2, 10, tzinfo=UTC)
    risk_state.observe(RiskObservation(equity=Decimal("98000")))
    _, valued, _ = call(views, api_event("GET", "/api/v1/risk"))
    # Then the risk view shows the account as the RiskGuard measures it
    assert float(valued["account_equity_usd"]) == 98000
    assert float(valued["daily_pnl_pct"]) == -2.0 and float(valued["drawdown_pct"]) == 2.0


def test_a_store_failure_is_a_503_without_internals(api: ModuleType, aws: AwsClients) -> None:
    aws.dynamodb.delete_table(TableName=AwsResources().positions_table)

    status, body, _ = call(api, api_event("GET", "/api/v1/positions"))

    assert status == 503
    assert "Traceback" not in json.dumps(body)
    assert "dependency is unavailable" in body["message"]


# --------------------------------------------------------------------------- kill-switch


def test_killswitch_on_is_written_audited_and_attributed_to_the_iam_caller(
    api: ModuleType, aws: AwsClients
) -> None:
    # Given an IAM-authenticated operator request with a reason
    event = api_event(
        "POST",
        "/api/v1/killswitch",
        body={"on": True, "reason": "exchange incident: halt trading"},
        user_arn=USER_ARN,
        headers={"X-Correlation-Id": "corr-ks-1"},
        request_id="req-ks-1",
    )

    # When it is posted
    status, body, _ = call(api, event)

    # Then the switch is on, with the reason and the caller as actor
    assert status == 200, body
    assert body["kill_switch"]["on"] is True
    assert body["kill_switch"]["actor"] == f"iam:{USER_ARN}"
    stored = json.loads(
        aws.ssm.get_parameter(Name=AwsResources().kill_switch_param)["Parameter"]["Value"]
    )
    assert stored["on"] is True and stored["reason"] == "exchange incident: halt trading"
    # and the audit trail holds the request (written before the switch moved), then its outcome,
    # each with who, what, when and the request id
    outcome, intent = DynamoAuditTrail(AwsResources().state_table, aws.dynamodb).recent()
    assert [intent.action, outcome.action] == ["killswitch.on.requested", "killswitch.on"]
    for entry in (intent, outcome):
        assert entry.actor == f"iam:{USER_ARN}"
        assert entry.request_id == "req-ks-1" and entry.correlation_id == "corr-ks-1"
        assert entry.sort_key.endswith("#req-ks-1")
    assert intent.details == {"reason": "exchange incident: halt trading", "previous_on": False,
                              "requested_on": True}  # fmt: skip
    assert outcome.details == {"reason": "exchange incident: halt trading", "previous_on": False,
                               "on": True, "request_audit_id": intent.sort_key}  # fmt: skip
    assert intent.sort_key < outcome.sort_key
    assert body["audit_id"] == outcome.sort_key
    assert body["request_audit_id"] == intent.sort_key
    # and the risk view now shows it
    assert call(api, api_event("GET", "/api/v1/risk"))[1]["kill_switch"]["on"] is True


def test_killswitch_off_with_an_api_key_identity(api: ModuleType, aws: AwsClients) -> None:
    call(api, api_event("POST", "/api/v1/killswitch", body={"on": True, "reason": "drill"},
                        request_id="r1"))  # fmt: skip
    status, body, _ = call(
        api,
        api_event("POST", "/api/v1/killswitch", body={"on": False, "reason": "drill over"},
                  request_id="r2"),
    )  # fmt: skip

    assert status == 200
    assert body["kill_switch"] == {
        **body["kill_switch"],
        "on": False,
        "actor": f"apikey:{API_KEY_ID}",
    }
    actions = [
        e.action for e in DynamoAuditTrail(AwsResources().state_table, aws.dynamodb).recent()
    ]
    assert actions == [
        "killswitch.off",
        "killswitch.off.requested",
        "killswitch.on",
        "killswitch.on.requested",
    ]


def _switch(aws: AwsClients) -> dict[str, Any]:
    raw = aws.ssm.get_parameter(Name=AwsResources().kill_switch_param)["Parameter"]["Value"]
    value: dict[str, Any] = json.loads(raw)
    return value


def test_an_audit_store_failure_leaves_the_switch_untouched(
    api: ModuleType, aws: AwsClients
) -> None:
    # Given the audit trail cannot be written (its table is gone)
    aws.dynamodb.delete_table(TableName=AwsResources().state_table)

    # When an operator turns the kill-switch on
    status, body, _ = call(api, api_event("POST", "/api/v1/killswitch", user_arn=USER_ARN,
                                          body={"on": True, "reason": "audit store down"}))  # fmt: skip

    # Then the call fails with 503 and the switch did not move: no flip is ever unaudited
    assert status == 503, body
    assert _switch(aws)["on"] is False


def test_a_failed_switch_write_is_audited_as_requested_then_failed(
    api: ModuleType, aws: AwsClients
) -> None:
    # Given SSM refuses the kill-switch write (the API function's own client)
    from botocore.exceptions import ClientError

    def refuse(**_: Any) -> None:
        raise ClientError(
            {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}},
            "PutParameter",
        )

    ssm = _common.aws_clients().ssm
    ssm.meta.events.register("before-call.ssm.PutParameter", refuse)
    try:
        # When an operator turns the kill-switch on
        status, body, _ = call(api, api_event("POST", "/api/v1/killswitch", user_arn=USER_ARN,
                                              body={"on": True, "reason": "ssm down"},
                                              request_id="req-ssm"))  # fmt: skip
    finally:
        ssm.meta.events.unregister("before-call.ssm.PutParameter", refuse)

    # Then it is a 503, the switch is unchanged, and the trail says requested, then failed
    assert status == 503, body
    assert _switch(aws)["on"] is False
    outcome, intent = DynamoAuditTrail(AwsResources().state_table, aws.dynamodb).recent()
    assert [intent.action, outcome.action] == ["killswitch.on.requested", "killswitch.on.failed"]
    assert outcome.details["error"] == "ClientError" and outcome.request_id == "req-ssm"


@pytest.mark.parametrize(
    "body",
    [
        {"on": True},
        {"on": True, "reason": ""},
        {"on": True, "reason": "    "},
        {"on": "yes please", "reason": "x" * 10},
        {"on": True, "reason": "r" * 501},
        {"on": True, "reason": "resume\x1b[2K\rkill-switch: off"},
        {"on": True, "reason": "resume \u202eFFO\u202c trading"},
        {"on": True, "reason": "ab\x9fc"},  # a C1 control character
        {"on": True, "reason": "valid reason", "actor": "someone-else"},
        # the go-live rollback's marker: written by the rollback only, never by a request
        {"on": True, "reason": "go-live r-1 rollback: x", "golive_rollback": "r-1"},
        "not json",
        None,
    ],
)
def test_malformed_killswitch_requests_change_nothing(
    views: ModuleType, stores: ApiStores, body: Any
) -> None:
    # When a malformed body is posted by an authenticated caller
    before = stores.switch.status()
    status, _, _ = call(
        views, api_event("POST", "/api/v1/killswitch", body=body, user_arn=USER_ARN)
    )

    # Then it is rejected and neither the switch nor the audit trail changed
    assert status == 422
    assert stores.switch.status() == before and before.on is False
    assert stores.audit.recent() == []


def test_the_risk_view_shows_a_rollback_switch_s_marker_and_an_operator_post_drops_it(
    views: ModuleType, stores: ApiStores
) -> None:
    from tests.support.killswitch import rollback_engaged_of

    # Given a go-live rollback engaged the switch
    stores.switch.set(True, "go-live r-1 rollback: CanarySloBreach", "system:golive",
                      golive_rollback="r-1")  # fmt: skip
    # Then the risk view names the run
    status, body, _ = call(views, api_event("GET", "/api/v1/risk"))
    assert status == 200 and body["kill_switch"]["golive_rollback"] == "r-1"
    # When an operator posts the switch on with a reason worded like the rollback's
    posted = call(views, api_event("POST", "/api/v1/killswitch", user_arn=USER_ARN,
                                   body={"on": True, "reason": "go-live r-1 rollback: by hand"}))  # fmt: skip
    # Then it is the operator's stop: no marker, not read as the rollback's
    assert posted[0] == 200 and posted[1]["kill_switch"]["golive_rollback"] is None
    assert not rollback_engaged_of(stores.switch.status())


def test_a_body_that_is_not_utf8_is_a_422_not_a_crash(views: ModuleType, stores: ApiStores) -> None:
    # Given a binary body, base64-encoded by API Gateway
    event = api_event("POST", "/api/v1/killswitch", user_arn=USER_ARN)
    event["body"] = base64.b64encode(b"\xff\xfe:wN\xd7").decode()
    event["isBase64Encoded"] = True

    # When it is posted, then it is rejected as invalid input and nothing changes
    status, body, _ = call(views, event)
    assert status == 422 and body["detail"][0]["loc"] == ["body"]
    assert stores.audit.recent() == [] and stores.switch.is_on() is False


def test_killswitch_without_a_caller_identity_is_401(views: ModuleType, stores: ApiStores) -> None:
    # Given a request that reached the function without API Gateway authentication
    event = api_event(
        "POST", "/api/v1/killswitch", body={"on": True, "reason": "who am I"}, api_key_id=None
    )

    # When it is posted
    status, _, _ = call(views, event)

    # Then it is refused and nothing is written
    assert status == 401
    assert stores.audit.recent() == [] and stores.switch.is_on() is False


# --------------------------------------------------------------------------- logs & metrics


def test_every_log_line_carries_the_correlation_id_and_no_secret(
    api: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the handler's logger writing to a buffer
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(api.logger.registered_formatter)
    api.logger.addHandler(handler)
    try:
        # When a kill-switch call carries an e-mail and a token in its reason
        call(api, api_event(
            "POST", "/api/v1/killswitch",
            body={"on": True, "reason": "paged by ops@example.com token=abc123secret"},
            headers={"X-Correlation-Id": "corr-log-1"},
        ))  # fmt: skip
    finally:
        api.logger.removeHandler(handler)

    # Then every line is JSON with the correlation id and none leaks the secrets
    lines = [json.loads(line) for line in buffer.getvalue().splitlines()]
    assert {line["message"] for line in lines} >= {"kill-switch set", "request handled"}
    assert all(line["correlation_id"] == "corr-log-1" for line in lines)
    assert "ops@example.com" not in buffer.getvalue()
    assert "abc123secret" not in buffer.getvalue()
    # and the EMF output has the request count and latency per route
    emf = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith('{"_aws"')]
    names = {
        m["Name"] for rec in emf for d in rec["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]
    }
    assert {"ApiRequests", "ApiLatency"} <= names
    assert any(
        rec.get("route") == "/api/v1/killswitch" and rec.get("status") == "2xx" for rec in emf
    )


def test_each_request_counts_toward_the_stage_slis_and_5xx_are_its_errors(
    api: ModuleType,
    aws: AwsClients,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given the API deployed for the canary stage
    monkeypatch.setenv("CST_STAGE", "canary")
    _common.reset_caches()
    capsys.readouterr()

    # When it answers a 200, a 404, a 422, a 503 (a dependency fails) and a 500 (a defect)
    statuses = [
        call(api, api_event("GET", "/api/v1/health"))[0],
        call(api, api_event("GET", "/api/v1/secrets"))[0],
        call(api, api_event("GET", "/api/v1/signals", query={"limit": "0"}))[0],
    ]
    aws.dynamodb.delete_table(TableName=AwsResources().positions_table)
    statuses.append(call(api, api_event("GET", "/api/v1/positions"))[0])
    with monkeypatch.context() as broken:
        broken.setattr(api.app, "resolve", lambda *_: 1 / 0)
        statuses.append(call(api, api_event("GET", "/api/v1/risk"))[0])
    assert statuses == [200, 404, 422, 503, 500]

    # Then each request is one Requests sample and only the two 5xx are Errors, published
    # under Stage=canary alone (what the canary gate reads), one record per request
    records = emf_records(capsys.readouterr().out)
    slis = [p for p in emf_points(records) if p["name"] in {"Requests", "Errors"}]
    assert {(p["namespace"], tuple(p["dimensions"].items())) for p in slis} == {
        ("CryptoSmartTrader", (("Stage", "canary"),))
    }
    assert [p["value"] for p in slis if p["name"] == "Requests"] == [1.0] * 5
    assert [p["value"] for p in slis if p["name"] == "Errors"] == [0.0, 0.0, 0.0, 1.0, 1.0]


def test_audit_trail_is_append_only(aws: AwsClients) -> None:
    from cryptosmarttrader.adapters.audit import DuplicateAuditEntryError

    trail = DynamoAuditTrail(AwsResources().state_table, aws.dynamodb)
    at = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
    trail.record(actor="a", action="killswitch.on", at=at, request_id="same")

    with pytest.raises(DuplicateAuditEntryError):
        trail.record(actor="b", action="killswitch.off", at=at, request_id="same")
    assert [e.actor for e in trail.recent()] == ["a"]


def test_an_outcome_entry_that_cannot_be_written_still_leaves_the_change_audited(
    api: ModuleType, aws: AwsClients
) -> None:
    # Given the audit store accepts the request entry, then fails
    from botocore.exceptions import ClientError

    audit_puts: list[str] = []

    def second_audit_put_fails(params: dict[str, Any], **_: Any) -> None:
        if params.get("Item", {}).get("pk", {}).get("S") == "audit":
            audit_puts.append(params["Item"]["action"]["S"])
            if len(audit_puts) > 1:
                raise ClientError(
                    {"Error": {"Code": "InternalServerError", "Message": "down"}}, "PutItem"
                )

    ddb = _common.aws_clients().dynamodb
    ddb.meta.events.register("before-parameter-build.dynamodb.PutItem", second_audit_put_fails)
    try:
        status, body, _ = call(api, api_event("POST", "/api/v1/killswitch", user_arn=USER_ARN,
                                              body={"on": True, "reason": "half audited"}))  # fmt: skip
    finally:
        ddb.meta.events.unregister(
            "before-parameter-build.dynamodb.PutItem", second_audit_put_fails
        )

    # Then the switch is on and the answer says so, with the request entry as the record
    assert status == 200, body
    assert body["kill_switch"]["on"] is True and _switch(aws)["on"] is True
    assert body["audit_id"] is None
    (intent,) = DynamoAuditTrail(AwsResources().state_table, aws.dynamodb).recent()
    assert intent.action == "killswitch.on.requested"
    assert body["request_audit_id"] == intent.sort_key
    assert audit_puts == ["killswitch.on.requested", "killswitch.on"]


def test_a_damaged_record_leaves_the_risk_view_up_and_names_its_coin(
    views: ModuleType, stores: ApiStores
) -> None:
    # Given a sound position of SOL, and an open buy of AVAX recorded with a fee below zero
    stores.positions.upsert(
        {"symbol": "SOL", "quantity": 10, "cost": 1200, "notional": 1200, "average_price": 120,
         "updated_at": "2024-03-01T00:20:00+00:00"},
        None,
    )  # fmt: skip
    stores.orders.put_new(
        {"client_order_id": "a" * 32, "symbol": "AVAX", "side": "buy", "intent": "open",
         "strategy": "s", "signal_bar_ms": 1, "mode": "paper", "quantity": 20,
         "reference_price": 41, "status": "PARTIALLY_FILLED", "filled": 1, "fee": -1,
         "created_at": "2024-03-01T00:15:00+00:00"}
    )  # fmt: skip
    # When the risk view is requested
    status, risk, _ = call(views, api_event("GET", "/api/v1/risk"))
    # Then it answers: SOL's exposure is shown, AVAX is named unreadable with why (not "none")
    assert status == 200
    assert {k: float(v) for k, v in risk["exposure_usd"].items()} == {"SOL": 1200.0}
    assert list(risk["unreadable_records"]) == ["AVAX"]
    assert "fee" in risk["unreadable_records"]["AVAX"]


def test_damaged_records_leave_the_positions_view_up_and_are_named(
    views: ModuleType, stores: ApiStores
) -> None:
    # Given a sound position of SOL and one of BTC whose quantity is not a number, a sound open
    # order of AVAX and one recorded without its coin
    positions = stores.positions
    positions.upsert(
        {"symbol": "SOL", "quantity": 10, "cost": 1200, "notional": 1200, "average_price": 120,
         "updated_at": "2024-03-01T00:20:00+00:00"},
        None,
    )  # fmt: skip
    positions.upsert({"symbol": "BTC", "quantity": "lots", "cost": 1200}, None)
    orders = stores.orders
    base = {"side": "buy", "intent": "open", "strategy": "s", "signal_bar_ms": 1, "mode": "paper",
            "quantity": 20, "reference_price": 41, "status": "SUBMITTED",
            "created_at": "2024-03-01T00:15:00+00:00"}  # fmt: skip
    orders.put_new({**base, "client_order_id": "a" * 32, "symbol": "AVAX"})
    orders.put_new({**base, "client_order_id": "b" * 32})
    # When the positions are requested
    status, body, _ = call(views, api_event("GET", "/api/v1/positions"))
    # Then they answer with what can be read, exactly as stored
    assert status == 200, body
    assert body["positions"] == [
        {"symbol": "SOL", "quantity": "10", "notional": "1200", "average_price": "120",
         "updated_at": "2024-03-01T00:20:00+00:00"}
    ]  # fmt: skip
    assert body["open_orders"] == [
        {"client_order_id": "a" * 32, "symbol": "AVAX", "side": "buy", "status": "SUBMITTED",
         "quantity": "20", "notional": "820", "mode": "paper",
         "created_at": "2024-03-01T00:15:00+00:00"}
    ]  # fmt: skip
    # and each damaged record is named with its key, its coin (unknown: "*") and why
    bad_position, bad_order = body["unreadable_records"]
    assert bad_position.startswith("record 'BTC' of BTC unreadable: InvalidOperation")
    assert bad_order.startswith(f"record '{'b' * 32}' of * unreadable: KeyError")


@pytest.mark.parametrize("mode", ["paper", "testnet", "live"])
def test_risk_and_deep_health_say_where_orders_go(
    api: ModuleType, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    # Given the stack's venue mode on the API function (the same as the execution function's)
    monkeypatch.setenv("CST_VENUE_MODE", mode)
    api._service.cache_clear()
    # When risk and the deep health are requested, Then both name it
    status, risk, _ = call(api, api_event("GET", "/api/v1/risk"))
    assert status == 200 and risk["venue_mode"] == mode
    _, health, _ = call(api, api_event("GET", "/api/v1/health"))
    assert health["venue_mode"] == mode
