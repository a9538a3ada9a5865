"""Recorded real market data (``CST_DATA_DIR``), read in place: the ``MarketData`` port for replays.

Layout (see the data folder's README): CoinGecko daily CSVs ``coingecko_daily/coins/<id>.csv``
(``timestamp`` ms UTC, ``price``, ``volume``, ``market_cap``) with ``coins_metadata.json``;
freqtrade OHLCV JSON ``binance_spot/<tf>/<BASE>_USDT-<tf>.json``; Binance USDT-M futures funding,
mark and OHLCV JSON in ``binance_futures/``.

Error policy: nothing is skipped silently. Every unreadable file raises :class:`DataSourceError`
naming the file and what is wrong with it (a corrupt file is corrupt whatever the ``asof``), with
one documented exception: :meth:`RecordedMarketData.coins_metadata` reports metadata entries that
fail validation in :attr:`RecordedMarketData.metadata_exclusions` instead of failing, because a
bad category list must not stop the price data from being used.

Candle files (freqtrade arrays) are read as recorded, in file order. A file that cannot be
parsed, holds no rows, or has a fractional or implausible timestamp raises
:class:`CandleFileError` with its quality finding (``UNREADABLE``, ``EMPTY``, ``BAD_TIMESTAMP``).
The candles served for trading (:meth:`RecordedMarketData.ohlcv`, futures and mark prices) pass
the quality gate's row rules over the requested range first: a NaN, infinite, zero or negative
price, a negative volume, an OHLC inconsistency, a duplicate or an off-grid bar raises
:class:`RejectedBarsError` naming the symbol, the file, the first bad bar and the reason. Only
that symbol is affected: callers treat it as "no data" (unmarked, not traded) while its data is
bad. :meth:`RecordedMarketData.candles_as_recorded` hands the raw rows and the file findings to
``cst data check``, which reports every file instead of stopping at the first bad one.

No look-ahead: rows later than ``asof`` / ``end`` are cut before anything is returned, and no
value returned depends on them. Values are returned exactly as recorded: timestamps, prices and
volumes are never shifted, filled or interpolated (the quality gate decides what to exclude).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Final

import numpy as np
import polars as pl
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from cryptosmarttrader.adapters import candle_cache
from cryptosmarttrader.domain.market import OHLCV_SCHEMA
from cryptosmarttrader.domain.quality import (
    MAX_TS_MS,
    MIN_TS_MS,
    Finding,
    QualityCode,
    QualityConfig,
    QualityRejectionError,
    Severity,
    check_ohlcv,
    source_finding,
)
from cryptosmarttrader.domain.types import DomainError, ms_from_utc, utc_from_ms
from cryptosmarttrader.domain.universe import coin_exclusion

try:  # ~2.5x faster on the recorded candle files; ccxt depends on it
    import orjson

    _ORJSON = True
except ImportError:  # pragma: no cover - bundles without orjson parse with the standard library
    _ORJSON = False


def _fast_loads(body: bytes) -> object:
    return orjson.loads(body) if _ORJSON else json.loads(body)


__all__ = [
    "BAR_RULES",
    "FUNDING_SCHEMA",
    "CandleBatch",
    "CandleFileError",
    "CoinMeta",
    "DataSourceError",
    "RecordedMarketData",
    "RejectedBarsError",
]

FUNDING_SCHEMA: Final[dict[str, pl.DataType]] = {
    "symbol": pl.String(),
    "ts": pl.Int64(),
    "funding_rate": pl.Float64(),
}

_CSV_COLUMNS: Final = ("timestamp", "price", "volume", "market_cap")
_CSV_SCHEMA: Final[dict[str, pl.DataType]] = {
    "timestamp": pl.Int64(),
    "price": pl.Float64(),
    "volume": pl.Float64(),
    "market_cap": pl.Float64(),
}
_SPOT_TIMEFRAMES: Final = ("1d", "4h", "1h")
_SPOT_VENUES: Final = ("binance", "kucoin")
_FUTURES_TIMEFRAMES: Final = ("1h", "1d")
_PAIR_RE: Final = re.compile(r"^([A-Z0-9]{1,20})/(USDT)$")
_ARRAY_WIDTH: Final = 6

_NO_LIMIT: Final = 10**9
BAR_RULES: Final = QualityConfig(
    min_bars=1,
    max_gap_bars=_NO_LIMIT,
    max_missing_fraction=1.0,
    stale_error_run=_NO_LIMIT,
    max_spikes=_NO_LIMIT,
    max_lag_bars=_NO_LIMIT,
)
"""The gate's row rules for candles served to trading: every error a single bar can carry (NaN,
infinite or non-positive price, negative volume, OHLC, duplicate, off-grid, implausible time);
history-wide policies (gaps, stale runs, spikes, length) are the consumers' and stay warnings."""


