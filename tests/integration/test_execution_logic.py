"""The execution service's logic on the in-memory fakes (``tests/fakes.py``): dedup by client
order ID, the 60-minute window on an injected clock, reconciling a lost venue answer by client
ID, resuming or cancelling orders a crash left NEW, the kill-switch and RiskGuard rejections and
the spot selling rules, with the paper venue filling on real Binance bars. No AWS here: the
DynamoDB and SSM adapters keep the same contract (``test_store_contract.py``), and
``test_execution.py`` keeps the paths that are about AWS (concurrency on DynamoDB, restarts
over the embedded AWS)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from cryptosmarttrader.adapters.dynamodb_store import recorded_order_from_record
from cryptosmarttrader.adapters.emf_metrics import InMemoryMetrics
from cryptosmarttrader.adapters.paper_exchange import PaperExchange
from cryptosmarttrader.adapters.recorded_data import RecordedMarketData
from cryptosmarttrader.domain.aggregates import Order
from cryptosmarttrader.domain.clock import FixedClock
from cryptosmarttrader.domain.exchange import ExchangeOrder, OrderStateUnknownError
from cryptosmarttrader.domain.order_changes import OrderFacts, StatusChange
from cryptosmarttrader.domain.orders import Intent, OrderIntent, OrderStatus
from cryptosmarttrader.domain.risk import MarketQuote, RiskLevel, RiskObservation
from cryptosmarttrader.domain.types import Money, Price, Quantity, Side, Symbol
from cryptosmarttrader.services.execution import CycleContext, ExecutionService
from cryptosmarttrader.services.risk_state import RiskStateService
from tests.fakes import (
    InMemoryKillSwitch,
    InMemoryOrderLedger,
    InMemoryPositionLedger,
    InMemoryStateStore,
)
from tests.support.execution import (
    BTC,
    EQUITY,
    NOW,
    AcceptThenTimeout,
    ProcessDied,
    btc_intent,
    quote_at_now,
)

pytestmark = pytest.mark.realdata

_quote, _intent = quote_at_now, btc_intent


@pytest.fixture(scope="module")
def market(data_dir: Path) -> RecordedMarketData:
    return RecordedMarketData(data_dir)


@dataclass
class Rig:
    """The ports on fakes, shared by every service built (what a restart finds)."""

    clock: FixedClock
    paper: PaperExchange
    switch: InMemoryKillSwitch
    risk: RiskStateService
    ledger: InMemoryOrderLedger = field(default_factory=InMemoryOrderLedger)
    positions: InMemoryPositionLedger = field(default_factory=InMemoryPositionLedger)
    metrics: InMemoryMetrics = field(default_factory=InMemoryMetrics)

    def service(self, exchange: object | None = None, orders: Any = None) -> ExecutionService:
        """A fresh service over the same ledgers and venue (what a restart builds)."""
        return ExecutionService(
            orders=orders or self.ledger,
            positions=self.positions,
            kill_switch=self.switch,
            risk=self.risk,
            exchange=exchange or self.paper,  # type: ignore[arg-type]
            clock=self.clock,
            metrics=self.metrics,
        )

    def orders(self) -> list[dict[str, object]]:
        return self.ledger.list_orders()

    def position(self, symbol: str = "BTC/USDT") -> dict[str, object] | None:
        return self.positions.get(symbol)


@pytest.fixture
def rig(market: RecordedMarketData) -> Rig:
    clock = FixedClock(NOW)
    switch = InMemoryKillSwitch(NOW, clock)
    risk = RiskStateService(InMemoryStateStore(), switch, clock)
    return Rig(clock, PaperExchange(market, clock), switch, risk)


# ------------------------------------------------------------------------------ tests


def test_crash_before_the_order_is_recorded_does_not_block_the_decision(
    rig: Rig, market: RecordedMarketData
) -> None:
    # Given a process that died just before recording the order
    price, quote = _quote(market)
    intent = _intent(price)

    class DiesBeforeRecord(InMemoryOrderLedger):
        def put_new(self, order: object) -> bool:
            raise ProcessDied

    service = rig.service(orders=DiesBeforeRecord())
    with pytest.raises(ProcessDied):
        service.submit(intent, equity=EQUITY, quote=quote)
    assert rig.orders() == []
    # When the same decision is submitted again within the window
    retried = rig.service().submit(intent, equity=EQUITY, quote=quote)
    again = rig.service().submit(intent, equity=EQUITY, quote=quote)
    # Then it is recorded and sent once, and a further submission is a duplicate
    assert retried.status == OrderStatus.FILLED.value
    assert again.status == "duplicate"
    assert rig.paper.create_calls == 1
    assert [o["status"] for o in rig.orders()] == [OrderStatus.FILLED.value]


@pytest.mark.parametrize("later_minutes", [59, 61, 24 * 60])
def test_the_same_decision_stays_a_duplicate_through_and_beyond_the_60_minute_window(
    rig: Rig, market: RecordedMarketData, later_minutes: int
) -> None:
    # Given a decision recorded and sent at NOW
    price, quote = _quote(market)
    first = rig.service().submit(_intent(price), equity=EQUITY, quote=quote)
    assert first.status == OrderStatus.FILLED.value
    # When the same decision (same signal bar: same client order ID) comes again 59 minutes,
    # 61 minutes or a day later, on the injected clock
    rig.clock.advance(timedelta(minutes=later_minutes))
    again = rig.service().submit(_intent(price), equity=EQUITY, quote=quote)
    # Then it is a duplicate: the conditional insert keyed on the client order ID dedups it for
    # good, so the 60-minute window the venues need is covered with no claim table beside it
    assert (again.status, again.client_order_id) == ("duplicate", first.client_order_id)
    assert rig.paper.create_calls == 1
    assert [o["status"] for o in rig.orders()] == [OrderStatus.FILLED.value]


def test_a_new_decision_61_minutes_later_is_not_a_duplicate(
    rig: Rig, market: RecordedMarketData
) -> None:
    # Given a decision recorded at NOW
    price, quote = _quote(market)
    first = rig.service().submit(_intent(price), equity=EQUITY, quote=quote)
    # When the next bar's decision on the same coin arrives 61 minutes later
    rig.clock.advance(timedelta(minutes=61))
    later_quote = MarketQuote(rig.clock.now() - timedelta(minutes=1), quote.volume_24h_quote)
    second = rig.service().submit(
        _intent(price, bar_ms=3_600_000), equity=EQUITY, quote=later_quote
    )
    # Then it is a new order (its own client order ID), not a duplicate
    assert second.client_order_id != first.client_order_id
    assert second.status != "duplicate"
    assert len(rig.orders()) == 2


def test_defensive_level_rejects_entries_naming_the_rule(
    rig: Rig, market: RecordedMarketData
) -> None:
    price, quote = _quote(market)
    rig.risk.override(RiskLevel.DEFENSIVE, "bob", "exchange incident")
    result = rig.service().submit(_intent(price), equity=EQUITY, quote=quote)
    assert (result.status, result.rule) == ("rejected", "risk_level")
    assert rig.orders() == []


@pytest.mark.parametrize(
    ("equity", "quote_kind", "rule"),
    [
        (None, "ok", "equity"),
        (EQUITY, "none", "market_data"),
        (EQUITY, "stale", "stale_quote"),
    ],
)
def test_bad_input_is_rejected_with_a_reason_and_nothing_is_written(
    rig: Rig, market: RecordedMarketData, equity: Money | None, quote_kind: str, rule: str
) -> None:
    price, quote = _quote(market)
    chosen = {
        "ok": quote,
        "none": None,
        "stale": MarketQuote(NOW - timedelta(hours=2), quote.volume_24h_quote),
    }[quote_kind]
    result = rig.service().submit(_intent(price), equity=equity, quote=chosen)
    assert (result.status, result.rule) == ("rejected", rule)
    assert rig.orders() == []


def _sell_record(coid: str, qty: str, status: str = "NEW") -> dict[str, object]:
    return {
        "client_order_id": coid, "symbol": "BTC/USDT", "side": "sell", "intent": "reduce",
        "order_type": "market", "quantity": Decimal(qty), "reference_price": Decimal("30000"),
        "strategy": "other-worker", "signal_bar_ms": 1_652_140_800_000, "status": status,
        "mode": "paper", "created_at": NOW.isoformat(),
    }  # fmt: skip


def _hold(rig: Rig, qty: str) -> None:
    rig.positions.upsert(
        {"symbol": "BTC/USDT", "quantity": Decimal(qty), "cost": Decimal(qty) * 30000,
         "notional": Decimal(qty) * 30000}, None,
    )  # fmt: skip


def test_a_sell_recorded_beyond_the_holding_is_cut_at_dispatch_and_alarmed(rig: Rig) -> None:
    # Given 0.03 BTC held and a sell of 0.05 recorded by another worker (not RiskGuard-checked)
    _hold(rig, "0.03")
    orders = rig.ledger
    assert orders.put_new(_sell_record("a" * 32, "0.05"))

    # When the execution service sends it
    rig.service().reconcile()

    # Then only what is held was sold, the position is flat, not short, and the cut is counted
    order = orders.get("a" * 32)
    assert order is not None and Decimal(str(order["quantity"])) == Decimal("0.03")
    assert Decimal(str(rig.position()["quantity"])) == 0  # type: ignore[index]
    assert rig.metrics.total("OversellRefused") == 1


def test_a_sell_with_everything_held_already_being_sold_is_refused(rig: Rig) -> None:
    # Given 0.03 BTC held, a sell of all of it at the venue, and another sell recorded
    _hold(rig, "0.03")
    orders = rig.ledger
    assert orders.put_new(_sell_record("b" * 32, "0.03", status="ACCEPTED"))
    assert orders.put_new(_sell_record("c" * 32, "0.02"))

    # When the execution service reconciles (the venue does not know the first one)
    rig.service().reconcile()

    # Then the second sell is refused with its reason and never reaches the venue
    order = orders.get("c" * 32)
    assert order is not None and order["status"] == OrderStatus.CANCELED.value
    assert "oversell refused" in str(order["cancel_reason"])
    assert rig.paper.create_calls == 0
    assert rig.metrics.total("OversellRefused") == 1


def test_a_sell_fill_beyond_the_holding_never_books_a_short(rig: Rig) -> None:
    # Given 0.03 BTC held and a venue reporting a sell of 0.05 filled
    _hold(rig, "0.03")
    fill = recorded_order_from_record(
        {**_sell_record("d" * 32, "0.05", status="FILLED"), "filled": Decimal("0.05"),
         "average_price": Decimal("30000")}
    )  # fmt: skip

    # When the fill is applied (twice: a replay of the same answer)
    service = rig.service()
    assert service._apply_fill_to_position(fill)
    assert not service._apply_fill_to_position(fill)

    # Then the position stops at zero, the excess is kept with its reason, and it is alarmed once
    position = rig.position()
    assert position is not None
    assert Decimal(str(position["quantity"])) == 0
    assert Decimal(str(position["oversold"])) == Decimal("0.02")
    assert "d" * 32 in str(position["oversold_reason"])
    assert rig.metrics.total("OversellRefused") == 1


# ------------------------------------------------------------------ the cycle's context


def _recorded_buy(rig: Rig, price: Price) -> str:
    """A NEW buy the scan recorded (valid two hours), waiting for the execution cycle."""
    order = Order.new(
        _intent(price, bar_ms=7), created_at=NOW, mode="paper", valid_for=timedelta(hours=2)
    )
    assert rig.ledger.record(order) is True
    return order.client_order_id.value


def test_a_halted_stage_in_the_context_cancels_new_entries(
    rig: Rig, market: RecordedMarketData
) -> None:
    # Given a NEW buy recorded by the scan
    price, quote = _quote(market)
    coid = _recorded_buy(rig, price)
    # When the cycle hands over a context whose go-live stage is halted
    context = CycleContext(
        equity=EQUITY, quotes={BTC.value: quote}, halt_reason="go-live run r1 canary: halted"
    )
    counts = rig.service().reconcile(context)
    # Then the entry is cancelled with the stage's reason and nothing reaches the venue
    order = rig.ledger.get(coid)
    assert order is not None and order["status"] == OrderStatus.CANCELED.value
    assert order["cancel_reason"] == "new entries halted: go-live run r1 canary: halted"
    assert (counts.cancelled_new, rig.paper.create_calls) == (1, 0)


def test_the_context_risk_share_scales_the_guard_at_dispatch(
    rig: Rig, market: RecordedMarketData
) -> None:
    # Given a NEW buy of about 0.9 % of equity recorded by the scan
    price, quote = _quote(market)
    coid = _recorded_buy(rig, price)
    # When the cycle runs in a canary at 1 % of the risk budget (a 2 % cap becomes 0.02 %)
    context = CycleContext(equity=EQUITY, quotes={BTC.value: quote}, risk_share=Decimal("0.01"))
    rig.service().reconcile(context)
    # Then the RiskGuard cut the order to the scaled cap before it was sent
    order = rig.ledger.get(coid)
    assert order is not None and order["status"] == OrderStatus.FILLED.value
    cap = EQUITY.amount * Decimal("0.02") * Decimal("0.01")
    assert Decimal(str(order["quantity"])) * price.value <= cap
    assert Decimal(str(order["quantity"])) < Decimal("0.03")


def test_without_a_context_a_recorded_order_is_sent_as_recorded(
    rig: Rig, market: RecordedMarketData
) -> None:
    # Given a NEW buy recorded before a crash
    price, _ = _quote(market)
    coid = _recorded_buy(rig, price)
    # When a restarted service recovers with no cycle context
    counts = rig.service().reconcile()
    # Then it is sent once at its recorded size
    order = rig.ledger.get(coid)
    assert order is not None and order["status"] == OrderStatus.FILLED.value
    assert Decimal(str(order["quantity"])) == Decimal("0.03")
    assert (counts.resent_new, rig.paper.create_calls) == (1, 1)


def test_a_risk_share_outside_the_budget_is_refused() -> None:
    with pytest.raises(ValueError, match="risk share"):
        CycleContext(equity=EQUITY, risk_share=Decimal(0))


# ------------------------------------------------------------------ lost answers, crashes, switch


def test_accept_then_timeout_reconciles_by_client_id_and_never_sends_again(
    rig: Rig, market: RecordedMarketData
) -> None:
    # Given a venue that accepts the order and then times out
    price, quote = _quote(market)
    intent = _intent(price)
    flaky = AcceptThenTimeout(rig.paper)
    service = rig.service(flaky)
    # When the decision is submitted
    result = service.submit(intent, equity=EQUITY, quote=quote)
    # Then the order was found by client ID and recorded as filled, with its real fill price
    assert result.status == OrderStatus.FILLED.value
    fill = rig.paper.fill_for(intent.client_order_id)
    assert fill is not None and result.average_price == fill.price.value
    # When the same decision is retried and a reconcile pass runs
    again = service.submit(intent, equity=EQUITY, quote=quote)
    counts = service.reconcile()
    # Then no second order reached the exchange and the position holds one fill
    assert again.status == "duplicate"
    assert rig.paper.create_calls == 1
    assert counts.fills == 0
    position = rig.position()
    assert position is not None and position["quantity"] == Decimal("0.03")
    assert service.consecutive_exchange_errors == 1


def test_timeout_before_the_venue_saw_the_order_expires_it_without_resending(
    rig: Rig, market: RecordedMarketData
) -> None:
    # Given a venue whose create_order times out before accepting anything
    price, quote = _quote(market)

    class LostRequest(AcceptThenTimeout):
        def create_order(self, *args: object, **kw: object) -> ExchangeOrder:
            raise OrderStateUnknownError("paper", "create_order", "connect timeout", "x" * 8)

    service = rig.service(LostRequest(rig.paper))
    result = service.submit(_intent(price), equity=EQUITY, quote=quote)
    # Then it stays SUBMITTED (a venue may show an order late: it is looked up again at
    # growing intervals, never resent) and is EXPIRED only after the absent horizon
    assert result.status == OrderStatus.SUBMITTED.value
    assert service.reconcile().expired == 0
    rig.clock.advance(timedelta(minutes=3))
    assert service.reconcile().expired == 0
    (order,) = rig.orders()
    assert order["status"] == OrderStatus.SUBMITTED.value and order["absent_lookups"] == 1
    rig.clock.advance(service.absent_horizon)
    assert service.reconcile().expired == 1
    (order,) = rig.orders()
    assert order["status"] == OrderStatus.EXPIRED.value
    assert rig.paper.create_calls == 0


def test_crash_after_record_before_send_resumes_the_order_once(
    rig: Rig, market: RecordedMarketData
) -> None:
    # Given a process that dies after recording the order NEW, before marking it SUBMITTED
    price, quote = _quote(market)
    intent = _intent(price)

    class DiesBeforeSubmitted:
        """The rig's ledger, in a process killed on its next status move."""

        def __getattr__(self, name: str) -> Any:
            return getattr(rig.ledger, name)

        def update_status(self, *args: object, **kw: object) -> bool:
            raise ProcessDied

    service = rig.service(orders=DiesBeforeSubmitted())
    with pytest.raises(ProcessDied):
        service.submit(intent, equity=EQUITY, quote=quote)
    assert [o["status"] for o in rig.orders()] == [OrderStatus.NEW.value]
    # When a restarted service reconciles twice
    restarted = rig.service()
    first = restarted.reconcile()
    second = restarted.reconcile()
    # Then the order was sent exactly once and filled
    assert (first.resent_new, second.resent_new) == (1, 0)
    assert rig.paper.create_calls == 1
    assert [o["status"] for o in rig.orders()] == [OrderStatus.FILLED.value]


