"""API Lambda: API Gateway (REST, proxy integration) → the route table below → ApiService.

The route table (:data:`ROUTES`: method, path, parameters with their constraints, body model,
OpenAPI metadata) is served by a small router over the proxy event (``handlers/_router``) and is
the OpenAPI document (``cst api openapi`` writes ``docs/openapi.json``; ``handlers/api_openapi``
builds it from this table and the services' pydantic models, never at a cold start).
Malformed query strings, path parameters and bodies are rejected with 422 before any code runs.
API Gateway enforces authentication: an API key of the usage plan on every method but the two
public ones (``GET /health``, a liveness answer that reveals nothing, and ``GET /openapi.json``,
this document), IAM SigV4 as well on ``POST /api/v1/killswitch``; the handler re-checks that a
state-changing call carries a caller identity and records it in the audit trail. The deep
dependency check is ``GET /api/v1/health``, behind the key.

Every request runs under one correlation id (``X-Correlation-Id`` if the caller sent a valid
one, else API Gateway's request id), logged on every line and echoed in the response header of
every answer. Every answer is counted (``ApiRequests`` per route and status class,
``ApiLatency``) and counts toward the stage's SLIs: ``Requests``, and ``Errors`` when the answer
is a 5xx (``Stage=<CST_STAGE>``).

Cold start: at most 1.5x ``import boto3`` (``bench/bench_cold_import.py``). Measured against
``import boto3`` alone (1.00x, CPU time of fresh processes), this module used to spend 3.0x:
Powertools' Event Handler with its OpenAPI models 1.88x on its own, the Powertools Tracer's
X-Ray SDK +0.7x, and the services' pydantic models and the DynamoDB stores (boto3 itself) the
rest. Now it imports Powertools Logger and Metrics (the same JSON log lines and EMF metrics),
pydantic's validator core for the parameters, and the route table; the services, their
pydantic models, the settings and the AWS clients are imported on the first request that needs
them (``GET /health`` needs none), and the OpenAPI document is built on the first request for
it. There is no Powertools Tracer: Lambda's active tracing still records every invocation.
Measured now: 0.37x (virtual environment; was 3.46x), 0.81x (its bundle; was 5.38x); a first
data request then imports +1.65x (+2.51x from the bundle, where nothing is precompiled).
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from typing import TYPE_CHECKING, Any, Final, Literal

from aws_lambda_powertools import Logger, Metrics

from cryptosmarttrader.adapters.emf_metrics import METRICS_NAMESPACE, EmfMetrics, StageMetrics
from cryptosmarttrader.domain import jsonout
from cryptosmarttrader.domain import metric_names as mn
from cryptosmarttrader.domain.sanitize import sanitize_text, sanitized_json
from cryptosmarttrader.domain.types import Action
from cryptosmarttrader.handlers._router import (
    Cors,
    HttpError,
    Request,
    Response,
    Route,
    Router,
    enum_query,
    int_query,
    literal_query,
    str_param,
)

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from cryptosmarttrader.services.api import (
        ApiService,
        KillSwitchRequest,
        KillSwitchResponse,
        MarketOverview,
        PositionsResponse,
        RiskResponse,
        SignalsResponse,
    )
    from cryptosmarttrader.services.dashboard import (
        AuditResponse,
        BreakersResponse,
        CoinResponse,
        DashboardService,
        GoLiveResponse,
        ModelsResponse,
        PortfolioResponse,
    )

_SERVICE: Final = os.environ.get("POWERTOOLS_SERVICE_NAME", "api")
logger = Logger(service=_SERVICE, json_serializer=sanitized_json)
metrics = Metrics(
    namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", METRICS_NAMESPACE), service=_SERVICE
)

API_TITLE: Final = "CryptoSmartTrader API"
API_VERSION: Final = "1.0.0"
API_KEY_SCHEME: Final = "apiKey"
SIGV4_SCHEME: Final = "sigv4"
PUBLIC_SECURITY: Final[tuple[dict[str, list[str]], ...]] = ()  # liveness and the document
READ_SECURITY: Final[tuple[dict[str, list[str]], ...]] = ({API_KEY_SCHEME: []},)
WRITE_SECURITY: Final[tuple[dict[str, list[str]], ...]] = ({API_KEY_SCHEME: [], SIGV4_SCHEME: []},)
ERROR_MODEL: Final = "ApiError"  # the error body's model (services.api), named for the document


# What API Gateway answers before the function runs: a missing/invalid API key or signature.
def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"model": ERROR_MODEL}}}


DENIED: Final[dict[int, dict[str, Any]]] = {
    403: _error("missing or invalid API key (or SigV4 signature), answered by API Gateway"),
    503: _error("a dependency (DynamoDB, SSM) failed; retry later"),
}
OK: Final = {200: {"description": "Successful Response"}}
CORRELATION_HEADER: Final = "X-Correlation-Id"
SERVER_ERROR: Final = 500
ISO_DATE: Final = r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"
# a CoinGecko coin id (services.dashboard.SYMBOL_PATTERN; a test keeps the two equal)
SYMBOL_PATTERN: Final = r"^[a-z0-9][a-z0-9._-]{0,63}$"
Timeframe = Literal["1d", "4h", "1h"]
TIMEFRAMES: Final = ("1d", "4h", "1h")
_CORRELATION_RE: Final = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

CORS_ORIGIN_ENV: Final = "CST_CORS_ORIGIN"


def cors_config(origin: str | None) -> Cors | None:
    """Browsers may read the answers from the web dashboard's origin only (none: no CORS, as
    behind `cst api serve`, where the dashboard is served from the API's own origin)."""
    if not origin:
        return None
    return Cors(
        allow_origin=origin,
        allow_headers=("Content-Type", "x-api-key", "Authorization", CORRELATION_HEADER),
        expose_headers=(CORRELATION_HEADER,),
        max_age=3600,
    )


