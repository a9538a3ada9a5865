"""Ingest Lambda: scheduled by EventBridge per (exchange, timeframe), and for what the agents
need beside the candles. The events (each rule's constant input):

* ``{"exchange": ..., "timeframe": ...}``: closed candles of the exchange's liquid universe
  (``"symbols": [...]`` names the pairs instead); Kraken's hourly run adds its ``USDT/USD``
  market, the rate the arbitrage agent converts Kraken's USD prices with;
* ``{"dataset": "universe", "exchange": ...}``: select the universe anew: every active spot
  pair quoted in ``quote`` (USDT; USD on Kraken) whose 24 h quote volume reaches
  ``min_quote_volume_usd``, from the venue's markets and tickers (services/agent_ingest.py),
  then its coins' withdrawal constraints (fee, minimum, suspensions: ccxt
  ``fetch_currencies``) into the lake, signed with the exchange's read-only keys
  (``CST_READ_ONLY_SECRETS``: Binance serves that data to signed requests only; without keys
  the run records why, and the arbitrage agent abstains on Binance's routes saying so);
* ``{"dataset": "market_caps", "exchange": ...}``: market caps of the universe's coins
  (CoinGecko ``/coins/markets`` live, the recorded CoinGecko CSVs on a replay);
* ``{"dataset": "funding", "exchange": ...}``: perpetual funding rates and 8 h mark candles of
  the universe's pairs that have a perpetual on the venue;
* ``{"dataset": "sentiment", "source": "fear_greed"}``: the Crypto Fear & Greed index.

Without ``symbols`` a run reads the exchange's stored universe, and selects it first when none
is stored or it is a day old. In a replay deployment (``CST_DATA_SOURCE=recorded``) the
recorded folder stands in for ccxt and the index's API (adapters/recorded_venue.py).

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
from typing import TYPE_CHECKING, Any, Literal

from aws_lambda_powertools import Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from cryptosmarttrader.adapters.dynamodb_store import DynamoStateStore
from cryptosmarttrader.adapters.emf_metrics import EmfMetrics
from cryptosmarttrader.adapters.s3_lake import S3ParquetLake
from cryptosmarttrader.adapters.system_clock import SystemClock
from cryptosmarttrader.domain.clock import Clock, FixedClock
from cryptosmarttrader.domain.quality import QualityConfig
from cryptosmarttrader.domain.types import DomainError, Symbol
from cryptosmarttrader.domain.universe import spot_quote, usdt_rate_pair
from cryptosmarttrader.handlers._common import (
    Refused,
    ScheduledRunError,
    aws_clients,
    lambda_handler,
    make_logger,
    make_metrics,
    reject_malformed,
    resources,
    trading_settings,
)
from cryptosmarttrader.ports import CandleSource, MarketCapSource, SentimentSource
from cryptosmarttrader.services.agent_ingest import (
    PEGGED_QUALITY,
    FundingIngestService,
    SentimentIngestService,
    SentimentRejectedError,
    UniverseRule,
    UniverseService,
)
from cryptosmarttrader.services.ingest import (
    INGEST_QUALITY,
    IngestConfig,
    IngestService,
    MarketDataReplaySource,
)
from cryptosmarttrader.services.market_caps import Backfill, MarketCapIngestService

if TYPE_CHECKING:
    from cryptosmarttrader.adapters.ccxt_agent_feeds import CcxtVenueFeeds
    from cryptosmarttrader.adapters.key_permissions import KeyPermissionChecks
    from cryptosmarttrader.adapters.recorded_data import RecordedMarketData
    from cryptosmarttrader.adapters.recorded_venue import RecordedVenue
    from cryptosmarttrader.adapters.secrets import ReadOnlyKeys

logger = make_logger("ingest")
metrics = make_metrics("ingest")
tracer = Tracer(service="ingest")

RECORDED_EXCHANGE = "binance"  # the recorded candles are Binance spot


def _aware_utc(value: datetime | None) -> datetime | None:
    if value is not None and value.utcoffset() is None:
        raise ValueError("replay_asof must carry a UTC offset, e.g. 2022-10-01T00:00:00Z")
    return value


def _unique_pairs(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
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
    symbols: list[str] | None = Field(default=None, min_length=1, max_length=200)
    """The pairs to ingest; omitted: the exchange's liquid universe."""
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
    symbols: list[str] | None = Field(default=None, min_length=1, max_length=250)
    lookback_days: int = Field(default=1, ge=1, le=5000)
    """Days of history to load (recorded replays; a live snapshot is today's value only)."""
    backfill_days: int = Field(default=300, ge=0, le=2000)
    """Live: days of CoinGecko history loaded once per coin not yet backfilled (0: none)."""
    backfill_max_coins: int = Field(default=30, ge=1, le=250)
    """Live: coins backfilled per run, largest first (the source's rate limit, the timeout)."""
    replay_asof: datetime | None = None

    _aware = field_validator("replay_asof")(_aware_utc)
    _pairs = field_validator("symbols")(_unique_pairs)


