"""What the execution tests share: the instant the real BTC/USDT hour bar fills at, a quote
from the bars before it, a decision, a process kill that nothing may catch, and venues that
lose an answer (a timeout after accepting, a crash after sending, an unreadable
acknowledgement)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import polars as pl

from cryptosmarttrader.adapters.paper_exchange import PaperExchange
from cryptosmarttrader.adapters.recorded_data import RecordedMarketData
from cryptosmarttrader.domain.exchange import ExchangeOrder, OrderStateUnknownError, OrderType
from cryptosmarttrader.domain.orders import Intent, OrderIntent
from cryptosmarttrader.domain.risk import MarketQuote
from cryptosmarttrader.domain.types import ClientOrderId, Money, Price, Quantity, Side, Symbol

NOW = datetime(2022, 5, 10, 10, 0, tzinfo=UTC)  # the 10:00 BTC/USDT hour bar fills the orders
EQUITY = Money(Decimal("100000"))
BTC = Symbol("BTC/USDT")


def quote_at_now(market: RecordedMarketData, symbol: str = "BTC/USDT") -> tuple[Price, MarketQuote]:
    """Last close before NOW and the 24 h quote volume of the bars before it (real data)."""
    bars = market.ohlcv(symbol, "1h", NOW - timedelta(hours=24), NOW - timedelta(hours=1))
    last = bars.sort("ts").row(-1, named=True)
    volume = float(bars.select((pl.col("volume") * pl.col("close")).sum()).item())
    return Price.of(last["close"]), MarketQuote(NOW - timedelta(minutes=1), Decimal(str(volume)))


def btc_intent(
    price: Price, qty: str = "0.03", bar_ms: int = 1, side: Side = Side.BUY
) -> OrderIntent:
    return OrderIntent(
        "exec-test", BTC, side, Intent.OPEN, 1_652_140_800_000 + bar_ms, Quantity.of(qty), price
    )


class ProcessDied(BaseException):
    """Not an Exception: nothing in the service may catch it, as with a killed process."""


class LosesTheAnswer:
    """A venue that passes each order on to ``inner`` (which then holds it) and, instead of
    answering, raises what ``lost(client_order_id)`` gives: a read timeout, an acknowledgement
    that cannot be parsed, the process dying between send and record. Lookups and cancels go
    to ``inner``; ``creates`` counts the orders sent."""

    def __init__(self, inner: Any, lost: Callable[[ClientOrderId], BaseException]) -> None:
        self.inner = inner
        self.lost = lost
        self.capabilities = inner.capabilities
        self.creates = 0

    def create_order(
        self,
        symbol: Symbol,
        side: Side,
        order_type: OrderType,
        quantity: Quantity,
        price: Price | None,
        client_order_id: ClientOrderId,
    ) -> ExchangeOrder:
        self.creates += 1
        self.inner.create_order(symbol, side, order_type, quantity, price, client_order_id)
        self.sent(client_order_id)
        raise self.lost(client_order_id)

    def sent(self, client_order_id: ClientOrderId) -> None:
        """Called once ``inner`` holds the order, before its answer is lost."""

    def fetch_order_by_client_id(
        self, symbol: Symbol, client_order_id: ClientOrderId
    ) -> ExchangeOrder | None:
        found: ExchangeOrder | None = self.inner.fetch_order_by_client_id(symbol, client_order_id)
        return found

    def cancel_order(self, symbol: Symbol, client_order_id: ClientOrderId) -> None:
        self.inner.cancel_order(symbol, client_order_id)


def read_timeout(client_order_id: ClientOrderId) -> OrderStateUnknownError:
    return OrderStateUnknownError("paper", "create_order", "read timeout", client_order_id.value)


class AcceptThenTimeout(LosesTheAnswer):
    """A venue that accepts the order and then loses the answer (a read timeout)."""

    def __init__(self, inner: PaperExchange) -> None:
        super().__init__(inner, read_timeout)


class CrashAfterSend(LosesTheAnswer):
    """The process dies after the venue took the order, before the answer was recorded."""

    def __init__(self, inner: PaperExchange) -> None:
        super().__init__(inner, lambda _: ProcessDied())
