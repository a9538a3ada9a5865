"""Typed deployment configuration: what to ingest, when, and how the functions are sized.

The defaults are the product's configuration; a deployment can replace them through the CDK
context key ``cst:config`` (a JSON object with the same fields), validated here before any
construct is created, so a typo fails the synth instead of a schedule.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from cryptosmarttrader.domain.golive import RUN_ID_PATTERN
from cryptosmarttrader.domain.slo import DeploymentStage
from cryptosmarttrader.domain.venue import sandbox_support

Exchange = Literal["binance", "kraken", "kucoin"]
Timeframe = Literal["1h", "4h", "1d"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]

_CRON_FIELD = r"^[0-9*,/?LW#-]+$"


class Cron(BaseModel):
    """An EventBridge cron schedule, always evaluated in UTC."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    minute: str = Field(pattern=_CRON_FIELD)
    hour: str = Field(default="*", pattern=_CRON_FIELD)

    def expression(self) -> str:
        return f"cron({self.minute} {self.hour} * * ? *)"


def _symbols_label(symbols: tuple[str, ...] | None) -> str:
    return "the liquid universe" if symbols is None else f"{len(symbols)} symbols"


class IngestSchedule(BaseModel):
    """One EventBridge rule: fetch closed ``timeframe`` candles of ``symbols`` from ``exchange``
    (``symbols`` omitted: the exchange's liquid universe, see :class:`UniverseSchedule`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    exchange: Exchange
    timeframe: Timeframe
    symbols: tuple[str, ...] | None = Field(default=None, min_length=1, max_length=50)
    cron: Cron

    @property
    def symbols_label(self) -> str:
        return _symbols_label(self.symbols)

    @model_validator(mode="after")
    def _symbols_are_ccxt_pairs(self) -> IngestSchedule:
        for symbol in self.symbols or ():
            base, sep, quote = symbol.partition("/")
            if not (sep and base.isalnum() and quote.isalnum() and symbol.upper() == symbol):
                raise ValueError(f"{symbol!r} is not a ccxt unified pair like 'BTC/USDT'")
        if self.symbols is not None and len(set(self.symbols)) != len(self.symbols):
            raise ValueError(f"duplicate symbols in the {self.exchange} {self.timeframe} schedule")
        return self

    @property
    def rule_id(self) -> str:
        return f"Ingest{self.exchange.capitalize()}{self.timeframe.upper()}"

    def event(self) -> dict[str, object]:
        """The JSON event the ingest handler receives (its pydantic input model)."""
        event: dict[str, object] = {"exchange": self.exchange, "timeframe": self.timeframe}
        if self.symbols is not None:
            event["symbols"] = list(self.symbols)
        return event


class MarketCapSchedule(BaseModel):
    """One daily rule: CoinGecko market caps of the coins behind ``symbols`` (exchange pairs),
    run just before midnight UTC so each value is keyed to the daily close it precedes."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    exchange: Exchange = "binance"
    symbols: tuple[str, ...] | None = Field(default=None, min_length=1, max_length=250)
    cron: Cron = Cron(minute="55", hour="23")

    @property
    def symbols_label(self) -> str:
        return _symbols_label(self.symbols)

    def event(self) -> dict[str, object]:
        event: dict[str, object] = {"dataset": "market_caps", "exchange": self.exchange}
        if self.symbols is not None:
            event["symbols"] = list(self.symbols)
        return event


class UniverseSchedule(BaseModel):
    """One daily rule per exchange: select its liquid universe anew (every active spot pair
    quoted in ``quote`` whose 24 h quote volume reaches the floor, the ``max_pairs`` most liquid),
    before the market caps (23:55) and the daily candles (00:05) read it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    exchange: Exchange
    quote: Literal["USDT", "USD"] = "USDT"  # Kraken's liquid spot book is quoted in USD (ZUSD)
    min_quote_volume_usd: float = Field(default=1_000_000.0, ge=0)
    max_pairs: int = Field(default=100, ge=1, le=200)
    cron: Cron = Cron(minute="50", hour="23")

    @property
    def rule_id(self) -> str:
        return f"IngestUniverse{self.exchange.capitalize()}"

    def event(self) -> dict[str, object]:
        return {
            "dataset": "universe",
            "exchange": self.exchange,
            "quote": self.quote,
            "min_quote_volume_usd": self.min_quote_volume_usd,
            "max_pairs": self.max_pairs,
        }


class FundingSchedule(BaseModel):
    """Perpetual funding rates and 8 h mark candles of the universe's pairs, after each funding
    time (00:00, 08:00, 16:00 UTC)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    exchange: Exchange = "binance"
    cron: Cron = Cron(minute="7", hour="0,8,16")

    def event(self) -> dict[str, object]:
        return {"dataset": "funding", "exchange": self.exchange}