class UniverseRequest(BaseModel):
    """Select the exchange's liquid universe anew (the liquidity floor over 24 h volume)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dataset: Literal["universe"]
    exchange: Literal["binance", "kraken", "kucoin"]
    quote: Literal["USDT", "USD"] | None = None
    """The quote of the pairs; omitted: the exchange's spot quote (USD on Kraken, else USDT)."""
    min_quote_volume_usd: float = Field(default=1_000_000.0, ge=0)
    max_pairs: int = Field(default=100, ge=1, le=200)
    replay_asof: datetime | None = None

    _aware = field_validator("replay_asof")(_aware_utc)

    @property
    def rule(self) -> UniverseRule:
        return UniverseRule(
            self.quote or spot_quote(self.exchange), self.min_quote_volume_usd, self.max_pairs
        )


class FundingRequest(BaseModel):
    """Funding rates and 8 h mark candles of the pairs' perpetuals on the exchange."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dataset: Literal["funding"]
    exchange: Literal["binance", "kraken", "kucoin"]
    symbols: list[str] | None = Field(default=None, min_length=1, max_length=200)
    replay_asof: datetime | None = None

    _aware = field_validator("replay_asof")(_aware_utc)
    _pairs = field_validator("symbols")(_unique_pairs)


class SentimentRequest(BaseModel):
    """The daily Crypto Fear & Greed index (alternative.me)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dataset: Literal["sentiment"]
    source: Literal["fear_greed"] = "fear_greed"
    replay_asof: datetime | None = None

    _aware = field_validator("replay_asof")(_aware_utc)


class UnsupportedSourceError(ValueError):
    """This deployment cannot serve the request's source (a failure of a scheduled run)."""


class ReplayRefusedError(ValueError):
    """The request asks for a replay this deployment does not do (the caller's error)."""


def _recorded_market() -> RecordedMarketData:
    # Only the replay path needs the recorded-data reader (and numpy): the deployed bundle,
    # which ingests from ccxt, ships without it.
    from cryptosmarttrader.adapters.recorded_data import RecordedMarketData
    from cryptosmarttrader.wiring import resolve_data_dir

    return RecordedMarketData(resolve_data_dir(trading_settings().data_dir))


def _recorded_venue(exchange: str, clock: Clock) -> RecordedVenue:
    from cryptosmarttrader.adapters.recorded_venue import RECORDED_VENUES, RecordedVenue

    if exchange not in RECORDED_VENUES:
        raise UnsupportedSourceError(
            f"CST_DATA_SOURCE=recorded replays {' and '.join(RECORDED_VENUES)} spot data only, "
            f"not {exchange}"
        )
    return RecordedVenue(_recorded_market(), exchange, clock)


@cache
def _source(exchange: str) -> CandleSource:
    if trading_settings().data_source == "recorded":
        if exchange == RECORDED_EXCHANGE:  # the candles as recorded: the gate judges them
            return MarketDataReplaySource(_recorded_market(), RECORDED_EXCHANGE)
        return _recorded_venue(exchange, SystemClock())  # the ingest cuts at its own clock
    return _ccxt(exchange)


@cache
def _ccxt(exchange: str) -> CandleSource:
    from cryptosmarttrader.adapters.ccxt_exchange import CcxtExchange  # only the live path

    return CcxtExchange.create(exchange, SystemClock())


@cache
def _ccxt_feeds(exchange: str) -> CcxtVenueFeeds:
    from cryptosmarttrader.adapters.ccxt_agent_feeds import CcxtVenueFeeds

    return CcxtVenueFeeds.create(exchange, SystemClock())


def _venue(exchange: str, clock: Clock) -> RecordedVenue | CcxtVenueFeeds:
    """The venue's markets, tickers and perpetuals: ccxt, or the recording on a replay."""
    if trading_settings().data_source == "recorded":
        return _recorded_venue(exchange, clock)
    return _ccxt_feeds(exchange)


def _universe(exchange: str, clock: Clock, symbols: list[str] | None) -> list[str]:
    """``symbols`` when given, else the exchange's stored liquid universe (selected now when
    none is stored or it is a day old)."""
    if symbols is not None:
        return symbols
    state = DynamoStateStore(resources().state_table, aws_clients().dynamodb)
    service = UniverseService(state, clock)
    try:
        rule = UniverseRule(quote=spot_quote(exchange))
        return list(service.current(exchange, _venue(exchange, clock), rule).pairs)
    except ValueError as exc:
        raise UnsupportedSourceError(f"no {exchange} universe: {exc}") from exc