def test_new_order_older_than_the_resume_window_is_cancelled_not_sent(
    rig: Rig, market: RecordedMarketData
) -> None:
    price, _ = _quote(market)
    rig.ledger.put_new(
        {
            "client_order_id": "cd" * 16,
            "symbol": "BTC/USDT",
            "side": "buy",
            "intent": "open",
            "strategy": "crashed-run",
            "signal_bar_ms": 1_652_140_800_000,
            "quantity": "0.01",
            "reference_price": price.value,
            "status": OrderStatus.NEW,
            "created_at": NOW - timedelta(minutes=11),
        }
    )
    assert rig.service().reconcile().cancelled_new == 1
    assert rig.paper.create_calls == 0


def test_kill_switch_on_means_zero_orders_and_cancels_pending_ones(
    rig: Rig, market: RecordedMarketData
) -> None:
    price, quote = _quote(market)
    # Given a NEW order left by a crash, and the kill-switch turned on by an operator
    rig.ledger.put_new(
        {
            "client_order_id": "ab" * 16,
            "symbol": "BTC/USDT",
            "side": "buy",
            "intent": "open",
            "strategy": "crashed-run",
            "signal_bar_ms": 1_652_140_800_000,
            "quantity": "0.01",
            "reference_price": price.value,
            "status": OrderStatus.NEW,
            "created_at": NOW,
        }
    )
    rig.switch.set(True, "drill", "alice")
    service = rig.service()
    # When 50 different decisions are submitted
    results = [
        service.submit(_intent(price, bar_ms=i), equity=EQUITY, quote=quote) for i in range(50)
    ]
    # Then none reached the exchange, each names the switch, and the pending order is cancelled
    assert rig.paper.create_calls == 0
    assert {(r.status, r.rule) for r in results} == {("rejected", "kill_switch")}
    assert all("drill" in r.reason for r in results)
    assert [o["status"] for o in rig.orders()] == [OrderStatus.CANCELED.value]


