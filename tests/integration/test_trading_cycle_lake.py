"""The exit rule reads each held position's daily bars back to its opening day: a damaged or
unreadable object of one position in the S3 lake holds that position, never the whole cycle."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from moto import mock_aws

from cryptosmarttrader.adapters.aws_clients import AwsClients
from cryptosmarttrader.adapters.dynamodb_store import DynamoPositionStore
from cryptosmarttrader.adapters.emf_metrics import InMemoryMetrics
from cryptosmarttrader.adapters.recorded_data import RecordedMarketData
from cryptosmarttrader.adapters.s3_lake import S3ParquetLake, partition_key
from cryptosmarttrader.domain.clock import FixedClock
from cryptosmarttrader.settings import AwsResources, TradingSettings
from cryptosmarttrader.wiring import lake_market_data, trading_cycle
from cst_devtools.local_aws import ensure_resources

pytestmark = pytest.mark.realdata

AT = datetime(2021, 6, 29, 1, 10, tzinfo=UTC)


@pytest.fixture
def clients(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> Iterator[AwsClients]:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        aws = AwsClients.build(AwsResources())
        ensure_resources(aws, now=AT)
        lake = S3ParquetLake(aws.resources.lake_bucket, aws.s3)
        market = RecordedMarketData(data_dir)
        for pair in ("BTC/USDT", "ETH/USDT"):
            lake.write_candles(
                market.ohlcv(pair, "1d", datetime(2021, 1, 1, tzinfo=UTC), AT), "binance", "1d"
            )
            lake.write_candles(
                market.ohlcv(pair, "1h", datetime(2021, 6, 26, tzinfo=UTC), AT), "binance", "1h"
            )
        yield aws


def test_a_damaged_old_daily_partition_of_one_position_does_not_abort_the_cycle(
    clients: AwsClients,
) -> None:
    positions = DynamoPositionStore(clients.resources.positions_table, clients.dynamodb)
    for symbol, qty, price in (("BTC/USDT", "0.01", "30000"), ("ETH/USDT", "1", "1300")):
        positions.upsert(
            {"symbol": symbol, "quantity": Decimal(qty), "cost": Decimal(qty) * Decimal(price),
             "notional": Decimal(qty) * Decimal(price), "average_price": Decimal(price),
             "opened_by": "a" * 32, "opened_at": "2021-01-20T03:10:00+00:00"}, None,
        )  # fmt: skip
    # ETH's daily candle of 2021-02-01 (older than the cycle's 120-day cluster window) is damaged
    key = partition_key("binance", "1d", "ETH/USDT", datetime(2021, 2, 1, tzinfo=UTC).date())
    clients.s3.put_object(Bucket=clients.resources.lake_bucket, Key=key, Body=b"not parquet")
    market = lake_market_data(clients.s3, clients.resources, "binance")
    cycle = trading_cycle(
        market, FixedClock(AT), clients, clients.resources, TradingSettings(), InMemoryMetrics()
    )
    report = cycle.run()  # one position's unreadable bars must not abort the whole cycle
    assert report.exit_decisions["ETH/USDT"].startswith("held: daily bars unreadable"), (
        report.exit_decisions
    )
    # and the other position is judged as usual: BTC's real closes doubled its 30,000 entry
    # in April 2021, so the rule takes its profit in the same cycle
    assert report.exit_decisions["BTC/USDT"].startswith("exit by the rule (take_profit"), report
    assert report.exits_by_rule == 1
    assert report.equity is not None
