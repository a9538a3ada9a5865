"""Exactly-once execution on moto DynamoDB + SSM with the paper exchange on real Binance bars:
what is about AWS (1,000 racing submissions on DynamoDB's conditional writes, a restart over
the embedded AWS). The service's logic runs on the fakes in ``test_execution_logic.py``."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import pytest

from cryptosmarttrader.adapters.aws_clients import AwsClients
from cryptosmarttrader.adapters.dynamodb_store import (
    DynamoOrderStore,
    DynamoPositionStore,
    DynamoStateStore,
)
from cryptosmarttrader.adapters.emf_metrics import InMemoryMetrics
from cryptosmarttrader.adapters.paper_exchange import PaperExchange
from cryptosmarttrader.adapters.recorded_data import RecordedMarketData
from cryptosmarttrader.adapters.ssm_killswitch import SsmKillSwitch
from cryptosmarttrader.domain.clock import FixedClock
from cryptosmarttrader.domain.orders import OrderStatus
from cryptosmarttrader.services.execution import ExecutionService
from cryptosmarttrader.services.risk_state import RiskStateService
from cryptosmarttrader.settings import AwsResources
from cst_devtools.local_aws import embedded_aws
from tests.support.aws import moto_stack
from tests.support.execution import (
    EQUITY,
    NOW,
    CrashAfterSend,
    ProcessDied,
    btc_intent,
    quote_at_now,
)

pytestmark = pytest.mark.realdata

_quote, _intent = quote_at_now, btc_intent


@pytest.fixture(scope="module")
def market(data_dir: Path) -> RecordedMarketData:
    return RecordedMarketData(data_dir)


@dataclass
class Rig:
    clients: AwsClients
    clock: FixedClock
    paper: PaperExchange
    switch: SsmKillSwitch
    risk: RiskStateService
    metrics: InMemoryMetrics

    def service(self, exchange: object | None = None) -> ExecutionService:
        """A fresh service over the same tables and venue (what a restart builds)."""
        res = self.clients.resources
        ddb = self.clients.dynamodb
        return ExecutionService(
            orders=DynamoOrderStore(res.orders_table, ddb),
            positions=DynamoPositionStore(res.positions_table, ddb),
            kill_switch=self.switch,
            risk=self.risk,
            exchange=exchange or self.paper,  # type: ignore[arg-type]
            clock=self.clock,
            metrics=self.metrics,
        )

    def orders(self) -> list[dict[str, object]]:
        res = self.clients.resources
        return DynamoOrderStore(res.orders_table, self.clients.dynamodb).list_orders()

    def position(self, symbol: str = "BTC/USDT") -> dict[str, object] | None:
        res = self.clients.resources
        return DynamoPositionStore(res.positions_table, self.clients.dynamodb).get(symbol)


def _rig(clients: AwsClients, market: RecordedMarketData) -> Rig:
    clock = FixedClock(NOW)
    res = clients.resources
    switch = SsmKillSwitch(res.kill_switch_param, clients.ssm, clock, cache_seconds=5)
    risk = RiskStateService(DynamoStateStore(res.state_table, clients.dynamodb), switch, clock)
    return Rig(clients, clock, PaperExchange(market, clock), switch, risk, InMemoryMetrics())


@pytest.fixture
def rig(monkeypatch: pytest.MonkeyPatch, market: RecordedMarketData) -> Iterator[Rig]:
    with moto_stack(monkeypatch, now=NOW) as clients:
        yield _rig(clients, market)


# ------------------------------------------------------------------------------ tests


@pytest.mark.slow
def test_1000_concurrent_submissions_of_one_decision_send_exactly_one_order(
    rig: Rig, market: RecordedMarketData
) -> None:
    # Given one decision and 1,000 submissions of it racing on 32 threads
    price, quote = _quote(market)
    intent = _intent(price)
    service = rig.service()
    start = threading.Event()

    def submit(_: int) -> str:
        start.wait()
        return service.submit(intent, equity=EQUITY, quote=quote).status

    with ThreadPoolExecutor(max_workers=32) as pool:
        futures = [pool.submit(submit, i) for i in range(1000)]
        start.set()
        statuses = [f.result() for f in futures]
    # Then exactly one order reached the exchange and was filled; every other was a duplicate
    assert rig.paper.create_calls == 1
    assert statuses.count(OrderStatus.FILLED.value) == 1
    assert statuses.count("duplicate") == 999
    (order,) = rig.orders()
    assert order["client_order_id"] == intent.client_order_id.value
    # And the fill reached the position once
    position = rig.position()
    assert position is not None and position["quantity"] == Decimal("0.03")


def test_crash_between_send_and_record_is_recovered_on_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, market: RecordedMarketData
) -> None:
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    price, quote = _quote(market)
    intent = _intent(price)
    # Given a process that dies right after the venue accepted its order
    with embedded_aws(tmp_path, AwsResources()) as aws:
        rig = _rig(aws.clients, market)
        venue = rig.paper  # the venue outlives our process
        with pytest.raises(ProcessDied):
            rig.service(CrashAfterSend(venue)).submit(intent, equity=EQUITY, quote=quote)
        assert [o["status"] for o in rig.orders()] == [OrderStatus.SUBMITTED.value]
    # When a new process starts from the persisted state and reconciles
    with embedded_aws(tmp_path, AwsResources()) as aws:
        rig = _rig(aws.clients, market)
        service = rig.service(venue)
        counts = service.reconcile()
        retry = service.submit(intent, equity=EQUITY, quote=quote)
        orders = rig.orders()
        position = rig.position()
    # Then the order is FILLED from the venue's record, the position has it once, nothing resent
    assert counts.updated == 1
    assert [o["status"] for o in orders] == [OrderStatus.FILLED.value]
    assert position is not None and position["quantity"] == Decimal("0.03")
    assert retry.status == "duplicate"
    assert venue.create_calls == 1
