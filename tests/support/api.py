"""The API handler's services built on the in-memory fakes (``tests/fakes.py``), as the deployed
handler builds them on DynamoDB and SSM (``handlers/api.py`` ``_service`` / ``_dashboard``): for
tests about what a view answers, not about AWS. The routes, validation and JSON shaping are the
handler's own; only the stores under the services are fakes, which keep their adapters'
contract (``tests/integration/test_store_contract.py``). Not faked: the health probes (AWS
calls themselves), the lake's candles (S3) and the model registry (S3 + DynamoDB), whose tests
stay on moto."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from types import ModuleType

import pytest

from cryptosmarttrader.adapters.system_clock import SystemClock
from cryptosmarttrader.domain.clock import Clock
from cryptosmarttrader.services.api import ApiService
from cryptosmarttrader.services.dashboard import DashboardService
from cryptosmarttrader.services.golive import GoLiveSettings
from cryptosmarttrader.services.risk_state import RiskStateService
from cryptosmarttrader.settings import TradingSettings, VenueSettings
from tests.fakes import (
    InMemoryAuditTrail,
    InMemoryKillSwitch,
    InMemoryOrderLedger,
    InMemoryPositionLedger,
    InMemorySignalStore,
    InMemoryStateStore,
)


@dataclass
class ApiStores:
    """The API's ports on fakes, shared by the API and dashboard services built over them."""

    clock: Clock = field(default_factory=SystemClock)
    orders: InMemoryOrderLedger = field(default_factory=InMemoryOrderLedger)
    positions: InMemoryPositionLedger = field(default_factory=InMemoryPositionLedger)
    state: InMemoryStateStore = field(default_factory=InMemoryStateStore)
    signals: InMemorySignalStore = field(default_factory=InMemorySignalStore)
    audit: InMemoryAuditTrail = field(default_factory=InMemoryAuditTrail)
    switch: InMemoryKillSwitch = field(init=False)

    def __post_init__(self) -> None:
        # off, as after a fresh deployment; a write is timed by the clock, as on SSM
        self.switch = InMemoryKillSwitch(datetime(2024, 1, 1, tzinfo=UTC), self.clock)

    def api_service(self) -> ApiService:
        """What ``handlers.api._service`` builds, over these fakes and without health probes."""
        settings = TradingSettings()
        return ApiService(
            signals=self.signals,
            positions=self.positions,
            orders=self.orders,
            risk=RiskStateService(store=self.state, kill_switch=self.switch, clock=self.clock),
            kill_switch=self.switch,
            audit=self.audit,
            probes=(),
            clock=self.clock,
            equity_usd=Decimal(str(settings.equity_usd)),
            max_asset_fraction=Decimal(str(settings.max_asset_fraction)),
            venue_mode=VenueSettings().venue_mode,
        )

    def dashboard(self, api: ModuleType) -> DashboardService:
        """What ``handlers.api._dashboard`` builds, over these fakes (candles: the handler's
        own source, the recorded data when ``CST_DATA_SOURCE=recorded``)."""
        settings = TradingSettings()
        return DashboardService(
            signals=self.signals,
            positions=self.positions,
            orders=self.orders,
            state=self.state,
            audit=self.audit,
            registry=None,
            registry_kind="",
            bars=api._lazy_bars(),
            clock=self.clock,
            starting_equity=Decimal(str(settings.equity_usd)),
            thresholds=GoLiveSettings().thresholds(),
        )

    def install(self, api: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
        """Make the handler module ``api`` serve from these fakes for the test's duration."""
        service, dashboard = self.api_service(), self.dashboard(api)
        monkeypatch.setattr(api, "_service", lambda: service)
        monkeypatch.setattr(api, "_dashboard", lambda: dashboard)


def serving(stores: ApiStores, monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> ModuleType:
    """The API handler module with ``env`` set, its settings re-read and its services on
    ``stores`` for the test's duration (the caller resets ``_common``'s caches afterwards)."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    from cryptosmarttrader.handlers import _common, api

    _common.reset_caches()
    stores.install(api, monkeypatch)
    return api
