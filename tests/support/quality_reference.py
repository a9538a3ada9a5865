"""The data-quality gate's checks as they were before its small-window fast paths, kept only
as the reference that tests/unit/test_quality_equivalence.py compares the gate with (same
findings, reasons, exclusions and rows on real and damaged inputs). Never used by the product:
the model classes are the gate's own, so findings compare equal."""

# ruff: noqa
# mypy: ignore-errors

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import polars as pl

from cryptosmarttrader.domain.market import DAILY_SCHEMA, OHLCV_SCHEMA, TIMEFRAME_MS
from cryptosmarttrader.domain.quality import (
    DEFAULT_CONFIG,
    Finding,
    QualityCode,
    QualityConfig,
    QualityResult,
    Severity,
    source_finding,
)
from cryptosmarttrader.domain.types import DomainError

_Bools = npt.NDArray[np.bool_]
_Ints = npt.NDArray[np.int64]
_Floats = npt.NDArray[np.float64]

_ROBUST_SIGMA: Final = 1.4826
MIN_TS_MS: Final = 1_230_940_800_000  # 2009-01-03, the first Bitcoin block
MAX_TS_MS: Final = 4_102_444_800_000  # 2100-01-01
_ALWAYS_ERROR: Final = (
    QualityCode.NAN,
    QualityCode.NON_FINITE,
    QualityCode.BAD_TIMESTAMP,
    QualityCode.NON_POSITIVE_PRICE,
    QualityCode.NEGATIVE_VOLUME,
    QualityCode.OHLC_INCONSISTENT,
    QualityCode.DUPLICATE,
    QualityCode.FUTURE_TS,
)


def check_daily(
    frame: pl.DataFrame,
    asof_ms: int,
    config: QualityConfig = DEFAULT_CONFIG,
    source: str = "coingecko",
    prior: Sequence[Finding] = (),
) -> QualityResult:
    """Check a ``DAILY_SCHEMA`` universe (close, volume, market_cap per coin and day).

    ``prior`` are findings the loader made about the source files (see :func:`source_finding`):
    they are reported with the gate's own, and an error among them excludes its series."""
    _require_columns(frame, DAILY_SCHEMA)
    return _check(frame, TIMEFRAME_MS["1d"], "1d", asof_ms, config, source, prior, ohlc=False)


def check_ohlcv(
    frame: pl.DataFrame,
    timeframe: str,
    asof_ms: int,
    config: QualityConfig = DEFAULT_CONFIG,
    source: str = "binance",
    prior: Sequence[Finding] = (),
) -> QualityResult:
    """Check an ``OHLCV_SCHEMA`` frame of candles of one ``timeframe`` (e.g. ``"1h"``), in the
    order the source gave them; ``prior`` as in :func:`check_daily`."""
    if timeframe not in TIMEFRAME_MS:
        raise DomainError(f"unknown timeframe {timeframe!r}; known: {sorted(TIMEFRAME_MS)}")
    _require_columns(frame, OHLCV_SCHEMA)
    tf_ms = TIMEFRAME_MS[timeframe]
    return _check(frame, tf_ms, timeframe, asof_ms, config, source, prior, ohlc=True)


def _require_columns(frame: pl.DataFrame, schema: dict[str, pl.DataType]) -> None:
    missing = [c for c in schema if c not in frame.columns]
    if missing:
        raise DomainError(f"frame lacks columns {missing}; expected {list(schema)}")
    wrong = {c: str(frame.schema[c]) for c, t in schema.items() if frame.schema[c] != t}
    if wrong:
        raise DomainError(f"frame columns have wrong dtypes {wrong}; expected {dict(schema)}")


def _grouped(frame: pl.DataFrame) -> tuple[pl.DataFrame, _Bools]:
    """``frame`` with each symbol's rows contiguous, in source order within the symbol, and
    symbols in ascending order; and the matching ``new`` mask (the first row of a symbol).

    Loaders hand frames already in that order, which one pass over the run ids shows; only
    another order pays for a stable sort."""
    new = _starts(frame["symbol"])
    firsts = frame["symbol"].filter(pl.Series(new, dtype=pl.Boolean))
    if firsts.null_count() or not (firsts.shift(-1) > firsts).head(firsts.len() - 1).all():
        frame = frame.sort("symbol", maintain_order=True, nulls_last=True)
        new = _starts(frame["symbol"])
    return frame, new