def test_risk_emergency_turns_the_switch_on_and_blocks_orders(
    rig: Rig, market: RecordedMarketData
) -> None:
    price, quote = _quote(market)
    # Given equity observed at 100,000 then an 8 % daily loss
    rig.risk.observe(RiskObservation(Decimal("100000")))
    rig.clock.advance(timedelta(minutes=1))
    state, move = rig.risk.observe(RiskObservation(Decimal("92000")))
    assert state.level is RiskLevel.EMERGENCY and move is not None
    # When the next decision comes (after the switch cache)
    rig.clock.advance(timedelta(seconds=6))
    result = rig.service().submit(_intent(price), equity=EQUITY, quote=quote)
    # Then the kill-switch (set by the RiskGuard) stops it
    assert (result.status, result.rule) == ("rejected", "kill_switch")
    assert "RiskGuard EMERGENCY" in result.reason
    assert rig.paper.create_calls == 0


def test_symbol_without_real_bars_is_rejected_by_the_paper_venue(
    rig: Rig, market: RecordedMarketData
) -> None:
    # Given a pair the recorded data does not hold (the venue cannot fill it)
    price, quote = _quote(market)
    intent = OrderIntent(
        "exec-test", Symbol("NOPE/USDT"), Side.BUY, Intent.OPEN, 1, Quantity.of("1"), price
    )
    result = rig.service().submit(intent, equity=EQUITY, quote=quote)
    # Then the order is recorded REJECTED with the venue's reason (complete, not half-written)
    assert result.status == OrderStatus.REJECTED.value
    (order,) = rig.orders()
    assert order["status"] == OrderStatus.REJECTED.value
    assert "NOPE/USDT" in str(order["reject_reason"])


