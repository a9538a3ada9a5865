"""The one feature module: training, evaluation and serving compute identical features.

:func:`feature_frame` takes a long ``DAILY_SCHEMA`` frame and returns one feature row per input
row, vectorized over every symbol and every date at once (``over("symbol")`` windows, per-day
cross-sections with ``over("day")``).

Identity between training and serving is a property of the definitions, not of a cache:

* Every per-symbol feature looks back at most :data:`FEATURE_LOOKBACK_DAYS` calendar days and
  has no memory beyond that (simple rolling windows, no recursively seeded EMA/Wilder state), so
  the value at day ``d`` computed from the full history equals the value computed from any
  window that covers ``(d - FEATURE_LOOKBACK_DAYS, d]`` (the scan reads 260 days).
* Windows are in calendar days, not rows: each series is laid on a dense daily grid (missing days
  are null, never filled), so a gap never stretches a "30-day" return over 40 days.
* Cross-sectional features (market-cap rank, return relative to the day's median, breadth) use
  the rows of that day only. They must therefore be computed on the same universe in training and
  serving: the raw universe minus stablecoins/wrapped tokens, *before* the quality gate (the gate
  decides which coins are eligible, not which coins define the market).

Nothing after a row's own day enters its features (tested: truncating the future leaves every
past feature unchanged).
"""

from __future__ import annotations

from typing import Final

import polars as pl

from cryptosmarttrader.domain.market import DAILY_SCHEMA, DAY_MS
from cryptosmarttrader.domain.types import DomainError

__all__ = [
    "FEATURE_COLUMNS",
    "FEATURE_LOOKBACK_DAYS",
    "dense_daily_grid",
    "feature_frame",
    "features_at",
]

FEATURE_LOOKBACK_DAYS: Final = 181  # longest window: 180-day return needs the close 180 days ago

FEATURE_COLUMNS: Final[tuple[str, ...]] = (
    "ret_1d",
    "ret_7d",
    "ret_30d",
    "ret_90d",
    "ret_180d",
    "vol_30d",
    "vol_90d",
    "dd_180d",
    "up_180d",
    "dist_sma50",
    "dist_sma180",
    "rsi_14",
    "volume_trend",
    "log_volume_30d",
    "log_market_cap",
    "turnover_30d",
    "obs_frac_180d",
    "mcap_rank_pct",
    "ret_30d_xs",
    "ret_90d_xs",
    "mkt_ret_30d",
    "mkt_ret_90d",
    "breadth_sma50",
)


def _log_ret(close: pl.Expr, days: int) -> pl.Expr:
    return (close / close.shift(days)).log().over("symbol")


