"""Order intents, deterministic client order IDs and the order state-transition table."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum

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
