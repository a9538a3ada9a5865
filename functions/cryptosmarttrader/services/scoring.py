"""The calibrated ensemble as the scan runs it: every directional agent plus the ML agent,
stacked and calibrated by a model fitted walk-forward (``cst evaluate --save-model``), with the
liquidity agent's vetoes applied. Without a fitted model the scan falls back to the technical
agent alone and says so in every row's reasons.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from cryptosmarttrader.domain.agents.base import VOTE_SCHEMA
from cryptosmarttrader.domain.agents.liquidity import vetoed
from cryptosmarttrader.domain.agents.ml_predictor import ml_votes
from cryptosmarttrader.domain.agents.registry import AGENTS, MarketState, run_agents
from cryptosmarttrader.domain.ensemble import EnsembleModel, ensemble_votes
from cryptosmarttrader.domain.features import features_at
from cryptosmarttrader.ports import Predictor

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
    model: TrainedModel, window: pl.DataFrame, clean: pl.DataFrame, asof_ms: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """:func:`ensemble_scan_votes`, and every agent's own vote or abstention beside it (the
    directional agents, the ML predictor and the veto agents), ``VOTE_SCHEMA`` each."""
    all_votes = run_agents(MarketState(universe=clean), asof_ms)
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