class DataSourceError(ValueError):
    """A recorded data file or folder cannot be used. The message names it and says why."""


class CandleFileError(DataSourceError, QualityRejectionError):
    """A candle file as a whole is refused: unreadable, empty or with impossible timestamps."""

    def __init__(
        self, code: QualityCode, symbol: str, path: Path, what: str, count: int = 0
    ) -> None:
        DataSourceError.__init__(self, f"{path}: {what} ({code.value})")
        # the finding names the file too: it travels alone into reports and stored rejections
        finding = source_finding(code, "recorded", symbol, f"{path.name}: {what}", count=count)
        self.findings = (finding,)
        self.path = path


class RejectedBarsError(DataSourceError, QualityRejectionError):
    """Bars in the requested range break the gate's row rules; names symbol, file and reason."""

    def __init__(
        self, symbol: str, timeframe: str, path: Path, findings: tuple[Finding, ...]
    ) -> None:
        first = findings[0]
        when = "" if first.first_ts is None else f" (first at {_iso(first.first_ts)})"
        more = f"; and {len(findings) - 1} more finding(s)" if len(findings) > 1 else ""
        DataSourceError.__init__(
            self,
            f"{symbol} {timeframe} bars rejected by the quality gate ({path}): "
            f"{first.code.value}: {first.reason}{when}{more}",
        )
        self.findings = findings
        self.path = path


@dataclass(frozen=True)
class CandleBatch:
    """Candles as recorded (``OHLCV_SCHEMA``, file order, nothing after ``asof``) and the
    findings about files that could not be used at all."""

    frame: pl.DataFrame
    findings: tuple[Finding, ...]


def _iso(ts_ms: int) -> str:
    return utc_from_ms(ts_ms).strftime("%Y-%m-%dT%H:%MZ")