def dense_daily_grid(frame: pl.DataFrame) -> pl.DataFrame:
    """Every (symbol, day) from each symbol's first to last day, with a ``day`` column
    (``ts // DAY_MS``); days without a bar keep null values (nothing is filled)."""
    days = frame.with_columns(day=pl.col("ts") // DAY_MS)
    dup = days.group_by("symbol", "day").len().filter(pl.col("len") > 1)
    if dup.height:
        raise DomainError(
            f"{dup.height} (symbol, day) pairs hold more than one bar (e.g. {dup['symbol'][0]}):"
            " run the quality gate (DUPLICATE) first"
        )
    grid = (
        days.group_by("symbol")
        .agg(day=pl.int_ranges(pl.col("day").min(), pl.col("day").max() + 1))
        .explode("day")
    )
    return grid.join(days, on=["symbol", "day"], how="left").sort("symbol", "day")


def feature_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """Features for every row of ``frame``: columns ``symbol``, ``ts``, ``day`` and
    :data:`FEATURE_COLUMNS` (float64; null where the history is too short or a value is missing).
    """
    missing = [c for c in DAILY_SCHEMA if c not in frame.columns]
    if missing:
        raise DomainError(f"feature_frame needs columns {list(DAILY_SCHEMA)}, missing {missing}")
    out_schema = {"symbol": pl.String(), "ts": pl.Int64(), "day": pl.Int64()} | {
        c: pl.Float64() for c in FEATURE_COLUMNS
    }
    if frame.is_empty():
        return pl.DataFrame(schema=out_schema)
    close = pl.col("close")
    sym = "symbol"
    positive = pl.col("close") > 0
    grid = dense_daily_grid(frame.select(list(DAILY_SCHEMA))).with_columns(
        close=pl.when(positive).then(close),
        volume=pl.when(pl.col("volume") >= 0).then(pl.col("volume")),
        market_cap=pl.when(pl.col("market_cap") > 0).then(pl.col("market_cap")),
    )
    lr = pl.col("lr1")
    per_symbol = (
        grid.lazy()
        .with_columns(
            lr1=_log_ret(close, 1),
            up=(close - close.shift(1)).clip(lower_bound=0).over(sym),
            down=(close.shift(1) - close).clip(lower_bound=0).over(sym),
            sma50=close.rolling_mean(50, min_samples=40).over(sym),
            sma180=close.rolling_mean(180, min_samples=120).over(sym),
            max180=close.rolling_max(180, min_samples=30).over(sym),
            min180=close.rolling_min(180, min_samples=30).over(sym),
            vol7=pl.col("volume").rolling_mean(7, min_samples=5).over(sym),
            vol30=pl.col("volume").rolling_mean(30, min_samples=20).over(sym),
            obs180=close.is_not_null().cast(pl.Float64).rolling_sum(180, min_samples=1).over(sym),
        )
        .with_columns(
            ret_1d=lr,
            ret_7d=_log_ret(close, 7),
            ret_30d=_log_ret(close, 30),
            ret_90d=_log_ret(close, 90),
            ret_180d=_log_ret(close, 180),
            vol_30d=lr.rolling_std(30, min_samples=20).over(sym),
            vol_90d=lr.rolling_std(90, min_samples=60).over(sym),
            dd_180d=(close / pl.col("max180")).log(),
            up_180d=(close / pl.col("min180")).log(),
            dist_sma50=(close / pl.col("sma50")).log(),
            dist_sma180=(close / pl.col("sma180")).log(),
            rsi_14=_rsi(
                pl.col("up").rolling_mean(14, min_samples=10).over(sym),
                pl.col("down").rolling_mean(14, min_samples=10).over(sym),
            ),
            volume_trend=pl.when((pl.col("vol7") > 0) & (pl.col("vol30") > 0)).then(
                (pl.col("vol7") / pl.col("vol30")).log()
            ),
            log_volume_30d=pl.col("vol30").log1p(),
            log_market_cap=pl.col("market_cap").log(),
            turnover_30d=pl.when(pl.col("vol30") > 0).then(
                (pl.col("vol30") / pl.col("market_cap")).log()
            ),
            obs_frac_180d=pl.col("obs180") / 180.0,
        )
        .filter(pl.col("ts").is_not_null())  # back to the input rows: the grid only spaced them
    )
    day = "day"
    return (
        per_symbol.with_columns(
            mcap_rank_pct=pl.col("market_cap").rank("average").over(day)
            / pl.col("market_cap").count().over(day),
            ret_30d_xs=pl.col("ret_30d") - pl.col("ret_30d").median().over(day),
            ret_90d_xs=pl.col("ret_90d") - pl.col("ret_90d").median().over(day),
            mkt_ret_30d=pl.col("ret_30d").median().over(day),
            mkt_ret_90d=pl.col("ret_90d").median().over(day),
            breadth_sma50=(pl.col("dist_sma50") > 0).cast(pl.Float64).mean().over(day),
        )
        .select(list(out_schema))
        .with_columns(pl.col(c).fill_nan(None) for c in FEATURE_COLUMNS)
        .cast(out_schema)  # type: ignore[arg-type]
        .sort("symbol", "ts")
        .collect()
    )


def _rsi(avg_up: pl.Expr, avg_down: pl.Expr) -> pl.Expr:
    """RSI from simple averages (Cutler): window-limited, so identical on any covering window."""
    total = avg_up + avg_down
    return pl.when(total > 0).then(100.0 * avg_up / total)


def features_at(frame: pl.DataFrame, asof_ms: int) -> pl.DataFrame:
    """Serving: features of the bars on the UTC day of ``asof_ms`` (one row per symbol that has
    a bar that day). ``frame`` must cover ``FEATURE_LOOKBACK_DAYS`` before it."""
    day = asof_ms // DAY_MS
    window = frame.filter(
        (pl.col("ts") // DAY_MS > day - FEATURE_LOOKBACK_DAYS) & (pl.col("ts") // DAY_MS <= day)
    )
    return feature_frame(window).filter(pl.col("day") == day)
