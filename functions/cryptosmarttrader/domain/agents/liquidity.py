"""Liquidity gate: vetoes coins too thin to trade, with the reason. It has no directional view.

Inputs: the daily universe (``DAILY_SCHEMA``, 24 h USD volume, nothing after ``asof``) and,
optionally, order-book depth (``DEPTH_SCHEMA``: USD notional resting within ``depth_band`` of the
mid on each side, as measured by the caller at ``ts``).

Every row of this agent is an abstention (probability and confidence null): liquidity says
nothing about direction. A coin that fails a check gets ``abstain_reason`` starting with
:data:`VETO_PREFIX` — the ensemble must drop it whatever the other agents say
(:func:`vetoed` lists them); a coin that passes gets a plain "no directional view" reason that
also states the measured liquidity.

Checks (fail closed: a liquidity that cannot be measured is not assumed):

* no bar at the as-of date, or volume missing/zero on more than ``max_missing_days`` of the last
  ``window_days`` days → veto (volume unknown);
* median USD volume of the last ``window_days`` days below ``min_median_volume_usd`` → veto;
* ``position_usd`` above ``max_participation`` of that median → veto (the order would move the
  market);
* with depth given: ``position_usd`` above ``max_depth_fraction`` of the thinner book side, or a
  depth snapshot older than ``max_depth_age_ms`` → veto.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import polars as pl

from cryptosmarttrader.domain.agents.base import VOTE_SCHEMA, empty_votes
from cryptosmarttrader.domain.market import DAY_MS

AGENT = "liquidity"
VETO_PREFIX: Final = "veto: "

DEPTH_SCHEMA: Final[dict[str, pl.DataType]] = {
    "symbol": pl.String(),
    "ts": pl.Int64(),
    "bid_depth_usd": pl.Float64(),
    "ask_depth_usd": pl.Float64(),
}


@dataclass(frozen=True, slots=True)
class LiquidityConfig:
    position_usd: float = 2_000.0  # intended order notional (equity × max asset fraction)
    window_days: int = 30
    max_missing_days: int = 3
    min_median_volume_usd: float = 1_000_000.0
    max_participation: float = 0.01  # order ≤ 1 % of the median daily volume
    max_depth_fraction: float = 0.10  # order ≤ 10 % of the thinner side within the band
    depth_band: float = 0.02  # documented band of the depth frame (±2 % around the mid)
    max_depth_age_ms: int = 5 * 60_000


def _usd(expr: pl.Expr) -> pl.Expr:
    return pl.format("${}", expr.round(0).cast(pl.Int64))


def liquidity_votes(
    frame: pl.DataFrame,
    asof_ms: int,
    depth: pl.DataFrame | None = None,
    config: LiquidityConfig = LiquidityConfig(),
) -> pl.DataFrame:
    """One abstention per symbol: a veto with its reason, or "liquid, no directional view"."""
    if frame.is_empty():
        return empty_votes()
    c = config
    day_start = asof_ms - asof_ms % DAY_MS
    window_start = day_start - (c.window_days - 1) * DAY_MS
    vol = pl.col("volume")
    usable = vol.is_not_null() & vol.is_not_nan() & (vol > 0)
    recent = frame.filter((pl.col("ts") <= asof_ms) & (pl.col("ts") >= window_start))
    stats = (
        frame.filter(pl.col("ts") <= asof_ms)
        .group_by("symbol")
        .agg(ts=pl.col("ts").max())
        .join(
            recent.group_by("symbol").agg(
                usable_days=usable.sum(),
                median_volume=vol.filter(usable).median(),
            ),
            on="symbol",
            how="left",
        )
        .with_columns(
            missing_days=c.window_days - pl.col("usable_days").fill_null(0),
            participation=c.position_usd / pl.col("median_volume"),
        )
    )
    if depth is not None:
        stats = stats.join(
            depth.select(
                "symbol",
                depth_ts=pl.col("ts"),
                thin_side=pl.min_horizontal("bid_depth_usd", "ask_depth_usd"),
            ),
            on="symbol",
            how="left",
        )
    else:
        stats = stats.with_columns(
            depth_ts=pl.lit(None, pl.Int64), thin_side=pl.lit(None, pl.Float64)
        )
    depth_given = depth is not None
    veto = (
        pl.when(pl.col("ts") < day_start)
        .then(pl.lit("no bar at the as-of date: liquidity unknown"))
        .when(pl.col("missing_days") > c.max_missing_days)
        .then(
            pl.format(
                "volume unknown on {} of the last {} days (max {})",
                "missing_days",
                pl.lit(c.window_days),
                pl.lit(c.max_missing_days),
            )
        )
        .when(pl.col("median_volume") < c.min_median_volume_usd)
        .then(
            pl.format(
                "median {}d volume {} below the {} floor",
                pl.lit(c.window_days),
                _usd(pl.col("median_volume")),
                _usd(pl.lit(c.min_median_volume_usd)),
            )
        )
        .when(pl.col("participation") > c.max_participation)
        .then(
            pl.format(
                "order {} is {}% of the median daily volume (max {}%)",
                _usd(pl.lit(c.position_usd)),
                (pl.col("participation") * 100).round(2).cast(pl.String),
                pl.lit(c.max_participation * 100),
            )
        )
    )
    if depth_given:
        veto = (
            veto.when(pl.col("depth_ts").is_null() | pl.col("thin_side").is_null())
            .then(pl.lit("no order-book depth for this coin"))
            .when(pl.col("depth_ts") < asof_ms - c.max_depth_age_ms)
            .then(pl.lit("order-book depth snapshot is stale"))
            .when(pl.lit(c.position_usd) > c.max_depth_fraction * pl.col("thin_side"))
            .then(
                pl.format(
                    "order {} exceeds {}% of the thinner book side {} within ±{}%",
                    _usd(pl.lit(c.position_usd)),
                    pl.lit(c.max_depth_fraction * 100),
                    _usd(pl.col("thin_side")),
                    pl.lit(c.depth_band * 100),
                )
            )
        )
    passed = pl.format(
        "no directional view: liquid (median {}d volume {}, order {}% of it)",
        pl.lit(c.window_days),
        _usd(pl.col("median_volume")),
        (pl.col("participation") * 100).round(3).cast(pl.String),
    )
    return (
        stats.with_columns(veto=veto.otherwise(None))
        .select(
            "symbol",
            pl.lit(AGENT).alias("agent"),
            "ts",
            pl.lit(None, pl.Float64).alias("probability"),
            pl.lit(None, pl.Float64).alias("confidence"),
            pl.lit([], dtype=pl.List(pl.String)).alias("reasons"),
            pl.when(pl.col("veto").is_not_null())
            .then(pl.lit(VETO_PREFIX) + pl.col("veto"))
            .otherwise(passed)
            .alias("abstain_reason"),
        )
        .cast(VOTE_SCHEMA)  # type: ignore[arg-type]
        .sort("symbol")
    )


def vetoed(votes: pl.DataFrame) -> pl.DataFrame:
    """(symbol, reason) of every liquidity veto in a votes frame."""
    return votes.filter(
        (pl.col("agent") == AGENT) & pl.col("abstain_reason").str.starts_with(VETO_PREFIX)
    ).select("symbol", reason=pl.col("abstain_reason").str.strip_prefix(VETO_PREFIX))
