"""Ingestion use case: source candles → quality gate → lake, one watermark per series.

For each (exchange, timeframe, symbol):

1. read the watermark (open time of the last ingested bar) from the state table;
2. fetch closed candles after it from the source (plus ``context_bars`` already-ingested bars
   so the gate sees continuity: a gap or spike at the boundary is still found);
3. in batches of ``batch_bars``: run the quality gate, write the batch's clean candles to the
   lake and only then advance the watermark to the batch's last bar. A rejected batch is not
   written, the watermark stays, and the rejection is stored with its reasons; the series
   waits there (the same bars come back next run) until the data or the policy changes.

Ingestion gates *rows* (NaN, non-positive prices, OHLC inconsistencies, duplicates, future
timestamps, spikes, long stale runs). Exchange outages leave holes that no later fetch can fill,
so history-wide policies (gap size, history length, lag) are reported as warnings here and
enforced by the consumers that need them (the scan gates its own window).

A circuit breaker per exchange lives in the state table, so it survives restarts: after
``failure_threshold`` consecutive retryable exchange errors the exchange is skipped, with the
reason, until the cool-down has passed; then one trial fetch decides.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import polars as pl

from cryptosmarttrader.domain.circuit_breaker import BreakerConfig, BreakerState, CircuitBreaker
from cryptosmarttrader.domain.clock import Clock
from cryptosmarttrader.domain.exchange import ExchangeError, FatalExchangeError
from cryptosmarttrader.domain.market import OHLCV_SCHEMA, TIMEFRAME_MS
from cryptosmarttrader.domain.quality import (
    Finding,
    QualityConfig,
    QualityRejectionError,
    Severity,
    check_ohlcv,
    conform_candles,
)
from cryptosmarttrader.domain.types import Symbol, ms_from_utc, utc_from_ms
from cryptosmarttrader.ports import (
    CandleSource,
    LakeStore,
    MarketData,
    Metrics,
    Progress,
    RecordedCandles,
    StateRecords,
)
from cryptosmarttrader.services.progress import no_progress

__all__ = [
    "BREAKER_PK",
    "INGEST_QUALITY",
    "REJECTIONS_PK",
    "WATERMARK_PK",
    "IngestConfig",
    "IngestReport",
    "IngestService",
    "MarketDataReplaySource",
    "SymbolOutcome",
]


WATERMARK_PK = "ingest#watermark"
BREAKER_PK = "ingest#breaker"
REJECTIONS_PK = "ingest#rejection"
INGEST_STEP = "ingest series"  # progress step (services/progress.py)

_NO_LIMIT = 10**9
INGEST_QUALITY = QualityConfig(
    min_bars=1,
    max_gap_bars=_NO_LIMIT,
    max_missing_fraction=1.0,
    max_lag_bars=_NO_LIMIT,
)
"""Row-level gate for ingestion; gap/lag/length limits are the consumers' (see module doc)."""


class MarketDataReplaySource:
    """Replays recorded candles (the ``MarketData`` port) as if they came from an exchange:
    rows as recorded when the source can give them (so the ingest gate judges them as it judges
    an exchange's), else what the port serves."""

    def __init__(self, market: MarketData, exchange: str = "binance") -> None:
        self._market = market
        self._exchange = exchange

    def fetch_ohlcv(
        self, symbol: Symbol, timeframe: str, since_ms: int, until_ms: int
    ) -> pl.DataFrame:
        read = (
            self._market.ohlcv_as_recorded
            if isinstance(self._market, RecordedCandles)
            else self._market.ohlcv
        )
        try:
            return read(symbol.value, timeframe, utc_from_ms(since_ms), utc_from_ms(until_ms))
        except QualityRejectionError:
            raise  # the file is there but damaged: a quality rejection, not an exchange error
        except ValueError as exc:  # the MarketData port's "no such data" answer
            raise FatalExchangeError(self._exchange, "fetch_ohlcv", str(exc)) from exc


@dataclass(frozen=True)
class IngestConfig:
    batch_bars: int = 1000
    context_bars: int = 30
    initial_lookback_bars: int | None = 1000
    """Bars fetched for a series without a watermark; ``None`` means the whole history."""
    quality: QualityConfig = INGEST_QUALITY
    breaker: BreakerConfig = field(default_factory=BreakerConfig)

    def __post_init__(self) -> None:
        if self.batch_bars < 1 or self.context_bars < 0:
            raise ValueError("batch_bars must be >= 1 and context_bars >= 0")
        if self.initial_lookback_bars is not None and self.initial_lookback_bars < 1:
            raise ValueError("initial_lookback_bars must be >= 1 or None")