def _starts(symbol: pl.Series) -> _Bools:
    """True where a row's symbol differs from the previous row's (and on the first row)."""
    run = symbol.rle_id().to_numpy()
    new = np.empty(len(run), dtype=bool)
    new[:1] = True
    np.not_equal(run[1:], run[:-1], out=new[1:])
    return new


def _ohlc_inconsistent() -> pl.Expr:
    hi, lo, op, close = pl.col("high"), pl.col("low"), pl.col("open"), pl.col("close")
    return (
        (hi < pl.max_horizontal(op, close)) | (lo > pl.min_horizontal(op, close)) | (lo > hi)
    ).fill_null(False)


def _group_median(values: _Floats, gid: _Ints, groups: int) -> _Floats:
    """Median of ``values`` per group (rows grouped by ``gid``, ascending), NaN for a group
    without values; polars' median, so a NaN value sorts above every number as before."""
    medians = (
        pl.DataFrame({"g": gid, "v": values})
        .with_columns(pl.col("g").set_sorted())
        .group_by("g", maintain_order=True)
        .agg(pl.col("v").median())
    )
    out = np.full(groups, np.nan)
    out[medians["g"].to_numpy()] = medians["v"].fill_null(np.nan).to_numpy()
    return out


_NONE: Final = np.zeros(0, dtype=np.int64)


class _Summary:
    """Per-series counts of the row-level checks over rows grouped per symbol and sorted by
    time. Each check finds its flagged rows (usually few) in vectorized passes and is
    aggregated over those rows only: count, first bar, and the largest of a measure."""

    def __init__(self, ts: _Ints, gid: _Ints, groups: int) -> None:
        self.ts, self.gid, self.groups = ts, gid, groups
        self.columns: dict[str, Sequence[int | None]] = {}

    def rows(self, code: str, rows: _Ints, *, max_of: _Ints | None = None) -> None:
        """``code`` flags the rows at the ascending indices ``rows``."""
        groups = self.gid[rows]
        self.columns[code] = np.bincount(groups, minlength=self.groups).tolist()
        firsts: list[int | None] = [None] * self.groups
        present, first_index = np.unique(groups, return_index=True)
        for g, t in zip(present.tolist(), self.ts[rows[first_index]].tolist(), strict=True):
            firsts[g] = t
        self.columns[f"{code}_first"] = firsts
        if max_of is not None:
            largest = np.zeros(self.groups, dtype=np.int64)
            np.maximum.at(largest, groups, max_of)
            self.columns[f"{code}_max"] = largest.tolist()

    def count(self, code: str, flag: _Bools) -> None:
        self.rows(code, np.flatnonzero(flag))


def _all_finite(values: _Floats) -> bool:
    """True when no value is NaN or infinite (one summing pass; an overflowing sum of huge
    values only sends the caller to its exact per-row path)."""
    with np.errstate(all="ignore"):
        return bool(np.isfinite(np.sum(values))) if len(values) else True


