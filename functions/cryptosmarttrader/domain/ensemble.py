"""Calibrated ensemble of agent votes: logistic stacking, then Platt or isotonic calibration.

Abstentions never count as votes. For every agent ``a`` the stacker sees two columns:
``logit(p_a)`` and ``voted_a`` (1/0). An abstaining agent has both at 0, so it adds exactly
nothing to the linear score; a voting agent adds ``w_a * logit(p_a) + b_a`` (``b_a`` absorbs the
agent's own bias). When every agent abstains the ensemble abstains too, with that reason.

Weights are learned walk-forward (:func:`fit_ensemble_walk_forward`): for each test block the
stacker is fitted on earlier rows only (purged and embargoed), its out-of-sample scores are
collected, and the calibrator is fitted on those out-of-sample scores only. The final stacker is
then refitted on all rows given; the caller passes only rows whose labels were known at its
train-end.

``probability`` of an ensemble vote is the calibrated probability of the target event (e.g. a
gain of at least 100 % within the horizon); ``confidence`` is the calibrated probability that its
call is right, ``max(p, 1 - p)``. With the ranking rule (BUY needs ``p > 0.5`` and confidence >=
gate) the default gate of 0.8 means: buy only when the calibrated probability is at least 0.8.
The model serializes to a plain dict (JSON) for the Lambdas.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt
import polars as pl

from cryptosmarttrader.domain.agents.base import VOTE_SCHEMA
from cryptosmarttrader.domain.evaluation import Fold, purged_train_mask
from cryptosmarttrader.domain.types import DomainError

__all__ = [
    "AGENT",
    "DEFAULT_CONFIDENCE_GATE",
    "EnsembleModel",
    "IsotonicCalibrator",
    "PlattCalibrator",
    "Stacker",
    "WalkForwardFit",
    "agent_matrix",
    "ensemble_votes",
    "fit_calibrator",
    "fit_ensemble_walk_forward",
    "fit_logistic",
    "fit_stacker",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
CalibrationMethod = Literal["platt", "isotonic"]

AGENT: Final = "ensemble"
DEFAULT_CONFIDENCE_GATE: Final = 0.8
_P_CLIP: Final = 1e-4
_MIN_FIT_ROWS: Final = 50


def _sigmoid(z: FloatArray) -> FloatArray:
    out: FloatArray = 0.5 * (1.0 + np.tanh(0.5 * z))
    return out


def fit_logistic(x: FloatArray, y: FloatArray, l2: float = 1.0, max_iter: int = 50) -> FloatArray:
    """L2-regularized logistic regression by Newton-Raphson (IRLS). Returns
    ``[intercept, coef...]``; the intercept is not penalized."""
    if x.ndim != 2 or y.shape != (x.shape[0],):
        raise DomainError(f"x must be (n, d) and y (n,), got {x.shape} and {y.shape}")
    if not np.all(np.isfinite(x)) or not np.all((y == 0) | (y == 1)):
        raise DomainError("x must be finite and y must be 0/1")
    design = np.column_stack([np.ones(x.shape[0]), x])
    penalty = np.full(design.shape[1], l2)
    penalty[0] = 0.0
    beta = np.zeros(design.shape[1])
    for _ in range(max_iter):
        p = _sigmoid(design @ beta)
        w = np.clip(p * (1 - p), 1e-9, None)
        grad = design.T @ (p - y) + penalty * beta
        hess = (design * w[:, None]).T @ design + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hess, grad)
        beta -= step
        if float(np.max(np.abs(step))) < 1e-8:
            break
    return beta


# ------------------------------------------------------------------------------- stacker
@dataclass(frozen=True, slots=True)
class Stacker:
    """Linear score ``intercept + sum_a (w_a * logit(p_a) + b_a) * voted_a``."""

    agents: tuple[str, ...]
    intercept: float
    weights: tuple[float, ...]  # per agent, on logit(p)
    voted_bias: tuple[float, ...]  # per agent, when it voted
    # what the weights were fitted on: the rows, and per agent the rows it voted on (an agent
    # that never voted has weight and bias 0 because it never voted, not because it has no skill)
    training_rows: int = 0
    voted_rows: tuple[int, ...] = ()

    def score(self, x: FloatArray) -> FloatArray:
        """Linear scores for an :func:`agent_matrix` (n × 2·agents)."""
        coef = np.empty(2 * len(self.agents))
        coef[0::2] = self.weights
        coef[1::2] = self.voted_bias
        out: FloatArray = self.intercept + x @ coef
        return out


def fit_stacker(agents: Sequence[str], x: FloatArray, y: FloatArray, l2: float = 1.0) -> Stacker:
    beta = fit_logistic(x, y, l2)
    return Stacker(
        tuple(agents),
        float(beta[0]),
        tuple(float(v) for v in beta[1::2]),
        tuple(float(v) for v in beta[2::2]),
        int(x.shape[0]),
        tuple(int(v) for v in np.count_nonzero(x[:, 1::2], axis=0)),
    )


def agent_matrix(
    votes: pl.DataFrame, agents: Sequence[str], keys: pl.DataFrame | None = None
) -> tuple[pl.DataFrame, FloatArray]:
    """Wide stacking matrix from long votes (``VOTE_SCHEMA``): one row per (symbol, ts) of
    ``keys`` (default: every pair in ``votes``, sorted), columns ``logit(p_a), voted_a`` per agent.
    Abstentions and missing agents are zeros in both columns."""
    if keys is None:
        keys = votes.select("symbol", "ts").unique().sort("symbol", "ts")
    voted = votes.filter(
        pl.col("abstain_reason").is_null()
        & pl.col("probability").is_not_null()
        & pl.col("agent").is_in(list(agents))
    )
    cols: list[pl.Expr] = []
    for a in agents:
        p = pl.col(f"p_{a}").clip(_P_CLIP, 1 - _P_CLIP)
        cols += [
            (p / (1 - p)).log().alias(f"logit_{a}"),
            pl.col(f"p_{a}").is_not_null().cast(pl.Float64).alias(f"voted_{a}"),
        ]
    wide = keys.select("symbol", "ts").join(
        voted.select(
            "symbol", "ts", pl.concat_str(pl.lit("p_"), "agent").alias("agent"), "probability"
        ).pivot(
            on="agent", index=["symbol", "ts"], values="probability", aggregate_function="first"
        )
        if voted.height
        else pl.DataFrame(schema={"symbol": pl.String(), "ts": pl.Int64()}),
        on=["symbol", "ts"],
        how="left",
        maintain_order="left",
    )
    for a in agents:
        if f"p_{a}" not in wide.columns:
            wide = wide.with_columns(pl.lit(None, pl.Float64).alias(f"p_{a}"))
    matrix = wide.select([c.fill_null(0.0) for c in cols]).to_numpy().astype(np.float64)
    return wide.select("symbol", "ts"), matrix.reshape(keys.height, 2 * len(agents))


# ------------------------------------------------------------------------------- calibration
@dataclass(frozen=True, slots=True)
class PlattCalibrator:
    """``sigmoid(a * score + b)``."""

    a: float
    b: float

    def apply(self, score: FloatArray) -> FloatArray:
        return _sigmoid(self.a * score + self.b)


@dataclass(frozen=True, slots=True)
class IsotonicCalibrator:
    """Monotone step-free map: linear interpolation between fitted (score, probability) knots."""

    knots_x: tuple[float, ...]
    knots_y: tuple[float, ...]

    def apply(self, score: FloatArray) -> FloatArray:
        out: FloatArray = np.interp(score, self.knots_x, self.knots_y)
        return out


Calibrator = PlattCalibrator | IsotonicCalibrator


def _pava(values: FloatArray, weights: FloatArray) -> FloatArray:
    """Pool-adjacent-violators: the non-decreasing fit of ``values`` (fit time only, on at most
    a few hundred bins)."""
    level: list[float] = []
    weight: list[float] = []
    size: list[int] = []
    for v, w in zip(values.tolist(), weights.tolist(), strict=True):
        level.append(v)
        weight.append(w)
        size.append(1)
        while len(level) > 1 and level[-2] > level[-1]:
            w2 = weight[-2] + weight[-1]
            level[-2] = (level[-2] * weight[-2] + level[-1] * weight[-1]) / w2
            weight[-2] = w2
            size[-2] += size[-1]
            del level[-1], weight[-1], size[-1]
    return np.repeat(np.asarray(level), np.asarray(size))


def fit_calibrator(
    score: FloatArray, y: FloatArray, method: CalibrationMethod = "platt", bins: int = 200
) -> Calibrator:
    """Fit on out-of-sample scores only (the caller's duty; :func:`fit_ensemble_walk_forward`
    does it). Isotonic pools the scores into at most ``bins`` quantile bins first."""
    ok = np.isfinite(score) & np.isfinite(y)
    s, t = score[ok], y[ok]
    if s.size < _MIN_FIT_ROWS or t.min() == t.max():
        raise DomainError(
            f"calibration needs >= {_MIN_FIT_ROWS} out-of-sample rows with both outcomes, "
            f"got {s.size} rows and {int(t.sum())} positives"
        )
    if method == "platt":
        beta = fit_logistic(s[:, None], t, l2=1e-6)
        return PlattCalibrator(float(beta[1]), float(beta[0]))
    order = np.argsort(s, kind="stable")
    s, t = s[order], t[order]
    groups = np.minimum((np.arange(s.size) * bins) // s.size, bins - 1)
    n = np.bincount(groups).astype(np.float64)
    mean_s = np.bincount(groups, weights=s) / n
    mean_y = np.bincount(groups, weights=t) / n
    fitted = _pava(mean_y, n)
    return IsotonicCalibrator(tuple(mean_s.tolist()), tuple(fitted.tolist()))


# ------------------------------------------------------------------------------- model
@dataclass(frozen=True, slots=True)
class EnsembleModel:
    stacker: Stacker
    calibrator: Calibrator
    target: str  # what ``probability`` means, e.g. "gain >= 100% within 180 days"

    @property
    def agents(self) -> tuple[str, ...]:
        return self.stacker.agents

    def predict(self, x: FloatArray) -> FloatArray:
        """Calibrated probabilities for an :func:`agent_matrix`."""
        return np.clip(self.calibrator.apply(self.stacker.score(x)), 0.0, 1.0)

    def to_dict(self) -> dict[str, Any]:
        cal = self.calibrator
        calibration: dict[str, Any] = (
            {"method": "platt", "a": cal.a, "b": cal.b}
            if isinstance(cal, PlattCalibrator)
            else {"method": "isotonic", "x": list(cal.knots_x), "y": list(cal.knots_y)}
        )
        return {
            "target": self.target,
            "agents": list(self.stacker.agents),
            "intercept": self.stacker.intercept,
            "weights": list(self.stacker.weights),
            "voted_bias": list(self.stacker.voted_bias),
            "training_rows": self.stacker.training_rows,
            "voted_rows": list(self.stacker.voted_rows),
            "calibration": calibration,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> EnsembleModel:
        cal = raw["calibration"]
        calibrator: Calibrator = (
            PlattCalibrator(float(cal["a"]), float(cal["b"]))
            if cal["method"] == "platt"
            else IsotonicCalibrator(tuple(cal["x"]), tuple(cal["y"]))
        )
        stacker = Stacker(
            tuple(raw["agents"]),
            float(raw["intercept"]),
            tuple(float(v) for v in raw["weights"]),
            tuple(float(v) for v in raw["voted_bias"]),
            int(raw.get("training_rows", 0)),  # absent from documents written before it
            tuple(int(v) for v in raw.get("voted_rows", ())),
        )
        return cls(stacker, calibrator, str(raw["target"]))


@dataclass(frozen=True, slots=True)
class WalkForwardFit:
    model: EnsembleModel
    oos_probability: FloatArray  # calibrated OOS stacked probability (NaN outside OOS blocks)
    oos_rows: int


def fit_ensemble_walk_forward(
    agents: Sequence[str],
    x: FloatArray,
    y: FloatArray,
    sample_day: IntArray,
    label_end_day: IntArray,
    folds: Sequence[Fold],
    *,
    embargo_days: int,
    method: CalibrationMethod = "platt",
    target: str,
    l2: float = 1.0,
) -> WalkForwardFit:
    """Walk-forward stacking + calibration on out-of-sample scores only (see module doc).

    ``x``/``y`` are the rows available for fitting (labels known at the caller's train-end).
    """
    oos_score = np.full(y.shape[0], np.nan)
    for fold in folds:
        test = (sample_day >= fold.test_start_day) & (sample_day <= fold.test_end_day)
        train = purged_train_mask(sample_day, label_end_day, fold.test_start_day, embargo_days)
        if not test.any() or train.sum() < _MIN_FIT_ROWS or y[train].min() == y[train].max():
            continue
        oos_score[test] = fit_stacker(agents, x[train], y[train], l2).score(x[test])
    done = np.isfinite(oos_score)
    calibrator = fit_calibrator(oos_score[done], y[done], method)
    final = fit_stacker(agents, x, y, l2)
    oos_prob = np.full(y.shape[0], np.nan)
    oos_prob[done] = calibrator.apply(oos_score[done])
    return WalkForwardFit(EnsembleModel(final, calibrator, target), oos_prob, int(done.sum()))


# ------------------------------------------------------------------------------- votes
def ensemble_votes(votes: pl.DataFrame, model: EnsembleModel) -> pl.DataFrame:
    """One ensemble vote per (symbol, ts) in ``votes`` (``VOTE_SCHEMA``). Abstains when every
    agent abstained, listing their reasons."""
    if votes.is_empty():
        return pl.DataFrame(schema=VOTE_SCHEMA)
    keys, x = agent_matrix(votes, model.agents)
    prob = model.predict(x)
    voted = votes.filter(pl.col("abstain_reason").is_null() & pl.col("agent").is_in(model.agents))
    summary = votes.group_by("symbol", "ts").agg(
        reasons=pl.format("{} p={}", "agent", pl.col("probability").round(2).cast(pl.String))
        .filter(pl.col("abstain_reason").is_null() & pl.col("agent").is_in(model.agents))
        .sort(),
        abstained=pl.format("{}: {}", "agent", "abstain_reason")
        .filter(pl.col("abstain_reason").is_not_null())
        .sort(),
    )
    n_voted = voted.group_by("symbol", "ts").len("n_voted")
    out = (
        keys.with_columns(p=pl.Series(prob, dtype=pl.Float64))
        .join(summary, on=["symbol", "ts"], how="left")
        .join(n_voted, on=["symbol", "ts"], how="left")
        .with_columns(pl.col("n_voted").fill_null(0))
    )
    abstain = pl.col("n_voted") == 0
    return (
        out.select(
            "symbol",
            pl.lit(AGENT).alias("agent"),
            "ts",
            pl.when(abstain).then(None).otherwise(pl.col("p")).alias("probability"),
            pl.when(abstain)
            .then(None)
            .otherwise(pl.max_horizontal(pl.col("p"), 1 - pl.col("p")))
            .alias("confidence"),
            pl.when(abstain)
            .then(pl.lit([], dtype=pl.List(pl.String)))
            .otherwise(
                pl.concat_list(
                    pl.format(
                        "calibrated P({}) = {}",
                        pl.lit(model.target),
                        pl.col("p").round(3).cast(pl.String),
                    ),
                    pl.col("reasons"),
                )
            )
            .alias("reasons"),
            pl.when(abstain)
            .then(
                pl.concat_str(
                    pl.lit("all agents abstained ("),
                    pl.col("abstained").list.join("; "),
                    pl.lit(")"),
                )
            )
            .alias("abstain_reason"),
        )
        .cast(VOTE_SCHEMA)  # type: ignore[arg-type]
        .sort("symbol", "ts")
    )
