"""Order intents, deterministic client order IDs, the order state-transition table, and the
identity of a close and of a protective stop (the rules on a book of recorded orders, exposure
and what may still be sold, are in :mod:`.book`)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal
from enum import StrEnum

from cryptosmarttrader.domain.types import ClientOrderId, DomainError, Price, Quantity, Side, Symbol

CLIENT_ID_HEX_LEN = 32  # 128 bits: fits Kraken cl_ord_id, Binance (36) and KuCoin (40)
MAX_CLOSE_ATTEMPTS = 64  # closes of one position that ended without closing it (bounded walk)
MAX_PROTECT_ATTEMPTS = 16  # protective stops of one position state cancelled or expired


class Intent(StrEnum):
    OPEN = "open"
    CLOSE = "close"
    INCREASE = "increase"
    REDUCE = "reduce"
    # a protective stop resting on the venue for a held position (see :func:`protective_order_id`)
    PROTECT = "protect"


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
    # A CLOSE names the position it closes (see :func:`close_position_key`); the order's
    # identity is then that position, whoever decided to close it and on whichever bar.
    position_key: str | None = None

    def __post_init__(self) -> None:
        if not self.strategy or "|" in self.strategy:
            raise DomainError(f"invalid strategy name: {self.strategy!r}")
        if self.signal_bar_ms <= 0:
            raise DomainError(
                f"signal bar time must be a positive epoch ms, got {self.signal_bar_ms}"
            )
        if self.position_key is not None and (
            self.intent is not Intent.CLOSE or self.side is not Side.SELL or not self.position_key
        ):
            raise DomainError("only a SELL CLOSE names a position key, and it must be non-empty")

    @property
    def client_order_id(self) -> ClientOrderId:
        return client_order_id(self)

    @property
    def notional(self) -> float:
        return float(self.quantity.value * self.reference_price.value)


def client_order_id(intent: OrderIntent) -> ClientOrderId:
    """The first 32 hex chars of SHA256 of the decision alone.

    * an entry (or any intent without a position key): ``strategy|symbol|side|intent|signal
      bar ms``. The quantity is not part of it: the RiskGuard may size the same decision
      differently on a re-run (exposure moved), which must find the order already recorded;
    * a CLOSE with a position key: ``close|symbol|sell|position key``. Neither the strategy
      nor the bar: the scan's CLOSE and the RiskGuard's flatten of one position, on any bar,
      are one order.

    The same decision always yields the same ID, so a retry can never place a second order.
    """
    if intent.position_key is not None:
        parts: tuple[str, ...] = (
            Intent.CLOSE.value,
            intent.symbol.value,
            Side.SELL.value,
            intent.position_key,
        )
    else:
        parts = (
            intent.strategy,
            intent.symbol.value,
            intent.side.value,
            intent.intent.value,
            str(intent.signal_bar_ms),
        )
    digest = hashlib.sha256("|".join(parts).encode("utf-8")).hexdigest()
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
# sent and not finished: the venue may still fill them
OPEN_STATUSES = frozenset(
    {
        OrderStatus.SUBMITTED,
        OrderStatus.ACCEPTED,
        OrderStatus.PARTIALLY_FILLED,
        OrderStatus.CANCEL_PENDING,
    }
)

# recorded, or sent and not acknowledged: nothing is known to rest on the venue yet (a stop in
# this state is never placed again while its request may still land, nor counted as protection)
UNCONFIRMED_STATUSES = frozenset({OrderStatus.NEW, OrderStatus.SUBMITTED})

_S = OrderStatus
ORDER_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    _S.NEW: frozenset({_S.SUBMITTED, _S.REJECTED, _S.CANCELED}),
    _S.SUBMITTED: frozenset(
        {_S.ACCEPTED, _S.REJECTED, _S.FILLED, _S.PARTIALLY_FILLED, _S.EXPIRED, _S.CANCEL_PENDING}
    ),
    _S.ACCEPTED: frozenset(
        {_S.PARTIALLY_FILLED, _S.FILLED, _S.CANCEL_PENDING, _S.CANCELED, _S.EXPIRED}
    ),
    # EXPIRED with a part filled: the venue ended the rest by its own rules (Binance's
    # self-trade prevention, a maintenance expiry of a partly filled list leg)
    _S.PARTIALLY_FILLED: frozenset(
        {_S.PARTIALLY_FILLED, _S.FILLED, _S.CANCEL_PENDING, _S.CANCELED, _S.EXPIRED}
    ),
    # EXPIRED: the venue ended it by its own rules before the cancel took (the other leg of
    # an OCO order list filled or triggered: the venue expires this one)
    _S.CANCEL_PENDING: frozenset({_S.CANCELED, _S.FILLED, _S.PARTIALLY_FILLED, _S.EXPIRED}),
    _S.FILLED: frozenset(),
    _S.CANCELED: frozenset(),
    _S.REJECTED: frozenset(),
    _S.EXPIRED: frozenset(),
}


class RecordOutcome(StrEnum):
    """What recording a decision as a NEW order did: the conditional insert keyed on the
    client order ID either created it or found it already there (nothing written)."""

    CREATED = "created"
    DUPLICATE = "duplicate"


class IllegalTransitionError(DomainError):
    pass


def transition(current: OrderStatus, target: OrderStatus) -> OrderStatus:
    """Return ``target`` if the move is legal, else raise :class:`IllegalTransitionError`."""
    if target not in ORDER_TRANSITIONS[current]:
        raise IllegalTransitionError(f"illegal order transition {current} -> {target}")
    return target


# --------------------------------------------------------------------------- selling rules


@dataclass(frozen=True, slots=True)
class Holding:
    """What may still be sold of one symbol on a spot venue: the quantity held minus the
    unfilled part of the sells already at the venue (and, when counted, those recorded)."""

    held: Decimal
    open_sells: Decimal = Decimal(0)

    @property
    def sellable(self) -> Decimal:
        return max(Decimal(0), self.held - self.open_sells)


def sell_fill_split(held: Decimal, delta: Decimal) -> tuple[Decimal, Decimal]:
    """A sell fill of ``delta`` against ``held``: (applied, oversold). A spot position never goes
    below zero: what a venue reports sold beyond the holding is returned apart, to be refused
    and alarmed, never booked as a short."""
    applied = min(delta, max(Decimal(0), held))
    return applied, delta - applied


def close_position_key(episode: str, attempt: int) -> str:
    if attempt < 0:
        raise DomainError(f"close attempt must be >= 0, got {attempt}")
    return f"{episode or 'position'}#{attempt}"


def resolve_close(
    intent: OrderIntent,
    episode: str,
    status_of: Callable[[str], OrderStatus | None],
    *,
    max_attempts: int = MAX_CLOSE_ATTEMPTS,
) -> tuple[OrderIntent, OrderStatus | None]:
    """The identity of a CLOSE of one position: ``(keyed intent, status of its order)``.

    Attempt 0 of the position's episode first. An attempt whose order is live (NEW or still at
    the venue) *is* the close: its status is returned and nothing new may be ordered. An
    attempt whose order ended (cancelled, expired, rejected, or filled without closing all of
    it) leaves the position open: the next attempt is the new decision. A close whose request
    was lost stays live (SUBMITTED) only while the venue could still execute it: absent by its
    client ID past the venue's request window, the reconcile settles it EXPIRED (not placed). An unknown attempt is
    returned with status None: the order to record. Everyone closing this position (the scan,
    the RiskGuard's flatten, a retry) walks the same attempts and so finds the same order."""
    if intent.intent is not Intent.CLOSE or intent.side is not Side.SELL:
        raise DomainError(f"only a SELL CLOSE is keyed on its position, got {intent.intent}")
    for attempt in range(max_attempts):
        keyed = replace(intent, position_key=close_position_key(episode, attempt))
        status = status_of(keyed.client_order_id.value)
        if status is None or status not in TERMINAL_STATUSES:
            return keyed, status
    raise DomainError(
        f"{intent.symbol}: {max_attempts} closes of one position ended without closing it"
    )


# --------------------------------------------------------------------------- protective stops


def protective_key(episode: str, quantity: Decimal, attempt: int) -> str:
    """The identity of a protective stop: the position's episode (the entry whose fill opened
    it), the quantity it protects and the attempt. A position that grows has a new quantity,
    hence a new stop (the old one is cancelled first); the same position state always yields
    the same key, so a retry, a restart or a redelivery finds the stop already recorded."""
    if attempt < 0:
        raise DomainError(f"protective attempt must be >= 0, got {attempt}")
    if quantity <= 0:
        raise DomainError(f"a protective stop protects a quantity > 0, got {quantity}")
    return f"{episode or 'position'}|{quantity.normalize():f}#{attempt}"


def protective_attempt(key: str) -> int:
    """The attempt a protective key (:func:`protective_key`) names."""
    head, sep, attempt = key.rpartition("#")
    if not sep or not head or not attempt.isdigit():
        raise DomainError(f"not a protective key: {key!r}")
    return int(attempt)


def protective_order_id(symbol: Symbol, key: str) -> ClientOrderId:
    """The first 32 hex chars of SHA256 of ``protect|symbol|sell|key`` (like every other ID)."""
    parts = (Intent.PROTECT.value, symbol.value, Side.SELL.value, key)
    digest = hashlib.sha256("|".join(parts).encode("utf-8")).hexdigest()
    return ClientOrderId(digest[:CLIENT_ID_HEX_LEN])


@dataclass(frozen=True, slots=True)
class ProtectiveListIds:
    """The client IDs of one position state's protective OCO order list: the list, its
    take-profit leg (above: ``LIMIT_MAKER``) and its stop leg (below: ``STOP_LOSS_LIMIT``).
    Each hashes the position state's key with its role, distinct from each other, from the
    plain stop of the same attempt (:func:`protective_order_id`) and from every other ID
    (Binance refuses a list whose client ID equals a leg's). One attempt is thus one list and,
    should the venue not place it, the plain stop at once (see :func:`resolve_protective`)."""

    list_id: ClientOrderId
    above: ClientOrderId
    below: ClientOrderId


def protective_list_ids(symbol: Symbol, key: str) -> ProtectiveListIds:
    """``SHA256(protect|symbol|sell|key|role)`` for the list, its take-profit leg and its stop
    leg (first 32 hex chars, like every other ID)."""

    def role(name: str) -> ClientOrderId:
        parts = (Intent.PROTECT.value, symbol.value, Side.SELL.value, key, name)
        digest = hashlib.sha256("|".join(parts).encode("utf-8")).hexdigest()
        return ClientOrderId(digest[:CLIENT_ID_HEX_LEN])

    return ProtectiveListIds(list_id=role("list"), above=role("take-profit"), below=role("stop"))


def resolve_protective(
    symbol: Symbol,
    episode: str,
    quantity: Decimal,
    status_of: Callable[[str], OrderStatus | None],
    *,
    max_attempts: int = MAX_PROTECT_ATTEMPTS,
) -> tuple[str, ClientOrderId, OrderStatus | None] | None:
    """The protective stop of one position state: ``(key, client ID, status of its order)``,
    or None when no stop may be placed for it any more.

    Attempt 0 first. An attempt that is live (NEW or at the venue) or filled *is* the stop:
    returned with its status, nothing new is placed. One still unconfirmed
    (:data:`UNCONFIRMED_STATUSES`: its request may still land) is returned too, so it is never
    duplicated, but it protects nothing: the caller reports it so, and once the venue can no
    longer execute it, absent by its client ID, it is settled EXPIRED (not placed) and the walk
    goes on to the next attempt. One the venue refused (REJECTED: its rules
    do not take it, e.g. below the minimum notional) ends the walk: None, never re-sent every
    cycle. One cancelled (the kill-switch, a close) or expired leaves the position unprotected:
    the next attempt is the stop to place. Bounded: None after ``max_attempts``.

    An attempt may first be an OCO list (:func:`protective_list_ids`): while the plain stop of
    the attempt is not recorded, its list's stop leg stands for it: live or filled, it *is* the
    stop (its ID returned); cancelled, the walk goes on; not placed by the venue (EXPIRED, or a
    REJECTED leg recorded before refusals of a list were settled as not placed), the plain stop
    of the same attempt is the one to place (status None), so a refused list and its fallback
    spend one attempt, never two."""
    for attempt in range(max_attempts):
        key = protective_key(episode, quantity, attempt)
        coid = protective_order_id(symbol, key)
        status = status_of(coid.value)
        if status is None:
            leg = protective_list_ids(symbol, key).below
            leg_status = status_of(leg.value)
            if leg_status is OrderStatus.CANCELED:
                continue
            if leg_status is not None and leg_status not in {
                OrderStatus.EXPIRED,
                OrderStatus.REJECTED,
            }:
                return key, leg, leg_status
            return key, coid, None
        if status is OrderStatus.REJECTED:
            return None
        if status not in {OrderStatus.CANCELED, OrderStatus.EXPIRED}:
            return key, coid, status
    return None
