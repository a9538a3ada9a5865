"""Indicator math on tiny hand-written series with known answers."""

import math

import numpy as np
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


# --- the TA-Lib path reproduces the reference definition, whatever the frame's shape ------------

SPECS = [
    ind.Sma("close", 3, "sma3"),
    ind.Ema("close", 3, "ema3"),
    ind.Rsi("close", 3, "rsi3"),
    ind.Macd("close", 2, 4, 2, "macd"),
    ind.Stddev("close", 3, "std3"),
    ind.Bbands("close", 3, 2.0, "bb"),
]


def _assert_same(got: pl.Series, expected: pl.Series, label: str) -> None:
    """Same nulls, same NaNs, values equal to 1e-9 (relative) at the series' scale."""
    assert got.is_null().to_list() == expected.is_null().to_list(), label
    g, e = got.to_numpy().astype(float), expected.to_numpy().astype(float)
    assert (np.isnan(g) == np.isnan(e)).all(), label
    ok = ~np.isnan(e)
    scale = max(float(np.abs(e[ok]).max(initial=0.0)), 1e-300)
    np.testing.assert_allclose(g[ok], e[ok], rtol=1e-9, atol=1e-12 * scale, err_msg=label)


def _check_against_reference(
    frame: pl.DataFrame, specs: list[ind.Indicator], by: str | None = "symbol"
) -> pl.DataFrame:
    fast = ind.add_indicators(frame, *specs, by=by)
    reference = frame.with_columns(e for s in specs for e in s.reference(by))
    for spec in specs:
        for name in spec.outputs:
            _assert_same(fast[name], reference[name], name)
    return fast


def _ohlc(closes: dict[str, list[float | None]]) -> pl.DataFrame:
    rows = [(s, i, c) for s, cs in closes.items() for i, c in enumerate(cs)]
    frame = pl.DataFrame(
        rows, schema={"symbol": pl.String, "ts": pl.Int64, "close": pl.Float64}, orient="row"
    )
    return frame.with_columns(high=pl.col("close") * 1.01, low=pl.col("close") * 0.98)


WAVE = [10.0, 11.0, 10.5, 12.0, 11.0, 13.0, 12.5, 12.0, 14.0, 13.0, 15.0, 14.5]


def test_symbols_whose_rows_are_interleaved_are_still_computed_apart() -> None:
    # Given two symbols whose rows alternate (sorted by ts, not by symbol)
    frame = _ohlc({"a": WAVE, "b": [x * 100 for x in reversed(WAVE)]}).sort("ts", "symbol")
    # When the indicators run on the interleaved frame
    out = _check_against_reference(frame, [*SPECS, ind.Atr(period=3)])
    # Then each symbol's values are those of the symbol computed alone, in the frame's row order
    alone = ind.add_indicators(frame.filter(pl.col("symbol") == "b"), ind.Ema("close", 3, "ema3"))
    assert out.filter(pl.col("symbol") == "b")["ema3"].to_list() == alone["ema3"].to_list()
    assert out["symbol"].to_list() == frame["symbol"].to_list()


def test_a_null_inside_a_history_keeps_the_reference_semantics_for_that_symbol_only() -> None:
    # Given a symbol with a null in the middle of its history and a clean one
    holed: list[float | None] = [*WAVE[:6], None, *WAVE[7:]]
    frame = _ohlc({"holed": holed, "clean": WAVE})
    # Then both match the reference definition (the holed one is computed by it)
    out = _check_against_reference(frame, [*SPECS, ind.Atr(period=3)])
    clean = out.filter(pl.col("symbol") == "clean")
    assert clean["ema3"].null_count() == 2


def test_leading_nulls_delay_the_warm_up_and_nothing_is_filled() -> None:
    # Given a series that starts with two nulls
    frame = _ohlc({"a": [None, None, 1.0, 2.0, 3.0, 4.0, 5.0]})
    out = _check_against_reference(frame, SPECS)
    # Then the 3-period EMA starts on the third value: mean(1, 2, 3)
    assert out["ema3"].to_list() == [None, None, None, None, 2.0, 3.0, 4.0]


def test_nan_values_stay_nan_as_in_the_reference() -> None:
    frame = _ohlc({"nan": [*WAVE[:5], float("nan"), *WAVE[6:]], "clean": WAVE})
    out = _check_against_reference(frame, SPECS)
    assert out.filter(pl.col("symbol") == "nan")["ema3"].is_nan().any()


def test_rsi_is_null_while_flat_and_zero_once_it_only_fell() -> None:
    # Given a flat start, then only falls, then a rise (TA-Lib writes 0 for the first two)
    frame = _ohlc({"a": [5.0, 5.0, 5.0, 5.0, 5.0, 4.0, 3.0, 3.0, 4.0]})
    out = _check_against_reference(frame, [ind.Rsi("close", 3, "rsi")])
    assert out["rsi"].to_list()[:7] == [None, None, None, None, None, 0.0, 0.0]
    assert 0.0 < out["rsi"][8] < 100.0


def test_tiny_prices_and_short_or_empty_symbols() -> None:
    # Given a coin priced around 1e-12, a symbol shorter than any warm-up, and an empty frame
    tiny = [x * 1e-13 for x in WAVE]
    frame = _ohlc({"tiny": tiny, "short": [1.0, 2.0]})
    out = _check_against_reference(frame, [*SPECS, ind.Atr(period=3)])
    assert out.filter(pl.col("symbol") == "short")["ema3"].null_count() == 2
    empty = _check_against_reference(frame.clear(), SPECS)
    assert empty.height == 0


def test_periods_outside_talib_range_use_the_reference() -> None:
    frame = _ohlc({"a": WAVE})
    out = _check_against_reference(frame, [ind.Sma("close", 1, "s1"), ind.Ema("close", 1, "e1")])
    assert out["s1"].to_list() == WAVE


def test_one_series_without_grouping_and_lazy_frames() -> None:
    frame = _ohlc({"a": WAVE})
    _check_against_reference(frame, SPECS, by=None)
    lazy = ind.add_indicators(frame.lazy(), *SPECS).collect()
    assert lazy.equals(ind.add_indicators(frame, *SPECS))


def test_expressions_equal_the_frame_interface() -> None:
    frame = _ohlc({"a": WAVE, "b": [x * 3 for x in WAVE]})
    c = pl.col("close")
    upper, middle, lower = ind.bbands(c, 3)
    line, signal, hist = ind.macd(c, 2, 4, 2)
    exprs = frame.with_columns(
        ema3=ind.ema(c, 3),
        rsi3=ind.rsi(c, 3),
        sma3=ind.sma(c, 3),
        std3=ind.stddev(c, 3),
        bb_upper=upper,
        bb_middle=middle,
        bb_lower=lower,
        macd=line,
        macd_signal=signal,
        macd_hist=hist,
    )
    assert exprs.equals(ind.add_indicators(frame, *SPECS).select(exprs.columns))
