"""ML predictor agent: votes from a fitted probability model behind the ``Predictor`` port.

Input: rows of :func:`cryptosmarttrader.domain.features.feature_frame` (any number of symbols
and days at once; serving passes one day, evaluation passes every decision day). The model is
whatever implements the port (XGBoost in-process, a SageMaker endpoint); this module never
imports a model library.

Output: ``VOTE_SCHEMA``. ``probability`` is the model's probability of its training target (not
calibrated: the ensemble calibrates); ``confidence`` is ``max(p, 1 - p)``. The agent abstains,
with the reason, where the history is too short for the core features or too many features are
missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import numpy as np
import numpy.typing as npt
import polars as pl

from cryptosmarttrader.domain.agents.base import VOTE_SCHEMA, abstentions
from cryptosmarttrader.domain.features import FEATURE_COLUMNS
from cryptosmarttrader.domain.types import DomainError

if TYPE_CHECKING:
    from cryptosmarttrader.ports import Predictor

__all__ = ["AGENT", "MlConfig", "feature_matrix", "ml_votes"]

AGENT: Final = "ml"


@dataclass(frozen=True, slots=True)
class MlConfig:
    required: tuple[str, ...] = ("ret_30d", "vol_30d")  # abstain when any of these is null
    min_present: float = 0.6  # fraction of FEATURE_COLUMNS that must be non-null


def feature_matrix(features: pl.DataFrame, names: Sequence[str]) -> npt.NDArray[np.float64]:
    """``features[names]`` as float64 with NaN for missing values (the model's input)."""
    missing = [c for c in names if c not in features.columns]
    if missing:
        raise DomainError(f"feature frame lacks model features {missing}")
    matrix = features.select(pl.col(c).cast(pl.Float64).fill_null(np.nan) for c in names)
    return matrix.to_numpy().astype(np.float64)


def ml_votes(
    features: pl.DataFrame,
    predictor: Predictor,
    *,
    asof_ms: int | None = None,
    symbols: Sequence[str] = (),
    config: MlConfig = MlConfig(),
) -> pl.DataFrame:
    """Votes for every row of ``features``; with ``asof_ms``, also an abstention for each of
    ``symbols`` that has no feature row (no bar that day)."""
    unknown = [c for c in predictor.feature_names if c not in FEATURE_COLUMNS]
    if unknown:
        raise DomainError(f"model expects features the feature module does not make: {unknown}")
    present = pl.sum_horizontal(pl.col(c).is_not_null().cast(pl.Int32) for c in FEATURE_COLUMNS)
    req_null = pl.any_horizontal(pl.col(c).is_null() for c in config.required)
    probs = (
        predictor.predict_proba(feature_matrix(features, predictor.feature_names))
        if features.height
        else np.empty(0)
    )
    votes = (
        features.with_columns(_p=pl.Series(probs, dtype=pl.Float64), _present=present)
        .with_columns(
            abstain_reason=pl.when(req_null)
            .then(
                pl.lit("insufficient history: core features (")
                + pl.lit(", ".join(config.required))
                + pl.lit(") undefined")
            )
            .when(pl.col("_present") < config.min_present * len(FEATURE_COLUMNS))
            .then(
                pl.format("only {}/{} features defined", "_present", pl.lit(len(FEATURE_COLUMNS)))
            )
        )
        .select(
            "symbol",
            pl.lit(AGENT).alias("agent"),
            "ts",
            pl.when(pl.col("abstain_reason").is_null()).then(pl.col("_p")).alias("probability"),
            pl.when(pl.col("abstain_reason").is_null())
            .then(pl.max_horizontal(pl.col("_p"), 1 - pl.col("_p")))
            .alias("confidence"),
            pl.when(pl.col("abstain_reason").is_null())
            .then(
                pl.concat_list(
                    pl.format("model p={}", pl.col("_p").round(3).cast(pl.String)),
                    pl.format("{}/{} features defined", "_present", pl.lit(len(FEATURE_COLUMNS))),
                )
            )
            .otherwise(pl.lit([], dtype=pl.List(pl.String)))
            .alias("reasons"),
            "abstain_reason",
        )
        .cast(VOTE_SCHEMA)  # type: ignore[arg-type]
    )
    if asof_ms is not None and symbols:
        have = set(votes["symbol"].to_list())
        absent = sorted(set(symbols) - have)
        if absent:
            votes = pl.concat(
                [votes, abstentions(absent, AGENT, asof_ms, "no bar at the as-of date")]
            )
    return votes.sort("symbol", "ts")
