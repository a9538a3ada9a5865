"""Features of the ranking model: computed per coin, then ranked within each decision day.

Two steps, the same in the evaluation and in the scan:

1. :func:`coin_features` — per coin (per series segment when the series was cut at a break,
   :mod:`cryptosmarttrader.domain.series_breaks`), calendar-day windows on a dense daily grid
   (gaps stay null), nothing after the row's own day, at most :data:`RANK_LOOKBACK_DAYS` back.
2. :func:`rank_within_day` — on the day's eligible universe only: each feature becomes its
   percentile among that day's coins (0..1, null stays null). Market-wide moves therefore never
   enter the ranking.

Features (raw, before ranking): size (log market cap), 30-day volatility, illiquidity (Amihud:
mean |daily return| per dollar traded, log), listing age (days since the segment's first close,
capped at 365), drawdown from the 365-day high, supply growth (90-day change of market cap ÷
price), 30- and 90-day returns (their daily rank is the strength versus BTC and versus the
market), strength versus the coin's size tercile, volume trend (7 vs 30 days), and the heuristic
agents' probabilities (technical, early mover) as plain inputs.
"""

from __future__ import annotations

from typing import Final

import polars as pl

from cryptosmarttrader.domain.features import dense_daily_grid
from cryptosmarttrader.domain.market import DAILY_SCHEMA
from cryptosmarttrader.domain.types import DomainError

__all__ = [
    "AGENT_SIGNALS",
    "CANDIDATE_SIGNALS",
    "RANK_LOOKBACK_DAYS",
    "RAW_FEATURES",
    "coin_features",
    "rank_within_day",
    "ranked_name",
]

RANK_LOOKBACK_DAYS: Final = 366  # the 365-day high needs the close 365 days ago
AGE_CAP_DAYS: Final = 365

RAW_FEATURES: Final[tuple[str, ...]] = (
    "log_market_cap",
    "vol_30d",
    "illiquidity_30d",
    "listing_age",
    "dd_365d",
    "supply_growth_90d",
    "ret_30d",
    "ret_90d",
    "ret_90d_vs_size",
    "volume_trend",
    "log_volume_30d",
)
AGENT_SIGNALS: Final[tuple[str, ...]] = ("p_technical", "p_early_mover")
CANDIDATE_SIGNALS: Final[tuple[str, ...]] = (
    *(f for f in RAW_FEATURES if f != "log_volume_30d"),
    *AGENT_SIGNALS,
)


def ranked_name(feature: str) -> str:
    return f"{feature}_pct"


def coin_features(frame: pl.DataFrame) -> pl.DataFrame:
    """Raw features per row of ``frame`` (``DAILY_SCHEMA``, optionally with a ``segment``
    column from :func:`cut_series`): ``symbol``, ``ts``, ``day`` and :data:`RAW_FEATURES` except
    the size-relative strength (needs the day's universe: :func:`rank_within_day`)."""
    missing = [c for c in DAILY_SCHEMA if c not in frame.columns]
    if missing:
        raise DomainError(f"coin_features needs columns {list(DAILY_SCHEMA)}, missing {missing}")
    base = frame.select(
        *DAILY_SCHEMA,
        (pl.col("segment") if "segment" in frame.columns else pl.lit(0, pl.Int64)).alias("seg"),
    ).with_columns(key=pl.concat_str("symbol", pl.lit("\x1f"), pl.col("seg").cast(pl.String)))
    keyed = base.select(pl.col("key").alias("symbol"), "ts", "close", "volume", "market_cap")
    names = base.select("key", "symbol").unique()
    k = "symbol"
    close = pl.col("close")
    lr = pl.col("lr1")
    grid = dense_daily_grid(keyed).with_columns(
        close=pl.when(close > 0).then(close),
        volume=pl.when(pl.col("volume") >= 0).then(pl.col("volume")),
        market_cap=pl.when(pl.col("market_cap") > 0).then(pl.col("market_cap")),
    )
    out = (
        grid.lazy()
        .with_columns(
            lr1=(close / close.shift(1)).log().over(k),
            supply=pl.col("market_cap") / close,
            first_day=pl.col("day").filter(pl.col("close").is_not_null()).min().over(k),
            high365=close.rolling_max(365, min_samples=30).over(k),
            vol7=pl.col("volume").rolling_mean(7, min_samples=5).over(k),
            vol30=pl.col("volume").rolling_mean(30, min_samples=20).over(k),
        )
        .with_columns(
            amihud=pl.when(pl.col("volume") > 0).then(lr.abs() / pl.col("volume")),
        )
        .select(
            "symbol",
            "ts",
            "day",
            log_market_cap=pl.col("market_cap").log(),
            vol_30d=lr.rolling_std(30, min_samples=20).over(k),
            illiquidity_30d=(
                pl.col("amihud").rolling_mean(30, min_samples=20).over(k) * 1e6
            ).log1p(),
            listing_age=(pl.col("day") - pl.col("first_day"))
            .clip(0, AGE_CAP_DAYS)
            .cast(pl.Float64),
            dd_365d=(close / pl.col("high365")).log(),
            supply_growth_90d=(pl.col("supply") / pl.col("supply").shift(90)).log().over(k),
            ret_30d=(close / close.shift(30)).log().over(k),
            ret_90d=(close / close.shift(90)).log().over(k),
            volume_trend=pl.when((pl.col("vol7") > 0) & (pl.col("vol30") > 0)).then(
                (pl.col("vol7") / pl.col("vol30")).log()
            ),
            log_volume_30d=pl.col("vol30").log1p(),
        )
        .filter(pl.col("ts").is_not_null())
        .collect()
    )
    feats = [c for c in out.columns if c not in ("symbol", "ts", "day")]
    return (
        out.rename({"symbol": "key"})
        .join(names, on="key", how="left")
        .drop("key")
        .with_columns(pl.col(c).cast(pl.Float64).fill_nan(None) for c in feats)
        .select("symbol", "ts", "day", *feats)
        .sort("symbol", "ts")
    )


def rank_within_day(
    rows: pl.DataFrame, signals: tuple[str, ...], date: str = "day"
) -> pl.DataFrame:
    """``rows`` (one day's eligible universe, or many days) plus ``ret_90d_vs_size`` and a
    percentile column (:func:`ranked_name`) per signal: rank / count among that day's non-null
    values, so 1.0 is the day's highest."""
    tercile = (
        (pl.col("log_market_cap").rank("ordinal").over(date) - 1) * 3 // pl.len().over(date)
    ).alias("_size_bucket")
    with_size = rows.with_columns(tercile).with_columns(
        ret_90d_vs_size=pl.col("ret_90d") - pl.col("ret_90d").median().over(date, "_size_bucket")
    )
    return with_size.drop("_size_bucket").with_columns(
        (pl.col(s).rank("average").over(date) / pl.col(s).count().over(date)).alias(ranked_name(s))
        for s in signals
    )
