"""What every agent returns: one row per symbol, a vote or an explicit abstention.

Agents are vectorized over the whole universe: they take frames and return a frame in
``VOTE_SCHEMA``. A row with ``abstain_reason`` set is an abstention: its ``probability`` and
``confidence`` are null and it never counts as a vote.
"""

from __future__ import annotations

from typing import Final

import polars as pl

VOTE_SCHEMA: Final[dict[str, pl.DataType]] = {
    "symbol": pl.String(),
    "agent": pl.String(),
    "ts": pl.Int64(),  # bar the vote is about (ms UTC)
    "probability": pl.Float64(),  # P(up move over the agent's horizon), null when abstaining
    "confidence": pl.Float64(),  # 0..1, null when abstaining
    "reasons": pl.List(pl.String()),
    "abstain_reason": pl.String(),
}


def empty_votes() -> pl.DataFrame:
    return pl.DataFrame(schema=VOTE_SCHEMA)


def abstentions(symbols: list[str], agent: str, ts: int, reason: str) -> pl.DataFrame:
    """Abstention rows for ``symbols`` with one shared reason."""
    n = len(symbols)
    return pl.DataFrame(
        {
            "symbol": symbols,
            "agent": [agent] * n,
            "ts": [ts] * n,
            "probability": [None] * n,
            "confidence": [None] * n,
            "reasons": [[] for _ in range(n)],
            "abstain_reason": [reason] * n,
        },
        schema=VOTE_SCHEMA,
    )
