"""Technical indicators with TA-Lib's definitions and TA-Lib's speed, over the whole universe.

Two ways to ask for them, with the same values:

* :func:`add_indicators` (and :func:`add_rsi`, :func:`add_macd`): a frame in, the frame with the
  indicator columns added. The symbol groups are found once for all the indicators asked for,
  then each group's contiguous slice goes through TA-Lib's C functions. Hot paths use this.
* :func:`sma`, :func:`ema`, :func:`rsi`, :func:`macd`, :func:`stddev`, :func:`bbands`,
  :func:`atr`: one :class:`polars.Expr` per output, for ``with_columns``/``select``.

``by="symbol"`` (the default) computes each symbol on its own, so a window or a recursion never
crosses symbols (rows of a symbol need not be adjacent; each symbol's rows must be in ``ts``
order); ``by=None`` treats the whole column as one series.

Definitions are TA-Lib's (``import talib``; ``tests/unit/test_indicators_talib_parity.py`` checks
them on real data):

* EMA is seeded with the simple average of its first ``period`` inputs (TA-Lib's default), not
  with the first input, then ``ema_t = ema_{t-1} + k (x_t - ema_{t-1})`` with ``k = 2/(period+1)``.
* RSI and ATR use Wilder's smoothing (``k = 1/period``) seeded with the simple average of the
  first ``period`` changes / true ranges.
* MACD seeds both EMAs at the bar where the slow EMA becomes defined (the fast one with the
  average of the ``fast`` inputs ending there), and the signal EMA ``signal`` bars later. The MACD
  line is shown from the slow EMA's first bar on (TA-Lib hides it until the signal is defined).
* Standard deviations are population ones (``ddof=0``).

Values before the warm-up are null: nothing is extrapolated or filled. Where an indicator is
undefined (RSI of a series that never moved, where TA-Lib writes 0) it is null too, so callers can
abstain with a reason. Leading nulls of a one-input indicator are skipped (the warm-up starts at
the first value).

How it is computed: the polars expressions in the ``_reference_*`` functions are the definition
(the way these indicators were first written, checked against TA-Lib). Each symbol whose inputs
are regular (no NaN; nulls only before its first value, and none at all for ATR) goes through
TA-Lib's C function on its slice of the column, which gives the same values 30-100x faster; a
symbol with a null or NaN inside its history is computed by the reference expression, so its
values keep the reference's null semantics exactly. TA-Lib is imported on first use: ``import
talib`` also imports pandas where pandas is installed, which a process that computes no
indicator should not pay for.
"""

from __future__ import annotations

import importlib
import math
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from types import ModuleType
from typing import Final, TypeVar

import numpy as np
import numpy.typing as npt
import polars as pl

FrameT = TypeVar("FrameT", pl.DataFrame, pl.LazyFrame)
_T = TypeVar("_T", bound=np.generic)
Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]

