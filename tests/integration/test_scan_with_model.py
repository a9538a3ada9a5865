"""The scan with the calibrated ensemble: fitted walk-forward on real data, saved as a bundle,
served with the numpy tree evaluator, gating BUYs on calibrated probability >= 0.8."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from cryptosmarttrader.adapters.model_bundle import (
    BOOSTER_FILE,
    ModelBundleError,
    load_bundle,
    save_bundle,
)
from cryptosmarttrader.adapters.recorded_data import RecordedMarketData
from cryptosmarttrader.adapters.system_clock import SystemClock
from cryptosmarttrader.adapters.xgb_predictor import XgbPredictor, XgbTrainer
from cryptosmarttrader.cli import app
from cryptosmarttrader.domain.features import FEATURE_COLUMNS, feature_frame
from cryptosmarttrader.services.evaluate import (
    DIRECTIONAL_AGENTS,
    EvaluationConfig,
    evaluate,
    registry_agents,
)
from cryptosmarttrader.services.scan import TECHNICAL_ONLY
from cryptosmarttrader.settings import TradingSettings
from cryptosmarttrader.wiring import excluded_coins, recorded_analyzer

pytestmark = [pytest.mark.realdata, pytest.mark.slow]
TRAIN_END = date(2020, 6, 30)


@pytest.fixture(scope="module")
def bundle(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Given an ensemble and ML agent fitted walk-forward on data up to 2020-06-30 only
    market = RecordedMarketData(data_dir)
    cfg = EvaluationConfig(
        train_end=TRAIN_END,
        start=date(2020, 7, 15),
        end=date(2020, 8, 31),
        first_decision=date(2016, 1, 1),
        step_days=14,
    )
    result = evaluate(
        market,
        XgbTrainer(),
        cfg,
        excluded_symbols=excluded_coins(market),
        agents=registry_agents,
        agent_names=DIRECTIONAL_AGENTS,
    )
    fitted = result.fitted[cfg.primary_threshold]
    assert isinstance(fitted.ml_final, XgbPredictor)
    directory = tmp_path_factory.mktemp("model")
    save_bundle(
        directory,
        fitted.ensemble,
        fitted.ml_final.to_bytes(),
        fitted.ml_final.feature_names,
        {"train_end": TRAIN_END.isoformat(), "calibration": cfg.calibration},
    )
    return directory


def test_served_trees_equal_xgboost_on_real_features(bundle: Path, data_dir: Path) -> None:
    model = load_bundle(bundle)
    raw = (bundle / BOOSTER_FILE).read_bytes()
    xgb_model = XgbPredictor.from_bytes(raw, tuple(model.predictor.feature_names))
    asof = datetime(2021, 3, 1, tzinfo=UTC)
    window = RecordedMarketData(data_dir).daily_universe(asof, 260)
    feats = feature_frame(window).filter(pl.col("ts") == pl.col("ts").max())
    x = feats.select(pl.col(c).fill_null(np.nan) for c in FEATURE_COLUMNS).to_numpy()
    assert x.shape[0] > 100
    np.testing.assert_allclose(
        model.predictor.predict_proba(x), xgb_model.predict_proba(x), atol=1e-6
    )


def test_scan_with_the_model_gates_on_calibrated_probability(bundle: Path, data_dir: Path) -> None:
    # When the scan runs with the fitted model on a later date
    model = load_bundle(bundle)
    analyzer = recorded_analyzer(data_dir, SystemClock(), TradingSettings(), model)
    analysis = analyzer.analyze(datetime(2021, 3, 1, tzinfo=UTC), 30)
    # Then the decisions rest on the ensemble, every vote states its calibrated probability,
    # and a BUY needs calibrated P >= 0.8
    assert analysis.decision_basis.startswith("ensemble fitted to 2020-06-30")
    voted = [s for s in analysis.ranked if s.score is not None]
    assert voted
    assert all(s.reasons[0].startswith("calibrated P(gain >= 100% within 180 days)") for s in voted)
    assert all(s.score >= 0.8 for s in analysis.ranked if s.action.value == "buy")
    assert all(0.0 <= s.score <= 1.0 for s in voted)


def test_cli_scan_with_model_and_a_damaged_bundle(
    bundle: Path, data_dir: Path, tmp_path: Path
) -> None:
    runner = CliRunner()
    args = ["scan", "--data", str(data_dir), "--asof", "2021-03-01", "--json", "--top", "5"]
    ok = runner.invoke(app, [*args, "--model", str(bundle), "--state-dir", str(tmp_path / "a")])
    assert ok.exit_code == 0, ok.stderr
    rows = json.loads(ok.stdout)["rows"]
    assert all(r["reasons"][0].startswith("calibrated P(") for r in rows if r["score"] is not None)
    # Given a bundle whose booster file is truncated
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    for name in ("ensemble.json", BOOSTER_FILE):
        (damaged / name).write_bytes((bundle / name).read_bytes())
    (damaged / BOOSTER_FILE).write_bytes((bundle / BOOSTER_FILE).read_bytes()[:500])
    bad = runner.invoke(app, [*args, "--model", str(damaged), "--state-dir", str(tmp_path / "b")])
    # Then one clear line names the file, and nothing is written
    assert bad.exit_code != 0
    assert "damaged model bundle" in bad.stderr or "booster" in bad.stderr
    assert not (tmp_path / "b").exists()
    with pytest.raises(ModelBundleError, match="model file missing"):
        load_bundle(tmp_path / "nowhere")


def test_without_a_model_the_scan_says_it_is_uncalibrated(data_dir: Path) -> None:
    analyzer = recorded_analyzer(data_dir, SystemClock(), TradingSettings())
    analysis = analyzer.analyze(datetime(2021, 3, 1, tzinfo=UTC), 5)
    assert analysis.decision_basis == TECHNICAL_ONLY
