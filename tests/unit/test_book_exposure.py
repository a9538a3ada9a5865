"""book_exposure: what the RiskGuard counts as held or pending, per symbol (hand-made book)."""

from __future__ import annotations

from decimal import Decimal

from cryptosmarttrader.domain.orders import book_exposure

POSITIONS = {
    "BTC": {"quantity": "0.1", "notional": "3000"},
    "ADA": {"quantity": "0", "notional": 0},
}
ORDERS = [
    # open buy, half filled: the unfilled half at its reference price
    {"symbol": "BTC", "side": "buy", "status": "PARTIALLY_FILLED", "quantity": "0.2",
     "filled": "0.1", "reference_price": "30000"},
    # a decision not sent yet
    {"symbol": "ETH", "side": "buy", "status": "NEW", "quantity": "1", "reference_price": "2000"},
    # a record without a reference price: its recorded notional
    {"symbol": "SOL", "side": "buy", "status": "ACCEPTED", "quantity": "10", "notional": "500"},
    # not exposure: filled (it is in the position), cancelled, and a sell
    {"symbol": "BTC", "side": "buy", "status": "FILLED", "quantity": "0.1", "filled": "0.1",
     "reference_price": "30000"},
    {"symbol": "XRP", "side": "buy", "status": "CANCELED", "quantity": "5", "reference_price": "1"},
    {"symbol": "BTC", "side": "sell", "status": "ACCEPTED", "quantity": "0.1",
     "reference_price": "30000"},
]  # fmt: skip


def test_positions_plus_the_unfilled_part_of_open_buys() -> None:
    assert book_exposure(POSITIONS, ORDERS) == {
        "BTC": Decimal("3000") + Decimal("0.1") * 30000,
        "ADA": Decimal(0),
        "ETH": Decimal("2000"),
        "SOL": Decimal("500"),
    }


def test_decisions_not_yet_sent_can_be_left_out() -> None:
    assert "ETH" not in book_exposure(POSITIONS, ORDERS, include_new=False)