@cache
def _service() -> ApiService:
    from cryptosmarttrader.adapters.audit import DynamoAuditTrail
    from cryptosmarttrader.adapters.dynamodb_signals import DynamoSignalStore
    from cryptosmarttrader.adapters.dynamodb_store import (
        DynamoOrderStore,
        DynamoPositionStore,
        DynamoStateStore,
    )
    from cryptosmarttrader.adapters.health import dependency_probes
    from cryptosmarttrader.adapters.ssm_killswitch import SsmKillSwitch
    from cryptosmarttrader.adapters.system_clock import SystemClock
    from cryptosmarttrader.handlers._common import aws_clients, resources, trading_settings
    from cryptosmarttrader.services.api import ApiService
    from cryptosmarttrader.services.risk_state import RiskStateService
    from cryptosmarttrader.settings import VenueSettings

    res, clients, settings = resources(), aws_clients(), trading_settings()
    clock = SystemClock()
    state = DynamoStateStore(res.state_table, clients.dynamodb)
    kill_switch = SsmKillSwitch(res.kill_switch_param, clients.ssm, clock)
    return ApiService(
        signals=DynamoSignalStore(state),
        positions=DynamoPositionStore(res.positions_table, clients.dynamodb),
        orders=DynamoOrderStore(res.orders_table, clients.dynamodb),
        risk=RiskStateService(store=state, kill_switch=kill_switch, clock=clock),
        kill_switch=kill_switch,
        audit=DynamoAuditTrail(res.state_table, clients.dynamodb),
        probes=dependency_probes(clients, res, settings),
        clock=clock,
        equity_usd=Decimal(str(settings.equity_usd)),
        max_asset_fraction=Decimal(str(settings.max_asset_fraction)),
        venue_mode=VenueSettings().venue_mode,
    )


# The dashboard's model registry and candle sources (polars, numpy, the lake's Parquet) are
# imported on the first request that needs them, never at a cold start; the audit, breakers and
# go-live views never import them. The three routes that need them (the coin view's and the
# portfolio marks' Parquet candles, the models view's registry) are served by the API's lake
# function (``lake_views_handler``, a bundle with polars); API Gateway sends every other route
# to this function, whose bundle holds neither polars nor numpy (infra/constructs/api.py).
LAKE_ROUTES: Final = ("/api/v1/coins/{symbol}", "/api/v1/portfolio", "/api/v1/models")


