"""Benchmark: the evaluation's history replay (quality gate and agents on every decision day).

`cst evaluate` replays the scan on every decision day: the members' window, the quality gate,
then the technical and early-mover agents. The agents now compute each series once over all
its bars (``domain/agents/series_votes.py``) and read each decision day's values; the gate
still judges each day's window.

Reference, in the same process on the same real data and decision days: the previous replay,
copied here unchanged (``_per_day_replay``): per decision day, the agents recomputed every
indicator over that day's 260-day window. Both are timed in CPU seconds (``process_time``: the
machine is shared, wall time is no guide) and the ratio reference / new is printed, with how far
the two paths' probabilities are apart (exponential moving averages read the whole series
instead of the window: the window seed's remaining weight, about 1e-8).

    uv run python bench/bench_replay.py [--data DIR] [--first-decision 2016-01-01]
        [--end 2023-06-29] [--step-days 7]

Defaults: the decision days of docs/ml.md's `cst evaluate` (weekly, 2016-01-01 .. 2023-06-29).
No asserts on timing: numbers depend on the machine and its load (printed beside them).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl

from cryptosmarttrader.adapters.pit_membership import load_pit_membership
from cryptosmarttrader.adapters.recorded_data import RecordedMarketData
from cryptosmarttrader.domain.agents.early_mover import early_mover_votes
from cryptosmarttrader.domain.agents.technical import technical_votes
from cryptosmarttrader.domain.market import DAY_MS
from cryptosmarttrader.domain.quality import check_daily
from cryptosmarttrader.domain.series_breaks import cut_series
from cryptosmarttrader.services.skill_evaluation import _day, _replay, _universe
from cryptosmarttrader.wiring import excluded_coins, resolve_data_dir

LOOKBACK_DAYS = 260  # SkillConfig.lookback_days
TOP_N = 200


def _per_day_replay(
    frame: pl.DataFrame, universe: pl.DataFrame, days: list[int], lookback: int
) -> pl.DataFrame:
    """The previous replay (services/skill_evaluation.py before the agents ran once per series),
    unchanged but for the exclusion counts it also returned."""
    by_ts = frame.sort("ts")
    ts = by_ts["ts"]
    members = universe.filter(pl.col("symbol").is_not_null()).group_by("day").agg("symbol")
    member_map = dict(zip(members["day"].to_list(), members["symbol"].to_list(), strict=True))
    out: list[pl.DataFrame] = []
    cols = ["symbol", "ts", "close", "volume", "market_cap"]
    for day in days:  # one step per decision day, vectorized over the universe
        names = member_map.get(day)
        if not names:
            continue
        asof_ms = day * DAY_MS
        lo = int(ts.search_sorted((day - lookback) * DAY_MS, side="right"))
        hi = int(ts.search_sorted(asof_ms + DAY_MS - 1, side="right"))
        window = (
            by_ts.slice(lo, hi - lo)
            .filter(pl.col("symbol").is_in(names))
            .filter(pl.col("segment") == pl.col("segment").max().over("symbol"))
        )
        if window.is_empty():
            continue
        clean = check_daily(window.select(cols).sort("symbol", "ts"), asof_ms).clean
        today = clean.filter(pl.col("ts") // DAY_MS == day).select("symbol")
        if today.is_empty():
            continue
        votes = pl.concat(
            [technical_votes(clean, asof_ms), early_mover_votes(clean, asof_ms)]
        ).filter((pl.col("ts") // DAY_MS == day) & pl.col("abstain_reason").is_null())
        wide = (
            votes.select("symbol", "agent", "probability").pivot(
                on="agent", index="symbol", values="probability", aggregate_function="first"
            )
            if votes.height
            else pl.DataFrame(schema={"symbol": pl.String()})
        )
        for agent in ("technical", "early_mover"):
            if agent not in wide.columns:
                wide = wide.with_columns(pl.lit(None, pl.Float64).alias(agent))
        out.append(
            today.join(wide, on="symbol", how="left").select(
                pl.lit(day, pl.Int64).alias("day"),
                "symbol",
                pl.col("technical").cast(pl.Float64).alias("p_technical"),
                pl.col("early_mover").cast(pl.Float64).alias("p_early_mover"),
            )
        )
    return pl.concat(out).sort("day", "symbol")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--first-decision", type=date.fromisoformat, default=date(2016, 1, 1))
    parser.add_argument("--end", type=date.fromisoformat, default=date(2023, 6, 29))
    parser.add_argument("--step-days", type=int, default=7)
    args = parser.parse_args()
    data_dir = resolve_data_dir(args.data)
    market = RecordedMarketData(data_dir)
    first, end = _day(args.first_decision), _day(args.end)
    asof = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(days=end)
    history = market.daily_universe(asof, end - first + LOOKBACK_DAYS + 1).filter(
        ~pl.col("symbol").is_in(list(excluded_coins(market)))
    )
    frame = cut_series(history).frame
    days = list(range(first, end + 1, args.step_days))
    universe = _universe(frame, load_pit_membership(data_dir), days, TOP_N)

    c0 = time.process_time()
    reference = _per_day_replay(frame, universe, days, LOOKBACK_DAYS)
    ref_cpu = time.process_time() - c0
    c1 = time.process_time()
    rows, _ = _replay(frame, universe, days, LOOKBACK_DAYS)
    new_cpu = time.process_time() - c1

    both = reference.join(rows, on=["day", "symbol"], how="full", suffix="_new")
    apart = {}
    for p in ("p_technical", "p_early_mover"):
        diff = both.select((pl.col(p) - pl.col(f"{p}_new")).abs().max()).item()
        nulls = both.filter(pl.col(p).is_null() != pl.col(f"{p}_new").is_null()).height
        apart[p] = f"max |difference| {diff:.2e}, vote in one path only: {nulls}"
    print(
        f"replay of {len(days)} decision days ({args.first_decision}..{args.end}, every "
        f"{args.step_days} days), {frame['symbol'].n_unique()} coins, {rows.height} rows "
        f"({reference.height} in the reference)"
    )
    print(f"  reference, agents per decision day on its window: {ref_cpu:.1f} s CPU")
    print(f"  agents once per series, read per decision day:     {new_cpu:.1f} s CPU")
    print(f"  ratio reference / new: {ref_cpu / new_cpu:.1f}x CPU")
    for p, text in apart.items():
        print(f"  {p}: {text}")
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
        f"load average {os.getloadavg()[0]:.1f} at the end"
    )


if __name__ == "__main__":
    main()
