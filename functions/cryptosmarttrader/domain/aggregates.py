"""The ``Order`` and ``Position`` aggregates: one shape for every order the system records and
the rules a fill applies to a position.

* :class:`Order` is what the orders table holds, whoever created it (the scan's decision or the
  execution service's own submission, a CLOSE of the exit rule or the RiskGuard's flatten): one
  schema. Its status moves only along the state-transition table of :mod:`.orders`; an
  illegal move raises. Mapping to and from the table's items is the DynamoDB adapter's job.
* :class:`Position` applies fills by client order ID exactly once: a buy adds at cost (average
  cost basis), a sell takes cost off at the average cost and books the realized PnL; a spot
  position never goes below zero (what a venue reports sold beyond the holding is kept apart as
  ``oversold``, never booked as a short). An order filled in parts is booked at what each part
  traded for (the order's cumulative value less the value already applied), not at the order's
  running average.
* A position's bookkeeping stays bounded (a DynamoDB item holds at most 400 KB): beyond
  :data:`LIVE_FILLS_KEPT` orders, the oldest whose last fill is :data:`PRUNE_AFTER` older than the
  newest are pruned. The last :data:`PRUNED_FILLS_KEPT` pruned orders keep their applied quantity
  (a later part of one is applied exactly); beyond them, ``pruned_through`` (the latest fill time
  of any pruned order) refuses a fill of an unknown order at or before it: a replay.

Money and quantities are ``Decimal`` throughout; no clock is read here (times are passed in).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal

from cryptosmarttrader.domain.order_changes import OrderFacts, StatusChange
from cryptosmarttrader.domain.orders import (
    OPEN_STATUSES,
    TERMINAL_STATUSES,
    Intent,
    OrderIntent,
    OrderStatus,
    sell_fill_split,
    transition,
)
from cryptosmarttrader.domain.types import (
    ClientOrderId,
    DomainError,
    OrderType,
    Price,
    Quantity,
    Side,
    Symbol,
)

__all__ = [
    "LIVE_FILLS_KEPT",
    "PRUNED_FILLS_KEPT",
    "PRUNE_AFTER",
    "Fill",
    "FillOutcome",
    "Order",
    "Position",
]

_ZERO = Decimal(0)

# Per order, a position keeps its applied fill, value and time: at most this many orders once
# older ones can be pruned (about 150 bytes each in the stored item).
LIVE_FILLS_KEPT = 256
# An order is pruned only when its last fill is this much older than the position's newest:
# longer than any order of the system stays open but a resting protective stop, and a stop
# pruned while partly filled is still among the pruned ones that keep their applied quantity.
PRUNE_AFTER = timedelta(days=30)
# How many pruned orders keep their applied quantity (about 45 bytes each).
PRUNED_FILLS_KEPT = 1024


@dataclass(frozen=True, slots=True)
class Order:
    """One order as recorded: the decision's identity, what is to be sent, and its lifecycle.

    ``quantity`` is what is (or will be) sent; ``decision_quantity`` what the decision asked for
    before the RiskGuard sized it (None when they are the same). ``valid_until`` bounds how long
    a recorded decision may still be sent; ``rank`` is the scan's rank of the decision."""

    client_order_id: ClientOrderId
    symbol: Symbol
    side: Side
    intent: Intent
    strategy: str
    signal_bar_ms: int
    quantity: Quantity
    reference_price: Price
    created_at: datetime
    mode: str
    status: OrderStatus = OrderStatus.NEW
    order_type: OrderType = OrderType.MARKET
    position_key: str | None = None
    decision_quantity: Quantity | None = None
    valid_until: datetime | None = None
    rank: int | None = None
    risk_rule: str | None = None
    risk_reason: str | None = None
    # a leg of a protective OCO order list: the list's client ID (both legs carry it)
    list_client_order_id: ClientOrderId | None = None

    def __post_init__(self) -> None:
        if self.list_client_order_id is not None and self.intent is not Intent.PROTECT:
            raise DomainError(f"order {self.client_order_id}: only a protective leg is listed")
        if self.created_at.tzinfo is None:
            raise DomainError(f"order {self.client_order_id}: created_at must be UTC-aware")
        if self.valid_until is not None and self.valid_until < self.created_at:
            raise DomainError(f"order {self.client_order_id}: valid until before its creation")

    @classmethod
    def new(
        cls,
        intent: OrderIntent,
        *,
        created_at: datetime,
        mode: str,
        quantity: Quantity | None = None,
        valid_for: timedelta | None = None,
        rank: int | None = None,
        risk_rule: str | None = None,
        risk_reason: str | None = None,
    ) -> Order:
        """A NEW order for ``intent``, at ``quantity`` (the RiskGuard's size; default the
        decision's own)."""
        sized = intent.quantity if quantity is None else quantity
        return cls(
            client_order_id=intent.client_order_id,
            symbol=intent.symbol,
            side=intent.side,
            intent=intent.intent,
            strategy=intent.strategy,
            signal_bar_ms=intent.signal_bar_ms,
            quantity=sized,
            reference_price=intent.reference_price,
            created_at=created_at,
            mode=mode,
            position_key=intent.position_key,
            decision_quantity=intent.quantity if quantity is not None else None,
            valid_until=None if valid_for is None else created_at + valid_for,
            rank=rank,
            risk_rule=risk_rule,
            risk_reason=risk_reason,
        )

    @property
    def notional(self) -> Decimal:
        """Quantity at the reference price (quote currency)."""
        return self.quantity.value * self.reference_price.value

    @property
    def is_open(self) -> bool:
        """At the venue and not finished (it may still fill)."""
        return self.status in OPEN_STATUSES

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    def moved_to(self, target: OrderStatus) -> Order:
        """This order at ``target``; raises :class:`IllegalTransitionError` off the table."""
        return replace(self, status=transition(self.status, target))

    def move(
        self,
        target: OrderStatus,
        *,
        at: datetime,
        facts: OrderFacts | None = None,
        settle: bool | None = None,
    ) -> StatusChange:
        """The ledger's guarded move of this order from its status to ``target`` at ``at``,
        with the ``facts`` it records; raises :class:`IllegalTransitionError` off the table."""
        return StatusChange(self.status, target, at, facts or OrderFacts(), settle)


