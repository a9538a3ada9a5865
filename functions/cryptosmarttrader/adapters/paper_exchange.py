"""Paper exchange: the trading half of the Exchange port, filled against REAL market bars.

A market order placed at clock time ``t`` fills on the first bar of its symbol opening at or after
``t`` (the first traded price after the decision), through the pure fill model in
:mod:`cryptosmarttrader.domain.paper_fill` (fee, spread, square-root impact on the bar volume).
When that bar has opened by the clock's now and is in the bar source, the order fills at once.
Otherwise (the bar has not opened yet; on AWS the lake receives each hourly candle only after it
closes) the venue acknowledges the order as ACCEPTED and fills it on the first
``fetch_order_by_client_id`` after the bar has opened and arrived: the fill is the same whenever it is
computed, because it depends only on the placement time and that bar. An order whose bar has not
arrived within ``max_wait`` is EXPIRED by the venue. A bar the fill model refuses (no volume, an
order too large for it) rejects the order; the venue never invents a price.

Like a real venue it keeps its own book of orders by client order ID, refuses a second order with
a client ID it already holds and answers ``fetch_order_by_client_id``. The book is a
:class:`~cryptosmarttrader.ports.PaperBook`: in memory for one process (tests, `cst tracking`), or
:class:`StatePaperBook` over the DynamoDB state table, so a scheduled execution function finds its
orders again on every invocation, as a real venue outlives our process.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

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
from cryptosmarttrader.domain.quality import QualityRejectionError
from cryptosmarttrader.domain.types import (
    ClientOrderId,
    DomainError,
    Money,
    Price,
    Quantity,
    Side,
    Symbol,
    ms_from_utc,
    utc_from_ms,
)
from cryptosmarttrader.ports import BarSource, ConditionalStateStore, PaperBook

__all__ = [
    "PAPER_VENUE_PK",
    "InMemoryPaperBook",
    "PaperExchange",
    "StatePaperBook",
    "paper_capabilities",
]

PAPER = "paper"
PAPER_VENUE_PK = "paper-venue"  # partition of the paper venue's book in the state table
_S = OrderStatus


class InMemoryPaperBook:
    """A book that lives as long as the object (one process)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._orders: dict[str, dict[str, Any]] = {}

    def insert(self, venue_id: str, record: Mapping[str, Any]) -> bool:
        with self._lock:
            if venue_id in self._orders:
                return False
            self._orders[venue_id] = dict(record)
            return True

    def get(self, venue_id: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._orders.get(venue_id)
            return None if found is None else dict(found)

    def replace(self, venue_id: str, record: Mapping[str, Any], expected_status: str) -> bool:
        with self._lock:
            current = self._orders.get(venue_id)
            if current is None or current["status"] != expected_status:
                return False
            self._orders[venue_id] = dict(record)
            return True


class StatePaperBook:
    """The book in the state table (pk ``paper-venue``, sk the venue's client ID)."""

    def __init__(self, store: ConditionalStateStore) -> None:
        self._store = store

    def insert(self, venue_id: str, record: Mapping[str, Any]) -> bool:
        return self._store.put_new(PAPER_VENUE_PK, venue_id, record)

    def get(self, venue_id: str) -> dict[str, Any] | None:
        return self._store.get(PAPER_VENUE_PK, venue_id)

    def replace(self, venue_id: str, record: Mapping[str, Any], expected_status: str) -> bool:
        return self._store.put_if(PAPER_VENUE_PK, venue_id, record, "status", expected_status)


def paper_capabilities(like: ExchangeId = ExchangeId.BINANCE) -> ExchangeCapabilities:
    """The capabilities of ``like`` (client-ID rules, fees), market orders only. No request
    window: nothing is signed or in flight, the paper venue answers in the same process."""
    return replace(
        CAPABILITIES[like], order_types=frozenset({OrderType.MARKET}), request_window_ms=None
    )


class PaperExchange:
    def __init__(
        self,
        bars: BarSource,
        clock: Clock,
        *,
        timeframe: str = "1h",
        model: FillModel | None = None,
        capabilities: ExchangeCapabilities | None = None,
        book: PaperBook | None = None,
        max_wait: timedelta = timedelta(hours=6),
    ) -> None:
        if timeframe not in TIMEFRAME_MS:
            raise DomainError(f"unknown timeframe {timeframe!r}")
        if max_wait < timedelta(milliseconds=TIMEFRAME_MS[timeframe]):
            raise DomainError(f"max_wait {max_wait} is shorter than one {timeframe} bar")
        self._bars = bars
        self._clock = clock
        self._timeframe = timeframe
        self._caps = capabilities or paper_capabilities()
        self._model = model or FillModel(fee_rate=self._caps.taker_fee)
        self._book: PaperBook = book if book is not None else InMemoryPaperBook()
        self._max_wait_ms = int(max_wait.total_seconds() * 1000)
        self._lock = threading.Lock()
        self.create_calls = 0  # every call that reached the venue, accepted or not

    @property
    def capabilities(self) -> ExchangeCapabilities:
        return self._caps

    def fill_for(self, client_order_id: ClientOrderId) -> Fill | None:
        """The simulated fill (with its fee) of a filled order, for reports."""
        record = self._book.get(self._caps.client_id.format(client_order_id))
        if record is None or record["status"] != _S.FILLED.value:
            return None
        return Fill(
            bar_ts_ms=int(record["bar_ts_ms"]),
            side=Side(str(record["side"])),
            quantity=Quantity(Decimal(str(record["amount"]))),
            price=Price(Decimal(str(record["average"]))),
            fee=Money(Decimal(str(record["fee"]))),
            reference=Price(Decimal(str(record["bar_open"]))),
            cost_bps=Decimal(str(record["cost_bps"])),
        )

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
        if self._book.get(venue_id) is not None:
            raise FatalExchangeError(PAPER, op, f"duplicate client order id {venue_id}")
        placed_ms = ms_from_utc(self._clock.now())
        record: dict[str, Any] = {
            "venue_id": venue_id,
            "exchange_order_id": f"paper-{venue_id}",
            "symbol": symbol.value,
            "side": side.value,
            "order_type": order_type.value,
            "status": _S.ACCEPTED.value,
            "amount": quantity.value,
            "filled": Decimal(0),
            "placed_ms": placed_ms,
        }
        bar = self._first_bar(symbol, placed_ms, op)
        if bar is not None:
            outcome = simulate_fill(side, quantity, bar, self._model)
            if not isinstance(outcome, Fill):
                raise FatalExchangeError(PAPER, op, f"{symbol}: {outcome.reason}")
            record = _filled(record, outcome)
        if not self._book.insert(venue_id, record):
            raise FatalExchangeError(PAPER, op, f"duplicate client order id {venue_id}")
        return _order(record)

    def fetch_order_by_client_id(
        self, symbol: Symbol, client_order_id: ClientOrderId
    ) -> ExchangeOrder | None:
        venue_id = self._caps.client_id.format(client_order_id)
        for _ in range(3):
            record = self._book.get(venue_id)
            if record is None or record["symbol"] != symbol.value:
                return None
            if record["status"] != _S.ACCEPTED.value:
                return _order(record)
            updated = self._advance(symbol, record)
            if updated is None or self._book.replace(venue_id, updated, _S.ACCEPTED.value):
                return _order(updated or record)
        record = self._book.get(venue_id)
        return None if record is None else _order(record)

    def _advance(self, symbol: Symbol, record: Mapping[str, Any]) -> dict[str, Any] | None:
        """An accepted order's next state now: filled, expired or rejected; None = still open."""
        op = "fetch_order"
        placed_ms = int(record["placed_ms"])
        bar = self._first_bar(symbol, placed_ms, op)
        if bar is None:
            waited = ms_from_utc(self._clock.now()) - placed_ms
            if waited <= self._max_wait_ms:
                return None
            reason = f"no {self._timeframe} bar of {symbol} arrived within {waited // 60000} min"
            return {**record, "status": _S.EXPIRED.value, "reason": reason}
        side = Side(str(record["side"]))
        quantity = Quantity(Decimal(str(record["amount"])))
        outcome = simulate_fill(side, quantity, bar, self._model)
        if not isinstance(outcome, Fill):
            return {**record, "status": _S.EXPIRED.value, "reason": outcome.reason}
        return _filled(dict(record), outcome)

    def _first_bar(self, symbol: Symbol, placed_ms: int, op: str) -> Bar | None:
        """The first bar opening at or after ``placed_ms`` that the source holds, or None."""
        start = utc_from_ms(placed_ms)
        # bars up to now only: a bar that has not opened yet is never read (nor judged)
        end = min(start + timedelta(milliseconds=self._max_wait_ms), max(self._clock.now(), start))
        try:
            frame = self._bars.ohlcv(symbol.value, self._timeframe, start, end)
        except QualityRejectionError:  # bad bars there: no fill on them; the order waits/expires
            return None
        except ValueError as exc:  # DataSourceError: unknown symbol, like a venue's BadSymbol
            raise FatalExchangeError(PAPER, op, str(exc)) from exc
        # a bar is tradable from its open: never fill on a bar that has not opened yet
        now_ms = ms_from_utc(self._clock.now())
        frame = frame.filter((pl.col("ts") >= placed_ms) & (pl.col("ts") <= now_ms))
        if frame.is_empty():
            return None
        row = frame.sort("ts").row(0, named=True)
        return Bar.of(
            int(row["ts"]),
            row["open"],
            row["high"],
            row["low"],
            row["close"],
            str(Decimal(repr(float(row["volume"])))),
        )

    def cancel_order(self, symbol: Symbol, client_order_id: ClientOrderId) -> None:
        venue_id = self._caps.client_id.format(client_order_id)
        record = self._book.get(venue_id)
        if record is None or record["symbol"] != symbol.value:
            raise OrderNotFoundError(PAPER, "cancel_order", f"unknown order {venue_id}")
        if record["status"] != _S.ACCEPTED.value or not self._book.replace(
            venue_id, {**record, "status": _S.CANCELED.value}, _S.ACCEPTED.value
        ):
            current = (self._book.get(venue_id) or record)["status"]
            raise OrderNotFoundError(
                PAPER, "cancel_order", f"order {venue_id} is {current}, not open"
            )


def _filled(record: dict[str, Any], fill: Fill) -> dict[str, Any]:
    return {
        **record,
        "status": _S.FILLED.value,
        "filled": fill.quantity.value,
        "average": fill.price.value,
        "fee": fill.fee.amount,
        "bar_ts_ms": fill.bar_ts_ms,
        "bar_open": fill.reference.value,
        "cost_bps": fill.cost_bps,
    }


def _order(record: Mapping[str, Any]) -> ExchangeOrder:
    average = record.get("average")
    bar_ts = record.get("bar_ts_ms")
    return ExchangeOrder(
        exchange=PAPER,
        exchange_order_id=str(record["exchange_order_id"]),
        client_order_id=str(record["venue_id"]),
        symbol=Symbol(str(record["symbol"])),
        side=Side(str(record["side"])),
        order_type=str(record["order_type"]),
        status=OrderStatus(str(record["status"])),
        amount=Quantity(Decimal(str(record["amount"]))),
        filled=Decimal(str(record["filled"])),
        price=None,
        average=None if average is None else Price(Decimal(str(average))),
        ts_ms=int(bar_ts) if bar_ts is not None else int(record["placed_ms"]),
        fee=None if record.get("fee") is None else Decimal(str(record["fee"])),
    )
