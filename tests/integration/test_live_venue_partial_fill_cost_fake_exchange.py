"""A position opened by one order filled in parts at different prices costs what its trades
cost: its average entry price is the order's volume-weighted average fill price."""

from __future__ import annotations

# ruff: noqa: F811  (the fixtures are imported from the fake-exchange module)
from datetime import timedelta
from decimal import Decimal

import pytest

from cryptosmarttrader.domain.aggregates import Fill, Position
from cryptosmarttrader.domain.orders import OrderStatus
from cryptosmarttrader.domain.types import ClientOrderId, Price, Side, Symbol
from tests.integration.test_live_venue_fake_exchange import (  # noqa: F401  (fixtures)
    EQUITY,
    NOW,
    QUOTE,
    Books,
    Venue,
    _decision,
    books,
    market,
    venue,
)

pytestmark = pytest.mark.realdata


def test_position_cost_of_cumulative_partial_fills_at_two_prices() -> None:
    # Given an order reported first 1 filled at 100, then 2 filled at an average of 110
    # (the second unit traded at 120)
    coid = ClientOrderId("0" * 32)
    first = Fill(coid, Side.BUY, Decimal(1), Price.of("100"), NOW)
    second = Fill(coid, Side.BUY, Decimal(2), Price.of("110"), NOW)
    position = Position(Symbol("BTC/USDT")).apply(first).position.apply(second).position
    # Then the position cost what the trades cost: 100 + 120 = 220 (average 110)
    assert position.quantity == Decimal(2)
    assert position.cost == Decimal(220)


def test_live_venue_partial_fills_at_two_bars_book_the_trades_cost(
    venue: Venue, books: Books
) -> None:
    # Given a venue that fills 0.02 BTC per bar: the 0.03 order fills on the 10:00 and 11:00 bars
    venue.fake.max_fill_per_bar["BTCUSDT"] = Decimal("0.02")
    books.service(venue).submit(_decision(), equity=EQUITY, quote=QUOTE)
    venue.clock.advance(timedelta(hours=1))
    books.service(venue).reconcile()
    [order] = books.orders()
    assert order["status"] == OrderStatus.FILLED.value
    position = books.position()
    assert position is not None
    quantity = Decimal(str(position["quantity"]))
    average = Decimal(str(order["average_price"]))
    # the two bars opened at different prices (else this test proves nothing)
    bars = [o for _, o, _ in venue.fake._bars("BTCUSDT", 1652176800000, 1652180400000)]
    assert bars[0] != bars[1]
    # Then the position's cost is its quantity at the order's average fill price
    assert Decimal(str(position["cost"])) == quantity * average
