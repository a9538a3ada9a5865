"""Exactly-once order execution with reconciliation by client order ID.

The path of one decision (an :class:`OrderIntent`):

1. kill-switch read (cached a few seconds at most); ON → rejected, and every open order is
   cancelled;
2. the order store is asked for the decision's client order ID (SHA256 of the decision): known →
   duplicate, nothing sent;
3. RiskGuard (level from the state table, exposure from positions and open buy orders, clusters,
   quote) → rejected with the rule that decided, nothing written;
4. 60-minute idempotency claim on the client order ID (a claim held without its order is
   recovered, see ``submit``);
5. order recorded as NEW (conditional insert, so permanent dedup beyond the 60 minutes);
6. NEW → SUBMITTED (conditional), then sent to the exchange tagged with the client order ID;
7. the answer moves the order along the state-transition table and applies fills to positions.

``create_order`` is never retried blindly: after a timeout (``OrderStateUnknownError``) the order
is looked up by client ID. Found → recorded. Not found → left SUBMITTED for :meth:`reconcile`,
which marks it EXPIRED once ``absent_grace`` has passed (never resent: a late-appearing order
would be a second position). :meth:`reconcile` runs on every start, so a crash between send and
record is recovered from the venue's view of the client ID. Fills reach positions exactly once:
each position keeps the filled quantity it has applied per client order ID.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol

from cryptosmarttrader.domain.clock import Clock
from cryptosmarttrader.domain.exchange import (
    ExchangeCapabilities,
    ExchangeError,
    ExchangeOrder,
    FatalExchangeError,
    OrderNotFoundError,
    OrderStateUnknownError,
    OrderType,
)
from cryptosmarttrader.domain.orders import (
    ORDER_TRANSITIONS,
    TERMINAL_STATUSES,
    Intent,
    OrderIntent,
    OrderStatus,
    book_exposure,
)
from cryptosmarttrader.domain.portfolio import PortfolioExposure
from cryptosmarttrader.domain.risk import MarketQuote, RiskGuard, RiskState
from cryptosmarttrader.domain.types import (
    ClientOrderId,
    Money,
    Price,
    Quantity,
    Side,
    Symbol,
    utc_from_ms,
)
from cryptosmarttrader.ports import IdempotencyStore, KillSwitch, Metrics

__all__ = [
    "ExecutionResult",
    "ExecutionService",
    "OrderGateway",
    "OrderLedger",
    "PositionLedger",
    "RiskLevelSource",
]

OPEN_STATUSES = frozenset(
    {
        OrderStatus.SUBMITTED,
        OrderStatus.ACCEPTED,
        OrderStatus.PARTIALLY_FILLED,
        OrderStatus.CANCEL_PENDING,
    }
)
_POSITION_RETRIES = 20
_S = OrderStatus


class OrderGateway(Protocol):
    """The trading half of the ``Exchange`` port (``CcxtExchange`` and ``PaperExchange``)."""

    @property
    def capabilities(self) -> ExchangeCapabilities: ...

    def create_order(
        self,
        symbol: Symbol,
        side: Side,
        order_type: OrderType,
        quantity: Quantity,
        price: Price | None,
        client_order_id: ClientOrderId,
    ) -> ExchangeOrder: ...

    def fetch_order_by_client_id(
        self, symbol: Symbol, client_order_id: ClientOrderId
    ) -> ExchangeOrder | None: ...

    def cancel_order(self, symbol: Symbol, client_order_id: ClientOrderId) -> None: ...


class OrderLedger(Protocol):
    """Orders keyed by client order ID with guarded status moves (``DynamoOrderStore``)."""

    def put_new(self, order: Mapping[str, Any]) -> bool: ...

    def get(self, client_order_id: str) -> dict[str, Any] | None: ...

    def list_orders(self) -> list[dict[str, Any]]: ...

    def update_status(
        self,
        client_order_id: str,
        expected: OrderStatus,
        new: OrderStatus,
        *,
        at: datetime | None = None,
        fields: Mapping[str, Any] | None = None,
    ) -> bool: ...


class PositionLedger(Protocol):
    """Positions keyed by symbol with an optimistic version (``DynamoPositionStore``)."""

    def get(self, symbol: str) -> dict[str, Any] | None: ...

    def get_all(self) -> dict[str, dict[str, Any]]: ...

    def upsert(self, position: Mapping[str, Any], expected_version: int | None) -> bool: ...


class RiskLevelSource(Protocol):
    """Where the current risk level comes from (``RiskStateService``)."""

    def load(self) -> RiskState: ...


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
        return self.status not in {"rejected", "duplicate"}


@dataclass
class ExecutionService:
    orders: OrderLedger
    positions: PositionLedger
    idempotency: IdempotencyStore
    kill_switch: KillSwitch
    risk: RiskLevelSource
    exchange: OrderGateway
    clock: Clock
    metrics: Metrics
    guard: RiskGuard = field(default_factory=RiskGuard)
    clusters: Mapping[str, str] = field(default_factory=dict)
    mode: str = "paper"
    idempotency_ttl_seconds: int = 3600
    absent_grace: timedelta = timedelta(minutes=2)
    resume_new_within: timedelta = timedelta(minutes=10)
    consecutive_exchange_errors: int = 0
    # Where a NEW order recorded by someone else (the scan's decisions) is re-checked before it
    # is sent: the account equity now and a fresh quote per symbol. Unset → NEW orders found by
    # reconcile are sent as recorded (they passed the RiskGuard when ``submit`` recorded them).
    equity_source: Callable[[], Money | None] | None = None
    quote_source: Callable[[Symbol], MarketQuote | None] | None = None
    # Why new entries are refused outright (a halted go-live stage); exits still go through.
    halt_reason: str | None = None

    # ------------------------------------------------------------------ submit

    def submit(
        self, intent: OrderIntent, *, equity: Money | None, quote: MarketQuote | None
    ) -> ExecutionResult:
        """Send ``intent`` at most once (see the module docstring for the path)."""
        coid = intent.client_order_id
        kill = self.kill_switch.status()
        if kill.on:
            self.cancel_open_orders(f"kill-switch on: {kill.reason}")
            return self._rejected(coid, "kill_switch", f"kill-switch is on: {kill.reason}")
        existing = self.orders.get(coid.value)
        if existing is not None:
            return self._duplicate(coid, existing, "this decision was already ordered")
        now = self.clock.now()
        verdict = self.guard.evaluate(
            intent,
            equity=equity,
            level=self.risk.load().level,
            kill_switch_on=False,
            kill_switch_reason="",
            exposure=self.exposure(),
            quote=quote,
            now=now,
        )
        if not verdict.approved or verdict.quantity is None:
            return self._rejected(coid, verdict.rule, verdict.reason)
        # The claim opens the 60-minute window; the conditional NEW insert below is what makes
        # the order exactly-once. A claim held with no order recorded is either a concurrent
        # submission about to insert, or one that died between the two writes: in both cases
        # racing for the conditional insert is safe, and the second case is not left blocked.
        if (
            not self.idempotency.claim(coid.value, now, self.idempotency_ttl_seconds)
            and self.orders.get(coid.value) is not None
        ):
            self.metrics.add("DuplicateOrdersPrevented", 1)
            return ExecutionResult(coid.value, "duplicate", "claimed by a concurrent submission")
        record = {
            "client_order_id": coid.value,
            "symbol": intent.symbol.value,
            "side": intent.side.value,
            "intent": intent.intent.value,
            "order_type": OrderType.MARKET.value,
            "decision_quantity": intent.quantity.value,
            "quantity": verdict.quantity.value,
            "reference_price": intent.reference_price.value,
            "notional": verdict.quantity.value * intent.reference_price.value,
            "strategy": intent.strategy,
            "signal_bar_ms": intent.signal_bar_ms,
            "status": OrderStatus.NEW.value,
            "risk_rule": verdict.rule,
            "risk_reason": verdict.reason,
            "mode": self.mode,
            "created_at": now,
        }
        if not self.orders.put_new(record):
            self.metrics.add("DuplicateOrdersPrevented", 1)
            return ExecutionResult(coid.value, "duplicate", "order already recorded")
        return self._send(record)

    def _send(self, record: Mapping[str, Any], quantity: Decimal | None = None) -> ExecutionResult:
        """NEW → SUBMITTED, then the venue. ``quantity`` replaces the recorded one (a RiskGuard
        reduction at dispatch) in the same conditional write."""
        coid = ClientOrderId(str(record["client_order_id"]))
        symbol = Symbol(str(record["symbol"]))
        now = self.clock.now()
        qty = Decimal(str(record["quantity"])) if quantity is None else quantity
        if not self.orders.update_status(
            coid.value, _S.NEW, _S.SUBMITTED, at=now, fields={"quantity": qty}
        ):
            return self._duplicate(coid, self.orders.get(coid.value), "another worker sends it")
        started = time.perf_counter()
        try:
            placed = self.exchange.create_order(
                symbol,
                Side(str(record["side"])),
                OrderType(str(record.get("order_type", OrderType.MARKET.value))),
                Quantity(qty),
                None,
                coid,
            )
        except OrderStateUnknownError as exc:
            self._exchange_error()
            return self._reconcile_after_timeout(coid, symbol, exc)
        except FatalExchangeError as exc:
            self.consecutive_exchange_errors = 0  # the venue answered: it is up
            self.orders.update_status(
                coid.value,
                _S.SUBMITTED,
                _S.REJECTED,
                at=self.clock.now(),
                fields={"reject_reason": str(exc)},
            )
            self.metrics.add("OrdersRejectedByExchange", 1)
            return ExecutionResult(coid.value, _S.REJECTED.value, str(exc), "exchange")
        self.consecutive_exchange_errors = 0
        self.metrics.add("OrdersSent", 1)
        self.metrics.add("OrderLatency", (time.perf_counter() - started) * 1000, "Milliseconds")
        return self._result(self._apply(coid, placed))

    def _reconcile_after_timeout(
        self, coid: ClientOrderId, symbol: Symbol, exc: OrderStateUnknownError
    ) -> ExecutionResult:
        try:
            found = self.exchange.fetch_order_by_client_id(symbol, coid)
        except ExchangeError as lookup:
            self._exchange_error()
            return ExecutionResult(
                coid.value,
                _S.SUBMITTED.value,
                f"{exc}; lookup failed ({lookup}): left SUBMITTED for reconcile",
            )
        if found is None:
            return ExecutionResult(
                coid.value,
                _S.SUBMITTED.value,
                f"{exc}; not at the venue yet: left SUBMITTED for reconcile, not resent",
            )
        self.metrics.add("OrdersReconciled", 1)
        return self._result(self._apply(coid, found))

    # ------------------------------------------------------------------ reconcile / cancel

    def reconcile(self) -> dict[str, int]:
        """Bring every non-terminal order in line with the venue and every fill into positions.

        Run on start and by every execution cycle. NEW orders were never sent (SUBMITTED is
        written before sending): each is sent if still valid and the kill-switch (read before
        every order) is off, else CANCELED, see :meth:`_admit`. Open orders are looked up
        by client ID; a SUBMITTED order the venue does not know after ``absent_grace`` is EXPIRED.
        """
        counts = {"resent_new": 0, "cancelled_new": 0, "updated": 0, "expired": 0, "fills": 0}
        now = self.clock.now()
        # oldest decisions first and, within one scan, best ranked first: when the limits
        # leave room for only some of them, the scan's order of preference decides
        ledger = sorted(
            self.orders.list_orders(),
            key=lambda o: (_created_at(o), int(o.get("rank", 0)), str(o["client_order_id"])),
        )
        for order in ledger:
            status = OrderStatus(str(order["status"]))
            coid = ClientOrderId(str(order["client_order_id"]))
            symbol = Symbol(str(order["symbol"]))
            age = now - _created_at(order)
            if status is _S.NEW:
                why, quantity = self._admit(order, now)
                if why is not None:
                    if self.orders.update_status(
                        coid.value, _S.NEW, _S.CANCELED, at=now, fields={"cancel_reason": why}
                    ):
                        counts["cancelled_new"] += 1
                else:
                    self._send(order, quantity)
                    counts["resent_new"] += 1
                continue
            if status in OPEN_STATUSES:
                try:
                    found = self.exchange.fetch_order_by_client_id(symbol, coid)
                except ExchangeError:
                    self._exchange_error()
                    continue
                if found is not None:
                    self._apply(coid, found)
                    counts["updated"] += 1
                elif (
                    status is _S.SUBMITTED
                    and age >= self.absent_grace
                    and self.orders.update_status(
                        coid.value,
                        _S.SUBMITTED,
                        _S.EXPIRED,
                        at=now,
                        fields={"expire_reason": "not found at the venue by client id; not resent"},
                    )
                ):
                    counts["expired"] += 1
                continue
            if self._apply_fill_to_position(self.orders.get(coid.value) or order):
                counts["fills"] += 1
        if self.kill_switch.status().on:
            self.cancel_open_orders("kill-switch on")
        return counts

    def _admit(self, order: Mapping[str, Any], now: datetime) -> tuple[str | None, Decimal | None]:
        """Why a NEW order must not be sent now (it is then CANCELED), or (None, quantity to
        send: None = as recorded).

        A NEW order is sendable until its ``valid_until`` (a decision recorded by the scan says
        how long it stays valid), else for ``resume_new_within`` after it was recorded. With an
        ``equity_source`` the RiskGuard decides again with today's level, exposure and quote; a
        smaller approved quantity is written onto the order before it is sent.
        """
        if self.kill_switch.status().on:  # read before every order (cached a few seconds)
            return "kill-switch on", None
        raw_until = order.get("valid_until")
        until = (
            datetime.fromisoformat(str(raw_until))
            if raw_until is not None
            else _created_at(order) + self.resume_new_within
        )
        if now > until:
            return f"never sent and no longer valid (valid until {until.isoformat()})", None
        if self.halt_reason is not None and order.get("side") == Side.BUY.value:
            self.metrics.add("OrdersRejectedByRisk", 1, dimensions={"rule": "golive_halted"})
            return f"new entries halted: {self.halt_reason}", None
        if self.equity_source is None:
            return None, None
        intent = OrderIntent(
            strategy=str(order["strategy"]),
            symbol=Symbol(str(order["symbol"])),
            side=Side(str(order["side"])),
            intent=Intent(str(order["intent"])),
            signal_bar_ms=int(order["signal_bar_ms"]),
            quantity=Quantity(Decimal(str(order["quantity"]))),
            reference_price=Price(Decimal(str(order["reference_price"]))),
        )
        verdict = self.guard.evaluate(
            intent,
            equity=self.equity_source(),
            level=self.risk.load().level,
            kill_switch_on=False,
            kill_switch_reason="",
            exposure=self.exposure(include_new=False),
            quote=self.quote_source(intent.symbol) if self.quote_source is not None else None,
            now=now,
        )
        if not verdict.approved or verdict.quantity is None:
            self.metrics.add("OrdersRejectedByRisk", 1, dimensions={"rule": verdict.rule})
            return f"rejected by RiskGuard rule {verdict.rule}: {verdict.reason}", None
        return None, verdict.quantity.value

    def cancel_open_orders(self, reason: str) -> int:
        """Cancel every NEW and open order (kill-switch). Returns how many were cancelled."""
        cancelled = 0
        now = self.clock.now()
        for order in self.orders.list_orders():
            status = OrderStatus(str(order["status"]))
            coid = ClientOrderId(str(order["client_order_id"]))
            symbol = Symbol(str(order["symbol"]))
            if status is _S.NEW:
                cancelled += self.orders.update_status(
                    coid.value, _S.NEW, _S.CANCELED, at=now, fields={"cancel_reason": reason}
                )
                continue
            if status not in OPEN_STATUSES:
                continue
            if status is not _S.CANCEL_PENDING and not self.orders.update_status(
                coid.value, status, _S.CANCEL_PENDING, at=now, fields={"cancel_reason": reason}
            ):
                continue
            try:
                self.exchange.cancel_order(symbol, coid)
            except OrderNotFoundError:
                pass  # already gone (filled or never arrived): the lookup below decides
            except ExchangeError:
                self._exchange_error()
                continue  # stays CANCEL_PENDING; the next reconcile retries
            found = self.exchange.fetch_order_by_client_id(symbol, coid)
            if found is None:
                cancelled += self.orders.update_status(
                    coid.value, _S.CANCEL_PENDING, _S.CANCELED, at=self.clock.now()
                )
            else:
                cancelled += self._apply(coid, found).get("status") == _S.CANCELED.value
        if cancelled:
            self.metrics.add("OrdersCancelledByKillSwitch", cancelled)
        return cancelled

    # ------------------------------------------------------------------ state application

    def _apply(self, coid: ClientOrderId, venue: ExchangeOrder) -> dict[str, Any]:
        """Move the stored order to the venue's status (legal steps only) and apply fills."""
        for _ in range(_POSITION_RETRIES):
            stored = self.orders.get(coid.value)
            if stored is None:
                raise LookupError(f"order {coid} is not recorded: cannot apply the venue state")
            current = OrderStatus(str(stored["status"]))
            target = venue.status
            if current is target and target is not _S.PARTIALLY_FILLED:
                break
            if target not in ORDER_TRANSITIONS[current]:
                if current in TERMINAL_STATUSES:
                    break
                # e.g. SUBMITTED → CANCELED: pass through ACCEPTED, a legal intermediate step
                if _S.ACCEPTED in ORDER_TRANSITIONS[current]:
                    self.orders.update_status(coid.value, current, _S.ACCEPTED, at=self.clock.now())
                    continue
                raise LookupError(f"order {coid}: venue status {target} unreachable from {current}")
            fields: dict[str, Any] = {
                "exchange_order_id": venue.exchange_order_id,
                "filled": venue.filled,
            }
            if venue.average is not None:
                fields["average_price"] = venue.average.value
            if venue.fee is not None:
                fields["fee"] = venue.fee
            if venue.ts_ms is not None and target in {_S.FILLED, _S.PARTIALLY_FILLED}:
                fields["filled_at"] = utc_from_ms(venue.ts_ms)
            if self.orders.update_status(
                coid.value, current, target, at=self.clock.now(), fields=fields
            ):
                if target is _S.FILLED:
                    self._filled_metrics(stored, venue)
                break
        final = self.orders.get(coid.value) or {}
        self._apply_fill_to_position(final)
        return final

    def _apply_fill_to_position(self, order: Mapping[str, Any]) -> bool:
        """Apply the order's filled quantity to its position once (idempotent by client ID)."""
        filled = Decimal(str(order.get("filled", 0)))
        if filled <= 0 or order.get("average_price") is None:
            return False
        coid = str(order["client_order_id"])
        symbol = str(order["symbol"])
        price = Decimal(str(order["average_price"]))
        sign = Decimal(1) if order["side"] == Side.BUY.value else Decimal(-1)
        for _ in range(_POSITION_RETRIES):
            pos = self.positions.get(symbol)
            applied = dict((pos or {}).get("applied_fills", {}))
            delta = filled - Decimal(str(applied.get(coid, 0)))
            if delta <= 0:
                return False
            qty = Decimal(str((pos or {}).get("quantity", 0)))
            cost = Decimal(str((pos or {}).get("cost", 0)))
            if sign > 0:
                cost += delta * price
            elif qty > 0:
                cost -= cost * min(delta, qty) / qty  # average-cost basis
            qty += sign * delta
            applied[coid] = filled
            new_pos = {
                "symbol": symbol,
                "quantity": qty,
                "cost": cost if qty > 0 else Decimal(0),
                "notional": cost if qty > 0 else Decimal(0),
                "average_price": (cost / qty) if qty > 0 else None,
                "applied_fills": applied,
                "updated_at": self.clock.now(),
            }
            version = None if pos is None else int(pos["version"])
            if self.positions.upsert(new_pos, version):
                return True
        raise RuntimeError(f"position {symbol}: {_POSITION_RETRIES} concurrent updates lost")

    def _filled_metrics(self, stored: Mapping[str, Any], venue: ExchangeOrder) -> None:
        """Once per order (the conditional move to FILLED succeeded): count and slippage."""
        self.metrics.add("OrdersFilled", 1)
        if venue.average is None:
            return
        reference = Decimal(str(stored["reference_price"]))
        sign = Decimal(1) if venue.side is Side.BUY else Decimal(-1)
        slippage = sign * (venue.average.value - reference) / reference * Decimal(10_000)
        self.metrics.add("SlippageBps", float(slippage), "None")

    # ------------------------------------------------------------------ helpers

    def exposure(self, *, include_new: bool = True) -> PortfolioExposure:
        """Positions and open buy orders per symbol (see :func:`book_exposure`)."""
        return PortfolioExposure(
            book_exposure(
                self.positions.get_all(), self.orders.list_orders(), include_new=include_new
            ),
            self.clusters,
        )

    def _exchange_error(self) -> None:
        self.consecutive_exchange_errors += 1
        self.metrics.add("ExchangeErrors", 1)

    def _rejected(self, coid: ClientOrderId, rule: str, reason: str) -> ExecutionResult:
        self.metrics.add("OrdersRejectedByRisk", 1, dimensions={"rule": rule})
        return ExecutionResult(coid.value, "rejected", reason, rule)

    def _duplicate(
        self, coid: ClientOrderId, existing: Mapping[str, Any] | None, why: str
    ) -> ExecutionResult:
        self.metrics.add("DuplicateOrdersPrevented", 1)
        status = str(existing["status"]) if existing else "unknown"
        return ExecutionResult(coid.value, "duplicate", f"{why} (status {status})")

    @staticmethod
    def _result(order: Mapping[str, Any]) -> ExecutionResult:
        avg = order.get("average_price")
        return ExecutionResult(
            str(order["client_order_id"]),
            str(order["status"]),
            "sent",
            quantity=Decimal(str(order["quantity"])),
            average_price=None if avg is None else Decimal(str(avg)),
        )


def _created_at(order: Mapping[str, Any]) -> datetime:
    return datetime.fromisoformat(str(order["created_at"]))
