"""Ingestion: watermarks, quality rejections, circuit breaker. The logic runs on the in-memory
lake and state store (``tests/fakes.py``, held to the S3 and DynamoDB adapters by the contract
suites); a lake bucket that has gone away is S3's own failure, on moto."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from cryptosmarttrader.adapters.aws_clients import AwsClients
from cryptosmarttrader.adapters.dynamodb_store import DynamoStateStore
from cryptosmarttrader.adapters.emf_metrics import InMemoryMetrics
from cryptosmarttrader.adapters.recorded_data import RecordedMarketData
from cryptosmarttrader.adapters.s3_lake import LakeError, S3ParquetLake
from cryptosmarttrader.domain.circuit_breaker import BreakerConfig
from cryptosmarttrader.domain.clock import FixedClock
from cryptosmarttrader.domain.exchange import FatalExchangeError, RetryableExchangeError
from cryptosmarttrader.domain.market import DAY_MS, OHLCV_SCHEMA
from cryptosmarttrader.domain.types import Symbol
from cryptosmarttrader.ports import CandleSource, LakeStore, StateRecords
from cryptosmarttrader.services.ingest import (
    BREAKER_PK,
    REJECTIONS_PK,
    IngestConfig,
    IngestService,
    MarketDataReplaySource,
)
from tests.fakes import InMemoryLake, InMemoryStateStore
from tests.support.aws import moto_stack

D0 = 1_704_067_200_000  # 2024-01-01T00:00Z
START = datetime(2024, 1, 1, tzinfo=UTC)


class ScriptedSource:
    """Exchange stand-in: serves a fixed candle set by [since, until], or raises scripted errors."""

    def __init__(self, candles: pl.DataFrame) -> None:
        self.candles = candles
        self.errors: list[Exception] = []
        self.calls: list[tuple[str, int, int]] = []

    def fetch_ohlcv(
        self, symbol: Symbol, timeframe: str, since_ms: int, until_ms: int
    ) -> pl.DataFrame:
        self.calls.append((symbol.value, since_ms, until_ms))
        if self.errors:
            raise self.errors.pop(0)
        return self.candles.filter(
            (pl.col("symbol") == symbol.value) & pl.col("ts").is_between(since_ms, until_ms)
        )


def daily(symbol: str, n: int, start_ms: int = D0) -> pl.DataFrame:
    close = [100.0 * math.exp(0.01 * math.sin(i)) for i in range(n)]
    return pl.DataFrame(
        {
            "symbol": [symbol] * n,
            "ts": [start_ms + i * DAY_MS for i in range(n)],
            "open": close,
            "high": [c * 1.01 for c in close],
            "low": [c * 0.99 for c in close],
            "close": close,
            "volume": [1000.0 + i for i in range(n)],
        },
        schema=OHLCV_SCHEMA,
    )


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsClients]:
    with moto_stack(monkeypatch) as clients:
        yield clients


@pytest.fixture
def lake() -> InMemoryLake:
    return InMemoryLake()


@pytest.fixture
def state() -> InMemoryStateStore:
    return InMemoryStateStore()


def make_service(
    source: CandleSource,
    lake: LakeStore,
    state: StateRecords,
    clock: FixedClock,
    metrics: InMemoryMetrics | None = None,
    **cfg: Any,
) -> IngestService:
    config = IngestConfig(initial_lookback_bars=None, **cfg)
    return IngestService(source, lake, state, metrics or InMemoryMetrics(), clock, config)


def read_all(lake: LakeStore, symbol: str = "BTC/USDT") -> pl.DataFrame:
    return lake.read_candles("binance", "1d", symbol, START, START + timedelta(days=400))


def test_first_run_ingests_closed_bars_and_sets_the_watermark(
    lake: InMemoryLake, state: InMemoryStateStore
) -> None:
    # Given 60 daily bars at the source and a clock in the middle of day 50 (bar 49 closed)
    source = ScriptedSource(daily("BTC/USDT", 60))
    clock = FixedClock(START + timedelta(days=50, hours=6))
    metrics = InMemoryMetrics()
    service = make_service(source, lake, state, clock, metrics)
    # When ingested
    report = service.run("binance", "1d", ["BTC/USDT"])
    # Then bars 0..49 are in the lake (the open day-50 bar is not) and the watermark is bar 49
    assert report.ingested == 50
    assert read_all(lake)["ts"].to_list() == [D0 + i * DAY_MS for i in range(50)]
    assert service.watermark("binance", "1d", "BTC/USDT") == D0 + 49 * DAY_MS
    assert metrics.total("CandlesIngested", exchange="binance") == 50
    assert metrics.values("DataStaleness") == [6 * 3600.0]
    assert len(metrics.values("IngestLatency")) == 1


def test_rerun_writes_nothing_and_next_day_adds_only_the_new_bar(
    lake: InMemoryLake, state: InMemoryStateStore
) -> None:
    # Given an ingested series
    source = ScriptedSource(daily("BTC/USDT", 60))
    clock = FixedClock(START + timedelta(days=50))
    service = make_service(source, lake, state, clock, context_bars=5)
    service.run("binance", "1d", ["BTC/USDT"])
    # When rerun at the same time
    rerun = service.run("binance", "1d", ["BTC/USDT"])
    # Then nothing is written
    assert (rerun.ingested, rerun.objects_written) == (0, 0)
    assert rerun.outcomes[0].status == "up_to_date"
    # When a day passes
    clock.advance(timedelta(days=1))
    nxt = service.run("binance", "1d", ["BTC/USDT"])
    # Then exactly the new bar is written, fetched with 5 context bars before it
    assert (nxt.ingested, nxt.objects_written) == (1, 1)
    assert source.calls[-1][1] == D0 + (50 - 5) * DAY_MS
    assert read_all(lake).height == 51


def test_watermark_does_not_move_when_the_lake_write_fails(aws: AwsClients) -> None:
    # Given a lake bucket that has gone away
    lake = S3ParquetLake(aws.resources.lake_bucket, aws.s3)
    state = DynamoStateStore(aws.resources.state_table, aws.dynamodb)
    aws.s3.delete_bucket(Bucket=aws.resources.lake_bucket)
    service = make_service(
        ScriptedSource(daily("BTC/USDT", 40)), lake, state, FixedClock(START + timedelta(days=40))
    )
    # When ingestion runs, Then the write error surfaces and no watermark is recorded
    with pytest.raises(LakeError, match="cst-lake-local"):
        service.run("binance", "1d", ["BTC/USDT"])
    assert service.watermark("binance", "1d", "BTC/USDT") is None


def test_a_failed_batch_keeps_earlier_batches_and_their_watermark(
    lake: InMemoryLake, state: InMemoryStateStore
) -> None:
    # Given a lake that fails on its second write
    class FailingSecondWrite:
        def __init__(self) -> None:
            self.writes = 0

        def write_candles(self, frame: pl.DataFrame, exchange: str, timeframe: str) -> list[str]:
            self.writes += 1
            if self.writes == 2:
                raise LakeError("injected: s3 unavailable")
            return lake.write_candles(frame, exchange, timeframe)

        def read_candles(self, *args: object) -> pl.DataFrame:
            raise NotImplementedError

    service = IngestService(
        ScriptedSource(daily("BTC/USDT", 40)),
        FailingSecondWrite(),
        state,
        InMemoryMetrics(),
        FixedClock(START + timedelta(days=40)),
        IngestConfig(batch_bars=15, initial_lookback_bars=None),
    )
    # When ingestion runs
    with pytest.raises(LakeError):
        service.run("binance", "1d", ["BTC/USDT"])
    # Then the first batch (bars 0..14) is committed and nothing of the second
    assert service.watermark("binance", "1d", "BTC/USDT") == D0 + 14 * DAY_MS
    assert read_all(lake).height == 15


def test_bad_rows_are_rejected_with_reasons_and_block_the_series(
    lake: InMemoryLake, state: InMemoryStateStore
) -> None:
    # Given a source whose bar 25 has high < low
    bars = daily("BTC/USDT", 40).with_columns(
        pl.when(pl.col("ts") == D0 + 25 * DAY_MS)
        .then(pl.col("low") * 0.5)
        .otherwise(pl.col("high"))
        .alias("high")
    )
    metrics = InMemoryMetrics()
    clock = FixedClock(START + timedelta(days=40))
    service = make_service(ScriptedSource(bars), lake, state, clock, metrics, batch_bars=20)
    # When ingested
    report = service.run("binance", "1d", ["BTC/USDT"])
    # Then the clean first batch is in, the batch holding the bad bar is not, and why is stored
    out = report.outcomes[0]
    assert out.status == "rejected"
    assert "OHLC_INCONSISTENT" in out.reason
    assert service.watermark("binance", "1d", "BTC/USDT") == D0 + 19 * DAY_MS
    assert read_all(lake).height == 20
    assert metrics.total("CandlesRejected", code="OHLC_INCONSISTENT") == 20
    stored = state.get(REJECTIONS_PK, f"binance#1d#BTC/USDT#{D0 + 20 * DAY_MS:013d}")
    assert stored is not None
    assert stored["codes"] == ["OHLC_INCONSISTENT"]
    # And a rerun does not skip past the bad bar
    again = service.run("binance", "1d", ["BTC/USDT"])
    assert again.outcomes[0].status == "rejected"
    assert service.watermark("binance", "1d", "BTC/USDT") == D0 + 19 * DAY_MS


def test_breaker_opens_persists_half_opens_and_closes(
    lake: InMemoryLake, state: InMemoryStateStore
) -> None:
    # Given an exchange that times out three times in a row
    source = ScriptedSource(daily("BTC/USDT", 40))
    source.errors = [RetryableExchangeError("binance", "fetch_ohlcv", "timeout")] * 3
    clock = FixedClock(START + timedelta(days=40))
    cfg: dict[str, Any] = {"breaker": BreakerConfig(failure_threshold=3, cooldown_seconds=600)}
    metrics = InMemoryMetrics()
    service = make_service(source, lake, state, clock, metrics, **cfg)
    # When three symbols are ingested
    report = service.run("binance", "1d", ["BTC/USDT", "ETH/USDT", "SOL/USDT"])
    # Then the breaker opens on the third failure and is stored
    assert report.breaker_state == "open"
    assert [o.status for o in report.outcomes] == ["exchange_error"] * 3
    assert metrics.total("ExchangeErrors", kind="retryable") == 3
    stored = state.get(BREAKER_PK, "binance")
    assert stored is not None
    assert stored["state"] == "open"
    # When a new process (fresh service) runs before the cool-down is over
    restarted = make_service(source, lake, state, clock, **cfg)
    calls = len(source.calls)
    skipped = restarted.run("binance", "1d", ["BTC/USDT"])
    # Then it skips the exchange without calling it, and says why
    assert len(source.calls) == calls
    assert skipped.skipped_reason is not None
    assert "circuit breaker open until" in skipped.skipped_reason
    assert "timeout" in skipped.skipped_reason
    assert skipped.outcomes[0].status == "skipped"
    # When the cool-down has passed and the exchange is back
    clock.advance(timedelta(seconds=600))
    recovered = make_service(source, lake, state, clock, **cfg).run("binance", "1d", ["BTC/USDT"])
    # Then the trial call succeeds and the breaker is closed again, in the table too
    assert recovered.breaker_state == "closed"
    assert recovered.ingested == 40
    stored = state.get(BREAKER_PK, "binance")
    assert stored is not None
    assert stored["state"] == "closed"


def test_failed_trial_reopens_the_breaker(lake: InMemoryLake, state: InMemoryStateStore) -> None:
    source = ScriptedSource(daily("BTC/USDT", 40))
    source.errors = [RetryableExchangeError("binance", "fetch_ohlcv", "503")] * 2
    clock = FixedClock(START + timedelta(days=40))
    cfg: dict[str, Any] = {"breaker": BreakerConfig(failure_threshold=1, cooldown_seconds=60)}
    make_service(source, lake, state, clock, **cfg).run("binance", "1d", ["BTC/USDT"])
    clock.advance(timedelta(seconds=60))
    report = make_service(source, lake, state, clock, **cfg).run("binance", "1d", ["BTC/USDT"])
    assert report.breaker_state == "open"
    stored = state.get(BREAKER_PK, "binance")
    assert stored is not None
    assert stored["reason"].startswith("trial call failed")


def test_a_fatal_symbol_error_does_not_trip_the_breaker(
    lake: InMemoryLake, state: InMemoryStateStore
) -> None:
    # Given an exchange that does not list the first symbol
    source = ScriptedSource(daily("ETH/USDT", 40))
    source.errors = [FatalExchangeError("binance", "fetch_ohlcv", "bad symbol NOPE/USDT")]
    clock = FixedClock(START + timedelta(days=40))
    service = make_service(source, lake, state, clock, breaker=BreakerConfig(failure_threshold=1))
    # When both are ingested
    report = service.run("binance", "1d", ["NOPE/USDT", "ETH/USDT"])
    # Then the bad symbol is reported, the other ingested, and the breaker stays closed
    assert [o.status for o in report.outcomes] == ["exchange_error", "ok"]
    assert report.breaker_state == "closed"
    assert read_all(lake, "ETH/USDT").height == 40


def test_bad_symbols_are_refused_before_any_io(
    lake: InMemoryLake, state: InMemoryStateStore
) -> None:
    source = ScriptedSource(daily("BTC/USDT", 5))
    service = make_service(source, lake, state, FixedClock(START))
    with pytest.raises(ValueError, match="invalid symbol"):
        service.run("binance", "1d", ["BTC/USDT", "../../x"])
    assert source.calls == []


@pytest.mark.realdata
def test_replays_recorded_binance_candles_exactly(
    data_dir: Path, lake: InMemoryLake, state: InMemoryStateStore
) -> None:
    # Given the recorded BTC/USDT daily candles replayed as of 2022-10-12
    market = RecordedMarketData(data_dir)
    clock = FixedClock(datetime(2022, 10, 12, tzinfo=UTC))
    service = make_service(MarketDataReplaySource(market), lake, state, clock)
    # When ingested twice
    first = service.run("binance", "1d", ["BTC/USDT"])
    second = service.run("binance", "1d", ["BTC/USDT"])
    # Then the lake holds the recorded bars unchanged, and the rerun wrote nothing
    start, end = datetime(2017, 8, 1, tzinfo=UTC), datetime(2022, 10, 11, tzinfo=UTC)
    recorded = market.ohlcv("BTC/USDT", "1d", start, end)
    assert first.outcomes[0].status == "ok"
    assert first.ingested == recorded.height
    assert second.objects_written == 0
    assert lake.read_candles("binance", "1d", "BTC/USDT", start, end).equals(recorded)


@pytest.mark.realdata
def test_replay_source_maps_missing_data_to_a_fatal_exchange_error(data_dir: Path) -> None:
    source = MarketDataReplaySource(RecordedMarketData(data_dir))
    with pytest.raises(FatalExchangeError, match="NOPE"):
        source.fetch_ohlcv(Symbol("NOPE/USDT"), "1d", D0, D0 + DAY_MS)
