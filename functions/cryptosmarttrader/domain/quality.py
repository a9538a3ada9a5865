"""Zero-tolerance data-quality gate for market data frames. Pure: no I/O, no clock.

The gate inspects a long frame (``DAILY_SCHEMA`` or ``OHLCV_SCHEMA``, one row per symbol and bar)
with vectorized polars expressions evaluated per symbol (``over("symbol")`` / ``group_by``) and
returns findings. It never repairs, fills, interpolates or drops single rows: a series with any
error-severity finding is excluded as a whole, with its reasons, and every other series is
returned unchanged in :attr:`QualityResult.clean`.

Bars are placed on the timeframe grid by floor division (``ts // timeframe_ms``), so a daily
snapshot recorded a few minutes late (CoinGecko has a few of those) still counts for its own
bar; such bars are reported as ``MISALIGNED`` and their timestamps are left as they are. An
exchange candle opens exactly on its grid: one off it (a time-zone or unit error) is an error.

Rows are checked in the order the source gave them: rows out of time order are reported
(``UNORDERED``) before the gate sorts them.

Severity policy (the defaults of :class:`QualityConfig` are tuned for a scan window of a few
hundred daily bars):

* error — the series cannot be trusted as a whole: ``NAN``, ``NON_FINITE`` (an infinite price or
  volume), ``NON_POSITIVE_PRICE``, ``NEGATIVE_VOLUME``, ``OHLC_INCONSISTENT``, ``DUPLICATE``,
  ``FUTURE_TS``, ``BAD_TIMESTAMP`` (before 2009-01-03 or from 2100 on: seconds taken for
  milliseconds, a corrupt value), ``SHORT_HISTORY``, ``NO_RECENT_DATA``; a ``MISALIGNED``
  exchange candle; and, reported by the loaders for a whole source file, ``EMPTY`` (no rows)
  and ``UNREADABLE`` (the file cannot be parsed, or a timestamp is fractional); a ``GAP`` with a single hole longer than ``max_gap_bars`` or a missing
  fraction above ``max_missing_fraction``; a ``STALE`` run of ``stale_error_run`` or more
  identical closes; more than ``max_spikes`` ``SPIKE`` bars.
* warning — kept but reported: short gaps, short stale runs, few spikes, ``ZERO_VOLUME`` (common
  in early CoinGecko data; liquidity filters downstream decide what to trade), ``UNORDERED``
  rows (values intact, returned in time order), daily snapshots more than
  ``misaligned_info_ms`` after their grid point.
* info — daily snapshots at most ``misaligned_info_ms`` (15 min) after their grid point.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Final

import polars as pl
from pydantic import BaseModel, ConfigDict, Field

from cryptosmarttrader.domain.market import DAILY_SCHEMA, OHLCV_SCHEMA, TIMEFRAME_MS
from cryptosmarttrader.domain.types import DomainError

__all__ = [
    "DEFAULT_CONFIG",
    "Finding",
    "QualityCode",
    "QualityConfig",
    "QualityRejectionError",
    "QualityResult",
    "Severity",
    "check_daily",
    "check_ohlcv",
    "conform_candles",
    "source_finding",
]


class QualityCode(StrEnum):
    """Stable finding codes (used in reports, metrics and tests; never rename)."""

    GAP = "GAP"
    DUPLICATE = "DUPLICATE"
    MISALIGNED = "MISALIGNED"
    STALE = "STALE"
    NAN = "NAN"
    NON_POSITIVE_PRICE = "NON_POSITIVE_PRICE"
    ZERO_VOLUME = "ZERO_VOLUME"
    NEGATIVE_VOLUME = "NEGATIVE_VOLUME"
    OHLC_INCONSISTENT = "OHLC_INCONSISTENT"
    SPIKE = "SPIKE"
    FUTURE_TS = "FUTURE_TS"
    SHORT_HISTORY = "SHORT_HISTORY"
    NO_RECENT_DATA = "NO_RECENT_DATA"
    NON_FINITE = "NON_FINITE"
    BAD_TIMESTAMP = "BAD_TIMESTAMP"
    UNORDERED = "UNORDERED"
    EMPTY = "EMPTY"
    UNREADABLE = "UNREADABLE"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


class QualityConfig(BaseModel):
    """Thresholds of the gate. Counts are in bars of the checked timeframe."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_bars: int = Field(default=30, ge=1, description="fewer bars → SHORT_HISTORY (error)")
    max_gap_bars: int = Field(
        default=3, ge=0, description="a single hole of more missing bars → GAP error"
    )
    max_missing_fraction: float = Field(
        default=0.05, ge=0, le=1, description="missing / expected bars above this → GAP error"
    )
    stale_min_run: int = Field(
        default=3, ge=2, description="a run of at least this many identical closes → STALE"
    )
    stale_error_run: int = Field(
        default=10, ge=2, description="a run of at least this many identical closes → error"
    )
    spike_mad_k: float = Field(
        default=10.0, gt=0, description="spike threshold in robust sigmas (1.4826 · MAD)"
    )
    spike_min_log_return: float = Field(
        default=0.3, gt=0, description="a spike's jump and reversal are at least this |log r|"
    )
    spike_reversal: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="the two-bar net move is at most this fraction of the jump",
    )
    max_spikes: int = Field(default=1, ge=0, description="more SPIKE bars than this → error")
    max_lag_bars: int = Field(
        default=3, ge=0, description="last bar older than asof minus this many bars → error"
    )
    misaligned_info_ms: int = Field(
        default=15 * 60_000,
        ge=0,
        description="daily snapshots at most this far off their grid point → info, else warning",
    )