@cache
def _dashboard() -> DashboardService:
    from cryptosmarttrader.adapters.audit import DynamoAuditTrail
    from cryptosmarttrader.adapters.dynamodb_signals import DynamoSignalStore
    from cryptosmarttrader.adapters.dynamodb_store import (
        DynamoOrderStore,
        DynamoPositionStore,
        DynamoStateStore,
    )
    from cryptosmarttrader.adapters.system_clock import SystemClock
    from cryptosmarttrader.handlers._common import aws_clients, resources, trading_settings
    from cryptosmarttrader.services.dashboard import DashboardService
    from cryptosmarttrader.services.golive import GoLiveSettings

    res, clients, settings = resources(), aws_clients(), trading_settings()
    state = DynamoStateStore(res.state_table, clients.dynamodb)
    return DashboardService(
        signals=DynamoSignalStore(state),
        positions=DynamoPositionStore(res.positions_table, clients.dynamodb),
        orders=DynamoOrderStore(res.orders_table, clients.dynamodb),
        state=state,
        audit=DynamoAuditTrail(res.state_table, clients.dynamodb),
        registry=None,
        registry_kind="",
        bars=_lazy_bars(),
        clock=SystemClock(),
        starting_equity=Decimal(str(settings.equity_usd)),
        thresholds=GoLiveSettings().thresholds(),
    )


def _models_dashboard() -> DashboardService:
    """The dashboard with this deployment's model registry (numpy and polars: the lake
    function only). Built per request on the cached dashboard: the registry holds no state."""
    from cryptosmarttrader.adapters.model_registry_embedded import EmbeddedModelRegistry
    from cryptosmarttrader.handlers._common import aws_clients, resources
    from cryptosmarttrader.services.model_registry import MlSettings

    res, clients = resources(), aws_clients()
    ml = MlSettings()
    registry = (
        EmbeddedModelRegistry(
            ml.model_group,
            bucket=ml.model_bucket or res.lake_bucket,
            table=res.state_table,
            s3=clients.s3,
            dynamodb=clients.dynamodb,
            prefix=ml.model_prefix,
        )
        if ml.model_registry == "embedded"
        else None
    )
    return dataclasses.replace(_dashboard(), registry=registry, registry_kind=ml.model_registry)


def _lazy_bars() -> Any:
    """The candle source, built (and polars imported) on the first candle read."""
    built: list[Any] = []

    def bars(symbol: str, timeframe: str, start: datetime, end: datetime) -> Any:
        if not built:
            built.append(_bars_source())
        return built[0](symbol, timeframe, start, end)

    return bars


def _bars_source() -> Any:
    """Candles of a coin by its CoinGecko id: the recorded data (local runs), else the lake
    the ingest Lambda fills (the coin's USDT pair through the explicit pair table)."""
    from cryptosmarttrader.handlers._common import aws_clients, resources, trading_settings

    settings = trading_settings()
    if settings.data_source == "recorded":
        from cryptosmarttrader.adapters.recorded_data import RecordedMarketData
        from cryptosmarttrader.wiring import resolve_data_dir

        recorded = RecordedMarketData(resolve_data_dir(settings.data_dir))
        return recorded.ohlcv
    from cryptosmarttrader.adapters.s3_lake import LakeError, S3ParquetLake
    from cryptosmarttrader.domain.coins import COINGECKO_IDS

    lake = S3ParquetLake(resources().lake_bucket, aws_clients().s3)
    pair_of_coin = {coin: f"{base}/USDT" for base, coin in COINGECKO_IDS.items()}

    def from_lake(symbol: str, timeframe: str, start: datetime, end: datetime) -> Any:
        pair = pair_of_coin.get(symbol)
        if pair is None:
            raise LookupError(f"no exchange pair is mapped to coin {symbol!r}")
        try:
            return lake.read_candles(settings.exchange, timeframe, pair, start, end)
        except LakeError as exc:
            # the lake (S3) failed: a dependency unavailable, answered 503 like the stores
            # (the error's type, never its bucket and key)
            logger.exception("lake read failed")
            raise HttpError(
                503, f"a dependency is unavailable: the lake ({type(exc).__name__})"
            ) from exc

    return from_lake


def correlation_id_of(event: dict[str, Any], request_id: str) -> str:
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    sent = headers.get(CORRELATION_HEADER.lower())
    if isinstance(sent, str) and _CORRELATION_RE.match(sent):
        return sent
    return request_id


