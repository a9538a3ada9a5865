"""Vectorized technical indicators as polars expressions, TA-Lib compatible.

Every function returns a :class:`polars.Expr` evaluated per series: with ``by="symbol"`` (the
default) the whole expression runs inside ``.over(by)``, so a window never crosses symbols; with
``by=None`` it runs over the frame as is (one series). Frames must be sorted by ``by`` then ``ts``.

Definitions follow TA-Lib (``import talib``) so the values can be checked against it
(``tests/unit/test_indicators_talib_parity.py``):

* EMA is seeded with the simple average of its first ``period`` inputs (TA-Lib's default), not
  with the first input, then ``ema_t = ema_{t-1} + k (x_t - ema_{t-1})`` with ``k = 2/(period+1)``.
* RSI and ATR use Wilder's smoothing (``k = 1/period``) seeded with the simple average of the
  first ``period`` changes / true ranges.
* MACD seeds both EMAs at the bar where the slow EMA becomes defined (the fast one with the
  average of the ``fast`` inputs ending there), and the signal EMA ``signal`` bars later.
* Standard deviations are population ones (``ddof=0``).

Values before the warm-up are null: nothing is extrapolated or filled. Where an indicator is
undefined (RSI of a series that did not move for a whole window, a zero denominator) it is null
too, so callers can abstain with a reason.

Speed: an expression that nests a shift inside the seeded recursion (``rsi``, ``macd``'s signal,
``atr``) is evaluated group by group by polars and is several times slower on a large universe
than the same math in steps. :func:`add_rsi` and :func:`add_macd` compute the same values in
steps (intermediate columns, then a plain windowed recursion); hot paths use those.
"""

from __future__ import annotations

import math
from typing import TypeVar

import polars as pl

FrameT = TypeVar("FrameT", pl.DataFrame, pl.LazyFrame)

__all__ = [
    "add_macd",
    "add_rsi",
    "atr",
    "bbands",
    "ema",
    "log_return",
    "macd",
    "realized_vol",
    "roc",
    "rsi",
    "sma",
    "stddev",
    "wilder",
]


def _per(expr: pl.Expr, by: str | None) -> pl.Expr:
    return expr if by is None else expr.over(by)


def _check_period(period: int, name: str = "period") -> None:
    if period < 1:
        raise ValueError(f"{name} must be >= 1, got {period}")


def _seeded_ewm(x: pl.Expr, period: int, alpha: float, start: int) -> pl.Expr:
    """EMA seeded with the mean of the ``period`` inputs ending at the ``start``-th non-null input.

    Rows before the seed are null; the recursion runs on the inputs after it (not per-group:
    callers wrap it in ``.over``).
    """
    seen = x.is_not_null().cast(pl.Int64).cum_sum()
    seeded = pl.when(seen == start).then(x.rolling_mean(period)).when(seen > start).then(x)
    return seeded.ewm_mean(alpha=alpha, adjust=False, ignore_nulls=False)


def sma(x: pl.Expr, period: int, by: str | None = "symbol") -> pl.Expr:
    """Simple moving average (TA-Lib ``SMA``)."""
    _check_period(period)
    return _per(x.rolling_mean(period), by)


def ema(x: pl.Expr, period: int, by: str | None = "symbol") -> pl.Expr:
    """Exponential moving average seeded with an SMA (TA-Lib ``EMA``)."""
    _check_period(period)
    return _per(_seeded_ewm(x, period, 2.0 / (period + 1), period), by)


def wilder(x: pl.Expr, period: int, by: str | None = "symbol") -> pl.Expr:
    """Wilder's smoothing (``k = 1/period``) seeded with the mean of the first ``period`` inputs."""
    _check_period(period)
    return _per(_seeded_ewm(x, period, 1.0 / period, period), by)


def rsi(x: pl.Expr, period: int = 14, by: str | None = "symbol") -> pl.Expr:
    """Relative strength index, Wilder smoothing (TA-Lib ``RSI``).

    100 when the window had gains and no losses; null when it had neither (undefined).
    """
    _check_period(period)
    change = x - x.shift(1)
    avg_up = _seeded_ewm(change.clip(lower_bound=0), period, 1.0 / period, period)
    avg_down = _seeded_ewm((-change).clip(lower_bound=0), period, 1.0 / period, period)
    total = avg_up + avg_down
    return _per(pl.when(total > 0).then(100.0 * avg_up / total), by)