def _summarize(
    frame: pl.DataFrame, tf_ms: int, asof_ms: int, cfg: QualityConfig, ohlc: bool
) -> tuple[pl.DataFrame, _Ints, list[dict[str, Any]]]:
    """(the frame's rows grouped per symbol and sorted by time, each row's group, one summary
    row per series): what :func:`_findings` turns into findings.

    The previous bar of a symbol is the previous row unless the row opens its symbol; a null
    value reads as NaN, and every check treats both alike (as the gate always has). Clean
    columns take fast paths (one reduction shows that no row can be flagged); the exact
    per-row flags run otherwise."""
    frame, new = _grouped(frame)
    ts: _Ints = frame["ts"].to_numpy()
    n = len(ts)
    starts = np.flatnonzero(new)
    sizes = np.diff(np.append(starts, n))
    groups = len(starts)
    gid: _Ints = np.repeat(np.arange(groups, dtype=np.int64), sizes)
    backward = ts[1:] < ts[:-1]
    back = np.flatnonzero(backward & ~new[1:]) + 1
    if len(back):  # rows out of time order: sort within each symbol (groups keep their rows)
        order = np.lexsort((ts, gid))
        frame = frame[order]
        ts = ts[order]
        flagged = np.zeros(n, dtype=bool)
        flagged[back] = True
        back = np.flatnonzero(flagged[order])  # the flags follow their rows
    summary = _Summary(ts, gid, groups)
    summary.rows("UNORDERED", back)
    if not n:
        return frame, gid, []

    def column(name: str) -> _Floats:
        values: _Floats = frame[name].to_numpy().astype(np.float64, copy=False)
        return values

    prices = [column(c) for c in (["open", "high", "low", "close"] if ohlc else ["close"])]
    close, vol = prices[-1], column("volume")
    others = [vol] if ohlc else [vol, column("market_cap")]
    finite = [_all_finite(v) for v in prices]
    if all(finite) and all(_all_finite(v) for v in others):
        summary.rows("NAN", _NONE)
        summary.rows("NON_FINITE", _NONE)
        f_nan = None
    else:
        f_nan = np.zeros(n, dtype=bool)
        f_nonfinite = np.zeros(n, dtype=bool)
        for price in prices:
            f_nan |= np.isnan(price)
        for values in [*prices, *others]:
            f_nonfinite |= np.isinf(values)
        summary.count("NAN", f_nan)
        summary.count("NON_FINITE", f_nonfinite)
    if all(finite) and min(float(np.min(p)) for p in prices) > 0:
        summary.rows("NON_POSITIVE_PRICE", _NONE)
    else:
        f_nonpos = np.zeros(n, dtype=bool)
        for price in prices:
            f_nonpos |= price <= 0
        summary.count("NON_POSITIVE_PRICE", f_nonpos)
    if ts[starts].min() >= MIN_TS_MS and ts.max() < MAX_TS_MS:
        summary.rows("BAD_TIMESTAMP", _NONE)
    else:
        summary.count("BAD_TIMESTAMP", (ts < MIN_TS_MS) | (ts >= MAX_TS_MS))
    if _all_finite(vol) and len(vol) and float(np.min(vol)) > 0:
        summary.rows("ZERO_VOLUME", _NONE)
        summary.rows("NEGATIVE_VOLUME", _NONE)
    else:
        summary.count("ZERO_VOLUME", np.isnan(vol) | (vol == 0))
        summary.count("NEGATIVE_VOLUME", vol < 0)
    if ohlc:
        op, hi, lo = prices[0], prices[1], prices[2]
        with np.errstate(invalid="ignore"):
            f_ohlc = (hi < np.fmax(op, close)) | (lo > np.fmin(op, close)) | (lo > hi)
        if f_nan is not None and f_nan.any():  # polars' null and NaN order decides these rows
            exact = frame.filter(pl.Series(f_nan)).select(_ohlc_inconsistent())
            f_ohlc[f_nan] = exact.to_series().to_numpy()
        summary.count("OHLC_INCONSISTENT", f_ohlc)
    else:
        summary.rows("OHLC_INCONSISTENT", _NONE)

    bucket = ts // tf_ms
    offset = ts - bucket * tf_ms  # time after the grid point the bar is counted for
    step = np.diff(bucket)
    odd = np.flatnonzero(step != 1) + 1  # rows that are not exactly one bar after the previous
    odd = odd[~new[odd]]  # a symbol's first bar has no predecessor: neither duplicate nor gap
    odd_step = step[odd - 1]
    summary.rows("DUPLICATE", odd[odd_step == 0])
    holes = odd_step > 1
    missing = odd_step[holes] - 1
    summary.rows("GAP", odd[holes], max_of=missing)
    summary.columns["GAP"] = (
        np.bincount(gid[odd[holes]], weights=missing, minlength=groups).astype(np.int64).tolist()
    )
    misaligned = np.flatnonzero(offset)
    summary.rows("MISALIGNED", misaligned, max_of=offset[misaligned])
    future = np.flatnonzero(ts > asof_ms) if ts.max() > asof_ms else _NONE
    summary.rows("FUTURE_TS", future)

    # identical closes: a row repeating its predecessor's valid close, in runs that start at
    # the row before the first repeat (a symbol's first row repeats nothing)
    valid = close > 0  # neither missing, NaN, zero nor negative
    repeat = np.flatnonzero(close[1:] == close[:-1]) + 1
    repeat = repeat[valid[repeat] & ~new[repeat]]
    if len(repeat):
        run_start = np.flatnonzero(np.diff(repeat, prepend=-2) != 1)
        run_len = np.diff(np.append(run_start, len(repeat))) + 1
        per_row = np.repeat(run_len, run_len - 1)
        stale = per_row >= cfg.stale_min_run
        summary.rows("STALE", repeat[stale], max_of=per_row[stale])
    else:
        summary.rows("STALE", _NONE, max_of=_NONE)

    # spikes: a jump beyond the series' robust threshold reversed on the next bar
    has_return = valid.copy()
    has_return[1:] &= valid[:-1]
    has_return &= ~new
    with np.errstate(all="ignore"):
        ratio = close[1:] / close[:-1]  # only read where has_return
    if all(finite):
        spike = _spikes(ratio, has_return, starts, cfg)
    else:  # an infinite close makes NaN returns: polars' NaN ordering decides, as ever
        r = np.full(n, np.nan)
        with np.errstate(all="ignore"):
            np.log(ratio, out=r[1:], where=has_return[1:])
        returns, return_gid = r[has_return], gid[has_return]
        median = _group_median(returns, return_gid, groups)
        mad = _group_median(np.abs(returns - median[return_gid]), return_gid, groups)
        threshold = np.fmax(mad * (cfg.spike_mad_k * _ROBUST_SIGMA), cfg.spike_min_log_return)
        spike = np.flatnonzero(_spikes_polars(r, has_return, threshold[gid], cfg))
    summary.rows("SPIKE", spike)

    ends = np.append(starts[1:], n) - 1
    if len(future):  # the last bar of a series that is not after asof
        last_rows = np.maximum.reduceat(np.where(ts > asof_ms, -1, np.arange(n)), starts)
        last = [None if i < 0 else int(ts[i]) for i in last_rows.tolist()]
    else:
        last = ts[ends].tolist()
    columns = {
        "symbol": frame["symbol"].gather(starts).to_list(),
        "n": sizes.tolist(),
        "first": ts[starts].tolist(),
        "last": last,
        **summary.columns,
    }
    names = list(columns)
    rows = [dict(zip(names, values, strict=True)) for values in zip(*columns.values(), strict=True)]
    return frame, gid, rows


