"""Benchmark: one full walk-forward evaluation over the CoinGecko universe, 2017–2023.

Replays the scan's steps (window → quality gate → every directional agent) on a weekly decision
grid from 2014-01-01, computes features and labels for every coin and day, fits the ML agent on
expanding purged folds and the calibrated ensemble, then reports 2017-07-08 .. 2023-06-30 with
a 180-day horizon (train-end 2017-06-30), including the portfolio simulations. Prints the wall
time of the whole ``evaluate`` call (data loading included) and the target: under 300 s on 2
cores.

    uv run python bench/bench_evaluate.py [--data DIR]

No asserts on timing: numbers depend on the machine (and on its load: check the load average
printed beside the figure).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from datetime import date
from pathlib import Path

from cryptosmarttrader.adapters.recorded_data import RecordedMarketData
from cryptosmarttrader.adapters.xgb_predictor import XgbTrainer
from cryptosmarttrader.domain.agents.regime import regime_timeline
from cryptosmarttrader.services.evaluate import (
    DIRECTIONAL_AGENTS,
    EvaluationConfig,
    evaluate,
    registry_agents,
)
from cryptosmarttrader.wiring import excluded_coins, resolve_data_dir

TARGET_SECONDS = 300.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None)
    args = parser.parse_args()
    market = RecordedMarketData(resolve_data_dir(args.data))
    cfg = EvaluationConfig(
        train_end=date(2017, 6, 30), start=date(2017, 7, 8), end=date(2023, 6, 30)
    )
    t0 = time.perf_counter()
    result = evaluate(
        market,
        XgbTrainer(),
        cfg,
        excluded_symbols=excluded_coins(market),
        agents=registry_agents,
        agent_names=DIRECTIONAL_AGENTS,
        regime_timeline=regime_timeline,
    )
    seconds = time.perf_counter() - t0
    data = result.summary["data"]
    load = os.getloadavg()[0]
    print(
        f"walk-forward evaluate 2017-07-08..2023-06-30 (decisions from 2014, weekly): "
        f"{seconds:.1f} s wall  [{data['coins']} coins, {data['decision_days']} decision days, "
        f"{data['test_rows']} reported rows]  target < {TARGET_SECONDS:.0f} s: "
        f"{'OK' if seconds < TARGET_SECONDS else 'MISSED'}"
    )
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
        f"load average {load:.1f} at the end"
    )


if __name__ == "__main__":
    main()