@dataclass(frozen=True, slots=True)
class Fill:
    """An order's cumulative fill as the venue reports it (``filled`` is the total so far)."""

    client_order_id: ClientOrderId
    side: Side
    filled: Decimal
    average_price: Price
    filled_at: datetime

    def __post_init__(self) -> None:
        if self.filled <= 0:
            raise DomainError(f"fill of {self.client_order_id} must be > 0, got {self.filled}")
        if self.filled_at.tzinfo is None:
            raise DomainError(f"fill of {self.client_order_id}: filled_at must be UTC-aware")


@dataclass(frozen=True, slots=True)
class FillOutcome:
    """What applying a fill did: the position after it, the quantity newly applied, the
    realized PnL of that part (sells), and what was sold beyond the holding (refused)."""

    position: Position
    applied: Decimal
    realized_pnl: Decimal
    oversold: Decimal

    @property
    def changed(self) -> bool:
        return self.applied > 0 or self.oversold > 0


@dataclass(frozen=True, slots=True)
class Position:
    """A spot position in one symbol at average cost, with the fills it has applied."""

    symbol: Symbol
    quantity: Decimal = _ZERO
    cost: Decimal = _ZERO
    realized_pnl: Decimal = _ZERO
    applied_fills: Mapping[str, Decimal] = field(default_factory=dict)
    # per client order ID, the quote value of its fills applied so far (filled × average price
    # as the venue reported them); an order applied before the value was kept has none
    applied_costs: Mapping[str, Decimal] = field(default_factory=dict)
    # per client order ID, the fill time of its last applied part (the age pruning goes by); an
    # order applied before times were kept has none until the next fill stamps it
    applied_times: Mapping[str, datetime] = field(default_factory=dict)
    # the last pruned orders (oldest first) with their applied quantity, and the latest fill time
    # of any pruned order: a fill of an order neither kept nor pruned at or before it is a replay
    pruned_fills: tuple[tuple[str, Decimal], ...] = ()
    pruned_through: datetime | None = None
    opened_by: str | None = None  # the client order ID whose fill opened this episode
    opened_at: datetime | None = None
    oversold: Decimal = _ZERO
    oversold_reason: str | None = None
    # when the store last wrote this position (set when it is read back; None before its first
    # write): the store's bookkeeping, not part of the position's value
    updated_at: datetime | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.quantity < 0:
            raise DomainError(f"position {self.symbol}: quantity below zero ({self.quantity})")

    @property
    def average_price(self) -> Decimal | None:
        return self.cost / self.quantity if self.quantity > 0 else None

    @property
    def notional(self) -> Decimal:
        """The position at cost (its exposure)."""
        return self.cost if self.quantity > 0 else _ZERO

    @property
    def episode(self) -> str:
        """Which opening of this symbol's position this is (see :func:`position_episode`)."""
        return self.opened_by or ""

    def ended_as_dust(self) -> Position:
        """The remainder a close left, too small for the venue to sell (dust), with its
        episode ended: it keeps its quantity, cost and realized PnL, but no longer counts as an
        opening (the exit rule's days, the close and stop IDs), so a later entry in the coin
        opens a new episode from its own fill instead of inheriting the old one's clock."""
        return replace(self, opened_by=None, opened_at=None)

    def apply(self, fill: Fill) -> FillOutcome:
        """Apply the part of ``fill`` not applied yet (exactly once per client order ID).

        The new part is valued at what it traded for: the order's cumulative value
        (``filled × average``) less the value already applied for it (see :meth:`_increment_value`).
        A fill of a pruned order counts what was applied before it was pruned; one of an order
        pruned beyond those kept is refused at or before ``pruned_through`` (a replay).
        """
        coid = fill.client_order_id.value
        already = self.applied_fills.get(coid)
        if already is None:
            already = dict(self.pruned_fills).get(coid)
            through = self.pruned_through
            if already is None and through is not None and fill.filled_at <= through:
                return FillOutcome(self, _ZERO, _ZERO, _ZERO)
        delta = fill.filled - (already or _ZERO)
        if delta <= 0:
            return FillOutcome(self, _ZERO, _ZERO, _ZERO)
        value = self._increment_value(fill, delta)
        bookkeeping = self._booked(fill)
        if fill.side is Side.BUY:
            # a new episode opens on nothing held, or on a remainder whose episode ended (dust
            # no sell can be placed for: see :meth:`ended_as_dust`)
            opening = self.quantity <= 0 or self.opened_by is None
            after = replace(
                bookkeeping,
                quantity=self.quantity + delta,
                cost=self.cost + value,
                opened_by=coid if opening else self.opened_by,
                opened_at=fill.filled_at if opening else self.opened_at,
            )
            return FillOutcome(after._pruned(), delta, _ZERO, _ZERO)
        sold, beyond = sell_fill_split(self.quantity, delta)
        basis = self.cost * sold / self.quantity if self.quantity > 0 else _ZERO
        realized = value * sold / delta - basis
        left = self.quantity - sold
        after = replace(
            bookkeeping,
            quantity=left,
            cost=self.cost - basis if left > 0 else _ZERO,
            realized_pnl=self.realized_pnl + realized,
            opened_at=self.opened_at if left > 0 else None,
            oversold=self.oversold + beyond,
            oversold_reason=(
                f"order {coid} sold {beyond} beyond the {self.quantity} held: not booked as a short"
                if beyond > 0
                else self.oversold_reason
            ),
        )
        return FillOutcome(after._pruned(), sold, realized, beyond)

    def _booked(self, fill: Fill) -> Position:
        """This position with ``fill`` recorded as its order's applied quantity, value and time.

        An order applied before times were kept is stamped with the newest time known (so it
        ages from now on); a pruned order applied again is kept again."""
        coid = fill.client_order_id.value
        newest = max([fill.filled_at, *self.applied_times.values()])
        times = {k: self.applied_times.get(k, newest) for k in self.applied_fills}
        times[coid] = max(fill.filled_at, times.get(coid, fill.filled_at))
        return replace(
            self,
            applied_fills={**self.applied_fills, coid: fill.filled},
            applied_costs={**self.applied_costs, coid: fill.filled * fill.average_price.value},
            applied_times=times,
            pruned_fills=tuple(p for p in self.pruned_fills if p[0] != coid),
        )

    def _pruned(self) -> Position:
        """Beyond :data:`LIVE_FILLS_KEPT` orders, the oldest whose last fill is
        :data:`PRUNE_AFTER` older than the newest move to ``pruned_fills`` (the oldest of those
        beyond :data:`PRUNED_FILLS_KEPT` are dropped); ``pruned_through`` rises to their time."""
        excess = len(self.applied_fills) - LIVE_FILLS_KEPT
        if excess <= 0 or not self.applied_times:
            return self
        horizon = max(self.applied_times.values()) - PRUNE_AFTER
        old = sorted((t, k) for k, t in self.applied_times.items() if t <= horizon)[:excess]
        if not old:
            return self
        gone = {k for _, k in old}
        through = max([old[-1][0], *([self.pruned_through] if self.pruned_through else [])])
        pruned = (*self.pruned_fills, *((k, self.applied_fills[k]) for _, k in old))
        return replace(
            self,
            applied_fills={k: v for k, v in self.applied_fills.items() if k not in gone},
            applied_costs={k: v for k, v in self.applied_costs.items() if k not in gone},
            applied_times={k: v for k, v in self.applied_times.items() if k not in gone},
            pruned_fills=pruned[-PRUNED_FILLS_KEPT:],
            pruned_through=through,
        )

    def _increment_value(self, fill: Fill, delta: Decimal) -> Decimal:
        """The quote value of the ``delta`` of ``fill`` not applied yet.

        The venue reports an order's cumulative fill at its average price, so the new part cost
        ``filled × average − applied value``. Booked at the order's average instead (the
        cumulative value is not split): an order whose applied part has no recorded value
        (applied before values were kept), and a report whose difference is not a positive
        value (an average rounded by the venue on a tiny increment)."""
        price = fill.average_price.value
        coid = fill.client_order_id.value
        if coid not in self.applied_fills:
            return delta * price
        before = self.applied_costs.get(coid)
        if before is None:
            return delta * price
        value = fill.filled * price - before
        return value if value > 0 else delta * price
