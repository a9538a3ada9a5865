"""Benchmark: the project's indicators vs TA-Lib vs plain pandas, on the same bars in one run.

RSI(14) + EMA(20) + ATR(14) + Bollinger bands(20, 2) over every shared Binance 1h bar (all pairs
in one long frame, ~950k bars), computed three ways in the same process:

* ours: ``domain.indicators.add_indicators`` on the polars frame (what the agents call), and the
  same four through the expression interface (``ind.rsi(...)`` in ``with_columns``);
* TA-Lib: the C functions called per pair on numpy arrays already split by pair (the floor);
* pandas: ``groupby().ewm()/rolling()`` with the same seeds (the usual hand-written way);
* the polars expressions the indicators were first written as (``Indicator.reference``).

It prints bars/s for each, the ratios to TA-Lib, and checks that all three agree (so the speed
comparison is between equal work).

    uv run python bench/bench_indicators.py [--data DIR] [--repeat N] [--timeframe 1h]

No asserts on timing: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import talib

from cryptosmarttrader.adapters.recorded_data import RecordedMarketData
from cryptosmarttrader.domain import indicators as ind

REPO = Path(__file__).resolve().parents[1]
SPECS = (
    ind.Rsi("close", 14, "rsi"),
    ind.Ema("close", 20, "ema"),
    ind.Atr("high", "low", "close", 14, "atr"),
    ind.Bbands("close", 20, 2.0, "bb"),
)
COLUMNS = ("rsi", "ema", "atr", "bb_upper", "bb_middle", "bb_lower")


def ours(frame: pl.DataFrame) -> dict[str, np.ndarray]:
    out = ind.add_indicators(frame, *SPECS)
    return {c: out[c].to_numpy() for c in COLUMNS}


def ours_expressions(frame: pl.DataFrame) -> dict[str, np.ndarray]:
    c = pl.col("close")
    upper, middle, lower = ind.bbands(c, 20, 2.0)
    out = frame.with_columns(
        rsi=ind.rsi(c, 14),
        ema=ind.ema(c, 20),
        atr=ind.atr(pl.col("high"), pl.col("low"), c, 14),
        bb_upper=upper,
        bb_middle=middle,
        bb_lower=lower,
    )
    return {c: out[c].to_numpy() for c in COLUMNS}


def polars_reference(frame: pl.DataFrame) -> dict[str, np.ndarray]:
    """The polars expressions the indicators were first written as (the definition)."""
    out = frame.with_columns(e for spec in SPECS for e in spec.reference("symbol"))
    return {c: out[c].to_numpy() for c in COLUMNS}


def talib_per_pair(arrays: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> dict[str, list]:
    out: dict[str, list] = {c: [] for c in COLUMNS}
    for high, low, close in arrays:
        out["rsi"].append(talib.RSI(close, 14))
        out["ema"].append(talib.EMA(close, 20))
        out["atr"].append(talib.ATR(high, low, close, 14))
        upper, middle, lower = talib.BBANDS(close, 20, 2.0, 2.0, 0)
        out["bb_upper"].append(upper)
        out["bb_middle"].append(middle)
        out["bb_lower"].append(lower)
    return out


def _seeded(x: pd.Series, period: int, alpha: float) -> pd.Series:
    """SMA-seeded exponential smoothing of one pair's series (NaN before the seed)."""
    seed = x.iloc[:period].mean()
    y = pd.concat([pd.Series([seed]), x.iloc[period:]], ignore_index=True)
    smoothed = y.ewm(alpha=alpha, adjust=False).mean().to_numpy()
    return pd.Series(np.concatenate([np.full(period - 1, np.nan), smoothed]), index=x.index)