def _clock(replay_asof: datetime | None, recorded: bool) -> Clock:
    clock: Clock = SystemClock()
    if replay_asof is not None:
        if not recorded:
            raise ReplayRefusedError("replay_asof is only valid with CST_DATA_SOURCE=recorded")
        if replay_asof > clock.now():
            raise ReplayRefusedError(f"replay_asof {replay_asof} is in the future")
        clock = FixedClock(replay_asof.astimezone(UTC))
    return clock


def _market_cap_service(
    request: MarketCapRequest,
) -> tuple[MarketCapIngestService, Clock]:
    from cryptosmarttrader.adapters.coingecko_market_caps import (
        CoinGeckoMarketCaps,
        CoinGeckoMarketHistory,
        RecordedMarketCaps,
    )
    from cryptosmarttrader.adapters.s3_market_caps import S3MarketCapLake

    settings = trading_settings()
    recorded = settings.data_source == "recorded"
    clock = _clock(request.replay_asof, recorded)
    source: MarketCapSource = (
        RecordedMarketCaps(_recorded_market()) if recorded else CoinGeckoMarketCaps(clock.now)
    )
    # live: a coin seen for the first time gets its history once (the regime's 200-day index
    # from a new stack's first scan); a replay loads history through ``lookback_days``
    backfill = not recorded and request.backfill_days > 0
    service = MarketCapIngestService(
        source,
        S3MarketCapLake(resources().lake_bucket, aws_clients().s3),
        EmfMetrics(metrics),
        clock,
        history=CoinGeckoMarketHistory() if backfill else None,
        state=DynamoStateStore(resources().state_table, aws_clients().dynamodb)
        if backfill
        else None,
        backfill=Backfill(request.backfill_days or 1, request.backfill_max_coins),
    )
    return service, clock


def _service(
    request: IngestRequest | FundingRequest,
    source: CandleSource | None = None,
    quality: QualityConfig = INGEST_QUALITY,
) -> tuple[IngestService, Clock]:
    res, clients = resources(), aws_clients()
    recorded = trading_settings().data_source == "recorded"
    clock = _clock(request.replay_asof, recorded)
    service = IngestService(
        source=source or _source(request.exchange),
        lake=S3ParquetLake(res.lake_bucket, clients.s3),
        state=DynamoStateStore(res.state_table, clients.dynamodb),
        metrics=EmfMetrics(metrics),
        clock=clock,
        # a new series starts 1000 bars back, live or replayed (a replay deployment ingests as
        # a live one does); the event's initial_lookback_bars asks for more or fewer
        config=IngestConfig(
            initial_lookback_bars=getattr(request, "initial_lookback_bars", None) or 1000,
            quality=quality,
        ),
    )
    return service, clock