def caller_identity() -> str | None:
    """Who is calling, as API Gateway authenticated it: IAM principal, else API key id."""
    identity = app.current_request.identity
    if identity.get("userArn"):
        return f"iam:{identity['userArn']}"
    if identity.get("apiKeyId"):
        return f"apikey:{identity['apiKeyId']}"
    return None


def _observe(request: Request, response: Response, elapsed_ms: float) -> None:
    """Every answer: its correlation id echoed, counted per route and status class, timed, and
    one access log line."""
    route = request.resource or "unknown"
    status = f"{response.status_code // 100}xx"
    emf = EmfMetrics(metrics)
    emf.add(mn.API_REQUESTS.name, 1, mn.API_REQUESTS.unit, {"route": route, "status": status})
    emf.add(mn.API_LATENCY.name, elapsed_ms, mn.API_LATENCY.unit, {"route": route})
    response.headers[CORRELATION_HEADER] = logger.get_correlation_id() or ""
    logger.info(
        "request handled",
        extra={"route": route, "status": response.status_code, "latency_ms": round(elapsed_ms, 3)},
    )


def _invalid_request(errors: list[dict[str, Any]]) -> Response:
    """422 with the documented ``HTTPValidationError`` shape. Messages are pydantic's generic
    texts (never the input), sanitized all the same."""
    detail = [
        {"loc": list(e["loc"]), "msg": sanitize_text(str(e.get("msg", ""))), "type": e["type"]}
        for e in errors
    ]
    return Response(422, {"statusCode": 422, "detail": detail})


# A dependency's failure, by the modules that define it: an instance implies its module is
# loaded, so the check never imports boto3 or the stores.
_DEPENDENCY_ERRORS: Final = (
    ("cryptosmarttrader.adapters.dynamodb_store", "StoreError"),
    ("botocore.exceptions", "ClientError"),
    ("botocore.exceptions", "BotoCoreError"),
)


def _is_dependency_failure(exc: Exception) -> bool:
    for module_name, name in _DEPENDENCY_ERRORS:
        module = sys.modules.get(module_name)
        if module is not None and isinstance(exc, getattr(module, name)):
            return True
    return False


def _dependency_failed(exc: Exception) -> Response | None:
    if not _is_dependency_failure(exc):
        return None  # a defect: the handler's last resort answers it
    logger.exception("dependency failed")
    message = f"a dependency is unavailable: {type(exc).__name__}"
    return Response(503, {"statusCode": 503, "message": message})


PUBLIC_ROUTES: Final = ("/health", "/openapi.json")  # API Gateway asks no key for these two


def liveness() -> Response:
    """``Liveness()`` (its document model), answered without importing the services."""
    return Response(200, {"status": "ok"})


def openapi_document() -> Response:
    return Response(200, _openapi_body())


def health() -> Response:
    result = _service().health()
    return Response(200 if result.status == "ok" else 503, result)


def market_overview(top: int) -> MarketOverview:
    return _service().market_overview(top)


def signals(asof: str | None, action: Action | None, limit: int) -> SignalsResponse:
    try:
        day = None if asof is None else date.fromisoformat(asof)
    except ValueError:  # well-formed but not a calendar day (2024-02-30): no scan ran then
        from cryptosmarttrader.services.api import SignalsResponse

        return SignalsResponse(asof=None, count=0, signals=[])
    return _service().signals_for(day, action, limit)


def positions() -> PositionsResponse:
    return _service().positions_view()


def risk() -> RiskResponse:
    return _service().risk_view()


def killswitch(request: KillSwitchRequest) -> KillSwitchResponse:
    actor = caller_identity()
    if actor is None:
        raise HttpError(401, "state-changing calls need an authenticated caller")
    request_id = str(app.current_request.request_context.get("requestId"))
    result = _service().set_kill_switch(
        request,
        actor=actor,
        request_id=request_id,
        correlation_id=logger.get_correlation_id(),
    )
    logger.info(
        "kill-switch set",
        extra={
            "on": request.on,
            "actor": actor,
            "audit_id": result.audit_id,
            "request_audit_id": result.request_audit_id,
        },
    )
    if result.audit_id is None:
        logger.error(
            "kill-switch set, outcome not audited (its request entry is)",
            extra={"request_audit_id": result.request_audit_id},
        )
    return result


