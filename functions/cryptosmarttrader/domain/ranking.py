"""Turn votes into ranked decisions: score, confidence gate, action."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from cryptosmarttrader.domain.types import Action

NO_SCORE = "no finite score in [0, 1] (probability {p}, confidence {c}): treated as an abstention"


@dataclass(frozen=True, slots=True)
class RankedSignal:
    symbol: str
    ts: int
    score: float | None
    confidence: float | None
    action: Action
    reasons: tuple[str, ...]


def _unit(column: str) -> pl.Expr:
    """True where ``column`` is a finite number in [0, 1] (null, NaN, ±inf and others: False)."""
    col = pl.col(column)
    return (col.is_not_null() & col.is_finite() & col.is_between(0.0, 1.0)).fill_null(False)


def rank(votes: pl.DataFrame, *, confidence_gate: float, top_n: int) -> list[RankedSignal]:
    """Rank voting symbols by score (probability), abstentions after them; keep ``top_n``.

    A BUY needs score > 0.5 and confidence >= ``confidence_gate``; anything else that voted is a
    HOLD with the reason it did not pass; abstentions stay ABSTAIN with their reason. A row that
    claims to vote without a finite probability and confidence in [0, 1] (null, NaN, infinite:
    an agent or model fault) is an abstention too: it is ranked after every real score and never
    passes the gate.
    """
    if not 0.0 <= confidence_gate <= 1.0:
        raise ValueError(f"confidence gate must be in [0, 1], got {confidence_gate}")
    if top_n < 1:
        raise ValueError(f"top_n must be >= 1, got {top_n}")
    valid = _unit("probability") & _unit("confidence")
    ordered = (
        votes.with_columns(
            _voted=pl.col("abstain_reason").is_null() & valid,
            _p=pl.when(valid).then(pl.col("probability")),
            _c=pl.when(valid).then(pl.col("confidence")),
        )
        .sort(
            ["_voted", "_p", "_c", "symbol"], descending=[True, True, True, False], nulls_last=True
        )
        .head(top_n)
    )
    out: list[RankedSignal] = []
    for row in ordered.iter_rows(named=True):  # top_n rows only, not the universe
        reasons = tuple(row["reasons"] or ())
        if not row["_voted"]:
            why = row["abstain_reason"] or NO_SCORE.format(
                p=row["probability"], c=row["confidence"]
            )
            out.append(
                RankedSignal(
                    row["symbol"], row["ts"], None, None, Action.ABSTAIN, (f"abstained: {why}",)
                )
            )
            continue
        score, conf = float(row["_p"]), float(row["_c"])
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
