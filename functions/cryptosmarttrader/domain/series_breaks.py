"""Daily-series breaks: where a CoinGecko price series stops describing one tradable coin.

A redenomination, a token migration or a broken feed makes a series jump to another coin's
price. Trusting the jump would book a fake gain (a real case: ``qanplatform`` on 2022-11-02,
×11.9 in one day on $182 of volume, against a usual ~$150k). Each detector uses only the row
itself and rows before it, so a break on day ``b`` is known on day ``b`` (no look-ahead):

* ``JUMP_ON_THIN_VOLUME``: a one-day move beyond ×``max_move`` (or ÷) on a volume below
  ``thin_volume_ratio`` of the median volume of the previous ``volume_days`` rows;
* ``SUPPLY_JUMP``: market cap ÷ price (the implied supply) moves beyond ×``max_supply_move``
  (or ÷) in one day while the price itself jumps beyond ×``supply_price_move`` (or ÷) — a
  redenomination or a swap of the tracked contract. A supply jump under a continuous price is a
  restatement of the circulating supply (most of them in this data): the price series is still
  the same coin's, and it is not cut;
* ``BROKEN_FEED``: a one-day move beyond ×``broken_move`` (or ÷), whatever the volume.

The series is **cut** at a break: rows before it and rows from it on are two different series
(``segment``), never joined. A position held across a break is valued at its last close before
it (less a haircut, :mod:`cryptosmarttrader.domain.exit_rule`).

Row defects that concern one coin only are handled here too, so one coin never aborts a run:
several rows on one UTC day (a duplicate or sub-daily rows) drop that day of that coin, with
the reason ``DUPLICATE_DAY``.

Kept apart from :mod:`cryptosmarttrader.domain.quality` (the window gate): this module judges
the whole history of a series, for evaluations, backtests and the scan alike.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from cryptosmarttrader.domain.market import DAILY_SCHEMA, DAY_MS
from cryptosmarttrader.domain.types import DomainError

__all__ = [
    "BREAK_SCHEMA",
    "BreakCode",
    "BreakConfig",
    "SeriesCuts",
    "cut_series",
    "find_breaks",
]


class BreakCode(StrEnum):
    JUMP_ON_THIN_VOLUME = "JUMP_ON_THIN_VOLUME"
    SUPPLY_JUMP = "SUPPLY_JUMP"
    BROKEN_FEED = "BROKEN_FEED"
    DUPLICATE_DAY = "DUPLICATE_DAY"


class BreakConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    max_move: float = Field(default=3.0, gt=1)
    thin_volume_ratio: float = Field(default=0.1, gt=0, le=1)
    volume_days: int = Field(default=30, ge=3)
    max_supply_move: float = Field(default=3.0, gt=1)
    supply_price_move: float = Field(default=1.5, gt=1)
    broken_move: float = Field(default=1000.0, gt=1)


DEFAULT_BREAKS: Final = BreakConfig()

BREAK_SCHEMA: Final[dict[str, pl.DataType]] = {
    "symbol": pl.String(),
    "day": pl.Int64(),
    "code": pl.String(),
    "reason": pl.String(),
}


class SeriesCuts(BaseModel):
    """The daily frame split at its breaks, and what was cut or dropped and why."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    frame: pl.DataFrame  # DAILY_SCHEMA + ``day`` + ``segment`` (0, 1, ... per symbol)
    breaks: pl.DataFrame  # BREAK_SCHEMA: series breaks (cut points)
    dropped_days: pl.DataFrame  # BREAK_SCHEMA: days dropped (DUPLICATE_DAY)

    def report(self) -> list[dict[str, object]]:
        rows = pl.concat([self.breaks, self.dropped_days]).sort("symbol", "day")
        return [
            {
                "symbol": s,
                "date": str(pl.Series([d * DAY_MS]).cast(pl.Datetime("ms")).dt.date()[0]),
                "code": c,
                "reason": r,
            }
            for s, d, c, r in rows.iter_rows()
        ]