def _median(values: _Floats) -> float:
    """The median of NaN-free ``values`` (the mean of the two middle ones for an even count)."""
    k = len(values) // 2
    if len(values) % 2:
        return float(np.partition(values, k)[k])
    low, high = np.partition(values, (k - 1, k))[k - 1 : k + 1]
    return float((low + high) / 2)


def _spikes(ratio: _Floats, has_return: _Bools, starts: _Ints, cfg: QualityConfig) -> _Ints:
    """Rows whose return jumps beyond the series' threshold and reverses on the next bar.

    ``ratio[i - 1]`` is row ``i``'s close over the previous one (read only where
    ``has_return``). The
    threshold, ``max(k · 1.4826 · MAD, spike_min_log_return)``, is never below the minimum,
    so candidates are found first with the minimum alone (returns beyond it are rare), and the
    median and MAD are computed only for the series that have candidates."""
    floor = cfg.spike_min_log_return
    up, down = math.exp(floor) * (1 - 1e-9), math.exp(-floor) * (1 + 1e-9)  # a loose bound
    with np.errstate(invalid="ignore"):
        big = np.flatnonzero((ratio > up) | (ratio < down)) + 1
    big = big[has_return[big]]
    jump = big[np.isin(big + 1, big, assume_unique=True)]  # and the next row's return too
    if not len(jump):
        return _NONE
    a, b = np.log(ratio[jump - 1]), np.log(ratio[jump])
    reverses = (
        (np.abs(a) > floor)
        & (np.abs(b) > floor)
        & (np.sign(a) != np.sign(b))
        & (np.abs(a + b) <= np.abs(a) * cfg.spike_reversal)
    )
    jump, a, b = jump[reverses], a[reverses], b[reverses]
    group = np.searchsorted(starts, jump, side="right") - 1
    bounds = np.append(starts, len(has_return))
    threshold = np.full(len(starts), floor)
    for g in np.unique(group).tolist():  # once per series with a candidate, not per row
        lo, hi = int(bounds[g]), int(bounds[g + 1])
        returns = np.log(ratio[lo : hi - 1][has_return[lo + 1 : hi]])
        if len(returns):
            mad = _median(np.abs(returns - _median(returns)))
            threshold[g] = max(mad * (cfg.spike_mad_k * _ROBUST_SIGMA), floor)
    thr = threshold[group]
    spike: _Ints = jump[(np.abs(a) > thr) & (np.abs(b) > thr)]
    return spike


