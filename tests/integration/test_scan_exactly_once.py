"""The scan's order path under concurrency and partial failure, on moto DynamoDB/SSM. The
scan's logic (the persisted risk level, created/duplicate outcomes, the published signals, its
decision latency) runs on the in-memory fakes in ``test_scan_logic.py``."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cryptosmarttrader.adapters.aws_clients import AwsClients
from cryptosmarttrader.adapters.emf_metrics import InMemoryMetrics
from cryptosmarttrader.adapters.system_clock import SystemClock
from cryptosmarttrader.services.scan import Analysis, ScanAnalyzer
from cryptosmarttrader.settings import AwsResources, TradingSettings
from cryptosmarttrader.wiring import recorded_analyzer, scan_service
from tests.support.aws import moto_stack

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def analysis(data_dir: Path) -> tuple[ScanAnalyzer, Analysis]:
    analyzer = recorded_analyzer(data_dir, SystemClock(), TradingSettings())
    return analyzer, analyzer.analyze(datetime(2021, 5, 1, tzinfo=UTC), 8)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsClients]:
    with moto_stack(monkeypatch) as clients:
        yield clients


def _orders(aws: AwsClients) -> int:
    return aws.dynamodb.scan(TableName=AwsResources().orders_table, Select="COUNT")["Count"]


def test_concurrent_scans_of_one_analysis_record_each_order_once(
    aws: AwsClients, analysis: tuple[ScanAnalyzer, Analysis]
) -> None:
    analyzer, result = analysis
    # the research universe: BUYs on coins the paper venue cannot trade are never ordered
    buys = sum(
        1 for s in result.ranked if s.action.value == "buy" and s.symbol not in analyzer.untradable
    )
    assert buys > 0
    # When 8 invocations execute the same decisions at once
    with ThreadPoolExecutor(max_workers=8) as pool:
        reports = list(
            pool.map(
                lambda _: scan_service(analyzer, aws, AwsResources(), InMemoryMetrics()).execute(
                    result
                ),
                range(8),
            )
        )
    # Then each decision is recorded exactly once, and every other attempt reports a duplicate
    assert _orders(aws) == buys
    assert sum(r.orders_created for r in reports) == buys
    assert sum(r.duplicates_prevented for r in reports) == 7 * buys


def test_a_decision_whose_order_write_was_lost_is_recorded_on_the_retry(
    aws: AwsClients, analysis: tuple[ScanAnalyzer, Analysis]
) -> None:
    analyzer, result = analysis
    service = scan_service(analyzer, aws, AwsResources(), InMemoryMetrics())
    first_buy = next(s for s in result.ranked if s.action.value == "buy")
    # Given an earlier attempt whose order write of the first decision was lost (the key is
    # the client order ID the decision produces)
    probe = scan_service(analyzer, aws, AwsResources(), InMemoryMetrics()).execute(result)
    coid = next(r.client_order_id for r in probe.rows if r.symbol == first_buy.symbol)
    assert coid is not None
    aws.dynamodb.delete_item(
        TableName=AwsResources().orders_table, Key={"client_order_id": {"S": coid}}
    )
    # When the scan runs again within the 60-minute window
    report = service.execute(result)
    # Then the lost order is recorded (once), the others stay duplicates
    assert report.orders_created == 1
    row = next(r for r in report.rows if r.symbol == first_buy.symbol)
    assert row.client_order_id == coid
    assert row.order_status == "NEW"
