"""In-process inference for the whole universe: p50/p95 of one call, vs per-row prediction.

Real data: the CoinGecko universe (stablecoins and wrapped tokens removed) on 2023-06-01, features
from the feature module, a real model trained with ml/train.py's walk-forward on bars up to
2019-06-30 (200 rounds, depth 4). Timed: the numpy tree evaluator the Lambdas use and xgboost in
process, each predicting the whole universe in one call; reference: xgboost called once per coin
(what a per-symbol loop or one endpoint request per coin would do).

    uv run python bench/bench_inference.py [--data DIR] [--repeats 50]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import polars as pl

from cryptosmarttrader.adapters.recorded_data import RecordedMarketData
from cryptosmarttrader.adapters.sagemaker_predictor import TreeEnsemblePredictor
from cryptosmarttrader.adapters.xgb_predictor import XgbPredictor, XgbTrainer
from cryptosmarttrader.domain.agents.ml_predictor import feature_matrix
from cryptosmarttrader.domain.features import FEATURE_COLUMNS, features_at
from cryptosmarttrader.services.model_lifecycle import TrainConfig, train_walk_forward
from cryptosmarttrader.wiring import excluded_coins, resolve_data_dir

ASOF = date(2023, 6, 1)  # the largest universe in the data
TRAIN_END = date(2019, 6, 30)


def _ms(d: date) -> int:
    return int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()) * 1000


def timings(fn: Callable[[], object], repeats: int) -> np.ndarray:
    fn()  # warm-up
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return np.asarray(out)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", type=Path, default=None)
    p.add_argument("--repeats", type=int, default=50)
    args = p.parse_args()
    market = RecordedMarketData(resolve_data_dir(args.data))
    daily = market.daily_all().filter(~pl.col("symbol").is_in(list(excluded_coins(market))))
    cfg = TrainConfig(train_end=TRAIN_END, first_day=date(2017, 6, 1))
    model = train_walk_forward(
        daily.filter(pl.col("ts") <= _ms(TRAIN_END)), cfg, XgbTrainer(rounds=200),
        feature_hash="0" * 64, git_commit="bench", created_at=datetime.now(tz=UTC),
    ).predictor  # fmt: skip
    assert isinstance(model, XgbPredictor)
    numpy_model = TreeEnsemblePredictor.from_bytes(model.to_bytes(), FEATURE_COLUMNS)
    window = daily.filter(
        (pl.col("ts") > _ms(ASOF) - 260 * 86_400_000) & (pl.col("ts") <= _ms(ASOF))
    )
    x = feature_matrix(features_at(window, _ms(ASOF)), FEATURE_COLUMNS)
    n = x.shape[0]
    rows = [x[i : i + 1] for i in range(n)]
    results = {
        "numpy trees, whole universe (Lambda)": timings(
            lambda: numpy_model.predict_proba(x), args.repeats
        ),
        "xgboost, whole universe": timings(lambda: model.predict_proba(x), args.repeats),
        "xgboost, one call per coin (reference)": timings(
            lambda: [model.predict_proba(r) for r in rows], max(5, args.repeats // 10)
        ),
    }
    ref = float(np.percentile(results["xgboost, one call per coin (reference)"], 95))
    print(f"universe {n} coins on {ASOF}, {len(FEATURE_COLUMNS)} features, 200 trees depth 4")
    for name, ms in results.items():
        p95 = float(np.percentile(ms, 95))
        print(f"{name:42s} p50 {np.percentile(ms, 50):8.2f} ms  p95 {p95:8.2f} ms  "
              f"reference/this {ref / p95:6.1f}x")  # fmt: skip
    diff = np.max(np.abs(numpy_model.predict_proba(x) - model.predict_proba(x)))
    print(f"max |numpy - xgboost| = {diff:.2e}; p95 budget 200 ms")


if __name__ == "__main__":
    main()
