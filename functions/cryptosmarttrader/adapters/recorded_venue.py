"""The recorded data folder replayed as a venue's public market data, as of the clock: what the
ingest function reads in a replay deployment (``CST_DATA_SOURCE=recorded``) where a live one
calls ccxt (:mod:`.ccxt_agent_feeds`), and the Fear & Greed CSV replayed as the index's API.

* spot markets: the pairs with recorded daily candles on the venue (``<venue>_spot/1d``); the
  24 h quote volume of a pair is its last daily candle closed by now (base volume x close), none
  when the pair has no candle in the two days before (not trading then);
* spot candles: ``binance_spot`` as recorded (file order, ungated: the ingest gate judges them),
  ``kucoin_spot`` through the recorded reader;
* perpetuals (Binance only): the pairs with a recorded funding file; funding rates and 8 h mark
  candles from ``binance_futures``;
* the Fear & Greed index: the readings dated at or before now, newest first.

Nothing after the clock is ever returned, and nothing is filled: missing data is an error of
the venue (``FatalExchangeError``) with the reason.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Final

import polars as pl

from cryptosmarttrader.adapters.recorded_data import DataSourceError, RecordedMarketData
from cryptosmarttrader.domain.agents.sentiment import SentimentReading, SentimentUnavailableError
from cryptosmarttrader.domain.clock import Clock
from cryptosmarttrader.domain.exchange import FatalExchangeError
from cryptosmarttrader.domain.market import DAY_MS, TIMEFRAME_MS
from cryptosmarttrader.domain.quality import QualityRejectionError
from cryptosmarttrader.domain.types import Symbol, ms_from_utc, utc_from_ms
from cryptosmarttrader.ports import CandleSource

__all__ = ["RECORDED_VENUES", "RecordedFearGreed", "RecordedVenue"]

RECORDED_VENUES: Final = ("binance", "kucoin")
_FNG_FILE: Final = Path("sentiment") / "fear_greed_index.csv"
FNG_SOURCE: Final = "alternative.me fear & greed (recorded replay)"


@dataclass
class RecordedVenue:
    market: RecordedMarketData
    venue: str
    clock: Clock

    def __post_init__(self) -> None:
        if self.venue not in RECORDED_VENUES:
            raise ValueError(f"no recorded {self.venue} data; recorded venues: {RECORDED_VENUES}")

    # ---------------------------------------------------------------- SpotVenue
    def spot_quote_volumes(self, quote: str) -> Mapping[str, float | None]:
        folder = self.market.data_dir / f"{self.venue}_spot" / "1d"
        suffix = f"_{quote}-1d.json"
        pairs = sorted(
            f"{f.name.removesuffix(suffix)}/{quote}"
            for f in (folder.glob(f"*{suffix}") if folder.is_dir() else ())
        )
        now = self.clock.now()
        now_ms = ms_from_utc(now)
        out: dict[str, float | None] = {}
        for pair in pairs:
            try:
                bars = self.market.venue_ohlcv(self.venue, pair, "1d", now - timedelta(days=2), now)
            except (DataSourceError, QualityRejectionError):
                out[pair] = None  # a damaged file: the venue reports no usable volume
                continue
            closed = bars.filter(pl.col("ts") + DAY_MS <= now_ms).tail(1)
            out[pair] = (
                None
                if closed.is_empty()
                else float(closed["volume"][0]) * float(closed["close"][0])
            )
        return out

    # ---------------------------------------------------------------- CandleSource (spot)
    def fetch_ohlcv(
        self, symbol: Symbol, timeframe: str, since_ms: int, until_ms: int
    ) -> pl.DataFrame:
        start, end = utc_from_ms(since_ms), utc_from_ms(until_ms)
        try:
            if self.venue == "binance":
                frame = self.market.ohlcv_as_recorded(symbol.value, timeframe, start, end)
            else:
                frame = self.market.venue_ohlcv(self.venue, symbol.value, timeframe, start, end)
        except QualityRejectionError:
            raise
        except (DataSourceError, ValueError) as exc:
            raise FatalExchangeError(self.venue, "fetch_ohlcv", str(exc)) from exc
        return _closed(frame, timeframe, self.clock)

    # ---------------------------------------------------------------- PerpetualVenue
    def perpetual_pairs(self, quote: str) -> frozenset[str]:
        if self.venue != "binance":
            return frozenset()
        folder = self.market.data_dir / "binance_futures"
        suffix = f"_{quote}-8h-funding_rate.json"
        return frozenset(
            f"{f.name.removesuffix(suffix)}/{quote}"
            for f in (folder.glob(f"*{suffix}") if folder.is_dir() else ())
        )

    def funding_history(self, pair: str, since_ms: int, until_ms: int) -> pl.DataFrame:
        until_ms = min(until_ms, ms_from_utc(self.clock.now()))
        try:
            return self.market.funding_rates(pair, utc_from_ms(since_ms), utc_from_ms(until_ms))
        except (DataSourceError, ValueError) as exc:
            raise FatalExchangeError(self.venue, "fetch_funding_rate_history", str(exc)) from exc

    def mark_candles(self) -> CandleSource:
        return _RecordedMarks(self)


@dataclass
class _RecordedMarks:
    venue: RecordedVenue

    def fetch_ohlcv(
        self, symbol: Symbol, timeframe: str, since_ms: int, until_ms: int
    ) -> pl.DataFrame:
        if timeframe != "8h":
            raise FatalExchangeError(self.venue.venue, "fetch_mark_ohlcv", "8h marks recorded only")
        try:
            frame = self.venue.market.mark_prices(
                symbol.value, utc_from_ms(since_ms), utc_from_ms(until_ms)
            )
        except (DataSourceError, ValueError) as exc:
            raise FatalExchangeError(self.venue.venue, "fetch_mark_ohlcv", str(exc)) from exc
        return _closed(frame, timeframe, self.venue.clock)


def _closed(frame: pl.DataFrame, timeframe: str, clock: Clock) -> pl.DataFrame:
    """Only candles that had closed by the clock (a venue never returns a later one)."""
    return frame.filter(pl.col("ts") + TIMEFRAME_MS[timeframe] <= ms_from_utc(clock.now()))


@dataclass
class RecordedFearGreed:
    """``SentimentSource`` over ``sentiment/fear_greed_index.csv``, as of the clock."""

    data_dir: Path
    clock: Clock

    @property
    def name(self) -> str:
        return FNG_SOURCE

    def readings(self, limit: int) -> list[SentimentReading]:
        path = self.data_dir / _FNG_FILE
        if not path.is_file():
            raise SentimentUnavailableError(f"{FNG_SOURCE}: no {_FNG_FILE.as_posix()}")
        now_ms = ms_from_utc(self.clock.now())
        out: list[SentimentReading] = []
        line = 1
        try:
            with path.open(newline="", encoding="utf-8") as fh:
                for row in csv.DictReader(fh):
                    line += 1
                    day = date.fromisoformat(str(row["date"]))
                    ts = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) * 1000
                    if ts > now_ms:
                        continue
                    out.append(
                        SentimentReading(
                            ts=ts,
                            value=float(row["value"]),
                            classification=str(row["classification"]),
                            source=FNG_SOURCE,
                        )
                    )
        except (KeyError, TypeError, ValueError, OSError) as exc:
            raise SentimentUnavailableError(
                f"{FNG_SOURCE}: {_FNG_FILE.as_posix()} line {line}: {exc}"
            ) from exc
        if not out:
            raise SentimentUnavailableError(f"{FNG_SOURCE}: no reading at or before now")
        return sorted(out, key=lambda r: r.ts, reverse=True)[:limit]