def _spikes_polars(r: _Floats, has_return: _Bools, thr: _Floats, cfg: QualityConfig) -> _Bools:
    """The spike rule in polars, for returns that hold NaN (ordered above every number)."""
    frame = pl.DataFrame({"r": r, "ok": has_return, "thr": thr}).with_columns(
        r=pl.when(pl.col("ok")).then(pl.col("r"))
    )
    rr, rn, t = pl.col("r"), pl.col("r").shift(-1), pl.col("thr")
    flags = frame.select(
        (
            (rr.abs() > t)
            & (rn.abs() > t)
            & (rr.sign() != rn.sign())
            & ((rr + rn).abs() <= rr.abs() * cfg.spike_reversal)
        ).fill_null(False)
    )
    out: _Bools = flags.to_series().to_numpy()
    return out


def _check(
    frame: pl.DataFrame,
    tf_ms: int,
    timeframe: str,
    asof_ms: int,
    cfg: QualityConfig,
    source: str,
    prior: Sequence[Finding],
    *,
    ohlc: bool,
) -> QualityResult:
    schema = OHLCV_SCHEMA if ohlc else DAILY_SCHEMA
    frame = frame.select(list(schema))
    undated: list[Finding] = []
    if frame["ts"].null_count():  # a bar without a time cannot be placed: its series fails
        missing = frame.filter(pl.col("ts").is_null()).group_by("symbol", maintain_order=True)
        for symbol, count in missing.agg(n=pl.len()).iter_rows():
            undated.append(
                source_finding(
                    QualityCode.BAD_TIMESTAMP,
                    source,
                    str(symbol),
                    f"{count} bar(s) without a timestamp",
                    count=int(count),
                )
            )
    dated = frame.filter(pl.col("ts").is_not_null()) if undated else frame
    ordered, gid, per_symbol = _summarize(dated, tf_ms, asof_ms, cfg, ohlc)
    findings = [
        *prior,
        *undated,
        *_findings(per_symbol, tf_ms, timeframe, asof_ms, cfg, source, ohlc),
    ]
    excluded: dict[str, list[str]] = {}
    for f in findings:
        if f.severity is Severity.ERROR and f.code.value not in excluded.get(f.symbol, []):
            excluded.setdefault(f.symbol, []).append(f.code.value)
    # the ordered rows are the frame's own rows, sorted by symbol and time
    kept = np.array([row["symbol"] not in excluded for row in per_symbol], dtype=bool)
    clean = ordered.filter(pl.Series(kept[gid], dtype=pl.Boolean)) if len(gid) else ordered
    return QualityResult(
        clean=clean,
        findings=findings,
        excluded=excluded,
        checked_symbols=len(
            {row["symbol"] for row in per_symbol} | {f.symbol for f in [*prior, *undated]}
        ),
        checked_rows=frame.height,
    )


