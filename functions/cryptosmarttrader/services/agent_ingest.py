"""Ingestion of what the agents need beside the daily candles: the liquid universe of each
exchange, perpetual funding rates and mark prices, and the sentiment index.

* **Universe** (:class:`UniverseService`): every active spot pair quoted in the configured quote
  (USDT) whose 24 h quote volume reaches the liquidity floor, from the venue's markets and 24 h
  tickers (not a fixed list), stablecoin and wrapped bases left out, the most liquid
  ``max_pairs`` kept. The selection is stored in the state table with its time, floor and the
  reason each pair was left out; the candle, market-cap and funding runs of that exchange read
  it, and select anew when it is missing or a day old.
* **Funding** (:class:`FundingIngestService`): for the universe's pairs that have a linear
  perpetual on the venue, the funding-rate history after the series' watermark (a rate that is
  not finite, beyond ±``max_abs_rate``, in the future or conflicting with another at the same
  time rejects that pair's batch with the reason: nothing written, the watermark stays), and the
  8 h mark-price candles through the candle ingest (:class:`IngestService`: the same gate,
  watermarks and idempotent merge) under the exchange label ``<exchange>-mark``.
* **Withdrawals** (:class:`WithdrawalIngestService`, on the universe's schedule): each coin of
  the universe's withdrawal and deposit state, withdrawal fee and minimum on the venue, as the
  venue reports them now (a fee or minimum that is negative or not finite rejects that coin's
  row with the reason; a venue that reports nothing leaves its coins unseen, never guessed).
  A venue that serves its currency data to signed requests only (Binance) is asked with the
  ingest function's read-only keys; without them the run records the stated reason (and the
  venue's error when it answers with one) beside the dataset, and the arbitrage agent
  abstains on every route through that venue with it.
* **Sentiment** (:class:`SentimentIngestService`): the index's daily readings after the
  watermark (a value outside 0-100, a reading in the future or two readings of one day reject
  the run with the reason). An unreachable source is an error of the run, with the reason; the
  scan's sentiment agent then abstains, naming the age of the newest reading the lake holds.

Every write is a merge keyed on time, and each watermark moves only after its rows are in the
lake, so a rerun (or a retry after a crash between the two) writes nothing new.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

import polars as pl

from cryptosmarttrader.domain.clock import Clock
from cryptosmarttrader.domain.exchange import ExchangeError
from cryptosmarttrader.domain.market import DAY_MS
from cryptosmarttrader.domain.sanitize import sanitize_text
from cryptosmarttrader.domain.types import ms_from_utc
from cryptosmarttrader.domain.universe import pair_exclusion
from cryptosmarttrader.ports import (
    FundingStore,
    PerpetualVenue,
    SentimentSource,
    SentimentStore,
    SpotVenue,
    StateRecords,
    WithdrawalStore,
    WithdrawalVenue,
)
from cryptosmarttrader.services.ingest import (
    INGEST_QUALITY,
    WATERMARK_PK,
    IngestReport,
    IngestService,
    series_key,
)

__all__ = [
    "PEGGED_QUALITY",
    "UNIVERSE_PK",
    "FundingIngestService",
    "FundingReport",
    "SentimentIngestService",
    "SentimentReport",
    "UniverseRule",
    "UniverseSelection",
    "UniverseService",
    "WithdrawalIngestService",
    "WithdrawalReport",
    "select_universe",
]

UNIVERSE_PK: Final = "ingest#universe"
SENTIMENT_SERIES: Final = "sentiment"
_FUNDING_TF: Final = "funding"


# --------------------------------------------------------------------------- universe
# The gate of a pegged rate's candles (USDT/USD): a peg's closes repeat for many hours, so a
# run of identical closes is never an error there; every other rule holds.
PEGGED_QUALITY: Final = INGEST_QUALITY.model_copy(update={"stale_error_run": 10**9})


@dataclass(frozen=True)
class UniverseRule:
    quote: str = "USDT"
    min_quote_volume_usd: float = 1_000_000.0
    max_pairs: int = 100


@dataclass(frozen=True)
class UniverseSelection:
    exchange: str
    pairs: tuple[str, ...]
    selected_at: datetime
    rule: UniverseRule
    excluded: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        reasons: dict[str, int] = {}
        for why in self.excluded.values():
            head = why.split(":")[0]
            reasons[head] = reasons.get(head, 0) + 1
        return {
            "exchange": self.exchange,
            "pairs": list(self.pairs),
            "selected_at": self.selected_at.isoformat(),
            "quote": self.rule.quote,
            "min_quote_volume_usd": self.rule.min_quote_volume_usd,
            "max_pairs": self.rule.max_pairs,
            "excluded": len(self.excluded),
            "excluded_reasons": reasons,
        }


def select_universe(
    volumes: Mapping[str, float | None], rule: UniverseRule
) -> tuple[list[str], dict[str, str]]:
    """(pairs most liquid first, pair → why it was left out)."""
    excluded: dict[str, str] = {}
    liquid: list[tuple[float, str]] = []
    for pair, volume in volumes.items():
        base, _, quote = pair.partition("/")
        if quote != rule.quote or not base:
            excluded[pair] = f"not quoted in {rule.quote}"
        elif (why := pair_exclusion(pair)) is not None:
            excluded[pair] = f"not a growth candidate: {why}"
        elif volume is None or not math.isfinite(volume):
            excluded[pair] = "no 24h volume reported"
        elif volume < rule.min_quote_volume_usd:
            excluded[pair] = (
                f"below the liquidity floor: 24h volume {volume:,.0f} < "
                f"{rule.min_quote_volume_usd:,.0f} {rule.quote}"
            )
        else:
            liquid.append((volume, pair))
    liquid.sort(key=lambda item: (-item[0], item[1]))
    for _, pair in liquid[rule.max_pairs :]:
        excluded[pair] = f"beyond the {rule.max_pairs} most liquid pairs"
    return [pair for _, pair in liquid[: rule.max_pairs]], excluded


@dataclass
class UniverseService:
    state: StateRecords
    clock: Clock
    max_age: timedelta = timedelta(days=1)

    def select(self, exchange: str, venue: SpotVenue, rule: UniverseRule) -> UniverseSelection:
        """Select from the venue now and store the selection (raises the venue's errors)."""
        pairs, excluded = select_universe(venue.spot_quote_volumes(rule.quote), rule)
        if not pairs:
            raise ValueError(
                f"no {exchange} spot {rule.quote} pair passes the liquidity floor "
                f"({rule.min_quote_volume_usd:,.0f} {rule.quote} in 24h)"
            )
        chosen = UniverseSelection(exchange, tuple(pairs), self.clock.now(), rule, excluded)
        self.state.put(
            UNIVERSE_PK,
            exchange,
            {
                "pairs": list(pairs),
                "selected_at": chosen.selected_at.isoformat(),
                "quote": rule.quote,
                "min_quote_volume_usd": str(rule.min_quote_volume_usd),
                "max_pairs": rule.max_pairs,
            },
        )
        return chosen

    def stored(self, exchange: str) -> UniverseSelection | None:
        item = self.state.get(UNIVERSE_PK, exchange)
        if item is None:
            return None
        return UniverseSelection(
            exchange,
            tuple(str(p) for p in item["pairs"]),
            datetime.fromisoformat(str(item["selected_at"])),
            UniverseRule(
                str(item["quote"]), float(str(item["min_quote_volume_usd"])), int(item["max_pairs"])
            ),
        )

    def current(self, exchange: str, venue: SpotVenue, rule: UniverseRule) -> UniverseSelection:
        """The stored selection (made by the universe rule, with its floor) when it is fresh
        (younger than ``max_age``, not from the future); otherwise a new one under ``rule``."""
        now = self.clock.now()
        held = self.stored(exchange)
        if held is not None and held.selected_at <= now < held.selected_at + self.max_age:
            return held
        return self.select(exchange, venue, rule)


# --------------------------------------------------------------------------- funding
@dataclass
class FundingOutcome:
    symbol: str
    ingested: int = 0
    watermark_ms: int | None = None
    status: str = "ok"  # ok | up_to_date | rejected | exchange_error
    reason: str = ""


@dataclass
class FundingReport:
    exchange: str
    perpetuals: int
    without_perpetual: list[str]
    funding: list[FundingOutcome]
    mark: IngestReport | None

    @property
    def ingested(self) -> int:
        return sum(o.ingested for o in self.funding) + (self.mark.ingested if self.mark else 0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "exchange": self.exchange,
            "perpetuals": self.perpetuals,
            "without_perpetual": self.without_perpetual,
            "ingested": self.ingested,
            "funding": [o.__dict__ for o in self.funding],
            "mark": None if self.mark is None else self.mark.to_dict(),
        }


@dataclass(frozen=True)
class FundingGate:
    max_abs_rate: float = 0.05  # 5 % per interval: far beyond any venue's cap
    initial_lookback: timedelta = timedelta(days=30)


def gate_funding(frame: pl.DataFrame, now_ms: int, gate: FundingGate) -> str | None:
    """Why these funding rows cannot be written, or None."""
    if frame.is_empty():
        return None
    rate = pl.col("funding_rate")
    bad = frame.filter(rate.is_null() | rate.is_nan() | rate.is_infinite())
    if bad.height:
        return f"{bad.height} funding rate(s) not a finite number"
    wild = frame.filter(rate.abs() > gate.max_abs_rate)
    if wild.height:
        return f"{wild.height} funding rate(s) beyond ±{gate.max_abs_rate:g} (e.g. {wild['funding_rate'][0]:g})"
    future = frame.filter(pl.col("ts") > now_ms)
    if future.height:
        return f"{future.height} funding reading(s) stamped after now"
    conflicting = frame.group_by("ts").agg(pl.col("funding_rate").n_unique().alias("n"))
    if conflicting.filter(pl.col("n") > 1).height:
        return "two different funding rates at the same time"
    return None


@dataclass
class FundingIngestService:
    venue: PerpetualVenue
    store: FundingStore
    candles: IngestService  # the mark candles' ingest (source: ``venue.mark_candles()``)
    state: StateRecords
    clock: Clock
    gate: FundingGate = field(default_factory=FundingGate)

    def run(self, exchange: str, pairs: Sequence[str], quote: str = "USDT") -> FundingReport:
        perpetuals = self.venue.perpetual_pairs(quote)
        funded = [p for p in pairs if p in perpetuals]
        without = sorted(p for p in pairs if p not in perpetuals)
        outcomes = [self._funding(exchange, pair) for pair in funded]
        mark = self.candles.run(f"{exchange}-mark", "8h", funded) if funded else None
        return FundingReport(exchange, len(funded), without, outcomes, mark)

    def _funding(self, exchange: str, pair: str) -> FundingOutcome:
        now_ms = ms_from_utc(self.clock.now())
        key = series_key(exchange, _FUNDING_TF, pair)
        stored = self.state.get(WATERMARK_PK, key)
        wm = None if stored is None else int(stored["last_ts"])
        outcome = FundingOutcome(pair, watermark_ms=wm)
        since = (
            wm + 1
            if wm is not None
            else now_ms - int(self.gate.initial_lookback / timedelta(milliseconds=1))
        )
        try:
            rows = self.venue.funding_history(pair, since, now_ms)
        except ExchangeError as exc:
            outcome.status, outcome.reason = "exchange_error", str(exc)
            return outcome
        rows = rows.filter(pl.col("ts") >= since).unique(maintain_order=True).sort("ts")
        why = gate_funding(rows, now_ms, self.gate)
        if why is not None:
            outcome.status, outcome.reason = "rejected", why
            return outcome
        if rows.is_empty():
            outcome.status = "up_to_date"
            return outcome
        self.store.write_funding(rows, exchange)
        last = int(rows["ts"].max())  # type: ignore[arg-type]
        self.state.put(
            WATERMARK_PK,
            key,
            {"last_ts": last, "updated_at": self.clock.now(), "rows": rows.height},
        )
        outcome.ingested, outcome.watermark_ms = rows.height, last
        return outcome


# --------------------------------------------------------------------------- sentiment
@dataclass
class SentimentReport:
    source: str
    ingested: int
    watermark_ms: int | None
    status: str
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class SentimentRejectedError(ValueError):
    """The source answered with readings the gate refuses (the message says why)."""


@dataclass
class SentimentIngestService:
    feed: SentimentSource
    store: SentimentStore
    state: StateRecords
    clock: Clock
    source_label: str = "fear_greed"
    limit: int = 60

    def run(self) -> SentimentReport:
        """Raises ``SentimentUnavailableError`` (unreachable) or :class:`SentimentRejectedError`."""
        now_ms = ms_from_utc(self.clock.now())
        stored = self.state.get(
            WATERMARK_PK, series_key(self.source_label, SENTIMENT_SERIES, "index")
        )
        wm = None if stored is None else int(stored["last_ts"])
        readings = self.feed.readings(self.limit)
        frame = pl.DataFrame(
            {
                "ts": [r.ts for r in readings],
                "value": [r.value for r in readings],
                "classification": [r.classification for r in readings],
            },
            schema={"ts": pl.Int64, "value": pl.Float64, "classification": pl.String},
        ).sort("ts")
        if frame.filter(pl.col("ts") % DAY_MS != 0).height:
            raise SentimentRejectedError(f"{self.feed.name}: a reading not stamped at 00:00 UTC")
        if frame.filter(pl.col("ts") > now_ms).height:
            raise SentimentRejectedError(f"{self.feed.name}: a reading stamped after now")
        if frame["ts"].n_unique() != frame.height:
            raise SentimentRejectedError(f"{self.feed.name}: two readings for one day")
        fresh = frame if wm is None else frame.filter(pl.col("ts") > wm)
        if fresh.is_empty():
            return SentimentReport(self.feed.name, 0, wm, "up_to_date")
        self.store.write_sentiment(fresh, self.source_label)
        last = int(fresh["ts"].max())  # type: ignore[arg-type]
        self.state.put(
            WATERMARK_PK,
            series_key(self.source_label, SENTIMENT_SERIES, "index"),
            {"last_ts": last, "updated_at": self.clock.now(), "rows": fresh.height},
        )
        return SentimentReport(self.feed.name, fresh.height, last, "ok")


# --------------------------------------------------------------------------- withdrawals
WITHDRAWAL_SERIES: Final = "withdrawals"


@dataclass
class WithdrawalReport:
    exchange: str
    coins: int
    ingested: int = 0
    unseen: list[str] = field(default_factory=list)  # coins the venue reported nothing for
    rejected: dict[str, str] = field(default_factory=dict)
    status: str = "ok"  # ok | exchange_error | unavailable (no keys for signed-only data)
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def gate_withdrawals(frame: pl.DataFrame, now_ms: int) -> dict[str, str]:
    """coin → why its row cannot be written."""
    bad: dict[str, str] = {}
    for coin, fee, minimum, ts in frame.select(
        "symbol", "withdraw_fee", "withdraw_min", "ts"
    ).iter_rows():
        if ts > now_ms:
            bad[coin] = "observed after now"
        for name, value in (("withdrawal fee", fee), ("minimum withdrawal", minimum)):
            if value is not None and (not math.isfinite(value) or value < 0):
                bad[coin] = f"{name} {value} is not a non-negative number"
    return bad


@dataclass
class WithdrawalIngestService:
    venue: WithdrawalVenue
    store: WithdrawalStore
    state: StateRecords
    clock: Clock

    def run(
        self, exchange: str, pairs: Sequence[str], unavailable: str | None = None
    ) -> WithdrawalReport:
        """``unavailable``: why the venue cannot be asked (no read-only keys for a venue that
        serves its currency data to signed requests only): recorded, nothing else written,
        the agent abstains on routes through the venue with that reason."""
        coins = sorted({p.partition("/")[0] for p in pairs})
        report = WithdrawalReport(exchange, len(coins))
        now_ms = ms_from_utc(self.clock.now())
        if unavailable is not None:
            report.status, report.reason, report.unseen = "unavailable", unavailable, coins
            self.store.write_withdrawal_status(exchange, now_ms, sanitize_text(unavailable))
            return report
        try:
            frame = self.venue.withdrawal_constraints(coins)
        except ExchangeError as exc:
            report.status, report.reason = "exchange_error", str(exc)
            why = sanitize_text(f"{exchange}: currency data unavailable: {exc}")
            self.store.write_withdrawal_status(exchange, now_ms, why)
            return report
        self.store.write_withdrawal_status(exchange, now_ms, None)
        report.rejected = gate_withdrawals(frame, now_ms)
        clean = frame.filter(~pl.col("symbol").is_in(list(report.rejected)))
        report.unseen = sorted(set(coins) - set(frame["symbol"].to_list()))
        if clean.is_empty():
            return report
        self.store.write_withdrawals(clean, exchange)
        last = int(clean["ts"].max())  # type: ignore[arg-type]
        self.state.put(
            WATERMARK_PK,
            series_key(exchange, WITHDRAWAL_SERIES, "all"),
            {"last_ts": last, "updated_at": self.clock.now(), "rows": clean.height},
        )
        report.ingested = clean.height
        return report
