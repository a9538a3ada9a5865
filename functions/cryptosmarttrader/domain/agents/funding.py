"""Funding-rate and basis agent: a contrarian read of perpetual-futures positioning.

Inputs (nothing after ``asof``; all symbols already in the universe's symbol space):

* ``funding`` — ``FUNDING_SCHEMA`` (symbol, ts, funding_rate): 8-hourly perpetual funding;
* ``mark`` — ``OHLCV_SCHEMA`` perpetual mark-price candles of ``mark_tf_ms``;
* ``spot`` — ``OHLCV_SCHEMA`` spot candles of ``spot_tf_ms``.

Only complete candles count: a candle opening at ``ts`` is known at ``ts + timeframe``.

Signals per symbol:

* ``funding`` — mean of the last ``recent_periods`` funding rates. Positive funding means longs
  pay shorts: crowded longs, a bearish tilt; negative funding, crowded shorts, a bullish tilt
  (squeeze risk). Scaled by ``extreme_funding`` (0.05 % per 8 h ≈ 55 % a year).
* ``basis`` — mark close over spot close minus one at the latest candle close both have. A rich
  perpetual (premium) is the same crowding, a discount its opposite. Scaled by ``extreme_basis``.

``z = -(w_f · funding / extreme_funding + w_b · basis / extreme_basis)`` clipped to ±``z_cap``;
probability = logistic(z) (horizon ``horizon_days``); confidence = ``|z| / z_cap`` times the
share of the two signals measured. Abstains when a symbol has no funding data, when its last
funding is older than ``max_funding_age_ms``, or when fewer than ``recent_periods`` readings
exist; a missing or stale basis only removes that signal (and says so in the reasons).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import polars as pl

from cryptosmarttrader.domain.agents.base import VOTE_SCHEMA, empty_votes
from cryptosmarttrader.domain.market import TIMEFRAME_MS

AGENT = "funding"

FUNDING_SCHEMA: Final[dict[str, pl.DataType]] = {
    "symbol": pl.String(),
    "ts": pl.Int64(),
    "funding_rate": pl.Float64(),
}


@dataclass(frozen=True, slots=True)
class FundingConfig:
    recent_periods: int = 3  # the last 24 h of 8-hourly funding
    extreme_funding: float = 0.0005
    extreme_basis: float = 0.005
    funding_weight: float = 0.6
    basis_weight: float = 0.4
    z_cap: float = 2.0
    max_funding_age_ms: int = 16 * 3_600_000  # two funding intervals
    max_basis_age_ms: int = 24 * 3_600_000
    mark_tf_ms: int = TIMEFRAME_MS["8h"]
    spot_tf_ms: int = TIMEFRAME_MS["1d"]
    horizon_days: int = 7


def _basis(
    mark: pl.DataFrame | None, spot: pl.DataFrame | None, asof_ms: int, c: FundingConfig
) -> pl.DataFrame:
    """Latest (symbol, basis_ts, basis) where a complete mark and spot candle close together."""
    schema = {"symbol": pl.String(), "basis_ts": pl.Int64(), "basis": pl.Float64()}
    if mark is None or spot is None or mark.is_empty() or spot.is_empty():
        return pl.DataFrame(schema=schema)

    def closes(frame: pl.DataFrame, tf_ms: int, name: str) -> pl.DataFrame:
        return frame.select(
            "symbol", close_ts=pl.col("ts") + tf_ms, **{name: pl.col("close")}
        ).filter(pl.col("close_ts") <= asof_ms)

    joined = closes(mark, c.mark_tf_ms, "mark").join(
        closes(spot, c.spot_tf_ms, "spot"), on=["symbol", "close_ts"]
    )
    return (
        joined.filter((pl.col("spot") > 0) & (pl.col("mark") > 0))
        .group_by("symbol")
        .agg(pl.all().sort_by("close_ts").last())
        .select(
            "symbol",
            basis_ts=pl.col("close_ts"),
            basis=pl.col("mark") / pl.col("spot") - 1.0,
        )
        .cast(schema)  # type: ignore[arg-type]
    )


def funding_votes(
    symbols: Sequence[str],
    asof_ms: int,
    funding: pl.DataFrame | None,
    mark: pl.DataFrame | None = None,
    spot: pl.DataFrame | None = None,
    config: FundingConfig = FundingConfig(),
) -> pl.DataFrame:
    """One vote or abstention per symbol in ``symbols``."""
    if not symbols:
        return empty_votes()
    c = config
    universe = pl.DataFrame({"symbol": list(dict.fromkeys(symbols))}, schema={"symbol": pl.String})
    if funding is None:
        funding = pl.DataFrame(schema=FUNDING_SCHEMA)
    recent = (
        funding.filter((pl.col("ts") <= asof_ms) & pl.col("funding_rate").is_not_nan())
        .drop_nulls("funding_rate")
        .sort("symbol", "ts")
        .group_by("symbol")
        .agg(
            last_ts=pl.col("ts").last(),
            readings=pl.len(),
            funding=pl.col("funding_rate").tail(c.recent_periods).mean(),
        )
    )
    frame = (
        universe.join(recent, on="symbol", how="left")
        .join(_basis(mark, spot, asof_ms, c), on="symbol", how="left")
        .with_columns(
            basis_ok=pl.col("basis").is_not_null()
            & (pl.col("basis_ts") >= asof_ms - c.max_basis_age_ms)
        )
    )
    f_term = c.funding_weight * pl.col("funding") / c.extreme_funding
    b_term = pl.when(pl.col("basis_ok")).then(c.basis_weight * pl.col("basis") / c.extreme_basis)
    z = (-(f_term + b_term.fill_null(0.0))).clip(-c.z_cap, c.z_cap)
    coverage = (
        c.funding_weight + pl.when(pl.col("basis_ok")).then(c.basis_weight).otherwise(0.0)
    ) / (c.funding_weight + c.basis_weight)
    abstain = (
        pl.when(pl.col("readings").is_null())
        .then(pl.lit("no perpetual funding data for this coin"))
        .when(pl.col("last_ts") < asof_ms - c.max_funding_age_ms)
        .then(
            pl.format(
                "funding is stale: last reading {}",
                pl.from_epoch("last_ts", time_unit="ms").dt.strftime("%Y-%m-%d %H:%M UTC"),
            )
        )
        .when(pl.col("readings") < c.recent_periods)
        .then(
            pl.format("only {} funding reading(s), {} needed", "readings", pl.lit(c.recent_periods))
        )
        .otherwise(None)
    )
    crowd = (
        pl.when(pl.col("funding") > 0)
        .then(pl.lit("longs pay shorts (crowded longs: bearish tilt)"))
        .when(pl.col("funding") < 0)
        .then(pl.lit("shorts pay longs (crowded shorts: bullish tilt)"))
        .otherwise(pl.lit("neutral"))
    )
    reasons = pl.concat_list(
        pl.format(
            "funding {}% per 8h over the last {} readings: {}",
            (pl.col("funding") * 100).round(4).cast(pl.String),
            pl.lit(c.recent_periods),
            crowd,
        ),
        pl.when(pl.col("basis_ok"))
        .then(
            pl.format(
                "perp mark vs spot basis {}%",
                (pl.col("basis") * 100).round(3).cast(pl.String),
            )
        )
        .otherwise(pl.lit("basis unavailable: no recent complete mark and spot candle pair")),
    )
    voting = pl.col("abstain_reason").is_null()
    return (
        frame.with_columns(abstain_reason=abstain, z=z, coverage=coverage)
        .select(
            "symbol",
            pl.lit(AGENT).alias("agent"),
            pl.lit(asof_ms).alias("ts"),
            pl.when(voting).then(1.0 / (1.0 + (-pl.col("z")).exp())).alias("probability"),
            pl.when(voting)
            .then(pl.col("z").abs() / c.z_cap * pl.col("coverage"))
            .alias("confidence"),
            pl.when(voting)
            .then(reasons)
            .otherwise(pl.lit([], dtype=pl.List(pl.String)))
            .alias("reasons"),
            "abstain_reason",
        )
        .cast(VOTE_SCHEMA)  # type: ignore[arg-type]
        .sort("symbol")
    )
