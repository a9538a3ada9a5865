"""The live book as the services see it: recorded orders and positions as aggregates, and the
pure rules on it (exposure per symbol, what may still be sold, which opening a position is).

A :class:`RecordedOrder` is an :class:`~.aggregates.Order` with the facts its moves wrote onto
it (:class:`~.order_changes.OrderFacts`: what was sent, the venue's view, why it ended, the
lookup schedule). The orders table's attribute names are the DynamoDB adapter's alone: it maps
its records to these values and back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from decimal import Decimal

from cryptosmarttrader.domain.aggregates import Order, Position
from cryptosmarttrader.domain.order_changes import OrderFacts, StatusChange
from cryptosmarttrader.domain.orders import (
    OPEN_STATUSES,
    TERMINAL_STATUSES,
    Holding,
    Intent,
    OrderStatus,
)
from cryptosmarttrader.domain.types import OrderType, Side

__all__ = [
    "ANY_SYMBOL",
    "Holding",
    "OpenOrders",
    "PositionBook",
    "RecordedOrder",
    "StatusStep",
    "UnreadableRecord",
    "blocked_symbols",
    "book_exposure",
    "holding",
    "impossible_fill",
    "position_episode",
]

_ZERO = Decimal(0)
_NO_FACTS = OrderFacts()


@dataclass(frozen=True, slots=True)
class StatusStep:
    """One step of a recorded order's history: the status it entered and when, as the ledger
    wrote them (``at`` is None when the recorded time cannot be read)."""

    status: str
    at: datetime | None


@dataclass(frozen=True, slots=True)
class RecordedOrder:
    """One order of the ledger: the aggregate (its identity, what is sent, its status) and the
    facts recorded on it. ``facts.quantity`` and ``facts.mode`` are never set here: the size
    sent and the venue are the order's own ``quantity`` and ``mode``.

    ``history`` (each status it entered, oldest first) and ``updated_at`` (its last move) are
    the ledger's log of its writes, for the reports: they are not part of the order's value
    (two reads of one order compare equal whatever their log)."""

    order: Order
    facts: OrderFacts = _NO_FACTS
    history: tuple[StatusStep, ...] = field(default=(), compare=False)
    updated_at: datetime | None = field(default=None, compare=False)

    @property
    def key(self) -> str:
        """The client order ID (the ledger's key)."""
        return self.order.client_order_id.value

    @property
    def symbol(self) -> str:
        return self.order.symbol.value

    @property
    def status(self) -> OrderStatus:
        return self.order.status

    @property
    def side(self) -> Side:
        return self.order.side

    @property
    def quantity(self) -> Decimal:
        return self.order.quantity.value

    @property
    def filled(self) -> Decimal:
        """The cumulative fill the venue reported (0 when none was recorded)."""
        return _ZERO if self.facts.filled is None else self.facts.filled

    @property
    def unfilled(self) -> Decimal:
        return max(_ZERO, self.quantity - self.filled)

    @property
    def protective(self) -> bool:
        """A protective sell of a held position (a plain stop or a leg of its OCO list)."""
        return self.order.intent is Intent.PROTECT

    @property
    def take_profit(self) -> bool:
        """The take-profit leg of a protective OCO list (not a stop)."""
        return self.order.order_type is OrderType.LIMIT_MAKER

    @property
    def sent_at(self) -> datetime:
        """When the order left NEW: the SUBMITTED write's time (else its creation)."""
        return self.facts.submitted_at or self.order.created_at

    def with_status(self, status: OrderStatus) -> RecordedOrder:
        """This record with its status replaced (a view of a write just made, not a move:
        the ledger checked the move)."""
        return replace(self, order=replace(self.order, status=status))

    def after(self, change: StatusChange) -> RecordedOrder:
        """This record as the ledger holds it once ``change`` is written: its new status and
        the facts the move carries over the ones recorded (the size sent and the venue onto
        the order itself), the move in its history."""
        moved = self.noted(change.facts).with_status(change.new)
        step = StatusStep(change.new.value, change.at)
        return replace(moved, history=(*self.history, step), updated_at=change.at)

    def noted(self, facts: OrderFacts) -> RecordedOrder:
        """This record with ``facts`` written over it (what ``None`` leaves stays)."""
        order = self.order
        if facts.quantity is not None:
            order = replace(order, quantity=facts.quantity)
        if facts.mode is not None:
            order = replace(order, mode=facts.mode)
        merged = {
            name: getattr(facts, name)
            for name in (f.name for f in fields(facts))
            if name not in {"quantity", "mode"} and getattr(facts, name) is not None
        }
        return replace(self, order=order, facts=replace(self.facts, **merged))


def impossible_fill(recorded: RecordedOrder) -> str | None:
    """Why the fill recorded on an order cannot be true, else None: a cumulative ``filled``
    above the size sent (the order's ``quantity``; a venue fills at most the amount it was
    sent, which the venue adapter rounds *down* from it, and every leg of an OCO list is an
    order of its own size). A negative fill, a fee that
    is not a finite amount >= 0 and an average price that is not a finite price > 0 cannot be
    read at all (:class:`~.order_changes.OrderFacts`, :class:`~.types.Price`). Valued, such a
    record would drive the equity (e.g. ``filled = 1E+100`` on a quantity of 1)."""
    filled = recorded.filled
    if filled > recorded.quantity:
        return f"filled {filled} exceeds the quantity sent {recorded.quantity}"
    return None


# the coin of an unreadable record whose symbol cannot be read either: every coin is blocked
ANY_SYMBOL = "*"


@dataclass(frozen=True, slots=True)
class UnreadableRecord:
    """A stored order or position the book could not read (an attribute missing or out of its
    domain): its key, the coin it belongs to (:data:`ANY_SYMBOL` when not even that can be
    read) and why. Its coin's exposure and holding are unknown: never "none"."""

    key: str
    symbol: str
    reason: str

    def describe(self) -> str:
        return f"record {self.key!r} of {self.symbol} unreadable: {self.reason}"


class OpenOrders(list[RecordedOrder]):
    """The open orders read from the book, and the records among them that could not be read
    (each left out, its coin blocked: see :func:`blocked_symbols`)."""

    def __init__(
        self,
        orders: Iterable[RecordedOrder] = (),
        unreadable: Iterable[UnreadableRecord] = (),
    ) -> None:
        super().__init__(orders)
        self.unreadable: tuple[UnreadableRecord, ...] = tuple(unreadable)


class PositionBook(dict[str, Position]):
    """Every position read, by symbol, and the records that could not be read (each left out,
    its coin blocked: see :func:`blocked_symbols`)."""

    def __init__(
        self,
        positions: Mapping[str, Position] | None = None,
        unreadable: Iterable[UnreadableRecord] = (),
    ) -> None:
        super().__init__(positions or {})
        self.unreadable: tuple[UnreadableRecord, ...] = tuple(unreadable)


def blocked_symbols(*reads: OpenOrders | PositionBook) -> dict[str, str]:
    """The coins whose book could not be fully read, each with why (:data:`ANY_SYMBOL`: a
    record of an unknown coin). Their exposure is unknown: no new entry is taken on them."""
    out: dict[str, str] = {}
    for read in reads:
        for bad in getattr(read, "unreadable", ()):
            out.setdefault(bad.symbol, bad.describe())
    return out


def book_exposure(
    positions: Mapping[str, Position],
    orders: Iterable[RecordedOrder],
    *,
    include_new: bool = True,
) -> dict[str, Decimal]:
    """Notional per symbol at risk: positions at cost plus the unfilled part of every open
    (non-terminal) buy order, valued at its reference price.

    ``include_new=False`` leaves out NEW orders: decisions still waiting to be sent are
    candidates, not exposure, while the execution cycle decides them one by one."""
    out: dict[str, Decimal] = {}
    for symbol, position in positions.items():
        out[symbol] = out.get(symbol, _ZERO) + position.notional
    for recorded in orders:
        if recorded.side is not Side.BUY:
            continue
        status = recorded.status
        if status in TERMINAL_STATUSES or (status is OrderStatus.NEW and not include_new):
            continue
        unfilled = recorded.quantity - recorded.filled
        value = unfilled * recorded.order.reference_price.value
        out[recorded.symbol] = out.get(recorded.symbol, _ZERO) + value
    return out


def holding(
    symbol: str,
    position: Position | None,
    orders: Iterable[RecordedOrder],
    *,
    include_new: bool = False,
    exclude: str | None = None,
) -> Holding:
    """``symbol``'s holding from its position and the book's live orders.

    ``include_new`` also counts sells recorded but not yet sent (a decision being recorded must
    leave room for them); ``exclude`` leaves one order out (the one being decided). The two
    legs of an OCO order list sell the same quantity (the venue fills one and expires the
    other): they count once, the larger of their unfilled quantities."""
    held = _ZERO if position is None else position.quantity
    pending = _ZERO
    lists: dict[str, Decimal] = {}
    for recorded in orders:
        if recorded.symbol != symbol or recorded.side is not Side.SELL:
            continue
        if exclude is not None and recorded.key == exclude:
            continue
        status = recorded.status
        if status in OPEN_STATUSES or (include_new and status is OrderStatus.NEW):
            list_id = recorded.order.list_client_order_id
            if list_id is not None:
                lists[list_id.value] = max(lists.get(list_id.value, _ZERO), recorded.unfilled)
            else:
                pending += recorded.unfilled
    return Holding(max(_ZERO, held), pending + sum(lists.values(), _ZERO))


def position_episode(position: Position | None) -> str:
    """Which opening of a symbol's position this is: the client order ID whose fill opened it
    (recorded on the position when its quantity rose from zero); empty for a position recorded
    before episodes were kept."""
    return "" if position is None else position.episode