@dataclass
class SymbolOutcome:
    symbol: str
    ingested: int = 0
    objects_written: int = 0
    watermark_ms: int | None = None
    status: str = "ok"  # ok | up_to_date | rejected | exchange_error | skipped
    reason: str = ""
    rejected_codes: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # quality warnings of the ingested rows


@dataclass
class IngestReport:
    exchange: str
    timeframe: str
    breaker_state: str
    skipped_reason: str | None = None
    outcomes: list[SymbolOutcome] = field(default_factory=list)

    @property
    def ingested(self) -> int:
        return sum(o.ingested for o in self.outcomes)

    @property
    def objects_written(self) -> int:
        return sum(o.objects_written for o in self.outcomes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "exchange": self.exchange,
            "timeframe": self.timeframe,
            "breaker_state": self.breaker_state,
            "skipped_reason": self.skipped_reason,
            "ingested": self.ingested,
            "objects_written": self.objects_written,
            "symbols": [o.__dict__ for o in self.outcomes],
        }


def ingest_breaker_block(state: StateRecords, exchange: str, now: datetime) -> str | None:
    """Why the scan must not trust ``exchange``'s candles now: its ingest breaker is open (or
    half-open, awaiting a trial call). None when it is closed or was never tripped."""
    stored = state.get(BREAKER_PK, exchange)
    if stored is None:
        return None
    breaker = CircuitBreaker.from_dict(stored, BreakerConfig())
    if breaker.state is BreakerState.CLOSED:
        return None
    return (
        f"ingest circuit breaker for {exchange} is {breaker.state} since "
        f"{breaker.opened_at:%Y-%m-%d %H:%M}Z ({breaker.reason}); the lake may be stale"
    )


def series_key(exchange: str, timeframe: str, symbol: str) -> str:
    return f"{exchange}#{timeframe}#{symbol}"


