"""The heuristic agents' votes on many decision days at once, each series computed once.

An evaluation replays the scan on hundreds of past decision days. The technical agent and the
early-mover scout vote from per-bar values (moving averages, returns, volume and market-cap
windows) that never change once the bar exists, so each series (a symbol, or a symbol's
segment after a break) is computed once over all its bars, vectorized over the universe, and
read on each decision day. Every value on day ``d`` reads only bars up to ``d``: rows after it
never change that day's votes (tested on the real data). What needs the day's universe (the
early mover's ranks, its market-cap rank and the median return) is taken among the rows of
that day.

A row the quality gate rejects whatever its window (a missing, infinite or non-positive price,
an infinite or negative volume, an infinite market cap) makes a window holding it unvoted; the
series restarts after it, so its value never reaches a later vote. Moving averages read the
whole series before the day instead of the scan's 260-day window: the exponential ones (MACD,
RSI) differ from the window's by the window seed's remaining weight, about 1e-8.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import polars as pl

from cryptosmarttrader.domain.agents.base import VOTE_SCHEMA
from cryptosmarttrader.domain.agents.early_mover import (
    EarlyMoverConfig,
    cross_section,
    series_features,
    votes_from_features,
)
from cryptosmarttrader.domain.agents.technical import (
    TechnicalConfig,
    indicator_frame,
    votes_from_indicators,
)
from cryptosmarttrader.domain.market import DAY_MS

__all__ = ["votes_on_days"]

BAD_ROW: Final = (
    ~(pl.col("close").is_finite() & (pl.col("close") > 0)).fill_null(False)
    | pl.col("volume").is_infinite().fill_null(False)
    | (pl.col("volume") < 0).fill_null(False)
    | pl.col("market_cap").is_infinite().fill_null(False)
)
_KEY: Final = "_series"
_TECHNICAL: Final = TechnicalConfig()
_EARLY_MOVER: Final = EarlyMoverConfig()


def votes_on_days(
    frame: pl.DataFrame,
    at: pl.DataFrame,
    series: Sequence[str] = ("symbol",),
    technical: TechnicalConfig = _TECHNICAL,
    early_mover: EarlyMoverConfig = _EARLY_MOVER,
) -> pl.DataFrame:
    """Technical and early-mover votes (``day`` + ``VOTE_SCHEMA``, abstentions included) for
    each row of ``at`` (``day``, ``symbol``, ``ts``: the coins voted on that day, each with its
    bar of the day), from ``frame`` (``DAILY_SCHEMA`` rows, plus the ``series`` columns that
    name a series, e.g. ``("symbol", "segment")``)."""
    cols = ["symbol", "ts", "close", "volume", "market_cap"]
    keyed = (
        frame.select(*dict.fromkeys([*series, *cols]))
        .sort(*series, "ts")
        .with_columns(_run=BAD_ROW.cast(pl.Int64).cum_sum().over(*series))
        .filter(~BAD_ROW)
        .with_columns(
            pl.concat_str(
                [pl.col(c).cast(pl.String) for c in (*series, "_run")], separator="\x1f"
            ).alias(_KEY)
        )
    )
    frame_start = pl.lit(frame["ts"].min())
    at_ts = at.select("day", "symbol", "ts")
    asof = pl.col("day") * DAY_MS
    tech_rows = indicator_frame(keyed, by=_KEY).join(at_ts, on=["symbol", "ts"], how="inner")
    tech = votes_from_indicators(tech_rows, asof, technical, keep=("day",))
    feats = series_features(keyed, by=_KEY).join(at_ts, on=["symbol", "ts"], how="inner")
    early = votes_from_features(
        cross_section(feats, asof, frame_start, day="day"), asof, early_mover, day="day"
    )
    return pl.concat([tech, early], how="vertical").select("day", *VOTE_SCHEMA)
