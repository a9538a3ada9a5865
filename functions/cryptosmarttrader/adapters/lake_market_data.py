"""MarketData over the S3 Parquet lake that the ingest Lambda fills from the exchanges.

This is the scan's data source on AWS: the daily candles of one exchange, read as of a date.
Exchange candles are keyed by their *open* time, while the daily universe (like CoinGecko's daily
snapshots) is keyed by the time its ``close`` was observed. So a daily candle opening at D appears
at ``ts = D + 1 day``, when it closed: a scan as of D uses only candles that had closed by D, and
the still-open candle of day D is never read. ``volume`` is the quote (USD-stable) volume
(base volume x close) and ``market_cap`` is unknown (null) for exchange candles.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import polars as pl

from cryptosmarttrader.adapters.s3_lake import S3ParquetLake
from cryptosmarttrader.domain.market import DAILY_SCHEMA, DAY_MS, empty_daily

READ_THREADS = 16  # S3 GETs are I/O bound


class LakeMarketData:
    def __init__(
        self,
        lake: S3ParquetLake,
        exchange: str,
        symbols: Callable[[], Sequence[str]],
    ) -> None:
        self._lake = lake
        self._exchange = exchange
        self._symbols = symbols

    def ohlcv(self, symbol: str, timeframe: str, start: datetime, end: datetime) -> pl.DataFrame:
        """Candles by open time, ``start <= ts <= end`` (as stored)."""
        return self._lake.read_candles(self._exchange, timeframe, symbol, start, end).with_columns(
            symbol=pl.lit(symbol)
        )

    def daily_universe(self, asof: datetime, lookback_days: int) -> pl.DataFrame:
        """Daily closes observed in ``(asof - lookback_days, asof]`` (candles closed by asof)."""
        first_open = asof - timedelta(days=lookback_days)  # closes at first_open + 1 day
        last_open = asof - timedelta(days=1)  # the last candle that has closed by asof
        symbols = list(self._symbols())
        if not symbols:
            return empty_daily()
        with ThreadPoolExecutor(max_workers=min(READ_THREADS, len(symbols))) as pool:
            frames = list(pool.map(lambda s: self.ohlcv(s, "1d", first_open, last_open), symbols))
        present = [f for f in frames if f.height]
        if not present:
            return empty_daily()
        return (
            pl.concat(present, how="vertical")
            .select(
                "symbol",
                ts=pl.col("ts") + DAY_MS,
                close=pl.col("close"),
                volume=pl.col("volume") * pl.col("close"),
                market_cap=pl.lit(None, dtype=pl.Float64),
            )
            .cast(DAILY_SCHEMA)  # type: ignore[arg-type]
            .sort("symbol", "ts")
        )
