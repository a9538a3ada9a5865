"""API Lambda: API Gateway (REST, proxy integration) → Powertools Event Handler → ApiService.

Routes and their pydantic models are the OpenAPI document (``cst api openapi`` writes
``docs/openapi.json``); ``enable_validation`` rejects malformed query strings and bodies with 422
before any code runs. API Gateway enforces authentication: an API key of the usage plan on
every method but the two public ones (``GET /health``, a liveness answer that reveals nothing,
and ``GET /openapi.json``, this document), IAM SigV4 as well on ``POST /api/v1/killswitch``; the
handler re-checks that a state-changing call carries a caller identity and records it in the
audit trail. The deep dependency check is ``GET /api/v1/health``, behind the key.

Every request runs under one correlation id (``X-Correlation-Id`` if the caller sent a valid
one, else API Gateway's request id), logged on every line and echoed in the response header.
Every request also counts toward the stage's SLIs: ``Requests``, and ``Errors`` when the answer
is a 5xx (``Stage=<CST_STAGE>``).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import time
from datetime import date, datetime
from decimal import Decimal
from functools import cache, partial
from typing import Annotated, Any, Final, Literal

from aws_lambda_powertools import Tracer
from aws_lambda_powertools.event_handler import (
    APIGatewayRestResolver,
    CORSConfig,
    Response,
    content_types,
)
from aws_lambda_powertools.event_handler.exceptions import (
    NotFoundError,
    ServiceUnavailableError,
    UnauthorizedError,
)
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.models import (
    APIKey,
    APIKeyIn,
    SecurityScheme,
    Server,
)
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.shared.json_encoder import Encoder
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError

from cryptosmarttrader.adapters.audit import DynamoAuditTrail
from cryptosmarttrader.adapters.dynamodb_signals import DynamoSignalStore
from cryptosmarttrader.adapters.dynamodb_store import (
    DynamoOrderStore,
    DynamoPositionStore,
    DynamoStateStore,
    StoreError,
)
from cryptosmarttrader.adapters.emf_metrics import EmfMetrics
from cryptosmarttrader.adapters.health import dependency_probes
from cryptosmarttrader.adapters.ssm_killswitch import SsmKillSwitch
from cryptosmarttrader.adapters.system_clock import SystemClock
from cryptosmarttrader.domain import jsonout
from cryptosmarttrader.domain import metric_names as mn
from cryptosmarttrader.domain.sanitize import sanitize_text
from cryptosmarttrader.domain.types import Action
from cryptosmarttrader.handlers._common import (
    aws_clients,
    make_logger,
    make_metrics,
    resources,
    stage_metrics,
    trading_settings,
)
from cryptosmarttrader.services.api import (
    ApiError,
    ApiService,
    HealthResponse,
    KillSwitchRequest,
    KillSwitchResponse,
    Liveness,
    MarketOverview,
    PositionsResponse,
    RiskResponse,
    SignalsResponse,
)
from cryptosmarttrader.services.dashboard import (
    SYMBOL_PATTERN,
    AuditResponse,
    BreakersResponse,
    CoinResponse,
    DashboardService,
    GoLiveResponse,
    ModelsResponse,
    PortfolioResponse,
    UnknownSymbolError,
)
from cryptosmarttrader.services.golive import GoLiveSettings
from cryptosmarttrader.services.risk_state import RiskStateService
from cryptosmarttrader.settings import VenueSettings

logger = make_logger("api")
metrics = make_metrics("api")
tracer = Tracer(service="api")

API_TITLE: Final = "CryptoSmartTrader API"
API_VERSION: Final = "1.0.0"
API_KEY_SCHEME: Final = "apiKey"
SIGV4_SCHEME: Final = "sigv4"
SECURITY_SCHEMES: Final[dict[str, SecurityScheme]] = {
    API_KEY_SCHEME: APIKey(
        name="x-api-key",
        in_=APIKeyIn.header,
        description="API Gateway API key of a usage plan (throttled, quota-limited).",
    ),
    SIGV4_SCHEME: APIKey(
        name="Authorization",
        in_=APIKeyIn.header,
        description="AWS Signature Version 4 (IAM): the caller needs execute-api:Invoke.",
    ),
}
PUBLIC_SECURITY: Final[list[dict[str, list[str]]]] = []  # no key: liveness and the document
READ_SECURITY: Final[list[dict[str, list[str]]]] = [{API_KEY_SCHEME: []}]
WRITE_SECURITY: Final[list[dict[str, list[str]]]] = [{API_KEY_SCHEME: [], SIGV4_SCHEME: []}]


# What API Gateway answers before the function runs: a missing/invalid API key or signature.
def _error(description: str) -> OpenAPIResponse:
    return {"description": description, "content": {"application/json": {"model": ApiError}}}


DENIED: Final[dict[int, OpenAPIResponse]] = {
    403: _error("missing or invalid API key (or SigV4 signature), answered by API Gateway"),
    503: _error("a dependency (DynamoDB, SSM) failed; retry later"),
}
CORRELATION_HEADER: Final = "X-Correlation-Id"
SERVER_ERROR: Final = 500
ISO_DATE: Final = r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"
_CORRELATION_RE: Final = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

CORS_ORIGIN_ENV: Final = "CST_CORS_ORIGIN"


def cors_config(origin: str | None) -> CORSConfig | None:
    """Browsers may read the answers from the web dashboard's origin only (none: no CORS, as
    behind `cst api serve`, where the dashboard is served from the API's own origin)."""
    if not origin:
        return None
    return CORSConfig(
        allow_origin=origin,
        allow_headers=["Content-Type", "x-api-key", "Authorization", CORRELATION_HEADER],
        expose_headers=[CORRELATION_HEADER],
        max_age=3600,
        allow_credentials=False,
    )


