"""The Order and Position aggregates: transitions along the state table, average cost and
realized PnL, fills applied exactly once, never below zero."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from cryptosmarttrader.domain.aggregates import Fill, Order, Position
from cryptosmarttrader.domain.orders import (
    IllegalTransitionError,
    Intent,
    OrderIntent,
    OrderStatus,
)
from cryptosmarttrader.domain.types import (
    ClientOrderId,
    DomainError,
    Price,
    Quantity,
    Side,
    Symbol,
)

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
ETH = Symbol("ETH/USDT")


def _intent(qty: str = "2", side: Side = Side.BUY) -> OrderIntent:
    return OrderIntent(
        "s", ETH, side, Intent.OPEN, 1_709_251_200_000, Quantity.of(qty), Price.of("50")
    )


def _fill(coid: str, side: Side, filled: str, price: str) -> Fill:
    return Fill(ClientOrderId(coid * 32), side, Decimal(filled), Price.of(price), T0)


def test_a_new_order_carries_the_decision_identity_and_its_sized_quantity() -> None:
    # When a decision of 2 is recorded at the RiskGuard's 1.5, valid for 2 hours
    order = Order.new(
        _intent(), created_at=T0, mode="paper", quantity=Quantity.of("1.5"),
        valid_for=timedelta(hours=2),
    )  # fmt: skip
    # Then it is NEW under the decision's client order ID, at 1.5, remembering the 2 asked
    assert order.status is OrderStatus.NEW
    assert order.client_order_id == _intent().client_order_id
    assert (order.quantity, order.decision_quantity) == (Quantity.of("1.5"), Quantity.of("2"))
    assert order.notional == Decimal("75.0")
    assert order.valid_until == T0 + timedelta(hours=2)


def test_order_moves_follow_the_state_table_and_an_illegal_one_raises() -> None:
    order = Order.new(_intent(), created_at=T0, mode="paper")
    sent = order.moved_to(OrderStatus.SUBMITTED).moved_to(OrderStatus.ACCEPTED)
    assert sent.is_open and not sent.is_terminal
    assert sent.moved_to(OrderStatus.FILLED).is_terminal
    with pytest.raises(IllegalTransitionError):
        order.moved_to(OrderStatus.FILLED)  # NEW cannot fill before it is sent
    with pytest.raises(IllegalTransitionError):
        sent.moved_to(OrderStatus.FILLED).moved_to(OrderStatus.CANCELED)


def test_an_order_needs_utc_times() -> None:
    with pytest.raises(DomainError, match="UTC"):
        Order.new(_intent(), created_at=datetime(2024, 3, 1), mode="paper")  # noqa: DTZ001


def test_buys_average_the_cost_and_a_sell_realizes_pnl_at_the_average_cost() -> None:
    # Given 2 bought at 100 and 2 more at 200 (average 150)
    pos = Position(ETH).apply(_fill("a", Side.BUY, "2", "100")).position
    pos = pos.apply(_fill("b", Side.BUY, "2", "200")).position
    assert (pos.quantity, pos.cost, pos.average_price) == (Decimal(4), Decimal(600), Decimal(150))
    assert pos.opened_by == "a" * 32 and pos.opened_at == T0
    # When 1 is sold at 180
    out = pos.apply(_fill("c", Side.SELL, "1", "180"))
    # Then 30 is realized and the rest stays at the average cost
    assert (out.applied, out.realized_pnl, out.oversold) == (Decimal(1), Decimal(30), Decimal(0))
    assert (out.position.quantity, out.position.cost) == (Decimal(3), Decimal(450))
    assert out.position.average_price == Decimal(150)
    # and selling the rest at 100 realizes the loss and closes the episode's quantity
    closed = out.position.apply(_fill("d", Side.SELL, "3", "100")).position
    assert (closed.quantity, closed.cost, closed.realized_pnl) == (0, 0, Decimal(-120))
    assert closed.notional == 0 and closed.average_price is None and closed.opened_at is None
    assert closed.opened_by == "a" * 32  # the episode that was closed


def test_a_fill_is_applied_once_per_client_order_id_even_when_reported_again() -> None:
    pos = Position(ETH).apply(_fill("a", Side.BUY, "1", "100")).position
    # When the venue reports the same cumulative fill again, then more of it
    again = pos.apply(_fill("a", Side.BUY, "1", "100"))
    more = pos.apply(_fill("a", Side.BUY, "1.5", "100"))
    # Then the repeat changes nothing and only the new half is added
    assert not again.changed and again.position is pos
    assert (more.applied, more.position.quantity) == (Decimal("0.5"), Decimal("1.5"))


def test_a_sell_beyond_the_holding_is_refused_not_booked_as_a_short() -> None:
    pos = Position(ETH).apply(_fill("a", Side.BUY, "1", "100")).position
    out = pos.apply(_fill("b", Side.SELL, "1.5", "110"))
    assert (out.applied, out.oversold, out.realized_pnl) == (Decimal(1), Decimal("0.5"), 10)
    assert out.position.quantity == 0
    assert out.position.oversold == Decimal("0.5")
    assert out.position.oversold_reason is not None and "b" * 32 in out.position.oversold_reason
    with pytest.raises(DomainError):
        Position(ETH, quantity=Decimal(-1))
