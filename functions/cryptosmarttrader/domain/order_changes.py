"""What a write to a recorded order carries: a guarded status move (:class:`StatusChange`) or a
note of the cycle's bookkeeping, each with the typed facts it records (:class:`OrderFacts`).

The order ledger (``OrderLedger.update_status`` / ``note``) takes these values, never a mapping
of attribute names: the orders table's attribute names and their representation are the
DynamoDB adapter's alone. A move is checked against the state-transition table of
:mod:`.orders` when it is built; an illegal one raises before anything is written.

Money and quantities are ``Decimal`` (inside their value types); times are UTC-aware.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal

from cryptosmarttrader.domain.orders import TERMINAL_STATUSES, OrderStatus, transition
from cryptosmarttrader.domain.types import DomainError, Price, Quantity

__all__ = ["OrderFacts", "StatusChange"]


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderFacts:
    """The facts a move or a note writes onto an order; ``None`` is "not written" (an existing
    value stays as it is).

    * sending: ``quantity`` (the size sent, when the RiskGuard reduced it at dispatch), ``mode``
      (the venue it is sent to), ``submitted_at``, and a stop's ``stop_price`` / ``limit_price``;
    * the venue's view: ``exchange_order_id``, ``filled`` (cumulative, may be 0),
      ``average_price``, ``fee`` (in the quote currency, as the venue reports it), ``filled_at``;
    * why it ended: ``cancel_reason`` (and who cancelled it, ``canceled_by``),
      ``reject_reason``, ``expire_reason``;
    * the lookup schedule of an order the venue does not show yet: ``absent_lookups``,
      ``next_lookup_at``.
    """

    quantity: Quantity | None = None
    mode: str | None = None
    submitted_at: datetime | None = None
    stop_price: Price | None = None
    limit_price: Price | None = None
    exchange_order_id: str | None = None
    filled: Decimal | None = None
    average_price: Price | None = None
    fee: Decimal | None = None
    filled_at: datetime | None = None
    cancel_reason: str | None = None
    canceled_by: str | None = None
    reject_reason: str | None = None
    expire_reason: str | None = None
    absent_lookups: int | None = None
    next_lookup_at: datetime | None = None

    def __post_init__(self) -> None:
        for name in ("filled", "fee"):
            amount = getattr(self, name)
            if amount is not None and (not amount.is_finite() or amount < 0):
                raise DomainError(f"{name} must be a finite amount >= 0, got {amount!r}")
        for name in ("submitted_at", "filled_at", "next_lookup_at"):
            moment = getattr(self, name)
            if moment is not None and moment.tzinfo is None:
                raise DomainError(f"{name} must be UTC-aware, got {moment!r}")
        if self.absent_lookups is not None and self.absent_lookups < 1:
            raise DomainError(f"absent_lookups counts looks (>= 1), got {self.absent_lookups}")
        if self.exchange_order_id == "":
            raise DomainError("an exchange order id is never empty")

    @property
    def empty(self) -> bool:
        """Nothing to write."""
        return all(getattr(self, f.name) is None for f in fields(self))

    @property
    def fills(self) -> bool:
        """It reports a fill (``filled`` > 0)."""
        return self.filled is not None and self.filled > 0


_NO_FACTS = OrderFacts()


@dataclass(frozen=True, slots=True)
class StatusChange:
    """``expected`` → ``new`` at ``at``, with the facts the move records.

    Built only along the state-transition table (:class:`IllegalTransitionError` otherwise).
    ``settle`` says whether the move takes the order out of the open-orders index in the same
    write; by default a terminal move does unless it carries a fill (that order stays indexed
    until its fill has reached the positions, ``OrderLedger.settle``)."""

    expected: OrderStatus
    new: OrderStatus
    at: datetime
    facts: OrderFacts = _NO_FACTS
    settle: bool | None = None

    def __post_init__(self) -> None:
        transition(self.expected, self.new)
        if self.at.tzinfo is None:
            raise DomainError(f"status change {self.expected} -> {self.new}: at must be UTC-aware")
        if self.settle and self.new not in TERMINAL_STATUSES:
            raise DomainError(f"only a terminal order leaves the open index, not {self.new}")

    @property
    def settles(self) -> bool:
        """Whether the move takes the order out of the open-orders index."""
        if self.settle is not None:
            return self.settle
        return self.new in TERMINAL_STATUSES and not self.facts.fills
