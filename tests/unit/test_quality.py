"""Data-quality gate on tiny hand-written frames with known answers (pure math, no market data)."""

from __future__ import annotations

import math

import polars as pl
import pytest

from cryptosmarttrader.domain.market import DAILY_SCHEMA, DAY_MS, OHLCV_SCHEMA
from cryptosmarttrader.domain.quality import (
    QualityCode,
    QualityConfig,
    QualityResult,
    Severity,
    check_daily,
    check_ohlcv,
)
from cryptosmarttrader.domain.types import DomainError

T0 = 1_600_000_000_000 // DAY_MS * DAY_MS
H = 3_600_000
SMALL = QualityConfig(min_bars=3, max_lag_bars=1)


def daily(
    symbol: str,
    closes: list[float | None],
    *,
    ts: list[int] | None = None,
    volume: list[float | None] | None = None,
) -> pl.DataFrame:
    n = len(closes)
    return pl.DataFrame(
        {
            "symbol": [symbol] * n,
            "ts": ts if ts is not None else [T0 + i * DAY_MS for i in range(n)],
            "close": closes,
            "volume": volume if volume is not None else [1.0] * n,
            "market_cap": [1.0] * n,
        },
        schema=DAILY_SCHEMA,
    )


def asof_of(frame: pl.DataFrame) -> int:
    last = frame["ts"].max()
    assert isinstance(last, int)
    return last


def codes(result: QualityResult, symbol: str = "a") -> dict[str, tuple[str, int]]:
    return {
        f.code.value: (f.severity.value, f.count) for f in result.findings if f.symbol == symbol
    }


RISING = [10.0, 10.5, 10.2, 10.8, 11.0, 10.9, 11.3, 11.1, 11.6, 11.4]


def test_clean_series_has_no_findings_and_is_returned_unchanged() -> None:
    # Given a series without any defect
    frame = daily("a", RISING)
    # When it is checked
    result = check_daily(frame, asof_of(frame), SMALL)
    # Then nothing is found and the rows come back untouched
    assert result.findings == []
    assert result.excluded == {}
    assert result.clean.equals(frame)


def test_gap_counts_missing_bars_and_short_hole_is_a_warning() -> None:
    # Given day 3 is missing (one hole of one bar in ten)
    ts = [T0 + i * DAY_MS for i in (0, 1, 2, 4, 5, 6, 7, 8, 9, 10)]
    frame = daily("a", RISING, ts=ts)
    # When checked with a 10 % missing-fraction allowance
    result = check_daily(
        frame, asof_of(frame), SMALL.model_copy(update={"max_missing_fraction": 0.1})
    )
    # Then one missing bar is reported as a warning starting at the bar after the hole
    gap = next(f for f in result.findings if f.code is QualityCode.GAP)
    assert (gap.severity, gap.count, gap.first_ts) == (Severity.WARNING, 1, T0 + 4 * DAY_MS)
    assert result.excluded == {}


def test_long_hole_excludes_the_series() -> None:
    # Given a hole of 5 missing days, longer than max_gap_bars=3
    ts = [T0 + i * DAY_MS for i in (0, 1, 2, 8, 9, 10, 11, 12, 13, 14)]
    frame = daily("a", RISING, ts=ts)
    result = check_daily(frame, asof_of(frame), SMALL)
    # Then the series is excluded for GAP and absent from the clean frame
    assert codes(result)["GAP"] == ("error", 5)
    assert result.excluded == {"a": ["GAP"]}
    assert result.clean.height == 0


def test_duplicate_timestamp_is_an_error() -> None:
    ts = [T0 + i * DAY_MS for i in range(10)]
    ts[5] = ts[4]
    frame = daily("a", RISING, ts=ts)
    result = check_daily(frame, asof_of(frame), SMALL)
    assert codes(result)["DUPLICATE"] == ("error", 1)
    assert "DUPLICATE" in result.excluded["a"]


def test_misaligned_bar_counts_for_its_day_and_is_only_info() -> None:
    # Given bar 4 was recorded 5 minutes late (as CoinGecko does on a few days)
    ts = [T0 + i * DAY_MS for i in range(10)]
    ts[4] += 300_000
    frame = daily("a", RISING, ts=ts)
    result = check_daily(frame, asof_of(frame), SMALL)
    # Then it is reported as info, is no gap or duplicate, and its timestamp is left unchanged
    assert codes(result) == {"MISALIGNED": ("info", 1)}
    assert result.clean["ts"].to_list() == ts


