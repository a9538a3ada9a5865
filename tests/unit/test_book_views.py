"""The API's positions and the dashboard's portfolio read the typed book on the in-memory
ledgers: the aggregates as the fields they print, a damaged record left out and named."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from cryptosmarttrader.domain.aggregates import Fill, Order, Position
from cryptosmarttrader.domain.clock import FixedClock
from cryptosmarttrader.domain.order_changes import OrderFacts, StatusChange
from cryptosmarttrader.domain.orders import Intent, OrderIntent, OrderStatus
from cryptosmarttrader.domain.types import Price, Quantity, Side, Symbol
from cryptosmarttrader.services.api import ApiService
from cryptosmarttrader.services.dashboard import DashboardService
from cryptosmarttrader.services.risk_state import RiskStateService
from tests.fakes import (
    InMemoryAuditTrail,
    InMemoryKillSwitch,
    InMemoryOrderLedger,
    InMemoryPositionLedger,
    InMemorySignalStore,
    InMemoryStateStore,
)

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
SOL = Symbol("SOL/USDT")


class Book:
    def __init__(self) -> None:
        self.orders = InMemoryOrderLedger()
        self.positions = InMemoryPositionLedger()
        self.clock = FixedClock(T0 + timedelta(hours=1))

    def api(self) -> ApiService:
        switch = InMemoryKillSwitch(T0)
        return ApiService(
            signals=InMemorySignalStore(),
            positions=self.positions,
            orders=self.orders,
            risk=RiskStateService(InMemoryStateStore(), switch, self.clock),
            kill_switch=switch,
            audit=InMemoryAuditTrail(),
            probes=[],
            clock=self.clock,
            equity_usd=Decimal(100_000),
            max_asset_fraction=Decimal("0.1"),
        )

    def dashboard(self) -> DashboardService:
        def no_bars(*_: Any) -> Any:
            raise LookupError("no bars here")

        return DashboardService(
            signals=InMemorySignalStore(),
            positions=self.positions,
            orders=self.orders,
            state=InMemoryStateStore(),
            audit=InMemoryAuditTrail(),
            registry=None,
            registry_kind="none",
            bars=no_bars,
            clock=self.clock,
            starting_equity=Decimal(100_000),
        )


def _order(bar_ms: int, side: Side = Side.BUY) -> Order:
    intent = OrderIntent(
        "views", SOL, side, Intent.OPEN, bar_ms, Quantity.of("10"), Price.of("120.5")
    )
    return Order.new(intent, created_at=T0, mode="paper")


@pytest.fixture
def book() -> Book:
    """A filled SOL buy (its position held), a SOL buy still submitted, and a damaged order
    of ETH and a damaged position of ETH beside them."""
    book = Book()
    filled, resting = _order(1_709_251_200_000), _order(1_709_337_600_000)
    for order in (filled, resting):
        book.orders.record(order)
        assert book.orders.update_status(
            order.client_order_id.value, order.move(OrderStatus.SUBMITTED, at=T0)
        )
    venue = OrderFacts(filled=Decimal("10"), average_price=Price.of("121"), fee=Decimal("1.21"),
                       filled_at=T0 + timedelta(minutes=1))  # fmt: skip
    change = StatusChange(
        OrderStatus.SUBMITTED, OrderStatus.FILLED, T0 + timedelta(minutes=1), venue
    )
    assert book.orders.update_status(filled.client_order_id.value, change)
    fill = Fill(filled.client_order_id, Side.BUY, Decimal("10"), Price.of("121"), T0)
    held = Position(SOL).apply(fill).position
    assert book.positions.save(held, None, T0 + timedelta(minutes=2)) is True
    damaged = {**book.orders.get(resting.client_order_id.value), "client_order_id": "e" * 32,
               "symbol": "ETH/USDT", "side": "sideways"}  # fmt: skip
    assert book.orders.put_new(damaged)
    assert book.positions.upsert({"symbol": "ETH/USDT", "quantity": Decimal("-1")}, None)
    return book


def test_the_positions_view_prints_the_aggregates_and_names_the_damaged_records(
    book: Book,
) -> None:
    # When the API's positions are read
    view = book.api().positions_view()
    # Then the held position and the open order are printed from the aggregates
    (position,) = view.positions
    assert (position.symbol, position.quantity, position.notional, position.average_price) == (
        SOL.value, Decimal("10"), Decimal("1210"), Decimal("121"),
    )  # fmt: skip
    assert position.updated_at == (T0 + timedelta(minutes=2)).isoformat()
    (order,) = view.open_orders
    assert (order.symbol, order.side, order.status, order.quantity, order.notional) == (
        SOL.value, "buy", "SUBMITTED", Decimal("10"), Decimal("1205.0"),
    )  # fmt: skip
    assert (order.mode, order.created_at) == ("paper", T0.isoformat())
    # and the damaged position and order are left out and named, with why
    assert [line.split(" unreadable: ")[0] for line in view.unreadable_records] == [
        "record 'ETH/USDT' of ETH/USDT",
        f"record '{'e' * 32}' of ETH/USDT",
    ]
    assert "below zero" in view.unreadable_records[0]
    assert "sideways" in view.unreadable_records[1]


def test_the_portfolio_prints_every_order_with_its_facts_and_names_the_damaged_records(
    book: Book,
) -> None:
    # When the dashboard's portfolio is read (no equity point yet: no marks are needed)
    view = book.dashboard().portfolio_view()
    # Then both sound orders are listed, the filled one with its fill, fee and history
    by_status = {o.status: o for o in view.orders}
    assert set(by_status) == {"FILLED", "SUBMITTED"}
    done = by_status["FILLED"]
    assert (done.filled, done.average_price, done.fee, done.reference_price) == (
        Decimal("10"), Decimal("121"), Decimal("1.21"), Decimal("120.5"),
    )  # fmt: skip
    assert (done.intent, done.strategy, done.filled_at) == (
        "open",
        "views",
        T0 + timedelta(minutes=1),
    )
    assert [(h.status, h.at) for h in done.history] == [
        ("NEW", T0), ("SUBMITTED", T0), ("FILLED", T0 + timedelta(minutes=1)),
    ]  # fmt: skip
    assert done.updated_at == T0 + timedelta(minutes=1)
    assert done.slippage_bps == pytest.approx((121 / 120.5 - 1) * 10_000)
    assert view.fees_usd == pytest.approx(1.21)
    # and the position at cost, with when it was written
    (position,) = view.positions
    assert (position.quantity, position.cost, position.average_price) == (
        Decimal("10"), Decimal("1210"), Decimal("121"),
    )  # fmt: skip
    assert position.updated_at == T0 + timedelta(minutes=2)
    # and the damaged records are named, never a failed page
    assert len(view.unreadable_records) == 2
    assert all("ETH/USDT" in line for line in view.unreadable_records)
