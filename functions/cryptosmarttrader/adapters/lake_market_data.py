"""MarketData over the S3 Parquet lake that the ingest Lambda fills from the exchanges.

This is the scan's data source on AWS: the daily candles of one exchange, read as of a date.
Exchange candles are keyed by their *open* time, while the daily universe (like CoinGecko's daily
snapshots) is keyed by the time its ``close`` was observed. So a daily candle opening at D appears
at ``ts = D + 1 day``, when it closed: a scan as of D uses only candles that had closed by D, and
the still-open candle of day D is never read. ``volume`` is the quote (USD-stable) volume
(base volume x close).

``market_cap`` comes from the lake's market-cap dataset (CoinGecko), joined on (coin, ts):
each pair is mapped to its coin through the explicit table
(:func:`cryptosmarttrader.domain.coins.resolve_pairs`), and a bar at ``ts`` gets the cap keyed
exactly ``ts`` (the value known at that midnight) — never a later one, never a carried-forward
one. A pair without a mapping, or a day without a cap, keeps a null cap, which makes the coin
ineligible for the model that day. :attr:`LakeMarketData.unmapped` holds the reasons of the
pairs left without caps by the last read. Without a market-cap store every cap is null.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import polars as pl

from cryptosmarttrader.adapters.s3_lake import S3ParquetLake
from cryptosmarttrader.domain.coins import CoinResolution, resolve_pairs
from cryptosmarttrader.domain.market import DAILY_SCHEMA, DAY_MS, empty_daily
from cryptosmarttrader.ports import MarketCapStore

READ_THREADS = 16  # S3 GETs are I/O bound


class LakeMarketData:
    def __init__(
        self,
        lake: S3ParquetLake,
        exchange: str,
        symbols: Callable[[], Sequence[str]],
        *,
        market_caps: MarketCapStore | None = None,
        coins: Callable[[Sequence[str]], CoinResolution] = resolve_pairs,
    ) -> None:
        self._lake = lake
        self._exchange = exchange
        self._symbols = symbols
        self._market_caps = market_caps
        self._coins = coins
        self.unmapped: dict[str, str] = {}

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
        bars = pl.concat(present, how="vertical").select(
            "symbol",
            ts=pl.col("ts") + DAY_MS,
            close=pl.col("close"),
            volume=pl.col("volume") * pl.col("close"),
        )
        return (
            bars.join(self._caps(bars, first_open, asof), on=["symbol", "ts"], how="left")
            .select(list(DAILY_SCHEMA))
            .cast(DAILY_SCHEMA)  # type: ignore[arg-type]
            .sort("symbol", "ts")
        )

    def _caps(self, bars: pl.DataFrame, first_open: datetime, asof: datetime) -> pl.DataFrame:
        """(symbol, ts, market_cap) for the bars' pairs, keyed no later than ``asof``."""
        empty = pl.DataFrame(schema={"symbol": pl.String, "ts": pl.Int64, "market_cap": pl.Float64})
        if self._market_caps is None:
            return empty
        resolution = self._coins(bars["symbol"].unique().to_list())
        self.unmapped = dict(resolution.rejected)
        if not resolution.coins:
            return empty
        pairs = pl.DataFrame(
            {"symbol": list(resolution.coins), "coin": list(resolution.coins.values())}
        )
        caps = self._market_caps.read_market_caps(
            sorted(set(resolution.coins.values())), first_open, asof
        )
        return caps.join(pairs, on="coin", how="inner").select("symbol", "ts", "market_cap")