__all__ = [
    "Atr",
    "Bbands",
    "Ema",
    "Indicator",
    "Macd",
    "Rsi",
    "Sma",
    "Stddev",
    "add_indicators",
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

# TA-Lib's accepted range for the time periods used here; other periods use the reference.
_TALIB_MIN_PERIOD: Final = 2
_TALIB_MAX_PERIOD: Final = 100_000


class _NoPandasOnThisThread:
    """A ``sys.meta_path`` finder that answers "not installed" to ``import pandas`` on the
    thread that installed it, and stays out of every other thread's imports."""

    def __init__(self) -> None:
        self.thread = threading.get_ident()

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> None:
        """Raises for pandas on the installing thread; otherwise the next finders decide."""
        if threading.get_ident() == self.thread and fullname.partition(".")[0] == "pandas":
            raise ModuleNotFoundError(f"No module named {fullname!r}", name=fullname)


@cache
def _talib() -> ModuleType:
    """TA-Lib, imported without its pandas wrappers where pandas is not imported yet.

    TA-Lib wraps its functions for pandas Series when pandas is importable, so importing it
    imports pandas (about 0.5 s of CPU in every process that computes an indicator); only
    float64 arrays are passed here. While TA-Lib is imported, ``import pandas`` on this thread
    answers "not installed" (:class:`_NoPandasOnThisThread`, first on ``sys.meta_path``, removed
    at once): another thread importing pandas meanwhile imports it as usual, and a later
    ``import pandas`` anywhere does too. The functions and their results are TA-Lib's own
    either way."""
    if "talib" in sys.modules or "pandas" in sys.modules:
        return importlib.import_module("talib")
    refuse = _NoPandasOnThisThread()
    sys.meta_path.insert(0, refuse)
    try:
        return importlib.import_module("talib")
    finally:
        sys.meta_path.remove(refuse)


def _ta(name: str, *args: Floats, **params: float) -> tuple[Floats, ...]:
    """TA-Lib function ``name`` on float64 arrays; always a tuple of float64 arrays."""
    result = getattr(_talib(), name)(*args, **params)
    outputs = result if isinstance(result, tuple) else (result,)
    return tuple(np.asarray(out, dtype=np.float64) for out in outputs)


def _talib_period(*periods: int) -> bool:
    return all(_TALIB_MIN_PERIOD <= p <= _TALIB_MAX_PERIOD for p in periods)


def _check_period(period: int, name: str = "period") -> None:
    if period < 1:
        raise ValueError(f"{name} must be >= 1, got {period}")


def _per(expr: pl.Expr, by: str | None) -> pl.Expr:
    return expr if by is None else expr.over(by)


# --------------------------------------------------------------------------- reference definitions
# One series each (no grouping): the definition the TA-Lib path must reproduce.


def _seeded_ewm(x: pl.Expr, period: int, alpha: float, start: int) -> pl.Expr:
    """EMA seeded with the mean of the ``period`` inputs ending at the ``start``-th non-null input.

    Rows before the seed are null; the recursion runs on the inputs after it.
    """
    seen = x.is_not_null().cast(pl.Int64).cum_sum()
    seeded = pl.when(seen == start).then(x.rolling_mean(period)).when(seen > start).then(x)
    return seeded.ewm_mean(alpha=alpha, adjust=False, ignore_nulls=False)


def _reference_sma(x: pl.Expr, period: int) -> tuple[pl.Expr, ...]:
    return (x.rolling_mean(period),)


def _reference_ema(x: pl.Expr, period: int) -> tuple[pl.Expr, ...]:
    return (_seeded_ewm(x, period, 2.0 / (period + 1), period),)


def _reference_rsi(x: pl.Expr, period: int) -> tuple[pl.Expr, ...]:
    change = x - x.shift(1)
    avg_up = _seeded_ewm(change.clip(lower_bound=0), period, 1.0 / period, period)
    avg_down = _seeded_ewm((-change).clip(lower_bound=0), period, 1.0 / period, period)
    total = avg_up + avg_down
    return (pl.when(total > 0).then(100.0 * avg_up / total),)


def _reference_macd(x: pl.Expr, fast: int, slow: int, signal: int) -> tuple[pl.Expr, ...]:
    line = _seeded_ewm(x, fast, 2.0 / (fast + 1), slow) - _seeded_ewm(
        x, slow, 2.0 / (slow + 1), slow
    )
    sig = _seeded_ewm(line, signal, 2.0 / (signal + 1), signal)
    return line, sig, line - sig


def _reference_stddev(x: pl.Expr, period: int) -> tuple[pl.Expr, ...]:
    return (x.rolling_std(period, ddof=0),)


def _reference_bbands(x: pl.Expr, period: int, nbdev: float) -> tuple[pl.Expr, ...]:
    mid = x.rolling_mean(period)
    width = nbdev * x.rolling_std(period, ddof=0)
    return mid + width, mid, mid - width


def _reference_atr(high: pl.Expr, low: pl.Expr, close: pl.Expr, period: int) -> tuple[pl.Expr, ...]:
    prev = close.shift(1)
    true_range = pl.max_horizontal(high - low, (high - prev).abs(), (low - prev).abs())
    true_range = pl.when(prev.is_not_null()).then(true_range)
    return (_seeded_ewm(true_range, period, 1.0 / period, period),)


# ------------------------------------------------------------------------------ TA-Lib kernels
# One regular series each (see the module docstring): float64 arrays in, float64 arrays out,
# NaN where the indicator is not defined.


def _rsi_kernel(period: int) -> Callable[[Sequence[Floats]], tuple[Floats, ...]]:
    def run(inputs: Sequence[Floats]) -> tuple[Floats, ...]:
        (x,) = inputs
        (out,) = _ta("RSI", x, timeperiod=period)
        zero = np.flatnonzero(out == 0.0)
        if zero.size:
            # TA-Lib writes 0 both when the series only fell (RSI 0) and when it never moved
            # (no average gain or loss: undefined, null in the definition). With no fall since
            # the first value the average loss is 0, so a 0 there is the undefined case.
            falls = np.concatenate(([0], np.cumsum(np.diff(x) < 0)))
            out[zero[falls[zero] == 0]] = np.nan
        return (out,)

    return run


def _macd_kernel(
    fast: int, slow: int, signal: int
) -> Callable[[Sequence[Floats]], tuple[Floats, ...]]:
    def run(inputs: Sequence[Floats]) -> tuple[Floats, ...]:
        (x,) = inputs
        # A signal period of 1 makes TA-Lib show the line from the slow EMA's first bar with the
        # same seeds; the signal is then the SMA-seeded EMA of that line.
        line = _ta("MACD", x, fastperiod=fast, slowperiod=slow, signalperiod=1)[0]
        (sig,) = _ta("EMA", line, timeperiod=signal) if signal > 1 else (line.copy(),)
        return line, sig, line - sig

    return run


def _single(name: str, **params: float) -> Callable[[Sequence[Floats]], tuple[Floats, ...]]:
    def run(inputs: Sequence[Floats]) -> tuple[Floats, ...]:
        return _ta(name, *inputs, **params)

    return run


@dataclass(frozen=True, slots=True)
class _Method:
    """How one indicator is computed: its TA-Lib kernel and its reference definition."""

    n_inputs: int
    n_outputs: int
    warmup: int  # the first output is at least this many rows after the first input
    leading_nulls: bool  # a null prefix of the input is allowed on the TA-Lib path
    kernel: Callable[[Sequence[Floats]], tuple[Floats, ...]] | None  # None: reference only
    reference: Callable[[Sequence[pl.Expr]], tuple[pl.Expr, ...]]


def _sma_method(period: int) -> _Method:
    _check_period(period)
    return _Method(
        1,
        1,
        period - 1,
        True,
        # polars' windows, not TA-Lib's running sum: after a coin's volume falls by orders of
        # magnitude TA-Lib's sum keeps a residue (a 7-day mean of zero volumes reads -3e-8), and
        # callers compare volume means with 0. A window mean is not a recursion: polars is fast.
        None,
        lambda xs: _reference_sma(xs[0], period),
    )


def _ema_method(period: int) -> _Method:
    _check_period(period)
    return _Method(
        1,
        1,
        period - 1,
        True,
        _single("EMA", timeperiod=period) if _talib_period(period) else None,
        lambda xs: _reference_ema(xs[0], period),
    )


def _rsi_method(period: int) -> _Method:
    _check_period(period)
    return _Method(
        1,
        1,
        period,
        True,
        _rsi_kernel(period) if _talib_period(period) else None,
        lambda xs: _reference_rsi(xs[0], period),
    )


def _macd_method(fast: int, slow: int, signal: int) -> _Method:
    for name, value in (("fast", fast), ("slow", slow), ("signal", signal)):
        _check_period(value, name)
    if fast >= slow:
        raise ValueError(f"fast period must be < slow period, got {fast} >= {slow}")
    return _Method(
        1,
        3,
        slow - 1,
        True,
        _macd_kernel(fast, slow, signal) if _talib_period(fast, slow) else None,
        lambda xs: _reference_macd(xs[0], fast, slow, signal),
    )


def _stddev_method(period: int) -> _Method:
    _check_period(period)
    return _Method(
        1,
        1,
        period - 1,
        True,
        _single("STDDEV", timeperiod=period, nbdev=1.0) if _talib_period(period) else None,
        lambda xs: _reference_stddev(xs[0], period),
    )


def _bbands_method(period: int, nbdev: float) -> _Method:
    _check_period(period)
    kernel = _single("BBANDS", timeperiod=period, nbdevup=nbdev, nbdevdn=nbdev, matype=0)
    return _Method(
        1,
        3,
        period - 1,
        True,
        kernel if _talib_period(period) and math.isfinite(nbdev) else None,
        lambda xs: _reference_bbands(xs[0], period, nbdev),
    )


def _atr_method(period: int) -> _Method:
    _check_period(period)
    return _Method(
        3,
        1,
        period,
        False,
        _single("ATR", timeperiod=period) if period <= _TALIB_MAX_PERIOD else None,
        lambda xs: _reference_atr(xs[0], xs[1], xs[2], period),
    )


# ------------------------------------------------------------------------------------ grouping


@dataclass(frozen=True, slots=True)
class _Groups:
    """Row ranges ``[starts[g], ends[g])`` of each group, in ``order`` (None: as given)."""

    starts: Ints
    ends: Ints
    order: Ints | None


def _groups(by: pl.Series | None, n: int) -> _Groups:
    if by is None or n == 0:
        return _Groups(np.array([0], dtype=np.int64), np.array([n], dtype=np.int64), None)
    runs = by.rle()
    order: Ints | None = None
    if runs.struct.field("value").n_unique() != len(runs):  # a symbol's rows are not adjacent
        keyed = pl.DataFrame({"key": by}).with_row_index("row")
        order = keyed.sort("key", maintain_order=True)["row"].cast(pl.Int64).to_numpy()
        runs = by.gather(order).rle()
    ends = np.cumsum(runs.struct.field("len").cast(pl.Int64).to_numpy())
    return _Groups(ends - runs.struct.field("len").cast(pl.Int64).to_numpy(), ends, order)


@dataclass(slots=True)
class _Inputs:
    """One column as the kernels need it: float64 values (nulls as NaN) and where it is bad."""

    series: pl.Series
    values: Floats
    nulls: npt.NDArray[np.bool_] | None  # None: no null
    nans: npt.NDArray[np.bool_] | None  # None: no NaN value


def _prepare(series: pl.Series, groups: _Groups) -> _Inputs:
    series = series.cast(pl.Float64)
    if groups.order is not None:
        series = series.gather(groups.order)
    values = np.ascontiguousarray(series.to_numpy(), dtype=np.float64)
    if math.isfinite(float(np.add.reduce(values))):  # one pass, no mask: no NaN (nor null)
        return _Inputs(series, values, None, None)
    missing = np.isnan(values)
    if not missing.any():
        return _Inputs(series, values, None, None)
    if series.null_count() == 0:
        return _Inputs(series, values, None, missing)
    nulls = series.is_null().to_numpy()
    nans = missing & ~nulls
    return _Inputs(series, values, nulls, nans if nans.any() else None)


def _irregular(
    method: _Method, inputs: Sequence[_Inputs], groups: _Groups
) -> npt.NDArray[np.bool_]:
    """Per group: True when its inputs hold something only the reference definition handles."""
    n = len(inputs[0].values)
    if all(c.nans is None and c.nulls is None for c in inputs):
        return np.zeros(len(groups.starts), dtype=np.bool_)
    bad = np.zeros(n, dtype=np.bool_)
    for column in inputs:
        if column.nans is not None:
            bad |= column.nans
        if column.nulls is not None:
            if method.leading_nulls:
                # a null is allowed only in a run of nulls that starts at the group's first row
                interior = column.nulls.copy()
                interior[groups.starts] = False
                interior[1:] &= ~column.nulls[:-1]
                bad |= interior
            else:
                bad |= column.nulls
    if n == 0 or not bad.any():
        return np.zeros(len(groups.starts), dtype=np.bool_)
    return np.logical_or.reduceat(bad, groups.starts)


def _compute(method: _Method, inputs: Sequence[_Inputs], groups: _Groups) -> list[pl.Series]:
    """The method's outputs for every group, as Float64 series in the caller's row order."""
    if method.kernel is None:
        return _compute_reference(method, inputs, groups)
    irregular = _irregular(method, inputs, groups)
    # each output is the concatenation of its per-group pieces (one copy, no prefilled array)
    pieces: list[list[Floats]] = [[] for _ in range(method.n_outputs)]
    # rows computed by the reference keep its null mask: NaN there is a NaN value, not a null
    reference_rows: list[tuple[int, int, list[npt.NDArray[np.bool_]]]] = []
    for g, (start, end) in enumerate(
        zip(groups.starts.tolist(), groups.ends.tolist(), strict=True)
    ):
        if end - start <= method.warmup:  # too short to reach the first value: all null
            results: Sequence[Floats] = [np.full(end - start, np.nan)] * method.n_outputs
        elif irregular[g]:
            columns = {f"in{i}": c.series.slice(start, end - start) for i, c in enumerate(inputs)}
            exprs = method.reference([pl.col(name) for name in columns])
            frame = pl.DataFrame(columns).select(
                e.cast(pl.Float64).alias(f"out{i}") for i, e in enumerate(exprs)
            )
            results = [column.to_numpy() for column in frame.iter_columns()]
            reference_rows.append(
                (start, end, [column.is_null().to_numpy() for column in frame.iter_columns()])
            )
        else:
            results = method.kernel([c.values[start:end] for c in inputs])
        for piece, values in zip(pieces, results, strict=True):
            piece.append(values)
    outputs = [
        np.concatenate(piece) if piece else np.empty(0, dtype=np.float64) for piece in pieces
    ]
    nulls: list[npt.NDArray[np.bool_]] | None = None
    if any(
        (np.isnan(out[start:end]) & ~mask).any()
        for start, end, masks in reference_rows
        for out, mask in zip(outputs, masks, strict=True)
    ):
        nulls = [np.isnan(out) for out in outputs]
        for start, end, masks in reference_rows:
            for mask, reference_mask in zip(nulls, masks, strict=True):
                mask[start:end] = reference_mask
    if groups.order is not None:
        outputs = [_restore(out, groups.order) for out in outputs]
        nulls = None if nulls is None else [_restore(mask, groups.order) for mask in nulls]
    if nulls is None:
        return [pl.Series(out, nan_to_null=True) for out in outputs]
    return [
        pl.DataFrame({"v": out, "null": mask})
        .select(pl.when(pl.col("null")).then(None).otherwise(pl.col("v")))
        .to_series()
        for out, mask in zip(outputs, nulls, strict=True)
    ]


def _compute_reference(
    method: _Method, inputs: Sequence[_Inputs], groups: _Groups
) -> list[pl.Series]:
    """The reference expressions over every group at once (polars' own window machinery)."""
    lengths = groups.ends - groups.starts
    frame = pl.DataFrame({f"in{i}": c.series for i, c in enumerate(inputs)}).with_columns(
        __group=pl.Series(np.repeat(np.arange(len(lengths)), lengths))
    )
    exprs = method.reference([pl.col(f"in{i}") for i in range(len(inputs))])
    result = frame.select(
        e.over("__group").cast(pl.Float64).alias(f"out{i}") for i, e in enumerate(exprs)
    )
    if groups.order is not None:
        result = result.with_columns(__row=pl.Series(groups.order)).sort("__row").drop("__row")
    return list(result.iter_columns())


def _restore(values: npt.NDArray[_T], order: Ints) -> npt.NDArray[_T]:
    """Values computed on rows taken in ``order``, put back in the original row order."""
    restored = np.empty_like(values)
    restored[order] = values
    return restored


# ------------------------------------------------------------------------------ frame interface


@dataclass(frozen=True, slots=True)
class Indicator:
    """One indicator to add to a frame: its input columns, output columns and method."""

    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    method: _Method = field(repr=False)

    def reference(self, by: str | None = "symbol") -> list[pl.Expr]:
        """The reference definition as polars expressions (slow; for checks and docs)."""
        exprs = self.method.reference([pl.col(name) for name in self.inputs])
        return [_per(e, by).alias(name) for e, name in zip(exprs, self.outputs, strict=True)]


def Sma(source: str, period: int, out: str) -> Indicator:  # noqa: N802 - TA-Lib's name
    """Simple moving average (TA-Lib ``SMA``) of ``source`` into ``out``."""
    return Indicator((source,), (out,), _sma_method(period))


def Ema(source: str, period: int, out: str) -> Indicator:  # noqa: N802
    """SMA-seeded exponential moving average (TA-Lib ``EMA``)."""
    return Indicator((source,), (out,), _ema_method(period))


def Rsi(source: str, period: int, out: str) -> Indicator:  # noqa: N802
    """Relative strength index, Wilder smoothing (TA-Lib ``RSI``); null where it never moved."""
    return Indicator((source,), (out,), _rsi_method(period))


def Macd(  # noqa: N802
    source: str, fast: int = 12, slow: int = 26, signal: int = 9, prefix: str = "macd"
) -> Indicator:
    """``{prefix}``, ``{prefix}_signal``, ``{prefix}_hist`` (TA-Lib ``MACD``)."""
    outputs = (prefix, f"{prefix}_signal", f"{prefix}_hist")
    return Indicator((source,), outputs, _macd_method(fast, slow, signal))


def Stddev(source: str, period: int, out: str) -> Indicator:  # noqa: N802
    """Rolling population standard deviation (TA-Lib ``STDDEV`` with ``nbdev=1``)."""
    return Indicator((source,), (out,), _stddev_method(period))


def Bbands(  # noqa: N802
    source: str, period: int = 20, nbdev: float = 2.0, prefix: str = "bb"
) -> Indicator:
    """``{prefix}_upper``, ``{prefix}_middle``, ``{prefix}_lower`` (TA-Lib ``BBANDS``, SMA)."""
    outputs = (f"{prefix}_upper", f"{prefix}_middle", f"{prefix}_lower")
    return Indicator((source,), outputs, _bbands_method(period, nbdev))


def Atr(  # noqa: N802
    high: str = "high", low: str = "low", close: str = "close", period: int = 14, out: str = "atr"
) -> Indicator:
    """Average true range, Wilder smoothing (TA-Lib ``ATR``); the first bar has no true range."""
    return Indicator((high, low, close), (out,), _atr_method(period))


def _add_eager(
    frame: pl.DataFrame, indicators: Sequence[Indicator], by: str | None
) -> pl.DataFrame:
    groups = _groups(None if by is None else frame.get_column(by), frame.height)
    prepared: dict[str, _Inputs] = {}
    columns: list[pl.Series] = []
    for indicator in indicators:
        for name in indicator.inputs:
            if name not in prepared:
                prepared[name] = _prepare(frame.get_column(name), groups)
        outputs = _compute(indicator.method, [prepared[n] for n in indicator.inputs], groups)
        columns += [s.alias(name) for s, name in zip(outputs, indicator.outputs, strict=True)]
    return frame.with_columns(columns)


def add_indicators(frame: FrameT, *indicators: Indicator, by: str | None = "symbol") -> FrameT:
    """``frame`` with the columns of every indicator added (replaced where they exist).

    The groups are found once for all of them; each regular group is one TA-Lib call per
    indicator. A ``LazyFrame`` is computed when it is collected.
    """
    if isinstance(frame, pl.LazyFrame):
        schema = dict(frame.collect_schema())
        for indicator in indicators:
            schema.update(dict.fromkeys(indicator.outputs, pl.Float64()))
        return frame.map_batches(lambda df: _add_eager(df, indicators, by), schema=schema)
    return _add_eager(frame, indicators, by)


def add_rsi(
    frame: FrameT,
    source: str = "close",
    out: str = "rsi",
    period: int = 14,
    by: str | None = "symbol",
) -> FrameT:
    """``frame`` with column ``out`` = :func:`rsi` of ``source``."""
    return add_indicators(frame, Rsi(source, period, out), by=by)


def add_macd(
    frame: FrameT,
    source: str = "close",
    prefix: str = "macd",
    fast: int = 12,
    slow: int = 26,
    signal: int = 9,
    by: str | None = "symbol",
) -> FrameT:
    """``frame`` with ``{prefix}``, ``{prefix}_signal`` and ``{prefix}_hist`` (TA-Lib ``MACD``)."""
    return add_indicators(frame, Macd(source, fast, slow, signal, prefix), by=by)


# ------------------------------------------------------------------------- expression interface


def _expr(method: _Method, inputs: Sequence[pl.Expr], by: str | None, output: int) -> pl.Expr:
    fields = [e.alias(f"in{i}") for i, e in enumerate(inputs)]
    if by is not None:
        fields.append(pl.col(by).alias("by"))

    def run(batch: pl.Series) -> pl.Series:
        key = batch.struct.field("by") if by is not None else None
        groups = _groups(key, len(batch))
        columns = [_prepare(batch.struct.field(f"in{i}"), groups) for i in range(len(inputs))]
        return _compute(method, columns, groups)[output]

    expr = pl.struct(fields).map_batches(run, return_dtype=pl.Float64)
    name = inputs[0].meta.output_name(raise_if_undetermined=False)
    return expr if name is None else expr.alias(name)


def sma(x: pl.Expr, period: int, by: str | None = "symbol") -> pl.Expr:
    """Simple moving average (TA-Lib ``SMA``)."""
    return _expr(_sma_method(period), [x], by, 0)


def ema(x: pl.Expr, period: int, by: str | None = "symbol") -> pl.Expr:
    """Exponential moving average seeded with an SMA (TA-Lib ``EMA``)."""
    return _expr(_ema_method(period), [x], by, 0)


def rsi(x: pl.Expr, period: int = 14, by: str | None = "symbol") -> pl.Expr:
    """Relative strength index, Wilder smoothing (TA-Lib ``RSI``).

    100 when the window had gains and no losses; null when it had neither (undefined).
    """
    return _expr(_rsi_method(period), [x], by, 0)


def macd(
    x: pl.Expr,
    fast: int = 12,
    slow: int = 26,
    signal: int = 9,
    by: str | None = "symbol",
) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """(macd line, signal line, histogram) as TA-Lib ``MACD`` computes them."""
    method = _macd_method(fast, slow, signal)
    return _expr(method, [x], by, 0), _expr(method, [x], by, 1), _expr(method, [x], by, 2)


def stddev(x: pl.Expr, period: int, by: str | None = "symbol") -> pl.Expr:
    """Rolling population standard deviation (TA-Lib ``STDDEV`` with ``nbdev=1``)."""
    return _expr(_stddev_method(period), [x], by, 0)


def bbands(
    x: pl.Expr, period: int = 20, nbdev: float = 2.0, by: str | None = "symbol"
) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """(upper, middle, lower) Bollinger bands around an SMA (TA-Lib ``BBANDS``, matype SMA)."""
    method = _bbands_method(period, nbdev)
    return _expr(method, [x], by, 0), _expr(method, [x], by, 1), _expr(method, [x], by, 2)


def atr(
    high: pl.Expr, low: pl.Expr, close: pl.Expr, period: int = 14, by: str | None = "symbol"
) -> pl.Expr:
    """Average true range, Wilder smoothing (TA-Lib ``ATR``); the first bar has no true range."""
    return _expr(_atr_method(period), [high, low, close], by, 0)


# ------------------------------------------------------------------ plain polars (no recursion)


def wilder(x: pl.Expr, period: int, by: str | None = "symbol") -> pl.Expr:
    """Wilder's smoothing (``k = 1/period``) seeded with the mean of the first ``period`` inputs."""
    _check_period(period)
    return _per(_seeded_ewm(x, period, 1.0 / period, period), by)


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
