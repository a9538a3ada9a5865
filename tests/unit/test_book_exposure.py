"""book_exposure: what the RiskGuard counts as held or pending, per symbol (hand-made book)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from cryptosmarttrader.domain.aggregates import Order, Position
from cryptosmarttrader.domain.book import RecordedOrder, book_exposure
from cryptosmarttrader.domain.order_changes import OrderFacts
from cryptosmarttrader.domain.orders import Intent, OrderStatus
from cryptosmarttrader.domain.types import ClientOrderId, Price, Quantity, Side, Symbol

AT = datetime(2024, 3, 1, tzinfo=UTC)


def _order(
    coid: str, symbol: str, side: Side, status: OrderStatus, qty: str, price: str,
    filled: str | None = None,
) -> RecordedOrder:  # fmt: skip
    order = Order(
        ClientOrderId(coid * 32), Symbol(symbol), side, Intent.OPEN, "s", 1, Quantity.of(qty),
        Price.of(price), AT, "paper", status,
    )  # fmt: skip
    return RecordedOrder(order, OrderFacts(filled=None if filled is None else Decimal(filled)))


POSITIONS = {
    "BTC": Position(Symbol("BTC"), quantity=Decimal("0.1"), cost=Decimal("3000")),
    "ADA": Position(Symbol("ADA")),
}
ORDERS = [
    # open buy, half filled: the unfilled half at its reference price
    _order("a", "BTC", Side.BUY, OrderStatus.PARTIALLY_FILLED, "0.2", "30000", filled="0.1"),
    # a decision not sent yet
    _order("b", "ETH", Side.BUY, OrderStatus.NEW, "1", "2000"),
    _order("c", "SOL", Side.BUY, OrderStatus.ACCEPTED, "10", "50"),
    # not exposure: filled (it is in the position), cancelled, and a sell
    _order("d", "BTC", Side.BUY, OrderStatus.FILLED, "0.1", "30000", filled="0.1"),
    _order("e", "XRP", Side.BUY, OrderStatus.CANCELED, "5", "1"),
    _order("f", "BTC", Side.SELL, OrderStatus.ACCEPTED, "0.1", "30000"),
]


def test_positions_plus_the_unfilled_part_of_open_buys() -> None:
    assert book_exposure(POSITIONS, ORDERS) == {
        "BTC": Decimal("3000") + Decimal("0.1") * 30000,
        "ADA": Decimal(0),
        "ETH": Decimal("2000"),
        "SOL": Decimal("500"),
    }


def test_decisions_not_yet_sent_can_be_left_out() -> None:
    assert "ETH" not in book_exposure(POSITIONS, ORDERS, include_new=False)
