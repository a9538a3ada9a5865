"""Indicator math on tiny hand-written series with known answers."""

import math

import polars as pl
import pytest

from cryptosmarttrader.domain import indicators as ind


def _frame(values: dict[str, list[float]]) -> pl.DataFrame:
    rows = [(sym, i, v) for sym, vs in values.items() for i, v in enumerate(vs)]
    return pl.DataFrame(
        rows, schema={"symbol": pl.String, "ts": pl.Int64, "close": pl.Float64}, orient="row"
    )


def test_ema_is_seeded_with_the_sma_of_its_first_period_inputs() -> None:
    # Given 1, 2, 3, 4, 5 and a 3-period EMA (k = 0.5)
    frame = _frame({"a": [1.0, 2.0, 3.0, 4.0, 5.0]})
    # When the EMA is computed
    out = frame.select(ind.ema(pl.col("close"), 3))["close"].to_list()
    # Then nothing is shown before the seed, the seed is mean(1, 2, 3) = 2, then 3 and 4
    assert out == [None, None, 2.0, 3.0, 4.0]


def test_windows_never_cross_symbols() -> None:
    # Given two symbols whose values differ by orders of magnitude
    frame = _frame({"a": [1.0, 1.0, 1.0], "b": [100.0, 100.0, 100.0]})
    # When a 2-bar SMA runs per symbol
    out = frame.select(ind.sma(pl.col("close"), 2))["close"].to_list()
    # Then each series starts its own warm-up and never averages across the boundary
    assert out == [None, 1.0, 1.0, None, 100.0, 100.0]


def test_rsi_is_100_without_losses_and_undefined_without_any_move() -> None:
    # Given a strictly rising and a flat series
    frame = _frame({"up": [float(i) for i in range(1, 8)], "flat": [5.0] * 7})
    # When RSI(3) is computed
    out = frame.with_columns(rsi=ind.rsi(pl.col("close"), 3))
    up = out.filter(pl.col("symbol") == "up")["rsi"].to_list()
    flat = out.filter(pl.col("symbol") == "flat")["rsi"].to_list()
    # Then the rising series reads 100 from its first defined bar, the flat one stays null
    assert up == [None, None, None, 100.0, 100.0, 100.0, 100.0]
    assert flat == [None] * 7


def test_rsi_seed_is_the_mean_of_the_first_period_changes() -> None:
    # Given changes +2, -1, +2 (RSI(3) seed: avg up 4/3, avg down 1/3 → RSI 80)
    frame = _frame({"a": [10.0, 12.0, 11.0, 13.0]})
    out = frame.select(ind.rsi(pl.col("close"), 3).alias("rsi"))["rsi"].to_list()
    assert out[:3] == [None, None, None]
    assert out[3] == pytest.approx(80.0)


def test_atr_needs_a_previous_close_and_averages_true_ranges() -> None:
    # Given bars whose true ranges are 2, 4 (gap up) and 1
    frame = pl.DataFrame(
        {
            "symbol": ["a"] * 4,
            "high": [10.0, 11.0, 15.0, 14.5],
            "low": [9.0, 9.0, 12.0, 13.5],
            "close": [10.0, 10.0, 14.0, 14.0],
        }
    )
    out = frame.select(ind.atr(pl.col("high"), pl.col("low"), pl.col("close"), 3).alias("atr"))[
        "atr"
    ].to_list()
    # Then the first ATR(3) is mean(2, 5, 1) — the second bar's range is high 15 - prev close 10
    assert out == [None, None, None, pytest.approx((2.0 + 5.0 + 1.0) / 3)]


def test_realized_vol_annualizes_the_sample_std_of_log_returns() -> None:
    # Given alternating ×2 and ×0.5 moves: log returns ±ln 2
    frame = _frame({"a": [1.0, 2.0, 1.0, 2.0, 1.0]})
    out = frame.select(ind.realized_vol(pl.col("close"), 4))["close"].to_list()
    sample_std = math.sqrt(4 * math.log(2) ** 2 / 3)
    assert out[-1] == pytest.approx(sample_std * math.sqrt(365))


@pytest.mark.parametrize("period", [0, -3])
def test_rejects_non_positive_periods(period: int) -> None:
    with pytest.raises(ValueError, match="must be >= 1"):
        ind.sma(pl.col("close"), period)


def test_macd_rejects_fast_not_below_slow() -> None:
    with pytest.raises(ValueError, match="fast period must be < slow"):
        ind.macd(pl.col("close"), fast=26, slow=12)