def _findings(
    per_symbol: list[dict[str, Any]],
    tf_ms: int,
    timeframe: str,
    asof_ms: int,
    cfg: QualityConfig,
    source: str,
    ohlc: bool,
) -> list[Finding]:
    """Turn the per-symbol summary (one row per series, not per bar) into findings."""
    out: list[Finding] = []
    for row in per_symbol:
        sym: str = row["symbol"]
        n: int = row["n"]

        def add(
            code: QualityCode, sev: Severity, count: int, first_ts: int, reason: str, sym: str = sym
        ) -> None:
            out.append(
                Finding(
                    code=code,
                    severity=sev,
                    source=source,
                    symbol=sym,
                    count=count,
                    first_ts=first_ts,
                    reason=reason,
                )
            )

        for code in _ALWAYS_ERROR:
            count = row[code.value]
            if count:
                add(
                    code,
                    Severity.ERROR,
                    count,
                    row[f"{code.value}_first"],
                    _REASONS[code].format(count=count, n=n, tf=timeframe),
                )
        if row["GAP"]:
            missing, longest = row["GAP"], row["GAP_max"]
            fraction = missing / (n + missing)
            bad = longest > cfg.max_gap_bars or fraction > cfg.max_missing_fraction
            add(
                QualityCode.GAP,
                Severity.ERROR if bad else Severity.WARNING,
                missing,
                row["GAP_first"],
                f"{missing} missing {timeframe} bar(s) ({fraction:.1%} of the span), longest hole "
                f"{longest} bar(s); limits: hole ≤ {cfg.max_gap_bars}, "
                f"missing ≤ {cfg.max_missing_fraction:.0%}",
            )
        if row["STALE"]:
            longest = row["STALE_max"]
            bad = longest >= cfg.stale_error_run
            add(
                QualityCode.STALE,
                Severity.ERROR if bad else Severity.WARNING,
                row["STALE"],
                row["STALE_first"],
                f"{row['STALE']} close(s) repeat the previous one in runs of ≥ "
                f"{cfg.stale_min_run}; longest run {longest} identical closes "
                f"(error from {cfg.stale_error_run})",
            )
        if row["SPIKE"]:
            bad = row["SPIKE"] > cfg.max_spikes
            add(
                QualityCode.SPIKE,
                Severity.ERROR if bad else Severity.WARNING,
                row["SPIKE"],
                row["SPIKE_first"],
                f"{row['SPIKE']} bar(s) jump beyond max({cfg.spike_mad_k:g}·robust sigma, "
                f"|log r| {cfg.spike_min_log_return:g}) and reverse on the next bar "
                f"(error above {cfg.max_spikes})",
            )
        if row["ZERO_VOLUME"]:
            add(
                QualityCode.ZERO_VOLUME,
                Severity.WARNING,
                row["ZERO_VOLUME"],
                row["ZERO_VOLUME_first"],
                f"{row['ZERO_VOLUME']} of {n} bars have zero or missing volume",
            )
        if row["MISALIGNED"]:
            worst: int = row["MISALIGNED_max"]
            far = worst > cfg.misaligned_info_ms
            if ohlc:
                sev, what = Severity.ERROR, "exchange candles open on the grid: time-zone error?"
            elif far:
                sev, what = Severity.WARNING, "counted in the bar they fall in, left unchanged"
            else:
                sev, what = Severity.INFO, "counted in the bar they fall in, left unchanged"
            add(
                QualityCode.MISALIGNED,
                sev,
                row["MISALIGNED"],
                row["MISALIGNED_first"],
                f"{row['MISALIGNED']} timestamp(s) off the {timeframe} grid, up to "
                f"{_hm(worst)} (h:mm) after a grid point; {what}",
            )
        if row["UNORDERED"]:
            add(
                QualityCode.UNORDERED,
                Severity.WARNING,
                row["UNORDERED"],
                row["UNORDERED_first"],
                f"{row['UNORDERED']} row(s) come before an earlier bar in the source: rows out "
                "of time order (values kept, sorted by time)",
            )
        if n < cfg.min_bars:
            add(
                QualityCode.SHORT_HISTORY,
                Severity.ERROR,
                n,
                row["first"],
                f"only {n} {timeframe} bar(s), need at least {cfg.min_bars}",
            )
        last = row["last"]
        if last is not None:
            lag = (asof_ms // tf_ms) - (last // tf_ms)
            if lag > cfg.max_lag_bars:
                add(
                    QualityCode.NO_RECENT_DATA,
                    Severity.ERROR,
                    lag,
                    last,
                    f"last bar is {lag} {timeframe} bar(s) before asof (limit "
                    f"{cfg.max_lag_bars}); the series stopped",
                )
    return out


def _hm(ms: int) -> str:
    minutes = ms // 60_000
    return f"{minutes // 60}:{minutes % 60:02d}"


_REASONS: Final[dict[QualityCode, str]] = {
    QualityCode.NAN: "{count} of {n} bars have a NaN or missing price",
    QualityCode.NON_FINITE: "{count} of {n} bars have an infinite price, volume or market cap",
    QualityCode.BAD_TIMESTAMP: (
        "{count} of {n} bars have a timestamp before 2009-01-03 or from 2100 on "
        "(seconds instead of milliseconds, or a corrupt value)"
    ),
    QualityCode.NON_POSITIVE_PRICE: "{count} of {n} bars have a zero or negative price",
    QualityCode.NEGATIVE_VOLUME: "{count} of {n} bars have a negative volume",
    QualityCode.OHLC_INCONSISTENT: (
        "{count} of {n} bars violate low ≤ min(open, close) ≤ max(open, close) ≤ high"
    ),
    QualityCode.DUPLICATE: "{count} bar(s) repeat an earlier bar of the same {tf} period",
    QualityCode.FUTURE_TS: "{count} bar(s) are later than asof (look-ahead)",
}
