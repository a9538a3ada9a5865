"""Market-cap ingestion: exchange pairs → CoinGecko coins → source → gate → lake.

1. the pairs are mapped to CoinGecko coins through the explicit table
   (:func:`cryptosmarttrader.domain.coins.resolve_pairs`); unmapped or ambiguous pairs are
   reported with the reason and get no market cap (so they are never eligible for the model);
2. the source returns the coins' daily caps in ``[now - lookback_days, now]`` (a live source:
   today's snapshot only) plus the rows it could not read;
3. :func:`cryptosmarttrader.domain.coins.check_market_caps` rejects missing, non-positive,
   off-midnight, future and duplicate values with a reason; the clean rows are merged into the
   lake (a rerun with the same input writes nothing).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from cryptosmarttrader.domain.clock import Clock
from cryptosmarttrader.domain.coins import check_market_caps, resolve_pairs
from cryptosmarttrader.domain.types import ms_from_utc
from cryptosmarttrader.ports import MarketCapSource, MarketCapStore, Metrics

__all__ = ["MarketCapIngestService", "MarketCapReport"]

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

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class MarketCapIngestService:
    def __init__(
        self, source: MarketCapSource, store: MarketCapStore, metrics: Metrics, clock: Clock
    ) -> None:
        self._source = source
        self._store = store
        self._metrics = metrics
        self._clock = clock

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
