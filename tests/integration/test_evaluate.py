"""The calibrated-ensemble walk-forward (``services/evaluate.py``, the legacy stacked ensemble
that ``cst evaluate --save-model`` bundles no longer produce): nothing after train-end is fitted
on. `cst evaluate` itself is tested in ``test_skill_evaluation.py``."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from cryptosmarttrader.adapters.recorded_data import RecordedMarketData
from cryptosmarttrader.adapters.xgb_predictor import XgbTrainer
from cryptosmarttrader.domain.features import FEATURE_COLUMNS
from cryptosmarttrader.services.evaluate import EvaluationConfig, evaluate

pytestmark = pytest.mark.realdata

COINS = (
    "bitcoin", "ethereum", "ripple", "litecoin", "dogecoin", "stellar", "monero", "dash",
    "nem", "tether", "ethereum-classic", "zcash", "maidsafecoin", "siacoin", "decred",
    "waves", "augur", "digibyte", "verge", "bitshares", "lisk", "factom", "steem", "golem",
)  # fmt: skip
TRAIN_END = date(2018, 6, 30)
CFG = EvaluationConfig(
    train_end=TRAIN_END,
    start=date(2018, 7, 15),
    end=date(2018, 9, 30),
    horizon_days=60,
    top_k=5,
    first_decision=date(2016, 1, 1),
    step_days=21,
    fold_days=120,
    min_train_days=180,
    lookback_days=260,
    rebalance_days=28,
)


class SliceMarket:
    """The real recorded data restricted to a few coins; optionally the future after
    ``train_end`` rewritten (prices multiplied per coin) to prove it is never fitted on."""

    def __init__(self, data_dir: Path, alter_after: date | None = None) -> None:
        self.inner = RecordedMarketData(data_dir)
        self.alter_after = alter_after

    def daily_universe(self, asof: datetime, lookback_days: int) -> pl.DataFrame:
        frame = self.inner.daily_universe(asof, lookback_days).filter(pl.col("symbol").is_in(COINS))
        if self.alter_after is None:
            return frame
        cut = int(datetime.combine(self.alter_after, datetime.min.time(), UTC).timestamp() * 1000)
        factor = 1.0 + pl.col("symbol").hash(seed=1).mod(7).cast(pl.Float64)
        return frame.with_columns(
            close=pl.when(pl.col("ts") > cut).then(pl.col("close") * factor).otherwise("close")
        )

    def ohlcv(self, symbol: str, timeframe: str, start: datetime, end: datetime) -> pl.DataFrame:
        return self.inner.ohlcv(symbol, timeframe, start, end)


def test_data_after_train_end_never_changes_the_fitted_models(data_dir: Path) -> None:
    # Given the same real slice twice, the second with every price after train-end rewritten
    trainer = XgbTrainer(rounds=40)
    honest = evaluate(SliceMarket(data_dir), trainer, CFG, excluded_symbols={"tether"})
    altered = evaluate(
        SliceMarket(data_dir, alter_after=TRAIN_END), trainer, CFG, excluded_symbols={"tether"}
    )
    # Then the ensemble weights and calibration, and the ML model, are identical
    for t in CFG.thresholds:
        a, b = honest.fitted[t], altered.fitted[t]
        assert a.ensemble.to_dict() == b.ensemble.to_dict()
        probe = np.random.default_rng(0).normal(size=(64, len(FEATURE_COLUMNS)))
        assert np.array_equal(a.ml_final.predict_proba(probe), b.ml_final.predict_proba(probe))
        assert a.fit_rows == b.fit_rows > 0
    # And the reported test results do change (the future really was different)
    assert honest.summary["baselines"] != altered.summary["baselines"]