def test_stale_run_severity_depends_on_run_length() -> None:
    # Given runs of 3 and of 10 identical closes
    short = daily("a", [1.0, 2.0, 2.0, 2.0, 3.0, 3.5, 3.2, 3.1, 3.3, 3.4, 3.6, 3.5])
    long = daily("b", [1.0] + [2.0] * 10 + [2.5])
    frame = pl.concat([short, long])
    result = check_daily(frame, asof_of(frame), SMALL)
    # Then the short run warns (2 repeated closes) and the long one excludes (9 repeats)
    assert codes(result, "a") == {"STALE": ("warning", 2)}
    assert codes(result, "b") == {"STALE": ("error", 9)}
    assert result.excluded == {"b": ["STALE"]}
    assert result.clean["symbol"].unique().to_list() == ["a"]


def test_two_identical_closes_are_not_stale() -> None:
    frame = daily("a", [1.0, 1.2, 1.2, 1.3, 1.1, 1.25, 1.4, 1.3, 1.35, 1.45])
    assert check_daily(frame, asof_of(frame), SMALL).findings == []


@pytest.mark.parametrize(
    ("bad", "code"),
    [(math.nan, "NAN"), (None, "NAN"), (0.0, "NON_POSITIVE_PRICE"), (-1.0, "NON_POSITIVE_PRICE")],
)
def test_invalid_price_excludes_the_series_never_repaired(bad: float | None, code: str) -> None:
    closes: list[float | None] = list(RISING)
    closes[6] = bad
    frame = daily("a", closes)
    result = check_daily(frame, asof_of(frame), SMALL)
    assert codes(result)[code] == ("error", 1)
    assert result.excluded["a"] == [code]
    assert result.clean.height == 0


def test_zero_or_missing_volume_is_a_warning() -> None:
    vol: list[float | None] = [1.0] * 10
    vol[0], vol[1] = 0.0, None
    frame = daily("a", RISING, volume=vol)
    result = check_daily(frame, asof_of(frame), SMALL)
    assert codes(result) == {"ZERO_VOLUME": ("warning", 2)}
    assert result.excluded == {}


def test_negative_volume_is_an_error() -> None:
    vol: list[float | None] = [1.0] * 10
    vol[3] = -5.0
    frame = daily("a", RISING, volume=vol)
    assert codes(check_daily(frame, asof_of(frame), SMALL))["NEGATIVE_VOLUME"] == ("error", 1)


def test_spike_that_reverses_is_found_but_a_lasting_move_is_not() -> None:
    # Given a one-day x3 print that comes back, and a x3 move that stays
    spike = daily("a", [*RISING[:5], 33.0, *RISING[6:]])
    level = daily("b", [*RISING[:5], *(3 * c for c in RISING[5:])])
    frame = pl.concat([spike, level])
    cfg = SMALL.model_copy(update={"max_spikes": 0})
    result = check_daily(frame, asof_of(frame), cfg)
    # Then only the reverting print is a spike, at its own bar
    spikes = [f for f in result.findings if f.code is QualityCode.SPIKE]
    assert [(f.symbol, f.count, f.first_ts) for f in spikes] == [("a", 1, T0 + 5 * DAY_MS)]
    assert result.excluded == {"a": ["SPIKE"]}


def test_spike_threshold_has_an_absolute_floor_for_flat_series() -> None:
    # Given a stablecoin-like series (MAD ≈ 0) with a 5 % blip that reverts
    closes = [1.0, 1.001, 0.999, 1.0, 1.05, 1.0, 1.001, 0.999, 1.0, 1.001]
    frame = daily("a", closes)
    # Then the 0.3 log-return floor keeps it from being a spike
    assert check_daily(frame, asof_of(frame), SMALL).findings == []


def test_future_timestamp_is_look_ahead_and_an_error() -> None:
    frame = daily("a", RISING)
    asof = T0 + 8 * DAY_MS
    result = check_daily(frame, asof, SMALL)
    assert codes(result)["FUTURE_TS"] == ("error", 1)
    assert next(f for f in result.findings if f.code is QualityCode.FUTURE_TS).first_ts == (
        T0 + 9 * DAY_MS
    )


