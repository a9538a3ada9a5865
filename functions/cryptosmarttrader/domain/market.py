"""Market data frame schemas shared by adapters, quality gate, features and agents.

All timestamps are epoch milliseconds, UTC (bar open time). Frames are long: one row per
(symbol, ts), sorted by symbol then ts.
"""

from __future__ import annotations

from typing import Final

import polars as pl

DAILY_SCHEMA: Final[dict[str, pl.DataType]] = {
    "symbol": pl.String(),
    "ts": pl.Int64(),
    "close": pl.Float64(),
    "volume": pl.Float64(),
    "market_cap": pl.Float64(),
}

OHLCV_SCHEMA: Final[dict[str, pl.DataType]] = {
    "symbol": pl.String(),
    "ts": pl.Int64(),
    "open": pl.Float64(),
    "high": pl.Float64(),
    "low": pl.Float64(),
    "close": pl.Float64(),
    "volume": pl.Float64(),
}

DAY_MS: Final = 86_400_000

TIMEFRAME_MS: Final[dict[str, int]] = {
    "1m": 60_000,
    "5m": 300_000,
    "15m": 900_000,
    "1h": 3_600_000,
    "4h": 14_400_000,
    "8h": 28_800_000,
    "1d": DAY_MS,
}


def empty_daily() -> pl.DataFrame:
    return pl.DataFrame(schema=DAILY_SCHEMA)


def empty_ohlcv() -> pl.DataFrame:
    return pl.DataFrame(schema=OHLCV_SCHEMA)
