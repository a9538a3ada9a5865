"""Benchmark: `cst scan` over the full CoinGecko universe for one date (target: under 5 s).

Times, in one process on the same data:
  * the whole `cst scan --json` command (cold: first load of the 572 CSVs; then warm), through
    the CLI, embedded local AWS (moto) start, snapshot load/save included;
  * the analysis alone (quality gate + technical agent + ranking) vectorized over the universe,
    against a reference that runs the same domain code one coin at a time (a per-symbol loop),
    and checks both produce the same votes.

    uv run python bench/bench_scan.py [--data DIR] [--asof 2021-05-01] [--repeat 5]

No asserts on timing: it prints figures and ratios.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
from polars.testing import assert_frame_equal
from typer.testing import CliRunner

from cryptosmarttrader.adapters.recorded_data import RecordedMarketData
from cryptosmarttrader.cli import app
from cryptosmarttrader.domain.agents.technical import technical_votes
from cryptosmarttrader.domain.market import DAY_MS
from cryptosmarttrader.domain.quality import check_daily
from cryptosmarttrader.services.scan import LOOKBACK_DAYS

REPO = Path(__file__).resolve().parents[1]
TARGET_S = 5.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--data",
        type=Path,
        default=Path(os.environ.get("CST_DATA_DIR", REPO.parent / "shared" / "data")),
    )
    parser.add_argument("--asof", default="2021-05-01")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if not (args.data / "coingecko_daily").is_dir():
        raise SystemExit(f"real data not found at {args.data}: set CST_DATA_DIR or --data")

    runner = CliRunner()
    wall: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeat):
            started = time.perf_counter()
            result = runner.invoke(
                app,
                [
                    "scan",
                    "--data",
                    str(args.data),
                    "--asof",
                    args.asof,
                    "--json",
                    "--state-dir",
                    str(Path(tmp) / f"s{i}"),
                ],
            )
            wall.append(time.perf_counter() - started)
            if result.exit_code != 0:
                raise SystemExit(f"cst scan failed: {result.stderr}")
    print(f"cst scan --asof {args.asof} (all CoinGecko coins, 20 rows, fresh local AWS each run)")
    print(
        f"  cold (first run, CSVs parsed): {wall[0]:.2f} s   target < {TARGET_S:.0f} s   "
        f"ratio to target {wall[0] / TARGET_S:.2f}"
    )
    if len(wall) > 1:
        print(f"  warm median of {len(wall) - 1}: {statistics.median(wall[1:]):.2f} s")

    market = RecordedMarketData(args.data)
    asof = datetime.strptime(args.asof, "%Y-%m-%d").replace(tzinfo=UTC)
    asof_ms = int(asof.timestamp() * 1000)
    frame = market.daily_universe(asof, LOOKBACK_DAYS)

    def vectorized() -> pl.DataFrame:
        return technical_votes(check_daily(frame, asof_ms).clean, asof_ms)

    def per_symbol_loop() -> pl.DataFrame:
        clean = check_daily(frame, asof_ms).clean
        parts = [
            technical_votes(clean.filter(pl.col("symbol") == s), asof_ms)
            for s in clean["symbol"].unique().sort().to_list()
        ]
        return pl.concat(parts).sort("symbol")

    timings = {}
    outputs = {}
    for name, fn in (("vectorized", vectorized), ("per-symbol loop", per_symbol_loop)):
        runs = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            outputs[name] = fn()
            runs.append(time.perf_counter() - t)
        timings[name] = statistics.median(runs)
    try:
        assert_frame_equal(outputs["vectorized"], outputs["per-symbol loop"], rel_tol=1e-9)
        same = True
    except AssertionError:
        same = False
    coins = frame["symbol"].n_unique()
    print(
        f"analysis (quality gate + technical agent), {coins} coins, {frame.height} rows, "
        f"window {LOOKBACK_DAYS} d ending {args.asof} ({asof_ms // DAY_MS} days since epoch)"
    )
    for name, secs in timings.items():
        print(f"  {name:16s} median {secs * 1000:8.1f} ms")
    print(
        f"  speed-up of vectorized over the per-symbol loop: "
        f"{timings['per-symbol loop'] / timings['vectorized']:.1f}x   same votes (rel tol 1e-9): {same}"
    )


if __name__ == "__main__":
    main()