def test_short_history_and_stopped_series_are_errors() -> None:
    short = daily("a", [1.0, 1.1])
    stopped = daily("b", RISING)
    frame = pl.concat([short, stopped])
    asof = T0 + 20 * DAY_MS
    result = check_daily(frame, asof, SMALL.model_copy(update={"max_lag_bars": 30}))
    assert codes(result, "a") == {"SHORT_HISTORY": ("error", 2)}
    result = check_daily(frame, asof, SMALL.model_copy(update={"min_bars": 1}))
    assert codes(result, "b") == {"NO_RECENT_DATA": ("error", 11)}


def test_totals_and_reasons_are_reported() -> None:
    frame = pl.concat([daily("a", [1.0, 1.1]), daily("b", [1.0, 1.1])])
    result = check_daily(frame, asof_of(frame), SMALL)
    assert result.totals() == {"SHORT_HISTORY": 2}
    assert all("need at least 3" in f.reason for f in result.findings)
    assert result.checked_symbols == 2


def ohlcv(rows: list[tuple[float, float, float, float]]) -> pl.DataFrame:
    n = len(rows)
    return pl.DataFrame(
        {
            "symbol": ["X/USDT"] * n,
            "ts": [T0 + i * H for i in range(n)],
            "open": [r[0] for r in rows],
            "high": [r[1] for r in rows],
            "low": [r[2] for r in rows],
            "close": [r[3] for r in rows],
            "volume": [5.0] * n,
        },
        schema=OHLCV_SCHEMA,
    )


def test_ohlc_inconsistencies_are_counted() -> None:
    # Given a good bar, high below close, low above open, and low above high
    good = (10.0, 11.0, 9.0, 10.5)
    frame = ohlcv(
        [
            good,
            (10.0, 10.2, 9.0, 10.4),
            (10.0, 11.0, 10.1, 10.6),
            (10.0, 9.0, 11.0, 10.0),
            good,
            (10.1, 11.0, 9.5, 10.6),
        ]
    )
    result = check_ohlcv(frame, "1h", asof_of(frame), SMALL)
    assert codes(result, "X/USDT") == {"OHLC_INCONSISTENT": ("error", 3)}


def test_ohlcv_gaps_are_measured_in_the_given_timeframe() -> None:
    frame = ohlcv(
        [(10.0, 11.0, 9.0, 10.5)] * 1
        + [(10.5, 11.0, 10.0, 10.7)] * 0
        + [(10.0 + i / 10, 11.0, 9.0, 10.2 + i / 10) for i in range(5)]
    )
    frame = frame.with_columns(
        ts=pl.col("ts") + pl.when(pl.col("ts") > T0 + H).then(2 * H).otherwise(0)
    )
    result = check_ohlcv(
        frame, "1h", asof_of(frame), SMALL.model_copy(update={"max_missing_fraction": 0.5})
    )
    assert codes(result, "X/USDT")["GAP"] == ("warning", 2)


def test_bad_input_is_refused() -> None:
    with pytest.raises(DomainError, match="lacks columns"):
        check_daily(pl.DataFrame({"symbol": ["a"]}), T0)
    with pytest.raises(DomainError, match="unknown timeframe"):
        check_ohlcv(ohlcv([(1.0, 1.0, 1.0, 1.0)]), "7m", T0)
    with pytest.raises(ValueError, match="min_bars"):
        QualityConfig(min_bars=0)


@pytest.mark.parametrize("column", ["close", "volume"])
@pytest.mark.parametrize("bad", [math.inf, -math.inf])
def test_infinite_price_or_volume_excludes_the_series(column: str, bad: float) -> None:
    # Given one infinite value (a damaged file: inf passes "> 0" and "not NaN")
    frame = daily("a", RISING).with_columns(
        pl.when(pl.int_range(pl.len()) == 6).then(bad).otherwise(pl.col(column)).alias(column)
    )
    result = check_daily(frame, asof_of(frame), SMALL)
    # Then the whole series is excluded with the reason, never ranked on
    assert codes(result)["NON_FINITE"] == ("error", 1)
    assert "NON_FINITE" in result.excluded["a"]
    assert result.clean.height == 0
    reason = next(f.reason for f in result.findings if f.code is QualityCode.NON_FINITE)
    assert "infinite" in reason


