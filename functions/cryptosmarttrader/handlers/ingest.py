"""Ingest Lambda: scheduled by EventBridge per (exchange, timeframe, symbols), and daily for the
market caps of an exchange's pairs (``{"dataset": "market_caps", "exchange": ..., "symbols":
[...]}``: CoinGecko ``/coins/markets`` live, the recorded CoinGecko CSVs on a replay).

Thin: validate the event (pydantic) → IngestService / MarketCapIngestService → JSON-able
report. Accepts the request as the whole event (rule target input) or as the ``detail`` of an
EventBridge envelope, whose id then becomes the correlation id. A malformed event, or a
``replay_asof`` this deployment does not replay, returns ``status: rejected`` before anything
is read or written. A run that cannot do its job (a source this deployment cannot serve, S3 or
DynamoDB errors) is a failure: it counts in the stage's ``Errors`` SLI and raises, so Lambda
counts it, retries it and alarms. Each invocation is one ``Requests`` of the stage.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import Any, Literal

from aws_lambda_powertools import Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cryptosmarttrader.adapters.dynamodb_store import DynamoStateStore
from cryptosmarttrader.adapters.emf_metrics import EmfMetrics
from cryptosmarttrader.adapters.s3_lake import S3ParquetLake
from cryptosmarttrader.adapters.system_clock import SystemClock
from cryptosmarttrader.domain.clock import Clock, FixedClock
from cryptosmarttrader.domain.types import DomainError, Symbol
from cryptosmarttrader.handlers._common import (
    ScheduledRunError,
    aws_clients,
    count_invocation,
    make_logger,
    make_metrics,
    reject_malformed,
    request_payload,
    resources,
    stage_metrics,
    trading_settings,
)
from cryptosmarttrader.ports import MarketCapSource
from cryptosmarttrader.services.ingest import (
    CandleSource,
    IngestConfig,
    IngestService,
    MarketDataReplaySource,
)
from cryptosmarttrader.services.market_caps import MarketCapIngestService

logger = make_logger("ingest")
metrics = make_metrics("ingest")
tracer = Tracer(service="ingest")

RECORDED_EXCHANGE = "binance"  # the recorded candles are Binance spot


def _aware_utc(value: datetime | None) -> datetime | None:
    if value is not None and value.utcoffset() is None:
        raise ValueError("replay_asof must carry a UTC offset, e.g. 2022-10-01T00:00:00Z")
    return value


def _unique_pairs(value: list[str]) -> list[str]:
    for s in value:
        try:
            symbol = Symbol(s)
        except DomainError as exc:
            raise ValueError(str(exc)) from exc
        if not symbol.is_pair:
            raise ValueError(f"{s!r} is not an exchange pair BASE/QUOTE")
    if len(set(value)) != len(value):
        raise ValueError("symbols must be unique")
    return value


class IngestRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    exchange: Literal["binance", "kraken", "kucoin"]
    timeframe: Literal["1h", "4h", "1d"]
    symbols: list[str] = Field(min_length=1, max_length=200)
    initial_lookback_bars: int | None = Field(default=None, ge=1, le=100_000)
    """Bars to load for a series seen for the first time (default: the source's policy)."""
    replay_asof: datetime | None = None
    """Recorded replays only: ingest as if the time were this (tz-aware UTC) instant."""

    _aware = field_validator("replay_asof")(_aware_utc)
    _pairs = field_validator("symbols")(_unique_pairs)


class MarketCapRequest(BaseModel):
    """Market caps of the CoinGecko coins behind ``symbols`` (exchange pairs)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dataset: Literal["market_caps"]
    exchange: Literal["binance", "kraken", "kucoin"]
    symbols: list[str] = Field(min_length=1, max_length=250)
    lookback_days: int = Field(default=1, ge=1, le=5000)
    """Days of history to load (recorded replays; a live snapshot is today's value only)."""
    replay_asof: datetime | None = None

    _aware = field_validator("replay_asof")(_aware_utc)
    _pairs = field_validator("symbols")(_unique_pairs)


class UnsupportedSourceError(ValueError):
    """This deployment cannot serve the request's source (a failure of a scheduled run)."""


class ReplayRefusedError(ValueError):
    """The request asks for a replay this deployment does not do (the caller's error)."""


@cache
def _source(exchange: str) -> CandleSource:
    settings = trading_settings()
    clock = SystemClock()
    if settings.data_source == "recorded":
        if exchange != RECORDED_EXCHANGE:
            raise UnsupportedSourceError(
                f"CST_DATA_SOURCE=recorded replays {RECORDED_EXCHANGE} spot candles only, "
                f"not {exchange}"
            )
        # Only the replay path needs the recorded-data reader (and numpy): the deployed
        # bundle, which ingests from ccxt, ships without it.
        from cryptosmarttrader.adapters.recorded_data import RecordedMarketData
        from cryptosmarttrader.wiring import resolve_data_dir

        market = RecordedMarketData(resolve_data_dir(settings.data_dir))
        return MarketDataReplaySource(market, RECORDED_EXCHANGE)
    from cryptosmarttrader.adapters.ccxt_exchange import CcxtExchange  # only the live path

    return CcxtExchange.create(exchange, clock)


def _clock(replay_asof: datetime | None, recorded: bool) -> Clock:
    clock: Clock = SystemClock()
    if replay_asof is not None:
        if not recorded:
            raise ReplayRefusedError("replay_asof is only valid with CST_DATA_SOURCE=recorded")
        if replay_asof > clock.now():
            raise ReplayRefusedError(f"replay_asof {replay_asof} is in the future")
        clock = FixedClock(replay_asof.astimezone(UTC))
    return clock


def _market_cap_service(request: MarketCapRequest) -> MarketCapIngestService:
    from cryptosmarttrader.adapters.coingecko_market_caps import (
        CoinGeckoMarketCaps,
        RecordedMarketCaps,
    )
    from cryptosmarttrader.adapters.s3_market_caps import S3MarketCapLake

    settings = trading_settings()
    recorded = settings.data_source == "recorded"
    clock = _clock(request.replay_asof, recorded)
    source: MarketCapSource
    if recorded:
        from cryptosmarttrader.adapters.recorded_data import RecordedMarketData
        from cryptosmarttrader.wiring import resolve_data_dir

        source = RecordedMarketCaps(RecordedMarketData(resolve_data_dir(settings.data_dir)))
    else:
        source = CoinGeckoMarketCaps(clock.now)
    return MarketCapIngestService(
        source,
        S3MarketCapLake(resources().lake_bucket, aws_clients().s3),
        EmfMetrics(metrics),
        clock,
    )


def _service(request: IngestRequest) -> IngestService:
    res, clients = resources(), aws_clients()
    recorded = trading_settings().data_source == "recorded"
    clock = _clock(request.replay_asof, recorded)
    return IngestService(
        source=_source(request.exchange),
        lake=S3ParquetLake(res.lake_bucket, clients.s3),
        state=DynamoStateStore(res.state_table, clients.dynamodb),
        metrics=EmfMetrics(metrics),
        clock=clock,
        # a new series starts 1000 bars back, live or replayed (a replay deployment ingests as
        # a live one does); the event's initial_lookback_bars asks for more or fewer
        config=IngestConfig(initial_lookback_bars=request.initial_lookback_bars or 1000),
    )


@metrics.log_metrics
@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    payload = request_payload(event, context, logger)
    slis = stage_metrics()
    try:
        if payload.get("dataset") == "market_caps":
            result = _market_caps(payload)
        else:
            result = _candles(payload)
    except ReplayRefusedError as exc:
        count_invocation(slis, failed=False)
        logger.warning("ingest replay refused", extra={"reason": str(exc)})
        metrics.add_metric(name="RejectedEvents", unit=MetricUnit.Count, value=1)
        return {"status": "rejected", "error": str(exc)}
    except UnsupportedSourceError as exc:
        count_invocation(slis, failed=True)
        logger.error("ingest source unavailable", extra={"reason": str(exc)})
        raise ScheduledRunError(f"ingest could not run: {exc}") from exc
    except Exception:
        count_invocation(slis, failed=True)
        raise
    count_invocation(slis, failed=False)
    return result


def _candles(payload: dict[str, Any]) -> dict[str, Any]:
    try:
        request = IngestRequest.model_validate(payload)
    except ValidationError as exc:
        return reject_malformed("ingest", exc, logger, metrics)
    report = _service(request).run(request.exchange, request.timeframe, request.symbols)
    metrics.add_metric(name="IngestRuns", unit=MetricUnit.Count, value=1)
    logger.info(
        "ingest complete",
        extra={
            "exchange": report.exchange,
            "timeframe": report.timeframe,
            "ingested": report.ingested,
            "objects_written": report.objects_written,
            "breaker_state": report.breaker_state,
            "skipped_reason": report.skipped_reason,
            "rejected": {o.symbol: o.reason for o in report.outcomes if o.status == "rejected"},
        },
    )
    return {"status": "ok", "report": report.to_dict()}


def _market_caps(payload: dict[str, Any]) -> dict[str, Any]:
    try:
        request = MarketCapRequest.model_validate(payload)
    except ValidationError as exc:
        return reject_malformed("market-cap ingest", exc, logger, metrics)
    service = _market_cap_service(request)
    report = service.run(request.exchange, request.symbols, request.lookback_days)
    metrics.add_metric(name="IngestRuns", unit=MetricUnit.Count, value=1)
    logger.info(
        "market caps ingested",
        extra={
            "exchange": report.exchange,
            "ingested": report.ingested,
            "objects_written": report.objects_written,
            "unmapped": report.unmapped,
            "rejected_codes": report.rejected_codes,
        },
    )
    return {"status": "ok", "report": report.to_dict()}
