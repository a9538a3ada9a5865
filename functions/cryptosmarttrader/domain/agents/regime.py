"""Market regime detection: six regimes from a market-wide index, vectorized over days.

Input: the daily universe (``DAILY_SCHEMA``, nothing after ``asof``). The market index is the
market-cap-weighted mean of the coins' daily returns, each coin weighted by its previous day's
market cap (coins without a positive market cap or without the previous day's bar carry no
weight that day; nothing is filled). Callers pass the universe they trade (the scan excludes
stablecoins and wrapped tokens, which would damp the index).

Per day, from the index level ``L``:

* ``ret7``, ``ret30`` — 7- and 30-day index returns; ``drawdown30`` — ``L`` versus its 30-day
  high; ``sma50`` / ``sma200`` of ``L`` (TA-Lib SMA);
* ``vol20`` — annualized sample std of 20 daily log returns; ``vol_ratio`` — ``vol20`` over its
  own median of the previous ``baseline_days`` days (how unusual today's volatility is *for this
  market*, so 2014 and 2023 are judged on their own scale).

Classification, first match wins (thresholds in :class:`RegimeConfig`):

1. ``crash`` — ``ret7 <= crash_ret7`` or (``drawdown30 <= crash_drawdown`` and
   ``ret7 <= crash_drawdown_ret7``);
2. ``high_volatility`` — ``vol_ratio >= high_vol_ratio``;
3. ``low_vol_squeeze`` — ``vol_ratio <= squeeze_vol_ratio`` and ``|ret30| < trend_ret30``;
4. ``bull_trend`` — ``L > sma200``, ``sma50 > sma200`` and ``ret30 >= trend_ret30``;
5. ``bear_trend`` — ``L < sma200``, ``sma50 < sma200`` and ``ret30 <= -trend_ret30``;
6. ``sideways`` — everything else.

That is the day's ``raw_regime``. The reported ``regime`` adds hysteresis: a new raw regime is
adopted once it held ``min_dwell`` consecutive days (a crash at once); until then the previous
regime stays in force. This is persistence of a state, not a filled value: the features of every
day are still its own.

A day whose features are undefined (fewer than ``200`` index days, a missing day inside a window)
has no regime and says why: nothing is guessed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

import polars as pl

from cryptosmarttrader.domain import indicators as ind
from cryptosmarttrader.domain.market import DAY_MS

__all__ = [
    "INDEX_SCHEMA",
    "Regime",
    "RegimeConfig",
    "RegimeReading",
    "market_index",
    "regime_at",
    "regime_features",
    "regime_timeline",
]


class Regime(StrEnum):
    BULL_TREND = "bull_trend"
    BEAR_TREND = "bear_trend"
    SIDEWAYS = "sideways"
    HIGH_VOLATILITY = "high_volatility"
    LOW_VOL_SQUEEZE = "low_vol_squeeze"
    CRASH = "crash"


INDEX_SCHEMA: Final[dict[str, pl.DataType]] = {
    "ts": pl.Int64(),  # start of the UTC day (ms)
    "ret": pl.Float64(),  # cap-weighted mean return of the day
    "coins": pl.UInt32(),  # coins carrying weight that day
}


@dataclass(frozen=True, slots=True)
class RegimeConfig:
    crash_ret7: float = -0.20
    crash_drawdown: float = -0.30
    crash_drawdown_ret7: float = -0.10
    high_vol_ratio: float = 1.6
    squeeze_vol_ratio: float = 0.6
    trend_ret30: float = 0.05
    vol_days: int = 20
    baseline_days: int = 180
    min_baseline_days: int = 60
    long_sma: int = 200
    short_sma: int = 50
    min_dwell: int = 3


@dataclass(frozen=True, slots=True)
class RegimeReading:
    """The regime of one day, or ``None`` with the reason it is unknown."""

    ts: int
    regime: Regime | None
    reason: str


def market_index(universe: pl.DataFrame) -> pl.DataFrame:
    """Daily cap-weighted index returns (``INDEX_SCHEMA``), one row per day with weight."""
    return (
        universe.lazy()
        .select("symbol", "ts", "close", "market_cap")
        .sort("symbol", "ts")
        .with_columns(day=pl.col("ts") // DAY_MS)
        .with_columns(
            r=(pl.col("close") / pl.col("close").shift(1) - 1).over("symbol"),
            w=pl.col("market_cap").shift(1).over("symbol"),
            consecutive=(pl.col("day").diff() == 1).over("symbol"),
        )
        .filter(
            pl.col("consecutive")
            & (pl.col("w") > 0)
            & pl.col("r").is_not_null()
            & pl.col("r").is_not_nan()
        )
        .group_by("day")
        .agg(
            ret=(pl.col("r") * pl.col("w")).sum() / pl.col("w").sum(),
            coins=pl.len(),
        )
        .select(ts=pl.col("day") * DAY_MS, ret="ret", coins="coins")
        .sort("ts")
        .collect()
        .cast(INDEX_SCHEMA)  # type: ignore[arg-type]
    )


def regime_features(index: pl.DataFrame, config: RegimeConfig = RegimeConfig()) -> pl.DataFrame:
    """Index level, trend and volatility features and the regime of every day."""
    c = config
    level = pl.col("level")
    vol_ratio_base = (
        pl.col("vol20").shift(1).rolling_median(c.baseline_days, min_samples=c.min_baseline_days)
    )
    frame = (
        index.sort("ts")
        .with_columns(
            # a day missing from the index breaks every window that spans it
            span_ok=(pl.col("ts").diff() == DAY_MS).cast(pl.Int64),
            level=(1.0 + pl.col("ret")).cum_prod(),
            logret=(1.0 + pl.col("ret")).log(),
        )
        .with_columns(
            contiguous=pl.col("span_ok").fill_null(0).rolling_sum(c.long_sma - 1) == c.long_sma - 1,
            ret7=level / level.shift(7) - 1,
            ret30=level / level.shift(30) - 1,
            drawdown30=level / level.rolling_max(30) - 1,
            sma50=ind.sma(level, c.short_sma, by=None),
            sma200=ind.sma(level, c.long_sma, by=None),
            vol20=pl.col("logret").rolling_std(c.vol_days) * math.sqrt(365),
        )
        .with_columns(vol_ratio=pl.col("vol20") / vol_ratio_base)
    )
    defined = pl.all_horizontal(
        pl.col(k).is_not_null() for k in ("ret30", "sma200", "vol20", "vol_ratio")
    ) & pl.col("contiguous").fill_null(False)
    regime = (
        pl.when(~defined)
        .then(None)
        .when(
            (pl.col("ret7") <= c.crash_ret7)
            | (
                (pl.col("drawdown30") <= c.crash_drawdown)
                & (pl.col("ret7") <= c.crash_drawdown_ret7)
            )
        )
        .then(pl.lit(Regime.CRASH.value))
        .when(pl.col("vol_ratio") >= c.high_vol_ratio)
        .then(pl.lit(Regime.HIGH_VOLATILITY.value))
        .when(
            (pl.col("vol_ratio") <= c.squeeze_vol_ratio) & (pl.col("ret30").abs() < c.trend_ret30)
        )
        .then(pl.lit(Regime.LOW_VOL_SQUEEZE.value))
        .when(
            (level > pl.col("sma200"))
            & (pl.col("sma50") > pl.col("sma200"))
            & (pl.col("ret30") >= c.trend_ret30)
        )
        .then(pl.lit(Regime.BULL_TREND.value))
        .when(
            (level < pl.col("sma200"))
            & (pl.col("sma50") < pl.col("sma200"))
            & (pl.col("ret30") <= -c.trend_ret30)
        )
        .then(pl.lit(Regime.BEAR_TREND.value))
        .otherwise(pl.lit(Regime.SIDEWAYS.value))
    )
    why_unknown = (
        pl.when(defined)
        .then(None)
        .when(pl.int_range(1, pl.len() + 1) < c.long_sma)
        .then(
            pl.format(
                "insufficient market history: {} index days < {}",
                pl.int_range(1, pl.len() + 1),
                pl.lit(c.long_sma),
            )
        )
        .when(~pl.col("contiguous").fill_null(False))
        .then(pl.lit(f"a day is missing from the market index in the last {c.long_sma} days"))
        .otherwise(pl.lit("volatility baseline undefined on this history"))
    )
    run = (pl.col("raw_regime") != pl.col("raw_regime").shift(1)).fill_null(True).cum_sum()
    confirmed = pl.when(
        (pl.col("raw_regime") == Regime.CRASH.value) | (pl.col("run_day") >= c.min_dwell)
    ).then(pl.col("raw_regime"))
    return (
        frame.with_columns(raw_regime=regime, unknown_reason=why_unknown)
        .with_columns(run=run)
        .with_columns(run_day=pl.int_range(1, pl.len() + 1).over("run"))
        .with_columns(
            regime=pl.when(pl.col("raw_regime").is_not_null()).then(
                confirmed.forward_fill().over(pl.col("raw_regime").is_null().cum_sum())
            )
        )
        .with_columns(
            unknown_reason=pl.when(pl.col("regime").is_null() & pl.col("unknown_reason").is_null())
            .then(
                pl.format("regime not yet confirmed: {} days < {}", "run_day", pl.lit(c.min_dwell))
            )
            .otherwise("unknown_reason")
        )
        .drop("span_ok", "run", "run_day")
    )


def regime_timeline(
    universe: pl.DataFrame,
    start_ms: int,
    end_ms: int,
    config: RegimeConfig = RegimeConfig(),
) -> pl.DataFrame:
    """Regime of every day in ``[start_ms, end_ms]`` with its features.

    Features of a day use only that day and earlier ones; days before ``start_ms`` in
    ``universe`` serve as warm-up.
    """
    if end_ms < start_ms:
        raise ValueError(f"end {end_ms} is before start {start_ms}")
    frame = universe.filter(pl.col("ts") <= end_ms)
    return regime_features(market_index(frame), config).filter(pl.col("ts") >= start_ms)


def regime_at(
    universe: pl.DataFrame, asof_ms: int, config: RegimeConfig = RegimeConfig()
) -> RegimeReading:
    """The regime on the UTC day of ``asof_ms`` (rows after ``asof_ms`` are ignored)."""
    day = asof_ms - asof_ms % DAY_MS
    features = regime_features(market_index(universe.filter(pl.col("ts") <= asof_ms)), config)
    row = features.filter(pl.col("ts") == day)
    if row.is_empty():
        return RegimeReading(day, None, "no market index value on the as-of day")
    r = row.row(0, named=True)
    if r["regime"] is None:
        return RegimeReading(day, None, str(r["unknown_reason"]))
    reason = (
        f"market index: 7d {r['ret7']:+.1%}, 30d {r['ret30']:+.1%}, "
        f"30d drawdown {r['drawdown30']:.1%}, vol20 {r['vol20']:.0%} "
        f"({r['vol_ratio']:.2f}× its {config.baseline_days}d median), "
        f"{'above' if r['level'] > r['sma200'] else 'below'} SMA{config.long_sma}"
    )
    return RegimeReading(day, Regime(r["regime"]), reason)
