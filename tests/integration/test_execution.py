"""Exactly-once execution on moto DynamoDB + SSM with the paper exchange on real Binance bars."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from moto import mock_aws

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
from cryptosmarttrader.domain.exchange import ExchangeOrder, OrderStateUnknownError, OrderType
from cryptosmarttrader.domain.orders import Intent, OrderIntent, OrderStatus
from cryptosmarttrader.domain.risk import RiskLevel, RiskObservation
from cryptosmarttrader.domain.types import ClientOrderId, Price, Quantity, Side, Symbol
from cryptosmarttrader.services.execution import ExecutionService
from cryptosmarttrader.services.risk_state import RiskStateService
from cryptosmarttrader.settings import AwsResources
from cst_devtools.local_aws import embedded_aws, ensure_resources
from tests.support.execution import (
    EQUITY,
    NOW,
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
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        clients = AwsClients.build(AwsResources())
        ensure_resources(clients, now=NOW)
        yield _rig(clients, market)


class AcceptThenTimeout:
    """A venue that accepts the order and then loses the answer (a read timeout)."""

    def __init__(self, inner: PaperExchange) -> None:
        self.inner = inner
        self.capabilities = inner.capabilities
        self.fetch_order_by_client_id = inner.fetch_order_by_client_id
        self.cancel_order = inner.cancel_order

    def create_order(
        self,
        symbol: Symbol,
        side: Side,
        order_type: OrderType,
        quantity: Quantity,
        price: Price | None,
        client_order_id: ClientOrderId,
    ) -> ExchangeOrder:
        self.inner.create_order(symbol, side, order_type, quantity, price, client_order_id)
        raise OrderStateUnknownError("paper", "create_order", "read timeout", client_order_id.value)


class CrashAfterSend(AcceptThenTimeout):
    def create_order(
        self,
        symbol: Symbol,
        side: Side,
        order_type: OrderType,
        quantity: Quantity,
        price: Price | None,
        client_order_id: ClientOrderId,
    ) -> ExchangeOrder:
        self.inner.create_order(symbol, side, order_type, quantity, price, client_order_id)
        raise ProcessDied


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


def test_accept_then_timeout_reconciles_by_client_id_and_never_sends_again(
    rig: Rig, market: RecordedMarketData
) -> None:
    # Given a venue that accepts the order and then times out
    price, quote = _quote(market)
    intent = _intent(price)
    flaky = AcceptThenTimeout(rig.paper)
    service = rig.service(flaky)
    # When the decision is submitted
    result = service.submit(intent, equity=EQUITY, quote=quote)
    # Then the order was found by client ID and recorded as filled, with its real fill price
    assert result.status == OrderStatus.FILLED.value
    fill = rig.paper.fill_for(intent.client_order_id)
    assert fill is not None and result.average_price == fill.price.value
    # When the same decision is retried and a reconcile pass runs
    again = service.submit(intent, equity=EQUITY, quote=quote)
    counts = service.reconcile()
    # Then no second order reached the exchange and the position holds one fill
    assert again.status == "duplicate"
    assert rig.paper.create_calls == 1
    assert counts.fills == 0
    position = rig.position()
    assert position is not None and position["quantity"] == Decimal("0.03")
    assert service.consecutive_exchange_errors == 1


def test_timeout_before_the_venue_saw_the_order_expires_it_without_resending(
    rig: Rig, market: RecordedMarketData
) -> None:
    # Given a venue whose create_order times out before accepting anything
    price, quote = _quote(market)

    class LostRequest(AcceptThenTimeout):
        def create_order(self, *args: object, **kw: object) -> ExchangeOrder:
            raise OrderStateUnknownError("paper", "create_order", "connect timeout", "x" * 8)

    service = rig.service(LostRequest(rig.paper))
    result = service.submit(_intent(price), equity=EQUITY, quote=quote)
    # Then it stays SUBMITTED (a venue may show an order late: it is looked up again at
    # growing intervals, never resent) and is EXPIRED only after the absent horizon
    assert result.status == OrderStatus.SUBMITTED.value
    assert service.reconcile().expired == 0
    rig.clock.advance(timedelta(minutes=3))
    assert service.reconcile().expired == 0
    (order,) = rig.orders()
    assert order["status"] == OrderStatus.SUBMITTED.value and order["absent_lookups"] == 1
    rig.clock.advance(service.absent_horizon)
    assert service.reconcile().expired == 1
    (order,) = rig.orders()
    assert order["status"] == OrderStatus.EXPIRED.value
    assert rig.paper.create_calls == 0


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


def test_crash_after_record_before_send_resumes_the_order_once(
    rig: Rig, market: RecordedMarketData
) -> None:
    # Given a process that dies after recording the order NEW, before marking it SUBMITTED
    price, quote = _quote(market)
    intent = _intent(price)

    class DiesBeforeSubmitted(DynamoOrderStore):
        def update_status(self, *args: object, **kw: object) -> bool:
            raise ProcessDied

    service = rig.service()
    res = rig.clients.resources
    service.orders = DiesBeforeSubmitted(res.orders_table, rig.clients.dynamodb)
    with pytest.raises(ProcessDied):
        service.submit(intent, equity=EQUITY, quote=quote)
    assert [o["status"] for o in rig.orders()] == [OrderStatus.NEW.value]
    # When a restarted service reconciles twice
    restarted = rig.service()
    first = restarted.reconcile()
    second = restarted.reconcile()
    # Then the order was sent exactly once and filled
    assert (first.resent_new, second.resent_new) == (1, 0)
    assert rig.paper.create_calls == 1
    assert [o["status"] for o in rig.orders()] == [OrderStatus.FILLED.value]


def test_new_order_older_than_the_resume_window_is_cancelled_not_sent(
    rig: Rig, market: RecordedMarketData
) -> None:
    price, _ = _quote(market)
    res = rig.clients.resources
    DynamoOrderStore(res.orders_table, rig.clients.dynamodb).put_new(
        {
            "client_order_id": "cd" * 16,
            "symbol": "BTC/USDT",
            "side": "buy",
            "quantity": "0.01",
            "reference_price": price.value,
            "status": OrderStatus.NEW,
            "created_at": NOW - timedelta(minutes=11),
        }
    )
    assert rig.service().reconcile().cancelled_new == 1
    assert rig.paper.create_calls == 0


def test_kill_switch_on_means_zero_orders_and_cancels_pending_ones(
    rig: Rig, market: RecordedMarketData
) -> None:
    price, quote = _quote(market)
    # Given a NEW order left by a crash, and the kill-switch turned on by an operator
    res = rig.clients.resources
    DynamoOrderStore(res.orders_table, rig.clients.dynamodb).put_new(
        {
            "client_order_id": "ab" * 16,
            "symbol": "BTC/USDT",
            "side": "buy",
            "quantity": "0.01",
            "reference_price": price.value,
            "status": OrderStatus.NEW,
            "created_at": NOW,
        }
    )
    rig.switch.set(True, "drill", "alice")
    service = rig.service()
    # When 50 different decisions are submitted
    results = [
        service.submit(_intent(price, bar_ms=i), equity=EQUITY, quote=quote) for i in range(50)
    ]
    # Then none reached the exchange, each names the switch, and the pending order is cancelled
    assert rig.paper.create_calls == 0
    assert {(r.status, r.rule) for r in results} == {("rejected", "kill_switch")}
    assert all("drill" in r.reason for r in results)
    assert [o["status"] for o in rig.orders()] == [OrderStatus.CANCELED.value]


def test_risk_emergency_turns_the_switch_on_and_blocks_orders(
    rig: Rig, market: RecordedMarketData
) -> None:
    price, quote = _quote(market)
    # Given equity observed at 100,000 then an 8 % daily loss
    rig.risk.observe(RiskObservation(Decimal("100000")))
    rig.clock.advance(timedelta(minutes=1))
    state, move = rig.risk.observe(RiskObservation(Decimal("92000")))
    assert state.level is RiskLevel.EMERGENCY and move is not None
    # When the next decision comes (after the switch cache)
    rig.clock.advance(timedelta(seconds=6))
    result = rig.service().submit(_intent(price), equity=EQUITY, quote=quote)
    # Then the kill-switch (set by the RiskGuard) stops it
    assert (result.status, result.rule) == ("rejected", "kill_switch")
    assert "RiskGuard EMERGENCY" in result.reason
    assert rig.paper.create_calls == 0


def test_symbol_without_real_bars_is_rejected_by_the_paper_venue(
    rig: Rig, market: RecordedMarketData
) -> None:
    # Given a pair the recorded data does not hold (the venue cannot fill it)
    price, quote = _quote(market)
    intent = OrderIntent(
        "exec-test", Symbol("NOPE/USDT"), Side.BUY, Intent.OPEN, 1, Quantity.of("1"), price
    )
    result = rig.service().submit(intent, equity=EQUITY, quote=quote)
    # Then the order is recorded REJECTED with the venue's reason (complete, not half-written)
    assert result.status == OrderStatus.REJECTED.value
    (order,) = rig.orders()
    assert order["status"] == OrderStatus.REJECTED.value
    assert "NOPE/USDT" in str(order["reject_reason"])