class SentimentSchedule(BaseModel):
    """The daily Crypto Fear & Greed index, after its 00:00 UTC update, before the scan."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    source: Literal["fear_greed"] = "fear_greed"
    cron: Cron = Cron(minute="7", hour="0")

    def event(self) -> dict[str, object]:
        return {"dataset": "sentiment", "source": self.source}


class ScanSchedule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    top_n: int = Field(default=20, ge=1, le=1000)
    cron: Cron = Cron(minute="15", hour="0")

    def event(self) -> dict[str, object]:
        return {"top_n": self.top_n}


class ExecutionSchedule(BaseModel):
    """The execution cycle: hourly, after the hourly candles of every exchange are ingested
    (minutes 2-4), so the quote it checks is at most ~10 minutes old."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    cron: Cron = Cron(minute="10")


class FunctionSizing(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    memory_mb: int = Field(ge=128, le=10240)
    timeout_seconds: int = Field(ge=1, le=900)


# Candles close on the hour; each exchange gets its own minute so runs do not overlap, and the
# daily scan runs after the daily candles have been ingested (00:05 → 00:15 UTC).
# Every exchange ingests its liquid universe, selected daily from its markets and 24 h tickers
# under the same liquidity floor: USDT pairs on Binance and KuCoin, USD pairs on Kraken (where
# the liquid spot book is quoted in USD).
DEFAULT_INGEST_SCHEDULES: tuple[IngestSchedule, ...] = (
    IngestSchedule(exchange="binance", timeframe="1h", cron=Cron(minute="2")),
    IngestSchedule(exchange="binance", timeframe="1d", cron=Cron(minute="5", hour="0")),
    IngestSchedule(exchange="kraken", timeframe="1h", cron=Cron(minute="3")),
    IngestSchedule(exchange="kucoin", timeframe="1h", cron=Cron(minute="4")),
)
DEFAULT_UNIVERSES: tuple[UniverseSchedule, ...] = (
    UniverseSchedule(exchange="binance"),
    UniverseSchedule(exchange="kraken", quote="USD"),
    UniverseSchedule(exchange="kucoin"),
)


class DeploymentConfig(BaseModel):
    """Everything about a deployment that is not a resource name (those CDK generates)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # The go-live stage this deployment serves: its functions publish the SLIs under
    # ``Stage=<stage>`` (``CST_STAGE``). Also settable alone with ``-c cst:stage=canary``.
    stage: DeploymentStage = "staging"
    # Whether the execution function honours a replay instant (``at``): only replay
    # deployments over recorded data should; a stack that trades on its own clock refuses it.
    allow_replays: bool = False
    default_exchange: Exchange = "binance"
    # Where the execution function sends orders (docs/venues.md): the paper venue (default),
    # the exchange's sandbox, or real money. ``live`` needs ``live_golive_run``: the go-live
    # run that passed staging and canary on this stack (checked again by the function at every
    # cycle against the run's records). Also settable alone: ``-c cst:venue_mode=testnet``.
    venue_mode: Literal["paper", "testnet", "live"] = "paper"
    live_golive_run: str | None = Field(default=None, pattern=RUN_ID_PATTERN)
    # The capital the stack trades, in USD: the ledger's starting equity (CST_EQUITY_USD), the
    # base of every 2 % cap and daily-loss level. Required for testnet and live: no more than the account
    # holds for the product (every cycle reconciles the account's balances with the ledger; an
    # account holding less cash than the ledger moves the RiskGuard to DEFENSIVE).
    equity_usd: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    data_source: Literal["ccxt", "recorded"] = "ccxt"
    log_level: LogLevel = "INFO"
    log_retention_days: Literal[7, 14, 30, 60, 90, 180, 365] = 30
    ingest_schedules: tuple[IngestSchedule, ...] = Field(
        default=DEFAULT_INGEST_SCHEDULES, min_length=1
    )
    scan: ScanSchedule = ScanSchedule()
    execution: ExecutionSchedule = ExecutionSchedule()
    market_caps: MarketCapSchedule | None = MarketCapSchedule()
    universes: tuple[UniverseSchedule, ...] = DEFAULT_UNIVERSES
    funding: FundingSchedule | None = FundingSchedule()
    sentiment: SentimentSchedule | None = SentimentSchedule()
    # the scan without a promoted ranking model orders nothing (BUYs become HOLD, every output
    # says so); True is the explicit opt-in to paper trade on the technical agent alone
    # (CST_ALLOW_TECHNICAL_ONLY_TRADING=true on the scan function), which every output states
    allow_technical_only_trading: bool = False
    # The SageMaker serverless endpoint serving the promoted ranking model (``cst-rank``), a
    # name unique in the account and region: promotions of ``cst-rank`` by the model-canary
    # function create or update it (built-in XGBoost container; idle cost zero) and the scan
    # scores through it (``CST_RANKING_ENDPOINT``; its errors make the ml and ensemble agents abstain).
    # None: no ranking endpoint; the scan evaluates the registry artefact's trees in process.
    # At most 40 characters: each version is served by a model and configuration named
    # ``<endpoint>-v<N>-<sha8>``, which must fit SageMaker's 63 (never cut: a cut name would be
    # another version's).
    ranking_endpoint: str | None = Field(
        default=None, max_length=40, pattern=r"^[A-Za-z0-9](-*[A-Za-z0-9])*$"
    )
    # The exchanges whose read-only (market-data) API keys the ingest function may read: one
    # Secrets Manager secret per exchange account, created empty by the stack and filled by the
    # operator (README_OPERATIONS.md). Binance publishes its currency data (withdrawal fees,
    # minimums, suspensions) only to signed requests: without keys every arbitrage route through
    # Binance abstains, saying so. Never the execution function's trading keys.
    read_only_keys: tuple[Exchange, ...] = Field(default=("binance",), max_length=3)
    # Deep health probe cadence: each run is one uptime sample of the go-live gates.
    probe_every_minutes: int = Field(default=1, ge=1, le=60)
    # The four CloudWatch dashboards ($3.00 a month each beyond the account's three free ones;
    # docs/cost.md). Off: every alarm and metric stays, only the dashboards are not created.
    dashboards: bool = True
    ingest_function: FunctionSizing = FunctionSizing(memory_mb=1024, timeout_seconds=300)
    scan_function: FunctionSizing = FunctionSizing(memory_mb=2048, timeout_seconds=600)
    execution_function: FunctionSizing = FunctionSizing(memory_mb=1024, timeout_seconds=300)

    @model_validator(mode="after")
    def _venue_mode_is_allowed(self) -> DeploymentConfig:
        if self.venue_mode != "paper" and self.equity_usd is None:
            raise ValueError(
                f"venue_mode {self.venue_mode} is refused without equity_usd: the capital the "
                "stack may trade, no more than the exchange account holds for it "
                "(-c cst:equity_usd=2000; the ledger's cash is reconciled with the account)"
            )
        if self.venue_mode == "live" and self.live_golive_run is None:
            raise ValueError(
                "venue_mode live is refused: name the go-live run that passed staging and "
                "canary for this stack (-c cst:live_golive_run=RUN_ID); `cst golive status` "
                "shows it"
            )
        if self.venue_mode == "testnet":
            support = sandbox_support(self.default_exchange)
            if not support.available:
                raise ValueError(f"venue_mode testnet is refused: {support.note}")
        return self

    @model_validator(mode="after")
    def _one_rule_per_exchange_and_timeframe(self) -> DeploymentConfig:
        keys = [(s.exchange, s.timeframe) for s in self.ingest_schedules]
        if len(set(keys)) != len(keys):
            raise ValueError("each (exchange, timeframe) may have only one ingest schedule")
        return self

    @model_validator(mode="after")
    def _one_read_only_secret_per_exchange(self) -> DeploymentConfig:
        if len(set(self.read_only_keys)) != len(self.read_only_keys):
            raise ValueError("read_only_keys names each exchange at most once")
        return self

    @model_validator(mode="after")
    def _the_scan_exchange_is_ingested(self) -> DeploymentConfig:
        """The deployed scan (``data_source: ccxt``) reads ``default_exchange``'s daily and
        hourly candles, its coins' market caps and its perpetual funding from the lake: each
        must be ingested for that exchange, or its agents would only ever abstain (a replay
        deployment reads the recorded data instead)."""
        if self.data_source != "ccxt":
            return self
        ex = self.default_exchange
        rules = {(s.exchange, s.timeframe) for s in self.ingest_schedules}
        missing = [
            f"no {tf} ingest schedule for {ex} ({what})"
            for tf, what in (("1d", "the scan's daily candles"), ("1h", "its hourly quotes"))
            if (ex, tf) not in rules
        ]
        if self.market_caps is not None and self.market_caps.exchange != ex:
            missing.append(
                f"market_caps ingests the coins of {self.market_caps.exchange}, not {ex}"
            )
        if self.funding is not None and self.funding.exchange != ex:
            missing.append(f"funding ingests {self.funding.exchange}'s perpetuals, not {ex}'s")
        if missing:
            raise ValueError(
                f"default_exchange {ex} is not ingested for the scan: " + "; ".join(missing)
            )
        return self