def _damaged_record(coid: str, symbol: str) -> dict[str, object]:
    """An open order as an earlier version left it: its creation time without a zone."""
    return {
        "client_order_id": coid, "symbol": symbol, "side": "buy", "intent": "open",
        "order_type": "market", "quantity": Decimal("1"), "reference_price": Decimal("2000"),
        "strategy": "old-version", "signal_bar_ms": 1_652_140_800_000, "status": "SUBMITTED",
        "created_at": "2022-05-10T09:00:00",
    }  # fmt: skip


def test_one_damaged_record_never_stops_the_kill_switch_sweep_of_the_others(
    rig: Rig, market: RecordedMarketData
) -> None:
    # Given a NEW buy of BTC left by a crash, and a damaged open order of ETH in the index
    price, _ = _quote(market)
    coid = _recorded_buy(rig, price)
    assert rig.ledger.put_new(_damaged_record("e" * 32, "ETH/USDT"))
    # When the kill-switch is on and the cycle reconciles
    rig.switch.set(True, "drill", "alice")
    rig.service().reconcile()
    # Then the sound order is cancelled, the damaged one is left as stored, and counted
    assert rig.ledger.get(coid)["status"] == OrderStatus.CANCELED.value  # type: ignore[index]
    assert rig.ledger.get("e" * 32)["status"] == "SUBMITTED"  # type: ignore[index]
    assert rig.metrics.total("BookRecordsUnreadable") >= 1


