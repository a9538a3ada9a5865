"""The Order and Position aggregates: transitions along the state table, average cost and
realized PnL, fills applied exactly once, never below zero."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from cryptosmarttrader.domain.aggregates import (
    LIVE_FILLS_KEPT,
    PRUNE_AFTER,
    PRUNED_FILLS_KEPT,
    Fill,
    Order,
    Position,
)
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


def _order_fill(n: int, side: Side, at: datetime, filled: str = "1") -> Fill:
    return Fill(ClientOrderId(f"{n:032x}"), side, Decimal(filled), Price.of("100"), at)


def _traded(orders: int, start: datetime = T0, step: timedelta = timedelta(hours=4)) -> Position:
    """A position after ``orders`` orders alternately buying and selling 1, one every ``step``."""
    pos = Position(ETH)
    for n in range(orders):
        side = Side.BUY if n % 2 == 0 else Side.SELL
        pos = pos.apply(_order_fill(n, side, start + n * step)).position
    return pos


def test_a_position_with_thousands_of_orders_keeps_a_bounded_bookkeeping() -> None:
    # Given 3000 orders in one coin, one every 4 hours (500 days)
    pos = _traded(3000)
    # Then it keeps at most LIVE_FILLS_KEPT orders and PRUNED_FILLS_KEPT pruned ones
    assert len(pos.applied_fills) == len(pos.applied_costs) == len(pos.applied_times)
    assert len(pos.applied_fills) <= LIVE_FILLS_KEPT
    assert len(pos.pruned_fills) == PRUNED_FILLS_KEPT
    # and only orders whose last fill is PRUNE_AFTER older than the newest were pruned
    newest = T0 + 2999 * timedelta(hours=4)
    assert pos.pruned_through is not None and pos.pruned_through <= newest - PRUNE_AFTER
    assert pos.quantity == 0


def test_a_replayed_fill_of_a_pruned_order_is_never_applied_twice() -> None:
    # Given 3000 orders: order 2000 is pruned but kept with its quantity, order 0 long dropped
    pos = _traded(3000)
    kept, dropped = f"{2000:032x}", f"{0:032x}"
    assert kept not in pos.applied_fills and kept in dict(pos.pruned_fills)
    assert dropped not in pos.applied_fills and dropped not in dict(pos.pruned_fills)
    # When their fills are replayed (a reconcile re-reading a closed order, an event redelivered)
    for n in (2000, 0, 1):
        at = T0 + n * timedelta(hours=4)
        out = pos.apply(_order_fill(n, Side.BUY if n % 2 == 0 else Side.SELL, at))
        # Then nothing is applied: the position is unchanged
        assert not out.changed and out.position == pos


def test_a_later_part_of_a_pruned_order_applies_only_the_new_part() -> None:
    # Given 1 held, bought by order A, and a stop (order S) that sold 0.5 of 1.5 bought later
    pos = Position(ETH).apply(_order_fill(10**6, Side.BUY, T0, "2")).position
    pos = pos.apply(_order_fill(10**6 + 1, Side.SELL, T0, "0.5")).position
    # When 400 more orders fill over 100 days (the stop's part is pruned, kept with its quantity)
    for n in range(400):
        at = T0 + timedelta(days=1) + n * timedelta(hours=6)
        pos = pos.apply(_order_fill(n, Side.BUY if n % 2 == 0 else Side.SELL, at)).position
    assert f"{10**6 + 1:032x}" in dict(pos.pruned_fills)
    held = pos.quantity
    # and the stop then reports 1 filled in all
    later = T0 + timedelta(days=120)
    out = pos.apply(_order_fill(10**6 + 1, Side.SELL, later, "1"))
    # Then only the new 0.5 is sold, and the order is kept again
    assert out.applied == Decimal("0.5") and out.position.quantity == held - Decimal("0.5")
    assert out.position.applied_fills[f"{10**6 + 1:032x}"] == Decimal(1)


def test_orders_are_pruned_only_when_their_last_fill_is_old_enough() -> None:
    # Given 600 orders within 10 days: more than LIVE_FILLS_KEPT, none PRUNE_AFTER old
    pos = _traded(600, step=timedelta(minutes=20))
    # Then none is pruned (a younger order may still fill), and a new order applies
    assert len(pos.applied_fills) == 600 and pos.pruned_fills == () and pos.pruned_through is None
    assert pos.apply(_order_fill(600, Side.BUY, T0 + timedelta(days=11))).applied == 1


def test_an_old_record_without_times_is_stamped_then_pruned_as_it_ages() -> None:
    # Given a record written before pruning: 300 orders applied, no times
    old = Position(ETH, applied_fills={f"{n:032x}": Decimal(1) for n in range(300)})
    # When a fill is applied, its orders are stamped with the newest time known
    pos = old.apply(_order_fill(300, Side.BUY, T0)).position
    assert set(pos.applied_times.values()) == {T0} and pos.pruned_fills == ()
    # and once they are PRUNE_AFTER old, the next fill prunes the oldest beyond the bound
    pos = pos.apply(_order_fill(301, Side.BUY, T0 + PRUNE_AFTER + timedelta(days=1))).position
    assert len(pos.applied_fills) == LIVE_FILLS_KEPT and pos.pruned_through == T0
    # Then a replay of one of them is refused
    assert not pos.apply(_order_fill(5, Side.SELL, T0 - timedelta(days=9))).changed
