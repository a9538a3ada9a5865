"""Ensemble: abstentions never vote, calibration only on out-of-sample scores, serialization."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from cryptosmarttrader.domain.agents.base import VOTE_SCHEMA
from cryptosmarttrader.domain.ensemble import (
    EnsembleModel,
    IsotonicCalibrator,
    PlattCalibrator,
    Stacker,
    agent_matrix,
    ensemble_votes,
    fit_calibrator,
    fit_ensemble_walk_forward,
    fit_logistic,
    fit_stacker,
)
from cryptosmarttrader.domain.evaluation import walk_forward_folds
from cryptosmarttrader.domain.types import DomainError


def _votes(rows: list[tuple[str, str, float | None, str | None]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "symbol": [r[0] for r in rows],
            "agent": [r[1] for r in rows],
            "ts": [0] * len(rows),
            "probability": [r[2] for r in rows],
            "confidence": [None if r[2] is None else 0.5 for r in rows],
            "reasons": [[] for _ in rows],
            "abstain_reason": [r[3] for r in rows],
        },
        schema=VOTE_SCHEMA,
    )


def test_abstention_adds_exactly_nothing_to_the_matrix() -> None:
    # Given agent b abstains on coin x and votes 0.5 on coin y
    votes = _votes(
        [
            ("x", "a", 0.8, None),
            ("x", "b", None, "no data"),
            ("y", "a", 0.8, None),
            ("y", "b", 0.5, None),
        ]
    )
    keys, x = agent_matrix(votes, ["a", "b"])
    # Then x's b columns are both 0 (no logit, not voted); y's b voted with logit 0
    assert keys["symbol"].to_list() == ["x", "y"]
    assert x[0].tolist() == pytest.approx([np.log(4), 1.0, 0.0, 0.0])
    assert x[1].tolist() == pytest.approx([np.log(4), 1.0, 0.0, 1.0])


def test_ensemble_abstains_only_when_every_agent_abstains() -> None:
    model = EnsembleModel(
        Stacker(("a", "b"), 0.0, (1.0, 1.0), (0.0, 0.0)), PlattCalibrator(1.0, 0.0), "t"
    )
    votes = _votes(
        [
            ("x", "a", None, "short history"),
            ("x", "b", None, "no funding"),
            ("y", "a", 0.8, None),
            ("y", "b", None, "no funding"),
        ]
    )
    out = ensemble_votes(votes, model).sort("symbol")
    x, y = out.row(0, named=True), out.row(1, named=True)
    assert x["probability"] is None and "all agents abstained" in x["abstain_reason"]
    assert "short history" in x["abstain_reason"]
    # y: only a voted → sigmoid(logit 0.8) = 0.8, confidence = max(p, 1-p)
    assert y["probability"] == pytest.approx(0.8)
    assert y["confidence"] == pytest.approx(0.8)
    assert y["abstain_reason"] is None
    assert out.schema == pl.Schema(VOTE_SCHEMA)


def test_logistic_recovers_a_known_relation() -> None:
    # Given outcomes drawn with P(y=1) = sigmoid(2x - 1) (seeded)
    rng = np.random.default_rng(0)
    x = rng.normal(size=20_000)
    y = (rng.random(20_000) < 1 / (1 + np.exp(-(2 * x - 1)))).astype(float)
    beta = fit_logistic(x[:, None], y, l2=0.0)
    assert beta == pytest.approx([-1.0, 2.0], abs=0.08)


def test_isotonic_calibration_is_monotone_and_matches_bin_rates() -> None:
    # Given scores 0..3 whose hit rates are 0, 0.5, 0.25 (a violation), 1 with 4 rows each
    score = np.repeat([0.0, 1.0, 2.0, 3.0], 4)
    y = np.array([0, 0, 0, 0, 1, 1, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1], dtype=float)
    cal = fit_calibrator(np.tile(score, 4), np.tile(y, 4), "isotonic", bins=4)
    assert isinstance(cal, IsotonicCalibrator)
    # Then the violating pair pools to (0.5 + 0.25) / 2
    assert list(cal.knots_y) == pytest.approx([0.0, 0.375, 0.375, 1.0])


def test_calibration_refuses_single_class() -> None:
    with pytest.raises(DomainError, match="both outcomes"):
        fit_calibrator(np.arange(100.0), np.ones(100))


def test_walk_forward_calibration_uses_only_out_of_sample_rows() -> None:
    # Given 400 daily rows with 10-day labels, agent a informative; folds of 100 days from day 100
    rng = np.random.default_rng(1)
    n = 400
    p = rng.uniform(0.05, 0.95, n)
    y = (rng.random(n) < p).astype(float)
    x = np.column_stack([np.log(p / (1 - p)), np.ones(n)])
    day = np.arange(n, dtype=np.int64)
    fit = fit_ensemble_walk_forward(
        ["a"],
        x,
        y,
        day,
        day + 10,
        walk_forward_folds(100, n - 1, 100),
        embargo_days=2,
        target="t",
    )
    # Then no row before the first test block has an OOS probability, and later ones do
    assert np.isnan(fit.oos_probability[:100]).all()
    assert np.isfinite(fit.oos_probability[100:]).all()
    assert fit.oos_rows == 300
    # And the stacked weight on a is positive (informative agent)
    assert fit.model.stacker.weights[0] > 0.5


def test_model_round_trips_through_a_dict() -> None:
    model = EnsembleModel(
        Stacker(("a",), 0.1, (0.9,), (-0.2,)), IsotonicCalibrator((0.0, 1.0), (0.1, 0.7)), "t"
    )
    again = EnsembleModel.from_dict(model.to_dict())
    x = np.array([[0.3, 1.0], [0.0, 0.0]])
    assert again.predict(x).tolist() == model.predict(x).tolist()


def test_the_fitted_stacker_records_the_rows_each_agent_voted_on() -> None:
    # Given rows where agent a votes on every row and agent b (never voting) abstains
    rng = np.random.default_rng(3)
    p = rng.uniform(0.05, 0.95, 400)
    y = (rng.uniform(size=400) < p).astype(np.float64)
    x = np.column_stack([np.log(p / (1 - p)), np.ones(400), np.zeros(400), np.zeros(400)])
    x[:50, :2] = 0.0  # a abstains on the first 50
    # When the stacker is fitted
    stacker = fit_stacker(("a", "b"), x, y)
    # Then it says what it learned from: b's zero weight is "never voted", not "no skill"
    assert stacker.training_rows == 400
    assert stacker.voted_rows == (350, 0)
    assert stacker.weights[1] == 0.0
    doc = EnsembleModel(stacker, PlattCalibrator(1.0, 0.0), "t").to_dict()
    assert doc["training_rows"] == 400 and doc["voted_rows"] == [350, 0]
    assert EnsembleModel.from_dict(doc).stacker == stacker
    # And a document written before the counts existed still loads (without them)
    del doc["training_rows"], doc["voted_rows"]
    assert EnsembleModel.from_dict(doc).stacker.voted_rows == ()
