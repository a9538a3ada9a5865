"""The scan's logic on the in-memory fakes (``tests/fakes.py``): the RiskGuard's persisted level
governs the orders, each row says whether this run created its order, the published signals
keep the API's contract, and a run's decision latency leaves the market data read out. The
stores are those of the deployed scan (``wiring.scan_service``), faked: their DynamoDB and SSM
adapters keep the same contract (``test_store_contract.py``); the paths about AWS (concurrent
scans on DynamoDB's conditional writes, a lost write) stay in ``test_scan_exactly_once.py``."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from cryptosmarttrader.adapters.emf_metrics import InMemorySlis
from cryptosmarttrader.adapters.system_clock import SystemClock
from cryptosmarttrader.domain.orders import Intent, OrderIntent, RecordOutcome, close_position_key
from cryptosmarttrader.domain.risk import RiskLevel
from cryptosmarttrader.domain.types import Price, Quantity, Side, Symbol
from cryptosmarttrader.ports import MarketData
from cryptosmarttrader.services.api import Opportunity
from cryptosmarttrader.services.scan import Analysis, ScanAnalyzer
from cryptosmarttrader.settings import TradingSettings
from cryptosmarttrader.wiring import recorded_analyzer
from tests.fakes import InMemoryOrderLedger
from tests.support.scan import Stores

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def analysis(data_dir: Path) -> tuple[ScanAnalyzer, Analysis]:
    analyzer = recorded_analyzer(data_dir, SystemClock(), TradingSettings())
    return analyzer, analyzer.analyze(datetime(2021, 5, 1, tzinfo=UTC), 8)


@pytest.fixture
def stores() -> Stores:
    return Stores()


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


def test_the_persisted_risk_level_governs_the_scan(
    stores: Stores, analysis: tuple[ScanAnalyzer, Analysis]
) -> None:
    analyzer, result = analysis
    # Given the RiskGuard stood at DEFENSIVE (set by a human here; escalations store it the same)
    stores.risk(analyzer).override(RiskLevel.DEFENSIVE, "alice", "daily loss 5% drill")
    # When a freshly started scan service runs the decisions
    report = stores.service(analyzer).execute(result)
    # Then no new entry is ordered, and each held BUY names the level's rule
    assert report.orders_created == 0
    assert stores.orders.list_orders() == []
    held = [r for r in report.rows if any("risk_level" in x for x in r.reasons)]
    assert held
    assert all("DEFENSIVE" in r.reasons[-1] for r in held)


def test_a_run_publishes_its_decision_latency_without_the_market_data_read(
    stores: Stores, analysis: tuple[ScanAnalyzer, Analysis]
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
    service = replace(stores.service(watched, slis), timer=timer)

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
    stores: Stores, analysis: tuple[ScanAnalyzer, Analysis]
) -> None:
    analyzer, result = analysis
    # When the same analysis is recorded twice
    first = stores.service(analyzer).execute(result)
    second = stores.service(analyzer).execute(result)
    # Then the typed outcome of every ordered row says created, then duplicate (no reason text
    # is parsed to know it), and the counts follow it
    ordered = [r for r in first.rows if r.client_order_id is not None]
    assert ordered and first.orders_created == len(ordered)
    assert {r.order_outcome for r in ordered} == {RecordOutcome.CREATED}
    again = [r for r in second.rows if r.client_order_id is not None]
    assert {r.order_outcome for r in again} == {RecordOutcome.DUPLICATE}
    assert second.duplicates_prevented == len(again) and second.orders_created == 0
    # and the published signals still validate against the API's strict contract
    latest = stores.signals.latest()
    assert latest is not None and latest["rows"]
    for row in latest["rows"]:
        Opportunity.model_validate(row)


def test_a_coin_with_a_damaged_position_is_not_ordered_and_the_others_are(
    stores: Stores, analysis: tuple[ScanAnalyzer, Analysis]
) -> None:
    analyzer, result = analysis
    # Given the coin the scan would buy first has a position recorded below zero (damaged)
    bought = [r for r in stores.service(analyzer)._act(result.ranked, result.prices,
              RiskLevel.NORMAL, {})[0] if r.client_order_id is not None]  # fmt: skip
    assert len(bought) >= 2
    damaged = bought[0].symbol
    stores.orders = InMemoryOrderLedger()
    stores.positions.upsert({"symbol": damaged, "quantity": -1, "cost": 0}, None)
    # When the scan runs its decisions
    report = stores.service(analyzer).execute(result)
    # Then that coin is not ordered (its exposure unknown, never "none"), saying why, and the
    # scan went on with the others
    row = next(r for r in report.rows if r.symbol == damaged)
    assert row.client_order_id is None
    assert "cannot be read" in row.reasons[-1] and "below zero" in row.reasons[-1]
    assert report.orders_created >= 1
    assert damaged not in {str(o["symbol"]) for o in stores.orders.list_orders()}
    # and its exit row says its position cannot be read
    (exit_row,) = [e for e in report.exits if e.symbol == damaged]
    assert "cannot be read" in exit_row.reasons[0]


def test_a_damaged_close_record_is_said_on_its_exit_row_and_the_scan_goes_on(
    stores: Stores, analysis: tuple[ScanAnalyzer, Analysis]
) -> None:
    analyzer, result = analysis
    settings = TradingSettings()
    # Given a held position (its entry at today's price) whose close was recorded by an earlier
    # version without its strategy
    symbol = next(s for s, p in sorted(result.prices.items()) if p > 0)
    price = Decimal(str(result.prices[symbol]))
    stores.positions.upsert(
        {"symbol": symbol, "quantity": Decimal(1000), "cost": 1000 * price,
         "opened_by": "a" * 32}, None
    )  # fmt: skip
    close = OrderIntent(
        settings.strategy, Symbol(symbol), Side.SELL, Intent.CLOSE, result.asof_ms,
        Quantity.of(1000), Price(price), position_key=close_position_key("a" * 32, 0),
    )  # fmt: skip
    assert stores.orders.put_new(
        {"client_order_id": close.client_order_id.value, "symbol": symbol, "side": "sell",
         "intent": "close", "quantity": Decimal(1000), "reference_price": price,
         "signal_bar_ms": result.asof_ms, "status": "SUBMITTED",
         "created_at": "2021-04-30T10:00:00+00:00"}
    )  # fmt: skip
    # When the scan runs
    report = stores.service(analyzer).execute(result)
    # Then its exit row says the close cannot be resolved, and the scan went on
    (row,) = [e for e in report.exits if e.symbol == symbol]
    assert "cannot be resolved" in row.reasons[-1] and "strategy" in row.reasons[-1]
    assert report.rows