class IngestService:
    def __init__(
        self,
        source: CandleSource,
        lake: LakeStore,
        state: StateRecords,
        metrics: Metrics,
        clock: Clock,
        config: IngestConfig | None = None,
        *,
        timer: Callable[[], float] = time.perf_counter,
    ) -> None:
        self._source = source
        self._lake = lake
        self._state = state
        self._metrics = metrics
        self._clock = clock
        self._config = config or IngestConfig()
        self._timer = timer

    # ------------------------------------------------------------------ breaker

    def breaker(self, exchange: str) -> CircuitBreaker:
        stored = self._state.get(BREAKER_PK, exchange)
        if stored is None:
            return CircuitBreaker(self._config.breaker)
        return CircuitBreaker.from_dict(stored, self._config.breaker)

    def _save_breaker(self, exchange: str, old: CircuitBreaker, new: CircuitBreaker) -> None:
        if new != old:
            self._state.put(
                BREAKER_PK, exchange, {**new.to_dict(), "updated_at": self._clock.now()}
            )

    def watermark(self, exchange: str, timeframe: str, symbol: str) -> int | None:
        stored = self._state.get(WATERMARK_PK, series_key(exchange, timeframe, symbol))
        return None if stored is None else int(stored["last_ts"])

    # ------------------------------------------------------------------ run

    def run(
        self,
        exchange: str,
        timeframe: str,
        symbols: Sequence[str],
        progress: Progress = no_progress,
    ) -> IngestReport:
        tf_ms = TIMEFRAME_MS.get(timeframe)
        if tf_ms is None:
            raise ValueError(f"unknown timeframe {timeframe!r}")
        parsed = [Symbol(s) for s in symbols]  # DomainError on a bad symbol, before any I/O
        started = self._timer()
        dims = {"exchange": exchange, "timeframe": timeframe}
        now = self._clock.now()
        breaker = self.breaker(exchange)
        allowed_breaker, allowed = breaker.allow(now)
        self._save_breaker(exchange, breaker, allowed_breaker)
        breaker = allowed_breaker
        report = IngestReport(exchange, timeframe, breaker.state.value)
        if not allowed:
            retry_at = breaker.retry_at()
            report.skipped_reason = (
                f"circuit breaker open until {retry_at.isoformat() if retry_at else '?'}: "
                f"{breaker.reason}"
            )
            report.outcomes = [
                SymbolOutcome(s.value, status="skipped", reason=report.skipped_reason)
                for s in parsed
            ]
            self._metrics.add("IngestSkipped", len(parsed), dimensions=dims)
        else:
            for position, symbol in enumerate(parsed):
                progress(INGEST_STEP, position, len(parsed))
                outcome, breaker = self._ingest_symbol(exchange, timeframe, tf_ms, symbol, breaker)
                report.outcomes.append(outcome)
                progress(INGEST_STEP, position + 1, len(parsed))
                if breaker.state is BreakerState.OPEN:
                    reason = f"circuit breaker opened: {breaker.reason}"
                    report.skipped_reason = reason
                    report.outcomes.extend(
                        SymbolOutcome(s.value, status="skipped", reason=reason)
                        for s in parsed[position + 1 :]
                    )
                    self._metrics.add("IngestSkipped", len(parsed) - position - 1, dimensions=dims)
                    break
            report.breaker_state = breaker.state.value
        self._emit_run_metrics(report, tf_ms, dims, (self._timer() - started) * 1000.0)
        return report

    def _ingest_symbol(
        self, exchange: str, timeframe: str, tf_ms: int, symbol: Symbol, breaker: CircuitBreaker
    ) -> tuple[SymbolOutcome, CircuitBreaker]:
        cfg = self._config
        now = self._clock.now()
        now_ms = ms_from_utc(now)
        outcome = SymbolOutcome(symbol.value)
        wm = self.watermark(exchange, timeframe, symbol.value)
        outcome.watermark_ms = wm
        until_ms = now_ms - tf_ms  # bar open times whose bar has closed
        if wm is not None:
            since_ms = wm + tf_ms - cfg.context_bars * tf_ms
        elif cfg.initial_lookback_bars is not None:
            since_ms = (now_ms // tf_ms - cfg.initial_lookback_bars) * tf_ms
        else:
            since_ms = 0
        try:
            fetched = self._source.fetch_ohlcv(symbol, timeframe, max(since_ms, 0), until_ms)
        except QualityRejectionError as exc:  # the source answered: its data is bad, not down
            new = breaker.record_success()
            self._save_breaker(exchange, breaker, new)
            self._reject_source(exchange, timeframe, symbol.value, exc.findings, outcome)
            return outcome, new
        except ExchangeError as exc:
            self._metrics.add(
                "ExchangeErrors",
                1,
                dimensions={
                    "exchange": exchange,
                    "kind": "retryable" if exc.retryable else "fatal",
                },
            )
            outcome.status, outcome.reason = "exchange_error", str(exc)
            if exc.retryable:
                new = breaker.record_failure(now, str(exc))
                self._save_breaker(exchange, breaker, new)
                breaker = new
            return outcome, breaker
        new = breaker.record_success()
        self._save_breaker(exchange, breaker, new)
        breaker = new

        frame, found = self._conform(fetched, symbol.value, exchange)
        self._warn(exchange, [f for f in found if f.severity is Severity.WARNING], outcome)
        if any(f.severity is Severity.ERROR for f in found):
            errors = [f for f in found if f.severity is Severity.ERROR]
            self._reject_source(exchange, timeframe, symbol.value, errors, outcome)
            return outcome, breaker
        fresh = frame if wm is None else frame.filter(pl.col("ts") > wm)
        fresh = fresh.filter(pl.col("ts") <= until_ms)
        if fresh.is_empty():
            outcome.status = "up_to_date"
            return outcome, breaker
        for batch in fresh.iter_slices(cfg.batch_bars):
            first_ts, last_ts = int(batch["ts"][0]), int(batch["ts"][-1])
            window = frame.filter(
                pl.col("ts").is_between(first_ts - cfg.context_bars * tf_ms, last_ts)
            )
            verdict = check_ohlcv(window, timeframe, now_ms, cfg.quality, source=exchange)
            warnings = [f for f in verdict.findings if f.severity is Severity.WARNING]
            self._warn(exchange, warnings, outcome)
            if symbol.value in verdict.excluded:
                self._reject(exchange, timeframe, symbol.value, batch, verdict.errors(), outcome)
                return outcome, breaker
            clean = verdict.clean.filter(pl.col("ts").is_between(first_ts, last_ts))
            keys = self._lake.write_candles(clean, exchange, timeframe)
            # Only now, with the batch durably in the lake, does the watermark move.
            self._state.put(
                WATERMARK_PK,
                series_key(exchange, timeframe, symbol.value),
                {"last_ts": last_ts, "updated_at": now, "rows": clean.height},
            )
            outcome.ingested += clean.height
            outcome.objects_written += len(keys)
            outcome.watermark_ms = last_ts
        return outcome, breaker

    def _warn(self, exchange: str, warnings: Sequence[Finding], outcome: SymbolOutcome) -> None:
        for finding in warnings:
            self._metrics.add(
                "QualityWarnings",
                finding.count,
                dimensions={"exchange": exchange, "code": finding.code.value},
            )
            if not any(w.startswith(f"{finding.code.value}:") for w in outcome.warnings):
                outcome.warnings.append(f"{finding.code.value}: {finding.reason}")  # once a code

    def _reject_source(
        self,
        exchange: str,
        timeframe: str,
        symbol: str,
        findings: Sequence[Finding],
        outcome: SymbolOutcome,
    ) -> None:
        """The fetched rows as a whole are refused (damaged file, impossible timestamps):
        nothing is written, the watermark stays, the reasons are stored."""
        reasons = [f"{f.code.value}: {f.reason}" for f in findings]
        outcome.status = "rejected"
        outcome.reason = "; ".join(reasons)
        for f in findings:
            outcome.rejected_codes[f.code.value] = outcome.rejected_codes.get(f.code.value, 0) + (
                f.count or 1
            )
            self._metrics.add(
                "CandlesRejected",
                f.count or 1,
                dimensions={"exchange": exchange, "code": f.code.value},
            )
        at = self._clock.now()
        self._state.put(
            REJECTIONS_PK,
            f"{series_key(exchange, timeframe, symbol)}#source#{ms_from_utc(at):013d}",
            {"rows": sum(f.count for f in findings), "codes": sorted(outcome.rejected_codes),
             "reasons": reasons, "at": at},
        )  # fmt: skip

    def _reject(
        self,
        exchange: str,
        timeframe: str,
        symbol: str,
        batch: pl.DataFrame,
        errors: Sequence[Any],
        outcome: SymbolOutcome,
    ) -> None:
        first_ts = int(batch["ts"][0])
        reasons = [f"{f.code.value}: {f.reason}" for f in errors if f.symbol == symbol]
        outcome.status = "rejected"
        outcome.reason = "; ".join(reasons)
        for f in errors:
            if f.symbol == symbol:
                outcome.rejected_codes[f.code.value] = (
                    outcome.rejected_codes.get(f.code.value, 0) + batch.height
                )
                self._metrics.add(
                    "CandlesRejected",
                    batch.height,
                    dimensions={"exchange": exchange, "code": f.code.value},
                )
        self._state.put(
            REJECTIONS_PK,
            f"{series_key(exchange, timeframe, symbol)}#{first_ts:013d}",
            {
                "first_ts": first_ts,
                "last_ts": int(batch["ts"][-1]),
                "rows": batch.height,
                "codes": sorted(outcome.rejected_codes),
                "reasons": reasons,
                "at": self._clock.now(),
            },
        )

    @staticmethod
    def _conform(
        frame: pl.DataFrame, symbol: str, exchange: str
    ) -> tuple[pl.DataFrame, list[Finding]]:
        """The source's rows as ``OHLCV_SCHEMA`` sorted by time, and the findings about them:
        timestamps are never coerced (see ``conform_candles``); duplicates stay for the gate."""
        missing = set(OHLCV_SCHEMA) - set(frame.columns)
        if missing:
            raise ValueError(f"source returned a frame without {sorted(missing)} for {symbol}")
        others = frame.filter(pl.col("symbol") != symbol)
        if not others.is_empty():
            raise ValueError(f"source returned rows of {others['symbol'][0]} for {symbol}")
        return conform_candles(frame, source=exchange)

    def _emit_run_metrics(
        self, report: IngestReport, tf_ms: int, dims: dict[str, str], latency_ms: float
    ) -> None:
        now_ms = ms_from_utc(self._clock.now())
        self._metrics.add("CandlesIngested", report.ingested, dimensions=dims)
        self._metrics.add("LakeObjectsWritten", report.objects_written, dimensions=dims)
        self._metrics.add("IngestLatency", latency_ms, unit="Milliseconds", dimensions=dims)
        marks = [o.watermark_ms for o in report.outcomes if o.watermark_ms is not None]
        if marks:
            # age of the newest closed bar we hold, worst series of this run
            staleness_s = max(0.0, (now_ms - (min(marks) + tf_ms)) / 1000.0)
            self._metrics.add("DataStaleness", staleness_s, unit="Seconds", dimensions=dims)
