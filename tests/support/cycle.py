"""The trading cycle on the in-memory fakes (``tests/fakes.py``), built as the deployed execution
function builds it on DynamoDB and SSM (``wiring.trading_cycle``, paper venue): for tests about
the cycle's logic (valuation, RiskGuard levels, exits by rule, stages, balance drift), not about
AWS. The paper venue's book lives in the state store, as on DynamoDB; the market data is the
recorded real data, never an invented price. What stays on moto: the adapters' reads themselves
(how many Scans a cycle makes) and a record repaired with the AWS CLI.
``test_trading_cycle.py::test_the_cycle_on_the_fakes_is_configured_as_the_deployed_one`` fails
when this builder and the wiring's differ in anything but the stores."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from cryptosmarttrader.adapters.emf_metrics import InMemoryMetrics
from cryptosmarttrader.adapters.paper_exchange import (
    PaperExchange,
    StatePaperBook,
    paper_capabilities,
)
from cryptosmarttrader.domain.balances import COMMISSION_ASSETS
from cryptosmarttrader.domain.clock import FixedClock
from cryptosmarttrader.domain.exchange import ExchangeId
from cryptosmarttrader.domain.risk import RiskGuard, RiskLimits
from cryptosmarttrader.domain.universe import spot_quote
from cryptosmarttrader.ports import MarketData
from cryptosmarttrader.services.execution import ExecutionService
from cryptosmarttrader.services.risk_state import RiskStateService
from cryptosmarttrader.services.scan import ScanService
from cryptosmarttrader.services.trading_cycle import TradingCycle
from cryptosmarttrader.settings import TradingSettings
from cryptosmarttrader.wiring import recorded_analyzer
from tests.support.book import FakeBook


@dataclass
class CycleStores(FakeBook):
    """The cycle's ports on fakes (:class:`~tests.support.book.FakeBook`), shared by every cycle
    built over them: each cycle is built afresh (what a scheduled invocation does), so the state
    a cycle leaves is what the next finds. ``clock`` is the stores' clock, set to each built
    cycle's instant (the kill-switch times its writes by it, as ``SsmKillSwitch`` does by the
    cycle's clock)."""

    clock: FixedClock = field(default_factory=lambda: FixedClock(datetime(2021, 1, 1, tzinfo=UTC)))

    def at(self, at: datetime) -> FixedClock:
        """The stores' clock, moved to ``at``."""
        self.clock.current = at
        return self.clock

    def risk(self, at: datetime) -> RiskStateService:
        return RiskStateService(self.state, self.switch, self.at(at))

    def cycle(
        self,
        market: MarketData,
        at: datetime,
        settings: TradingSettings,
        metrics: InMemoryMetrics,
    ) -> TradingCycle:
        """What ``wiring.trading_cycle`` builds on the paper venue, over these fakes."""
        clock = self.at(at)
        risk = RiskStateService(self.state, self.switch, clock)
        venue = PaperExchange(
            market,
            clock,
            timeframe=settings.execution_timeframe,
            book=StatePaperBook(self.state),
            max_wait=timedelta(minutes=settings.paper_max_wait_minutes),
            capabilities=paper_capabilities(ExchangeId(settings.exchange)),
        )
        execution = ExecutionService(
            orders=self.orders,
            positions=self.positions,
            kill_switch=self.switch,
            risk=risk,
            exchange=venue,
            clock=clock,
            metrics=metrics,
            guard=RiskGuard(RiskLimits(Decimal(str(settings.max_asset_fraction)))),
            prepare=self.orders.backfill_open_index,  # the fake indexes every order on insert
            mode="paper",
            dust_value=Decimal(str(settings.dust_value_usd)),
        )
        return TradingCycle(
            execution=execution,
            risk=risk,
            market=market,
            metrics=metrics,
            starting_equity=Decimal(str(settings.equity_usd)),
            timeframe=settings.execution_timeframe,
            exit_rule=settings.exit_rule,
            balances=None,
            quote_asset=spot_quote(settings.exchange),
            commission_assets=COMMISSION_ASSETS.get(settings.exchange, frozenset()),
        )

    def scan(self, data_dir: Path, at: datetime, settings: TradingSettings) -> ScanService:
        """The scan of the recorded data at ``at`` recording its decisions in these stores."""
        clock = self.at(at)
        return ScanService(
            analyzer=recorded_analyzer(data_dir, clock, settings),
            orders=self.orders,
            positions=self.positions,
            kill_switch=self.switch,
            metrics=InMemoryMetrics(),
        )