DEFAULT_CONFIG: Final = QualityConfig()


class Finding(BaseModel):
    """One problem found in one series."""

    model_config = ConfigDict(frozen=True)

    code: QualityCode
    severity: Severity
    source: str
    symbol: str
    count: int
    first_ts: int | None  # None: a finding about a whole source file (EMPTY, UNREADABLE)
    reason: str


class QualityResult(BaseModel):
    """Outcome of the gate: the untouched rows of passing series, findings and exclusions."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    clean: pl.DataFrame
    findings: list[Finding]
    excluded: dict[str, list[str]]
    checked_symbols: int
    checked_rows: int

    def totals(self) -> dict[str, int]:
        """Number of findings per code (codes without findings are omitted)."""
        out: dict[str, int] = {}
        for finding in self.findings:
            out[finding.code.value] = out.get(finding.code.value, 0) + 1
        return dict(sorted(out.items()))

    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is Severity.ERROR]


class QualityRejectionError(DomainError):
    """Data refused by the gate before anyone used it; :attr:`findings` say which and why.

    Raised by loaders serving data for decisions; callers treat the symbol as having no data
    (abstain, unmarked, not traded) and report the findings."""

    findings: tuple[Finding, ...] = ()


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


def source_finding(
    code: QualityCode, source: str, symbol: str, reason: str, *, count: int = 0
) -> Finding:
    """An error about a whole source file (``EMPTY``, ``UNREADABLE``, fractional timestamps),
    made by the loader that read it; :func:`check_ohlcv` / :func:`check_daily` take such
    findings as ``prior`` and exclude the series."""
    return Finding(
        code=code,
        severity=Severity.ERROR,
        source=source,
        symbol=symbol,
        count=count,
        first_ts=None,
        reason=reason,
    )


def conform_candles(frame: pl.DataFrame, source: str) -> tuple[pl.DataFrame, list[Finding]]:
    """Candles as a source handed them (numeric columns of any dtype, source order) as
    ``OHLCV_SCHEMA`` rows sorted by symbol and time, without coercing a timestamp.

    A null, non-finite, fractional or implausible timestamp (see ``BAD_TIMESTAMP``) is never
    cast: its rows are left out and its series gets an error finding (the caller rejects the
    series). Rows out of time order get an ``UNORDERED`` warning. Vectorized, one pass."""
    missing = [c for c in OHLCV_SCHEMA if c not in frame.columns]
    if missing:
        raise DomainError(f"frame lacks columns {missing}; expected {list(OHLCV_SCHEMA)}")
    raw_ts = pl.col("ts").cast(pl.Float64, strict=False)
    bad_ts = (
        raw_ts.is_null()
        | ~raw_ts.is_finite()
        | (raw_ts != raw_ts.floor())
        | (raw_ts < MIN_TS_MS)
        | (raw_ts >= MAX_TS_MS)
    ).fill_null(True)
    flagged = frame.select(list(OHLCV_SCHEMA)).with_columns(_bad=bad_ts, _raw=raw_ts)
    good = flagged.filter(~pl.col("_bad")).with_columns(pl.col("_raw").cast(pl.Int64).alias("ts"))
    unordered = good.with_columns(_back=(pl.col("ts").diff().over("symbol") < 0).fill_null(False))
    findings: list[Finding] = []
    bad = (
        flagged.filter(pl.col("_bad"))
        .group_by("symbol", maintain_order=True)
        .agg(n=pl.len(), example=pl.col("_raw").first())
    )
    for symbol, n, example in bad.iter_rows():
        findings.append(
            Finding(
                code=QualityCode.BAD_TIMESTAMP,
                severity=Severity.ERROR,
                source=source,
                symbol=str(symbol),
                count=int(n),
                first_ts=None,
                reason=f"{n} row(s) with a missing, fractional or implausible timestamp "
                f"(e.g. {example!r}); whole milliseconds from 2009-01-03 to 2100 expected, "
                "never rounded",
            )
        )
    back = (
        unordered.filter(pl.col("_back"))
        .group_by("symbol", maintain_order=True)
        .agg(n=pl.len(), first=pl.col("ts").first())
    )
    for symbol, n, first in back.iter_rows():
        findings.append(
            Finding(
                code=QualityCode.UNORDERED,
                severity=Severity.WARNING,
                source=source,
                symbol=str(symbol),
                count=int(n),
                first_ts=int(first),
                reason=f"{n} row(s) come before an earlier bar in the source: rows out of time "
                "order (values kept, sorted by time)",
            )
        )
    clean = good.select(list(OHLCV_SCHEMA)).cast(pl.Schema(OHLCV_SCHEMA)).sort("symbol", "ts")
    return clean, findings


def _require_columns(frame: pl.DataFrame, schema: dict[str, pl.DataType]) -> None:
    missing = [c for c in schema if c not in frame.columns]
    if missing:
        raise DomainError(f"frame lacks columns {missing}; expected {list(schema)}")
    wrong = {c: str(frame.schema[c]) for c, t in schema.items() if frame.schema[c] != t}
    if wrong:
        raise DomainError(f"frame columns have wrong dtypes {wrong}; expected {dict(schema)}")


def _grouped(frame: pl.DataFrame) -> tuple[pl.DataFrame, pl.Series]:
    """``frame`` with each symbol's rows contiguous, in source order within the symbol, and
    symbols in ascending order; and the matching ``new`` mask (the first row of a symbol).

    Loaders hand frames already in that order, which one pass over the run ids shows; only
    another order pays for a stable sort."""
    run = frame["symbol"].rle_id()
    starts = run.diff().fill_null(1) != 0
    firsts = frame["symbol"].filter(starts)
    if firsts.null_count() or not (firsts.shift(-1) > firsts).head(firsts.len() - 1).all():
        frame = frame.sort("symbol", maintain_order=True, nulls_last=True)
        starts = _starts(frame["symbol"])
    return frame, starts


def _starts(symbol: pl.Series) -> pl.Series:
    """True where a row's symbol differs from the previous row's (and on the first row)."""
    starts = symbol.ne_missing(symbol.shift(1))
    return starts.scatter(0, True) if starts.len() else starts


def _flags(
    frame: pl.DataFrame, tf_ms: int, asof_ms: int, cfg: QualityConfig, ohlc: bool
) -> pl.DataFrame:
    """Row-level boolean flags, one column per check, computed per symbol.

    Window-free: rows are grouped per symbol (:func:`_grouped`) and sorted by time within it,
    so "the previous bar of the same symbol" is the previous row unless the row opens its
    symbol (``_new``); one pass of row-wise expressions, no ``over`` partitioning."""
    frame, new = _grouped(frame)
    ts = pl.col("ts")
    first = pl.col("_new")
    back = ((ts.diff() < 0) & ~first).fill_null(False)
    frame = frame.with_columns(_new=new).with_columns(f_unordered=back)
    if frame["f_unordered"].any():  # rows out of time order: sort within each symbol (stable)
        frame = frame.sort("symbol", "ts", maintain_order=True, nulls_last=True)
        frame = frame.with_columns(_new=_starts(frame["symbol"]))

    prices = ["open", "high", "low", "close"] if ohlc else ["close"]
    finite_checked = [*prices, "volume"] if ohlc else [*prices, "volume", "market_cap"]
    close = pl.col("close")
    valid_close = close.is_not_null() & close.is_not_nan() & (close > 0)
    bucket = ts // tf_ms
    step = pl.when(~first).then(bucket.diff())
    vol = pl.col("volume")
    offset = ts % tf_ms
    same = ((close == close.shift(1)) & ~first).fill_null(False) & valid_close
    logret = pl.when(valid_close & valid_close.shift(1) & ~first).then(
        (close / close.shift(1)).log()
    )
    if ohlc:
        hi, lo, op = pl.col("high"), pl.col("low"), pl.col("open")
        ohlc_bad = (
            (hi < pl.max_horizontal(op, close)) | (lo > pl.min_horizontal(op, close)) | (lo > hi)
        ).fill_null(False)
    else:
        ohlc_bad = pl.lit(False)
    flagged = frame.with_columns(
        f_nan=pl.any_horizontal([pl.col(c).is_null() | pl.col(c).is_nan() for c in prices]),
        f_nonfinite=pl.any_horizontal(
            [pl.col(c).is_infinite().fill_null(False) for c in finite_checked]
        ),
        f_badts=(ts < MIN_TS_MS) | (ts >= MAX_TS_MS),
        f_nonpos=pl.any_horizontal([(pl.col(c) <= 0).fill_null(False) for c in prices]),
        f_zero_vol=vol.is_null() | vol.is_nan() | (vol == 0),
        f_neg_vol=(vol < 0).fill_null(False),
        f_dup=(step == 0).fill_null(False),
        f_missing=(step - 1).clip(lower_bound=0).fill_null(0),
        f_misaligned=offset != 0,
        f_offset=offset,  # time after the grid point the bar is counted for
        f_future=ts > asof_ms,
        f_same=same,
        f_logret=logret,
        f_ohlc=ohlc_bad,
        _gid=first.cum_sum(),
    )

    # a run of identical closes: from a row that does not repeat its predecessor to the row
    # before the next such row (a symbol's first row never repeats, so runs stay in a symbol)
    index = pl.int_range(pl.len(), dtype=pl.Int64)
    run_start = pl.when(~pl.col("f_same")).then(index).forward_fill()
    run_end = pl.when(~pl.col("f_same").shift(-1).fill_null(False)).then(index).backward_fill()
    r = pl.col("f_logret")
    # the next bar's return; null at a symbol's last row, since a first row has no return
    r_next = r.shift(-1)
    medians = flagged.group_by("_gid").agg(_med=r.median())
    flagged = flagged.join(medians, on="_gid", how="left", maintain_order="left")
    mads = flagged.group_by("_gid").agg(_mad=(r - pl.col("_med")).abs().median())
    flagged = flagged.join(mads, on="_gid", how="left", maintain_order="left")
    thr = pl.max_horizontal(
        pl.col("_mad") * (cfg.spike_mad_k * _ROBUST_SIGMA), pl.lit(cfg.spike_min_log_return)
    )
    return flagged.with_columns(
        f_run_len=run_end - run_start + 1,
        f_spike=(
            (r.abs() > thr)
            & (r_next.abs() > thr)
            & (r.sign() != r_next.sign())
            & ((r + r_next).abs() <= r.abs() * cfg.spike_reversal)
        ).fill_null(False),
    ).with_columns(
        f_stale=pl.col("f_same") & (pl.col("f_run_len") >= cfg.stale_min_run),
    )


def _first_ts(flag: str) -> pl.Expr:
    return pl.col("ts").filter(pl.col(flag)).min()


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
    flagged = _flags(frame, tf_ms, asof_ms, cfg, ohlc)
    per_symbol = (
        flagged.group_by("_gid", maintain_order=True)
        .agg(
            symbol=pl.col("symbol").first(),
            n=pl.len(),
            first=pl.col("ts").min(),
            last=pl.col("ts").filter(~pl.col("f_future")).max(),
            NAN=pl.col("f_nan").sum(),
            NAN_first=_first_ts("f_nan"),
            NON_FINITE=pl.col("f_nonfinite").sum(),
            NON_FINITE_first=_first_ts("f_nonfinite"),
            BAD_TIMESTAMP=pl.col("f_badts").sum(),
            BAD_TIMESTAMP_first=_first_ts("f_badts"),
            UNORDERED=pl.col("f_unordered").sum(),
            UNORDERED_first=_first_ts("f_unordered"),
            NON_POSITIVE_PRICE=pl.col("f_nonpos").sum(),
            NON_POSITIVE_PRICE_first=_first_ts("f_nonpos"),
            ZERO_VOLUME=pl.col("f_zero_vol").sum(),
            ZERO_VOLUME_first=_first_ts("f_zero_vol"),
            NEGATIVE_VOLUME=pl.col("f_neg_vol").sum(),
            NEGATIVE_VOLUME_first=_first_ts("f_neg_vol"),
            DUPLICATE=pl.col("f_dup").sum(),
            DUPLICATE_first=_first_ts("f_dup"),
            GAP=pl.col("f_missing").sum(),
            GAP_first=pl.col("ts").filter(pl.col("f_missing") > 0).min(),
            GAP_max=pl.col("f_missing").max(),
            MISALIGNED=pl.col("f_misaligned").sum(),
            MISALIGNED_first=_first_ts("f_misaligned"),
            MISALIGNED_max=pl.col("f_offset").max(),
            FUTURE_TS=pl.col("f_future").sum(),
            FUTURE_TS_first=_first_ts("f_future"),
            OHLC_INCONSISTENT=pl.col("f_ohlc").sum(),
            OHLC_INCONSISTENT_first=_first_ts("f_ohlc"),
            STALE=pl.col("f_stale").sum(),
            STALE_first=_first_ts("f_stale"),
            STALE_max=pl.col("f_run_len").filter(pl.col("f_stale")).max(),
            SPIKE=pl.col("f_spike").sum(),
            SPIKE_first=_first_ts("f_spike"),
        )
        .drop("_gid")
    )
    findings = [*prior, *_findings(per_symbol, tf_ms, timeframe, asof_ms, cfg, source, ohlc)]
    excluded: dict[str, list[str]] = {}
    for f in findings:
        if f.severity is Severity.ERROR and f.code.value not in excluded.get(f.symbol, []):
            excluded.setdefault(f.symbol, []).append(f.code.value)
    # the flagged rows are the frame's own rows, sorted by symbol and time
    clean = flagged.filter(~pl.col("symbol").is_in(list(excluded))).select(list(schema))
    return QualityResult(
        clean=clean,
        findings=findings,
        excluded=excluded,
        checked_symbols=len(set(per_symbol["symbol"].to_list()) | {f.symbol for f in prior}),
        checked_rows=frame.height,
    )


def _findings(
    per_symbol: pl.DataFrame,
    tf_ms: int,
    timeframe: str,
    asof_ms: int,
    cfg: QualityConfig,
    source: str,
    ohlc: bool,
) -> list[Finding]:
    """Turn the per-symbol summary (one row per series, not per bar) into findings."""
    out: list[Finding] = []
    for row in per_symbol.iter_rows(named=True):
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