def test_a_coin_with_a_damaged_record_takes_no_entry_and_the_others_trade(
    rig: Rig, market: RecordedMarketData
) -> None:
    price, quote = _quote(market)
    # Given a damaged open buy of BTC (its exposure unknown) and a NEW BTC buy left by a crash
    assert rig.ledger.put_new(_damaged_record("e" * 32, "BTC/USDT"))
    left = _recorded_buy(rig, price)
    service = rig.service()
    # When the cycle reconciles and a new BTC entry is submitted
    service.reconcile()
    result = service.submit(_intent(price, bar_ms=9), equity=EQUITY, quote=quote)
    # Then nothing is sent on BTC: the entry is refused naming the record, the crash's order
    # is left NEW (nothing lost), never read as "no exposure"
    assert (result.status, result.rule) == ("rejected", "book_unreadable")
    assert "e" * 32 in result.reason
    assert rig.ledger.get(left)["status"] == OrderStatus.NEW.value  # type: ignore[index]
    assert rig.paper.create_calls == 0
    assert rig.metrics.total("BookRecordsUnreadable") >= 1
    # and the RiskGuard sizes the other coins' entries with BTC's exposure unknown (counted at a
    # full per-asset cap), never as nothing
    assert service.exposure().unknown == frozenset({"BTC/USDT"})


