"""Benchmark: the full nine-agent ensemble for every coin at one date (target p95 < 1 s).

What the scan runs when a fitted model is configured: quality gate → every directional agent +
the liquidity veto → features → ML agent (numpy trees) → stacked, calibrated ensemble. Timed over
20 dates on the real CoinGecko universe, against a reference in the same process: the same
ensemble computed one coin at a time (a speed reference only: cross-sectional features differ on a
one-coin universe).

    uv run python bench/bench_ensemble.py [--data DIR] [--model DIR]

Without --model it first fits one walk-forward (train-end 2020-06-30) and saves it to a temp dir.
No asserts on timing: it prints p50 / p95 and the ratio.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl

from cryptosmarttrader.adapters.model_bundle import load_bundle, save_bundle
from cryptosmarttrader.adapters.recorded_data import RecordedMarketData
from cryptosmarttrader.adapters.xgb_predictor import XgbPredictor, XgbTrainer
from cryptosmarttrader.domain.quality import check_daily
from cryptosmarttrader.services.evaluate import (
    DIRECTIONAL_AGENTS,
    EvaluationConfig,
    evaluate,
    registry_agents,
)
from cryptosmarttrader.services.scan import LOOKBACK_DAYS
from cryptosmarttrader.services.scoring import TrainedModel, ensemble_scan_votes
from cryptosmarttrader.wiring import excluded_coins

REPO = Path(__file__).resolve().parents[1]


def fit_model(market: RecordedMarketData, directory: Path) -> None:
    cfg = EvaluationConfig(
        train_end=date(2020, 6, 30),
        start=date(2020, 7, 15),
        end=date(2020, 8, 31),
        first_decision=date(2016, 1, 1),
        step_days=14,
    )
    result = evaluate(
        market, XgbTrainer(), cfg, excluded_symbols=excluded_coins(market),
        agents=registry_agents, agent_names=DIRECTIONAL_AGENTS,
    )  # fmt: skip
    fitted = result.fitted[cfg.primary_threshold]
    assert isinstance(fitted.ml_final, XgbPredictor)
    save_bundle(directory, fitted.ensemble, fitted.ml_final.to_bytes(),
                fitted.ml_final.feature_names, {"train_end": "2020-06-30"})  # fmt: skip


def one_date(model: TrainedModel, window: pl.DataFrame, asof_ms: int) -> pl.DataFrame:
    clean = check_daily(window, asof_ms).clean
    return ensemble_scan_votes(model, window, clean, asof_ms)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    default_data = Path(os.environ.get("CST_DATA_DIR", REPO.parent / "shared" / "data"))
    parser.add_argument("--data", type=Path, default=default_data)
    parser.add_argument("--model", type=Path, default=None)
    args = parser.parse_args()
    market = RecordedMarketData(args.data)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = args.model or Path(tmp)
        if args.model is None:
            fit_model(market, model_dir)
        model = load_bundle(model_dir)
        excluded = excluded_coins(market)
        dates = [datetime(2021, 1, 3, tzinfo=UTC) + timedelta(days=28 * i) for i in range(20)]
        times, coins = [], []
        last = None
        for asof in dates:
            window = market.daily_universe(asof, LOOKBACK_DAYS).filter(
                ~pl.col("symbol").is_in(list(excluded))
            )
            asof_ms = int(asof.timestamp() * 1000)
            started = time.perf_counter()
            votes = one_date(model, window, asof_ms)
            times.append(time.perf_counter() - started)
            coins.append(votes.height)
            last = (window, asof_ms, votes)
        p95 = sorted(times)[int(0.95 * (len(times) - 1))]
        print(f"ensemble (9 agents + ML + calibration), {min(coins)}-{max(coins)} coins, 20 dates")
        print(
            f"  p50 {statistics.median(times) * 1000:.0f} ms   p95 {p95 * 1000:.0f} ms   "
            f"target p95 < 1000 ms   ratio to target {p95:.2f}"
        )
        assert last is not None
        window, asof_ms, votes = last
        symbols = votes["symbol"].to_list()[:40]
        started = time.perf_counter()
        for s in symbols:  # speed reference: one coin at a time (cross-sectional features differ)
            one_date(model, window.filter(pl.col("symbol") == s), asof_ms)
        per_coin = (time.perf_counter() - started) / len(symbols)
        print(
            f"  per-coin loop reference: {per_coin * 1000:.0f} ms/coin -> "
            f"{per_coin * votes.height:.1f} s for the universe, "
            f"{per_coin * votes.height / statistics.median(times):.0f}x the vectorized run"
        )


if __name__ == "__main__":
    main()
