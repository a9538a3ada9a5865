"""Paper exchange: the trading half of the Exchange port, filled against REAL recorded bars.

A market order placed at clock time ``t`` fills on the first recorded bar of its symbol opening
at or after ``t`` (the first traded price after the decision), through the pure fill model in
:mod:`cryptosmarttrader.domain.paper_fill` (fee, spread, square-root impact on the bar volume).
No bar after ``t`` in the data → the venue rejects the order; it never invents a price.

Like a real venue it keeps its own book of orders by client order ID (thread-safe), refuses a
second order with a client ID it already holds, and answers ``fetch_order_by_client_id``. The
book lives as long as the object: a test that "restarts" the trading service keeps the same
paper venue, as a real venue outlives our process.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol

import polars as pl

from cryptosmarttrader.domain.clock import Clock
from cryptosmarttrader.domain.exchange import (
    CAPABILITIES,
    ExchangeCapabilities,
    ExchangeId,
    ExchangeOrder,
    FatalExchangeError,
    NotSupportedByExchange,
    OrderNotFoundError,
    OrderType,
)
from cryptosmarttrader.domain.market import TIMEFRAME_MS
from cryptosmarttrader.domain.orders import OrderStatus
from cryptosmarttrader.domain.paper_fill import Bar, Fill, FillModel, simulate_fill
from cryptosmarttrader.domain.types import (
    ClientOrderId,
    DomainError,
    Price,
    Quantity,
    Side,
    Symbol,
    ms_from_utc,
)

__all__ = ["BarSource", "PaperExchange", "paper_capabilities"]

PAPER = "paper"


class BarSource(Protocol):
    """``MarketData.ohlcv``: candles ``start <= ts <= end`` (``RecordedMarketData``)."""

    def ohlcv(
        self, symbol: str, timeframe: str, start: datetime, end: datetime
    ) -> pl.DataFrame: ...


def paper_capabilities(like: ExchangeId = ExchangeId.BINANCE) -> ExchangeCapabilities:
    """The capabilities of ``like`` (client-ID rules, fees), market orders only."""
    return replace(CAPABILITIES[like], order_types=frozenset({OrderType.MARKET}))


class PaperExchange:
    def __init__(
        self,
        bars: BarSource,
        clock: Clock,
        *,
        timeframe: str = "1h",
        model: FillModel | None = None,
        capabilities: ExchangeCapabilities | None = None,
    ) -> None:
        if timeframe not in TIMEFRAME_MS:
            raise DomainError(f"unknown timeframe {timeframe!r}")
        self._bars = bars
        self._clock = clock
        self._timeframe = timeframe
        self._caps = capabilities or paper_capabilities()
        self._model = model or FillModel(fee_rate=self._caps.taker_fee)
        self._lock = threading.Lock()
        self._orders: dict[str, ExchangeOrder] = {}
        self._fills: dict[str, Fill] = {}
        self.create_calls = 0  # every call that reached the venue, accepted or not

    @property
    def capabilities(self) -> ExchangeCapabilities:
        return self._caps

    def fill_for(self, client_order_id: ClientOrderId) -> Fill | None:
        """The simulated fill (with its fee) of an order, for reports."""
        with self._lock:
            return self._fills.get(self._caps.client_id.format(client_order_id))

    def create_order(
        self,
        symbol: Symbol,
        side: Side,
        order_type: OrderType,
        quantity: Quantity,
        price: Price | None,
        client_order_id: ClientOrderId,
    ) -> ExchangeOrder:
        op = "create_order"
        venue_id = self._caps.client_id.format(client_order_id)
        with self._lock:
            self.create_calls += 1
            if order_type not in self._caps.order_types or price is not None:
                raise NotSupportedByExchange(PAPER, op, f"{order_type} orders (market only)")
            if venue_id in self._orders:
                raise FatalExchangeError(PAPER, op, f"duplicate client order id {venue_id}")
            bar = self._next_bar(symbol)
            outcome = simulate_fill(side, quantity, bar, self._model)
            if not isinstance(outcome, Fill):
                raise FatalExchangeError(PAPER, op, f"{symbol}: {outcome.reason}")
            order = ExchangeOrder(
                exchange=PAPER,
                exchange_order_id=f"paper-{len(self._orders) + 1}",
                client_order_id=venue_id,
                symbol=symbol,
                side=side,
                order_type=order_type.value,
                status=OrderStatus.FILLED,
                amount=quantity,
                filled=quantity.value,
                price=None,
                average=outcome.price,
                ts_ms=bar.ts_ms,
            )
            self._orders[venue_id] = order
            self._fills[venue_id] = outcome
            return order

    def _next_bar(self, symbol: Symbol) -> Bar:
        now = self._clock.now()
        step_ms = TIMEFRAME_MS[self._timeframe]
        try:
            frame = self._bars.ohlcv(
                symbol.value, self._timeframe, now, now + timedelta(milliseconds=step_ms)
            )
        except ValueError as exc:  # DataSourceError: unknown symbol, like a venue's BadSymbol
            raise FatalExchangeError(PAPER, "create_order", str(exc)) from exc
        if frame.is_empty():
            raise FatalExchangeError(
                PAPER,
                "create_order",
                f"no recorded {self._timeframe} bar of {symbol} opening within one bar after "
                f"{now.isoformat()}: nothing to fill against",
            )
        row = frame.sort("ts").row(0, named=True)
        if int(row["ts"]) < ms_from_utc(now):
            raise FatalExchangeError(PAPER, "create_order", "bar source returned a past bar")
        return Bar.of(
            int(row["ts"]),
            row["open"],
            row["high"],
            row["low"],
            row["close"],
            str(Decimal(repr(float(row["volume"])))),
        )

    def fetch_order_by_client_id(
        self, symbol: Symbol, client_order_id: ClientOrderId
    ) -> ExchangeOrder | None:
        venue_id = self._caps.client_id.format(client_order_id)
        with self._lock:
            order = self._orders.get(venue_id)
        return order if order is not None and order.symbol == symbol else None

    def cancel_order(self, symbol: Symbol, client_order_id: ClientOrderId) -> None:
        venue_id = self._caps.client_id.format(client_order_id)
        with self._lock:
            order = self._orders.get(venue_id)
            if order is None or order.symbol != symbol:
                raise OrderNotFoundError(PAPER, "cancel_order", f"unknown order {venue_id}")
            if order.status is not OrderStatus.ACCEPTED:
                raise OrderNotFoundError(
                    PAPER, "cancel_order", f"order {venue_id} is {order.status}, not open"
                )
            self._orders[venue_id] = replace(order, status=OrderStatus.CANCELED)