def _dedupe(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    days = frame.with_columns(day=pl.col("ts") // DAY_MS)
    counts = days.group_by("symbol", "day").agg(n=pl.len())
    dup = counts.filter(pl.col("n") > 1)
    dropped = dup.select(
        "symbol",
        "day",
        code=pl.lit(BreakCode.DUPLICATE_DAY.value),
        reason=pl.format("{} rows on one UTC day (duplicate or sub-daily): day dropped", "n"),
    )
    kept = days.join(dup.select("symbol", "day"), on=["symbol", "day"], how="anti")
    return kept, dropped.cast(BREAK_SCHEMA)  # type: ignore[arg-type]


def find_breaks(frame: pl.DataFrame, config: BreakConfig = DEFAULT_BREAKS) -> pl.DataFrame:
    """Break points (``BREAK_SCHEMA``) of a ``DAILY_SCHEMA`` frame holding one row per symbol
    and day (run :func:`cut_series` for frames that may hold duplicates)."""
    c = config
    # a non-finite value is not a break: it is bad data, which the quality gate rejects with
    # its own reason (NON_FINITE); cutting the series there would hide it behind a "move"
    close = pl.when((pl.col("close") > 0) & pl.col("close").is_finite()).then(pl.col("close"))
    mcap = pl.when((pl.col("market_cap") > 0) & pl.col("market_cap").is_finite()).then(
        pl.col("market_cap")
    )
    scored = (
        frame.lazy()
        .sort("symbol", "ts")
        .with_columns(
            move=(close / close.shift(1)).over("symbol"),
            supply=mcap / close,
            usual_volume=pl.col("volume")
            .shift(1)
            .rolling_median(c.volume_days, min_samples=max(3, c.volume_days // 3))
            .over("symbol"),
        )
        .with_columns(supply_move=(pl.col("supply") / pl.col("supply").shift(1)).over("symbol"))
    )
    big = (pl.col("move") > c.max_move) | (pl.col("move") < 1.0 / c.max_move)
    broken = (pl.col("move") > c.broken_move) | (pl.col("move") < 1.0 / c.broken_move)
    thin = pl.col("volume").fill_null(0.0) < c.thin_volume_ratio * pl.col("usual_volume")
    supply = (
        (pl.col("supply_move") > c.max_supply_move)
        | (pl.col("supply_move") < 1.0 / c.max_supply_move)
    ) & ((pl.col("move") > c.supply_price_move) | (pl.col("move") < 1.0 / c.supply_price_move))
    move_txt = pl.col("move").round(3).cast(pl.String)
    reason = (
        pl.when(broken)
        .then(pl.format("one-day move x{}: broken feed", move_txt))
        .when(big & thin)
        .then(
            pl.format(
                "one-day move x{} on volume {} vs usual {}: token swap or broken feed",
                move_txt,
                pl.col("volume").round(0).cast(pl.Int64).cast(pl.String),
                pl.col("usual_volume").round(0).cast(pl.Int64).cast(pl.String),
            )
        )
        .when(supply)
        .then(
            pl.format(
                "market cap / price moved x{} in one day: redenomination or token migration",
                pl.col("supply_move").round(3).cast(pl.String),
            )
        )
    )
    code = (
        pl.when(broken)
        .then(pl.lit(BreakCode.BROKEN_FEED.value))
        .when(big & thin)
        .then(pl.lit(BreakCode.JUMP_ON_THIN_VOLUME.value))
        .when(supply)
        .then(pl.lit(BreakCode.SUPPLY_JUMP.value))
    )
    return (
        scored.select("symbol", day=pl.col("ts") // DAY_MS, code=code, reason=reason)
        .filter(pl.col("code").is_not_null())
        .collect()
        .cast(BREAK_SCHEMA)  # type: ignore[arg-type]
        .sort("symbol", "day")
    )


def cut_series(frame: pl.DataFrame, config: BreakConfig = DEFAULT_BREAKS) -> SeriesCuts:
    """Drop duplicate days, find the breaks and number each symbol's segments."""
    missing = [col for col in DAILY_SCHEMA if col not in frame.columns]
    if missing:
        raise DomainError(f"cut_series needs columns {list(DAILY_SCHEMA)}, missing {missing}")
    kept, dropped = _dedupe(frame.select(list(DAILY_SCHEMA)))
    breaks = find_breaks(kept.drop("day"), config)
    marks = breaks.select("symbol", "day", brk=pl.lit(1, pl.Int64))
    segmented = (
        kept.join(marks, on=["symbol", "day"], how="left")
        .sort("symbol", "ts")
        .with_columns(segment=pl.col("brk").fill_null(0).cum_sum().over("symbol"))
        .drop("brk")
    )
    return SeriesCuts(frame=segmented, breaks=breaks, dropped_days=dropped)