def coin(symbol: str, days: int, timeframe: Timeframe) -> CoinResponse:
    from cryptosmarttrader.services.dashboard import UnknownSymbolError

    try:
        return _dashboard().coin_view(symbol, days, timeframe)
    except UnknownSymbolError as exc:
        raise HttpError(404, str(exc)) from exc


def portfolio() -> PortfolioResponse:
    return _dashboard().portfolio_view()


def audit(limit: int) -> AuditResponse:
    return _dashboard().audit_view(limit)


def breakers() -> BreakersResponse:
    return _dashboard().breakers_view()


def golive(runs: int) -> GoLiveResponse:
    return _dashboard().golive_view(runs)


def models() -> ModelsResponse:
    return _models_dashboard().models_view()


def _killswitch_request() -> type[KillSwitchRequest]:
    from cryptosmarttrader.services.api import KillSwitchRequest

    return KillSwitchRequest


# The API: every route, its parameters and their constraints, and its OpenAPI metadata.
ROUTES: Final = (
    Route("GET", "/health", liveness,
          summary="Liveness: the API answers (public; no dependency is checked or named)",
          tags=("system",), security=PUBLIC_SECURITY,
          responses={200: {"description": "the API answers"}}),
    Route("GET", "/openapi.json", openapi_document,
          summary="This OpenAPI 3 document (public)", tags=("system",),
          security=PUBLIC_SECURITY,
          responses={200: {"description": "the OpenAPI document of this API"}}),
    Route("GET", "/api/v1/health", health,
          summary="Deep health: DynamoDB, S3, SSM and exchange reachability",
          tags=("system",), security=READ_SECURITY,
          responses={**DENIED, 200: {"description": "every AWS dependency answered"},
                     503: {"description": "an AWS dependency failed (body lists which)"}}),
    Route("GET", "/api/v1/market/overview", market_overview,
          (int_query("top", default=10, ge=1, le=50, description="opportunities to return"),),
          summary="Universe, regime, top opportunities and risk level from the latest scan",
          tags=("market",), security=READ_SECURITY, responses={**OK, **DENIED}),
    Route("GET", "/api/v1/signals", signals,
          (str_param("asof", "query", pattern=ISO_DATE, default=None,
                     description="as-of date YYYY-MM-DD"),
           enum_query("action", Action, description="only this action"),
           int_query("limit", default=100, ge=1, le=1000)),
          summary="Ranked signals of the latest scan (or of one as-of date)",
          tags=("market",), security=READ_SECURITY, responses={**OK, **DENIED}),
    Route("GET", "/api/v1/positions", positions,
          summary="Open positions and non-terminal orders",
          tags=("trading",), security=READ_SECURITY, responses={**OK, **DENIED}),
    Route("GET", "/api/v1/risk", risk,
          summary="RiskGuard level, kill-switch, exposure and recent level transitions",
          tags=("trading",), security=READ_SECURITY, responses={**OK, **DENIED}),
    Route("POST", "/api/v1/killswitch", killswitch, body=_killswitch_request,
          summary="Turn the kill-switch on or off (authenticated, reason required, audited)",
          tags=("trading",), security=WRITE_SECURITY,
          responses={**DENIED,
                     200: {"description": "request audited, switch written, outcome audited"},
                     401: _error("no authenticated caller identity")}),
    Route("GET", "/api/v1/coins/{symbol}", coin,
          (str_param("symbol", "path", pattern=SYMBOL_PATTERN, max_length=64,
                     description="CoinGecko coin id, lower case (e.g. bitcoin, chiliz)"),
           int_query("days", default=120, ge=7, le=730, description="days of history shown"),
           literal_query("timeframe", TIMEFRAMES, Timeframe, default="1d",
                         description="bars of the price chart")),
          summary="One coin: bars, decisions, orders and fills, position, feature history",
          tags=("dashboard",), security=READ_SECURITY,
          responses={**OK, 404: _error("no bars, decisions, orders or position for this symbol"),
                     **DENIED,
                     503: _error("the lake (the candles' store) or another dependency failed; "
                                 "retry later")}),
    Route("GET", "/api/v1/portfolio", portfolio,
          summary="Positions, orders with their status history, equity curve, PnL, drawdown, "
                  "tracking",
          tags=("dashboard",), security=READ_SECURITY, responses={**OK, **DENIED}),
    Route("GET", "/api/v1/audit", audit,
          (int_query("limit", default=50, ge=1, le=500, description="entries to return"),),
          summary="The audit trail of state-changing calls, newest first",
          tags=("dashboard",), security=READ_SECURITY, responses={**OK, **DENIED}),
    Route("GET", "/api/v1/breakers", breakers,
          summary="Circuit breakers: the RiskGuard's (with the last measured values) and "
                  "ingest's",
          tags=("dashboard",), security=READ_SECURITY, responses={**OK, **DENIED}),
    Route("GET", "/api/v1/golive", golive,
          (int_query("runs", default=10, ge=1, le=100, description="newest runs to return"),),
          summary="Go-live: the active stage, its SLO gates, runs with transitions, evaluations",
          tags=("dashboard",), security=READ_SECURITY, responses={**OK, **DENIED}),
    Route("GET", "/api/v1/models", models,
          summary="The model registry: every version with its stage and evaluation",
          tags=("dashboard",), security=READ_SECURITY, responses={**OK, **DENIED}),
)  # fmt: skip

