"""What the agents need beside the daily universe, from the recorded data folder, as of a time.

:class:`RecordedAgentData` builds the agents' :class:`MarketState` for one decision time ``t``
(the scan's 00:00 UTC bar) from the recorded folders (see the data folder's README):

* **sentiment** — ``sentiment/fear_greed_index.csv``, the daily Crypto Fear & Greed Index. The
  reading dated D is used from D + 1 00:00 UTC on (only days strictly before ``t``'s day), so a
  reading whose inputs span day D is never read before day D has ended. A missing day makes the
  agent abstain once the newest reading is older than its ``max_age`` (2 days), with the reason.
* **funding** — ``binance_futures/<BASE>_USDT-8h-funding_rate.json`` (readings at or before
  ``t``), ``<BASE>_USDT-8h-mark.json`` (8 h mark candles that closed by ``t``) and the Binance spot
  1 h candles for the basis. Recorded for BTC only, 2021-08-31 → 2022-07-30: every other coin, and
  BTC outside that span, abstains with the reason (before it, or after it: the record's end
  named, once no reading is left in the 3 days read; within them the agent's staleness rule).
* **arbitrage** — the last complete 1 h candle of each coin on Binance and on KuCoin
  (``binance_spot/1h``, ``kucoin_spot/1h``: 20 common pairs, 2021-01 → 2022-10) as one quote per
  venue: its close (the last traded price before ``t``) as bid and ask, stamped at the candle's
  close. Recorded candles carry no order book, so the bid/ask spread is not modelled; the agent
  nets each venue's taker fee. Withdrawal fees, transfer times and suspended withdrawals are not
  modelled either: the agent's vote is a convergence tilt for the execution venue, not an order
  that moves coins between venues.

Every frame is cut at ``t`` here and again by :func:`run_agents`. Candles pass the gate's row
rules (:data:`~cryptosmarttrader.adapters.recorded_data.BAR_RULES`); a coin whose file is bad on
a venue loses that venue only and the agent says so. Nothing is filled or interpolated.
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Final

import polars as pl

from cryptosmarttrader.adapters.recorded_data import DataSourceError, RecordedMarketData
from cryptosmarttrader.domain.agents import arbitrage, funding
from cryptosmarttrader.domain.agents.arbitrage import TICKER_SCHEMA
from cryptosmarttrader.domain.agents.registry import MarketState
from cryptosmarttrader.domain.agents.sentiment import SentimentReading
from cryptosmarttrader.domain.market import DAY_MS, OHLCV_SCHEMA, TIMEFRAME_MS
from cryptosmarttrader.domain.types import utc_from_ms

__all__ = ["FEAR_GREED_SOURCE", "RecordedAgentData"]

FEAR_GREED_SOURCE: Final = "alternative.me fear & greed (recorded)"
_FNG_FILE: Final = Path("sentiment") / "fear_greed_index.csv"
_VENUES: Final = ("binance", "kucoin")
_HOUR_MS: Final = TIMEFRAME_MS["1h"]
_MARK_MS: Final = TIMEFRAME_MS["8h"]
_FUNDING_LOOKBACK: Final = timedelta(days=3)
_QUOTE_LOOKBACK: Final = timedelta(days=2)


# The recorded data holds no history of withdrawal fees, minimums or suspensions: the arbitrage
# agent's replayed votes say so, their spread netting taker fees only (an upper bound).
RECORDED_WITHDRAWALS_UNKNOWN: Final = (
    "no withdrawal fees, minimums or suspensions are recorded for the past; the spread nets "
    "taker fees only"
)


@dataclass
class RecordedAgentData:
    """``AgentData`` over the recorded folder: the agents' market state as of a time."""

    market: RecordedMarketData
    _fng: list[SentimentReading] | None = field(default=None, init=False, repr=False)
    _fng_error: str | None = field(default=None, init=False, repr=False)
    _funding_span: dict[str, tuple[int, int] | None] = field(
        default_factory=dict, init=False, repr=False
    )
    _pairs_by_venue: dict[str, frozenset[str]] = field(default_factory=dict, init=False, repr=False)

    @property
    def data_dir(self) -> Path:
        return self.market.data_dir

    def state(self, universe: pl.DataFrame, asof_ms: int) -> MarketState:
        """The agents' market state at ``asof_ms`` for the coins of ``universe`` (quality-gated
        daily bars, CoinGecko ids), with a stated reason wherever an input is missing."""
        coins = universe.filter(pl.col("ts") <= asof_ms)["symbol"].unique().sort().to_list()
        pairs = self._pairs(coins)
        aliases = {pair: coin for coin, pair in pairs.items()}
        readings, unavailable = self._sentiment(asof_ms)
        funding_frame, mark, spot, funding_notes = self._funding(pairs, asof_ms)
        tickers, arb_notes = self._tickers(pairs, asof_ms)
        no_pair = "no unambiguous recorded exchange pair for this coin"
        for coin in coins:
            if coin not in pairs:
                funding_notes.setdefault(coin, no_pair)
                arb_notes.setdefault(coin, no_pair)
        return MarketState(
            universe=universe,
            ohlcv=spot,
            ohlcv_tf="1h",
            tickers=tickers,
            funding=funding_frame,
            mark=mark,
            sentiment=readings,
            sentiment_unavailable=unavailable,
            withdrawals=None,
            withdrawals_unavailable=RECORDED_WITHDRAWALS_UNKNOWN,
            aliases=aliases,
            abstain_notes={funding.AGENT: funding_notes, arbitrage.AGENT: arb_notes},
        )

    # ----------------------------------------------------------------- coins → pairs
    def _pairs(self, coins: list[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for coin in coins:
            try:
                out[coin] = self.market.pair_of(coin)
            except DataSourceError:
                continue
        return out

    # ----------------------------------------------------------------- sentiment
    def _load_fng(self) -> None:
        path = self.data_dir / _FNG_FILE
        if not path.is_file():
            self._fng, self._fng_error = None, f"no recorded sentiment: no {_FNG_FILE.as_posix()}"
            return
        readings: list[SentimentReading] = []
        line = 1
        try:
            with path.open(newline="", encoding="utf-8") as fh:
                for row in csv.DictReader(fh):
                    line += 1
                    day = date.fromisoformat(str(row["date"]))
                    readings.append(
                        SentimentReading(
                            ts=int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())
                            * 1000,
                            value=float(row["value"]),
                            classification=str(row["classification"]),
                            source=FEAR_GREED_SOURCE,
                        )
                    )
        except (KeyError, TypeError, ValueError, OSError) as exc:
            self._fng = None
            self._fng_error = (
                f"recorded sentiment unusable: {_FNG_FILE.as_posix()} line {line}: {exc}"
            )
            return
        self._fng, self._fng_error = readings, None

    def _sentiment(self, asof_ms: int) -> tuple[tuple[SentimentReading, ...] | None, str | None]:
        if self._fng is None and self._fng_error is None:
            self._load_fng()
        if self._fng is None:
            return None, self._fng_error
        day_start = asof_ms - asof_ms % DAY_MS
        known = tuple(r for r in self._fng if r.ts < day_start)  # a day's index once it ended
        if not known:
            first = min((r.ts for r in self._fng), default=None)
            since = "" if first is None else f" (first reading {utc_from_ms(first):%Y-%m-%d})"
            return (
                None,
                f"no recorded sentiment reading before {utc_from_ms(day_start):%Y-%m-%d}{since}",
            )
        return known, None

    # ----------------------------------------------------------------- funding / basis
    def _funding(
        self, pairs: Mapping[str, str], asof_ms: int
    ) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, dict[str, str]]:
        asof = utc_from_ms(asof_ms)
        rates: list[pl.DataFrame] = []
        marks: list[pl.DataFrame] = []
        spots: list[pl.DataFrame] = []
        notes: dict[str, str] = {}
        for coin, pair in sorted(pairs.items()):
            try:
                span = self._span(pair)
            except DataSourceError as exc:
                notes[coin] = f"recorded funding unusable: {str(exc).splitlines()[0]}"
                continue
            if span is None:
                folder = self.data_dir / "binance_futures"
                funded = sorted(
                    f"{f.name.removesuffix('_USDT-8h-funding_rate.json')}/USDT"
                    for f in (folder.glob("*_USDT-8h-funding_rate.json") if folder.is_dir() else ())
                )
                recorded = ", ".join(funded) if funded else "none"
                notes[coin] = f"no recorded perpetual funding for this coin (recorded: {recorded})"
                continue
            first, last = span
            if asof_ms < first:
                notes[coin] = f"no funding data before {utc_from_ms(first):%Y-%m-%d} for {pair}"
                continue
            if asof_ms - last > _FUNDING_LOOKBACK / timedelta(milliseconds=1):
                # none in the window read: past the record's end, not a coin without a perpetual
                # (within the window the agent's staleness rule says how old the last one is)
                notes[coin] = f"no funding data after {utc_from_ms(last):%Y-%m-%d} for {pair}"
                continue
            rates.append(self.market.funding_rates(pair, asof - _FUNDING_LOOKBACK, asof))
            try:  # only candles that closed by the decision (one opening at it is the future)
                mark = self.market.mark_prices(pair, asof - _FUNDING_LOOKBACK, asof)
                spot = self.market.venue_ohlcv(
                    "binance", pair, "1h", asof - _FUNDING_LOOKBACK, asof
                )
                marks.append(mark.filter(pl.col("ts") + _MARK_MS <= asof_ms))
                spots.append(spot.filter(pl.col("ts") + _HOUR_MS <= asof_ms))
            except DataSourceError:
                continue  # no basis: the agent votes on funding alone and says so
        return (
            _concat(rates, funding.FUNDING_SCHEMA),
            _concat(marks, OHLCV_SCHEMA),
            _concat(spots, OHLCV_SCHEMA),
            notes,
        )

    def _venue_pairs(self, venue: str) -> frozenset[str]:
        """Pairs with recorded 1h spot candles on ``venue`` (empty when it has none)."""
        if venue not in self._pairs_by_venue:
            folder = self.data_dir / f"{venue}_spot" / "1h"
            self._pairs_by_venue[venue] = frozenset(
                f"{f.name.removesuffix('_USDT-1h.json')}/USDT"
                for f in (folder.glob("*_USDT-1h.json") if folder.is_dir() else ())
            )
        return self._pairs_by_venue[venue]

    def _span(self, pair: str) -> tuple[int, int] | None:
        """(first, last) funding reading time of ``pair``, None when none is recorded."""
        if pair not in self._funding_span:
            try:
                self.market.futures_file(pair, "8h-funding_rate")
            except DataSourceError:
                self._funding_span[pair] = None
                return None
            everything = self.market.funding_rates(
                pair, datetime(2009, 1, 3, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)
            )
            self._funding_span[pair] = (
                None
                if everything.is_empty()
                else (int(everything["ts"].min()), int(everything["ts"].max()))  # type: ignore[arg-type]
            )
        return self._funding_span[pair]

    # ----------------------------------------------------------------- cross-venue quotes
    def _tickers(
        self, pairs: Mapping[str, str], asof_ms: int
    ) -> tuple[pl.DataFrame, dict[str, str]]:
        asof = utc_from_ms(asof_ms)
        quotes: list[pl.DataFrame] = []
        notes: dict[str, str] = {}
        for coin, pair in sorted(pairs.items()):
            missing: list[str] = []
            for venue in _VENUES:
                if pair not in self._venue_pairs(venue):
                    missing.append(f"{venue}: no 1h candles recorded for this pair")
                    continue
                try:
                    bars = self.market.venue_ohlcv(venue, pair, "1h", asof - _QUOTE_LOOKBACK, asof)
                except DataSourceError as exc:  # bad bars in the window: that venue only
                    missing.append(f"{venue}: {str(exc).splitlines()[0]}")
                    continue
                last = bars.filter(pl.col("ts") + _HOUR_MS <= asof_ms).tail(1)
                if last.is_empty():
                    missing.append(f"{venue}: no complete 1h candle in the 2 days before")
                    continue
                quotes.append(
                    last.select(
                        exchange=pl.lit(venue),
                        symbol=pl.col("symbol"),
                        bid=pl.col("close"),
                        ask=pl.col("close"),
                        ts=pl.col("ts") + _HOUR_MS,
                    )
                )
            if missing:
                notes[coin] = "no recorded quote to compare (" + "; ".join(missing) + ")"
        return _concat(quotes, TICKER_SCHEMA), notes


def _concat(frames: list[pl.DataFrame], schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
    if not frames:
        return pl.DataFrame(schema=dict(schema))
    return pl.concat([f.cast(dict(schema)) for f in frames], how="vertical")  # type: ignore[arg-type]
