"""The calibrated ensemble as the scan runs it: every directional agent plus the ML agent,
stacked and calibrated by a model fitted walk-forward (``cst evaluate --save-model``), with the
liquidity agent's vetoes applied. Without a fitted model the scan falls back to the technical
agent alone and says so in every row's reasons.

The ranking model (:class:`RankingModel`, ``cst evaluate --save-model``) is served by
:func:`ranking_scan_votes_with_agents`: the same rows, features and calibrated probability as the
walk-forward evaluation computed for that day (:func:`ranking_rows`), as two agents: the ML
predictor (``ml``: the model's within-day rank percentile) and the ensemble (``ensemble``: the
calibration of that percentile into the P(event) the scan gates on).
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import polars as pl

from cryptosmarttrader.domain.agents.base import VOTE_SCHEMA, abstentions
from cryptosmarttrader.domain.agents.early_mover import early_mover_votes
from cryptosmarttrader.domain.agents.liquidity import vetoed
from cryptosmarttrader.domain.agents.ml_predictor import AGENT as ML_AGENT
from cryptosmarttrader.domain.agents.ml_predictor import ml_votes
from cryptosmarttrader.domain.agents.registry import AGENTS, MarketState, run_agents
from cryptosmarttrader.domain.agents.technical import technical_votes
from cryptosmarttrader.domain.ensemble import AGENT as ENSEMBLE_AGENT
from cryptosmarttrader.domain.ensemble import EnsembleModel, IsotonicCalibrator, ensemble_votes
from cryptosmarttrader.domain.features import features_at
from cryptosmarttrader.domain.market import DAILY_SCHEMA, DAY_MS
from cryptosmarttrader.domain.quality import QualityCode, QualityResult, check_daily
from cryptosmarttrader.domain.rank_features import (
    AGENT_SIGNALS,
    CANDIDATE_SIGNALS,
    coin_features,
    rank_within_day,
)
from cryptosmarttrader.domain.series_breaks import cut_series
from cryptosmarttrader.ports import Predictor, Ranker, RankerUnavailableError

DIRECTIONAL = frozenset(spec.name for spec in AGENTS if spec.directional)


@dataclass(frozen=True)
class TrainedModel:
    """A fitted ensemble and the ML predictor it stacks, with what they were fitted on."""

    ensemble: EnsembleModel
    predictor: Predictor
    meta: Mapping[str, Any] = field(default_factory=dict)  # train_end, target, created_at...

    @property
    def version(self) -> str:
        """The model's id: its registry label when loaded from the registry, else its fit."""
        label = self.meta.get("label") or self.meta.get("version")
        if label:
            return str(label)
        return f"ensemble-{self.meta.get('train_end', 'unknown')}"

    @property
    def description(self) -> str:
        return (
            f"ensemble fitted to {self.meta.get('train_end', '?')} "
            f"({self.ensemble.target}, {self.meta.get('calibration', 'calibrated')})"
        )


def ensemble_scan_votes(
    model: TrainedModel, window: pl.DataFrame, clean: pl.DataFrame, asof_ms: int
) -> pl.DataFrame:
    """Calibrated ensemble votes for ``clean`` at ``asof_ms``.

    ``window`` is the raw daily window the scan read (features are computed on it, exactly as
    in training); ``clean`` is what passed the quality gate (the agents and the universe).
    """
    return ensemble_scan_votes_with_agents(model, window, clean, asof_ms)[0]


