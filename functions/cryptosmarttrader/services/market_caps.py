"""Market-cap ingestion: exchange pairs → CoinGecko coins → source → gate → lake.

1. the pairs are mapped to CoinGecko coins through the explicit table
   (:func:`cryptosmarttrader.domain.coins.resolve_pairs`); unmapped or ambiguous pairs are
   reported with the reason and get no market cap (so they are never eligible for the model);
2. the source returns the coins' daily caps in ``[now - lookback_days, now]`` (a live source:
   today's snapshot only) plus the rows it could not read;
3. :func:`cryptosmarttrader.domain.coins.check_market_caps` rejects missing, non-positive,
   off-midnight, future and duplicate values with a reason; the clean rows are merged into the
   lake (a rerun with the same input writes nothing);
4. **backfill** (with a ``history`` source and a state store): a coin seen for the first time
   gets ``backfill.days`` of daily history (CoinGecko ``market_chart`` live), through the same
   gate into the same lake layout, so the regime's 200-day market index exists from a new
   stack's first scan. The largest coins of the snapshot come first (they weigh most in the
   cap-weighted index), at most ``backfill.max_coins`` a run (the source's rate limit and the
   function's time); a coin is marked done in the state table only after its rows are in the
   lake, so a failed or cut-short run is taken up again by the next one and a rerun fetches
   nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Final

import polars as pl

from cryptosmarttrader.domain.clock import Clock
from cryptosmarttrader.domain.coins import check_market_caps, resolve_pairs
from cryptosmarttrader.domain.types import ms_from_utc
from cryptosmarttrader.ports import MarketCapSource, MarketCapStore, Metrics, StateRecords

__all__ = ["BACKFILL_PK", "Backfill", "MarketCapIngestService", "MarketCapReport"]

BACKFILL_PK: Final = "ingest#market_caps_backfill"


@dataclass(frozen=True)
class Backfill:
    days: int = 300  # the regime needs 200 contiguous index days, plus its 180-day vol median
    max_coins: int = 30


MAX_REJECTIONS_REPORTED = 50


@dataclass
class MarketCapReport:
    exchange: str
    coins: dict[str, str] = field(default_factory=dict)  # pair → coin id
    unmapped: dict[str, str] = field(default_factory=dict)  # pair → reason
    ingested: int = 0
    objects_written: int = 0
    rejected: int = 0
    rejected_codes: dict[str, int] = field(default_factory=dict)
    rejections: list[dict[str, Any]] = field(default_factory=list)  # first 50, with reasons
    backfilled: list[str] = field(default_factory=list)  # coins whose history was loaded now
    backfill_pending: list[str] = field(default_factory=list)  # still without history
    backfill_ingested: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class MarketCapIngestService:
    def __init__(
        self,
        source: MarketCapSource,
        store: MarketCapStore,
        metrics: Metrics,
        clock: Clock,
        *,
        history: MarketCapSource | None = None,
        state: StateRecords | None = None,
        backfill: Backfill = Backfill(),
    ) -> None:
        self._source = source
        self._store = store
        self._metrics = metrics
        self._clock = clock
        self._history = history if state is not None else None
        self._state = state
        self._backfill = backfill

    def run(self, exchange: str, pairs: Sequence[str], lookback_days: int) -> MarketCapReport:
        if lookback_days < 1:
            raise ValueError(f"lookback_days must be >= 1, got {lookback_days}")
        resolution = resolve_pairs(pairs)
        report = MarketCapReport(exchange, resolution.coins, dict(resolution.rejected))
        coins = sorted(set(resolution.coins.values()))
        now = self._clock.now()
        dims = {"exchange": exchange}
        if coins:
            batch = self._source.fetch_market_caps(coins, now - timedelta(days=lookback_days), now)
            verdict = check_market_caps(batch.frame, ms_from_utc(now), coins)
            keys = self._store.write_market_caps(verdict.clean)
            report.ingested = verdict.clean.height
            report.objects_written = len(keys)
            listed: list[dict[str, Any]] = [
                {"coin": coin, "ts": None, "reason": reason} for coin, reason in batch.rejected
            ]
            listed += [{"coin": c, "ts": ts, "reason": r} for c, ts, r in verdict.rejected]
            listed += self._backfill_history(coins, verdict.clean, report)
            report.rejected = len(listed)
            for item in listed:
                code = str(item["reason"]).split(":", 1)[0]
                report.rejected_codes[code] = report.rejected_codes.get(code, 0) + 1
            report.rejections = listed[:MAX_REJECTIONS_REPORTED]
        for code, count in report.rejected_codes.items():
            self._metrics.add("MarketCapsRejected", count, dimensions={**dims, "code": code})
        self._metrics.add("MarketCapsIngested", report.ingested, dimensions=dims)
        self._metrics.add("MarketCapPairsUnmapped", len(report.unmapped), dimensions=dims)
        return report

    def _backfill_history(
        self, coins: list[str], snapshot: pl.DataFrame, report: MarketCapReport
    ) -> list[dict[str, Any]]:
        """Load the history of the coins not yet backfilled (largest snapshot cap first);
        returns the rejections, with reasons."""
        if self._history is None or self._state is None:
            return []
        state = self._state
        missing = [c for c in coins if state.get(BACKFILL_PK, c) is None]
        if not missing:
            return []
        caps = dict(
            snapshot.sort("ts").group_by("coin").agg(pl.col("market_cap").last()).iter_rows()
        )
        missing.sort(key=lambda c: (-float(caps.get(c) or 0.0), c))
        now = self._clock.now()
        chosen = missing[: self._backfill.max_coins]
        report.backfill_pending = missing[self._backfill.max_coins :]
        batch = self._history.fetch_market_caps(
            chosen, now - timedelta(days=self._backfill.days), now
        )
        verdict = check_market_caps(batch.frame, ms_from_utc(now), chosen)
        self._store.write_market_caps(verdict.clean)  # before any coin is marked done
        failed = {coin for coin, _ in batch.rejected}
        got = set(verdict.clean["coin"].unique().to_list())
        for coin in chosen:
            if coin in failed or coin not in got:
                report.backfill_pending.append(coin)
                continue
            rows = verdict.clean.filter(pl.col("coin") == coin)
            state.put(
                BACKFILL_PK,
                coin,
                {
                    "days": self._backfill.days,
                    "rows": rows.height,
                    "first_ts": int(rows["ts"].min()),  # type: ignore[arg-type]
                    "updated_at": now,
                },
            )
            report.backfilled.append(coin)
        report.backfill_ingested = verdict.clean.height
        self._metrics.add(
            "MarketCapsBackfilled", verdict.clean.height, dimensions={"exchange": report.exchange}
        )
        listed: list[dict[str, Any]] = [
            {"coin": coin, "ts": None, "reason": f"backfill: {reason}"}
            for coin, reason in batch.rejected
        ]
        listed += [
            {"coin": c, "ts": ts, "reason": f"backfill: {r}"} for c, ts, r in verdict.rejected
        ]
        return listed
