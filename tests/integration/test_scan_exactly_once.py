"""The scan's order path under concurrency and partial failure, on moto DynamoDB/SSM."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from cryptosmarttrader.adapters.aws_clients import AwsClients
from cryptosmarttrader.adapters.dynamodb_signals import DynamoSignalStore
from cryptosmarttrader.adapters.dynamodb_store import DynamoStateStore
from cryptosmarttrader.adapters.emf_metrics import InMemoryMetrics, InMemorySlis
from cryptosmarttrader.adapters.ssm_killswitch import SsmKillSwitch
from cryptosmarttrader.adapters.system_clock import SystemClock
from cryptosmarttrader.domain.orders import RecordOutcome
from cryptosmarttrader.domain.risk import RiskLevel
from cryptosmarttrader.ports import MarketData
from cryptosmarttrader.services.api import Opportunity
from cryptosmarttrader.services.risk_state import RiskStateService
from cryptosmarttrader.services.scan import Analysis, ScanAnalyzer
from cryptosmarttrader.settings import AwsResources, TradingSettings
from cryptosmarttrader.wiring import recorded_analyzer, scan_service
from cst_devtools.local_aws import ensure_resources

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def analysis(data_dir: Path) -> tuple[ScanAnalyzer, Analysis]:
    analyzer = recorded_analyzer(data_dir, SystemClock(), TradingSettings())
    return analyzer, analyzer.analyze(datetime(2021, 5, 1, tzinfo=UTC), 8)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsClients]:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "testing")
    with mock_aws():
        clients = AwsClients.build(AwsResources())
        ensure_resources(clients)
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


def test_the_persisted_risk_level_governs_the_scan(
    aws: AwsClients, analysis: tuple[ScanAnalyzer, Analysis]
) -> None:
    analyzer, result = analysis
    res = AwsResources()
    # Given the RiskGuard stood at DEFENSIVE (set by a human here; escalations store it the same)
    risk = RiskStateService(
        DynamoStateStore(res.state_table, aws.dynamodb),
        SsmKillSwitch(res.kill_switch_param, aws.ssm, SystemClock()),
        SystemClock(),
    )
    risk.override(RiskLevel.DEFENSIVE, "alice", "daily loss 5% drill")
    # When a freshly started scan service runs the decisions
    report = scan_service(analyzer, aws, res, InMemoryMetrics()).execute(result)
    # Then no new entry is ordered, and each held BUY names the level's rule
    assert report.orders_created == 0
    assert _orders(aws) == 0
    held = [r for r in report.rows if any("risk_level" in x for x in r.reasons)]
    assert held
    assert all("DEFENSIVE" in r.reasons[-1] for r in held)


@dataclass
class WatchedMarket:
    """The real market data, noting each read in ``events``."""

    market: MarketData
    events: list[str]

    def daily_universe(self, asof: datetime, lookback_days: int) -> Any:
        self.events.append("read")
        return self.market.daily_universe(asof, lookback_days)

    def ohlcv(self, symbol: str, timeframe: str, start: datetime, end: datetime) -> Any:
        self.events.append("read")
        return self.market.ohlcv(symbol, timeframe, start, end)


def test_a_run_publishes_its_decision_latency_without_the_market_data_read(
    aws: AwsClients, analysis: tuple[ScanAnalyzer, Analysis]
) -> None:
    # Given the deployed scan's service for the canary, its clock ticking 250 ms per decision
    analyzer, _ = analysis
    events: list[str] = []
    ticks = iter([1_000.0, 1_000.25])

    def timer() -> float:
        events.append("tick")
        return next(ticks)

    slis = InMemorySlis(stage="canary")
    watched = replace(analyzer, market=WatchedMarket(analyzer.market, events))
    service = replace(
        scan_service(watched, aws, AwsResources(), InMemoryMetrics(), slis), timer=timer
    )

    # When it runs
    report = service.run(datetime(2021, 5, 1, tzinfo=UTC), 8)

    # Then the clock started once the market data was read and stopped after the orders were
    # recorded, and that span is the run's one DecisionLatency sample, for the canary
    assert report.rows
    assert events == ["read", "tick", "tick"]
    assert [(m.name, m.value, m.unit, m.dimensions) for m in slis.recorded] == [
        ("DecisionLatency", 250.0, "Milliseconds", (("Stage", "canary"),))
    ]


def test_each_row_says_whether_this_run_created_its_order_and_the_signals_keep_their_contract(
    aws: AwsClients, analysis: tuple[ScanAnalyzer, Analysis]
) -> None:
    analyzer, result = analysis
    # When the same analysis is recorded twice
    first = scan_service(analyzer, aws, AwsResources(), InMemoryMetrics()).execute(result)
    second = scan_service(analyzer, aws, AwsResources(), InMemoryMetrics()).execute(result)
    # Then the typed outcome of every ordered row says created, then duplicate (no reason text
    # is parsed to know it), and the counts follow it
    ordered = [r for r in first.rows if r.client_order_id is not None]
    assert ordered and first.orders_created == len(ordered)
    assert {r.order_outcome for r in ordered} == {RecordOutcome.CREATED}
    again = [r for r in second.rows if r.client_order_id is not None]
    assert {r.order_outcome for r in again} == {RecordOutcome.DUPLICATE}
    assert second.duplicates_prevented == len(again) and second.orders_created == 0
    # and the published signals still validate against the API's strict contract
    state = DynamoStateStore(AwsResources().state_table, aws.dynamodb)
    latest = DynamoSignalStore(state).latest()
    assert latest is not None and latest["rows"]
    for row in latest["rows"]:
        Opportunity.model_validate(row)
