"""Exactly-once order execution with reconciliation by client order ID.

The path of one decision (an :class:`OrderIntent`):

1. kill-switch read (cached a few seconds at most); ON → rejected, and, when the switch was
   read as ON (``known``), every open order is cancelled. A switch that cannot be read is ON
   for "may I trade?" but destroys nothing: nothing is sent, nothing is cancelled;
2. a CLOSE is keyed on the position it closes (:func:`resolve_close`): the scan's CLOSE, the
   RiskGuard's flatten and any retry of them are one order, found by its client ID;
3. the order store is asked for the decision's client order ID (SHA256 of the decision alone,
   never of the quantity): known → duplicate, nothing sent;
4. RiskGuard (level from the state table, exposure from positions and open orders, clusters,
   quote; a sell is capped at what is held minus the sells already open) → rejected with the
   rule that decided, nothing written;
5. order recorded as NEW by a conditional insert keyed on the client order ID: the one write
   that decides between concurrent submissions and dedups the decision for good (well beyond
   the 60-minute window the architecture asks for);
6. a sell is checked once more against a fresh read of its position and open sells: a spot
   position never goes negative (an oversell is refused with its reason and counted in
   ``OversellRefused``, which is alarmed);
7. NEW → SUBMITTED (conditional), then sent to the exchange tagged with the client order ID;
8. the answer moves the order along the state-transition table and applies fills to positions.

``create_order`` is never retried blindly: after a timeout (``OrderStateUnknownError``), or an
answer that came back but cannot be parsed (``InvalidPayloadError``: the venue may well hold
the order), the order is looked up by client ID. Found → recorded. Not found → left SUBMITTED
for :meth:`reconcile`, which keeps looking with a growing interval (never resending: a
late-appearing order would be a second position) and settles it EXPIRED (not placed) only once
the venue can no longer execute its request (its request window plus ``absent_query_lag``; on
a venue with no known window, ``absent_horizon``). A late fill reaches the position once. A
CLOSE of a holding below the venue's minimum amount / notional is dust: nothing is sent. :meth:`reconcile` runs on every
start, so a crash between send and record is recovered from the venue's view of the client ID.

Each cycle reads only what needs it: the open-orders index (NEW orders, orders at the venue,
and finished orders whose fill has not reached the positions yet) and the positions; finished
orders are never read again. Fills reach positions exactly once: each position keeps the
filled quantity it has applied per client order ID.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal

from cryptosmarttrader.domain import metric_names as mn
from cryptosmarttrader.domain.aggregates import Fill, Order, Position
from cryptosmarttrader.domain.book import (
    ANY_SYMBOL,
    OpenOrders,
    RecordedOrder,
    UnreadableRecord,
    blocked_symbols,
    book_exposure,
    holding,
    position_episode,
)
from cryptosmarttrader.domain.clock import Clock
from cryptosmarttrader.domain.exchange import (
    ExchangeError,
    ExchangeOrder,
    ExchangeOrderList,
    FatalExchangeError,
    ImmediateTriggerError,
    InvalidPayloadError,
    MarketRulesUnknownError,
    OrderListPricesError,
    OrderNotFoundError,
    OrderStateUnknownError,
    OrderType,
    RetryableExchangeError,
)
from cryptosmarttrader.domain.golive import rollback_engaged
from cryptosmarttrader.domain.order_changes import OrderFacts, StatusChange
from cryptosmarttrader.domain.orders import (
    MAX_PROTECT_ATTEMPTS,
    OPEN_STATUSES,
    ORDER_TRANSITIONS,
    TERMINAL_STATUSES,
    UNCONFIRMED_STATUSES,
    Holding,
    Intent,
    OrderIntent,
    OrderStatus,
    protective_attempt,
    protective_key,
    protective_list_ids,
    protective_order_id,
    resolve_close,
    resolve_protective,
)
from cryptosmarttrader.domain.portfolio import PortfolioExposure
from cryptosmarttrader.domain.risk import MarketQuote, RiskGuard, cap_sell
from cryptosmarttrader.domain.types import (
    ClientOrderId,
    Money,
    Price,
    Quantity,
    Side,
    Symbol,
    ms_from_utc,
    utc_from_ms,
)
from cryptosmarttrader.domain.venue import dust_reason
from cryptosmarttrader.ports import (
    KillSwitch,
    MarketRulesGateway,
    Metrics,
    OrderGateway,
    OrderLedger,
    OrderListGateway,
    PositionLedger,
    ProtectiveGateway,
    RiskLevelSource,
)

__all__ = [
    "OPEN_STATUSES",
    "CycleContext",
    "ExecutionResult",
    "ExecutionService",
    "OrderGateway",
    "OrderLedger",
    "PositionLedger",
    "ReconcileReport",
    "RiskLevelSource",
    "SweepReport",
]

log = logging.getLogger(__name__)

# what reading a damaged stored record raises (an attribute missing, of the wrong type or out
# of its domain: DomainError is a ValueError; a Decimal's errors are ArithmeticErrors)
_UNREADABLE_BOOK = (KeyError, TypeError, ValueError, ArithmeticError)

OVERSELL_METRIC = mn.OVERSELL_REFUSED.name
PROTECTIVE_STRATEGY = "protective-stop"
# a CLOSE that found its position already sold by its protective stop on the venue
CLOSED_AT_VENUE = "closed_at_venue"
# a CLOSE of a holding below the venue's minimum amount / notional: closed for trading
DUST = "dust"
# the venue's market rules could not be read: no verdict (dust or not), nothing recorded or sent
RULES_UNKNOWN = "rules_unknown"
_POSITION_RETRIES = 20
_S = OrderStatus
# at the venue and still working: a cancel asked for it has not taken (yet)
_RESTING = frozenset({OrderStatus.ACCEPTED, OrderStatus.PARTIALLY_FILLED})
# a protective sell that protects its position: resting, or sent and not confirmed yet
_PROTECTING = _RESTING | {OrderStatus.SUBMITTED}


@dataclass(frozen=True)
class ExecutionResult:
    """What happened to one submission. ``status`` is an :class:`OrderStatus` value, or
    ``rejected`` (RiskGuard / bad input, nothing written) or ``duplicate`` (nothing sent)."""

    client_order_id: str
    status: str
    reason: str
    rule: str | None = None
    quantity: Decimal | None = None
    average_price: Decimal | None = None

    @property
    def sent(self) -> bool:
        return self.status not in {"rejected", "duplicate", CLOSED_AT_VENUE, DUST, RULES_UNKNOWN}


@dataclass(frozen=True)
class CycleContext:
    """What the trading cycle hands the execution service for one cycle, read once before
    anything is sent: the equity the RiskGuard sizes on, a quote per marked symbol, the
    correlation clusters, and the go-live stage (a halted stage takes no new entries; a canary
    scales every exposure cap by its share of the risk budget). The service never calls back
    into the cycle: everything it needs is here."""

    equity: Money | None
    quotes: Mapping[str, MarketQuote] = field(default_factory=dict)
    clusters: Mapping[str, str] = field(default_factory=dict)
    halt_reason: str | None = None
    risk_share: Decimal = Decimal(1)

    def __post_init__(self) -> None:
        if not Decimal(0) < self.risk_share <= Decimal(1):
            raise ValueError(f"risk share must be in (0, 1], got {self.risk_share}")

    def quote(self, symbol: Symbol) -> MarketQuote | None:
        return self.quotes.get(symbol.value)

    def guard(self, base: RiskGuard) -> RiskGuard:
        """``base`` with every exposure cap scaled by the stage's share of the risk budget."""
        if self.risk_share >= 1:
            return base
        limits = base.limits
        return RiskGuard(
            replace(
                limits,
                max_asset_fraction=limits.max_asset_fraction * self.risk_share,
                max_cluster_fraction=limits.max_cluster_fraction * self.risk_share,
                max_gross_fraction=limits.max_gross_fraction * self.risk_share,
            )
        )


@dataclass
class _Book:
    """This run's view of the live book: positions and the indexed orders, read once and kept
    up to date with this run's own writes (exposure and sell room need no read per decision)."""

    positions: dict[str, Position]
    orders: dict[str, RecordedOrder]
    # the coins with a stored record that could not be read, each with why: their exposure
    # and holding are unknown, so no entry is taken on them (never read as "none held")
    blocked: dict[str, str] = field(default_factory=dict)

    def open_orders(self) -> list[RecordedOrder]:
        return list(self.orders.values())

    def blocks(self, symbol: str) -> str | None:
        """Why ``symbol``'s book cannot be fully read (None: it can)."""
        return self.blocked.get(symbol) or self.blocked.get(ANY_SYMBOL)


