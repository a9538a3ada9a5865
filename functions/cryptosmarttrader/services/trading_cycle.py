"""One trading cycle: send the scan's decisions, reconcile fills, value the book, move the RiskGuard.

Run by the scheduled execution function (hourly, after the hourly candles are ingested) and by
`cst demo` at a replayed time. In order:

1. market view: the last *closed* bar of every symbol involved (``ts + bar <= now``; nothing
   after ``now`` is read), its 24 h quote volume, and correlation clusters of the daily universe;
2. :meth:`ExecutionService.reconcile` with the RiskGuard re-deciding every NEW order (the scan's
   decisions) on today's level, exposure, clusters and quote, then sending it; open orders are
   looked up at the venue (the paper venue fills them once their bar exists) and fills reach
   positions exactly once;
3. the account valued from the order ledger: cash = starting equity − buys + sells − fees,
   equity = cash + Σ quantity × last close. A position without a mark makes the equity unknown:
   the RiskGuard then holds DEFENSIVE (it never guesses a price). So does a stored order or
   position record that cannot be read (its fills or its holding are unknown; an order's makes
   the cash unknown too): the report names it in ``unreadable_records``;
4. :meth:`RiskStateService.observe` with that equity, the share of the universe today's daily
   quality gate excludes, and the venue's consecutive errors: daily loss 3/5/8 %, drawdown,
   the data-quality and exchange-error breakers escalate; EMERGENCY and SHUTDOWN turn the
   kill-switch on;
5. at EMERGENCY with the kill-switch off again (a human looked), every position is flattened by a
   CLOSE order through the same exactly-once path. A close is keyed on the position, not the
   bar: while it is open (on AWS the fill bar reaches the lake only after the next cycle), the
   next cycles find it and send nothing, and a scan's CLOSE of the same position is the same
   order. A sell is capped at what is held minus the sells already open;
6. otherwise the strategy's exit rule (:mod:`cryptosmarttrader.domain.exit_rule`, the same rule
   as the training label, the evaluation's book and `cst backtest`) is checked for every held
   position on the daily closes since its opening fill: take profit or stop confirmed on a
   second close, or the time limit, places one CLOSE of the position (the same position-keyed
   order as a flatten: placed exactly once, whichever cycle or path decides it first). A
   position without a mark, an entry price or an opening time, or whose record cannot be read,
   gets no exit decision: it is held and the report says why (the cycle never exits on data it
   cannot trust). A protective stop resting for a position whose record cannot be read is kept
   as it is (never cancelled or resized as "not held").

Metrics: DailyPnl, Drawdown, RiskLevel, GrossExposure, Equity here, and BookRecordsUnreadable
for the order records outside the open-orders index that the valuation could not read (once per
cycle; the execution service counts the positions and the indexed orders); OrdersSent,
OrdersFilled, SlippageBps, OrderLatency, OrdersRejectedByRisk from the execution service; and
per cycle the go-live SLIs StrategyReturnBps / ReferenceReturnBps (Stage only): the account's
return since the previous cycle and the same book's under the backtest's fills, whose
dispersion is the gate's tracking error.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal

import polars as pl
from pydantic import BaseModel, ConfigDict

from cryptosmarttrader.domain import metric_names as mn
from cryptosmarttrader.domain.aggregates import Position
from cryptosmarttrader.domain.balances import (
    BalanceCheck,
    BalanceTolerance,
    Disagreement,
    reconcile_balances,
)
from cryptosmarttrader.domain.book import (
    ANY_SYMBOL,
    OpenOrders,
    PositionBook,
    RecordedOrder,
    UnreadableRecord,
)
from cryptosmarttrader.domain.evaluation import BACKTEST_COST_RATE
from cryptosmarttrader.domain.exchange import ExchangeError
from cryptosmarttrader.domain.exit_rule import (
    DEFAULT_EXIT_RULE,
    ExitDecision,
    ExitReason,
    ExitRule,
    exit_decision,
)
from cryptosmarttrader.domain.market import DAY_MS, TIMEFRAME_MS
from cryptosmarttrader.domain.orders import Intent, OrderIntent
from cryptosmarttrader.domain.portfolio import correlation_clusters
from cryptosmarttrader.domain.quality import check_daily
from cryptosmarttrader.domain.risk import (
    LEVEL_POLICIES,
    MarketQuote,
    RiskLevel,
    RiskObservation,
)
from cryptosmarttrader.domain.types import (
    DomainError,
    Money,
    Price,
    Quantity,
    Side,
    Symbol,
    ms_from_utc,
    utc_from_ms,
)
from cryptosmarttrader.ports import BalanceSource, MarketData, Metrics, SliRecorder
from cryptosmarttrader.services.execution import (
    CycleContext,
    ExecutionResult,
    ExecutionService,
    is_resting_stop,
    position_failed,
)
from cryptosmarttrader.services.golive import ACTIVE_SK, GOLIVE_PK
from cryptosmarttrader.services.risk_state import RiskStateService

log = logging.getLogger(__name__)

__all__ = [
    "Account",
    "CycleInputError",
    "CycleReport",
    "Mark",
    "TradingCycle",
    "account_from_ledger",
]

FLATTEN_STRATEGY = "riskguard-flatten"
EXIT_RULE_STRATEGY = "exit-rule"  # the strategy name on the exit rule's CLOSE orders
EXECUTION_PK = "execution"  # state-table partition of the execution cycle
VALUATION_SK = "valuation"  # the last cycle's equity and its backtest twin
EQUITY_PREFIX = "equity#"  # one point per cycle: sk equity#<iso instant> (the equity series)
BPS = Decimal(10_000)
CLUSTER_LOOKBACK_DAYS = 120
STALE_DAILY_DAYS = 2  # a newest daily bar older than this is stale: the ingest is not running


class CycleInputError(ValueError):
    """The cycle was asked for something it must refuse before acting (e.g. a past instant)."""


@dataclass(frozen=True, slots=True)
class Mark:
    """The last closed bar of a symbol: its close, when it closed, and 24 h quote volume."""

    price: Decimal
    closed_at: datetime
    volume_24h_quote: Decimal | None


@dataclass(frozen=True, slots=True)
class Account:
    """The account as the ledger values it. ``cash`` sums the fills of the order records that
    could be read; ``cash_known`` is False when one could not (its fills are unknown, so the
    cash is: :attr:`known_cash` is then None). ``equity`` is None when a held coin has no mark
    (``unmarked``) or a record could not be read (``unreadable``: each one described)."""

    cash: Decimal
    equity: Decimal | None  # None: a position has no mark, or a record could not be read
    fees: Decimal
    positions: dict[str, Decimal]  # symbol → quantity held
    unmarked: tuple[str, ...]
    unreadable: tuple[str, ...] = ()
    cash_known: bool = True

    @property
    def known_cash(self) -> Decimal | None:
        """The cash, or None when an order record could not be read (never a partial sum)."""
        return self.cash if self.cash_known else None


def account_from_ledger(
    starting_equity: Decimal,
    orders: Sequence[RecordedOrder],
    positions: Mapping[str, Position],
    marks: Mapping[str, Mark],
    *,
    reference_cost: Decimal | None = None,
    unreadable_orders: Sequence[UnreadableRecord] = (),
    unreadable_positions: Sequence[UnreadableRecord] = (),
) -> Account:
    """Cash from every fill in the ledger (buys out, sells in, fees out), equity at the marks.

    ``reference_cost`` values the same fills the way the strategy backtest assumes they happen:
    at the decision's reference price, with that flat cost rate instead of the venue's fee and
    slippage (the go-live gate's reference returns).

    ``unreadable_orders`` / ``unreadable_positions``: the stored records the read left out. An
    order's fills are unknown, so the cash and the equity are; a position's holding is unknown,
    so the equity is (the cash is not). Neither is ever valued as "nothing"."""
    cash, fees = starting_equity, Decimal(0)
    for recorded in orders:
        filled, average = recorded.filled, recorded.facts.average_price
        if filled <= 0 or average is None:
            continue
        if reference_cost is None:
            notional = filled * average.value
            fee = recorded.facts.fee or Decimal(0)
        else:
            notional = filled * recorded.order.reference_price.value
            fee = notional * reference_cost
        cash += -notional if recorded.side is Side.BUY else notional
        fees += fee
        cash -= fee
    held = {symbol: p.quantity for symbol, p in positions.items() if p.quantity != 0}
    unmarked = tuple(sorted(s for s in held if s not in marks))
    unreadable = tuple(bad.describe() for bad in (*unreadable_orders, *unreadable_positions))
    equity = (
        None
        if unmarked or unreadable
        else cash + sum((qty * marks[s].price for s, qty in held.items()), Decimal(0))
    )
    return Account(cash, equity, fees, held, unmarked, unreadable, cash_known=not unreadable_orders)


class CycleReport(BaseModel):
    """What one cycle did (the execution function's JSON answer)."""

    model_config = ConfigDict(frozen=True)

    at: datetime
    dispatched: int
    cancelled_new: int
    updated: int
    expired: int
    fills_applied: int
    flattened: int
    equity: float | None
    cash: float | None  # None: an order record could not be read (see unreadable_records)
    fees: float
    daily_pnl_pct: float | None
    drawdown_pct: float | None
    risk_level: str
    risk_transition: str | None
    positions: dict[str, float]
    unmarked: list[str]
    # whether the market data the cycle decided on is fresh, and what it was (or lacked)
    market_data_fresh: bool = True
    market_data: str = ""
    unmarked_reasons: dict[str, str] = {}  # symbol → why it has no mark this cycle (bad data...)
    # the stored orders and positions the valuation could not read (key, coin, why): the equity
    # is unknown while any is, and the cash too when an order record is among them
    unreadable_records: list[str] = []
    # the open orders the kill-switch sweep of this cycle could not read (key, coin, why): not
    # cancelled, they may still rest on the venue (empty while the switch is off)
    sweep_unreadable: list[str] = []
    stage: str = "none"  # the go-live stage trading runs under (state table), and its sizing
    # account return since the previous cycle and the same for the backtest's fills (go-live SLIs)
    strategy_return_bps: float | None = None
    reference_return_bps: float | None = None
    # the exit rule this cycle: CLOSE orders it sent, and per held symbol what it decided
    # (the levels still open, the exit placed, or why no exit could be decided)
    exits_by_rule: int = 0
    exit_decisions: dict[str, str] = {}
    # per held symbol, its protective stop on the venue (placed, kept, resized, or why none);
    # empty on a venue without them (the exit rule above is then the only protection)
    protective_stops: dict[str, str] = {}
    # the venue account against the ledger (testnet / live; the paper venue is the ledger):
    # what was compared, what is missing from the account (drift: DEFENSIVE + alarm) and what
    # the account holds beyond the ledger (opened outside the system: reported, never traded)
    balance_check: str = "not applicable: the paper venue's book is the ledger"
    balance_drift: list[str] = []
    external_holdings: list[str] = []


@dataclass
class TradingCycle:
    execution: ExecutionService
    risk: RiskStateService
    market: MarketData
    metrics: Metrics
    starting_equity: Decimal
    timeframe: str = "1h"
    cluster_threshold: float = 0.8
    slis: SliRecorder | None = None  # the go-live returns (tracking error) under this Stage
    exit_rule: ExitRule = DEFAULT_EXIT_RULE
    # a real venue's account (testnet / live): reconciled against the ledger every cycle
    balances: BalanceSource | None = None
    quote_asset: str = "USDT"
    commission_assets: frozenset[str] = frozenset()  # never judged (fees may be paid in them)
    balance_tolerance: BalanceTolerance = field(default_factory=BalanceTolerance)
    marks: dict[str, Mark] = field(default_factory=dict, init=False)
    mark_errors: dict[str, str] = field(default_factory=dict, init=False)
    # the order records the last valuation could not read
    unreadable_orders: tuple[UnreadableRecord, ...] = field(default=(), init=False)
    # the position records the last valuation could not read
    unreadable_positions: tuple[UnreadableRecord, ...] = field(default=(), init=False)
    # the cycle's read of the whole book (every order, every position) and the execution
    # service's write count it was read at: reused until the service writes to the book
    _ledger: tuple[OpenOrders, PositionBook] | None = field(default=None, init=False, repr=False)
    _ledger_writes: int = field(default=-1, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.timeframe not in TIMEFRAME_MS:
            raise DomainError(f"unknown timeframe {self.timeframe!r}")
        if not self.starting_equity.is_finite() or self.starting_equity <= 0:
            raise DomainError(f"starting equity must be > 0, got {self.starting_equity}")

    @property
    def now(self) -> datetime:
        return self.execution.clock.now()

    def run(self) -> CycleReport:
        now = self.now
        # checked before anything is sent: a replay cannot rewrite history. Only a *stored*
        # state counts: a stack that never stored one starts NORMAL at its first observation.
        stored = self.risk.stored()
        if stored is not None and now < stored.since:
            raise CycleInputError(
                f"cycle at {now.isoformat()} precedes the stored risk state "
                f"({stored.since.isoformat()}): replay instants must move forward"
            )
        self._ledger = None  # every run reads the book afresh
        indexed = self.execution.orders.open_orders()
        book = self.execution.positions.load_all()
        # a coin whose record cannot be read is marked too (its exits and quotes need one)
        symbols = sorted(
            {o.symbol for o in indexed}
            | set(book)
            | {bad.symbol for bad in (*indexed.unreadable, *book.unreadable)} - {ANY_SYMBOL}
        )
        self.mark_errors = {}
        self.marks = {s: m for s in symbols if (m := self.mark(s, now)) is not None}
        universe = self.market.daily_universe(now, CLUSTER_LOOKBACK_DAYS)
        bad_data = _bad_data_fraction(universe, now)
        fresh, market_note = _market_freshness(universe, now)
        # the equity the RiskGuard sizes this cycle's decisions on: valued once, before sending
        # (the ledger is not re-read per decision; fills within the cycle move it by fees only)
        equity = self._equity_money()
        stage, halt_reason, share = self._golive_stage()
        # everything the execution service needs for this cycle, handed over once: it returns
        # what happened and never calls back into the cycle
        context = CycleContext(
            equity=equity,
            quotes={s: MarketQuote(m.closed_at, m.volume_24h_quote) for s, m in self.marks.items()},
            clusters=self._clusters(universe),
            halt_reason=halt_reason,
            risk_share=share,
        )
        counts = self.execution.reconcile(context)
        account, reference, positions = self.valuation()
        balance, balance_note = self._reconcile_balances(account)
        state, move = self.risk.observe(
            RiskObservation(
                equity=account.equity,
                bad_data_fraction=bad_data,
                consecutive_exchange_errors=self.execution.consecutive_exchange_errors,
                balance_drift=None if balance is None else balance.drift_reason,
            )
        )
        flattened = self._flatten(state.level, account, context) if account.positions else 0
        exits, decisions = (
            (0, {}) if flattened else self._exit_by_rule(state.level, account, positions, context)
        )
        protective = self._protect(state.level)
        if flattened or exits or protective:
            account, reference, _ = self.valuation()
        daily = _change_pct(state.day_start_equity, account.equity)
        drawdown = _change_pct(state.peak_equity, account.equity)
        self._emit(state.level, account, daily, drawdown)
        self._count_unreadable(indexed.unreadable)
        self._record_point(now, account, reference, state.level)
        returns = self._period_returns(now, account.equity, reference.equity)
        if returns is not None and self.slis is not None:
            self.slis.emit((mn.STRATEGY_RETURN, returns[0]), (mn.REFERENCE_RETURN, returns[1]))
        return CycleReport(
            at=now,
            dispatched=counts.resent_new,
            cancelled_new=counts.cancelled_new,
            updated=counts.updated,
            expired=counts.expired,
            fills_applied=counts.fills,
            flattened=flattened,
            equity=None if account.equity is None else float(account.equity),
            cash=None if account.known_cash is None else float(account.known_cash),
            fees=float(account.fees),
            daily_pnl_pct=daily,
            drawdown_pct=None if drawdown is None else abs(drawdown),
            risk_level=state.level.name,
            risk_transition=None
            if move is None
            else f"{move.from_level.name} -> {move.to_level.name}: {move.reason}",
            positions={s: float(q) for s, q in account.positions.items()},
            unmarked=list(account.unmarked),
            market_data_fresh=fresh,
            market_data=market_note,
            unmarked_reasons=dict(self.mark_errors),
            unreadable_records=list(account.unreadable),
            sweep_unreadable=[] if counts.sweep is None else list(counts.sweep.unreadable),
            stage=stage,
            strategy_return_bps=None if returns is None else returns[0],
            reference_return_bps=None if returns is None else returns[1],
            exits_by_rule=exits,
            exit_decisions=decisions,
            protective_stops=protective,
            balance_check=balance_note,
            balance_drift=[] if balance is None else [d.describe() for d in balance.drifts],
            external_holdings=[] if balance is None else [d.describe() for d in balance.external],
        )

    def _reconcile_balances(self, account: Account) -> tuple[BalanceCheck | None, str]:
        """The venue's balances against the ledger just valued (``None`` when there is no
        venue account, or its balances could not be read: the note says which).

        A drift is confirmed on a second read of the in-flight orders, the ledger and the
        balances before it counts: a fill landing between two reads (another function's order)
        is not a drift, and a false DEFENSIVE would cost the rest of the UTC day."""
        if self.balances is None:
            return None, "not applicable: the paper venue's book is the ledger"
        try:
            check = self._balance_check(account)
            if check.drifts:
                first = {d.asset for d in check.drifts}
                # a protective stop that triggered on the venue since the reconcile is booked
                # before the second read (its sale is the product's own, not a drift)
                self.execution.refresh_protective(first)
                again = self._balance_check(self.valuation()[0])
                # a drift counts only when both reads show it
                check = replace(
                    again,
                    disagreements=tuple(
                        d
                        for d in again.disagreements
                        if d.kind is not Disagreement.DRIFT or d.asset in first
                    ),
                )
        except ExchangeError as exc:
            return None, f"not checked: the venue's balances could not be read ({exc})"
        except DomainError as exc:
            return None, f"not checked: {exc}"
        self.metrics.add(mn.BALANCE_DRIFT.name, len(check.drifts))
        parts = [f"{len(check.checked)} asset(s) compared"]
        if check.skipped:
            parts.append(f"not judged (order in flight, commission asset, unstated or its "
                         f"position record unreadable): {', '.join(check.skipped)}")  # fmt: skip
        parts.append(
            f"{len(check.drifts)} drift(s), {len(check.external)} holding(s) outside the system"
        )
        return check, "; ".join(parts)

    def _balance_check(self, account: Account) -> BalanceCheck:
        """One comparison: the orders in flight are read first, then the balances, so a fill
        between the two reads is seen as in flight, never as missing."""
        assert self.balances is not None
        # a protective stop resting unfilled on the venue is not in flight: it would leave its
        # asset (and the cash) unjudged for as long as the position is held
        in_flight = {
            o.symbol.split("/")[0]
            for o in self.execution.orders.open_orders()
            if not is_resting_stop(o)
        }
        venue = self.balances.fetch_balances()
        held: dict[str, Decimal] = {}
        marks: dict[str, Decimal] = {}
        for symbol, quantity in account.positions.items():
            base = symbol.split("/")[0]
            held[base] = held.get(base, Decimal(0)) + quantity
            if symbol in self.marks:
                marks[base] = self.marks[symbol].price
        # a coin whose position record cannot be read: the ledger's holding is unknown, so the
        # venue's is neither a drift nor a holding outside the system
        unknown = {bad.symbol.split("/")[0] for bad in self.unreadable_positions}
        return reconcile_balances(
            venue,
            held,
            quote=self.quote_asset,
            marks=marks,
            ledger_cash=account.known_cash,  # unknown (an order record unreadable): not checked
            in_flight=in_flight,
            unknown=unknown,
            commission_assets=self.commission_assets,
            tolerance=self.balance_tolerance,
        )

    def _golive_stage(self) -> tuple[str, str | None, Decimal]:
        """The active go-live stage (``GoLiveService`` records it): ``(label, why new entries
        are halted or None, share of the risk budget every exposure cap is scaled by)``.

        Staging trades paper at full size (paper carries no capital), canary at its share of
        the risk budget (≤ 1 %: every exposure cap scaled by it), production at full size; a
        rolled-back run (halted) takes no new entries, exits only. No run yet: full size.
        Orders go to the paper venue in every stage: live placement is not wired."""
        active = self.risk.store.get(GOLIVE_PK, ACTIVE_SK)
        if active is None:
            return "none", None, Decimal(1)
        mode = str(active.get("trading_mode", "halted"))
        name = str(active.get("stage", "?"))
        if mode == "halted":
            why = f"go-live run {active.get('run_id')} {name}: halted"
            return f"{name} (halted: exits only)", why, Decimal(1)
        fraction = Decimal(str(active.get("risk_budget_fraction", 0)))
        share = Decimal(1) if mode == "paper" or fraction >= 1 else fraction
        if share <= 0:
            why = f"go-live stage {name}: no risk budget"
            return f"{name} (no risk budget: exits only)", why, Decimal(1)
        return f"{name} ({share:.2%} of the risk budget)", None, share

    def _book_read(self) -> tuple[OpenOrders, PositionBook]:
        """The cycle's read of the whole book: every order (a full Scan of the orders table)
        and every position, as aggregates. Read once, and again only after the execution
        service wrote to the book (its reconcile, an exit, a stop, a flatten): the same
        instant's book is never Scanned twice."""
        writes = self.execution.book_writes
        if self._ledger is None or writes != self._ledger_writes:
            self._ledger = (
                self.execution.orders.all_orders(),
                self.execution.positions.load_all(),
            )
            self._ledger_writes = writes
        return self._ledger

    def valuation(self) -> tuple[Account, Account, PositionBook]:
        """The account, the same book as the strategy backtest would have filled it (see
        account_from_ledger), and the positions they were valued from: the cycle's read of the
        order and position ledgers as aggregates (:meth:`_book_read`: the exit rule judges the
        same positions). The records either read left out are kept for the report and the
        metric."""
        orders, positions = self._book_read()
        self.unreadable_orders, self.unreadable_positions = orders.unreadable, positions.unreadable

        def value(reference_cost: Decimal | None) -> Account:
            return account_from_ledger(
                self.starting_equity,
                orders,
                positions,
                self.marks,
                reference_cost=reference_cost,
                unreadable_orders=orders.unreadable,
                unreadable_positions=positions.unreadable,
            )

        return value(None), value(Decimal(str(BACKTEST_COST_RATE))), positions

    def _count_unreadable(self, indexed: Sequence[UnreadableRecord]) -> None:
        """Count (``BookRecordsUnreadable``, once per cycle) the order records the valuation
        could not read that are out of the open-orders index: the execution service counts
        the positions and the indexed orders at each read of its book, these only the
        valuation reads."""
        counted = {bad.key for bad in indexed}
        outside = [bad for bad in self.unreadable_orders if bad.key not in counted]
        if outside:
            self.metrics.add(mn.BOOK_RECORDS_UNREADABLE.name, len(outside))

    def _record_point(
        self, now: datetime, account: Account, reference: Account, level: RiskLevel
    ) -> None:
        """The equity series point of this cycle (a rerun at the same instant rewrites it);
        an unknown equity is stored as absent, never as a guess."""
        self.risk.store.put(
            EXECUTION_PK,
            f"{EQUITY_PREFIX}{now.isoformat()}",
            {
                "at": now,
                "equity": account.equity,
                "reference": reference.equity,
                "cash": account.known_cash,  # unknown: absent
                "fees": account.fees,
                "risk_level": level.name,
            },
        )

    def _period_returns(
        self, now: datetime, equity: Decimal | None, reference: Decimal | None
    ) -> tuple[float, float] | None:
        """Returns since the previous cycle, in bps, of the account and of its backtest twin.

        The previous valuation is kept in the state table, so consecutive invocations pair up;
        a rerun at the same instant or an unknown equity yields no period (and keeps the last)."""
        last = self.risk.store.get(EXECUTION_PK, VALUATION_SK)
        if equity is None or reference is None:
            return None
        if last is not None and datetime.fromisoformat(str(last["at"])) >= now:
            return None
        self.risk.store.put(
            EXECUTION_PK, VALUATION_SK, {"at": now, "equity": equity, "reference": reference}
        )
        if last is None:
            return None
        before, before_ref = Decimal(str(last["equity"])), Decimal(str(last["reference"]))
        if before <= 0 or before_ref <= 0:
            return None
        return (
            float((equity / before - 1) * BPS),
            float((reference / before_ref - 1) * BPS),
        )

    # ------------------------------------------------------------------ market view

    def mark(self, symbol: str, now: datetime) -> Mark | None:
        """Last closed bar at or before ``now`` and the quote volume of the 24 h before it."""
        step = TIMEFRAME_MS[self.timeframe]
        now_ms = ms_from_utc(now)
        try:
            bars = self.market.ohlcv(symbol, self.timeframe, now - timedelta(days=2), now)
        except ValueError as exc:  # unknown symbol, or bars the data layer's gate rejected
            self.mark_errors[symbol] = str(exc).splitlines()[0] if str(exc) else repr(exc)
            return None  # unmarked (this symbol only), never guessed
        closed = bars.filter(pl.col("ts") + step <= now_ms).sort("ts")
        if closed.is_empty():
            return None
        last = closed.row(-1, named=True)
        close = last["close"]
        if close is None or not (math.isfinite(close) and close > 0):  # a source without a gate
            self.mark_errors[symbol] = f"{symbol}: last close {close} is not a price"
            return None
        last_ts = int(last["ts"])
        day = closed.filter(pl.col("ts") > last_ts - DAY_MS)  # the 24 h ending with it
        complete = day.height == DAY_MS // step
        volume = Decimal(repr(float((day["volume"] * day["close"]).sum()))) if complete else None
        return Mark(Decimal(repr(float(last["close"]))), utc_from_ms(last_ts + step), volume)

    def _clusters(self, frame: pl.DataFrame) -> dict[str, str]:
        if frame.is_empty():
            return {}
        return correlation_clusters(
            frame.select("symbol", "ts", "close").filter(pl.col("close") > 0),
            threshold=self.cluster_threshold,
        )

    def _equity_money(self) -> Money | None:
        equity = self.valuation()[0].equity
        return None if equity is None else Money(equity)

    # ------------------------------------------------------------------ risk actions

    def _flatten(self, level: RiskLevel, account: Account, context: CycleContext) -> int:
        """At EMERGENCY, once the kill-switch is off again: close every marked position.

        One CLOSE per position (its identity is the position, see ``resolve_close``): a close
        still open from an earlier cycle, or the scan's, is found and nothing is sent again."""
        if level is not RiskLevel.EMERGENCY or not LEVEL_POLICIES[level].exits:
            return 0
        if self.execution.kill_switch.status().on:
            return 0  # the switch stays authoritative (and unreadable means on): nothing leaves
        equity = None if account.equity is None else Money(account.equity)
        sent = 0
        for symbol, qty in sorted(account.positions.items()):
            mark = self.marks.get(symbol)
            if qty <= 0 or mark is None:
                continue
            try:
                sent += self._close(FLATTEN_STRATEGY, symbol, qty, mark, equity, context).sent
            except Exception as exc:  # noqa: BLE001 - one position's error: the others go on
                self._exit_failed(symbol, "flatten", exc)
        return sent

    def _exit_failed(self, symbol: str, what: str, exc: Exception) -> str:
        """One position's exit failed (:func:`position_failed`: logged, counted); the cycle
        goes on with the other positions."""
        return position_failed(symbol, what, exc, self.metrics)

    def _close(
        self,
        strategy: str,
        symbol: str,
        qty: Decimal,
        mark: Mark,
        equity: Money | None,
        context: CycleContext,
    ) -> ExecutionResult:
        """Submit the CLOSE of a whole position at its mark (keyed on the position by
        ``ExecutionService.submit``: whoever closes it first, there is one order)."""
        intent = OrderIntent(
            strategy=strategy,
            symbol=Symbol(symbol),
            side=Side.SELL,
            intent=Intent.CLOSE,
            signal_bar_ms=ms_from_utc(mark.closed_at),
            quantity=Quantity(qty),
            reference_price=Price(mark.price),
        )
        return self.execution.submit(
            intent, equity=equity, quote=context.quote(intent.symbol), context=context
        )

    def _protect(self, level: RiskLevel) -> dict[str, str]:
        """A protective stop on the venue for each held position, at the exit rule's stop
        price on its average entry: the catastrophe stop that holds while the system is down.
        Where the venue takes OCO order lists (Binance spot) the exit rule's take-profit price
        rests beside it as a ``LIMIT_MAKER`` sell, one leg filled cancelling the other. The
        exit rule above stays the primary exit (a close cancels the stop or list first).

        A coin whose position record cannot be read is left out of the stops handed over: what
        rests for it is kept as it is (never cancelled or resized as "not held": it may be the
        position's only exit on the venue), and the report says so."""
        if not self.execution.protective_stops_supported() or not LEVEL_POLICIES[level].exits:
            return {}
        loss = Decimal(repr(self.exit_rule.stop_loss))
        gain = Decimal(repr(self.exit_rule.take_profit))
        stops: dict[str, Decimal] = {}
        take_profits: dict[str, Decimal] = {}
        book = self.execution.positions.load_all()
        for symbol, position in book.items():
            price = position.average_price
            if position.quantity <= 0 or price is None:
                continue
            if price.is_finite() and price > 0:
                stops[symbol] = price * (Decimal(1) - loss)
                take_profits[symbol] = price * (Decimal(1) + gain)
        # the last closes: a list the venue refused is placed again once the price is back
        # between its legs
        marks = {s: m.price for s, m in self.marks.items()}
        done = self.execution.protect_positions(stops, take_profits, marks)
        for bad in book.unreadable:
            done.setdefault(
                bad.symbol,
                f"position record unreadable ({bad.reason}): a protective stop resting for it "
                "is kept as it is, none placed, resized or cancelled until it is repaired",
            )
        return done

    def _exit_by_rule(
        self,
        level: RiskLevel,
        account: Account,
        stored: PositionBook,
        context: CycleContext,
    ) -> tuple[int, dict[str, str]]:
        """The exit rule over every held position: one CLOSE where it says exit.

        Each position is judged on the daily closes after its opening fill (``opened_at``) with
        its average entry price, exactly as the evaluation judges a trade from its entry close.
        The CLOSE is keyed on the position (``ExecutionService.submit`` resolves it), so the
        exit is placed once: the next cycles, a flatten or a retry find it and send nothing.
        A position whose record cannot be read is held, and the decision says why."""
        unreadable = {
            bad.symbol: f"held: position record unreadable ({bad.reason})"
            for bad in stored.unreadable
        }
        if not account.positions:
            return 0, unreadable
        if not LEVEL_POLICIES[level].exits:
            why = f"held: the risk level {level.name} allows no exit orders"
            return 0, {**dict.fromkeys(sorted(account.positions), why), **unreadable}
        decisions: dict[str, str] = dict(unreadable)
        if self.execution.kill_switch.status().on:
            why = "kill-switch on: no exit is sent while it holds"
            return 0, {**dict.fromkeys(sorted(account.positions), why), **unreadable}
        now = self.now
        equity = None if account.equity is None else Money(account.equity)
        sent = 0
        for symbol, qty in sorted(account.positions.items()):
            mark = self.marks.get(symbol)
            if qty <= 0:
                continue
            if mark is None:
                decisions[symbol] = "held: no mark this cycle, no exit decided on untrusted data"
                continue
            try:
                decision, why = self._exit_decision(symbol, stored[symbol], now)
            except Exception as exc:  # noqa: BLE001 - the lake (S3, a damaged file): this one only
                first = str(exc).splitlines()[0] if str(exc) else ""
                decision, why = None, f"daily bars unreadable ({type(exc).__name__}: {first})"
            if decision is None:
                decisions[symbol] = f"held: {why}"
                continue
            if decision.reason is ExitReason.OPEN:
                decisions[symbol] = (
                    f"held {decision.days_held} of {decision.expires_after_days} days: take "
                    f"profit at {decision.take_profit_price:.6g}, stop at "
                    f"{decision.stop_price:.6g} (daily closes, confirmed on a second close)"
                    + (f"; {why}" if why else "")
                )
                continue
            try:
                result = self._close(EXIT_RULE_STRATEGY, symbol, qty, mark, equity, context)
            except Exception as exc:  # noqa: BLE001 - one position's error: the others go on
                why = self._exit_failed(symbol, "the close", exc)
                decisions[symbol] = f"exit by the rule ({decision.reason.value}): {why}"
                continue
            sent += result.sent
            decisions[symbol] = (
                f"exit by the rule ({decision.reason.value} after {decision.days_held} days): "
                f"close {result.client_order_id} {result.status}"
                + (f" ({result.reason})" if result.reason else "")
            )
        return sent, decisions

    def _exit_decision(
        self, symbol: str, position: Position, now: datetime
    ) -> tuple[ExitDecision | None, str]:
        """The exit rule's verdict on one position as of ``now`` (None and why when it cannot
        be judged: no entry price or opening time recorded, or no daily bars readable)."""
        entry = position.average_price
        opened_at = position.opened_at
        if entry is None or not entry > 0:
            return None, "no entry price recorded on the position"
        if opened_at is None:
            return None, (
                "no opening time recorded on the position (a dust remainder whose episode "
                "ended, opened before it was kept, or a time the record holds unreadably)"
            )
        opened_day = ms_from_utc(opened_at) // DAY_MS
        today = ms_from_utc(now) // DAY_MS  # the last daily close possible closed at its 00:00
        days = today - opened_day  # closes of days 1..days after the entry day
        if days <= 0:
            return ExitDecision(
                ExitReason.OPEN,
                None,
                0,
                self.exit_rule.take_profit_price(float(entry)),
                self.exit_rule.stop_price(float(entry)),
                self.exit_rule.max_days,
            ), ""
        try:
            bars = self.market.ohlcv(
                symbol, "1d", utc_from_ms(opened_day * DAY_MS), utc_from_ms(today * DAY_MS)
            )
        except ValueError as exc:  # bars the data layer's gate rejected, unknown symbol
            return None, f"daily bars unreadable: {str(exc).splitlines()[0] if str(exc) else exc!r}"
        closes: list[float | None] = [None] * min(days, self.exit_rule.max_days)
        closed = bars.filter(pl.col("ts") + DAY_MS <= ms_from_utc(now))
        for ts, close in zip(closed["ts"].to_list(), closed["close"].to_list(), strict=True):
            i = (int(ts) + DAY_MS) // DAY_MS - (opened_day + 1)  # close day 1 = entry day + 1
            ok = close is not None and math.isfinite(close) and close > 0
            if 0 <= i < len(closes) and ok:
                closes[i] = float(close)
        decision = exit_decision(self.exit_rule, float(entry), closes)
        if days >= 2 and all(c is None for c in closes):
            # the take profit and stop cannot act without closes; the time limit still does
            return decision, "no daily close in the data since entry"
        return decision, ""

    def _emit(
        self,
        level: RiskLevel,
        account: Account,
        daily: float | None,
        drawdown: float | None,
    ) -> None:
        self.metrics.add("RiskLevel", int(level), "None")
        if account.equity is None:
            return  # unknown equity: no PnL figure rather than a wrong one
        self.metrics.add("Equity", float(account.equity), "None")
        if daily is not None:
            self.metrics.add("DailyPnl", daily, "Percent")
        if drawdown is not None:
            self.metrics.add("Drawdown", abs(drawdown), "Percent")  # peak >= equity: a loss
        if account.equity > 0:
            gross = sum(
                (qty * self.marks[s].price for s, qty in account.positions.items()), Decimal(0)
            )
            self.metrics.add("GrossExposure", float(gross / account.equity * 100), "Percent")


def _bad_data_fraction(daily: pl.DataFrame, now: datetime) -> Decimal:
    """Share of the universe the daily quality gate excludes as of today (the data-quality
    breaker's input). No data at all is the worst case, not a clean bill."""
    universe = daily["symbol"].n_unique() if not daily.is_empty() else 0
    if universe == 0:
        return Decimal(1)
    today_ms = ms_from_utc(now) // DAY_MS * DAY_MS
    excluded = len(check_daily(daily, today_ms).excluded)
    return Decimal(excluded) / Decimal(universe)


def _market_freshness(daily: pl.DataFrame, now: datetime) -> tuple[bool, str]:
    """Whether the daily bars the cycle sees are fresh (the newest closed within
    ``STALE_DAILY_DAYS`` of ``now``), and a sentence saying what the cycle had, or lacked."""
    at = f"{now:%Y-%m-%d %H:%M} UTC"
    if daily.is_empty():
        return False, (
            f"no fresh market data: no daily bar closed in the {CLUSTER_LOOKBACK_DAYS} days up "
            f"to {at} (has the ingest filled the lake?); nothing can fill or be valued"
        )
    newest_ms = int(daily["ts"].max())  # type: ignore[arg-type]
    newest = utc_from_ms(newest_ms)
    symbols = daily["symbol"].n_unique()
    age_days = (ms_from_utc(now) - newest_ms) / DAY_MS
    if age_days > STALE_DAILY_DAYS:
        return False, (
            f"no fresh market data: the newest daily bar closed {newest:%Y-%m-%d %H:%M} UTC, "
            f"{age_days:.1f} days before {at}"
        )
    return True, f"daily bars of {symbols} symbols, newest closed {newest:%Y-%m-%d %H:%M} UTC"


def _change_pct(reference: Decimal | None, equity: Decimal | None) -> float | None:
    """Percent change of ``equity`` from ``reference`` (None when either is unknown)."""
    if reference is None or equity is None or reference <= 0:
        return None
    return float((equity - reference) / reference * 100)
