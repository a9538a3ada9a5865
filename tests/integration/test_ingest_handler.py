"""Ingest Lambda in-process on moto, driven by a real EventBridge scheduled-event envelope."""

from __future__ import annotations

import importlib
import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import time_machine

from cryptosmarttrader.adapters.aws_clients import AwsClients
from cryptosmarttrader.adapters.dynamodb_store import DynamoStateStore
from cryptosmarttrader.adapters.recorded_data import RecordedMarketData
from cryptosmarttrader.adapters.s3_lake import S3ParquetLake
from cryptosmarttrader.handlers import _common
from cryptosmarttrader.services.ingest import WATERMARK_PK
from tests.support.aws import moto_stack


@dataclass
class LambdaContextStub:
    function_name: str = "cst-ingest"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:cst-ingest"
    aws_request_id: str = "req-0001"


def scheduled_event(detail: dict[str, Any]) -> dict[str, Any]:
    """The envelope EventBridge delivers for a schedule rule (detail set by the target input)."""
    return {
        "version": "0",
        "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": "2022-10-12T00:05:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/cst-ingest-binance-1d"],
        "detail": detail,
    }


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[AwsClients]:
    env = {
        "POWERTOOLS_METRICS_NAMESPACE": "CryptoSmartTrader",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "CST_DATA_SOURCE": "recorded",
    }
    with moto_stack(monkeypatch, env=env) as clients:
        _common.reset_caches()
        yield clients
        _common.reset_caches()


def load_handler() -> ModuleType:
    module = importlib.import_module("cryptosmarttrader.handlers.ingest")
    return importlib.reload(module)


def emf_records(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith('{"_aws"')]


@pytest.mark.realdata
def test_scheduled_event_ingests_recorded_candles(
    env: AwsClients,
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given the recorded Binance data and a scheduled event for two daily pairs, on a clock
    # moved to just after the recording ends (a new series starts 1000 bars back, as live)
    monkeypatch.setenv("CST_DATA_DIR", str(data_dir))
    module = load_handler()
    event = scheduled_event(
        {"exchange": "binance", "timeframe": "1d", "symbols": ["ETH/USDT", "SOL/USDT"]}
    )
    # (its JSON log lines to a buffer, at the deployed level: an earlier test in this process
    # may have left the shared logger at another level or on a closed stream)
    logs = io.StringIO()
    tap = logging.StreamHandler(logs)
    tap.setFormatter(module.logger.registered_formatter)
    module.logger.addHandler(tap)
    level = module.logger.log_level
    module.logger.setLevel("INFO")
    # When the handler runs
    try:
        with time_machine.travel(datetime(2022, 10, 12, 0, 5, tzinfo=UTC), tick=True):
            result = module.handler(event, LambdaContextStub())
    finally:
        module.logger.removeHandler(tap)
        module.logger.setLevel(level)
    # Then both series are in the lake, watermarked, and the run is logged and measured
    assert result["status"] == "ok"
    report = result["report"]
    assert [s["status"] for s in report["symbols"]] == ["ok", "ok"]
    state = DynamoStateStore(env.resources.state_table, env.dynamodb)
    eth = state.get(WATERMARK_PK, "binance#1d#ETH/USDT")
    assert eth is not None
    recorded = RecordedMarketData(data_dir).ohlcv(
        "ETH/USDT", "1d", datetime(2017, 1, 1, tzinfo=UTC), datetime(2023, 1, 1, tzinfo=UTC)
    )
    assert int(eth["last_ts"]) == recorded["ts"].max()  # the last recorded bar
    lake = S3ParquetLake(env.resources.lake_bucket, env.s3)
    assert len(lake.days("binance", "1d", "SOL/USDT")) == report["symbols"][1]["ingested"]
    out = capsys.readouterr().out
    lines = [json.loads(line) for line in logs.getvalue().splitlines() if '"message"' in line]
    done = next(entry for entry in lines if entry["message"] == "ingest complete")
    assert done["correlation_id"] == event["id"]
    assert done["function_request_id"] == "req-0001"
    names = {
        name
        for rec in emf_records(out)
        for m in rec["_aws"]["CloudWatchMetrics"]
        for name in (x["Name"] for x in m["Metrics"])
    }
    assert {"CandlesIngested", "IngestLatency", "DataStaleness", "IngestRuns"} <= names


@pytest.mark.parametrize(
    "detail",
    [
        {},  # a bare schedule without target input
        {"exchange": "bitmex", "timeframe": "1d", "symbols": ["BTC/USDT"]},
        {"exchange": "binance", "timeframe": "2d", "symbols": ["BTC/USDT"]},
        {"exchange": "binance", "timeframe": "1d", "symbols": []},
        {"exchange": "binance", "timeframe": "1d", "symbols": ["bitcoin"]},
        {"exchange": "binance", "timeframe": "1d", "symbols": ["BTC/USDT", "BTC/USDT"]},
        {"exchange": "binance", "timeframe": "1d", "symbols": ["BTC/USDT"], "extra": 1},
    ],
)
def test_malformed_events_are_rejected_without_side_effects(
    env: AwsClients, detail: dict[str, Any]
) -> None:
    # Given a malformed request
    module = load_handler()
    # When the handler runs
    result = module.handler(scheduled_event(detail), LambdaContextStub())
    # Then it says what is wrong and nothing was written
    assert result["status"] == "rejected"
    assert result["error"].startswith("invalid ingest event")
    assert result["details"]
    assert env.dynamodb.scan(TableName=env.resources.state_table)["Items"] == []
    assert "Contents" not in env.s3.list_objects_v2(Bucket=env.resources.lake_bucket)


def test_recorded_source_refuses_other_exchanges(env: AwsClients) -> None:
    module = load_handler()
    event = {
        "exchange": "kraken",
        "timeframe": "1d",
        "symbols": ["BTC/USD"],
        "correlation_id": "manual-1",
    }
    # a deployment that cannot serve its schedule fails the invocation (counted, alarmed,
    # retried by Lambda), naming why, before anything is written
    with pytest.raises(_common.ScheduledRunError) as failed:
        module.handler(event, LambdaContextStub())
    # (Binance and KuCoin spot are recorded; Kraken is not)
    assert "CST_DATA_SOURCE=recorded replays binance and kucoin spot data only, not kraken" in (
        str(failed.value)
    )
    assert env.dynamodb.scan(TableName=env.resources.state_table)["Items"] == []


def test_correlation_id_falls_back_to_the_request_id() -> None:
    ctx = LambdaContextStub(aws_request_id="req-9")
    assert _common.correlation_id({"exchange": "binance"}, ctx) == "req-9"  # type: ignore[arg-type]
    assert _common.correlation_id({"correlation_id": "c-1"}, ctx) == "c-1"  # type: ignore[arg-type]
    assert _common.correlation_id(scheduled_event({}), ctx) == (  # type: ignore[arg-type]
        "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa"
    )
