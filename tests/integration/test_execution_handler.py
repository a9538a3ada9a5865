"""The execution Lambda as deployed (CST_DATA_SOURCE=ccxt): the scan's decisions from the scan
Lambda, hourly and daily candles from the S3 lake, the paper venue's book in DynamoDB."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import redirect_stdout
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from cryptosmarttrader.adapters.aws_clients import AwsClients
from cryptosmarttrader.adapters.dynamodb_store import DynamoOrderStore
from cryptosmarttrader.adapters.recorded_data import RecordedMarketData
from cryptosmarttrader.adapters.s3_lake import S3ParquetLake
from cryptosmarttrader.settings import AwsResources
from cst_devtools.local_aws import ensure_resources
from cst_devtools.moto_shims import emf_points, emf_records

pytestmark = pytest.mark.realdata
PAIRS = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "MATIC/USDT", "DOGE/USDT", "LINK/USDT"]
ASOF = datetime(2021, 5, 1, tzinfo=UTC)


@dataclass
class Context:
    function_name: str
    aws_request_id: str
    memory_limit_in_mb: int = 1024

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"


@pytest.fixture
def deployed(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsClients]:
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "CST_DATA_SOURCE": "ccxt",
        "CST_EXCHANGE": "binance",
        "CST_ALLOW_REPLAYS": "true",  # the cycles below replay instants over 2021 lake data
        # no promoted model: the scan trades on the technical agent by the explicit opt-in
        "CST_ALLOW_TECHNICAL_ONLY_TRADING": "true",
    }.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("CST_DATA_DIR", raising=False)
    from cryptosmarttrader.handlers import _common, execute, scan

    def forget() -> None:
        _common.reset_caches()
        scan._service.cache_clear()
        execute._market.cache_clear()

    forget()
    with mock_aws():
        clients = AwsClients.build(AwsResources())
        ensure_resources(clients)
        lake = S3ParquetLake(clients.resources.lake_bucket, clients.s3)
        market = RecordedMarketData(data_dir)
        for pair in PAIRS:  # what the ingest Lambda would have written
            daily = market.ohlcv(pair, "1d", datetime(2020, 8, 1, tzinfo=UTC), ASOF)
            lake.write_candles(daily, "binance", "1d")
            hourly = market.ohlcv(pair, "1h", ASOF - timedelta(days=2), ASOF + timedelta(hours=3))
            lake.write_candles(hourly, "binance", "1h")
        yield clients
    forget()


def _invoke(module: str, event: dict[str, Any], n: int = 1) -> tuple[dict[str, Any], str]:
    from cryptosmarttrader.handlers import execute, scan

    handler = {"scan": scan.handler, "execute": execute.handler}[module]
    out = io.StringIO()
    with redirect_stdout(out):
        result = handler(event, Context(f"cst-{module}", f"req-{module}-{n}"))  # type: ignore[arg-type]
    return result, out.getvalue()


def _emf(stdout: str) -> dict[str, float]:
    """Metric name → value from the EMF lines the handler printed."""
    values: dict[str, float] = {}
    for line in stdout.splitlines():
        if '"_aws"' not in line:
            continue
        blob = json.loads(line)
        for metric in blob["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
            raw = blob[metric["Name"]]
            values[metric["Name"]] = float(sum(raw) if isinstance(raw, list) else raw)
    return values


def test_the_scans_decisions_fill_on_the_lakes_next_hourly_bar(deployed: AwsClients) -> None:
    scanned, _ = _invoke("scan", {"top_n": 6, "asof": ASOF.date().isoformat()})
    assert scanned["status"] == "ok", scanned
    created = scanned["report"]["orders_created"]
    assert created >= 1

    first, out1 = _invoke("execute", {"at": (ASOF + timedelta(hours=1, minutes=10)).isoformat()})
    assert first["status"] == "ok", first
    assert first["report"]["dispatched"] + first["report"]["cancelled_new"] == created
    assert _emf(out1)["OrdersSent"] == first["report"]["dispatched"] >= 1

    second, out2 = _invoke(
        "execute", {"at": (ASOF + timedelta(hours=2, minutes=10)).isoformat()}, 2
    )
    orders = DynamoOrderStore(AwsResources().orders_table, deployed.dynamodb).list_orders()
    filled = [o for o in orders if o["status"] == "FILLED"]
    assert len(filled) == first["report"]["dispatched"]
    assert set(second["report"]["positions"]) == {str(o["symbol"]) for o in filled}
    metrics = _emf(out2)
    assert metrics["OrdersFilled"] == len(filled)
    assert {"SlippageBps", "DailyPnl", "Drawdown", "Equity", "RiskLevel"} <= set(metrics)
    assert metrics["RiskLevel"] == 0
    # and the go-live SLIs of this stage, dimensioned Stage only: one request each run, and from
    # the second cycle on the period's returns of the account and of its backtest twin
    slis = {
        p["name"]: p
        for p in emf_points(emf_records(out2))
        if p["dimensions"] == {"Stage": "staging"}
    }
    assert {"Requests", "Errors", "StrategyReturnBps", "ReferenceReturnBps"} <= set(slis)
    assert slis["Errors"]["value"] == 0
    assert slis["StrategyReturnBps"]["value"] == pytest.approx(
        (second["report"]["equity"] / first["report"]["equity"] - 1) * 1e4
    )
    assert second["report"]["reference_return_bps"] == slis["ReferenceReturnBps"]["value"]
    assert not any(p["name"] == "StrategyReturnBps" for p in emf_points(emf_records(out1)))

    # a replay before the stored risk state is refused before anything is sent or written
    before = DynamoOrderStore(AwsResources().orders_table, deployed.dynamodb).list_orders()
    back, out3 = _invoke("execute", {"at": (ASOF + timedelta(minutes=30)).isoformat()}, 3)
    assert back["status"] == "rejected" and "must move forward" in back["error"]
    assert DynamoOrderStore(AwsResources().orders_table, deployed.dynamodb).list_orders() == before
    errors = [p for p in emf_points(emf_records(out3)) if p["name"] == "Errors"]
    assert [p["value"] for p in errors] == [0.0]  # the caller's mistake, not a server error


def test_malformed_events_are_rejected_and_touch_nothing(deployed: AwsClients) -> None:
    for event in (
        {"at": "yesterday"},
        {"at": "2021-05-01T01:10:00"},  # no offset: ambiguous, not assumed to be UTC
        {"at": "2999-01-01T00:00:00Z"},  # the future cannot be replayed
        {"unexpected": 1},
    ):
        result, _ = _invoke("execute", event)
        assert result["status"] == "rejected", event
        assert result["details"], event
    state = deployed.dynamodb.scan(TableName=AwsResources().state_table)["Items"]
    assert state == []