@dataclass(frozen=True, slots=True)
class SweepReport:
    """What one kill-switch sweep (:meth:`ExecutionService.cancel_open_orders`) did: how many
    orders it cancelled, the protective sells it kept resting (client order ID → why: the
    flatten cannot sell their position, so they are its only exit on the venue), and the open
    orders it could not read (each described with its key, coin and why: never cancelled, so
    they may still rest on the venue until the record is repaired or they are cancelled there
    by hand)."""

    cancelled: int = 0
    kept: Mapping[str, str] = field(default_factory=dict)
    unreadable: tuple[str, ...] = ()
    # a sweep keeping protection (the go-live rollback): each position held with no protective
    # sell on the venue (symbol → why): nothing may be sent while the switch holds, so it has
    # no exit there until an operator decides
    unprotected: Mapping[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class ReconcileReport:
    """What one :meth:`ExecutionService.reconcile` did: NEW orders sent and cancelled, open
    orders moved by the venue's answer or expired, fills that reached their position late."""

    resent_new: int = 0
    cancelled_new: int = 0
    updated: int = 0
    expired: int = 0
    fills: int = 0
    # the kill-switch sweep that ended it (None: the switch was off)
    sweep: SweepReport | None = None


@dataclass
class ExecutionService:
    orders: OrderLedger
    positions: PositionLedger
    kill_switch: KillSwitch
    risk: RiskLevelSource
    exchange: OrderGateway
    clock: Clock
    metrics: Metrics
    guard: RiskGuard = field(default_factory=RiskGuard)
    clusters: Mapping[str, str] = field(default_factory=dict)
    mode: str = "paper"
    # A SUBMITTED order the venue does not show yet is looked up again after absent_grace,
    # then at doubling intervals up to absent_max_interval, and settled as not placed
    # (EXPIRED, never resent) once the venue can no longer execute its request: its request
    # window (``capabilities.request_window_ms``: Binance's recvWindow, ...) plus
    # absent_query_lag (a venue may briefly not show a new order to a query by client ID) has
    # passed since it was sent; after absent_horizon on a venue with no known window.
    absent_grace: timedelta = timedelta(minutes=2)
    absent_max_interval: timedelta = timedelta(hours=1)
    absent_query_lag: timedelta = timedelta(minutes=5)
    absent_horizon: timedelta = timedelta(hours=24)
    resume_new_within: timedelta = timedelta(minutes=10)
    # a protective stop's limit sits this fraction below its trigger: room for the fall
    # through the trigger to still fill (a stop-limit that cannot fill protects nothing)
    protective_limit_offset: Decimal = Decimal("0.05")
    # a remainder worth less than this (quote currency, at its fill price) after a sell is dust
    # as the scan counts it (``dust_value_usd``): its episode ends like the venue's own dust
    dust_value: Decimal = Decimal("10")
    consecutive_exchange_errors: int = 0
    # Run once before the first reconcile (the wiring indexes orders recorded before the
    # open-orders index existed).
    prepare: Callable[[], object] | None = None
    _book: _Book | None = field(default=None, init=False, repr=False)
    # orders this run moved to a terminal status (or read as terminal): tombstones that
    # override the eventually consistent open-orders index, which may still list them as open
    # for a moment (the service is built per cycle; a terminal status is final)
    _settled_here: set[str] = field(default_factory=set, init=False, repr=False)
    # the latest record of each order this run wrote and holds open: laid over every fresh
    # read of the index, which may not list an order written a moment ago yet
    _open_here: dict[str, RecordedOrder] = field(default_factory=dict, init=False, repr=False)
    # the context of the cycle being run (see :meth:`reconcile`); None outside a cycle
    _context: CycleContext | None = field(default=None, init=False, repr=False)
    # the OCO lists whose cancel this reconcile sent again (once per list for both legs)
    _lists_recancelled: set[str] = field(default_factory=set, init=False, repr=False)
    # how many writes to the orders or positions this service attempted (each counted, done
    # or not: a conditional write that lost means the book moved too): a reader of the whole
    # book keeps its read while this is unchanged (see ``TradingCycle.valuation``)
    book_writes: int = field(default=0, init=False)

    # ------------------------------------------------------------------ book writes

    def _update_status(self, client_order_id: str, change: StatusChange) -> bool:
        self.book_writes += 1
        return self.orders.update_status(client_order_id, change)

    def _note(self, client_order_id: str, expected: OrderStatus, facts: OrderFacts) -> bool:
        self.book_writes += 1
        return self.orders.note(client_order_id, expected, facts)

    def _record(self, order: Order) -> bool:
        self.book_writes += 1
        return self.orders.record(order)

    def _settle(self, client_order_id: str) -> bool:
        self.book_writes += 1
        return self.orders.settle(client_order_id)

    def _save_position(
        self, position: Position, expected_version: int | None, at: datetime
    ) -> bool:
        self.book_writes += 1
        return self.positions.save(position, expected_version, at)

    # ------------------------------------------------------------------ submit

    def submit(
        self,
        intent: OrderIntent,
        *,
        equity: Money | None,
        quote: MarketQuote | None,
        context: CycleContext | None = None,
    ) -> ExecutionResult:
        """Send ``intent`` at most once (see the module docstring for the path). Within a
        trading cycle, ``context`` carries its clusters and go-live stage (the cycle passes the
        same one it reconciled with)."""
        if context is not None:
            self._context = context
        kill = self.kill_switch.status()
        if kill.on:
            coid = intent.client_order_id
            if not kill.known:
                return self._rejected(
                    coid,
                    "kill_switch_unknown",
                    f"kill-switch unreadable, nothing sent: {kill.reason}",
                )
            self.cancel_open_orders(
                f"kill-switch on: {kill.reason}",
                keep_protection=rollback_engaged(
                    golive_rollback=kill.golive_rollback, actor=kill.actor, reason=kill.reason
                ),
            )
            return self._rejected(coid, "kill_switch", f"kill-switch is on: {kill.reason}")
        book = self._load_book()
        unknown = book.blocks(intent.symbol.value) if intent.side is Side.BUY else None
        if unknown is not None:
            return self._rejected(
                intent.client_order_id,
                "book_unreadable",
                f"no entry while the book of {intent.symbol} cannot be read: {unknown}",
            )
        if (
            intent.intent is Intent.CLOSE
            and intent.side is Side.SELL
            and intent.position_key is None
        ):
            position = self._position(intent.symbol.value)
            if position is not None:
                book.positions[intent.symbol.value] = position
            held = _held(position)
            try:
                dust = self.dust(intent.symbol.value, held, intent.reference_price.value)
                venue = self.exchange
                if dust is None and held > 0 and isinstance(venue, MarketRulesGateway):
                    # the market sell is sized at the venue's last price: unreadable, nothing
                    # could be sent, and no close attempt is spent on a record never sent
                    venue.last_price(intent.symbol)
            except MarketRulesUnknownError as exc:
                # no verdict on dust or not: no close attempt is spent, the next cycle decides
                self._exchange_error()
                return ExecutionResult(
                    intent.client_order_id.value,
                    RULES_UNKNOWN,
                    f"{exc}: nothing recorded or sent, the next cycle closes it",
                )
            if dust is not None:
                # no close attempt is spent on it: the venue would only refuse it
                return ExecutionResult(
                    intent.client_order_id.value,
                    DUST,
                    f"{dust}: the position is closed for trading, no close is sent",
                )
            intent, live = resolve_close(intent, position_episode(position), self._status_of)
            if live is not None:
                coid = intent.client_order_id
                return self._duplicate(coid, live, "this position is being closed")
        coid = intent.client_order_id
        existing = self.orders.find(coid.value)
        if existing is not None:
            return self._duplicate(coid, existing.status, "this decision was already ordered")
        closing = intent.intent is Intent.CLOSE and intent.side is Side.SELL
        now = self.clock.now()
        verdict = self._guard().evaluate(
            intent,
            equity=equity,
            level=self.risk.load().level,
            kill_switch_on=False,
            kill_switch_reason="",
            exposure=self.exposure(),
            quote=quote,
            now=now,
            # a close may sell what its protective stop locks: the stop is cancelled below,
            # once the close is approved, before anything is sent
            holding=self._holding(
                intent.symbol.value, include_new=True, without_protective=closing
            ),
        )
        if not verdict.approved or verdict.quantity is None:
            return self._rejected(coid, verdict.rule, verdict.reason)
        quantity = verdict.quantity
        if closing and self.protective_stops_supported():
            cleared = self._clear_for_close(intent, quantity)
            if isinstance(cleared, ExecutionResult):
                return cleared
            quantity = cleared
        order = Order.new(
            intent,
            created_at=now,
            mode=self.mode,
            quantity=quantity,
            risk_rule=verdict.rule,
            risk_reason=verdict.reason,
        )
        # the conditional insert keyed on the client order ID is the one write that decides
        # between concurrent submissions (and dedups the decision for good)
        if not self._record(order):
            self.metrics.add("DuplicateOrdersPrevented", 1)
            return ExecutionResult(coid.value, "duplicate", "order already recorded")
        recorded = RecordedOrder(order)
        self._remember(recorded)
        return self._send(recorded)

    def dust(self, symbol: str, quantity: Decimal, price: Decimal) -> str | None:
        """``quantity`` of ``symbol`` held, when it is dust on this venue (what no sell can be
        placed for: below the venue's minimum amount or notional at ``price`` once floored to
        its amount step), described with its quantity and value; else None. A venue without
        rules (the paper venue) has no dust. A venue whose rules cannot be read now (a markets
        load that timed out) gives no verdict: :class:`MarketRulesUnknownError`, and the caller
        abstains (neither closed as dust nor an attempt spent)."""
        venue = self.exchange
        if quantity <= 0 or price <= 0 or not isinstance(venue, MarketRulesGateway):
            return None
        try:
            market = venue.market(Symbol(symbol))
        except MarketRulesUnknownError:
            raise
        except (RetryableExchangeError, InvalidPayloadError) as exc:
            raise MarketRulesUnknownError(
                str(exc.exchange), "market", f"the venue's rules are unknown: {exc}"
            ) from exc
        except ExchangeError:
            return None  # not listed: the venue decides (and refuses) as before
        why = dust_reason(market, quantity, price)
        if why is None:
            return None
        value = (quantity * price).quantize(Decimal("0.00000001")).normalize()
        return (
            f"dust: {quantity.normalize():f} {market.base} held (worth {value:f} {market.quote} "
            f"at {price.normalize():f}), {why} of {market.exchange}"
        )

    def _clear_for_close(
        self, intent: OrderIntent, approved: Quantity
    ) -> ExecutionResult | Quantity:
        """The quantity an approved close may sell once its position's protective stops are
        cancelled (the venue locks what a stop would sell: cancelled exactly once before the
        close is recorded and sent), or why nothing is sold: a stop not confirmed cancelled yet
        (``protective_pending``), or one that filled and closed the position
        (``closed_at_venue``). A stop that filled leaving a dust sells only that dust."""
        coid = intent.client_order_id
        symbol = intent.symbol.value
        released = self._release_protection(symbol, f"closing ({intent.strategy})")
        if released == "pending":
            return self._rejected(
                coid,
                "protective_pending",
                "the position's protective stop is not cancelled yet at the venue: "
                "nothing sold, the next cycle retries",
            )
        if released != "filled":
            return approved
        left = _held(self._position(symbol))
        if left <= 0:
            return ExecutionResult(
                coid.value,
                CLOSED_AT_VENUE,
                "the protective stop filled on the venue: the position is closed, "
                "nothing sold again",
            )
        # the stop sold the holding floored to the lot step: the close sells what is left
        # (a dust the venue may refuse below its minimum), never the size approved before
        return Quantity(min(left, approved.value))

    def _send(self, record: RecordedOrder, quantity: Decimal | None = None) -> ExecutionResult:
        """NEW → SUBMITTED, then the venue. ``quantity`` replaces the recorded one (a RiskGuard
        reduction at dispatch) in the same conditional write."""
        order = record.order
        coid, symbol, side = order.client_order_id, order.symbol, order.side
        now = self.clock.now()
        qty = record.quantity if quantity is None else quantity
        if side is Side.SELL:
            refused, qty = self._last_sell_check(record, qty)
            if refused is not None:
                return refused
        submission = self._submission(now, quantity=qty)
        if not self._update_status(coid.value, submission):
            return self._duplicate(coid, self._status_of(coid.value), "another worker sends it")
        self._remember(record.after(submission))
        started = time.perf_counter()
        try:
            placed = self.exchange.create_order(
                symbol,
                side,
                order.order_type,
                Quantity(qty),
                None,
                coid,
            )
        except OrderStateUnknownError as exc:
            self._exchange_error()
            return self._reconcile_after_timeout(
                coid, symbol, str(exc), rate_limited=exc.rate_limited, counted=True
            )
        except InvalidPayloadError as exc:
            # the call returned: the venue answered, maybe with the order, in a form we cannot
            # read. That is not a refusal: reconcile by client ID.
            self.consecutive_exchange_errors = 0
            return self._reconcile_after_timeout(coid, symbol, f"unreadable acknowledgement: {exc}")
        except MarketRulesUnknownError as exc:
            # nothing was sent and the venue refused nothing: not placed, never REJECTED
            self._exchange_error()
            return self._not_placed(coid, f"{exc}: nothing sent, not placed")
        except FatalExchangeError as exc:
            self.consecutive_exchange_errors = 0  # the venue answered: it is up
            return self._rejected_by_venue(coid, str(exc))
        self.consecutive_exchange_errors = 0
        self.metrics.add("OrdersSent", 1)
        self.metrics.add("OrderLatency", (time.perf_counter() - started) * 1000, "Milliseconds")
        return self._result(self._apply(coid, placed))

    def _submission(
        self,
        now: datetime,
        *,
        quantity: Decimal | None = None,
        stop: Decimal | None = None,
        limit: Decimal | None = None,
    ) -> StatusChange:
        """NEW → SUBMITTED at ``now``, recording the venue it is sent to (a scan's decision is
        recorded before any venue is known) and what is sent: a size the RiskGuard changed at
        dispatch, a stop's trigger and limit prices."""
        return StatusChange(
            _S.NEW,
            _S.SUBMITTED,
            now,
            OrderFacts(
                quantity=None if quantity is None else Quantity(quantity),
                submitted_at=now,
                mode=self.mode,
                stop_price=None if stop is None else Price(stop),
                limit_price=None if limit is None else Price(limit),
            ),
        )

    def _last_sell_check(
        self, record: RecordedOrder, qty: Decimal
    ) -> tuple[ExecutionResult | None, Decimal]:
        """A sell against a fresh read of its position and of the sells already at the venue
        (another worker may have sent one since this run read its book): refused when nothing
        is left to sell, reduced to what is left otherwise. Either is an anomaly: alarmed."""
        coid = record.key
        symbol = record.symbol
        position = self._position(symbol)
        # the index (another worker's sells) joined with this run's own writes, which the
        # eventually consistent index may not show yet: the stricter view wins
        live = {o.key: o for o in self._indexed(symbol)}
        live.update((k, o) for k, o in self._load_book().orders.items() if o.symbol == symbol)
        room = holding(symbol, position, live.values(), exclude=coid)
        intent = _intent_of(record.order, qty)
        verdict = cap_sell(intent, room)
        if verdict.approved and verdict.quantity is not None and verdict.rule == "ok":
            return None, qty
        self.metrics.add(OVERSELL_METRIC, 1)
        if verdict.approved and verdict.quantity is not None:
            return None, verdict.quantity.value
        why = f"oversell refused: {verdict.reason}"
        self._forget(
            coid,
            settled=self._update_status(
                coid,
                StatusChange(_S.NEW, _S.CANCELED, self.clock.now(), OrderFacts(cancel_reason=why)),
            ),
        )
        return ExecutionResult(coid, "rejected", why, verdict.rule), qty

    def _rejected_by_venue(self, coid: ClientOrderId, why: str) -> ExecutionResult:
        """A sent order the venue refused (nothing placed): SUBMITTED → REJECTED with why."""
        rejected = self._update_status(
            coid.value,
            StatusChange(
                _S.SUBMITTED, _S.REJECTED, self.clock.now(), OrderFacts(reject_reason=why)
            ),
        )
        self._forget(coid.value, settled=rejected)
        self.metrics.add("OrdersRejectedByExchange", 1)
        return ExecutionResult(coid.value, _S.REJECTED.value, why, "exchange")

    def _reconcile_after_timeout(
        self,
        coid: ClientOrderId,
        symbol: Symbol,
        what: str,
        *,
        rate_limited: bool = False,
        not_placed: Callable[[ClientOrderId, str], ExecutionResult] | None = None,
        counted: bool = False,
    ) -> ExecutionResult:
        """A create whose answer was lost, unreadable or refused by the rate limit: the order
        looked up by client ID. Found → recorded (``OrdersReconciled``). Absent after a
        rate-limit refusal (HTTP 429: answered before any matching, nothing in flight): not
        placed, settled by ``not_placed``: REJECTED for an entry (:meth:`_rejected_by_venue`,
        never resent), EXPIRED for a protective stop (:meth:`_not_placed`: the next cycle
        places the next attempt). Absent otherwise: left SUBMITTED for :meth:`reconcile`.

        ``counted``: the create's failure was counted as an exchange error already; a failed
        lookup is part of the same operation and is not counted again (a placed order whose
        trades the venue has not indexed yet fails both: one error, not two)."""
        try:
            found = self.exchange.fetch_order_by_client_id(symbol, coid)
        except ExchangeError as lookup:
            if not counted:
                self._exchange_error()
            return ExecutionResult(
                coid.value,
                _S.SUBMITTED.value,
                f"{what}; lookup failed ({lookup}): left SUBMITTED for reconcile",
            )
        if found is None and rate_limited:
            # the venue refused the create (429) and holds no order with our client ID: nothing
            # was placed, and nothing is still in flight. Settled now, never resent.
            settle = self._rejected_by_venue if not_placed is None else not_placed
            return settle(coid, f"{what}; the venue holds no order with this client id: not placed")
        if found is None:
            return ExecutionResult(
                coid.value,
                _S.SUBMITTED.value,
                f"{what}; not at the venue yet: left SUBMITTED for reconcile, not resent",
            )
        self.metrics.add("OrdersReconciled", 1)
        return self._result(self._apply(coid, found))

    # ------------------------------------------------------------------ reconcile / cancel

    def reconcile(self, context: CycleContext | None = None) -> ReconcileReport:
        """Bring every indexed order in line with the venue and every fill into positions.

        With a ``context`` (the trading cycle's), each NEW order recorded by someone else (the
        scan's decisions) is re-checked by the RiskGuard before it is sent, on the context's
        equity, quotes, clusters and go-live stage; without one (a restart's recovery), NEW
        orders are sent as recorded (they passed the RiskGuard when they were recorded).

        Run on start and by every execution cycle, over the open-orders index only. NEW orders
        were never sent (SUBMITTED is written before sending): each is sent if still valid and
        the kill-switch (read before every order) is off, CANCELED when no longer valid or the
        switch reads ON, and left NEW while the switch cannot be read, see :meth:`_admit`.
        Open orders are looked up by client ID; one the venue does not show is looked up again
        at growing intervals and EXPIRED (not placed) only once the venue can no longer execute
        its request (:meth:`absent_settle_after`). A finished order whose
        fill has not reached its position yet gets it, and leaves the index.
        """
        counts = ReconcileReport()
        if self.prepare is not None:
            self.prepare()
            self.prepare = None
        self._context = context
        self._lists_recancelled = set()
        now = self.clock.now()
        book = self._load_book(fresh=True)
        # oldest decisions first and, within one scan, best ranked first: when the limits
        # leave room for only some of them, the scan's order of preference decides
        ledger = sorted(
            book.open_orders(),
            key=lambda o: (o.order.created_at, o.order.rank or 0, o.key),
        )
        for order in ledger:
            try:
                self._reconcile_one(order, now, counts)
            except _UNREADABLE_BOOK as exc:
                # a stored record of this coin (its position, the order read again) cannot be
                # read: this order is left as stored, its coin blocked; the others go on
                why = f"{order.key} not reconciled: {type(exc).__name__}: {exc}"
                log.error("book of %s cannot be read: %s", order.symbol, why)
                self.metrics.add(mn.BOOK_RECORDS_UNREADABLE.name, 1)
                book.blocked.setdefault(order.symbol, why)
        kill = self.kill_switch.status()
        if kill.on and kill.known:
            counts.sweep = self.cancel_open_orders(
                f"kill-switch on: {kill.reason}",
                keep_protection=rollback_engaged(
                    golive_rollback=kill.golive_rollback, actor=kill.actor, reason=kill.reason
                ),
            )
        return counts

    def _reconcile_one(self, order: RecordedOrder, now: datetime, counts: ReconcileReport) -> None:
        """One indexed order of :meth:`reconcile`, its outcome added to ``counts``."""
        status = order.status
        coid = order.order.client_order_id
        if status is _S.NEW:
            action, why, quantity = self._admit(order, now)
            if action == "cancel":
                cancelled = self._update_status(
                    coid.value,
                    StatusChange(_S.NEW, _S.CANCELED, now, OrderFacts(cancel_reason=why)),
                )
                counts.cancelled_new += cancelled
                self._forget(coid.value, settled=cancelled)
            elif action == "send":
                self._send(order, quantity)
                counts.resent_new += 1
            return
        if status in OPEN_STATUSES:
            outcome = self._look_up(order, status, now)
            if outcome == "updated":
                counts.updated += 1
            elif outcome == "expired":
                counts.expired += 1
            return
        # terminal, still indexed: its fill has not reached the position yet
        stored = self.orders.find(coid.value) or order
        if self._apply_fill_to_position(stored):
            counts.fills += 1
        settled = stored.status in TERMINAL_STATUSES
        if settled:
            self._settle(coid.value)
        self._forget(coid.value, settled=settled)

    def _look_up(
        self, order: RecordedOrder, status: OrderStatus, now: datetime
    ) -> Literal["updated", "expired", "skipped"]:
        """One open order against the venue; which count it adds to."""
        coid, symbol = order.order.client_order_id, order.order.symbol
        due = order.facts.next_lookup_at if status is _S.SUBMITTED else None
        if due is not None and now < due:
            return "skipped"  # the venue did not show it; the next look is not due yet
        try:
            found = self.exchange.fetch_order_by_client_id(symbol, coid)
        except ExchangeError:
            self._exchange_error()
            return "skipped"
        if found is not None:
            resting = status is _S.CANCEL_PENDING and found.status in _RESTING
            if resting:
                found = self._cancel_again(order, found)
            final = self._apply(coid, found)
            if resting and final is not None and final.status is _S.PARTIALLY_FILLED:
                # its part filled is booked; the cancel has not taken yet: still asked for
                reason = order.facts.cancel_reason or "cancel not confirmed"
                if self._update_status(
                    coid.value,
                    StatusChange(
                        _S.PARTIALLY_FILLED,
                        _S.CANCEL_PENDING,
                        now,
                        OrderFacts(cancel_reason=reason),
                    ),
                ):
                    self._remember(final.with_status(_S.CANCEL_PENDING))
            return "updated"
        sent_at = order.sent_at
        if status is _S.CANCEL_PENDING and self._absent_settles(order, now):
            # its cancel was asked and the venue shows no such order past the wait: it never
            # landed (or was cancelled and is gone): settled, never left pending for good
            if self._update_status(coid.value, StatusChange(_S.CANCEL_PENDING, _S.CANCELED, now)):
                self._forget(coid.value, settled=True)
                self._count_cancelled(order)
                return "updated"
            return "skipped"
        if status is not _S.SUBMITTED:
            return "skipped"
        settle_after, window = self.absent_settle_after()
        if now - sent_at >= settle_after:
            why = (
                f"not found at the venue by client id {now - sent_at} after it was sent: "
                + (
                    f"past its request window ({window}) and {self.absent_query_lag} for the "
                    "venue's query lag, the venue can no longer execute it: not placed"
                    if window is not None
                    else f"not placed within {settle_after}"
                )
                + "; never resent (a new decision takes the next client id)"
            )
            if self._update_status(
                coid.value,
                StatusChange(_S.SUBMITTED, _S.EXPIRED, now, OrderFacts(expire_reason=why)),
            ):
                self._forget(coid.value, settled=True)
                return "expired"
            return "skipped"
        if now - sent_at >= self.absent_grace:
            looks = (order.facts.absent_lookups or 0) + 1
            wait = min(self.absent_grace * (2 ** (looks - 1)), self.absent_max_interval)
            # never looked at again later than when it can be settled
            wait = max(min(wait, sent_at + settle_after - now), timedelta(0))
            due_at = now + wait
            schedule = OrderFacts(absent_lookups=looks, next_lookup_at=due_at)
            if self._note(coid.value, _S.SUBMITTED, schedule):
                self._remember(order.noted(schedule))
        return "skipped"

    def _cancel_again(self, order: RecordedOrder, found: ExchangeOrder) -> ExchangeOrder:
        """A CANCEL_PENDING order the venue shows resting (it landed after its cancel, or the
        cancel did not take): its cancel is sent again, once in this reconcile, unless the
        kill-switch sweep at the end of it sends one (the switch reads ON). The venue's view
        after the cancel, else ``found``: whatever filled meanwhile is booked by the caller."""
        kill = self.kill_switch.status()
        if kill.on and kill.known:
            return found  # the sweep that ends this reconcile cancels it
        coid, symbol = order.order.client_order_id, order.order.symbol
        try:
            self._cancel_at_venue(order, self._lists_recancelled)
        except OrderNotFoundError:
            pass  # finished at the venue meanwhile: the lookup below says how
        except ExchangeError:
            self._exchange_error()
            return found  # left CANCEL_PENDING: the next reconcile sends it again
        try:
            after = self.exchange.fetch_order_by_client_id(symbol, coid)
        except ExchangeError:
            self._exchange_error()
            return found
        return found if after is None else after

    def _absent_settles(self, order: RecordedOrder, now: datetime) -> bool:
        """Whether an order under cancel (CANCEL_PENDING) the venue does not show by its client
        ID is settled CANCELED ``now``. One the venue confirmed (its exchange order id is
        recorded: it was seen at the venue) and that is gone: once ``absent_grace`` has passed
        since it was sent. One the venue never confirmed (its answer lost): only once the venue
        can no longer execute its request, :meth:`absent_settle_after` after it was sent, the
        rule of an absent SUBMITTED order. Until then it may rest or have filled at the venue,
        its lookup by client ID lagging: it stays CANCEL_PENDING and is looked up again."""
        waited = now - order.sent_at
        if order.facts.exchange_order_id:
            return waited >= self.absent_grace
        return waited >= self.absent_settle_after()[0]

    def absent_settle_after(self) -> tuple[timedelta, timedelta | None]:
        """How long after it was sent an order the venue does not show by its client ID is
        settled as not placed, and the venue's request window (None when it has none): past
        that window the venue rejects the request and never executes it, so once the window
        and the venue's query lag have passed, absent means never placed. Without a known
        window, ``absent_horizon``."""
        window_ms = self.exchange.capabilities.request_window_ms
        if window_ms is None:
            return self.absent_horizon, None
        window = timedelta(milliseconds=window_ms)
        return min(self.absent_horizon, window + self.absent_query_lag), window

    def _admit(self, order: RecordedOrder, now: datetime) -> tuple[str, str | None, Decimal | None]:
        """What to do with a NEW order now: ``("send", None, quantity to send or None = as
        recorded)``, ``("cancel", why, None)`` or ``("wait", why, None)`` (left NEW).

        A NEW order is sendable until its ``valid_until`` (a decision recorded by the scan says
        how long it stays valid), else for ``resume_new_within`` after it was recorded. With an
        cycle's context the RiskGuard decides again with today's level, exposure and quote; a
        smaller approved quantity is written onto the order before it is sent. A kill-switch
        that cannot be read sends nothing and cancels nothing: the order waits.
        """
        kill = self.kill_switch.status()  # read before every order (cached a few seconds)
        if kill.on:
            if not kill.known:
                return "wait", f"kill-switch unreadable: {kill.reason}", None
            return "cancel", "kill-switch on", None
        if order.protective:
            # recorded, then a crash before it was sent: never sent late (the position may
            # have moved); the cycle's protective step places the next attempt
            return "cancel", "protective stop never sent; the next one replaces it", None
        until = order.order.valid_until or order.order.created_at + self.resume_new_within
        if now > until:
            return (
                "cancel",
                f"never sent and no longer valid (valid until {until.isoformat()})",
                None,
            )
        unknown = self._load_book().blocks(order.symbol) if order.side is Side.BUY else None
        if unknown is not None:
            # left NEW (nothing lost): sent once its coin's book reads again, while valid
            return "wait", f"the book of {order.symbol} cannot be read: {unknown}", None
        context = self._context
        if context is None:
            return "send", None, None
        if context.halt_reason is not None and order.side is Side.BUY:
            self.metrics.add("OrdersRejectedByRisk", 1, dimensions={"rule": "golive_halted"})
            return "cancel", f"new entries halted: {context.halt_reason}", None
        intent = _intent_of(order.order, order.quantity)
        symbol = intent.symbol.value
        verdict = self._guard().evaluate(
            intent,
            equity=context.equity,
            level=self.risk.load().level,
            kill_switch_on=False,
            kill_switch_reason="",
            exposure=self.exposure(include_new=False),
            quote=context.quote(intent.symbol),
            now=now,
            holding=self._holding(symbol, exclude=order.key),
        )
        if not verdict.approved or verdict.quantity is None:
            self.metrics.add("OrdersRejectedByRisk", 1, dimensions={"rule": verdict.rule})
            return "cancel", f"rejected by RiskGuard rule {verdict.rule}: {verdict.reason}", None
        return "send", None, verdict.quantity.value

    def cancel_open_orders(self, reason: str, *, keep_protection: bool = False) -> SweepReport:
        """Cancel every NEW and open order (kill-switch): how many were cancelled, and the
        protective sells kept. ``keep_protection`` (the go-live rollback, and every sweep while
        the switch it engaged holds: ``domain.golive.rollback_engaged``): every protective sell
        on the venue of a held position is kept too (:meth:`_protection_of_held`).

        One exception, which only reduces risk: the protective sell resting on the venue (a
        stop, or both legs of an OCO list) of a position the flatten could not sell (the
        venue's minimum notional at the last price, its lot size: :meth:`_kept_by_sweep`) is
        kept, logged and reported; cancelled, it would leave that position with nothing on
        the venue.

        The sweep covers the open-orders index with this run's own writes laid over it (a stop
        the same cycle's reconcile just found resting is in it, whatever the lagging index
        says), and reads each order by key before its conditional write: a write that lost to
        a fresher status is retried from that status, never dropped. Every cancel is sent
        before any is checked, and each order's venue errors stay with that order: it is left
        CANCEL_PENDING for the next reconcile, the others go on."""
        cancelled = 0
        now = self.clock.now()
        pending: list[RecordedOrder] = []
        indexed = self._indexed()
        overlaid = self._overlaid(indexed)
        kept = self._kept_by_sweep(overlaid.values())
        if keep_protection:
            kept = self._protection_of_held(overlaid.values()) | kept
        for order in overlaid.values():
            if order.status in TERMINAL_STATUSES:
                continue  # finished (a terminal status is final): its fill is reconcile's
            if order.key in kept:
                continue
            moved = self._mark_cancel(order.key, reason, now)
            if moved == "cancelled":
                cancelled += 1
            elif moved is not None:
                pending.append(moved)
        sent: list[RecordedOrder] = []
        lists_cancelled: set[str] = set()
        for order in pending:
            try:
                self._cancel_at_venue(order, lists_cancelled)
            except OrderNotFoundError:
                pass  # already gone (filled or never arrived): the lookup below decides
            except ExchangeError:
                self._exchange_error()
                continue  # stays CANCEL_PENDING; the next reconcile retries
            sent.append(order)
        for order in sent:
            coid = order.order.client_order_id
            try:
                found = self.exchange.fetch_order_by_client_id(order.order.symbol, coid)
            except ExchangeError:
                self._exchange_error()
                continue  # stays CANCEL_PENDING; the next reconcile looks again
            if found is None and not self._absent_settles(order, self.clock.now()):
                # not shown (yet): never confirmed by the venue, it may still land or have
                # filled (its lookup lagging); confirmed, it went moments ago. It stays
                # CANCEL_PENDING: the next sweep cancels it again, or reconcile books what the
                # venue shows, or settles it once the venue can no longer execute it.
                continue
            if found is None:
                done = self._update_status(
                    coid.value, StatusChange(_S.CANCEL_PENDING, _S.CANCELED, self.clock.now())
                )
                if done:
                    self._forget(coid.value, settled=True)
                    self._count_cancelled(order)
            else:  # a protective stop the venue shows cancelled is counted by _apply
                done = _status(self._apply(coid, found)) is _S.CANCELED
            cancelled += done
        if cancelled:
            self.metrics.add("OrdersCancelledByKillSwitch", cancelled)
        for key, why in sorted(kept.items()):
            log.warning("kill-switch sweep (%s) keeps protective order %s: %s", reason, key, why)
        unreadable = tuple(bad.describe() for bad in indexed.unreadable)
        for described in unreadable:
            log.error(
                "kill-switch sweep (%s) cannot cancel the open %s: it may still rest on the "
                "venue (repair the record, or cancel it on the venue by hand)",
                reason,
                described,
            )
        unprotected = self._unprotected(overlaid.values(), kept) if keep_protection else {}
        for symbol, why in unprotected.items():
            log.warning("kill-switch sweep (%s): %s %s", reason, symbol, why)
        return SweepReport(cancelled, kept, unreadable, unprotected)

    def _unprotected(
        self, orders: Collection[RecordedOrder], kept: Mapping[str, str]
    ) -> dict[str, str]:
        """The positions held with no protective sell kept on the venue (symbol → why)."""
        protected = {order.symbol for order in orders if order.key in kept}
        return {
            symbol: (
                f"held ({position.quantity.normalize():f}) with no protective sell on the "
                "venue: none is placed while the kill-switch holds, so it has no exit there "
                "until an operator acts"
            )
            for symbol, position in sorted(self.positions.load_all().items())
            if position.quantity > 0 and symbol not in protected
        }

    def _kept_by_sweep(self, orders: Collection[RecordedOrder]) -> dict[str, str]:
        """The protective sells the sweep keeps resting (client order ID → why): those resting
        on the venue (ACCEPTED, or PARTIALLY_FILLED: a stop that triggered and sells the rest)
        for a position the venue would not let the flatten sell (the position read fresh; the
        venue's own sizing of a market sell of it). Both legs of an OCO list go together.

        When the venue's last price cannot be read, the sale is judged at the lowest limit
        price of the position's untriggered stops (a stop that has not triggered rests below
        the market: what passes there passes at the market); a stop that triggered (part sold:
        the market may be below its limit) or a take-profit leg (its limit above the market)
        gives no such price, and without one the sell is kept, in doubt; the reason says so."""
        venue = self.exchange
        if not self.protective_stops_supported() or not isinstance(venue, ProtectiveGateway):
            return {}
        resting: dict[str, list[str]] = {}
        limits: dict[str, list[Decimal]] = {}
        doubtful: set[str] = set()
        for order in orders:
            if not order.protective or order.side is not Side.SELL:
                continue
            if order.status in _RESTING:
                symbol = order.symbol
                resting.setdefault(symbol, []).append(order.key)
                untriggered_stop = (
                    order.status is _S.ACCEPTED
                    and order.order.order_type is OrderType.STOP_LOSS_LIMIT
                    and order.filled == 0
                )
                limit = order.facts.limit_price
                if untriggered_stop and limit is not None:
                    limits.setdefault(symbol, []).append(limit.value)
                elif order.status is _S.PARTIALLY_FILLED:
                    doubtful.add(symbol)
        kept: dict[str, str] = {}
        for symbol, coids in sorted(resting.items()):
            held, unreadable = self._held_or_why(symbol)
            if held is None:
                # the holding is unknown: the flatten cannot sell it either, and the stop only
                # sells, so it is kept (never the sweep of every other order stopped)
                why = (
                    f"{unreadable}: its protective sell stays resting on the venue, the only "
                    "exit of that position"
                )
                kept.update(dict.fromkeys(coids, why))
                continue
            if held <= 0:
                continue
            lowest = (
                None
                if symbol in doubtful
                else min((p for p in limits.get(symbol, []) if p > 0), default=None)
            )
            refusal = venue.market_sell_refusal(
                Symbol(symbol), Quantity(held), None if lowest is None else Price(lowest)
            )
            if refusal is None:
                continue
            why = (
                f"the flatten cannot sell the {held.normalize():f} held ({refusal}): its "
                "protective sell stays resting on the venue, the only exit of that position"
            )
            kept.update(dict.fromkeys(coids, why))
        return kept

    def _held_or_why(self, symbol: str) -> tuple[Decimal | None, str]:
        """The quantity held of ``symbol``, read fresh; None and why when its position record
        cannot be read (counted as an unreadable record)."""
        try:
            return _held(self._position(symbol)), ""
        except _UNREADABLE_BOOK as exc:
            self.metrics.add(mn.BOOK_RECORDS_UNREADABLE.name, 1)
            return None, f"the position cannot be read ({type(exc).__name__}: {exc})"

    def _protection_of_held(self, orders: Collection[RecordedOrder]) -> dict[str, str]:
        """The protective sells on the venue (resting, or sent and not yet confirmed) of every
        position still held, or whose record cannot be read (client order ID → why): a
        protective sell only reduces risk, and without it the position has no exit on the
        venue while nothing else may be sent."""
        by_symbol: dict[str, list[str]] = {}
        for order in orders:
            if order.protective and order.side is Side.SELL and order.status in _PROTECTING:
                by_symbol.setdefault(order.symbol, []).append(order.key)
        kept: dict[str, str] = {}
        for symbol, coids in sorted(by_symbol.items()):
            held, unreadable = self._held_or_why(symbol)
            if held is None:
                why = f"{unreadable}: its protective sell stays on the venue"
                kept.update(dict.fromkeys(coids, why))
                continue
            if held > 0:
                why = (
                    f"protects the {held.normalize():f} held: its protective sell stays on the "
                    "venue"
                )
                kept.update(dict.fromkeys(coids, why))
        return kept

    def _mark_cancel(
        self, key: str, reason: str, now: datetime
    ) -> Literal["cancelled"] | RecordedOrder | None:
        """One order of the sweep, read by key: NEW → CANCELED (``"cancelled"``), open →
        CANCEL_PENDING (the stored record, to cancel at the venue), None when it is finished
        (its fill is reconcile's to apply) or still contended. A conditional write that lost
        to a fresher status re-reads and moves on from that status."""
        for _ in range(_POSITION_RETRIES):
            stored = self.orders.find(key)
            if stored is None:
                return None
            status = stored.status
            if status in TERMINAL_STATUSES:
                return None
            if status is _S.NEW:
                if self._update_status(
                    key, StatusChange(_S.NEW, _S.CANCELED, now, OrderFacts(cancel_reason=reason))
                ):
                    self._forget(key, settled=True)
                    return "cancelled"
                continue
            if status is _S.CANCEL_PENDING or self._update_status(
                key,
                StatusChange(status, _S.CANCEL_PENDING, now, OrderFacts(cancel_reason=reason)),
            ):
                marked = stored.with_status(_S.CANCEL_PENDING)
                self._remember(marked)
                return marked
        return None  # moved by others on every read: the next sweep takes it up again

    # ------------------------------------------------------------------ protective stops

    def protective_stops_supported(self) -> bool:
        """Whether held positions get a stop resting on the venue (else the hourly exit rule
        alone protects them)."""
        venue = self.exchange
        return isinstance(venue, ProtectiveGateway) and venue.supports_protective_stops

    def protect_positions(
        self,
        stops: Mapping[str, Decimal],
        take_profits: Mapping[str, Decimal] | None = None,
        marks: Mapping[str, Decimal] | None = None,
    ) -> dict[str, str]:
        """Give each held position of ``stops`` (symbol → the exit rule's stop price) one
        protective stop on the venue for the quantity held; what happened, per symbol.

        Exactly once per position state: the stop's client ID is derived from the position's
        episode, the quantity held and the attempt (:func:`resolve_protective`) and recorded
        by the conditional insert before it is sent, so a retry, a restart or a redelivery finds
        it and sends nothing. A position that grew (a later partial fill of its entry) gets its
        old stop cancelled once and the new quantity's stop placed once. Nothing is placed
        while the kill-switch holds (or cannot be read), nor for a position being closed.

        On a venue with OCO order lists (Binance spot) a position with a take-profit price in
        ``take_profits`` gets one list instead of the plain stop: its take-profit resting as a
        ``LIMIT_MAKER`` sell beside the stop (:meth:`_place_protective_list`). A position the
        venue refused its list for rests with the plain stop; once its price (``marks``: the
        cycle's last close per symbol) is back between the stop and the take-profit, the list
        is tried again (:meth:`_list_retry_due`): the plain stop cancelled once, then the list
        placed (or, refused again, the plain stop at once). One position's error is logged,
        reported on it and counted (``PositionExitErrors``); the others are protected."""
        if not self.protective_stops_supported() or not stops:
            return {}
        kill = self.kill_switch.status()
        if kill.on:
            why = "no protective stop placed while the kill-switch holds"
            return dict.fromkeys(sorted(stops), why)
        self._load_book(fresh=True)
        profits = take_profits or {}
        prices = marks or {}
        done: dict[str, str] = {}
        for symbol, stop in sorted(stops.items()):
            try:
                done[symbol] = self._protect(symbol, stop, profits.get(symbol), prices.get(symbol))
            except Exception as exc:  # noqa: BLE001 - one position's error: the others go on
                why = position_failed(symbol, "protective step", exc, self.metrics)
                done[symbol] = f"{why}; the hourly exit rule still applies"
        return done

    def protective_lists_supported(self) -> bool:
        """Whether a held position's take-profit rests on the venue with its stop, as one OCO
        order list (else the hourly exit rule takes the profit)."""
        venue = self.exchange
        return isinstance(venue, OrderListGateway) and venue.supports_protective_order_lists

    def _protect(
        self,
        symbol: str,
        stop: Decimal,
        take_profit: Decimal | None = None,
        mark: Decimal | None = None,
        *,
        replacing: bool = False,
    ) -> str:
        """Protect the position of ``symbol`` at ``stop`` (and ``take_profit``).

        ``replacing``: a working plain stop was just cancelled to place the OCO list again, so
        a list the venue rate-limits falls back to the plain stop at once (one more request)
        rather than leaving the position with nothing resting until the next cycle."""
        book = self._load_book()
        position = book.positions.get(symbol)
        qty = _held(position)
        if qty <= 0:
            return "no position held"
        try:
            dust = self.dust(symbol, qty, stop)
        except MarketRulesUnknownError as exc:
            # no verdict: no stop attempt recorded or spent, the next cycle places it
            self._exchange_error()
            return f"{exc}: no protective stop sent this cycle, the next cycle places it"
        if dust is not None:
            return f"{dust}: closed for trading, no protective stop"
        sells = [o for o in book.open_orders() if o.symbol == symbol and o.side is Side.SELL]
        closing = [o for o in sells if not o.protective]
        if closing:
            return f"being closed by {closing[0].key}: no protective stop"
        unfinished = [o for o in sells if o.status is _S.CANCEL_PENDING]
        if unfinished:  # a cancel asked earlier (the kill-switch, a close) and not confirmed
            released = self._release(symbol, unfinished, "cancel not confirmed earlier")
            if released != "clear":
                return f"protective stop cancel {released}: nothing new placed this cycle"
        triggered = [
            o
            for o in sells
            if o.protective
            and o.status in OPEN_STATUSES
            and o.filled > 0
            # a take-profit leg that partly filled is no stop: the venue expired its list's
            # stop, so the rest gets a new list (or the plain stop) once that leg is cancelled
            and not o.take_profit
        ]
        if triggered:  # selling on the venue: never resized (see _protected_by_triggered)
            return self._protected_by_triggered(symbol, triggered[0])
        episode = position_episode(position)
        found = resolve_protective(Symbol(symbol), episode, qty, self._status_of)
        if found is None:
            return f"no protective stop: {self._why_unprotected(symbol, episode, qty)}"
        key, coid, status = found
        # the stop may be the OCO list's stop leg: neither of the list's legs is a stale order
        ids = protective_list_ids(Symbol(symbol), key)
        stale = [
            o
            for o in sells
            if o.protective and o.key not in {coid.value, ids.above.value, ids.below.value}
        ]
        if stale:  # the position grew (or shrank): its old stop goes first, once
            released = self._release(symbol, stale, f"resized to {qty}")
            if released == "filled" and all(o.take_profit for o in stale):
                # a take-profit leg that sold part (the venue expired its list's stop as it
                # started to fill): its fill is booked, the rest is protected in this cycle
                self._load_book(fresh=True)
                again = self._protect(symbol, stop, take_profit)
                return f"old take-profit {stale[0].key} cancelled; {again}"
            if released != "clear":
                return f"old protective stop {released}: the new one waits for the next cycle"
        if status in UNCONFIRMED_STATUSES:
            # in flight: never placed again while the venue could still execute its request,
            # and no protection either until the venue shows it resting
            return (
                f"not protected yet: stop {coid.value} not confirmed by the venue "
                f"({status.value}); looked up by client id, never re-sent, settled as not "
                "placed once the venue can no longer execute it (the next cycle places the next)"
            )
        if status is not None and self._list_retry_due(symbol, key, coid, stop, take_profit, mark):
            assert take_profit is not None  # checked by _list_retry_due
            plain = self.orders.find(coid.value)
            released = self._release(
                symbol, [] if plain is None else [plain], f"the OCO list is placed again: the "
                f"price {mark} is back below its take-profit {take_profit}"
            )  # fmt: skip
            if released != "clear":
                return (
                    f"protected by stop {coid.value}: its cancel to place the OCO list again is "
                    f"{released}; the next cycle looks again"
                )
            # the next attempt: its list first (the plain stop at once if it is not placed)
            again = self._protect(symbol, stop, take_profit, replacing=True)
            return f"plain stop {coid.value} cancelled to place the OCO list again; {again}"
        if status is not None:
            return f"protected by stop {coid.value} ({status.value})"
        if (
            take_profit is not None
            and take_profit > stop
            and self.protective_lists_supported()
            and self._status_of(ids.below.value) is None  # this attempt's list not tried yet
        ):
            placed = self._place_protective_list(
                symbol, position, key, qty, stop, take_profit, replacing=replacing
            )
            if not isinstance(placed, _ListRefused):
                return placed
            # the venue refused the list (a leg's price, a filter, the open orders' count):
            # both legs settled as not placed, the plain stop at once
            again = self._protect(symbol, stop)
            return f"OCO list not placed ({placed.why}); {again}"
        return self._place_protective(symbol, position, key, coid, qty, stop)

    def _list_retry_due(
        self,
        symbol: str,
        key: str,
        coid: ClientOrderId,
        stop: Decimal,
        take_profit: Decimal | None,
        mark: Decimal | None,
    ) -> bool:
        """Whether the plain stop ``coid`` resting for the position state ``key`` is to give
        way to the OCO list the venue refused in its attempt: the venue takes lists, the stop
        rests untouched (nothing of it filled), the refusing condition is gone (the last close
        ``mark`` is back strictly between the stop and the take-profit: a list refused because
        the price was past a leg, e.g. its take-profit at or below the best bid, -2010), and
        the retry stays in the first half of the position state's attempts (each retry the
        venue refuses again spends one; the rest stays for the plain stop's own retries, so a
        price hovering at the take-profit never spends them all). Otherwise the plain stop
        keeps resting and the hourly exit rule takes the profit."""
        if take_profit is None or mark is None or not stop < mark < take_profit:
            return False
        if not self.protective_lists_supported():
            return False
        sym = Symbol(symbol)
        if coid != protective_order_id(sym, key):
            return False  # the stop is a leg of a list that rests
        if protective_attempt(key) + 1 >= MAX_PROTECT_ATTEMPTS // 2:
            return False
        refused = self._status_of(protective_list_ids(sym, key).below.value)
        if refused not in {_S.EXPIRED, _S.REJECTED}:
            return False  # the attempt never tried a list (e.g. no take-profit then)
        stored = self._load_book().orders.get(coid.value) or self.orders.find(coid.value)
        return stored is not None and is_resting_stop(stored)

    def _why_unprotected(self, symbol: str, episode: str, qty: Decimal) -> str:
        """Why :func:`resolve_protective` gave no stop for this position state: the venue
        refused its plain stop (its rules do not take it), or every attempt was spent without
        one placed (the price kept through the stop, cancels)."""
        for attempt in range(MAX_PROTECT_ATTEMPTS):
            coid = protective_order_id(Symbol(symbol), protective_key(episode, qty, attempt))
            status = self._status_of(coid.value)
            if status is _S.REJECTED:
                order = self.orders.find(coid.value)
                why = (None if order is None else order.facts.reject_reason) or "refused"
                return (
                    f"the venue refused the stop {coid.value} ({why}); the hourly exit rule "
                    "protects it"
                )
        return (
            f"{MAX_PROTECT_ATTEMPTS} attempts for this position state ended without a stop "
            "resting (not placed: the price through the stop; or cancelled); the hourly exit "
            "rule protects it"
        )

    def _protected_by_triggered(self, symbol: str, stop: RecordedOrder) -> str:
        """A protective stop that triggered and partly filled is still selling on the venue:
        its fill is booked (the position shrank by what it sold) and what still rests protects
        what is left. It is never cancelled to be resized: a replacement at the same stop price
        would be refused (the price is through it) and the holding left without a stop."""
        coid = stop.key
        stored = self.orders.find(coid) or stop
        self._apply_fill_to_position(stored)
        held = _held(self._load_book().positions.get(symbol))
        return (
            f"protected by stop {coid} ({stored.status.value}): triggered on the venue, sold "
            f"{stored.filled} of {stored.quantity}, the rest still rests there for the {held} "
            "held (never resized while it sells)"
        )

    def _place_protective(
        self,
        symbol: str,
        position: Position | None,
        key: str,
        coid: ClientOrderId,
        qty: Decimal,
        stop: Decimal,
    ) -> str:
        """The plain stop of the position state ``key`` (``STOP_LOSS_LIMIT``), recorded then
        sent once (:meth:`_send_protective`). A refusal by the venue is REJECTED (it ends the
        position state's stops: its rules do not take it); a price already through the stop
        is not placed (EXPIRED: the next cycle places the next attempt)."""
        limit = stop * (Decimal(1) - self.protective_limit_offset)
        sym = Symbol(symbol)
        venue = self.exchange
        assert isinstance(venue, ProtectiveGateway)  # checked by protect_positions

        def create() -> dict[ClientOrderId, ExchangeOrder]:
            placed = venue.create_stop_order(sym, Quantity(qty), Price(stop), Price(limit), coid)
            return {coid: placed}

        def lookup() -> dict[ClientOrderId, ExchangeOrder] | None:
            found = venue.fetch_order_by_client_id(sym, coid)
            return None if found is None else {coid: found}

        order = self._protective_order(
            symbol, position, key, coid, qty, stop, OrderType.STOP_LOSS_LIMIT
        )
        sent = self._send_protective(
            [(order, stop, limit)],
            create,
            lookup,
            refusal_ends=True,
            through=(
                ImmediateTriggerError,
                "the price is through the stop, not placed; the hourly exit rule protects the "
                "position and the next cycle places the next attempt",
            ),
        )
        if sent.outcome == "duplicate":
            return f"protective stop {coid.value} already recorded: not sent again"
        if sent.outcome == "contended":
            return f"protective stop {coid.value} is being sent by another worker"
        status = sent.status(coid)
        if status not in {_S.REJECTED.value, _S.EXPIRED.value}:
            self.metrics.add("ProtectiveStopsPlaced", 1)
        why = f" ({sent.why})" if sent.why else ""
        return f"protective stop {coid.value} for {qty} at {stop} (limit {limit}): {status}{why}"

    def _protective_order(
        self,
        symbol: str,
        position: Position | None,
        key: str,
        coid: ClientOrderId,
        qty: Decimal,
        reference: Decimal,
        kind: OrderType,
        list_id: ClientOrderId | None = None,
    ) -> Order:
        """A protective sell of the position state ``key`` (a plain stop or a leg of its
        list), as recorded before it is sent."""
        now = self.clock.now()
        opened = (None if position is None else position.opened_at) or now
        return Order(
            client_order_id=coid,
            symbol=Symbol(symbol),
            side=Side.SELL,
            intent=Intent.PROTECT,
            strategy=PROTECTIVE_STRATEGY,
            signal_bar_ms=ms_from_utc(opened),
            quantity=Quantity(qty),
            reference_price=Price(reference),
            created_at=now,
            mode=self.mode,
            order_type=kind,
            position_key=key,
            list_client_order_id=list_id,
        )

    def _send_protective(
        self,
        orders: list[tuple[Order, Decimal | None, Decimal | None]],
        create: Callable[[], Mapping[ClientOrderId, ExchangeOrder]],
        lookup: Callable[[], Mapping[ClientOrderId, ExchangeOrder] | None],
        *,
        refusal_ends: bool,
        through: tuple[type[FatalExchangeError], str],
    ) -> _Sent:
        """Send one protective order (a plain stop, or the legs of one OCO list) exactly once,
        whatever the venue answers. ``orders``: each order with the stop and limit prices its
        SUBMITTED write adds; the first one's conditional insert (and its NEW → SUBMITTED) is
        the write that decides between workers. ``create`` is the one venue call (never retried), answering
        each order by its client ID; ``lookup`` finds them by client ID after a lost answer.

        The venue's answer, mapped in one place:

        * accepted → each order moved to the venue's status (``placed``);
        * a timeout, a 5xx or an unreadable answer → looked up by client ID, never resent:
          found → recorded (``reconciled``, ``OrdersReconciled``); absent after a rate-limit
          refusal (HTTP 429: nothing in flight) → not placed, EXPIRED (``rate_limited``: the
          next cycle places the next attempt); absent otherwise, or the lookup failed → left
          SUBMITTED for :meth:`reconcile` (``pending``);
        * the venue's rules unreadable (:class:`MarketRulesUnknownError`: nothing was sent) →
          not placed, EXPIRED (``not_sent``, one ``ExchangeErrors``): no verdict;
        * the price already through a trigger (``through``: the error that says so, and why
          the order is not placed: a stop's "would trigger immediately", an OCO list's prices
          no longer around the last price) → not placed, EXPIRED (``through``): no verdict on
          the position state;
        * any other refusal (``refused``, one ``OrdersRejectedByExchange``): REJECTED when
          ``refusal_ends`` (the plain stop: the venue's rules do not take it, which ends the
          position state's stops), else EXPIRED (a list: the plain stop follows)."""
        now = self.clock.now()
        coids = [order.client_order_id for order, _, _ in orders]
        records: list[RecordedOrder] = []
        for order, _stop, _limit in orders:
            if self._record(order):
                records.append(RecordedOrder(order))
                continue
            if not records:
                self.metrics.add("DuplicateOrdersPrevented", 1)
                return _Sent("duplicate")
            records.append(self.orders.find(order.client_order_id.value) or RecordedOrder(order))
        for record in records:
            self._remember(record)
        for (order, stop, limit), record in zip(orders, records, strict=True):
            submission = self._submission(now, stop=stop, limit=limit)
            moved = self._update_status(order.client_order_id.value, submission)
            if not moved and order.client_order_id == coids[0]:
                return _Sent("contended")
            self._remember(record.after(submission))
        try:
            answer = create()
        except OrderStateUnknownError as exc:
            self._exchange_error()
            return self._look_up_protective(coids, lookup, str(exc), exc.rate_limited, counted=True)
        except InvalidPayloadError as exc:
            # the call returned: the venue answered, maybe with the order, in a form we cannot
            # read. That is not a refusal: looked up by client ID.
            self.consecutive_exchange_errors = 0
            return self._look_up_protective(coids, lookup, f"unreadable acknowledgement: {exc}")
        except MarketRulesUnknownError as exc:
            # nothing was sent and the venue refused nothing: not placed (EXPIRED), never the
            # REJECTED that ends the position state's stops
            self._exchange_error()
            why = f"{exc}: nothing sent, not placed; the next cycle places the next attempt"
            for coid in coids:
                self._not_placed(coid, why)
            return _Sent("not_sent", why, {c.value: _S.EXPIRED.value for c in coids})
        except through[0] as exc:
            self.consecutive_exchange_errors = 0
            why = f"{exc}: {through[1]}"
            for coid in coids:
                self._not_placed(coid, why)
            return _Sent("through", why, {c.value: _S.EXPIRED.value for c in coids})
        except FatalExchangeError as exc:
            self.consecutive_exchange_errors = 0  # the venue answered: it is up
            if refusal_ends:
                for coid in coids:
                    self._rejected_by_venue(coid, str(exc))
                return _Sent("refused", str(exc), {c.value: _S.REJECTED.value for c in coids})
            for coid in coids:
                self._not_placed(coid, f"{exc}: refused by the venue, not placed")
            self.metrics.add("OrdersRejectedByExchange", 1)  # one refusal, however many legs
            return _Sent("refused", str(exc), {c.value: _S.EXPIRED.value for c in coids})
        self.consecutive_exchange_errors = 0
        return _Sent("placed", "", self._apply_answer(coids, answer))

    def _look_up_protective(
        self,
        coids: list[ClientOrderId],
        lookup: Callable[[], Mapping[ClientOrderId, ExchangeOrder] | None],
        what: str,
        rate_limited: bool = False,
        *,
        counted: bool = False,
    ) -> _Sent:
        """A protective create whose answer was lost, unreadable or refused by the rate limit:
        looked up by client ID (see :meth:`_send_protective`), never resent. ``counted``: the
        create's failure was counted as an exchange error already; its failed lookup is part
        of the same operation and is not counted again."""
        submitted = {c.value: _S.SUBMITTED.value for c in coids}
        try:
            found = lookup()
        except ExchangeError as failed:
            if not counted:
                self._exchange_error()
            why = f"{what}; lookup failed ({failed}): left SUBMITTED for reconcile, not resent"
            return _Sent("pending", why, submitted)
        if found is None and rate_limited:
            why = f"{what}; the venue holds no order with this client id: not placed"
            for coid in coids:
                self._not_placed(coid, why)
            return _Sent("rate_limited", why, {c.value: _S.EXPIRED.value for c in coids})
        if found is None:
            why = f"{what}; not at the venue yet: left SUBMITTED for reconcile, not resent"
            return _Sent("pending", why, submitted)
        self.metrics.add("OrdersReconciled", 1)
        return _Sent("reconciled", "", self._apply_answer(coids, found))

    def _apply_answer(
        self, coids: list[ClientOrderId], answer: Mapping[ClientOrderId, ExchangeOrder]
    ) -> dict[str, str]:
        """The venue's view of each sent order applied (in ``coids``' order); their statuses."""
        return {c.value: _status_text(self._apply(c, answer[c])) for c in coids}

    def _place_protective_list(
        self,
        symbol: str,
        position: Position | None,
        key: str,
        qty: Decimal,
        stop: Decimal,
        take_profit: Decimal,
        *,
        replacing: bool = False,
    ) -> str | _ListRefused:
        """One OCO order list for the position state ``key``: the take-profit (``LIMIT_MAKER``,
        the above leg) and the stop (``STOP_LOSS_LIMIT``, the below leg, the stop's own ID).

        Both legs are orders of the ledger (intent PROTECT, ``list_client_order_id`` naming
        their list), recorded by the conditional insert before anything is sent: the stop leg
        first, its insert the one write that decides (a retry, a restart or a redelivery finds
        it and sends nothing). Then NEW → SUBMITTED and one create (:meth:`_send_protective`).
        A timeout or an unreadable answer looks the list up by its client ID (never re-sent); a
        429 settles both legs as not placed (EXPIRED: the next cycle places the next attempt;
        ``replacing`` a working stop, the caller places the plain stop at once instead).
        Any refusal (the price already past a leg, or a reason of one leg alone: the
        take-profit would match at once, ``PERCENT_PRICE_BY_SIDE``, ``MAX_NUM_ORDERS``) settles
        both legs as not placed too and returns :class:`_ListRefused` (the caller places the
        plain stop at once; only the plain stop is ever REJECTED, which ends the position
        state's stops). Each leg is then the venue's order: filled, expired or cancelled,
        booked like every order."""
        limit = stop * (Decimal(1) - self.protective_limit_offset)
        sym = Symbol(symbol)
        ids = protective_list_ids(sym, key)
        venue = self.exchange
        assert isinstance(venue, OrderListGateway)  # checked by the caller

        def legs(found: ExchangeOrderList) -> dict[ClientOrderId, ExchangeOrder]:
            return {ids.below: found.below, ids.above: found.above}

        def create() -> dict[ClientOrderId, ExchangeOrder]:
            return legs(
                venue.create_protective_oco(
                    sym, Quantity(qty), Price(take_profit), Price(stop), Price(limit), ids
                )
            )

        def lookup() -> dict[ClientOrderId, ExchangeOrder] | None:
            found = venue.fetch_order_list(sym, ids.list_id)
            return None if found is None else legs(found)

        def leg(coid: ClientOrderId, kind: OrderType, reference: Decimal) -> Order:
            return self._protective_order(
                symbol, position, key, coid, qty, reference, kind, ids.list_id
            )

        below = (leg(ids.below, OrderType.STOP_LOSS_LIMIT, stop), stop, limit)
        above = (leg(ids.above, OrderType.LIMIT_MAKER, take_profit), None, take_profit)
        sent = self._send_protective(
            [below, above],
            create,
            lookup,
            refusal_ends=False,
            # a take-profit the best bid reached ("would immediately match and take") is a
            # refusal of the list like any other: the plain stop follows
            through=(OrderListPricesError, "not placed"),
        )
        name = f"OCO list {ids.list_id.value}"
        if sent.outcome == "duplicate":
            return f"{name} already recorded: not sent again"
        if sent.outcome == "contended":
            return f"{name} is being sent by another worker"
        if sent.outcome == "through":
            return _ListRefused(f"the price is past a leg: {sent.why}")
        if sent.outcome == "refused":
            # a refusal of the list may concern its take-profit leg alone: the stop is still
            # wanted, so nothing here ends the position state's stops (the plain stop follows)
            return _ListRefused(f"refused by the venue: {sent.why}")
        if sent.outcome == "pending":
            return f"{name}: {sent.why}"
        if sent.outcome in {"rate_limited", "not_sent"} and replacing:
            # the plain stop that rested was cancelled for this list: nothing may stay
            # unprotected for a cycle, so this attempt's plain stop is placed at once
            return _ListRefused(f"not placed while replacing a working stop: {sent.why}")
        if sent.outcome in {"rate_limited", "not_sent"}:
            # a transient refusal: the attempt is spent without its plain stop, so the next
            # cycle places the next attempt's list (not the plain stop of this one)
            plain = protective_order_id(sym, key)
            skipped = self._record(
                self._protective_order(
                    symbol, position, key, plain, qty, stop, OrderType.STOP_LOSS_LIMIT
                )
            )
            if skipped:
                cancel = OrderFacts(cancel_reason=f"not sent: {sent.why}")
                self._update_status(
                    plain.value, StatusChange(_S.NEW, _S.CANCELED, self.clock.now(), cancel)
                )
            return f"{name}: EXPIRED ({sent.why})"
        self.metrics.add("ProtectiveStopsPlaced", 1)
        self.metrics.add("TakeProfitsPlaced", 1)
        return (
            f"{name} for {qty}: take-profit {take_profit} ({sent.status(ids.above)}), "
            f"stop {stop} limit {limit} ({sent.status(ids.below)})"
        )

    def _not_placed(self, coid: ClientOrderId, why: str) -> ExecutionResult:
        """A sent order the venue did not place (a protective stop; any order not sent because
        the venue's rules could not be read): SUBMITTED → EXPIRED with why (not REJECTED, which
        ends the walk for this position state for good): the next cycle places the next
        attempt."""
        expired = self._update_status(
            coid.value,
            StatusChange(_S.SUBMITTED, _S.EXPIRED, self.clock.now(), OrderFacts(expire_reason=why)),
        )
        self._forget(coid.value, settled=expired)
        return ExecutionResult(coid.value, _S.EXPIRED.value, why)

    def refresh_protective(self, assets: Collection[str]) -> int:
        """Look up at the venue the protective stops resting on ``assets`` (base assets) and
        book what they filled (the balance check's second read: a stop that triggered since
        the reconcile is the product's own sale, not a drift). How many were looked up."""
        looked = 0
        now = self.clock.now()
        for order in self._indexed():
            if not order.protective:
                continue
            if order.symbol.split("/")[0] not in assets:
                continue
            status = order.status
            if status in OPEN_STATUSES:
                self._look_up(order, status, now)
                looked += 1
        return looked

    def _release_protection(
        self, symbol: str, reason: str
    ) -> Literal["clear", "pending", "filled"]:
        """Cancel the live protective stops of ``symbol`` (see :meth:`_release`)."""
        live = [
            o
            for o in self._indexed(symbol)
            if o.protective and o.side is Side.SELL and o.status not in TERMINAL_STATUSES
        ]
        return self._release(symbol, live, reason) if live else "clear"

    def _release(
        self, symbol: str, stops: list[RecordedOrder], reason: str
    ) -> Literal["clear", "pending", "filled"]:
        """Cancel each of ``stops`` exactly once: CANCEL_PENDING by a conditional write, the
        cancel by client ID (which sends nothing for an order the venue already finished), then
        the venue's view applied. A stop that had triggered books its fill from the venue's
        trades into the position (``filled``); one still open at the venue after that (an
        error) leaves ``pending``: nothing may be sold against the quantity it locks."""
        outcome: Literal["clear", "pending", "filled"] = "clear"
        lists_cancelled: set[str] = set()
        for order in stops:
            coid = order.order.client_order_id
            stored = self.orders.find(coid.value) or order
            status = stored.status
            now = self.clock.now()
            if status in TERMINAL_STATUSES:
                self._forget(coid.value, settled=True)
                continue
            if status is _S.NEW:
                cancelled = self._update_status(
                    coid.value,
                    StatusChange(_S.NEW, _S.CANCELED, now, OrderFacts(cancel_reason=reason)),
                )
                self._forget(coid.value, settled=cancelled)
                continue
            if status is not _S.CANCEL_PENDING and not self._update_status(
                coid.value,
                StatusChange(status, _S.CANCEL_PENDING, now, OrderFacts(cancel_reason=reason)),
            ):
                outcome = "pending"  # moved by someone else meanwhile: looked at next cycle
                continue
            self._remember(stored.with_status(_S.CANCEL_PENDING))
            try:
                self._cancel_at_venue(stored, lists_cancelled)
            except OrderNotFoundError:
                pass  # already gone: the lookup decides
            except ExchangeError:
                self._exchange_error()
                outcome = "pending"
                continue
            try:
                found = self.exchange.fetch_order_by_client_id(Symbol(symbol), coid)
            except ExchangeError:
                self._exchange_error()
                outcome = "pending"
                continue
            if found is None and not self._absent_settles(stored, now):
                # not shown (yet): never confirmed by the venue, it may rest or have filled
                # (its lookup lagging) until the venue can no longer execute it. Nothing is
                # sold against it meanwhile: the close waits, the next cycle looks again.
                outcome = "pending"
                continue
            if found is None:  # never reached the venue, or gone
                cancelled = self._update_status(
                    coid.value, StatusChange(_S.CANCEL_PENDING, _S.CANCELED, now)
                )
                if cancelled:
                    self._count_cancelled(stored)
                self._forget(coid.value, settled=cancelled)
                continue
            if found.status is _S.ACCEPTED:  # still resting: the cancel did not take yet
                outcome = "pending"
                continue
            final = self._apply(coid, found)
            if final is not None and final.filled > 0:
                outcome = "filled" if outcome == "clear" else outcome
            final_status = _S.CANCEL_PENDING if final is None else final.status
            if final_status not in TERMINAL_STATUSES:
                outcome = "pending"
        return outcome

    def _cancel_at_venue(self, order: RecordedOrder, lists_cancelled: set[str]) -> None:
        """Cancel ``order`` at the venue by its client ID; a leg of an OCO list cancels its
        list by the list's client ID, once for both legs (``lists_cancelled``)."""
        symbol = order.order.symbol
        list_id = order.order.list_client_order_id
        venue = self.exchange
        if list_id is not None and isinstance(venue, OrderListGateway):
            if list_id.value not in lists_cancelled:
                venue.cancel_order_list(symbol, list_id)
                lists_cancelled.add(list_id.value)
            return
        venue.cancel_order(symbol, order.order.client_order_id)

    # ------------------------------------------------------------------ state application

    def _apply(self, coid: ClientOrderId, venue: ExchangeOrder) -> RecordedOrder | None:
        """Move the stored order to the venue's status (legal steps only) and apply fills:
        the order as then recorded (None: it is gone)."""
        for _ in range(_POSITION_RETRIES):
            stored = self.orders.find(coid.value)
            if stored is None:
                raise LookupError(f"order {coid} is not recorded: cannot apply the venue state")
            current = stored.status
            target = venue.status
            if current is target and target is not _S.PARTIALLY_FILLED:
                break
            if current is _S.CANCEL_PENDING and target is _S.ACCEPTED:
                break  # the cancel was asked and not done yet: it stays CANCEL_PENDING
            if target not in ORDER_TRANSITIONS[current]:
                if current in TERMINAL_STATUSES:
                    break
                # e.g. SUBMITTED → CANCELED: pass through ACCEPTED, a legal intermediate step
                if _S.ACCEPTED in ORDER_TRANSITIONS[current]:
                    self._update_status(
                        coid.value, StatusChange(current, _S.ACCEPTED, self.clock.now())
                    )
                    continue
                raise LookupError(f"order {coid}: venue status {target} unreachable from {current}")
            fills = target in {_S.FILLED, _S.PARTIALLY_FILLED}
            facts = OrderFacts(
                exchange_order_id=venue.exchange_order_id,
                filled=venue.filled,
                average_price=venue.average,
                fee=venue.fee,
                filled_at=utc_from_ms(venue.ts_ms) if fills and venue.ts_ms is not None else None,
            )
            if self._update_status(
                coid.value, StatusChange(current, target, self.clock.now(), facts)
            ):
                if target is _S.FILLED:
                    self._filled_metrics(stored, venue)
                elif target is _S.CANCELED:
                    self._count_cancelled(stored)
                break
        final = self.orders.find(coid.value)
        if final is None:
            return None
        self._apply_fill_to_position(final)
        if final.status in TERMINAL_STATUSES:
            self._settle(coid.value)  # its fill is in the position: out of the index
            self._forget(coid.value, settled=True)
        else:
            self._remember(final)
        return final

    def _apply_fill_to_position(self, order: RecordedOrder) -> bool:
        """Apply the order's filled quantity to its position once (idempotent by client ID,
        see :meth:`Position.apply`: average cost, realized PnL, never below zero).

        A sell fill beyond the holding is applied up to it, the rest is kept on the position as
        ``oversold`` with the order that caused it, and ``OversellRefused`` is counted
        (alarmed)."""
        filled, average = order.filled, order.facts.average_price
        if filled <= 0 or average is None:
            return False
        symbol = order.order.symbol
        fill = Fill(
            client_order_id=order.order.client_order_id,
            side=order.side,
            filled=filled,
            average_price=average,
            # the exit rule's days count from the opening fill (the venue's fill time; a late
            # reconcile does not move the entry day)
            filled_at=order.facts.filled_at or self.clock.now(),
        )
        for _ in range(_POSITION_RETRIES):
            position, version = self.positions.load(symbol.value)
            outcome = (position or Position(symbol)).apply(fill)
            if not outcome.changed:
                return False
            after = self._end_dust_episode(outcome.position, fill)
            if self._save_position(after, version, self.clock.now()):
                if outcome.oversold > 0:
                    self.metrics.add(OVERSELL_METRIC, 1)
                if self._book is not None:
                    self._book.positions[symbol.value] = after
                return True
        raise RuntimeError(f"position {symbol}: {_POSITION_RETRIES} concurrent updates lost")

    def _end_dust_episode(self, position: Position, fill: Fill) -> Position:
        """A sell that left dust ends the position's episode (:meth:`Position.ended_as_dust`),
        so a later entry opens its own: a remainder no sell can be placed for on this venue (e.g.
        a buy's commission taken in the coin), or worth less than ``dust_value`` at the fill's
        price (what the scan counts as not held, so it may enter the coin again). Rules that
        cannot be read now leave the episode as it is."""
        if fill.side is not Side.SELL or position.quantity <= 0 or position.opened_by is None:
            return position
        worth = position.quantity * fill.average_price.value
        why: str | None
        if worth < self.dust_value:
            why = (
                f"{position.quantity.normalize():f} left, worth {worth:.2f} (under the dust value)"
            )
        else:
            try:
                why = self.dust(position.symbol.value, position.quantity, fill.average_price.value)
            except MarketRulesUnknownError:
                return position
        if why is None:
            return position
        log.info("position %s: %s; its episode ends", position.symbol, why)
        return position.ended_as_dust()

    def _count_cancelled(self, order: RecordedOrder) -> None:
        """Called once per order, by the conditional write that moved it to CANCELED (whichever
        path wrote it: a close's or a resize's release, the kill-switch sweep, the venue's
        answer applied, or reconcile settling a cancel the venue no longer shows after the
        grace): a protective stop (not a take-profit leg) counts in
        ``ProtectiveStopsCancelled``."""
        if order.protective and not order.take_profit:
            self.metrics.add(mn.PROTECTIVE_STOPS_CANCELLED.name, 1)

    def _filled_metrics(self, stored: RecordedOrder, venue: ExchangeOrder) -> None:
        """Once per order (the conditional move to FILLED succeeded): count and slippage."""
        self.metrics.add("OrdersFilled", 1)
        if stored.protective:
            taken = "TakeProfitsTriggered" if stored.take_profit else "ProtectiveStopsTriggered"
            self.metrics.add(taken, 1)
        if venue.average is None:
            return
        reference = stored.order.reference_price.value
        sign = Decimal(1) if venue.side is Side.BUY else Decimal(-1)
        slippage = sign * (venue.average.value - reference) / reference * Decimal(10_000)
        self.metrics.add("SlippageBps", float(slippage), "None")

    # ------------------------------------------------------------------ book

    def _load_book(self, *, fresh: bool = False) -> _Book:
        """Positions and indexed orders, read once per run (``fresh`` re-reads them). This
        run's own writes are laid over the index on every read: an order it settled never
        shows open again (see :meth:`_indexed`), and one it sent a moment ago (a close still
        open after a timeout) is in the book even before the index lists it, so the
        protective step never places a stop beside it."""
        if self._book is None or fresh:
            positions, indexed = self.positions.load_all(), self._indexed()
            # a damaged record is left out of the book, never out of the run: its coin is
            # blocked (no entry), the others are read and traded, the kill-switch sweep
            # cancels every other order
            unreadable = [*_unreadable(positions), *_unreadable(indexed)]
            if unreadable:
                self.metrics.add(mn.BOOK_RECORDS_UNREADABLE.name, len(unreadable))
            self._book = _Book(
                positions=positions,
                orders=self._overlaid(indexed),
                blocked=blocked_symbols(positions, indexed),
            )
        return self._book

    def _overlaid(self, indexed: list[RecordedOrder] | None = None) -> dict[str, RecordedOrder]:
        """The open-orders index (see :meth:`_indexed`) with this run's open writes over it."""
        orders = {o.key: o for o in (self._indexed() if indexed is None else indexed)}
        orders.update(self._open_here)
        return orders

    def _remember(self, order: RecordedOrder) -> None:
        """An order this run wrote and holds open, into its book and over later reads."""
        self._open_here[order.key] = order
        self._load_book().orders[order.key] = order

    def _indexed(self, symbol: str | None = None) -> OpenOrders:
        """The open-orders index (of ``symbol``) without the orders this run settled: a stale
        index entry never makes an order this run cancelled, filled, expired or saw refused
        look open again (e.g. a protective stop just cancelled, counted as a sell still open,
        would cut the close that follows to nothing as an oversell)."""
        read = self.orders.open_orders(symbol)
        return OpenOrders((o for o in read if o.key not in self._settled_here), _unreadable(read))

    def _forget(self, client_order_id: str, *, settled: bool = False) -> None:
        """Out of this run's book; ``settled``: this run wrote (or read) its terminal status,
        kept as a tombstone against a stale index entry."""
        if settled:
            self._settled_here.add(client_order_id)
        self._open_here.pop(client_order_id, None)
        if self._book is not None:
            self._book.orders.pop(client_order_id, None)

    def _status_of(self, client_order_id: str) -> OrderStatus | None:
        stored = self.orders.find(client_order_id)
        return None if stored is None else stored.status

    def _position(self, symbol: str) -> Position | None:
        """The position of ``symbol``, read fresh (None: none recorded)."""
        return self.positions.load(symbol)[0]

    def _holding(
        self,
        symbol: str,
        *,
        include_new: bool = False,
        exclude: str | None = None,
        without_protective: bool = False,
    ) -> Holding:
        book = self._load_book()
        orders = book.open_orders()
        if without_protective:
            orders = [o for o in orders if not o.protective]
        return holding(
            symbol,
            book.positions.get(symbol),
            orders,
            include_new=include_new,
            exclude=exclude,
        )

    def exposure(self, *, include_new: bool = True) -> PortfolioExposure:
        """Positions and open buy orders per symbol (see :func:`book_exposure`), from this
        run's book: no read per decision."""
        book = self._load_book()
        clusters = self.clusters if self._context is None else self._context.clusters
        return PortfolioExposure(
            book_exposure(book.positions, book.open_orders(), include_new=include_new),
            clusters,
            unknown=frozenset(s for s in book.blocked if s != ANY_SYMBOL),
        )

    def _guard(self) -> RiskGuard:
        """The RiskGuard of this cycle: the service's, scaled by the go-live stage's share."""
        return self.guard if self._context is None else self._context.guard(self.guard)

    # ------------------------------------------------------------------ helpers

    def _exchange_error(self) -> None:
        self.consecutive_exchange_errors += 1
        self.metrics.add("ExchangeErrors", 1)

    def _rejected(self, coid: ClientOrderId, rule: str, reason: str) -> ExecutionResult:
        self.metrics.add("OrdersRejectedByRisk", 1, dimensions={"rule": rule})
        return ExecutionResult(coid.value, "rejected", reason, rule)

    def _duplicate(
        self, coid: ClientOrderId, existing: OrderStatus | None, why: str
    ) -> ExecutionResult:
        self.metrics.add("DuplicateOrdersPrevented", 1)
        status = existing.value if existing is not None else "unknown"
        return ExecutionResult(coid.value, "duplicate", f"{why} (status {status})")

    @staticmethod
    def _result(order: RecordedOrder | None) -> ExecutionResult:
        if order is None:
            raise LookupError("the order applied is no longer recorded")
        avg = order.facts.average_price
        return ExecutionResult(
            order.key,
            order.status.value,
            "sent",
            quantity=order.quantity,
            average_price=None if avg is None else avg.value,
        )


@dataclass(frozen=True, slots=True)
class _ListRefused:
    """The venue did not place a protective OCO list: why (its legs are settled EXPIRED)."""

    why: str


@dataclass(frozen=True, slots=True)
class _Sent:
    """What sending one recorded protective order did (see
    :meth:`ExecutionService._send_protective`): ``duplicate`` (already recorded: nothing
    sent), ``contended`` (another worker sends it), ``placed`` / ``reconciled`` (the venue
    holds it), ``pending`` (left SUBMITTED for reconcile), ``rate_limited`` / ``through`` /
    ``not_sent`` (not placed: EXPIRED; ``not_sent``: the venue's rules could not be read, so
    nothing was sent) or ``refused``; why, and the status of each order by client ID."""

    outcome: Literal[
        "duplicate", "contended", "placed", "reconciled", "pending", "rate_limited", "through",
        "refused", "not_sent",
    ]  # fmt: skip
    why: str = ""
    statuses: Mapping[str, str] = field(default_factory=dict)

    def status(self, coid: ClientOrderId) -> str:
        return self.statuses.get(coid.value, "")


def position_failed(symbol: str, what: str, exc: Exception, metrics: Metrics) -> str:
    """One position's ``what`` (its close, the flatten, its protective step) failed with
    ``exc``: logged with the reason and counted (``PositionExitErrors``); the reason returned,
    for that position's report. The caller goes on with the other positions."""
    first = str(exc).splitlines()[0] if str(exc) else ""
    why = f"{what} failed ({type(exc).__name__}: {first})"
    log.error("position %s: %s; the other positions go on", symbol, why)
    metrics.add(mn.POSITION_EXIT_ERRORS.name, 1)
    return why


def is_resting_stop(order: RecordedOrder) -> bool:
    """A protective stop acknowledged by the venue, nothing of it filled: it rests there."""
    return order.protective and order.status is _S.ACCEPTED and order.filled == 0


def _intent_of(order: Order, quantity: Decimal) -> OrderIntent:
    """The decision a recorded order carries (its identity fields), at ``quantity``."""
    return OrderIntent(
        strategy=order.strategy,
        symbol=order.symbol,
        side=order.side,
        intent=order.intent,
        signal_bar_ms=order.signal_bar_ms,
        quantity=Quantity(quantity),
        reference_price=order.reference_price,
        position_key=order.position_key,
    )


def _unreadable(read: object) -> tuple[UnreadableRecord, ...]:
    """The records a read of the book could not read (see :class:`OpenOrders`)."""
    return tuple(getattr(read, "unreadable", ()))


def _held(position: Position | None) -> Decimal:
    """The quantity held of a position (0 when none is recorded)."""
    return Decimal(0) if position is None else position.quantity


def _status(order: RecordedOrder | None) -> OrderStatus | None:
    return None if order is None else order.status


def _status_text(order: RecordedOrder | None) -> str:
    """An applied order's status as reported (``None`` when it is no longer recorded)."""
    return str(None if order is None else order.status.value)