def macd(
    x: pl.Expr,
    fast: int = 12,
    slow: int = 26,
    signal: int = 9,
    by: str | None = "symbol",
) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """(macd line, signal line, histogram) as TA-Lib ``MACD`` computes them."""
    for name, value in (("fast", fast), ("slow", slow), ("signal", signal)):
        _check_period(value, name)
    if fast >= slow:
        raise ValueError(f"fast period must be < slow period, got {fast} >= {slow}")
    line = _seeded_ewm(x, fast, 2.0 / (fast + 1), slow) - _seeded_ewm(
        x, slow, 2.0 / (slow + 1), slow
    )
    sig = _seeded_ewm(line, signal, 2.0 / (signal + 1), signal)
    return _per(line, by), _per(sig, by), _per(line - sig, by)


def stddev(x: pl.Expr, period: int, by: str | None = "symbol") -> pl.Expr:
    """Rolling population standard deviation (TA-Lib ``STDDEV`` with ``nbdev=1``)."""
    _check_period(period)
    return _per(x.rolling_std(period, ddof=0), by)


def bbands(
    x: pl.Expr, period: int = 20, nbdev: float = 2.0, by: str | None = "symbol"
) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """(upper, middle, lower) Bollinger bands around an SMA (TA-Lib ``BBANDS``, matype SMA)."""
    _check_period(period)
    mid = x.rolling_mean(period)
    width = nbdev * x.rolling_std(period, ddof=0)
    return _per(mid + width, by), _per(mid, by), _per(mid - width, by)


def atr(
    high: pl.Expr, low: pl.Expr, close: pl.Expr, period: int = 14, by: str | None = "symbol"
) -> pl.Expr:
    """Average true range, Wilder smoothing (TA-Lib ``ATR``); the first bar has no true range."""
    _check_period(period)
    prev = close.shift(1)
    true_range = pl.max_horizontal(high - low, (high - prev).abs(), (low - prev).abs())
    true_range = pl.when(prev.is_not_null()).then(true_range)
    return _per(_seeded_ewm(true_range, period, 1.0 / period, period), by)


def roc(x: pl.Expr, period: int, by: str | None = "symbol") -> pl.Expr:
    """Rate of change in percent (TA-Lib ``ROC``): ``100 (x_t / x_{t-period} - 1)``."""
    _check_period(period)
    return _per(100.0 * (x / x.shift(period) - 1.0), by)


def log_return(x: pl.Expr, by: str | None = "symbol") -> pl.Expr:
    """One-bar log return ``ln(x_t / x_{t-1})``."""
    return _per((x / x.shift(1)).log(), by)


def realized_vol(
    x: pl.Expr, period: int, by: str | None = "symbol", bars_per_year: int = 365
) -> pl.Expr:
    """Annualized sample standard deviation of ``period`` one-bar log returns."""
    _check_period(period)
    r = (x / x.shift(1)).log()
    return _per(r.rolling_std(period) * math.sqrt(bars_per_year), by)


def add_rsi(
    frame: FrameT,
    source: str = "close",
    out: str = "rsi",
    period: int = 14,
    by: str | None = "symbol",
) -> FrameT:
    """``frame`` with column ``out`` = :func:`rsi` of ``source``, computed in steps (fast)."""
    _check_period(period)
    x = pl.col(source)
    up, down = f"__{out}_up", f"__{out}_down"
    return (
        frame.with_columns(_per(x - x.shift(1), by).alias(up))
        .with_columns((-pl.col(up)).clip(lower_bound=0).alias(down), pl.col(up).clip(lower_bound=0))
        .with_columns(wilder(pl.col(up), period, by), wilder(pl.col(down), period, by))
        .with_columns(
            pl.when(pl.col(up) + pl.col(down) > 0)
            .then(100.0 * pl.col(up) / (pl.col(up) + pl.col(down)))
            .alias(out)
        )
        .drop(up, down)
    )


def add_macd(
    frame: FrameT,
    source: str = "close",
    prefix: str = "macd",
    fast: int = 12,
    slow: int = 26,
    signal: int = 9,
    by: str | None = "symbol",
) -> FrameT:
    """``frame`` with ``{prefix}``, ``{prefix}_signal`` and ``{prefix}_hist`` (TA-Lib ``MACD``),
    computed in steps (fast)."""
    line, _sig, _hist = macd(pl.col(source), fast, slow, signal, by)  # validates the periods
    return (
        frame.with_columns(line.alias(prefix))
        .with_columns(ema(pl.col(prefix), signal, by).alias(f"{prefix}_signal"))
        .with_columns((pl.col(prefix) - pl.col(f"{prefix}_signal")).alias(f"{prefix}_hist"))
    )
