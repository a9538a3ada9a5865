"""MarketData over the S3 Parquet lake that the ingest Lambda fills from the exchanges.

This is the scan's data source on AWS: the daily candles of one exchange, read as of a date.
The daily universe's ``close`` is the candle close, ``volume`` the quote (USD-stable) volume
(base volume x close), and ``market_cap`` is unknown (null) for exchange candles.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import polars as pl

from cryptosmarttrader.adapters.s3_lake import S3ParquetLake
from cryptosmarttrader.domain.market import DAILY_SCHEMA, empty_daily

READ_THREADS = 16  # S3 GETs are I/O bound


class LakeMarketData:
    def __init__(
        self,
        lake: S3ParquetLake,
        exchange: str,
        symbols: Callable[[], Sequence[str]],
        timeframe: str = "1d",
    ) -> None:
        self._lake = lake
        self._exchange = exchange
        self._symbols = symbols
        self._timeframe = timeframe

    def ohlcv(self, symbol: str, timeframe: str, start: datetime, end: datetime) -> pl.DataFrame:
        return self._lake.read_candles(self._exchange, timeframe, symbol, start, end).with_columns(
            symbol=pl.lit(symbol)
        )

    def daily_universe(self, asof: datetime, lookback_days: int) -> pl.DataFrame:
        start = asof - timedelta(days=lookback_days) + timedelta(milliseconds=1)
        symbols = list(self._symbols())
        if not symbols:
            return empty_daily()
        with ThreadPoolExecutor(max_workers=min(READ_THREADS, len(symbols))) as pool:
            frames = list(pool.map(lambda s: self.ohlcv(s, self._timeframe, start, asof), symbols))
        present = [f for f in frames if f.height]
        if not present:
            return empty_daily()
        candles = pl.concat(present, how="vertical")
        return (
            candles.select(
                "symbol",
                "ts",
                "close",
                volume=pl.col("volume") * pl.col("close"),
                market_cap=pl.lit(None, dtype=pl.Float64),
            )
            .cast(DAILY_SCHEMA)  # type: ignore[arg-type]
            .sort("symbol", "ts")
        )