@lambda_handler(
    logger=logger, metrics=metrics, tracer=tracer, stage_slis=True, cold_start_metric=False
)
def handler(payload: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """The request (``dataset`` picks the job) is validated by the job's own model."""
    try:
        dataset = payload.get("dataset")
        if dataset == "market_caps":
            result = _market_caps(payload)
        elif dataset == "universe":
            result = _select_universe(payload)
        elif dataset == "funding":
            result = _funding(payload)
        elif dataset == "sentiment":
            result = _sentiment(payload)
        else:
            result = _candles(payload)
    except ReplayRefusedError as exc:
        raise Refused(str(exc), log_message="ingest replay refused") from exc
    except UnsupportedSourceError as exc:
        logger.error("ingest source unavailable", extra={"reason": str(exc)})
        raise ScheduledRunError(f"ingest could not run: {exc}") from exc
    return result


def _candles(payload: dict[str, Any]) -> dict[str, Any]:
    try:
        request = IngestRequest.model_validate(payload)
    except ValidationError as exc:
        return reject_malformed("ingest", exc, logger, metrics)
    service, clock = _service(request)
    symbols = _universe(request.exchange, clock, request.symbols)
    report = service.run(request.exchange, request.timeframe, symbols)
    rate = usdt_rate_pair(request.exchange)
    rate_report = None
    if request.symbols is None and request.timeframe == "1h" and rate is not None:
        # the venue's USD→USDT rate at each hour (a stablecoin pair, never in the universe):
        # the arbitrage agent converts the venue's USD prices with it. A peg's closes repeat
        # for hours, so a long run of identical closes is not rejected here (every other rule
        # of the gate holds)
        rate_service, _ = _service(request, quality=PEGGED_QUALITY)
        rate_report = rate_service.run(request.exchange, "1h", [rate])
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
    out = report.to_dict()
    if rate_report is not None:
        out["usdt_rate"] = rate_report.to_dict()
    return {"status": "ok", "report": out}


def _market_caps(payload: dict[str, Any]) -> dict[str, Any]:
    try:
        request = MarketCapRequest.model_validate(payload)
    except ValidationError as exc:
        return reject_malformed("market-cap ingest", exc, logger, metrics)
    service, clock = _market_cap_service(request)
    symbols = _universe(request.exchange, clock, request.symbols)
    report = service.run(request.exchange, symbols, request.lookback_days)
    metrics.add_metric(name="IngestRuns", unit=MetricUnit.Count, value=1)
    logger.info(
        "market caps ingested",
        extra={
            "exchange": report.exchange,
            "ingested": report.ingested,
            "objects_written": report.objects_written,
            "unmapped": report.unmapped,
            "rejected_codes": report.rejected_codes,
            "backfilled": len(report.backfilled),
            "backfill_pending": len(report.backfill_pending),
        },
    )
    return {"status": "ok", "report": report.to_dict()}


def _select_universe(payload: dict[str, Any]) -> dict[str, Any]:
    try:
        request = UniverseRequest.model_validate(payload)
    except ValidationError as exc:
        return reject_malformed("universe selection", exc, logger, metrics)
    clock = _clock(request.replay_asof, trading_settings().data_source == "recorded")
    state = DynamoStateStore(resources().state_table, aws_clients().dynamodb)
    try:
        chosen = UniverseService(state, clock).select(
            request.exchange, _venue(request.exchange, clock), request.rule
        )
    except ValueError as exc:  # nothing passes the floor: the run could not do its job
        raise UnsupportedSourceError(str(exc)) from exc
    metrics.add_metric(name="UniverseSize", unit=MetricUnit.Count, value=len(chosen.pairs))
    report = chosen.to_dict()
    report["withdrawals"] = _withdrawals(request.exchange, chosen.pairs, clock)
    logger.info("universe selected", extra={k: v for k, v in report.items() if k != "pairs"})
    return {"status": "ok", "report": report}


def _withdrawals(exchange: str, pairs: tuple[str, ...], clock: Clock) -> dict[str, Any]:
    """The universe's coins' withdrawal constraints on the venue, into the lake (the arbitrage
    agent's transfers). A replay has none recorded: it says so, and writes nothing."""
    if trading_settings().data_source == "recorded":
        return {"status": "not_recorded", "reason": "no withdrawal data is recorded"}
    from cryptosmarttrader.adapters.s3_agent_inputs import S3AgentInputs
    from cryptosmarttrader.services.agent_ingest import WithdrawalIngestService

    feeds, unavailable = _currency_feeds(exchange)
    report = WithdrawalIngestService(
        feeds,
        S3AgentInputs(resources().lake_bucket, aws_clients().s3),
        DynamoStateStore(resources().state_table, aws_clients().dynamodb),
        clock,
    ).run(exchange, pairs, unavailable)
    if report.status != "ok" or report.rejected:
        logger.warning("withdrawal constraints incomplete", extra=report.to_dict())
    return report.to_dict()


@cache
def _read_only_reader(region: str, endpoint: str | None, max_age: int) -> ReadOnlyKeys:
    """One reader per execution environment: its cache (``max_age``) outlives an invocation."""
    from cryptosmarttrader.adapters.secrets import ReadOnlyKeys, secrets_client
    from cryptosmarttrader.settings import AwsResources

    client = secrets_client(AwsResources(region=region, aws_endpoint_url=endpoint))
    return ReadOnlyKeys(client, max_age_seconds=max_age)


@cache
def _key_checks() -> KeyPermissionChecks:
    """One key-permission cache per execution environment (keyed on the key id: a rotated
    read-only key is checked again)."""
    from cryptosmarttrader.adapters.key_permissions import KeyPermissionChecks

    return KeyPermissionChecks(SystemClock())


def _currency_feeds(exchange: str) -> tuple[CcxtVenueFeeds, str | None]:
    """The client that reads ``exchange``'s currency data, and why it cannot when it cannot:
    signed with the exchange's read-only keys (``CST_READ_ONLY_SECRETS``) when its secret holds
    them (a new client each run: a rotated key is used within the reader's cache age), else the
    public client, which a venue that serves that data to signed requests only (Binance)
    answers with nothing: the run then records why instead of asking."""
    from cryptosmarttrader.adapters.ccxt_agent_feeds import (
        SIGNED_CURRENCY_DATA,
        CcxtVenueFeeds,
        no_read_only_keys,
    )
    from cryptosmarttrader.adapters.secrets import CredentialsUnavailableError
    from cryptosmarttrader.domain import metric_names as mn
    from cryptosmarttrader.settings import ReadOnlyKeySettings

    settings = ReadOnlyKeySettings()
    name = settings.read_only_secrets.get(exchange)  # type: ignore[call-overload]
    unreadable: str | None = None
    if name is not None:
        res = resources()
        reader = _read_only_reader(res.region, res.aws_endpoint_url, settings.credentials_max_age)
        try:
            keys = reader.get(name)
        except CredentialsUnavailableError as exc:
            keys, unreadable = None, f"{exchange}: {exc}"
        if keys is not None:
            feeds = CcxtVenueFeeds.create(exchange, SystemClock(), keys.ccxt_config())
            if exchange not in SIGNED_CURRENCY_DATA:
                return feeds, None
            refused = feeds.key_refusal(_key_checks())
            if refused is None:
                return feeds, None
            # a key that may trade, withdraw or transfer is never used to read: the run
            # records why, and the arbitrage agent abstains with it
            reason = f"{exchange}: {refused}"
            logger.error("read-only keys refused", extra={"reason": reason})
            metrics.add_metric(name=mn.READ_ONLY_KEYS_REFUSED.name, unit=MetricUnit.Count, value=1)
            return _ccxt_feeds(exchange), reason
    signed_only = no_read_only_keys(exchange)
    if signed_only is None:
        return _ccxt_feeds(exchange), None
    if unreadable is not None:
        logger.error("read-only keys unreadable", extra={"reason": unreadable})
    return _ccxt_feeds(exchange), unreadable or signed_only


def _funding(payload: dict[str, Any]) -> dict[str, Any]:
    try:
        request = FundingRequest.model_validate(payload)
    except ValidationError as exc:
        return reject_malformed("funding ingest", exc, logger, metrics)
    clock = _clock(request.replay_asof, trading_settings().data_source == "recorded")
    venue = _venue(request.exchange, clock)
    candles, clock = _service(request, source=venue.mark_candles())
    symbols = _universe(request.exchange, clock, request.symbols)
    from cryptosmarttrader.adapters.s3_agent_inputs import S3AgentInputs

    report = FundingIngestService(
        venue=venue,
        store=S3AgentInputs(resources().lake_bucket, aws_clients().s3),
        candles=candles,
        state=DynamoStateStore(resources().state_table, aws_clients().dynamodb),
        clock=clock,
    ).run(request.exchange, symbols)
    metrics.add_metric(name="IngestRuns", unit=MetricUnit.Count, value=1)
    logger.info(
        "funding ingested",
        extra={
            "exchange": report.exchange,
            "perpetuals": report.perpetuals,
            "ingested": report.ingested,
            "rejected": {o.symbol: o.reason for o in report.funding if o.status == "rejected"},
        },
    )
    return {"status": "ok", "report": report.to_dict()}


def _sentiment(payload: dict[str, Any]) -> dict[str, Any]:
    try:
        request = SentimentRequest.model_validate(payload)
    except ValidationError as exc:
        return reject_malformed("sentiment ingest", exc, logger, metrics)
    from cryptosmarttrader.adapters.s3_agent_inputs import S3AgentInputs
    from cryptosmarttrader.domain.agents.sentiment import SentimentUnavailableError

    recorded = trading_settings().data_source == "recorded"
    clock = _clock(request.replay_asof, recorded)
    feed: SentimentSource
    if recorded:
        from cryptosmarttrader.adapters.recorded_venue import RecordedFearGreed

        feed = RecordedFearGreed(_recorded_market().data_dir, clock)
    else:
        from cryptosmarttrader.adapters.sentiment_source import AlternativeMeFearGreed

        feed = AlternativeMeFearGreed()
    service = SentimentIngestService(
        feed,
        S3AgentInputs(resources().lake_bucket, aws_clients().s3),
        DynamoStateStore(resources().state_table, aws_clients().dynamodb),
        clock,
        source_label=request.source,
    )
    try:
        report = service.run()
    except (SentimentUnavailableError, SentimentRejectedError) as exc:
        raise UnsupportedSourceError(f"sentiment source unavailable: {exc}") from exc
    metrics.add_metric(name="IngestRuns", unit=MetricUnit.Count, value=1)
    logger.info("sentiment ingested", extra=report.to_dict())
    return {"status": "ok", "report": report.to_dict()}