def pandas_groupby(df: pd.DataFrame) -> dict[str, np.ndarray]:
    def per_pair(g: pd.DataFrame) -> pd.DataFrame:
        close, high, low = g["close"], g["high"], g["low"]
        change = close.diff().iloc[1:]
        up = _seeded(change.clip(lower=0), 14, 1 / 14)
        down = _seeded((-change).clip(lower=0), 14, 1 / 14)
        rsi = pd.concat([pd.Series([np.nan]), 100 * up / (up + down)], ignore_index=True)
        prev = close.shift(1)
        tr = pd.concat([high - low, (high - prev).abs(), (low - prev).abs()], axis=1).max(axis=1)
        atr = pd.concat([pd.Series([np.nan]), _seeded(tr.iloc[1:], 14, 1 / 14)], ignore_index=True)
        mid = close.rolling(20).mean()
        width = 2.0 * close.rolling(20).std(ddof=0)
        return pd.DataFrame(
            {
                "rsi": rsi.to_numpy(),
                "ema": _seeded(close, 20, 2 / 21).to_numpy(),
                "atr": atr.to_numpy(),
                "bb_upper": (mid + width).to_numpy(),
                "bb_middle": mid.to_numpy(),
                "bb_lower": (mid - width).to_numpy(),
            },
            index=g.index,
        )

    out = df.groupby("symbol", sort=False, group_keys=False)[["close", "high", "low"]].apply(
        per_pair
    )
    return {c: out[c].to_numpy() for c in COLUMNS}


def best_of(repeat: int, fn: Callable[[], object]) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data",
        type=Path,
        default=Path(os.environ.get("CST_DATA_DIR", REPO.parent / "shared" / "data")),
    )
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--timeframe", default="1h")
    args = parser.parse_args()

    frame = RecordedMarketData(args.data).ohlcv_all(args.timeframe).sort("symbol", "ts")
    bars, pairs = frame.height, frame["symbol"].n_unique()
    parts = frame.partition_by("symbol", maintain_order=True)
    arrays = [
        tuple(
            np.ascontiguousarray(p[c].to_numpy(), dtype=np.float64)
            for c in ("high", "low", "close")
        )
        for p in parts
    ]
    pdf = frame.select("symbol", "close", "high", "low").to_pandas()
    ind.add_indicators(frame.head(1000), *SPECS)  # first use imports TA-Lib: not timed

    print(
        f"{bars:,} {args.timeframe} bars, {pairs} pairs; python {platform.python_version()}, "
        f"polars {pl.__version__}, TA-Lib {talib.__version__}, pandas {pd.__version__}"
    )
    print("RSI(14) + EMA(20) + ATR(14) + BBANDS(20, 2), best of", args.repeat)

    t_ta, ta = best_of(args.repeat, lambda: talib_per_pair(arrays))
    t_ours, got = best_of(args.repeat, lambda: ours(frame))
    t_expr, got_expr = best_of(args.repeat, lambda: ours_expressions(frame))
    t_pd, got_pd = best_of(max(1, args.repeat // 2), lambda: pandas_groupby(pdf))
    t_ref, got_ref = best_of(max(1, args.repeat // 2), lambda: polars_reference(frame))

    reference = {c: np.concatenate(v) for c, v in ta.items()}  # type: ignore[union-attr]
    checks = (("ours", got), ("ours (expressions)", got_expr), ("pandas", got_pd))
    for label, result in (*checks, ("polars reference", got_ref)):
        for c in COLUMNS:
            r, e = np.asarray(result[c], dtype=np.float64), reference[c]  # type: ignore[index]
            assert (np.isnan(r) == np.isnan(e)).all(), f"{label} {c}: undefined bars differ"
            ok = ~np.isnan(e)
            np.testing.assert_allclose(r[ok], e[ok], rtol=1e-9, atol=1e-9, err_msg=f"{label} {c}")

    print(f"{'implementation':<42}{'seconds':>10}{'M bars/s':>11}{'vs TA-Lib':>11}")
    rows = [
        ("TA-Lib, per pair on numpy arrays", t_ta),
        ("ours: add_indicators on the polars frame", t_ours),
        ("ours: expressions in with_columns", t_expr),
        ("pandas groupby ewm/rolling", t_pd),
        ("polars expressions (the reference)", t_ref),
    ]
    for label, seconds in rows:
        print(f"{label:<42}{seconds:>10.4f}{bars / seconds / 1e6:>11.1f}{t_ta / seconds:>10.2f}x")
    print(
        f"ours is {t_pd / t_ours:.1f}x pandas and {t_ref / t_ours:.1f}x the polars expressions; "
        "all agree to 1e-9 on every defined bar"
    )


if __name__ == "__main__":
    main()
