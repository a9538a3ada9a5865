"""What the agents need beside the daily universe, from the S3 lake the ingest function fills,
as of a decision time: the deployed scan's ``AgentData``.

For the pairs of the universe (lake symbols, ``BTC/USDT``) at the decision time ``t``:

* **funding** — the funding rates of the home exchange's perpetual (``dataset=funding``) read at
  or before ``t`` (3 days back), the 8 h mark candles (``exchange=<home>-mark``) and the home
  exchange's 1 h spot candles that had closed by ``t`` (the basis). A pair with no funding
  reading in that window abstains, saying so (no perpetual on the venue, or the funding ingest
  has not run); the agent's own staleness rule judges older readings.
* **arbitrage** — the last 1 h candle of the pair closed by ``t`` on each configured venue's
  lake series, as one quote per venue stamped at its close (no order book in the lake: the
  spread is not modelled; the agent nets each venue's taker fee). A venue without such a candle
  is named in the abstention. Kraken quotes its liquid book in USD: its ``BASE/USD`` close is
  converted into USDT with Kraken's own ``USDT/USD`` candle of the same hour (ingested hourly
  beside its universe), never compared with a USDT price as if equal; without that candle (or
  with one of another hour) Kraken is named as not compared, with the reason.
* **withdrawals** — each venue's latest withdrawal constraints of the pair's coin observed in
  the 2 days before ``t`` (``dataset=withdrawals``), for the arbitrage agent's transfers; a
  coin a venue reported nothing for is unseen (the agent abstains on routes through it,
  saying so, with the reason the venue's last withdrawals run recorded when it could not read
  the venue in that window: no read-only keys for Binance's signed-only currency data, the
  venue's error). A replay deployment has none recorded (``withdrawals_unavailable``): the agent
  then votes saying the constraints are unknown.
* **sentiment** — the index readings in the lake (``dataset=sentiment``), those of days that had
  ended by ``t``'s day only (the reading dated D from D + 1 on), exactly as the recorded data is
  read (:mod:`.recorded_agent_data`); none in the lake is an abstention with the reason.

Nothing after ``t`` is read, nothing is filled.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Final

import polars as pl

from cryptosmarttrader.adapters.s3_agent_inputs import S3AgentInputs, mark_exchange
from cryptosmarttrader.adapters.s3_lake import LakeError, S3ParquetLake
from cryptosmarttrader.domain.agents import arbitrage, funding
from cryptosmarttrader.domain.agents.arbitrage import TICKER_SCHEMA
from cryptosmarttrader.domain.agents.registry import MarketState
from cryptosmarttrader.domain.agents.sentiment import SentimentReading
from cryptosmarttrader.domain.market import DAY_MS, OHLCV_SCHEMA, TIMEFRAME_MS
from cryptosmarttrader.domain.types import utc_from_ms
from cryptosmarttrader.domain.universe import spot_quote, usdt_rate_pair
from cryptosmarttrader.ports import AgentDataUnavailableError

__all__ = ["LakeAgentData"]

_HOUR_MS: Final = TIMEFRAME_MS["1h"]
_MARK_MS: Final = TIMEFRAME_MS["8h"]
_FUNDING_LOOKBACK: Final = timedelta(days=3)
_QUOTE_LOOKBACK: Final = timedelta(days=2)
_SENTIMENT_LOOKBACK: Final = timedelta(days=10)
_WITHDRAWAL_LOOKBACK: Final = timedelta(days=2)
READ_THREADS: Final = 16


@dataclass(frozen=True)
class _PairInputs:
    funding: pl.DataFrame
    mark: pl.DataFrame
    spot: pl.DataFrame
    quotes: list[pl.DataFrame]
    missing_venues: list[str]


@dataclass
class LakeAgentData:
    lake: S3ParquetLake
    inputs: S3AgentInputs
    home: str  # the execution venue: its perpetual's funding and its spot candles
    venues: Sequence[str]  # every venue whose hourly candles are compared (home included)
    sentiment_source: str = "fear_greed"
    sentiment_name: str = "alternative.me fear & greed"
    withdrawals_unavailable: str | None = None  # set: the source has none (a replay)

    def state(self, universe: pl.DataFrame, asof_ms: int) -> MarketState:
        """The agents' inputs as of ``asof_ms``; a lake read that fails (a throttled or
        refused S3 call) raises :class:`AgentDataUnavailableError` naming it."""
        try:
            return self._state(universe, asof_ms)
        except LakeError as exc:
            raise AgentDataUnavailableError(f"the lake cannot be read: {exc}") from exc

    def _state(self, universe: pl.DataFrame, asof_ms: int) -> MarketState:
        pairs = universe.filter(pl.col("ts") <= asof_ms)["symbol"].unique().sort().to_list()
        readings, unavailable = self._sentiment(asof_ms)
        rates = {v: self._rate(v, asof_ms) for v in self.venues if usdt_rate_pair(v)}
        with ThreadPoolExecutor(max_workers=max(1, min(READ_THREADS, len(pairs)))) as pool:
            per_pair = dict(
                zip(pairs, pool.map(lambda p: self._pair(p, asof_ms, rates), pairs), strict=True)
            )
        funding_notes: dict[str, str] = {}
        arb_notes: dict[str, str] = {}
        for pair, got in per_pair.items():
            if got.funding.is_empty():
                funding_notes[pair] = (
                    f"no {self.home} perpetual funding rate for this pair in the lake in the "
                    f"{_FUNDING_LOOKBACK.days} days before the decision (no perpetual listed, "
                    "or the funding ingest has not run)"
                )
            if got.missing_venues and len(got.quotes) < 2:
                arb_notes[pair] = "no quote to compare (" + "; ".join(got.missing_venues) + ")"
        return MarketState(
            universe=universe,
            ohlcv=_concat([g.spot for g in per_pair.values()], OHLCV_SCHEMA),
            ohlcv_tf="1h",
            tickers=_concat([q for g in per_pair.values() for q in g.quotes], TICKER_SCHEMA),
            funding=_concat([g.funding for g in per_pair.values()], funding.FUNDING_SCHEMA),
            mark=_concat([g.mark for g in per_pair.values()], OHLCV_SCHEMA),
            sentiment=readings,
            sentiment_unavailable=unavailable,
            withdrawals=None if self.withdrawals_unavailable else self._withdrawals(pairs, asof_ms),
            withdrawals_unavailable=self.withdrawals_unavailable,
            withdrawals_missing={} if self.withdrawals_unavailable else self._missing(asof_ms),
            aliases={p: p for p in pairs},
            abstain_notes={funding.AGENT: funding_notes, arbitrage.AGENT: arb_notes},
        )

    def _rate(self, venue: str, asof_ms: int) -> tuple[int, float] | None:
        """(open time, close) of the venue's last complete ``USDT/<quote>`` 1 h candle by
        ``asof_ms`` (2 days back), or None."""
        asof = utc_from_ms(asof_ms)
        rate = usdt_rate_pair(venue)
        assert rate is not None
        bars = self.lake.read_candles(venue, "1h", rate, asof - _QUOTE_LOOKBACK, asof)
        last = bars.filter(pl.col("ts") + _HOUR_MS <= asof_ms).tail(1)
        if last.is_empty():
            return None
        return int(last["ts"][0]), float(last["close"][0])

    def _quote(
        self,
        venue: str,
        pair: str,
        asof_ms: int,
        rates: Mapping[str, tuple[int, float] | None],
    ) -> pl.DataFrame | str:
        """The venue's quote of ``pair`` in the pair's quote currency (its last complete 1 h
        close, stamped at the close), or why there is none."""
        asof = utc_from_ms(asof_ms)
        base, _, quote = pair.partition("/")
        own = spot_quote(venue)
        rate_pair = usdt_rate_pair(venue)
        if own == quote:
            series, convert = pair, False
        elif quote == "USDT" and rate_pair is not None:
            series, convert = f"{base}/{own}", True
        else:
            return f"{venue}: quotes {own}, not {quote}: its prices are not compared"
        bars = self.lake.read_candles(venue, "1h", series, asof - _QUOTE_LOOKBACK, asof)
        last = bars.filter(pl.col("ts") + _HOUR_MS <= asof_ms).tail(1)
        if last.is_empty():
            return f"{venue}: no complete 1h candle in the lake in the 2 days before"
        price = pl.col("close")
        if convert:
            rate = rates.get(venue)
            if rate is None or rate[0] != int(last["ts"][0]) or not rate[1] > 0:
                return (
                    f"{venue}: no {rate_pair} candle of the same hour in the lake to convert "
                    f"its {own} price into USDT (a {own} price is never taken for a USDT one)"
                )
            price = pl.col("close") / rate[1]
        return last.select(
            exchange=pl.lit(venue),
            symbol=pl.lit(pair),
            bid=price,
            ask=price,
            ts=pl.col("ts") + _HOUR_MS,
        )

    def _pair(
        self, pair: str, asof_ms: int, usdt_rates: Mapping[str, tuple[int, float] | None]
    ) -> _PairInputs:
        asof = utc_from_ms(asof_ms)
        since = asof - _FUNDING_LOOKBACK
        rates = self.inputs.read_funding(self.home, pair, since, asof)
        mark = spot = pl.DataFrame(schema=OHLCV_SCHEMA)
        if not rates.is_empty():
            mark = self.lake.read_candles(mark_exchange(self.home), "8h", pair, since, asof)
            mark = mark.filter(pl.col("ts") + _MARK_MS <= asof_ms)
            spot = self.lake.read_candles(self.home, "1h", pair, since, asof)
            spot = spot.filter(pl.col("ts") + _HOUR_MS <= asof_ms)
        quotes: list[pl.DataFrame] = []
        missing: list[str] = []
        for venue in self.venues:
            got = self._quote(venue, pair, asof_ms, usdt_rates)
            if isinstance(got, str):
                missing.append(got)
            else:
                quotes.append(got)
        return _PairInputs(
            rates.with_columns(symbol=pl.lit(pair)),
            mark.with_columns(symbol=pl.lit(pair)),
            spot.with_columns(symbol=pl.lit(pair)),
            quotes,
            missing,
        )

    def _withdrawals(self, pairs: list[str], asof_ms: int) -> pl.DataFrame:
        """Each venue's observations of the pairs' coins (``symbol`` = the pair)."""
        asof = utc_from_ms(asof_ms)
        coins = pl.DataFrame(
            {"symbol": pairs, "coin": [p.partition("/")[0] for p in pairs]},
            schema={"symbol": pl.String, "coin": pl.String},
        )
        frames = []
        for venue in self.venues:
            seen = self.inputs.read_withdrawals(venue, asof - _WITHDRAWAL_LOOKBACK, asof)
            frames.append(
                seen.rename({"symbol": "coin"})
                .join(coins, on="coin", how="inner")
                .select(list(arbitrage.WITHDRAWAL_SCHEMA))
            )
        return _concat(frames, arbitrage.WITHDRAWAL_SCHEMA)

    def _missing(self, asof_ms: int) -> dict[str, str]:
        """venue → why its last withdrawals run (in the window, not after ``asof_ms``) could
        not read its constraints."""
        oldest = asof_ms - int(_WITHDRAWAL_LOOKBACK / timedelta(milliseconds=1))
        out: dict[str, str] = {}
        for venue in self.venues:
            status = self.inputs.read_withdrawal_status(venue)
            if status is not None and status[1] is not None and oldest <= status[0] <= asof_ms:
                out[venue] = status[1]
        return out

    def _sentiment(self, asof_ms: int) -> tuple[tuple[SentimentReading, ...] | None, str | None]:
        day_start = asof_ms - asof_ms % DAY_MS
        frame = self.inputs.read_sentiment(
            self.sentiment_source,
            utc_from_ms(day_start) - _SENTIMENT_LOOKBACK,
            utc_from_ms(day_start - 1),  # a day's reading once that day has ended
        )
        if frame.is_empty():
            return None, (
                f"no {self.sentiment_name} reading in the lake in the "
                f"{_SENTIMENT_LOOKBACK.days} days before {utc_from_ms(day_start):%Y-%m-%d} "
                "(the source was unreachable, or the sentiment ingest has not run)"
            )
        return tuple(
            SentimentReading(ts=ts, value=value, classification=label, source=self.sentiment_name)
            for ts, value, label in frame.select("ts", "value", "classification").iter_rows()
        ), None


def _concat(frames: list[pl.DataFrame], schema: Mapping[str, pl.DataType]) -> pl.DataFrame:
    present = [f for f in frames if f.height]
    if not present:
        return pl.DataFrame(schema=dict(schema))
    return pl.concat([f.select(list(schema)).cast(dict(schema)) for f in present], how="vertical")  # type: ignore[arg-type]