def ensemble_scan_votes_with_agents(
    model: TrainedModel,
    window: pl.DataFrame,
    clean: pl.DataFrame,
    asof_ms: int,
    state: MarketState | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """:func:`ensemble_scan_votes`, and every agent's own vote or abstention beside it (the
    directional agents, the ML predictor and the veto agents), ``VOTE_SCHEMA`` each.

    ``state`` holds what the agents see beside ``clean`` (funding, other venues' prices,
    sentiment); without it they see the universe alone."""
    all_votes = run_agents(state or MarketState(universe=clean), asof_ms)
    directional = all_votes.filter(pl.col("agent").is_in(list(DIRECTIONAL)))
    symbols = clean.filter(pl.col("ts") == asof_ms)["symbol"].unique().sort().to_list()
    feats = features_at(window, asof_ms).filter(pl.col("symbol").is_in(symbols))
    ml = ml_votes(feats, model.predictor, asof_ms=asof_ms, symbols=symbols)
    votes = pl.concat([directional, ml.cast(VOTE_SCHEMA)], how="vertical")  # type: ignore[arg-type]
    ens = ensemble_votes(votes, model.ensemble)
    agents = pl.concat([all_votes.cast(VOTE_SCHEMA), ml.cast(VOTE_SCHEMA)], how="vertical")  # type: ignore[arg-type]
    vetoes = vetoed(all_votes)
    if vetoes.is_empty():
        return ens, agents
    return (
        ens.join(vetoes, on="symbol", how="left")
        .with_columns(
            probability=pl.when(pl.col("reason").is_null()).then(pl.col("probability")),
            confidence=pl.when(pl.col("reason").is_null()).then(pl.col("confidence")),
            abstain_reason=pl.when(pl.col("reason").is_null())
            .then(pl.col("abstain_reason"))
            .otherwise(pl.format("liquidity veto: {}", "reason")),
        )
        .drop("reason")
        .cast(VOTE_SCHEMA)  # type: ignore[arg-type]
    ), agents


# ------------------------------------------------------------------------------ ranking model
@dataclass(frozen=True)
class RankingModel:
    """The promoted ranking model as the scan serves it: the ranker, the monotone calibration
    of its within-day percentile to P(event), the signals it reads, and the walk-forward
    evaluation that judged it (whether it may trade at all, and why)."""

    ranker: Ranker
    calibrator: IsotonicCalibrator | None
    signals: tuple[str, ...]
    event: str
    evaluation: Mapping[str, Any]
    top_n: int = 200
    min_volume_usd: float = 100_000.0
    gate_days: int = 260  # the quality gate's and the agents' window (as in the evaluation)
    served_by: str = "in process"  # where the scores come from (a SageMaker endpoint's name)

    @property
    def trade(self) -> bool:
        return bool(self.evaluation.get("decision", {}).get("trade", False))

    @property
    def version(self) -> str:
        """What produced the scores: the registry version when the evaluation names it, else
        the evaluated period's end."""
        named = self.evaluation.get("version") or self.evaluation.get("model_version")
        if named:
            return str(named)
        return f"ranking-{self.evaluation.get('config', {}).get('end', 'unknown')}"

    @property
    def decision_reason(self) -> str:
        return str(self.evaluation.get("decision", {}).get("reason", "no evaluation recorded"))

    @property
    def description(self) -> str:
        cfg = self.evaluation.get("config", {})
        return (
            f"ranking model evaluated {cfg.get('start', '?')}..{cfg.get('end', '?')}; "
            f"P({self.event}); "
            + ("trades" if self.trade else f"does not trade: {self.decision_reason}")
            + ("" if self.served_by == "in process" else f"; scored by {self.served_by}")
        )


def ranking_rows(
    window: pl.DataFrame,
    asof_ms: int,
    *,
    members: Collection[str] | None,
    top_n: int,
    gate_days: int,
    min_volume_usd: float,
) -> tuple[pl.DataFrame, QualityResult]:
    """The day's ranked rows exactly as the evaluation builds them: series cut at breaks (the
    current segment only), the universe (``members`` — the point-in-time list — or the day's
    top ``top_n`` by market cap), the quality gate and the agents on the last ``gate_days``,
    the coin features on the whole window (>= RANK_LOOKBACK_DAYS), eligibility, then the
    within-day percentiles."""
    day = asof_ms // DAY_MS
    cuts = cut_series(window.filter(pl.col("ts") // DAY_MS <= day))
    frame = cuts.frame.filter(pl.col("segment") == pl.col("segment").max().over("symbol"))
    today = frame.filter(pl.col("day") == day)
    if members is None:
        names = (
            today.filter(pl.col("market_cap") > 0)
            .sort("market_cap", descending=True)
            .head(top_n)["symbol"]
            .to_list()
        )
    else:
        names = [m for m in members if m in set(today["symbol"].to_list())]
    frame = frame.filter(pl.col("symbol").is_in(names))
    gate_window = frame.filter(pl.col("day") > day - gate_days).select(list(DAILY_SCHEMA))
    quality = _with_row_errors_of_the_feature_window(
        check_daily(gate_window.sort("symbol", "ts"), asof_ms),
        check_daily(frame.select(list(DAILY_SCHEMA)).sort("symbol", "ts"), asof_ms),
    )
    clean = quality.clean
    eligible = clean.filter(pl.col("ts") // DAY_MS == day).select("symbol")
    votes = pl.concat([technical_votes(clean, asof_ms), early_mover_votes(clean, asof_ms)]).filter(
        (pl.col("ts") // DAY_MS == day) & pl.col("abstain_reason").is_null()
    )
    p = {
        agent: votes.filter(pl.col("agent") == agent).select(
            "symbol", pl.col("probability").alias(f"p_{agent}")
        )
        for agent in ("technical", "early_mover")
    }
    feats = coin_features(frame).filter(pl.col("day") == day)
    rows = (
        eligible.join(p["technical"], on="symbol", how="left")
        .join(p["early_mover"], on="symbol", how="left")
        .join(feats, on="symbol", how="inner")
        .filter(
            pl.col("log_market_cap").is_not_null()
            & (pl.col("log_volume_30d") >= math.log1p(min_volume_usd))
        )
        .sort("symbol")
    )
    return rank_within_day(rows, CANDIDATE_SIGNALS), quality


_ROW_ERRORS: Final = frozenset(
    {QualityCode.NAN, QualityCode.NON_FINITE, QualityCode.NON_POSITIVE_PRICE}
)


def _with_row_errors_of_the_feature_window(
    gate: QualityResult, whole: QualityResult
) -> QualityResult:
    """The gate's result on its own window, plus the coins with a broken row (NaN, infinite or
    non-positive price) anywhere in the longer window the coin features read: such a coin is
    rejected with that reason instead of being ranked on a -inf feature."""
    bad = [f for f in whole.findings if f.code in _ROW_ERRORS and f.symbol not in gate.excluded]
    if not bad:
        return gate
    symbols = sorted({f.symbol for f in bad})
    excluded = dict(gate.excluded)
    for finding in bad:
        excluded.setdefault(finding.symbol, []).append(finding.reason)
    return QualityResult(
        clean=gate.clean.filter(~pl.col("symbol").is_in(symbols)),
        findings=[*gate.findings, *bad],
        excluded=excluded,
        checked_symbols=gate.checked_symbols,
        checked_rows=gate.checked_rows,
    )


def ranking_scan_votes(
    model: RankingModel,
    window: pl.DataFrame,
    asof_ms: int,
    members: Collection[str] | None = None,
) -> tuple[pl.DataFrame, QualityResult]:
    """The votes the scan ranks and gates on (``VOTE_SCHEMA``): the ensemble agent's calibrated
    P(event) for the day, in the model's order (highest score first); ``probability`` and
    ``confidence`` are both that P(event) — the one quantity the gate reads. Without a
    calibration every coin abstains (no probability, no trade). See
    :func:`ranking_scan_votes_with_agents` for the ML predictor's vote beside it."""
    scores, _, quality = ranking_scan_votes_with_agents(model, window, asof_ms, members)
    return scores, quality


def ranking_scan_votes_with_agents(
    model: RankingModel,
    window: pl.DataFrame,
    asof_ms: int,
    members: Collection[str] | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame, QualityResult]:
    """The ranking model's day as two agents, and the votes the scan ranks on.

    * ``ml`` (the ML predictor) is the promoted ranking model itself: its vote on a coin is the
      within-day rank percentile of the model's score (``probability``: the coin's average rank
      among the day's ranked coins divided by their number, 1 = the day's highest score; an
      ordinal position, not a probability of any event; ``confidence``: ``max(pct, 1 - pct)``,
      how far from the day's median the model places the coin, as the ML predictor's
      ``max(p, 1 - p)``, not a calibrated certainty).
    * ``ensemble`` is the calibration that turns that percentile, computed from the model's
      inputs (the daily features and the technical and early-mover agents' probabilities the
      model was fitted on), into the calibrated P(event) the scan gates on: ``probability`` and
      ``confidence`` are both that P(event).

    Returns (the ensemble's votes in the model's order — what the scan ranks and gates on —,
    both agents' votes, the quality gate's result). Both agents abstain with one reason when
    the ranker cannot answer, or when the model has no calibration (no probability to gate on).
    """
    rows, quality = ranking_rows(
        window,
        asof_ms,
        members=members,
        top_n=model.top_n,
        gate_days=model.gate_days,
        min_volume_usd=model.min_volume_usd,
    )
    if rows.is_empty():
        return pl.DataFrame(schema=VOTE_SCHEMA), pl.DataFrame(schema=VOTE_SCHEMA), quality
    x = (
        rows.select(pl.col(f"{s}_pct").cast(pl.Float64).fill_null(np.nan) for s in model.signals)
        .to_numpy()
        .astype(np.float64)
    )
    try:
        score = model.ranker.score(x)
    except RankerUnavailableError as exc:
        return (*_both_abstain(rows["symbol"].to_list(), asof_ms, str(exc)), quality)
    pct = pl.Series(score).rank("average").to_numpy() / len(score)
    by_score = np.argsort(-score, kind="stable")  # votes in the model's order, best first
    score, pct = score[by_score], pct[by_score]
    symbols = [rows["symbol"][int(i)] for i in by_score]
    if model.calibrator is None:
        why = "the ranking model has no calibration: no probability"
        return (*_both_abstain(symbols, asof_ms, why), quality)
    prob = model.calibrator.apply(pct)
    reasons = [
        [f"calibrated P({model.event}) = {pr:.3f}", f"rank percentile {pc:.2f} of the day"]
        for pr, pc in zip(prob.tolist(), pct.tolist(), strict=True)
    ]
    scores = _votes(symbols, ENSEMBLE_AGENT, asof_ms, prob, prob, reasons)
    inputs = _ensemble_inputs(model.signals)
    ranked = f"{len(symbols)} coins ranked"
    ml = _votes(
        symbols,
        ML_AGENT,
        asof_ms,
        pct,
        np.maximum(pct, 1.0 - pct),
        [
            [
                f"ranking model {model.version} ({model.served_by}) score {s:.4f}",
                f"rank percentile {pc:.2f} of the day ({ranked}): an ordinal position, "
                "not a calibrated probability",
            ]
            for s, pc in zip(score.tolist(), pct.tolist(), strict=True)
        ],
    )
    ensemble = scores.with_columns(
        reasons=pl.col("reasons").list.concat(pl.lit([inputs], dtype=pl.List(pl.String)))
    )
    return scores, pl.concat([ml, ensemble], how="vertical"), quality


def _votes(
    symbols: list[str],
    agent: str,
    asof_ms: int,
    probability: npt.NDArray[np.float64],
    confidence: npt.NDArray[np.float64],
    reasons: list[list[str]],
) -> pl.DataFrame:
    n = len(symbols)
    return pl.DataFrame(
        {
            "symbol": symbols,
            "agent": [agent] * n,
            "ts": [asof_ms] * n,
            "probability": probability,
            "confidence": confidence,
            "reasons": reasons,
            "abstain_reason": [None] * n,
        },
        schema=VOTE_SCHEMA,
    )


def _both_abstain(symbols: list[str], asof_ms: int, why: str) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The ranked votes and both agents' rows when the model gives no probability: one reason."""
    scores = abstentions(symbols, ENSEMBLE_AGENT, asof_ms, why)
    return scores, pl.concat([abstentions(symbols, ML_AGENT, asof_ms, why), scores])


def _ensemble_inputs(signals: Collection[str]) -> str:
    """What the calibrated probability rests on: the ML predictor's percentile, and which
    agents' probabilities the model reads among its inputs (as within-day percentiles)."""
    agents = [s.removeprefix("p_") for s in AGENT_SIGNALS if s in signals]
    read = (
        f"the probabilities of the {' and '.join(agents)} agent{'s' if len(agents) > 1 else ''} "
        "are among its inputs"
        if agents
        else "no agent's probability is among its inputs"
    )
    return f"calibration of the ml agent's rank percentile; {read}, beside the daily features"