@pytest.mark.parametrize("column", ["open", "high", "low", "volume"])
def test_infinite_candle_value_is_an_error(column: str) -> None:
    frame = ohlcv([(10.0, 11.0, 9.0, 10.5)] * 5).with_columns(
        pl.when(pl.int_range(pl.len()) == 2).then(math.inf).otherwise(pl.col(column)).alias(column)
    )
    result = check_ohlcv(frame, "1h", asof_of(frame), SMALL)
    assert codes(result, "X/USDT")["NON_FINITE"] == ("error", 1)


def test_a_far_off_grid_snapshot_is_a_warning_not_silent_info() -> None:
    # Given a daily snapshot taken 17 hours after its day's grid point (uma, 2020-04-29)
    ts = [T0 + i * DAY_MS for i in range(10)]
    ts[4] += 17 * H
    frame = daily("a", RISING, ts=ts)
    result = check_daily(frame, asof_of(frame), SMALL)
    # Then it is reported as a warning with the offset, and left unchanged
    assert codes(result) == {"MISALIGNED": ("warning", 1)}
    assert "17:00" in next(f.reason for f in result.findings)
    assert result.clean["ts"].to_list() == ts


@pytest.mark.parametrize("offset", [30 * 60_000, 1, 5 * 60_000])
def test_off_grid_exchange_candles_are_an_error(offset: int) -> None:
    # Given hourly candles shifted by 30 minutes (a timezone error), or by any amount
    frame = ohlcv([(10.0, 11.0, 9.0, 10.0 + i / 10) for i in range(5)])
    frame = frame.with_columns(ts=pl.col("ts") + offset)
    result = check_ohlcv(frame, "1h", asof_of(frame), SMALL)
    # Then exchange candles, which open exactly on the grid, are rejected with the reason
    assert codes(result, "X/USDT") == {"MISALIGNED": ("error", 5)}
    assert result.excluded == {"X/USDT": ["MISALIGNED"]}
    assert "off the 1h grid" in result.findings[0].reason


def test_rows_out_of_time_order_are_reported() -> None:
    # Given rows whose order in the source is not time order (two swapped rows)
    frame = daily("a", RISING)
    swapped = pl.concat([frame[:3], frame[4:5], frame[3:4], frame[5:]])
    result = check_daily(swapped, asof_of(frame), SMALL)
    # Then a finding says so (the values are intact: a warning), rows are returned in time order
    assert codes(result) == {"UNORDERED": ("warning", 1)}
    assert result.clean["ts"].to_list() == frame["ts"].to_list()


@pytest.mark.parametrize("bad_ts", [1_600_000_000, -DAY_MS, 10**17])
def test_implausible_timestamps_are_an_error(bad_ts: int) -> None:
    # Given a timestamp in seconds instead of ms (1970), negative, or beyond year 2100
    ts = [T0 + i * DAY_MS for i in range(10)]
    ts[0] = bad_ts
    frame = daily("a", RISING, ts=ts)
    result = check_daily(frame, T0 + 9 * DAY_MS, SMALL)
    assert codes(result)["BAD_TIMESTAMP"][0] == "error"
    assert "BAD_TIMESTAMP" in result.excluded["a"]


def test_a_bar_without_a_timestamp_rejects_its_series_only() -> None:
    # Given a daily universe where one coin has a bar whose timestamp is missing
    day = 86_400_000
    start = 1_700_000_000_000 // day * day
    rows = [
        {"symbol": sym, "ts": start + i * day, "close": 1.0 + i / 100, "volume": 10.0,
         "market_cap": 100.0}
        for sym in ("AAA", "BBB")
        for i in range(40)
    ]  # fmt: skip
    rows.append({"symbol": "BBB", "ts": None, "close": 2.0, "volume": 1.0, "market_cap": 1.0})
    frame = pl.DataFrame(rows, schema=DAILY_SCHEMA)

    # When the gate checks it
    result = check_daily(frame, asof_ms=start + 39 * day)

    # Then that coin is excluded with a clear reason, the other one passes untouched
    assert result.excluded == {"BBB": ["BAD_TIMESTAMP"]}
    (finding,) = [f for f in result.findings if f.symbol == "BBB"]
    assert finding.reason == "1 bar(s) without a timestamp" and finding.count == 1
    assert result.clean["symbol"].unique().to_list() == ["AAA"]
    assert result.checked_rows == 81 and result.checked_symbols == 2
