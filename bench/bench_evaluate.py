"""Benchmark: one full walk-forward evaluation with the ranking model, 2016–2023.

`cst evaluate`'s whole pipeline on the CoinGecko universe and the point-in-time membership:
series cuts, the weekly history replay (window → quality gate → agents) from 2016-01-01, the
ranking features, the exit-rule outcomes, the learning-to-rank refits every quarter, the metrics
with their block-bootstrap intervals beside five trivial rankers, and the books after
volume-scaled costs — reported 2017-07-08 .. 2023-06-29 (train-end 2017-06-30). Beside it, as
the reference in the same process, the previous evaluation (stacked ensemble of agent
probabilities, ``services/evaluate.py``, its own defaults: decisions from 2014) reported over
the same period. Prints wall times and the
ratio; target: the ranking evaluation under 120 s on 2 cores.

    uv run python bench/bench_evaluate.py [--data DIR] [--no-reference]

No asserts on timing: numbers depend on the machine and its load (printed beside them).
Only timings and sizes are printed, never the figures.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from datetime import date
from pathlib import Path

from cryptosmarttrader.adapters.pit_membership import load_pit_membership
from cryptosmarttrader.adapters.recorded_data import RecordedMarketData
from cryptosmarttrader.adapters.xgb_predictor import XgbRankTrainer, XgbTrainer
from cryptosmarttrader.services.evaluate import (
    DIRECTIONAL_AGENTS,
    EvaluationConfig,
    evaluate,
    registry_agents,
)
from cryptosmarttrader.services.skill_evaluation import SkillConfig, evaluate_skill
from cryptosmarttrader.wiring import excluded_coins, resolve_data_dir

TARGET_SECONDS = 120.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--no-reference", action="store_true")
    args = parser.parse_args()
    data_dir = resolve_data_dir(args.data)
    market = RecordedMarketData(data_dir)
    market.daily_all()  # both runs read the same cached frame: time the evaluations, not I/O
    excluded = excluded_coins(market)
    cfg = SkillConfig(train_end=date(2017, 6, 30), start=date(2017, 7, 8), end=date(2023, 6, 29))
    t0, c0 = time.perf_counter(), time.process_time()
    result = evaluate_skill(
        market,
        XgbRankTrainer(),
        cfg,
        excluded_symbols=excluded,
        membership=load_pit_membership(data_dir),
    )
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    u = result.summary["universe"]
    print(
        f"ranking walk-forward 2016-01..2023-06 (reported from 2017-07-08, weekly): "
        f"{seconds:.1f} s wall, {cpu:.1f} s CPU  [{u['decision_days']} reported decision days, "
        f"{result.rows.height} scored rows, {len(result.summary['model']['refits'])} refits]  "
        f"target < {TARGET_SECONDS:.0f} s: {'OK' if seconds < TARGET_SECONDS else 'MISSED'}"
    )
    print(f"  phases (s): {result.summary['timings_s']}")
    if not args.no_reference:
        old_cfg = EvaluationConfig(
            train_end=date(2017, 6, 30),
            start=date(2017, 7, 8),
            end=date(2023, 6, 29),
        )
        t1, c1 = time.perf_counter(), time.process_time()
        evaluate(
            market,
            XgbTrainer(),
            old_cfg,
            excluded_symbols=excluded,
            agents=registry_agents,
            agent_names=DIRECTIONAL_AGENTS,
        )
        ref, ref_cpu = time.perf_counter() - t1, time.process_time() - c1
        print(
            f"reference: previous stacked-ensemble evaluation, same reported period: "
            f"{ref:.1f} s wall, {ref_cpu:.1f} s CPU; ratio reference / ranking = "
            f"{ref / seconds:.2f}x wall, {ref_cpu / cpu:.2f}x CPU"
        )
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
        f"load average {os.getloadavg()[0]:.1f} at the end"
    )


if __name__ == "__main__":
    main()
