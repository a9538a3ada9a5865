"""Sentiment agent: a contrarian, market-wide read of a fear-and-greed style index (0..100).

The source is pluggable (the ``SentimentSource`` port of ``cryptosmarttrader.ports``; the HTTP adapter for the Alternative.me Crypto
Fear & Greed Index lives in ``adapters/sentiment_source.py``). The agent itself is pure: it gets
the readings the caller could obtain (or the reason it could not) and never invents one.

Signal: extreme fear has tended to mark capitulation and extreme greed froth, so
``z = (50 - value) / scale`` clipped to ±``z_cap``; probability = logistic(z) (horizon
``horizon_days``); confidence = ``max_confidence · |z| / z_cap`` — a market-wide mood says
little about a single coin, so its confidence is capped. The same vote goes to every symbol.

Abstains, for every symbol, with the reason when: no source is configured, the source was
unreachable or returned an unusable payload (the caller's reason is passed through), no reading
exists at or before ``asof``, or the latest one is older than ``max_age_ms``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import polars as pl

from cryptosmarttrader.domain.agents.base import VOTE_SCHEMA, abstentions, empty_votes

AGENT = "sentiment"
NO_SOURCE = "no sentiment source configured"


@dataclass(frozen=True, slots=True)
class SentimentReading:
    ts: int  # ms UTC the reading is for
    value: float  # 0 (extreme fear) .. 100 (extreme greed)
    classification: str
    source: str

    def __post_init__(self) -> None:
        if not 0.0 <= self.value <= 100.0:
            raise ValueError(f"sentiment value must be in [0, 100], got {self.value}")


class SentimentUnavailableError(Exception):
    """The source could not deliver usable readings; the message says why."""


@dataclass(frozen=True, slots=True)
class SentimentConfig:
    scale: float = 25.0
    z_cap: float = 2.0
    max_confidence: float = 0.5
    max_age_ms: int = 2 * 86_400_000
    horizon_days: int = 30


def sentiment_votes(
    symbols: Sequence[str],
    asof_ms: int,
    readings: Sequence[SentimentReading] | None,
    unavailable_reason: str | None = None,
    config: SentimentConfig = SentimentConfig(),
) -> pl.DataFrame:
    """The same market-wide vote (or abstention) for every symbol in ``symbols``."""
    if not symbols:
        return empty_votes()
    names = list(dict.fromkeys(symbols))
    if readings is None:
        return abstentions(names, AGENT, asof_ms, unavailable_reason or NO_SOURCE)
    known = [r for r in readings if r.ts <= asof_ms]
    if not known:
        return abstentions(names, AGENT, asof_ms, "no sentiment reading at or before the as-of")
    latest = max(known, key=lambda r: r.ts)
    if latest.ts < asof_ms - config.max_age_ms:
        age_h = (asof_ms - latest.ts) // 3_600_000
        return abstentions(
            names,
            AGENT,
            asof_ms,
            f"sentiment reading from {latest.source} is stale ({age_h} h old)",
        )
    z = max(-config.z_cap, min(config.z_cap, (50.0 - latest.value) / config.scale))
    tilt = "contrarian bullish" if z > 0 else "contrarian bearish" if z < 0 else "neutral"
    day = datetime.fromtimestamp(latest.ts / 1000, tz=UTC).strftime("%Y-%m-%d")
    reasons = [
        f"{latest.source}: {latest.value:g} ({latest.classification}, reading of {day}) — {tilt}",
    ]
    n = len(names)
    return (
        pl.DataFrame(
            {
                "symbol": names,
                "agent": [AGENT] * n,
                # the decision the vote is about (as every agent's), not the reading's own time:
                # the ensemble joins the agents' votes on it
                "ts": [asof_ms] * n,
                "reasons": [reasons] * n,
            }
        )
        .with_columns(
            probability=pl.lit(1.0 / (1.0 + math.exp(-z))),
            confidence=pl.lit(config.max_confidence * abs(z) / config.z_cap),
            abstain_reason=pl.lit(None, pl.String),
        )
        .select(list(VOTE_SCHEMA))
        .cast(VOTE_SCHEMA)  # type: ignore[arg-type]
        .sort("symbol")
    )
