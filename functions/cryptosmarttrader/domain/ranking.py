"""Turn votes into ranked decisions: score, confidence gate, action."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from cryptosmarttrader.domain.types import Action


@dataclass(frozen=True, slots=True)
class RankedSignal:
    symbol: str
    ts: int
    score: float | None
    confidence: float | None
    action: Action
    reasons: tuple[str, ...]


def rank(votes: pl.DataFrame, *, confidence_gate: float, top_n: int) -> list[RankedSignal]:
    """Rank voting symbols by score (probability), abstentions after them; keep ``top_n``.

    A BUY needs score > 0.5 and confidence >= ``confidence_gate``; anything else that voted is a
    HOLD with the reason it did not pass; abstentions stay ABSTAIN with their reason.
    """
    if not 0.0 <= confidence_gate <= 1.0:
        raise ValueError(f"confidence gate must be in [0, 1], got {confidence_gate}")
    if top_n < 1:
        raise ValueError(f"top_n must be >= 1, got {top_n}")
    ordered = votes.sort(
        ["probability", "confidence", "symbol"],
        descending=[True, True, False],
        nulls_last=True,
    ).head(top_n)
    out: list[RankedSignal] = []
    for row in ordered.iter_rows(named=True):  # top_n rows only, not the universe
        reasons = tuple(row["reasons"] or ())
        if row["abstain_reason"] is not None:
            out.append(
                RankedSignal(
                    row["symbol"],
                    row["ts"],
                    None,
                    None,
                    Action.ABSTAIN,
                    (f"abstained: {row['abstain_reason']}",),
                )
            )
            continue
        score, conf = float(row["probability"]), float(row["confidence"])
        if score > 0.5 and conf >= confidence_gate:
            action = Action.BUY
        else:
            action = Action.HOLD
            why = (
                f"confidence {conf:.2f} below gate {confidence_gate:.2f}"
                if conf < confidence_gate
                else f"score {score:.2f} not bullish"
            )
            reasons = (*reasons, why)
        out.append(RankedSignal(row["symbol"], row["ts"], score, conf, action, reasons))
    return out
