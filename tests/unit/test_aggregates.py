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


def test_a_buy_filled_in_parts_costs_what_each_part_traded_for() -> None:
    # Given a buy reported 1 filled at 100, then 3 filled at an average of 120
    # (the later 2 traded at 130), then again 3 at 120 (a repeat)
    pos = Position(ETH).apply(_fill("a", Side.BUY, "1", "100")).position
    out = pos.apply(_fill("a", Side.BUY, "3", "120"))
    # Then the new part is booked at 260 (not 2 x 120): the position cost 360, average 120
    assert (out.applied, out.position.quantity, out.position.cost) == (2, 3, Decimal(360))
    assert out.position.average_price == Decimal(120)
    assert out.position.applied_costs == {"a" * 32: Decimal(360)}
    assert not out.position.apply(_fill("a", Side.BUY, "3", "120")).changed


def test_a_sell_filled_in_parts_realizes_what_each_part_sold_for() -> None:
    # Given 4 held at 100
    pos = Position(ETH).apply(_fill("a", Side.BUY, "4", "100")).position
    # When a sell is reported 1 filled at 110, then 3 at an average of 120 (2 more at 125)
    first = pos.apply(_fill("b", Side.SELL, "1", "110"))
    second = first.position.apply(_fill("b", Side.SELL, "3", "120"))
    # Then the first part realizes 10 and the second 2 x (125 - 100) = 50, not 2 x 20
    assert first.realized_pnl == Decimal(10)
    assert (second.applied, second.realized_pnl) == (Decimal(2), Decimal(50))
    assert second.position.realized_pnl == Decimal(60)  # 3 sold for 360 against a cost of 300
    # and the rest stays at its cost
    assert (second.position.quantity, second.position.cost) == (Decimal(1), Decimal(100))


def test_a_sell_part_beyond_the_holding_realizes_the_part_held_at_that_parts_price() -> None:
    # Given 2 held at 100 and a sell reported 1 filled at 110, then 3 at an average of 120
    pos = Position(ETH).apply(_fill("a", Side.BUY, "2", "100")).position
    pos = pos.apply(_fill("b", Side.SELL, "1", "110")).position
    out = pos.apply(_fill("b", Side.SELL, "3", "120"))
    # Then of the new 2 (traded at 125) the 1 held realizes 25, the other is oversold
    assert (out.applied, out.oversold, out.realized_pnl) == (Decimal(1), Decimal(1), 25)
    assert out.position.quantity == 0


def test_an_order_applied_before_values_were_kept_books_its_next_part_at_its_average() -> None:
    # Given a position whose order "a" has 1 applied and no applied value recorded
    pos = Position(ETH, quantity=Decimal(1), cost=Decimal(100), applied_fills={"a" * 32: 1})
    # When the order is reported 3 filled at an average of 120
    out = pos.apply(_fill("a", Side.BUY, "3", "120"))
    # Then its applied part keeps its booking and the new 2 are valued at the average, as before
    assert (out.position.quantity, out.position.cost) == (Decimal(3), Decimal(340))
    # and from then on its value is kept: 4 at an average of 125 adds the last one at 140
    later = out.position.apply(_fill("a", Side.BUY, "4", "125")).position
    assert later.cost == Decimal(480)


def test_a_part_whose_value_would_not_be_positive_is_booked_at_the_orders_average() -> None:
    # Given a buy reported 1 filled at 100, then 2 at an average the venue rounded down to 49
    pos = Position(ETH).apply(_fill("a", Side.BUY, "1", "100")).position
    out = pos.apply(_fill("a", Side.BUY, "2", "49"))
    # Then the new 1 is never booked at a negative cost: it is valued at the average
    assert out.position.cost == Decimal(149)
