"""Order intents, deterministic client order IDs and the order state-transition table."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from typing import Any

from cryptosmarttrader.domain.types import ClientOrderId, DomainError, Price, Quantity, Side, Symbol

CLIENT_ID_HEX_LEN = 32  # 128 bits: fits Kraken cl_ord_id, Binance (36) and KuCoin (40)


class Intent(StrEnum):
    OPEN = "open"
    CLOSE = "close"
    INCREASE = "increase"
    REDUCE = "reduce"


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """A decision to trade, before risk checks. Everything that identifies the decision is here."""

    strategy: str
    symbol: Symbol
    side: Side
    intent: Intent
    signal_bar_ms: int
    quantity: Quantity
    reference_price: Price

    def __post_init__(self) -> None:
        if not self.strategy or "|" in self.strategy:
            raise DomainError(f"invalid strategy name: {self.strategy!r}")
        if self.signal_bar_ms <= 0:
            raise DomainError(
                f"signal bar time must be a positive epoch ms, got {self.signal_bar_ms}"
            )

    @property
    def client_order_id(self) -> ClientOrderId:
        return client_order_id(self)

    @property
    def notional(self) -> float:
        return float(self.quantity.value * self.reference_price.value)


def client_order_id(intent: OrderIntent) -> ClientOrderId:
    """SHA256 of (strategy, symbol, side, intent, signal bar time, quantity), first 32 hex chars.

    The same decision always yields the same ID, so a retry can never open a second position.
    """
    canonical = "|".join(
        (
            intent.strategy,
            intent.symbol.value,
            intent.side.value,
            intent.intent.value,
            str(intent.signal_bar_ms),
            format(intent.quantity.value.normalize(), "f"),
        )
    )
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return ClientOrderId(digest[:CLIENT_ID_HEX_LEN])


class OrderStatus(StrEnum):
    NEW = "NEW"  # created and recorded, not yet sent
    SUBMITTED = "SUBMITTED"  # sent, no acknowledgement yet (a timeout leaves it here)
    ACCEPTED = "ACCEPTED"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCEL_PENDING = "CANCEL_PENDING"
    CANCELED = "CANCELED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"


TERMINAL_STATUSES = frozenset(
    {OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.EXPIRED}
)

_S = OrderStatus
ORDER_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    _S.NEW: frozenset({_S.SUBMITTED, _S.REJECTED, _S.CANCELED}),
    _S.SUBMITTED: frozenset(
        {_S.ACCEPTED, _S.REJECTED, _S.FILLED, _S.PARTIALLY_FILLED, _S.EXPIRED, _S.CANCEL_PENDING}
    ),
    _S.ACCEPTED: frozenset(
        {_S.PARTIALLY_FILLED, _S.FILLED, _S.CANCEL_PENDING, _S.CANCELED, _S.EXPIRED}
    ),
    _S.PARTIALLY_FILLED: frozenset(
        {_S.PARTIALLY_FILLED, _S.FILLED, _S.CANCEL_PENDING, _S.CANCELED}
    ),
    _S.CANCEL_PENDING: frozenset({_S.CANCELED, _S.FILLED, _S.PARTIALLY_FILLED}),
    _S.FILLED: frozenset(),
    _S.CANCELED: frozenset(),
    _S.REJECTED: frozenset(),
    _S.EXPIRED: frozenset(),
}


class IllegalTransitionError(DomainError):
    pass


def transition(current: OrderStatus, target: OrderStatus) -> OrderStatus:
    """Return ``target`` if the move is legal, else raise :class:`IllegalTransitionError`."""
    if target not in ORDER_TRANSITIONS[current]:
        raise IllegalTransitionError(f"illegal order transition {current} -> {target}")
    return target


def book_exposure(
    positions: Mapping[str, Mapping[str, Any]],
    orders: Iterable[Mapping[str, Any]],
    *,
    include_new: bool = True,
) -> dict[str, Decimal]:
    """Notional per symbol at risk: positions at cost plus the unfilled part of every open
    (non-terminal) buy order, valued at its reference price (else its recorded notional).

    ``include_new=False`` leaves out NEW orders: decisions still waiting to be sent are
    candidates, not exposure, while the execution cycle decides them one by one."""
    out: dict[str, Decimal] = {}
    for symbol, pos in positions.items():
        out[symbol] = out.get(symbol, Decimal(0)) + Decimal(str(pos.get("notional", 0)))
    for order in orders:
        if order.get("side") != Side.BUY.value:
            continue
        status = OrderStatus(str(order["status"]))
        if status in TERMINAL_STATUSES or (status is OrderStatus.NEW and not include_new):
            continue
        quantity = Decimal(str(order.get("quantity", 0)))
        unfilled = quantity - Decimal(str(order.get("filled", 0)))
        if order.get("reference_price") is not None:
            value = unfilled * Decimal(str(order["reference_price"]))
        elif quantity > 0:
            value = Decimal(str(order.get("notional", 0))) * unfilled / quantity
        else:
            value = Decimal(0)
        symbol = str(order["symbol"])
        out[symbol] = out.get(symbol, Decimal(0)) + value
    return out
