"""ML agent: votes from any Predictor, abstains with a reason where features are missing."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import polars as pl
import pytest

from cryptosmarttrader.domain.agents.base import VOTE_SCHEMA
from cryptosmarttrader.domain.agents.ml_predictor import ml_votes
from cryptosmarttrader.domain.features import FEATURE_COLUMNS


class FirstFeature:
    """A Predictor whose probability is its first feature (known answer)."""

    feature_names = ("ret_30d", "vol_30d")

    def predict_proba(self, features: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return features[:, 0].copy()


def _features(rows: dict[str, list[float | None]]) -> pl.DataFrame:
    n = len(rows["ret_30d"])
    base: dict[str, object] = {"symbol": [f"c{i}" for i in range(n)], "ts": [0] * n}
    base |= {c: rows.get(c, [0.1] * n) for c in FEATURE_COLUMNS}
    return pl.DataFrame(base, schema_overrides=dict.fromkeys(FEATURE_COLUMNS, pl.Float64))


def test_votes_carry_the_model_probability_and_abstain_without_core_features() -> None:
    # Given coin c0 with every feature and c1 without its 30-day return
    features = _features({"ret_30d": [0.7, None], "vol_30d": [0.1, 0.1]})
    # When the agent votes, and c2 is in the universe without a bar today
    votes = ml_votes(features, FirstFeature(), asof_ms=0, symbols=["c0", "c1", "c2"])
    by = {r["symbol"]: r for r in votes.iter_rows(named=True)}
    # Then c0 votes 0.7 with confidence max(p, 1-p); c1 and c2 abstain with their reasons
    assert by["c0"]["probability"] == pytest.approx(0.7)
    assert by["c0"]["confidence"] == pytest.approx(0.7)
    assert by["c1"]["probability"] is None
    assert "insufficient history" in by["c1"]["abstain_reason"]
    assert by["c2"]["abstain_reason"] == "no bar at the as-of date"
    assert votes.schema == pl.Schema(VOTE_SCHEMA)


@pytest.mark.parametrize("rounds", [5])
def test_xgboost_adapter_is_deterministic_and_round_trips(rounds: int) -> None:
    from cryptosmarttrader.adapters.xgb_predictor import XgbPredictor, XgbTrainer

    # Given a small fixed table (a label equal to x0 > 0)
    x = np.array([[i / 10 - 1, (i % 3) / 3] for i in range(21)], dtype=np.float64)
    y = (x[:, 0] > 0).astype(np.float64)
    names = ("ret_30d", "vol_30d")
    a = XgbTrainer(rounds=rounds, params={"min_child_weight": 1.0}).fit(x, y, names)
    b = XgbTrainer(rounds=rounds, params={"min_child_weight": 1.0}).fit(x, y, names)
    # Then two fits agree, the model ranks positives above negatives, and bytes round-trip
    assert np.array_equal(a.predict_proba(x), b.predict_proba(x))
    p = a.predict_proba(x)
    assert p[y == 1].min() > p[y == 0].max()
    again = XgbPredictor.from_bytes(a.to_bytes(), names)
    assert np.array_equal(again.predict_proba(x), p)