class CoinMeta(BaseModel):
    """CoinGecko metadata of one coin."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(min_length=1)
    symbol: str
    name: str
    categories: tuple[str, ...] = ()
    platform: str | None = None
    genesis_date: date | None = None

    @property
    def exclusion(self) -> str | None:
        """Why this coin is not a growth candidate (stablecoin, wrapped, bridged, lending
        receipt, staking derivative, tracker: see ``domain.universe.coin_exclusion``), or None."""
        return coin_exclusion(self.symbol, self.name, self.categories, self.id)

    @property
    def is_stablecoin(self) -> bool:
        reason = self.exclusion
        return reason is not None and reason.startswith("stablecoin")

    @property
    def is_wrapped(self) -> bool:
        """Wrapped, bridged, receipt or tracker token (excluded, but not a stablecoin)."""
        return self.exclusion is not None and not self.is_stablecoin


@dataclass(frozen=True)
class _DailyCache:
    signature: tuple[tuple[str, int, int, int, int], ...]
    frame: pl.DataFrame
    findings: tuple[Finding, ...] = ()


# The CoinGecko set read by this process, by folder: every reader of the same folder (a replay's
# scan and its execution cycles, each command of a warm process, every test of a worker) reads
# the 572 CSVs once; a folder whose file list, sizes, modification or change times or inodes
# changed is read again.
_DAILY_READS: dict[Path, _DailyCache] = {}
_DAILY_READS_MAX: Final = 8


def _require_utc(ts: datetime, what: str) -> int:
    try:
        return ms_from_utc(ts)
    except DomainError as exc:
        raise DataSourceError(f"{what}: {exc}") from exc


class RecordedMarketData:
    """``MarketData`` over the recorded real data folder."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        if not self.data_dir.is_dir():
            raise DataSourceError(f"data dir {self.data_dir} does not exist or is not a folder")
        self._daily: _DailyCache | None = None
        self._meta: dict[str, CoinMeta] | None = None
        self._owners: dict[str, str] | None = None
        self.metadata_exclusions: dict[str, str] = {}

    # ----------------------------------------------------------------- CoinGecko daily
    @property
    def coins_dir(self) -> Path:
        return self.data_dir / "coingecko_daily" / "coins"

    def _coin_files(self) -> list[Path]:
        folder = self.coins_dir
        if not folder.is_dir():
            raise DataSourceError(f"missing folder {folder} (CoinGecko daily CSVs)")
        files = sorted(folder.glob("*.csv"))
        if not files:
            raise DataSourceError(f"folder {folder} holds no <coin-id>.csv files")
        return files

    def daily_all(self) -> pl.DataFrame:
        """Every CoinGecko row, ``DAILY_SCHEMA``, sorted by symbol and ts (cached in memory
        until any source file changes size or modification time)."""
        files = self._coin_files()
        signature = tuple(
            (f.name, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
            for f in files
            for st in (f.stat(),)
        )
        if self._daily is not None and self._daily.signature == signature:
            return self._daily.frame
        folder = self.coins_dir.resolve()
        shared = _DAILY_READS.get(folder)
        if shared is not None and shared.signature == signature:
            self._daily = shared
            return shared.frame
        for f in files:
            self._check_csv_header(f)
        try:
            raw = pl.read_csv(
                [str(f) for f in files], schema=_CSV_SCHEMA, include_file_paths="path"
            )
        except (pl.exceptions.PolarsError, OSError):
            raw = self._read_csvs_one_by_one(files)
        findings = _daily_file_findings(raw, files)
        frame = (
            raw.lazy()
            .select(
                symbol=pl.col("path").str.extract(r"([^/\\]+)\.csv$"),
                ts=pl.col("timestamp"),
                close=pl.col("price"),
                volume=pl.col("volume"),
                market_cap=pl.col("market_cap"),
            )
            .sort("symbol", "ts")
            .collect()
        )
        null_ts = frame.filter(pl.col("ts").is_null())
        if null_ts.height:
            sym = null_ts["symbol"][0]
            raise DataSourceError(
                f"{self.coins_dir / (sym + '.csv')}: {null_ts.height} row(s) without a timestamp"
            )
        self._daily = _DailyCache(signature, frame, findings)
        _DAILY_READS.pop(folder, None)
        if len(_DAILY_READS) >= _DAILY_READS_MAX:
            _DAILY_READS.pop(next(iter(_DAILY_READS)))
        _DAILY_READS[folder] = self._daily
        return frame

    @property
    def daily_findings(self) -> tuple[Finding, ...]:
        """What the last :meth:`daily_all` read found about whole CoinGecko files: ``EMPTY``
        (header only: error) and ``UNORDERED`` (rows out of time order: warning)."""
        self.daily_all()
        return self._daily.findings if self._daily is not None else ()

    def _check_csv_header(self, path: Path) -> None:
        try:
            with path.open("r", encoding="utf-8") as fh:
                header = fh.readline().strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise DataSourceError(f"{path}: cannot read: {exc}") from exc
        with path.open("rb") as raw:  # a cut-off last line would parse as a wrong number
            raw.seek(0, 2)
            if raw.tell() > 0:
                raw.seek(-1, 2)
                if raw.read(1) != b"\n":
                    raise DataSourceError(
                        f"{path}: the last line is incomplete (no final newline): truncated file?"
                    )
        columns = tuple(c.strip() for c in header.split(","))
        if columns != _CSV_COLUMNS:
            missing = [c for c in _CSV_COLUMNS if c not in columns]
            extra = [c for c in columns if c not in _CSV_COLUMNS]
            raise DataSourceError(
                f"{path}: header {list(columns)} does not match {list(_CSV_COLUMNS)}"
                f" (missing {missing}, unexpected {extra})"
            )

    def _read_csvs_one_by_one(self, files: list[Path]) -> pl.DataFrame:
        """Slow path, only taken when the fast multi-file read failed: find and name the file."""
        frames = []
        for f in files:
            try:
                frames.append(pl.read_csv(f, schema=_CSV_SCHEMA).with_columns(path=pl.lit(str(f))))
            except pl.exceptions.PolarsError as exc:
                first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
                raise DataSourceError(
                    f"{f}: non-numeric or malformed value ({first_line})"
                ) from exc
        return pl.concat(frames)

    def daily_universe(self, asof: datetime, lookback_days: int) -> pl.DataFrame:
        """Daily rows of every coin with ``asof - lookback_days < ts <= asof``, ``DAILY_SCHEMA``."""
        asof_ms = _require_utc(asof, "daily_universe asof")
        if lookback_days < 1:
            raise DataSourceError(f"lookback_days must be ≥ 1, got {lookback_days}")
        start_ms = ms_from_utc(asof - timedelta(days=lookback_days))
        return self.daily_all().filter((pl.col("ts") > start_ms) & (pl.col("ts") <= asof_ms))

    def data_span(self) -> tuple[int, int]:
        """(first_ms, last_ms) over the whole CoinGecko set."""
        frame = self.daily_all()
        first, last = frame["ts"].min(), frame["ts"].max()
        if not isinstance(first, int) or not isinstance(last, int):
            raise DataSourceError(f"{self.coins_dir}: the CSVs hold no rows")
        return first, last

    def coins_metadata(self) -> dict[str, CoinMeta]:
        """Metadata by coin id. Entries that fail validation are counted in
        :attr:`metadata_exclusions` (id → reason), not returned; a malformed file raises."""
        if self._meta is not None:
            return self._meta
        path = self.data_dir / "coingecko_daily" / "coins_metadata.json"
        raw = _load_json(path)
        if not isinstance(raw, dict):
            raise DataSourceError(
                f"{path}: expected a JSON object keyed by coin id, got {type(raw).__name__}"
            )
        meta: dict[str, CoinMeta] = {}
        exclusions: dict[str, str] = {}
        for key, entry in raw.items():
            if not isinstance(entry, dict):
                exclusions[key] = f"entry is {type(entry).__name__}, not an object"
                continue
            try:
                coin = CoinMeta(
                    id=entry.get("id", key),
                    symbol=entry.get("symbol") or "",
                    name=entry.get("name") or "",
                    categories=tuple(entry.get("categories") or ()),
                    platform=entry.get("asset_platform_id"),
                    genesis_date=entry.get("genesis_date") or None,
                )
            except (ValidationError, TypeError) as exc:
                exclusions[key] = f"invalid entry: {exc}".splitlines()[0]
                continue
            if coin.id != key:
                exclusions[key] = f"entry id {coin.id!r} differs from its key"
                continue
            meta[key] = coin
        self._meta = meta
        self.metadata_exclusions = exclusions
        return meta

    # ----------------------------------------------------------------- Binance spot
    def available_pairs(self, timeframe: str) -> list[str]:
        """Spot pairs with a file for ``timeframe``, as ``BASE/USDT``, sorted."""
        folder = self._spot_folder(timeframe)
        suffix = f"_USDT-{timeframe}.json"
        return sorted(f"{f.name[: -len(suffix)]}/USDT" for f in folder.glob(f"*{suffix}"))

    def _spot_folder(self, timeframe: str) -> Path:
        if timeframe not in _SPOT_TIMEFRAMES:
            raise DataSourceError(
                f"no recorded binance spot timeframe {timeframe!r}; have {list(_SPOT_TIMEFRAMES)}"
            )
        folder = self.data_dir / "binance_spot" / timeframe
        if not folder.is_dir():
            raise DataSourceError(f"missing folder {folder} (binance spot {timeframe} candles)")
        return folder

    def pair_of(self, coin_id: str) -> str:
        """The recorded Binance USDT pair of a CoinGecko coin (``bitcoin`` → ``BTC/USDT``).

        A ticker shared by several coins (ETH by ethereum and bridged copies) denotes the coin
        with the largest recorded market cap; the others have no pair and are refused."""
        meta = self.coins_metadata().get(coin_id)
        if meta is None or not meta.symbol:
            raise DataSourceError(f"unknown coin {coin_id!r}: not in the CoinGecko metadata")
        ticker = meta.symbol.upper()
        owner = self._ticker_owners().get(ticker)
        if owner != coin_id:
            raise DataSourceError(
                f"coin {coin_id!r}: ticker {ticker} denotes {owner!r} (the largest coin with "
                "that ticker), so no exchange pair is assumed for this one"
            )
        return f"{ticker}/USDT"

    def _ticker_owners(self) -> dict[str, str]:
        """Ticker → the coin with the largest recorded market cap carrying it."""
        if self._owners is None:
            peak = self.daily_all().group_by("symbol").agg(pl.col("market_cap").max().alias("cap"))
            caps = {str(c): float(v or 0.0) for c, v in peak.iter_rows()}
            owners: dict[str, str] = {}
            for coin, meta in sorted(self.coins_metadata().items()):
                ticker = meta.symbol.upper()
                held = owners.get(ticker)
                if held is None or caps.get(coin, 0.0) > caps.get(held, 0.0):
                    owners[ticker] = coin
            self._owners = owners
        return self._owners

    def ohlcv(self, symbol: str, timeframe: str, start: datetime, end: datetime) -> pl.DataFrame:
        """Spot candles of ``symbol``, ``OHLCV_SCHEMA``, ``start <= ts <= end``.

        ``symbol`` is a pair (``BTC/USDT``) or a CoinGecko coin id (``bitcoin``, read from its
        USDT pair, see :meth:`pair_of`); the frame's ``symbol`` column is the name asked for."""
        pair = symbol if "/" in symbol else self.pair_of(symbol)
        base = _pair_base(pair)
        path = self._spot_folder(timeframe) / f"{base}_USDT-{timeframe}.json"
        if not path.is_file():
            raise DataSourceError(
                f"unknown symbol {symbol!r} for binance spot {timeframe}: no file {path}"
            )
        label = symbol if symbol == pair else f"{symbol} ({pair})"
        return _gated(path, symbol, timeframe, start, end, label=label)

    def venue_ohlcv(
        self, venue: str, pair: str, timeframe: str, start: datetime, end: datetime
    ) -> pl.DataFrame:
        """Spot candles of ``pair`` on ``venue`` (``binance`` or ``kucoin``: the folders
        ``<venue>_spot/<tf>/``), gated like :meth:`ohlcv`, ``start <= ts <= end``. Raises
        :class:`DataSourceError` when the venue has no file for the pair."""
        if venue not in _SPOT_VENUES or timeframe not in _SPOT_TIMEFRAMES:
            raise DataSourceError(
                f"no recorded {venue} spot {timeframe!r}; have {list(_SPOT_VENUES)} x "
                f"{list(_SPOT_TIMEFRAMES)}"
            )
        path = (
            self.data_dir
            / f"{venue}_spot"
            / timeframe
            / f"{_pair_base(pair)}_USDT-{timeframe}.json"
        )
        if not path.is_file():
            raise DataSourceError(f"no recorded {venue} spot {timeframe} candles for {pair}")
        return _gated(path, pair, timeframe, start, end)

    def ohlcv_as_recorded(
        self, symbol: str, timeframe: str, start: datetime, end: datetime
    ) -> pl.DataFrame:
        """Spot candles of a pair with ``start <= ts <= end`` exactly as the file holds them (file
        order, not gated): what an exchange would answer, for the ingest replay, whose own gate
        judges them. A file that cannot be used raises :class:`CandleFileError`."""
        base = _pair_base(symbol)
        path = self._spot_folder(timeframe) / f"{base}_USDT-{timeframe}.json"
        if not path.is_file():
            raise DataSourceError(
                f"unknown symbol {symbol!r} for binance spot {timeframe}: no file {path}"
            )
        return _slice(_ohlcv_file(path, symbol), start, end)

    def ohlcv_all(self, timeframe: str, asof: datetime | None = None) -> pl.DataFrame:
        """Every spot pair of ``timeframe`` in one long ``OHLCV_SCHEMA`` frame (ts <= asof),
        sorted by symbol and time. Raises on a file that cannot be used."""
        frames = [
            _ohlcv_file(
                self._spot_folder(timeframe) / f"{p.split('/')[0]}_USDT-{timeframe}.json", p
            )
            for p in self.available_pairs(timeframe)
        ]
        frame = pl.concat(frames) if frames else pl.DataFrame(schema=OHLCV_SCHEMA)
        if asof is not None:
            frame = frame.filter(pl.col("ts") <= _require_utc(asof, "ohlcv_all asof"))
        return frame.sort("symbol", "ts")

    def candles_as_recorded(
        self, files: list[tuple[Path, str]], source: str, asof: datetime | None = None
    ) -> CandleBatch:
        """The rows of ``files`` ((path, symbol) pairs) in file order, ``ts <= asof``, for the
        quality report: a file that cannot be used becomes a finding of ``source``, not an
        error, so every other file is still read and checked."""
        frames: list[pl.DataFrame] = []
        findings: list[Finding] = []
        for path, symbol in files:
            try:
                frames.append(_ohlcv_file(path, symbol))
            except CandleFileError as exc:
                findings.extend(f.model_copy(update={"source": source}) for f in exc.findings)
        frame = pl.concat(frames) if frames else pl.DataFrame(schema=OHLCV_SCHEMA)
        if asof is not None:
            frame = frame.filter(pl.col("ts") <= _require_utc(asof, "candles asof"))
        return CandleBatch(frame, tuple(findings))

    def spot_files(self, timeframe: str) -> list[tuple[Path, str]]:
        """(file, pair) of every recorded spot pair of ``timeframe``."""
        folder = self._spot_folder(timeframe)
        return [
            (folder / f"{p.split('/')[0]}_USDT-{timeframe}.json", p)
            for p in self.available_pairs(timeframe)
        ]

    def futures_file(self, symbol: str, suffix: str) -> Path:
        """The futures file of ``symbol`` (``8h-mark``, ``1h-futures``, ``1d-futures``...)."""
        return self._futures_path(symbol, suffix)

    # ----------------------------------------------------------------- Binance futures
    def _futures_path(self, symbol: str, suffix: str) -> Path:
        base = _pair_base(symbol)
        folder = self.data_dir / "binance_futures"
        if not folder.is_dir():
            raise DataSourceError(f"missing folder {folder} (binance futures)")
        path = folder / f"{base}_USDT-{suffix}.json"
        if not path.is_file():
            raise DataSourceError(f"unknown symbol {symbol!r} for binance futures: no file {path}")
        return path

    def funding_rates(self, symbol: str, start: datetime, end: datetime) -> pl.DataFrame:
        """8-hourly funding rates, ``FUNDING_SCHEMA``, ``start <= ts <= end``. Timestamps are
        as recorded (a few ms of jitter around the 8-hour marks)."""
        path = self._futures_path(symbol, "8h-funding_rate")
        arr = _load_array(path)
        frame = (
            pl.DataFrame({"ts": arr[:, 0].astype(np.int64), "funding_rate": arr[:, 1]})
            .select(pl.lit(symbol).alias("symbol"), pl.all())
            .cast(pl.Schema(FUNDING_SCHEMA))
            .sort("ts")
        )
        return _slice(frame, start, end)

    def mark_prices(self, symbol: str, start: datetime, end: datetime) -> pl.DataFrame:
        """8-hour mark-price candles, ``OHLCV_SCHEMA``, ``start <= ts <= end``."""
        return _gated(self._futures_path(symbol, "8h-mark"), symbol, "8h", start, end)

    def futures_ohlcv(
        self, symbol: str, timeframe: str, start: datetime, end: datetime
    ) -> pl.DataFrame:
        """USDT-M perpetual candles (``1h`` or ``1d``), ``OHLCV_SCHEMA``."""
        if timeframe not in _FUTURES_TIMEFRAMES:
            raise DataSourceError(
                f"no recorded futures timeframe {timeframe!r}; have {list(_FUTURES_TIMEFRAMES)}"
            )
        path = self._futures_path(symbol, f"{timeframe}-futures")
        return _gated(path, symbol, timeframe, start, end)


def _daily_file_findings(raw: pl.DataFrame, files: list[Path]) -> tuple[Finding, ...]:
    """File-level findings of the CoinGecko CSVs, from the rows in file order."""
    out: list[Finding] = []
    present = set(raw["path"].unique().to_list())
    for f in files:
        if str(f) not in present:
            out.append(
                source_finding(
                    QualityCode.EMPTY, "coingecko", f.stem, f"{f}: the file holds no rows"
                )
            )
    # rows are in file order, files one after the other: a step back within one file
    back = (
        raw.filter((pl.col("timestamp").diff() < 0) & (pl.col("path") == pl.col("path").shift()))
        .group_by("path", maintain_order=True)
        .agg(n=pl.len(), first=pl.col("timestamp").first())
    )
    for path, n, first in back.iter_rows():
        out.append(
            Finding(
                code=QualityCode.UNORDERED,
                severity=Severity.WARNING,
                source="coingecko",
                symbol=Path(str(path)).stem,
                count=int(n),
                first_ts=None if first is None else int(first),
                reason=f"{n} row(s) come before an earlier day in {Path(str(path)).name}: rows "
                "out of time order (values kept, sorted by time)",
            )
        )
    return tuple(out)


def _pair_base(symbol: str) -> str:
    match = _PAIR_RE.match(symbol)
    if match is None:
        raise DataSourceError(f"unknown symbol {symbol!r}: expected BASE/USDT, e.g. BTC/USDT")
    return match.group(1)


def _slice(frame: pl.DataFrame, start: datetime, end: datetime) -> pl.DataFrame:
    start_ms, end_ms = _require_utc(start, "start"), _require_utc(end, "end")
    if end_ms < start_ms:
        raise DataSourceError(f"end {end.isoformat()} is before start {start.isoformat()}")
    return frame.filter((pl.col("ts") >= start_ms) & (pl.col("ts") <= end_ms))


def _read_bytes(path: Path) -> bytes:
    if not path.is_file():
        raise DataSourceError(f"missing file {path}")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise DataSourceError(f"{path}: cannot read: {exc}") from exc


def _loads(path: Path, body: bytes) -> object:
    try:
        try:
            return _fast_loads(body)
        except ValueError:
            # orjson refuses what the standard parser reads (a NaN literal, a huge integer):
            # the standard parser decides, so a file reads the same with or without orjson
            return json.loads(body)
    except json.JSONDecodeError as exc:
        raise DataSourceError(
            f"{path}: malformed or truncated JSON ({exc.msg} at line {exc.lineno} column "
            f"{exc.colno})"
        ) from exc
    except UnicodeDecodeError as exc:
        raise DataSourceError(f"{path}: cannot read: {exc}") from exc


def _load_json(path: Path) -> object:
    return _loads(path, _read_bytes(path))


_NON_NUMBER_RE: Final = re.compile(rb'"|\btrue\b|\bfalse\b')


def _load_array(path: Path) -> np.ndarray:
    """A freqtrade array file as an (n, 6) float64 array. JSON ``null`` becomes NaN (the gate
    rejects it); strings, booleans, ragged rows and other shapes are errors.

    The array of bytes parsed before comes from the parsed-candle cache
    (:mod:`cryptosmarttrader.adapters.candle_cache`, keyed by the bytes themselves); a file that
    fails raises with its reason every time."""
    body = _read_bytes(path)
    folder = candle_cache.cache_folder()
    key = _cache_key(body) if folder is not None else None
    if folder is None or key is None:
        return _parse_array(path, body)
    hit = candle_cache.load(folder, key)
    if hit is not None:
        return hit
    arr = _parse_array(path, body)
    candle_cache.store(folder, key, arr)
    return arr


@functools.cache
def _parser_id() -> bytes | None:
    """A digest of this module's source (the parse is its code): the parsed-candle cache serves
    an entry only to the very code that stored it. None when the source cannot be read."""
    try:
        return hashlib.blake2b(Path(__file__).read_bytes(), digest_size=32).digest()
    except OSError:
        return None


def _cache_key(body: bytes) -> str | None:
    """The parsed-candle cache's key of a file's bytes, or None (no cache) when this module's
    source cannot be read."""
    parser = _parser_id()
    return None if parser is None else candle_cache.content_key(body, parser)


def _parse_array(path: Path, body: bytes) -> np.ndarray:
    raw = _loads(path, body)
    if not isinstance(raw, list):
        raise DataSourceError(f"{path}: expected a JSON array of rows, got {type(raw).__name__}")
    if not raw:
        return np.empty((0, _ARRAY_WIDTH), dtype=np.float64)
    # the regex only where a candidate byte sequence exists (a substring test is far faster on
    # a megabyte of numbers)
    suspect = b'"' in body or b"true" in body or b"false" in body
    bad = _NON_NUMBER_RE.search(body) if suspect else None
    if bad is not None:
        raise DataSourceError(
            f"{path}: non-numeric value ({bad.group().decode()!r} at byte {bad.start()}); "
            f"rows must be [time_ms, open, high, low, close, volume] numbers"
        )
    # numpy converts well-formed rows at once; anything else (ragged rows, a row that is not
    # an array, nested arrays, objects) is diagnosed row by row below, which names the row
    failure: Exception | None = None
    try:
        arr = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError, OverflowError) as exc:
        arr, failure = None, exc
    if arr is None or arr.ndim != 2 or arr.shape[1] != _ARRAY_WIDTH:
        widths = np.fromiter(
            (len(r) if isinstance(r, list) else -1 for r in raw), dtype=np.int64, count=len(raw)
        )
        wrong = np.flatnonzero(widths != _ARRAY_WIDTH)
        if wrong.size:
            i = int(wrong[0])
            got = "not an array" if widths[i] < 0 else f"{widths[i]} values"
            raise DataSourceError(
                f"{path}: row {i} has {got}, expected {_ARRAY_WIDTH} "
                f"[time_ms, open, high, low, close, volume] ({wrong.size} bad row(s))"
            )
        if failure is not None:  # every row has 6 values, one of them is not a number
            raise DataSourceError(f"{path}: non-numeric value ({failure})") from failure
        raise DataSourceError(
            f"{path}: non-numeric value (a row holds arrays, not numbers); rows must be "
            f"[time_ms, open, high, low, close, volume] numbers"
        )
    missing_ts = np.flatnonzero(~np.isfinite(arr[:, 0]))
    if missing_ts.size:
        raise DataSourceError(f"{path}: row {int(missing_ts[0])} has no timestamp")
    return arr