def test_a_fill_of_a_coin_whose_position_cannot_be_read_never_stops_the_others(
    rig: Rig, market: RecordedMarketData
) -> None:
    price, _ = _quote(market)
    # Given ETH's position recorded below zero (damaged) and a filled ETH sell still indexed
    rig.positions.upsert({"symbol": "ETH/USDT", "quantity": -1, "cost": 0}, None)
    sell = {**_damaged_record("f" * 32, "ETH/USDT"), "side": "sell", "intent": "reduce",
            "created_at": (NOW - timedelta(hours=1)).isoformat()}  # fmt: skip
    assert rig.ledger.put_new(sell)
    filled = OrderFacts(filled=Decimal("1"), average_price=Price.of("2000"), filled_at=NOW)
    change = StatusChange(OrderStatus.SUBMITTED, OrderStatus.FILLED, NOW, filled)
    assert rig.ledger.update_status("f" * 32, replace(change, settle=False))
    # and a NEW BTC buy left by a crash, with the kill-switch turned on
    coid = _recorded_buy(rig, price)
    rig.switch.set(True, "drill", "alice")
    # When the cycle reconciles
    rig.service().reconcile()
    # Then BTC's order is cancelled; ETH's fill is kept unapplied, still indexed (nothing lost)
    assert rig.ledger.get(coid)["status"] == OrderStatus.CANCELED.value  # type: ignore[index]
    assert [o["client_order_id"] for o in rig.ledger.list_open("ETH/USDT")] == ["f" * 32]
    assert rig.positions.get("ETH/USDT")["quantity"] == -1  # type: ignore[index]
    assert rig.metrics.total("BookRecordsUnreadable") >= 1
