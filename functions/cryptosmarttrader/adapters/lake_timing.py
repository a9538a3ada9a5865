"""Market data as the S3 lake holds it at a given instant: an hourly bar only after it closed
and the ingest that runs after the close wrote it.

Recorded data holds every bar from the moment it opens (a bar's row exists at its open time),
while on AWS the ingest Lambda fetches closed candles only (``fetch_ohlcv`` drops the open one)
on its schedule (``infra/config.py``: hourly at HH:02). A bar opening at ``ts`` therefore
reaches the lake at ``ts + bar + ingest_lag``. Replays and tests that must see the deployed
timing (an order placed at HH:10 fills on the bar opening at HH+1:00, which the lake receives
at HH+2:02, so the order is still open at the next hourly cycle) read through this adapter.
Daily bars are passed through: the daily universe is already keyed by the time each closed.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl

from cryptosmarttrader.domain.clock import Clock
from cryptosmarttrader.domain.market import TIMEFRAME_MS
from cryptosmarttrader.domain.types import DomainError, ms_from_utc
from cryptosmarttrader.ports import MarketData

__all__ = ["DEFAULT_INGEST_LAG", "IngestLagMarketData"]

DEFAULT_INGEST_LAG = timedelta(minutes=2)  # the hourly ingest runs at HH:02 (infra/config.py)


class IngestLagMarketData:
    """``inner`` restricted to what the lake holds at ``clock.now()``."""

    def __init__(
        self, inner: MarketData, clock: Clock, ingest_lag: timedelta = DEFAULT_INGEST_LAG
    ) -> None:
        if ingest_lag < timedelta(0):
            raise DomainError(f"ingest lag must be >= 0, got {ingest_lag}")
        self._inner = inner
        self._clock = clock
        self._lag_ms = int(ingest_lag.total_seconds() * 1000)

    def daily_universe(self, asof: datetime, lookback_days: int) -> pl.DataFrame:
        return self._inner.daily_universe(asof, lookback_days)

    def ohlcv(self, symbol: str, timeframe: str, start: datetime, end: datetime) -> pl.DataFrame:
        if timeframe not in TIMEFRAME_MS:
            raise DomainError(f"unknown timeframe {timeframe!r}")
        frame = self._inner.ohlcv(symbol, timeframe, start, end)
        landed = ms_from_utc(self._clock.now()) - self._lag_ms - TIMEFRAME_MS[timeframe]
        return frame.filter(pl.col("ts") <= landed)
