"""The scan's ports on the in-memory fakes (``tests/fakes.py``), built as the deployed scan
builds them (``wiring.scan_service``): for tests about the scan's logic, not about AWS."""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptosmarttrader.adapters.emf_metrics import InMemoryMetrics
from cryptosmarttrader.ports import SliRecorder
from cryptosmarttrader.services.risk_state import RiskStateService
from cryptosmarttrader.services.scan import ScanAnalyzer, ScanService
from tests.fakes import (
    InMemoryKillSwitch,
    InMemoryOrderLedger,
    InMemoryPositionLedger,
    InMemorySignalStore,
    InMemoryStateStore,
)


@dataclass
class Stores:
    """The scan's ports on fakes, shared by every service built (what a fresh start finds)."""

    orders: InMemoryOrderLedger = field(default_factory=InMemoryOrderLedger)
    positions: InMemoryPositionLedger = field(default_factory=InMemoryPositionLedger)
    state: InMemoryStateStore = field(default_factory=InMemoryStateStore)
    signals: InMemorySignalStore = field(default_factory=InMemorySignalStore)
    switch: InMemoryKillSwitch | None = None

    def risk(self, analyzer: ScanAnalyzer) -> RiskStateService:
        if self.switch is None:
            self.switch = InMemoryKillSwitch(analyzer.clock.now(), analyzer.clock)
        return RiskStateService(self.state, self.switch, analyzer.clock)

    def service(self, analyzer: ScanAnalyzer, slis: SliRecorder | None = None) -> ScanService:
        """What ``wiring.scan_service`` builds, over these fakes."""
        risk = self.risk(analyzer)
        return ScanService(
            analyzer=analyzer,
            orders=self.orders,
            positions=self.positions,
            kill_switch=risk.kill_switch,
            metrics=InMemoryMetrics(),
            signals=self.signals,
            risk_state=lambda: risk.load().level,
            slis=slis,
        )
