"""Benchmark: the polars quality gate vs a plain numpy pass and a pandas row loop.

Validates every shared candle (CoinGecko daily + Binance spot 1d/4h/1h), in one process, on the
same frames, and prints candles/second. Two yardsticks run on the same arrays in the same run:

* a plain numpy pass (every numeric column read once: finite and positive counts, the time
  steps), the memory-speed floor: the ratio says how many such passes the gate costs;
* a pandas row loop doing the gate's bar checks one row at a time; it must count the same
  flagged bars per code, so that comparison is between equal work (``--no-row-loop`` skips it).

Target: at least 10 M candles/s for the gate on the shared candles.

Small windows (what a venue read or a backtest step gates: one pair, 48 hourly candles) pay the
gate's fixed cost per call rather than its per-candle cost; the same yardstick runs on the same
windows, one call each, and the ratio says what the gate's set-up costs over one numpy pass.

    uv run python bench/bench_validate.py [--data DIR] [--repeat N] [--windows N] [--no-row-loop]

No asserts on timing: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import itertools
import math
import os
import platform
import statistics
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl

from cryptosmarttrader.adapters.recorded_data import RecordedMarketData
from cryptosmarttrader.domain.market import TIMEFRAME_MS
from cryptosmarttrader.domain.quality import (
    DEFAULT_CONFIG,
    QualityConfig,
    QualityResult,
    check_daily,
    check_ohlcv,
)

REPO = Path(__file__).resolve().parents[1]


def load(market: RecordedMarketData) -> list[tuple[str, str, pl.DataFrame]]:
    daily = market.daily_all()
    frames = [("coingecko", "1d", daily)]
    for tf in ("1d", "4h", "1h"):
        frames.append((f"binance_spot_{tf}", tf, market.ohlcv_all(tf)))
    return frames


def polars_gate(frames: list[tuple[str, str, pl.DataFrame]]) -> list[QualityResult]:
    out = []
    for source, tf, frame in frames:
        asof = int(frame["ts"].max())  # type: ignore[arg-type]
        if source == "coingecko":
            out.append(check_daily(frame, asof, source=source))
        else:
            out.append(check_ohlcv(frame, tf, asof, source=source))
    return out


def numpy_pass(frames: list[tuple[str, str, pl.DataFrame]]) -> int:
    """One plain numpy pass over the same arrays: each numeric column read once."""
    seen = 0
    for _, _, frame in frames:
        ts = frame["ts"].to_numpy()
        seen += int(np.count_nonzero(np.diff(ts) > 0))
        for name in frame.columns:
            if name not in {"symbol", "ts"}:
                values = frame[name].to_numpy()
                seen += int(np.count_nonzero(np.isfinite(values) & (values > 0)))
    return seen


def small_windows(
    frame: pl.DataFrame, count: int, size: int = 48, seed: int = 7
) -> list[tuple[pl.DataFrame, int]]:
    """``count`` windows of ``size`` consecutive candles of one pair each, with their asof."""
    rng = np.random.default_rng(seed)
    series = [s for s in frame.partition_by("symbol") if s.height >= size]
    out = []
    for i in rng.integers(0, len(series), count).tolist():
        start = int(rng.integers(0, series[i].height - size + 1))
        window = series[i].slice(start, size)
        out.append((window, int(window["ts"][-1])))
    return out


def small_window_gate(windows: list[tuple[pl.DataFrame, int]], tf: str) -> int:
    rejected = 0
    for window, asof in windows:
        rejected += bool(check_ohlcv(window, tf, asof, source="bench").excluded)
    return rejected


def pandas_row_loop(
    df: pd.DataFrame, tf_ms: int, asof: int, cfg: QualityConfig, ohlc: bool
) -> Counter[str]:
    """The same bar-level checks as the gate, one row at a time (the usual hand-written way)."""
    flagged: Counter[str] = Counter()
    for _, group in df.groupby("symbol", sort=True):
        prev_bucket: int | None = None
        prev_close: float | None = None
        run = 1
        logrets: list[float | None] = []
        columns = (
            ["ts", "open", "high", "low", "close", "volume"]
            if ohlc
            else ["ts", "close", "close", "close", "close", "volume"]
        )
        for row in group[columns].to_numpy(dtype="float64").tolist():
            ts, op, hi, lo, close, vol = int(row[0]), *row[1:]
            prices = (op, hi, lo, close) if ohlc else (close,)
            if any(math.isnan(p) for p in prices):
                flagged["NAN"] += 1
            if any(p <= 0 for p in prices):
                flagged["NON_POSITIVE_PRICE"] += 1
            if math.isnan(vol) or vol == 0:
                flagged["ZERO_VOLUME"] += 1
            elif vol < 0:
                flagged["NEGATIVE_VOLUME"] += 1
            if ohlc and (hi < max(op, close) or lo > min(op, close) or lo > hi):
                flagged["OHLC_INCONSISTENT"] += 1
            if ts % tf_ms:
                flagged["MISALIGNED"] += 1
            if ts > asof:
                flagged["FUTURE_TS"] += 1
            bucket = ts // tf_ms
            if prev_bucket is not None:
                if bucket == prev_bucket:
                    flagged["DUPLICATE"] += 1
                elif bucket - prev_bucket > 1:
                    flagged["GAP"] += bucket - prev_bucket - 1
            prev_bucket = bucket
            valid = not math.isnan(close) and close > 0
            if prev_close is not None and valid and close == prev_close:
                run += 1
                if run == cfg.stale_min_run:
                    flagged["STALE"] += run - 1
                elif run > cfg.stale_min_run:
                    flagged["STALE"] += 1
            else:
                run = 1
            logrets.append(
                math.log(close / prev_close)
                if prev_close is not None and valid and prev_close > 0
                else None
            )
            prev_close = close if valid else math.nan
        rets = [r for r in logrets if r is not None]
        if len(rets) < 2:
            continue
        med = statistics.median(rets)
        mad = statistics.median(abs(r - med) for r in rets)
        thr = max(cfg.spike_mad_k * 1.4826 * mad, cfg.spike_min_log_return)
        for r, nxt in itertools.pairwise(logrets):
            if (
                r is not None
                and nxt is not None
                and abs(r) > thr
                and abs(nxt) > thr
                and math.copysign(1, r) != math.copysign(1, nxt)
                and abs(r + nxt) <= abs(r) * cfg.spike_reversal
            ):
                flagged["SPIKE"] += 1
    return flagged


def pandas_gate(frames: list[tuple[str, str, pd.DataFrame]]) -> Counter[str]:
    total: Counter[str] = Counter()
    for source, tf, df in frames:
        asof = int(df["ts"].max())
        total += pandas_row_loop(
            df, TIMEFRAME_MS[tf], asof, DEFAULT_CONFIG, ohlc=source != "coingecko"
        )
    return total


def bar_counts(results: list[QualityResult]) -> Counter[str]:
    """Flagged bars per code (what the row loop counts), from the gate's findings."""
    per_series_codes = {"SHORT_HISTORY", "NO_RECENT_DATA"}
    total: Counter[str] = Counter()
    for r in results:
        for f in r.findings:
            if f.code.value not in per_series_codes:
                total[f.code.value] += f.count
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = os.environ.get("CST_DATA_DIR", str(REPO.parent / "shared" / "data"))
    parser.add_argument("--data", type=Path, default=Path(default))
    parser.add_argument("--repeat", type=int, default=5, help="repetitions (best of)")
    parser.add_argument("--windows", type=int, default=2000, help="small windows to gate")
    parser.add_argument("--no-row-loop", action="store_true", help="skip the pandas row loop")
    args = parser.parse_args()

    market = RecordedMarketData(args.data)
    frames = load(market)
    candles = sum(f.height for _, _, f in frames)
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"polars {pl.__version__}, pandas {pd.__version__}"
    )
    print(f"candles: {candles:,} (" + ", ".join(f"{s} {f.height:,}" for s, _, f in frames) + ")")

    polars_gate(frames)  # warm-up
    numpy_pass(frames)
    gate_times, numpy_times = [], []
    for _ in range(args.repeat):  # interleaved: machine load hits both alike
        started = time.perf_counter()
        results = polars_gate(frames)
        gate_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        numpy_pass(frames)
        numpy_times.append(time.perf_counter() - started)
    pl_time, np_time = min(gate_times), min(numpy_times)
    print(
        f"quality gate   : {pl_time:8.3f} s  {candles / pl_time:14,.0f} candles/s "
        f"(best of {args.repeat}; target 10,000,000)"
    )
    print(f"numpy pass     : {np_time:8.3f} s  {candles / np_time:14,.0f} candles/s")
    print(f"ratio          : {pl_time / np_time:8.1f}x the time of one plain numpy pass")

    hourly = next(f for s, _, f in frames if s == "binance_spot_1h")
    windows = small_windows(hourly, args.windows)
    small_frames = [("binance_spot_1h", "1h", w) for w, _ in windows]
    small_window_gate(windows, "1h")  # warm-up
    small_gate, small_numpy = [], []
    for _ in range(args.repeat):
        started = time.perf_counter()
        rejected = small_window_gate(windows, "1h")
        small_gate.append(time.perf_counter() - started)
        started = time.perf_counter()
        numpy_pass(small_frames)
        small_numpy.append(time.perf_counter() - started)
    sg_time, sn_time = min(small_gate), min(small_numpy)
    per_call = sg_time / len(windows) * 1e6
    print(f"small windows  : {len(windows):,} x 48 1h candles, one call each, {rejected} rejected")
    print(f"  quality gate : {sg_time:8.3f} s  {per_call:10.0f} µs/window")
    print(f"  numpy pass   : {sn_time:8.3f} s  {sn_time / len(windows) * 1e6:10.0f} µs/window")
    print(f"  ratio        : {sg_time / sn_time:8.1f}x the time of one plain numpy pass")
    if args.no_row_loop:
        return

    pd_frames = [(s, tf, f.to_pandas()) for s, tf, f in frames]
    started = time.perf_counter()
    loop_counts = pandas_gate(pd_frames)
    pd_time = time.perf_counter() - started

    gate_counts = bar_counts(results)
    agree = +gate_counts == +loop_counts
    print(f"pandas row loop: {pd_time:8.3f} s  {candles / pd_time:14,.0f} candles/s")
    print(f"ratio          : {pd_time / pl_time:8.1f}x faster (gate vs pandas row loop)")
    print(f"same flagged bars per code: {agree}  {dict(sorted(gate_counts.items()))}")
    if not agree:
        print(f"  row loop counted: {dict(sorted(loop_counts.items()))}")


if __name__ == "__main__":
    main()