app = Router(
    ROUTES,
    observe=_observe,
    invalid=_invalid_request,
    errors=_dependency_failed,
    cors=cors_config(os.environ.get(CORS_ORIGIN_ENV)),
)


@cache
def _openapi_body() -> Any:
    import json

    return json.loads(openapi_json())


def openapi_json(servers: list[str] | None = None) -> str:
    """The OpenAPI 3 document of this API (the published ``docs/openapi.json``), built from
    :data:`ROUTES` by ``handlers/api_openapi`` (Powertools' generator and the services'
    pydantic models: imported here, on the first call, never at a cold start)."""
    from cryptosmarttrader.handlers.api_openapi import Document
    from cryptosmarttrader.handlers.api_openapi import openapi_json as build

    document = Document(
        title=API_TITLE,
        version=API_VERSION,
        description=(
            "Read-only market, signal, position and risk views, liveness and deep health, "
            "and the audited kill-switch of CryptoSmartTrader."
        ),
        api_key_scheme=API_KEY_SCHEME,
        sigv4_scheme=SIGV4_SCHEME,
        error_model=ERROR_MODEL,
    )
    return build(ROUTES, document, servers)


STAGE_ENV: Final = "CST_STAGE"


def stage_slis() -> StageMetrics:
    """This deployment's stage SLI publisher, its stage read as ``DeploymentSettings`` reads
    ``CST_STAGE`` (not case-sensitive; unset: ``staging``; a test keeps the two equal) without
    importing the settings models, so a request that reads no AWS (``GET /health``) imports
    neither pydantic's model layer nor boto3. Any other stage fails here, at the request."""
    stage = next(
        (value for key, value in os.environ.items() if key.lower() == STAGE_ENV.lower()),
        "staging",
    )
    namespace = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", METRICS_NAMESPACE)
    return StageMetrics(stage, namespace)  # type: ignore[arg-type]  # it checks the stage


@metrics.log_metrics(capture_cold_start_metric=True)
@logger.inject_lambda_context(log_event=False)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request_id = str((event.get("requestContext") or {}).get("requestId") or context.aws_request_id)
    logger.set_correlation_id(correlation_id_of(event, request_id))
    try:
        response = app.resolve(event, context)
    except Exception:  # last resort: a sanitized log line and a plain 500, never a trace
        logger.exception("unhandled error")
        cid = logger.get_correlation_id() or request_id
        response = {
            "statusCode": 500,
            "headers": {"Content-Type": "application/json", CORRELATION_HEADER: cid},
            "body": jsonout.dumps(
                {"statusCode": 500, "message": "internal error", "correlation_id": cid}
            ),
        }
    # The stage's SLIs count what the caller got, including answers no route produced
    # (dependency 503s, the 500 above): a server-side error is any status >= 500.
    server_error = int(response.get("statusCode", 500)) >= SERVER_ERROR
    stage_slis().emit((mn.REQUESTS, 1), (mn.ERRORS, 1 if server_error else 0))
    return response


# The same API on the lake function (a bundle with polars), which API Gateway invokes for the
# LAKE_ROUTES only: a name of its own, so the deployment says which function serves what.
lake_views_handler = handler
