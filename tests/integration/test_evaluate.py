"""Walk-forward evaluation on a small real-data slice: nothing after train-end is fitted on, and
the JSON contract of `cst evaluate`."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import typer
from typer.testing import CliRunner

from cryptosmarttrader.adapters.recorded_data import RecordedMarketData
from cryptosmarttrader.adapters.xgb_predictor import XgbTrainer
from cryptosmarttrader.cli.evaluate import app as evaluate_app
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


def test_cli_json_has_the_contract(data_dir: Path, tmp_path: Path) -> None:
    # Given the CLI mounted as `cst evaluate`, on the full universe, a short reported period
    root = typer.Typer()
    root.add_typer(evaluate_app, name="evaluate")
    report = tmp_path / "report.html"
    result = CliRunner().invoke(
        root,
        [
            "evaluate", "--data", str(data_dir), "--train-end", "2017-06-30",
            "--start", "2017-07-15", "--end", "2017-09-30", "--horizon-days", "60",
            "--top-k", "5", "--step-days", "28", "--first-decision", "2015-01-01", "--fold-days", "56", "--json", "--report", str(report),
        ],
    )  # fmt: skip
    # Then it succeeds and the JSON carries every required figure
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    for key in ("precision_at_k", "lift", "base_rate", "auc", "brier", "ece"):
        assert set(out[key]) == {"gain_100", "gain_500"}
    for name in ("btc_buy_hold", "equal_weight", "momentum_90d"):
        assert {"total_return", "max_drawdown", "sharpe"} <= set(out["baselines"][name])
    assert {"total_return", "max_drawdown", "sharpe"} <= set(out["portfolio"]["top_k"])
    assert "survivorship" in out["data"]["survivorship_bias"].lower()
    assert 0 <= out["base_rate"]["gain_100"] <= 1
    assert "<html" in report.read_text(encoding="utf-8").lower()


def test_cli_refuses_a_start_inside_the_training_period(data_dir: Path) -> None:
    root = typer.Typer()
    root.add_typer(evaluate_app, name="evaluate")
    result = CliRunner().invoke(
        root,
        ["evaluate", "--data", str(data_dir), "--train-end", "2020-01-01",
         "--start", "2019-06-01", "--end", "2019-12-31"],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "embargo" in result.output
