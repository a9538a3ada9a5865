"""The scan Lambda as deployed (CST_DATA_SOURCE=ccxt): it reads the daily candles that the ingest
Lambda wrote to the S3 lake, never the exchange itself, and orders idempotently."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from cryptosmarttrader.adapters.aws_clients import AwsClients
from cryptosmarttrader.adapters.dynamodb_store import DynamoStateStore
from cryptosmarttrader.adapters.recorded_data import RecordedMarketData
from cryptosmarttrader.adapters.s3_lake import S3ParquetLake
from cryptosmarttrader.domain.circuit_breaker import BreakerState, CircuitBreaker
from cryptosmarttrader.services.ingest import BREAKER_PK
from cryptosmarttrader.settings import AwsResources
from cst_devtools.local_aws import ensure_resources
from cst_devtools.moto_shims import emf_points, emf_records

pytestmark = pytest.mark.realdata
PAIRS = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "MATIC/USDT", "DOGE/USDT", "LINK/USDT"]


@dataclass
class Context:
    function_name: str = "cst-scan"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:cst-scan"
    aws_request_id: str = "req-lake-1"


@pytest.fixture
def deployed(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsClients]:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "CST_DATA_SOURCE": "ccxt",
        "CST_EXCHANGE": "binance",
        # no promoted model in this registry: the deployment's opt-in to technical-only trading
        "CST_ALLOW_TECHNICAL_ONLY_TRADING": "true",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("CST_DATA_DIR", raising=False)
    from cryptosmarttrader.handlers import _common
    from cryptosmarttrader.handlers import scan as scan_handler

    _common.reset_caches()
    scan_handler._service.cache_clear()
    with mock_aws():
        clients = AwsClients.build(AwsResources())
        ensure_resources(clients)
        lake = S3ParquetLake(clients.resources.lake_bucket, clients.s3)
        market = RecordedMarketData(data_dir)
        start, end = datetime(2020, 8, 1, tzinfo=UTC), datetime(2021, 5, 1, tzinfo=UTC)
        for pair in PAIRS:  # what the ingest Lambda would have written
            lake.write_candles(market.ohlcv(pair, "1d", start, end), "binance", "1d")
        yield clients
    _common.reset_caches()
    scan_handler._service.cache_clear()


def _invoke(event: dict[str, Any]) -> dict[str, Any]:
    from cryptosmarttrader.handlers import scan as scan_handler

    return scan_handler.handler(event, Context())  # type: ignore[arg-type]


def _slis(stdout: str) -> dict[str, list[float]]:
    """The stage SLI values a run published (EMF records dimensioned Stage only)."""
    values: dict[str, list[float]] = {}
    for point in emf_points(emf_records(stdout)):
        if point["dimensions"] == {"Stage": "staging"}:
            values.setdefault(point["name"], []).append(point["value"])
    return values


def test_scan_reads_the_lake_and_orders_once(
    deployed: AwsClients, capsys: pytest.CaptureFixture[str]
) -> None:
    # When the scheduled scan runs as of 2021-05-01 on the lake's Binance pairs
    capsys.readouterr()
    first = _invoke({"top_n": 6, "asof": "2021-05-01"})
    # Then it published the stage's SLIs: one request, no error, its decision latency
    slis = _slis(capsys.readouterr().out)
    assert (slis["Requests"], slis["Errors"]) == ([1.0], [0.0])
    (latency_ms,) = slis["DecisionLatency"]
    assert 0 < latency_ms < 60_000
    # Then every pair was ranked from the lake
    assert first["status"] == "ok", first
    report = first["report"]
    assert report["universe"] == len(PAIRS)
    assert {r["symbol"] for r in report["rows"]} <= set(PAIRS)
    orders = deployed.dynamodb.scan(TableName=AwsResources().orders_table)["Items"]
    assert len(orders) == report["orders_created"]
    # And redelivery creates nothing new
    again = _invoke({"top_n": 6, "asof": "2021-05-01"})
    assert again["report"]["orders_created"] == 0
    assert again["report"]["duplicates_prevented"] == report["orders_created"]


def test_scan_before_the_lake_has_data_is_rejected_with_a_reason(
    deployed: AwsClients, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    result = _invoke({"top_n": 5, "asof": "2019-01-01"})
    assert result["status"] == "rejected"
    assert "no market data" in result["error"]
    # a rejected as-of is a request answered, not a server error, and no decision was made
    assert _slis(capsys.readouterr().out) == {"Requests": [1.0], "Errors": [0.0]}


def test_with_the_ingest_breaker_open_every_agent_abstains_and_says_why(
    deployed: AwsClients,
) -> None:
    # Given the ingest breaker for binance opened after repeated upstream errors
    now = datetime.now(tz=UTC)
    breaker = CircuitBreaker()
    while breaker.state is not BreakerState.OPEN:
        breaker = breaker.record_failure(now, "binance fetch_ohlcv: NetworkError: timeout")
    DynamoStateStore(AwsResources().state_table, deployed.dynamodb).put(
        BREAKER_PK, "binance", {**breaker.to_dict(), "updated_at": now}
    )
    # When the scheduled scan runs
    result = _invoke({"top_n": 6, "asof": "2021-05-01"})
    # Then nothing is ordered and every row abstains naming the breaker and its reason
    assert result["status"] == "ok", result
    rows = result["report"]["rows"]
    assert rows
    assert {r["action"] for r in rows} == {"abstain"}
    assert all("ingest circuit breaker for binance is open" in r["reasons"][0] for r in rows)
    assert all("NetworkError" in r["reasons"][0] for r in rows)
    assert result["report"]["orders_created"] == 0
    assert result["report"]["decision_basis"].startswith("abstaining: ingest circuit breaker")