# Candle files parsed by this process: (device, inode, symbol) of the file read (a symlink's
# target) -> its size, modification and change time, the frame, and the windows of it already
# gated. A warm process (the scan Lambda, a replay over many days, every reader of a test run)
# parses each file once, also when it reads it through several paths (a data dir of symlinks to
# the recorded files), and checks each window of it once (a replay asks for the same days again);
# a file whose size, modification or change time changed, or a path that now leads to another
# file, is parsed and checked again.
@dataclass
class _Parsed:
    version: tuple[int, int, int]
    frame: pl.DataFrame
    # (timeframe, start ms, end ms) -> the window's clean bars (a window with a rejected bar
    # is never kept: it raises every time it is asked for)
    windows: dict[tuple[str, int, int], pl.DataFrame]
    window_rows: int = 0  # the bars the kept windows hold, at most the file's own


_PARSED: dict[tuple[int, int, str], _Parsed] = {}
_PARSED_MAX: Final = 1024
_WINDOWS_MAX: Final = 512  # gated windows kept per file, holding at most the file's bars


def _parsed(path: Path, symbol: str) -> _Parsed | None:
    """The cache entry of one file, parsed now if it is new or changed; None when the file
    cannot even be looked at (nothing is cached; reading it raises with the reason)."""
    try:
        st = path.stat()
    except OSError:
        return None
    key = (st.st_dev, st.st_ino, symbol)
    version = (st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    hit = _PARSED.get(key)
    if hit is not None and hit.version == version:
        return hit
    entry = _Parsed(version, _parse_ohlcv_file(path, symbol), {})
    if len(_PARSED) >= _PARSED_MAX:
        _PARSED.pop(next(iter(_PARSED)))
    _PARSED[key] = entry
    return entry


def _ohlcv_file(path: Path, symbol: str) -> pl.DataFrame:
    """The candles of one file, as recorded and in file order (``OHLCV_SCHEMA``).

    Raises :class:`CandleFileError` when the file cannot be used at all (never cached)."""
    entry = _parsed(path, symbol)
    if entry is None:
        return _parse_ohlcv_file(path, symbol)  # raises with the reason
    return entry.frame


def _parse_ohlcv_file(path: Path, symbol: str) -> pl.DataFrame:
    try:
        arr = _load_array(path)
    except DataSourceError as exc:
        what = str(exc).removeprefix(f"{path}: ")
        raise CandleFileError(QualityCode.UNREADABLE, symbol, path, what) from exc
    if arr.shape[0] == 0:
        raise CandleFileError(QualityCode.EMPTY, symbol, path, "the file holds no candles")
    ts = arr[:, 0]
    fractional = np.flatnonzero(ts != np.floor(ts))
    implausible = np.flatnonzero((ts < MIN_TS_MS) | (ts >= MAX_TS_MS))
    for rows, what in (
        (fractional, "a fractional timestamp (whole milliseconds expected)"),
        (implausible, "a timestamp before 2009-01-03 or from 2100 on (seconds for ms?)"),
    ):
        if rows.size:
            i = int(rows[0])
            reason = f"row {i} has {what}: {ts[i]!r} ({rows.size} such row(s)); file refused"
            raise CandleFileError(QualityCode.BAD_TIMESTAMP, symbol, path, reason, rows.size)
    return (
        pl.DataFrame(
            {
                "ts": arr[:, 0].astype(np.int64),
                "open": arr[:, 1],
                "high": arr[:, 2],
                "low": arr[:, 3],
                "close": arr[:, 4],
                "volume": arr[:, 5],
            }
        )
        .select(pl.lit(symbol).alias("symbol"), pl.all())
        .cast(pl.Schema(OHLCV_SCHEMA))
    )


def _gated(
    path: Path,
    symbol: str,
    timeframe: str,
    start: datetime,
    end: datetime,
    *,
    label: str | None = None,
) -> pl.DataFrame:
    """The file's candles with ``start <= ts <= end``, sorted, once they pass :data:`BAR_RULES`.

    Raises :class:`RejectedBarsError` (symbol, file, first bad bar, reason) otherwise. A window
    that passed is checked once per version of the file (see ``_PARSED``); each caller gets its
    own copy of the frame."""
    entry = _parsed(path, symbol)
    if entry is None:
        return _gate_window(_parse_ohlcv_file(path, symbol), path, symbol, timeframe, start, end,
                            label=label)  # fmt: skip
    key = (timeframe, _require_utc(start, "start"), _require_utc(end, "end"))
    hit = entry.windows.get(key)
    if hit is None:
        hit = _gate_window(entry.frame, path, symbol, timeframe, start, end, label=label)
        _keep_window(entry, key, hit)
    return hit.clone()


def _keep_window(entry: _Parsed, key: tuple[str, int, int], window: pl.DataFrame) -> None:
    """Keep a checked window with its file, dropping the oldest kept ones while there are
    :data:`_WINDOWS_MAX` or they would hold more bars than the file (a replay's long lookbacks
    would otherwise keep hundreds of copies of most of the file)."""
    while entry.windows and (
        len(entry.windows) >= _WINDOWS_MAX or entry.window_rows + window.height > entry.frame.height
    ):
        entry.window_rows -= entry.windows.pop(next(iter(entry.windows))).height
    entry.windows[key] = window  # a slice of the file: never more bars than it
    entry.window_rows += window.height


def _gate_window(
    candles: pl.DataFrame,
    path: Path,
    symbol: str,
    timeframe: str,
    start: datetime,
    end: datetime,
    *,
    label: str | None,
) -> pl.DataFrame:
    """:func:`_gated` over candles already read from ``path``."""
    window = _slice(candles, start, end)
    end_ms = _require_utc(end, "end")
    verdict = check_ohlcv(window, timeframe, end_ms, BAR_RULES, source=str(path))
    errors = tuple(f for f in verdict.findings if f.severity is Severity.ERROR)
    if errors:
        raise RejectedBarsError(label or symbol, timeframe, path, errors)
    return verdict.clean
