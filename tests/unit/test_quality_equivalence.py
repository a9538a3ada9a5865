"""The gate's small-window fast paths change nothing: on every shared candle, on many random
windows of real data and on damaged copies of them (NaN, null, infinite values, gaps,
duplicates, OHLC violations, zero and negative volume, stale closes, spikes, off-grid and
implausible timestamps, rows out of order, symbols out of order), the gate returns exactly the
findings (codes, severities, counts, first bars, reasons), exclusions and rows of the previous
implementation, kept as the reference in tests/support/quality_reference.py."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from pydantic import ValidationError

from cryptosmarttrader.adapters.recorded_data import RecordedMarketData
from cryptosmarttrader.domain.quality import (
    QualityConfig,
    QualityResult,
    check_daily,
    check_ohlcv,
)
from tests.support import quality_reference as reference

pytestmark = pytest.mark.realdata

WINDOWS = 400  # random windows per source
CONFIGS = (QualityConfig(), QualityConfig(min_bars=5, max_lag_bars=1, max_spikes=0))


@pytest.fixture(scope="module")
def market(data_dir: Path) -> RecordedMarketData:
    return RecordedMarketData(data_dir)


def assert_same(new: QualityResult, old: QualityResult) -> None:
    assert new.findings == old.findings
    assert [f.reason for f in new.findings] == [f.reason for f in old.findings]
    assert new.excluded == old.excluded
    assert new.checked_symbols == old.checked_symbols
    assert new.checked_rows == old.checked_rows
    assert_frame_equal(new.clean, old.clean, check_exact=True)


def both(frame: pl.DataFrame, tf: str, asof: int, cfg: QualityConfig) -> QualityResult | None:
    """The gate's result, checked against the reference's on the same input (or None when
    both refuse the input with the same error)."""
    gate: Callable[..., QualityResult]
    if tf == "daily":
        gate, ref, args = check_daily, reference.check_daily, (frame, asof, cfg)
    else:
        gate, ref, args = check_ohlcv, reference.check_ohlcv, (frame, tf, asof, cfg)
    try:  # a null symbol cannot name a finding: the reference refuses such a frame
        old: QualityResult | ValidationError = ref(*args)
    except ValidationError as refused:
        old = refused
    if isinstance(old, ValidationError):
        with pytest.raises(ValidationError) as caught:
            gate(*args)
        assert str(caught.value) == str(old)
        return None
    new = gate(*args)
    assert_same(new, old)
    return new


def test_every_shared_candle_gets_the_same_verdict(market: RecordedMarketData) -> None:
    frames = [("daily", market.daily_all())]
    frames += [(tf, market.ohlcv_all(tf)) for tf in ("1d", "4h", "1h")]
    for tf, frame in frames:
        asof = frame["ts"].max()
        assert isinstance(asof, int)
        result = both(frame, tf, asof, CONFIGS[0])
        assert result is not None
        assert result.checked_rows == frame.height > 1000


# --- damage: each takes a window and a random source, returns a damaged copy --------------


def _rows(frame: pl.DataFrame, rng: random.Random, k: int = 3) -> list[int]:
    return rng.sample(range(frame.height), min(k, frame.height))


def _set(frame: pl.DataFrame, column: str, rows: list[int], value: float | None) -> pl.DataFrame:
    values = frame[column].to_list()
    for i in rows:
        values[i] = value
    return frame.with_columns(pl.Series(column, values, dtype=frame.schema[column]))


def nan_price(frame: pl.DataFrame, rng: random.Random) -> pl.DataFrame:
    column = rng.choice([c for c in ("open", "high", "low", "close") if c in frame.columns])
    return _set(frame, column, _rows(frame, rng), float("nan"))


def null_price(frame: pl.DataFrame, rng: random.Random) -> pl.DataFrame:
    column = rng.choice([c for c in ("open", "high", "low", "close") if c in frame.columns])
    return _set(frame, column, _rows(frame, rng, 2), None)


def infinite(frame: pl.DataFrame, rng: random.Random) -> pl.DataFrame:
    column = rng.choice([c for c in frame.columns if c not in ("symbol", "ts")])
    return _set(frame, column, _rows(frame, rng, 1), rng.choice([float("inf"), -float("inf")]))


def zero_volume(frame: pl.DataFrame, rng: random.Random) -> pl.DataFrame:
    return _set(frame, "volume", _rows(frame, rng, rng.randint(1, 6)), 0.0)


def negative(frame: pl.DataFrame, rng: random.Random) -> pl.DataFrame:
    column = rng.choice(["volume", "close"])
    return _set(frame, column, _rows(frame, rng, 1), rng.choice([-1.0, 0.0]))


def ohlc_violation(frame: pl.DataFrame, rng: random.Random) -> pl.DataFrame:
    if "high" not in frame.columns:
        return frame
    rows = _rows(frame, rng, 2)
    flip = pl.Series([i in rows for i in range(frame.height)])
    return frame.with_columns(
        high=pl.when(flip).then(pl.col("low")).otherwise(pl.col("high")),
        low=pl.when(flip).then(pl.col("high")).otherwise(pl.col("low")),
    )


def gaps(frame: pl.DataFrame, rng: random.Random) -> pl.DataFrame:
    start = rng.randrange(frame.height)
    keep = [i < start or i >= start + rng.randint(1, 8) for i in range(frame.height)]
    return frame.filter(pl.Series(keep))


def duplicates(frame: pl.DataFrame, rng: random.Random) -> pl.DataFrame:
    i = rng.randrange(frame.height)
    return pl.concat([frame.head(i + 1), frame.slice(i, 1), frame.slice(i + 1)])


def stale(frame: pl.DataFrame, rng: random.Random) -> pl.DataFrame:
    start, run = rng.randrange(frame.height), rng.randint(2, 14)
    closes = frame["close"].to_list()
    for i in range(start + 1, min(start + run, frame.height)):
        closes[i] = closes[start]
    return frame.with_columns(pl.Series("close", closes, dtype=pl.Float64))


def spikes(frame: pl.DataFrame, rng: random.Random) -> pl.DataFrame:
    closes = frame["close"].to_list()
    for i in _rows(frame, rng, rng.randint(1, 3)):
        if closes[i] is not None:
            closes[i] = closes[i] * rng.choice([3.0, 0.2, 10.0])
    out = frame.with_columns(pl.Series("close", closes, dtype=pl.Float64))
    if "high" in out.columns:  # keep the candles consistent: only the spike is the damage
        out = out.with_columns(
            high=pl.max_horizontal("high", "close"), low=pl.min_horizontal("low", "close")
        )
    return out


def off_grid(frame: pl.DataFrame, rng: random.Random) -> pl.DataFrame:
    ts = frame["ts"].to_list()
    for i in _rows(frame, rng, 2):
        ts[i] += rng.choice([60_000, 14 * 60_000, 16 * 60_000, 3_600_000 + 1])
    return frame.with_columns(pl.Series("ts", ts, dtype=pl.Int64))


def bad_timestamp(frame: pl.DataFrame, rng: random.Random) -> pl.DataFrame:
    ts = frame["ts"].to_list()
    i = rng.randrange(len(ts))
    ts[i] = rng.choice([ts[i] // 1000, 5_000_000_000_000])
    return frame.with_columns(pl.Series("ts", ts, dtype=pl.Int64))


def null_timestamp(frame: pl.DataFrame, rng: random.Random) -> pl.DataFrame:
    ts = frame["ts"].to_list()
    ts[rng.randrange(len(ts))] = None
    return frame.with_columns(pl.Series("ts", ts, dtype=pl.Int64))


def shuffled(frame: pl.DataFrame, rng: random.Random) -> pl.DataFrame:
    order = list(range(frame.height))
    i = rng.randrange(frame.height)
    j = rng.randrange(frame.height)
    order[i], order[j] = order[j], order[i]
    return frame[order]


def symbols_out_of_order(frame: pl.DataFrame, rng: random.Random) -> pl.DataFrame:
    return frame.sort("symbol", descending=True, maintain_order=True)


def null_symbol(frame: pl.DataFrame, rng: random.Random) -> pl.DataFrame:
    symbols: list[str | None] = frame["symbol"].to_list()
    symbols[rng.randrange(len(symbols))] = None
    return frame.with_columns(pl.Series("symbol", symbols, dtype=pl.String))


def extra_column(frame: pl.DataFrame, rng: random.Random) -> pl.DataFrame:
    return frame.with_columns(extra=pl.lit(1)).select(["extra", *reversed(frame.columns)])


DAMAGE: tuple[Callable[[pl.DataFrame, random.Random], pl.DataFrame], ...] = (
    nan_price,
    null_price,
    infinite,
    zero_volume,
    negative,
    ohlc_violation,
    gaps,
    duplicates,
    stale,
    spikes,
    off_grid,
    bad_timestamp,
    null_timestamp,
    shuffled,
    symbols_out_of_order,
    null_symbol,
    extra_column,
)


def windows(frame: pl.DataFrame, seed: int) -> list[tuple[pl.DataFrame, int, list[str]]]:
    """Random windows of 1 to 3 symbols, 1 to 5,000 bars, asof at or around their end, each
    damaged in 0 to 3 ways (recorded by name, for a failure message)."""
    rng = random.Random(seed)
    symbols = frame["symbol"].unique().sort().to_list()
    by_symbol = frame.partition_by("symbol", as_dict=True)
    out = []
    for _ in range(WINDOWS):
        parts = []
        for symbol in rng.sample(symbols, rng.choice([1, 1, 1, 2, 3])):
            series = by_symbol[(symbol,)]
            size = rng.choice([1, 5, 29, 30, 48, 48, 100, 400, 5000])  # 5000: above _SMALL
            start = rng.randrange(max(series.height - size, 0) + 1)
            parts.append(series.slice(start, size))
        window = pl.concat(parts).sort("symbol", maintain_order=True)
        last = window["ts"].max()
        assert isinstance(last, int)
        step = int(np.median(np.diff(window["ts"].to_numpy()))) if window.height > 1 else 1
        asof = last + rng.choice([0, 0, 0, -3 * step, 2 * step, 10 * step])
        damage = rng.sample(DAMAGE, rng.choice([0, 1, 1, 2, 3]))
        for hurt in damage:
            if window.height:
                window = hurt(window, rng)
        out.append((window, asof, [d.__name__ for d in damage]))
    return out


@pytest.mark.parametrize("tf", ["daily", "1d", "4h", "1h"])
def test_random_damaged_windows_get_the_same_verdict(market: RecordedMarketData, tf: str) -> None:
    frame = market.daily_all() if tf == "daily" else market.ohlcv_all(tf)
    seen_codes: set[str] = set()
    refused = 0
    cases = windows(frame, seed=len(tf) * 7919)
    # small windows (grouped in numpy) and larger ones (grouped by polars) are both compared
    assert sum(w.height <= 4096 for w, _, _ in cases) > WINDOWS // 2
    if tf in ("4h", "1h"):  # daily series are too short for a window of 5,000 bars
        assert sum(w.height > 4096 for w, _, _ in cases) > WINDOWS // 50
    for i, (window, asof, damage) in enumerate(cases):
        cfg = CONFIGS[i % len(CONFIGS)]
        try:
            result = both(window, tf, asof, cfg)
        except AssertionError as error:
            raise AssertionError(f"window {i} ({damage}, asof {asof}): {error}") from error
        if result is None:
            refused += 1
        else:
            seen_codes |= {f.code.value for f in result.findings}
    # the windows reach the checks they are meant to compare (not only clean series)
    expected = {"NAN", "DUPLICATE", "GAP", "STALE", "SHORT_HISTORY", "NO_RECENT_DATA"}
    expected |= {"FUTURE_TS", "MISALIGNED", "BAD_TIMESTAMP", "UNORDERED", "NON_FINITE"}
    expected |= {"ZERO_VOLUME", "NON_POSITIVE_PRICE", "SPIKE"}
    if tf != "daily":
        expected |= {"OHLC_INCONSISTENT"}
    assert expected <= seen_codes, expected - seen_codes
    assert refused < WINDOWS // 10  # a null symbol is refused by both: only a few windows


def test_daily_scan_windows_get_the_same_verdict(market: RecordedMarketData) -> None:
    # the windows the daily loop of `cst evaluate` checks: a few hundred coins, 60 days
    daily = market.daily_all()
    days = daily["ts"].unique().sort().to_numpy()
    for end in days[:: len(days) // 25]:
        end_ms = int(end)
        window = daily.filter((pl.col("ts") > end_ms - 60 * 86_400_000) & (pl.col("ts") <= end_ms))
        both(window, "daily", end_ms, CONFIGS[0])