# strict JSON answers: a non-finite number is null, never NaN / Infinity (see domain.jsonout)
app = APIGatewayRestResolver(
    enable_validation=True,
    serializer=partial(jsonout.dumps, separators=(",", ":"), cls=Encoder),
    cors=cors_config(os.environ.get(CORS_ORIGIN_ENV)),
)


@cache
def _service() -> ApiService:
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
            raise ServiceUnavailableError(
                f"a dependency is unavailable: the lake ({type(exc).__name__})"
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
    identity = app.current_event.request_context.identity
    if identity.user_arn:
        return f"iam:{identity.user_arn}"
    if identity.api_key_id:
        return f"apikey:{identity.api_key_id}"
    return None


def _observe(app: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response[Any]:
    started = time.perf_counter()
    response = next_middleware(app)
    elapsed_ms = (time.perf_counter() - started) * 1000.0
    route = app.current_event.resource or "unknown"
    status = f"{response.status_code // 100}xx"
    emf = EmfMetrics(metrics)
    emf.add(mn.API_REQUESTS.name, 1, mn.API_REQUESTS.unit, {"route": route, "status": status})
    emf.add(mn.API_LATENCY.name, elapsed_ms, mn.API_LATENCY.unit, {"route": route})
    response.headers[CORRELATION_HEADER] = logger.get_correlation_id() or ""
    logger.info(
        "request handled",
        extra={"route": route, "status": response.status_code, "latency_ms": round(elapsed_ms, 3)},
    )
    return response


def _known_query_only(
    app: APIGatewayRestResolver, next_middleware: NextMiddleware
) -> Response[Any]:
    """A query parameter the route does not declare is a 422 (the validation error's shape),
    never silently ignored: a misspelt ``limt=5`` would otherwise answer with the default."""
    route = app.context.get("_route")  # the matched route (set by the resolver)
    if route is None or getattr(route.func, "__module__", None) != __name__:
        return next_middleware(app)  # the resolver's own not-found route answers as it does
    declared = {p.alias for p in route.dependant.query_params}
    sent = app.current_event.resolved_query_string_parameters or {}
    unknown = sorted(set(sent) - declared)
    if unknown:
        refused: Response[Any] = _invalid_request(
            RequestValidationError(
                [
                    {
                        "loc": ("query", name),
                        "msg": "unknown query parameter",
                        "type": "extra_forbidden",
                    }
                    for name in unknown
                ]
            )
        )
        return refused
    return next_middleware(app)


app.use(middlewares=[_observe, _known_query_only])


@app.exception_handler(RequestValidationError)  # type: ignore[untyped-decorator]
def _invalid_request(exc: RequestValidationError) -> Response[dict[str, Any]]:
    """422 with the documented ``HTTPValidationError`` shape (Powertools' default omits ``msg``).

    Messages are pydantic's generic texts (never the input), sanitized all the same.
    """
    detail = [
        {"loc": list(e["loc"]), "msg": sanitize_text(str(e.get("msg", ""))), "type": e["type"]}
        for e in exc.errors()
    ]
    return Response(
        status_code=422,
        content_type=content_types.APPLICATION_JSON,
        body={"statusCode": 422, "detail": detail},
    )


@app.exception_handler(UnicodeDecodeError)  # type: ignore[untyped-decorator]
def _undecodable_body(_: UnicodeDecodeError) -> Response[dict[str, Any]]:
    """A body that is not UTF-8 (Powertools' JSON decoding raises instead of rejecting it)."""
    return Response(
        status_code=422,
        content_type=content_types.APPLICATION_JSON,
        body={
            "statusCode": 422,
            "detail": [{"loc": ["body"], "msg": "body is not UTF-8 JSON", "type": "json_invalid"}],
        },
    )


@app.exception_handler([StoreError, ClientError, BotoCoreError])  # type: ignore[untyped-decorator]
def _dependency_failed(exc: Exception) -> Response[dict[str, Any]]:
    logger.exception("dependency failed")
    raise ServiceUnavailableError(f"a dependency is unavailable: {type(exc).__name__}")


PUBLIC_ROUTES: Final = ("/health", "/openapi.json")  # API Gateway asks no key for these two


@app.get(
    "/health",
    summary="Liveness: the API answers (public; no dependency is checked or named)",
    tags=["system"],
    security=PUBLIC_SECURITY,
    responses={200: {"description": "the API answers"}},
)
def liveness() -> Liveness:
    return Liveness()


@app.get(
    "/openapi.json",
    summary="This OpenAPI 3 document (public)",
    tags=["system"],
    security=PUBLIC_SECURITY,
    responses={200: {"description": "the OpenAPI document of this API"}},
)
def openapi_document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(_openapi_body())
    return document


@app.get(
    "/api/v1/health",
    summary="Deep health: DynamoDB, S3, SSM and exchange reachability",
    tags=["system"],
    security=READ_SECURITY,
    responses={
        **DENIED,
        200: {"description": "every AWS dependency answered"},
        503: {"description": "an AWS dependency failed (body lists which)"},
    },
)
def health() -> Response[HealthResponse]:
    result = _service().health()
    return Response(
        status_code=200 if result.status == "ok" else 503,
        content_type=content_types.APPLICATION_JSON,
        body=result,
    )


@app.get(
    "/api/v1/market/overview",
    summary="Universe, regime, top opportunities and risk level from the latest scan",
    tags=["market"],
    security=READ_SECURITY,
    responses={200: {"description": "Successful Response"}, **DENIED},
)
def market_overview(
    top: Annotated[int, Query(ge=1, le=50, description="opportunities to return")] = 10,
) -> MarketOverview:
    return _service().market_overview(top)


@app.get(
    "/api/v1/signals",
    summary="Ranked signals of the latest scan (or of one as-of date)",
    tags=["market"],
    security=READ_SECURITY,
    responses={200: {"description": "Successful Response"}, **DENIED},
)
def signals(
    asof: Annotated[
        str | None, Query(pattern=ISO_DATE, description="as-of date YYYY-MM-DD")
    ] = None,
    action: Annotated[Action | None, Query(description="only this action")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> SignalsResponse:
    try:
        day = None if asof is None else date.fromisoformat(asof)
    except ValueError:  # well-formed but not a calendar day (2024-02-30): no scan ran then
        return SignalsResponse(asof=None, count=0, signals=[])
    return _service().signals_for(day, action, limit)


@app.get(
    "/api/v1/positions",
    summary="Open positions and non-terminal orders",
    tags=["trading"],
    security=READ_SECURITY,
    responses={200: {"description": "Successful Response"}, **DENIED},
)
def positions() -> PositionsResponse:
    return _service().positions_view()


@app.get(
    "/api/v1/risk",
    summary="RiskGuard level, kill-switch, exposure and recent level transitions",
    tags=["trading"],
    security=READ_SECURITY,
    responses={200: {"description": "Successful Response"}, **DENIED},
)
def risk() -> RiskResponse:
    return _service().risk_view()


@app.post(
    "/api/v1/killswitch",
    summary="Turn the kill-switch on or off (authenticated, reason required, audited)",
    tags=["trading"],
    security=WRITE_SECURITY,
    responses={
        **DENIED,
        200: {"description": "request audited, switch written, outcome audited"},
        401: _error("no authenticated caller identity"),
    },
)
def killswitch(request: Annotated[KillSwitchRequest, Body()]) -> KillSwitchResponse:
    actor = caller_identity()
    if actor is None:
        raise UnauthorizedError("state-changing calls need an authenticated caller")
    request_id = app.current_event.request_context.request_id
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


@app.get(
    "/api/v1/coins/<symbol>",
    summary="One coin: bars, decisions, orders and fills, position, feature history",
    tags=["dashboard"],
    security=READ_SECURITY,
    responses={
        200: {"description": "Successful Response"},
        404: _error("no bars, decisions, orders or position for this symbol"),
        503: _error("the lake (the candles' store) or another dependency failed; retry later"),
        **DENIED,
    },
)
def coin(
    symbol: Annotated[
        str,
        Path(
            pattern=SYMBOL_PATTERN,
            max_length=64,
            description="CoinGecko coin id, lower case (e.g. bitcoin, chiliz)",
        ),
    ],
    days: Annotated[int, Query(ge=7, le=730, description="days of history shown")] = 120,
    timeframe: Annotated[
        Literal["1d", "4h", "1h"], Query(description="bars of the price chart")
    ] = "1d",
) -> CoinResponse:
    try:
        return _dashboard().coin_view(symbol, days, timeframe)
    except UnknownSymbolError as exc:
        raise NotFoundError(str(exc)) from exc


@app.get(
    "/api/v1/portfolio",
    summary="Positions, orders with their status history, equity curve, PnL, drawdown, tracking",
    tags=["dashboard"],
    security=READ_SECURITY,
    responses={200: {"description": "Successful Response"}, **DENIED},
)
def portfolio() -> PortfolioResponse:
    return _dashboard().portfolio_view()


@app.get(
    "/api/v1/audit",
    summary="The audit trail of state-changing calls, newest first",
    tags=["dashboard"],
    security=READ_SECURITY,
    responses={200: {"description": "Successful Response"}, **DENIED},
)
def audit(
    limit: Annotated[int, Query(ge=1, le=500, description="entries to return")] = 50,
) -> AuditResponse:
    return _dashboard().audit_view(limit)


@app.get(
    "/api/v1/breakers",
    summary="Circuit breakers: the RiskGuard's (with the last measured values) and ingest's",
    tags=["dashboard"],
    security=READ_SECURITY,
    responses={200: {"description": "Successful Response"}, **DENIED},
)
def breakers() -> BreakersResponse:
    return _dashboard().breakers_view()


@app.get(
    "/api/v1/golive",
    summary="Go-live: the active stage, its SLO gates, runs with transitions, evaluations",
    tags=["dashboard"],
    security=READ_SECURITY,
    responses={200: {"description": "Successful Response"}, **DENIED},
)
def golive(
    runs: Annotated[int, Query(ge=1, le=100, description="newest runs to return")] = 10,
) -> GoLiveResponse:
    return _dashboard().golive_view(runs)


@app.get(
    "/api/v1/models",
    summary="The model registry: every version with its stage and evaluation",
    tags=["dashboard"],
    security=READ_SECURITY,
    responses={200: {"description": "Successful Response"}, **DENIED},
)
def models() -> ModelsResponse:
    return _models_dashboard().models_view()


@cache
def _openapi_body() -> str:
    return openapi_json()


def openapi_json(servers: list[str] | None = None) -> str:
    """The OpenAPI 3 document of this API (the published ``docs/openapi.json``)."""
    return app.get_openapi_json_schema(
        title=API_TITLE,
        version=API_VERSION,
        description=(
            "Read-only market, signal, position and risk views, liveness and deep health, "
            "and the audited kill-switch of CryptoSmartTrader."
        ),
        servers=[Server(url=url) for url in servers] if servers else None,
        security_schemes=SECURITY_SCHEMES,
    )


@metrics.log_metrics(capture_cold_start_metric=True)
@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
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
            "headers": {"Content-Type": content_types.APPLICATION_JSON, CORRELATION_HEADER: cid},
            "body": json.dumps(
                {"statusCode": 500, "message": "internal error", "correlation_id": cid}
            ),
        }
    # The stage's SLIs count what the caller got, including answers no route produced
    # (dependency 503s, the 500 above): a server-side error is any status >= 500.
    server_error = int(response.get("statusCode", 500)) >= SERVER_ERROR
    stage_metrics().emit((mn.REQUESTS, 1), (mn.ERRORS, 1 if server_error else 0))
    return response


# The same API on the lake function (a bundle with polars), which API Gateway invokes for the
# LAKE_ROUTES only: a name of its own, so the deployment says which function serves what.
lake_views_handler = handler
