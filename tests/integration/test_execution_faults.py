"""The execution path under the faults it exists for, cycle by cycle.

Every cycle is built afresh at its instant (what the hourly Lambda does on each invocation) and
reads the real recorded bars through :class:`IngestLagMarketData`: an hourly bar is visible only
once it has closed and the HH:02 ingest has written it, as in the deployed lake. An order sent at
HH:10 therefore fills on the HH+1:00 bar, which the lake receives at HH+2:02: it is still open
at the next cycle.

The cycles' logic (flattening, exits by rule, the scan's entries, the kill-switch sweep, the
venue's lost, unparseable or late answers, a position whose close fails) runs on the in-memory
fakes, built as ``wiring.trading_cycle`` builds the cycle on DynamoDB and SSM
(``tests/support/cycle.py``; ``test_store_contract.py`` holds the adapters to the fakes'
contract). What is about AWS stays on moto: a kill-switch read that SSM throttles once the
SDK's retries are spent, through ``wiring.trading_cycle`` itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from botocore.exceptions import ClientError

from cryptosmarttrader.adapters.aws_clients import AwsClients
from cryptosmarttrader.adapters.dynamodb_store import (
    DynamoOrderStore,
    DynamoPositionStore,
)
from cryptosmarttrader.adapters.emf_metrics import InMemoryMetrics
from cryptosmarttrader.adapters.lake_timing import IngestLagMarketData
from cryptosmarttrader.adapters.recorded_data import RecordedMarketData
from cryptosmarttrader.adapters.ssm_killswitch import SsmKillSwitch
from cryptosmarttrader.domain.book import position_episode
from cryptosmarttrader.domain.clock import FixedClock
from cryptosmarttrader.domain.exchange import (
    ExchangeOrder,
    OrderStateUnknownError,
    RetryableExchangeError,
)
from cryptosmarttrader.domain.order_changes import StatusChange
from cryptosmarttrader.domain.orders import (
    MAX_CLOSE_ATTEMPTS,
    Intent,
    OrderIntent,
    OrderStatus,
    close_position_key,
)
from cryptosmarttrader.domain.risk import RiskLevel
from cryptosmarttrader.domain.types import ClientOrderId, Price, Quantity, Side, Symbol, ms_from_utc
from cryptosmarttrader.services.scan import ScanReport, ScanService
from cryptosmarttrader.services.trading_cycle import CycleReport, TradingCycle
from cryptosmarttrader.settings import TradingSettings
from cryptosmarttrader.wiring import recorded_analyzer, trading_cycle
from tests.support.aws import moto_stack
from tests.support.cycle import CycleStores
from tests.support.execution import LosesTheAnswer, read_timeout

pytestmark = pytest.mark.realdata

ASOF = datetime(2021, 1, 5, tzinfo=UTC)  # BTC, ADA, VET, THETA rank BUY (technical agent)
SCAN_AT = ASOF + timedelta(minutes=15)
SETTINGS = TradingSettings()


class CachedBars:
    """The recorded data with each symbol's bar file parsed once per module (the adapter parses
    the whole file on every read); the rows served are the recorded ones, sliced the same way."""

    def __init__(self, inner: RecordedMarketData) -> None:
        self.inner = inner
        self._files: dict[tuple[str, str], pl.DataFrame] = {}

    def daily_universe(self, asof: datetime, lookback_days: int) -> pl.DataFrame:
        return self.inner.daily_universe(asof, lookback_days)

    def ohlcv(self, symbol: str, timeframe: str, start: datetime, end: datetime) -> pl.DataFrame:
        key = (symbol, timeframe)
        if key not in self._files:
            self._files[key] = self.inner.ohlcv(symbol, timeframe, EPOCH, FAR)
        return self._files[key].filter(
            pl.col("ts").is_between(ms_from_utc(start), ms_from_utc(end))
        )


EPOCH, FAR = datetime(2017, 1, 1, tzinfo=UTC), datetime(2030, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def market(data_dir: Path) -> CachedBars:
    return CachedBars(RecordedMarketData(data_dir))


@pytest.fixture
def stores() -> CycleStores:
    """The orders, positions and state tables and the kill-switch on fakes, seeded as the
    stack is at the scan (the kill-switch off)."""
    return CycleStores(clock=FixedClock(SCAN_AT))


def _scan_service(stores: CycleStores, data_dir: Path, at: datetime) -> ScanService:
    return stores.scan(data_dir, at, SETTINGS)


def _scan(stores: CycleStores, data_dir: Path, asof: datetime = ASOF) -> ScanReport:
    return _scan_service(stores, data_dir, asof + timedelta(minutes=15)).run(asof)


def _build(
    market: CachedBars, stores: CycleStores, at: datetime, metrics: InMemoryMetrics | None = None
) -> TradingCycle:
    """The hourly Lambda's cycle at ``at``, reading the lake as it is at ``at``."""
    lake = IngestLagMarketData(market, stores.clock)  # the cycle's clock, moved to ``at``
    return stores.cycle(lake, at, SETTINGS, metrics or InMemoryMetrics())


def _cycle(market: CachedBars, stores: CycleStores, at: datetime) -> CycleReport:
    return _build(market, stores, at).run()


def _orders(stores: CycleStores) -> list[dict[str, Any]]:
    return stores.orders.list_orders()


def _positions(stores: CycleStores) -> dict[str, Decimal]:
    stored = stores.positions.get_all()
    return {s: Decimal(str(p["quantity"])) for s, p in stored.items()}


def _emergency_then_switch_off(stores: CycleStores, at: datetime) -> None:
    """A human drill: EMERGENCY (which turns the kill-switch on), then the switch turned off."""
    risk = stores.risk(at)
    risk.override(RiskLevel.EMERGENCY, "ops@desk", "drill: flatten the book")
    assert stores.switch.status().on
    stores.at(at + timedelta(minutes=5))
    stores.switch.set(False, "looked at it: flatten", "ops@desk")


def _hold_positions(market: CachedBars, stores: CycleStores, data_dir: Path) -> dict[str, Decimal]:
    """Scan at 00:15, send at 01:10; the 02:00 bar reaches the lake at 03:02: filled at 03:10."""
    _scan(stores, data_dir)
    sent = _cycle(market, stores, ASOF + timedelta(hours=1, minutes=10))
    assert sent.dispatched >= 2
    still_open = _cycle(market, stores, ASOF + timedelta(hours=2, minutes=10))
    assert still_open.positions == {}  # the lake has not received the fill bar yet
    filled = _cycle(market, stores, ASOF + timedelta(hours=3, minutes=10))
    assert filled.positions
    return _positions(stores)


# --------------------------------------------------------------------------- 1. flatten


def test_emergency_flatten_over_consecutive_cycles_sells_each_position_once(
    market: CachedBars, stores: CycleStores, data_dir: Path
) -> None:
    # Given positions held, then EMERGENCY and a human turning the kill-switch off again
    held = _hold_positions(market, stores, data_dir)
    _emergency_then_switch_off(stores, ASOF + timedelta(hours=3, minutes=20))

    # When the hourly cycles run while the CLOSE orders wait for their bar to reach the lake
    reports = [_cycle(market, stores, ASOF + timedelta(hours=h, minutes=10)) for h in range(4, 8)]

    # Then every position was sold exactly once and none went short
    assert reports[0].flattened == len(held)
    assert [r.flattened for r in reports[1:]] == [0, 0, 0]
    sells = [o for o in _orders(stores) if o["side"] == "sell"]
    assert sorted(str(o["symbol"]) for o in sells) == sorted(held)
    assert {str(o["status"]) for o in sells} == {"FILLED"}
    for order in sells:
        assert Decimal(str(order["filled"])) == held[str(order["symbol"])]
    assert all(q == 0 for q in _positions(stores).values()), _positions(stores)
    assert reports[-1].positions == {}


def test_an_exit_rule_close_and_the_flatten_of_one_position_share_one_order(
    market: CachedBars, stores: CycleStores, data_dir: Path
) -> None:
    # Given positions held and, on 2021-03-01, the exit rule's CLOSE of every coin whose real
    # daily closes doubled since entry, placed by the 01:10 cycle (its fill bar is not in the
    # lake before 03:02)
    held = _hold_positions(market, stores, data_dir)
    exit_day = datetime(2021, 3, 1, 1, 10, tzinfo=UTC)
    placed = _cycle(market, stores, exit_day)
    assert placed.exits_by_rule >= 2, placed.exit_decisions
    # and EMERGENCY is declared before the next cycle, the switch turned off again
    _emergency_then_switch_off(stores, exit_day + timedelta(minutes=10))

    # When the cycles flatten the book while the exit rule's closes are still open
    for h in range(1, 5):
        _cycle(market, stores, exit_day + timedelta(hours=h))

    # Then each position has exactly one sell, filled for what was held, and nothing is short
    sells = [o for o in _orders(stores) if o["side"] == "sell"]
    assert sorted(str(o["symbol"]) for o in sells) == sorted(held)
    assert sum(str(o["strategy"]) == "exit-rule" for o in sells) == placed.exits_by_rule
    for order in sells:
        assert str(order["status"]) == "FILLED"
        assert Decimal(str(order["filled"])) == held[str(order["symbol"])]
    assert all(q == 0 for q in _positions(stores).values()), _positions(stores)


def test_an_earlier_entry_still_open_is_not_entered_again(
    stores: CycleStores, data_dir: Path
) -> None:
    # Given an earlier day's BUY of bitcoin still waiting to be sent (one position per coin:
    # the exit rule judges it from its fill)
    orders = stores.orders
    earlier = {
        "client_order_id": "e" * 32, "symbol": "bitcoin", "side": "buy", "intent": "open",
        "quantity": Decimal("0.05"), "reference_price": Decimal("30000"),
        "notional": Decimal("1500"), "strategy": SETTINGS.strategy,
        "signal_bar_ms": ms_from_utc(ASOF - timedelta(days=1)), "status": "NEW", "rank": 1,
        "mode": "paper", "created_at": (ASOF - timedelta(days=1)).isoformat(),
        "valid_until": (ASOF + timedelta(hours=2)).isoformat(),
    }  # fmt: skip
    assert orders.put_new(earlier)
    # When today's scan rates bitcoin BUY again
    first = _scan(stores, data_dir)
    btc = next(r for r in first.rows if r.symbol == "bitcoin")
    # Then it holds with the reason and records nothing for it; other BUYs are ordered
    assert btc.action.value == "hold" and btc.order_status is None
    assert any("an earlier entry of this coin is still open" in r for r in btc.reasons)
    assert [o for o in _orders(stores) if o["symbol"] == "bitcoin"] == [orders.get("e" * 32)]
    assert first.orders_created >= 1
    # and once that earlier order ended unfilled, the same decision may enter: a rerun of the
    # day's scan orders it once, and a second rerun finds it already ordered
    assert orders.update_status("e" * 32, StatusChange(OrderStatus.NEW, OrderStatus.CANCELED, ASOF))
    second = _scan(stores, data_dir)
    again = next(r for r in second.rows if r.symbol == "bitcoin")
    assert again.order_status == "NEW" and second.orders_created == 1
    third = _scan(stores, data_dir)
    assert third.orders_created == 0
    assert next(r for r in third.rows if r.symbol == "bitcoin").client_order_id == (
        again.client_order_id
    )


# --------------------------------------------------------------------------- 2. kill-switch read


# What is about AWS: the cycle through ``wiring.trading_cycle`` on moto DynamoDB + SSM, whose
# kill-switch read SSM throttles once the SDK's retries are spent.


@pytest.fixture
def clients(monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsClients]:
    with moto_stack(monkeypatch, now=SCAN_AT) as aws:
        yield aws


def _scan_on_moto(clients: AwsClients, data_dir: Path, asof: datetime = ASOF) -> ScanReport:
    clock = FixedClock(asof + timedelta(minutes=15))
    res = clients.resources
    return ScanService(
        analyzer=recorded_analyzer(data_dir, clock, SETTINGS),
        orders=DynamoOrderStore(res.orders_table, clients.dynamodb),
        positions=DynamoPositionStore(res.positions_table, clients.dynamodb),
        kill_switch=SsmKillSwitch(res.kill_switch_param, clients.ssm, clock),
        metrics=InMemoryMetrics(),
    ).run(asof)


def _cycle_on_moto(market: CachedBars, clients: AwsClients, at: datetime) -> CycleReport:
    """The hourly Lambda's cycle at ``at`` as ``wiring.trading_cycle`` builds it on AWS."""
    clock = FixedClock(at)
    lake = IngestLagMarketData(market, clock)
    metrics = InMemoryMetrics()
    return trading_cycle(lake, clock, clients, clients.resources, SETTINGS, metrics).run()


def _orders_on_moto(clients: AwsClients) -> list[dict[str, Any]]:
    res = clients.resources
    return DynamoOrderStore(res.orders_table, clients.dynamodb).list_orders()


class SsmThrottled:
    """GetParameter answers ThrottlingException once the SDK's retries are spent (botocore
    ``before-call`` hook on the cycle's own SSM client)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.refused = 0

    def __enter__(self) -> SsmThrottled:
        self.client.meta.events.register("before-call.ssm.GetParameter", self._refuse)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.client.meta.events.unregister("before-call.ssm.GetParameter", self._refuse)

    def _refuse(self, **_kwargs: object) -> None:
        self.refused += 1
        raise ClientError(
            {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "GetParameter"
        )


def test_a_throttled_kill_switch_read_sends_nothing_and_destroys_nothing(
    market: CachedBars, clients: AwsClients, data_dir: Path
) -> None:
    # Given the scan's decisions waiting to be sent
    report = _scan_on_moto(clients, data_dir)
    decided = {r.client_order_id for r in report.rows if r.order_status == "NEW"}
    assert decided

    # When the cycle cannot read the kill-switch (throttled)
    with SsmThrottled(clients.ssm) as throttled:
        blind = _cycle_on_moto(market, clients, ASOF + timedelta(hours=1, minutes=10))
    assert throttled.refused > 0

    # Then nothing was sent and no decision was cancelled: unknown is not an explicit ON
    assert blind.dispatched == 0 and blind.cancelled_new == 0
    assert {str(o["status"]) for o in _orders_on_moto(clients)} == {"NEW"}
    # and once the switch reads again, the same decisions are sent
    seen = _cycle_on_moto(market, clients, ASOF + timedelta(hours=2, minutes=10))
    sent = {
        str(o["client_order_id"]) for o in _orders_on_moto(clients) if o["status"] == "ACCEPTED"
    }
    assert seen.dispatched == len(sent) and sent <= decided and sent


def test_a_throttled_kill_switch_read_leaves_open_orders_at_the_venue(
    market: CachedBars, clients: AwsClients, data_dir: Path
) -> None:
    # Given orders sent and open at the venue (their bar is not in the lake yet)
    _scan_on_moto(clients, data_dir)
    _cycle_on_moto(market, clients, ASOF + timedelta(hours=1, minutes=10))
    open_before = {
        str(o["client_order_id"]) for o in _orders_on_moto(clients) if o["status"] == "ACCEPTED"
    }
    assert open_before

    # When the next cycle's kill-switch read is throttled
    with SsmThrottled(clients.ssm):
        _cycle_on_moto(market, clients, ASOF + timedelta(hours=2, minutes=10))

    # Then no cancel was swept through: the orders are still open, and they fill later
    assert {str(o["client_order_id"]) for o in _orders_on_moto(clients)
            if o["status"] == "ACCEPTED"} == open_before  # fmt: skip
    filled = _cycle_on_moto(market, clients, ASOF + timedelta(hours=3, minutes=10))
    assert len(filled.positions) == len(open_before)


# --------------------------------------------------------------------------- 3. cancel sweep


class LookupFails:
    """The cycle's venue, with lookups of one client ID failing (a transient venue error)."""

    def __init__(self, inner: Any, failing: str) -> None:
        self.inner = inner
        self.failing = failing
        self.capabilities = inner.capabilities
        self.create_order = inner.create_order
        self.cancels: list[str] = []

    def fetch_order_by_client_id(
        self, symbol: Symbol, client_order_id: ClientOrderId
    ) -> ExchangeOrder | None:
        if client_order_id.value == self.failing:
            raise RetryableExchangeError("paper", "fetch_order", "503 Service Unavailable")
        return self.inner.fetch_order_by_client_id(symbol, client_order_id)  # type: ignore[no-any-return]

    def cancel_order(self, symbol: Symbol, client_order_id: ClientOrderId) -> None:
        self.cancels.append(client_order_id.value)
        self.inner.cancel_order(symbol, client_order_id)


def test_the_kill_switch_sweep_cancels_every_order_despite_one_lookup_error(
    market: CachedBars, stores: CycleStores, data_dir: Path
) -> None:
    # Given three or more open orders and the kill-switch turned on
    _scan(stores, data_dir)
    _cycle(market, stores, ASOF + timedelta(hours=1, minutes=10))
    live = sorted(str(o["client_order_id"]) for o in _orders(stores) if o["status"] == "ACCEPTED")
    assert len(live) >= 2
    at = ASOF + timedelta(hours=1, minutes=30)
    stores.switch.set(True, "drill", "ops@desk", at=at)

    # When the sweep runs and the venue fails to answer the lookup of the first order
    cycle = _build(market, stores, at)
    venue = LookupFails(cycle.execution.exchange, live[0])
    cycle.execution.exchange = venue
    cycle.run()

    # Then every cancel was sent; the one order the venue did not answer for stays
    # CANCEL_PENDING for the next reconcile, every other is CANCELED
    assert sorted(venue.cancels) == live
    statuses = {str(o["client_order_id"]): str(o["status"]) for o in _orders(stores)}
    assert statuses[live[0]] == "CANCEL_PENDING"
    assert all(statuses[c] == "CANCELED" for c in live[1:])
    # and the next sweep finishes it
    _build(market, stores, at + timedelta(minutes=10)).run()
    assert {str(o["status"]) for o in _orders(stores) if o["client_order_id"] in live} == {
        "CANCELED"
    }


# --------------------------------------------------------------------------- 4 / 6. venue answers


@pytest.mark.parametrize(
    "error",
    [
        OrderStateUnknownError("binance", "create_order", "unparseable ack", "x"),
        # what the adapter raised before: a parse failure read as a refusal
        __import__(
            "cryptosmarttrader.domain.exchange", fromlist=["InvalidPayloadError"]
        ).InvalidPayloadError("binance", "create_order", "unknown order status 'PENDING_NEW'"),
    ],
    ids=["state-unknown", "invalid-payload"],
)
def test_an_unparseable_acknowledgement_is_reconciled_not_rejected(
    market: CachedBars, stores: CycleStores, data_dir: Path, error: Exception
) -> None:
    # Given the scan's decisions and a venue whose acknowledgements cannot be parsed
    _scan(stores, data_dir)
    cycle = _build(market, stores, ASOF + timedelta(hours=1, minutes=10))
    # (the call returned, so the order may well exist: what ``CcxtExchange`` raises for it)
    unparseable = LosesTheAnswer(cycle.execution.exchange, lambda _: error)
    cycle.execution.exchange = unparseable

    # When the cycle sends them
    cycle.run()

    # Then none is recorded REJECTED: each is looked up by client ID and found open
    statuses = {str(o["status"]) for o in _orders(stores) if o.get("risk_rule") is None}
    sent = [o for o in _orders(stores) if o["status"] not in {"NEW", "CANCELED"}]
    assert sent and "REJECTED" not in statuses
    assert {str(o["status"]) for o in sent} == {"ACCEPTED"}
    # and they fill on their bar like any other order
    later = _cycle(market, stores, ASOF + timedelta(hours=3, minutes=10))
    assert len(later.positions) == len(sent)


class AppearsLate(LosesTheAnswer):
    """A venue that takes the order, loses the answer (a read timeout) and shows the order to
    lookups only ``hidden_for`` after it was placed."""

    def __init__(self, inner: Any, clock: FixedClock, hidden_for: timedelta) -> None:
        super().__init__(inner, read_timeout)
        self.clock = clock
        self.visible_from: dict[str, datetime] = {}
        self.hidden_for = hidden_for

    def sent(self, client_order_id: ClientOrderId) -> None:
        self.visible_from[client_order_id.value] = self.clock.now() + self.hidden_for

    def fetch_order_by_client_id(
        self, symbol: Symbol, client_order_id: ClientOrderId
    ) -> ExchangeOrder | None:
        shown = self.visible_from.get(client_order_id.value)
        if shown is not None and self.clock.now() < shown:
            return None
        return super().fetch_order_by_client_id(symbol, client_order_id)


def test_an_order_the_venue_shows_late_is_tracked_and_its_fill_applied_once(
    market: CachedBars, stores: CycleStores, data_dir: Path
) -> None:
    # Given decisions sent at 01:10 to a venue that times out and shows them only 50 min later
    _scan(stores, data_dir)
    cycle = _build(market, stores, ASOF + timedelta(hours=1, minutes=10))
    clock = stores.clock
    venue = AppearsLate(cycle.execution.exchange, clock, timedelta(minutes=50))
    cycle.execution.exchange = venue
    cycle.run()
    sent = [o for o in _orders(stores) if o["status"] == "SUBMITTED"]
    assert sent and venue.creates == len(sent)

    # When later restarts of the service reconcile (the venue still hides them, then shows them
    # filled on the 02:00 bar that reached the lake at 03:02)
    for minutes in (15, 30, 60, 125):
        clock.current = ASOF + timedelta(hours=1, minutes=10 + minutes)
        cycle.execution.reconcile()

    # Then nothing was resent, nothing expired, and each fill reached its position once
    assert venue.creates == len(sent)
    stored = {str(o["client_order_id"]): o for o in _orders(stores)}
    assert {str(stored[str(o["client_order_id"])]["status"]) for o in sent} == {"FILLED"}
    positions = _positions(stores)
    for order in sent:
        assert positions[str(order["symbol"])] == Decimal(
            str(stored[str(order["client_order_id"])]["filled"])
        )
    cycle.execution.reconcile()
    assert _positions(stores) == positions


# ------------------------------------------------ one position's failing exit aborts nothing


def _exhaust_close_attempts(stores: CycleStores, symbol: str) -> None:
    """Record every close attempt of ``symbol``'s position as refused by the venue (a state an
    earlier version left behind for a dust it kept closing): resolving its close raises."""
    orders = stores.orders
    position, _ = stores.positions.load(symbol)
    base = OrderIntent(
        "exit-rule", Symbol(symbol), Side.SELL, Intent.CLOSE, ms_from_utc(ASOF),
        Quantity.of("0.00000877"), Price.of("1"),
    )  # fmt: skip
    for attempt in range(MAX_CLOSE_ATTEMPTS):
        keyed = replace(base, position_key=close_position_key(position_episode(position), attempt))
        record = {
            "client_order_id": keyed.client_order_id.value, "symbol": symbol, "side": "sell",
            "intent": "close", "quantity": Decimal("0.00000877"), "reference_price": Decimal(1),
            "notional": Decimal(0), "strategy": "exit-rule", "signal_bar_ms": keyed.signal_bar_ms,
            "status": "NEW", "position_key": keyed.position_key, "mode": "paper",
            "created_at": ASOF.isoformat(),
        }  # fmt: skip
        assert orders.put_new(record)
        refused = StatusChange(OrderStatus.NEW, OrderStatus.REJECTED, ASOF)
        assert orders.update_status(keyed.client_order_id.value, refused)
        orders.settle(keyed.client_order_id.value)


def test_a_position_whose_close_fails_never_aborts_the_exit_rule_for_the_others(
    market: CachedBars, stores: CycleStores, data_dir: Path
) -> None:
    # Given positions held, one of which has had every close attempt refused (its close raises)
    held = _hold_positions(market, stores, data_dir)
    broken = "dogecoin"  # its real daily closes reached the take-profit by 2021-03-01
    others = sorted(set(held) - {broken})
    assert broken in held and others
    _exhaust_close_attempts(stores, broken)
    # When the cycle of a day on which the exit rule closes the positions runs
    metrics = InMemoryMetrics()
    report = _build(market, stores, datetime(2021, 3, 1, 1, 10, tzinfo=UTC), metrics).run()
    # Then the broken position's exit is reported failed with its reason and counted, and the
    # cycle went on: the other positions' closes were placed, the metrics were emitted
    assert "the close failed (DomainError" in report.exit_decisions[broken], report.exit_decisions
    assert "closes of one position ended without closing it" in report.exit_decisions[broken]
    assert metrics.total("PositionExitErrors") == 1
    assert report.exits_by_rule >= 1, report.exit_decisions
    assert {m.name for m in metrics.all} >= {"RiskLevel", "Equity"}
    placed = [o for o in _orders(stores) if o["side"] == "sell" and o["status"] != "REJECTED"]
    assert placed and {str(o["symbol"]) for o in placed} <= set(others)


def test_a_position_whose_close_fails_never_aborts_the_flatten_of_the_others(
    market: CachedBars, stores: CycleStores, data_dir: Path
) -> None:
    # Given positions held, one with every close attempt spent, then EMERGENCY (switch off)
    held = _hold_positions(market, stores, data_dir)
    broken = sorted(held)[0]
    _exhaust_close_attempts(stores, broken)
    _emergency_then_switch_off(stores, ASOF + timedelta(hours=3, minutes=20))
    # When the next cycle flattens the book
    metrics = InMemoryMetrics()
    report = _build(market, stores, ASOF + timedelta(hours=4, minutes=10), metrics).run()
    # Then every other position got its close, the broken one is counted, the cycle completed
    assert report.flattened == len(held) - 1
    assert metrics.total("PositionExitErrors") == 1


def test_a_position_whose_close_cannot_be_resolved_never_aborts_the_scan(
    market: CachedBars, stores: CycleStores, data_dir: Path
) -> None:
    # Given positions held, one of which has had every close attempt refused
    held = _hold_positions(market, stores, data_dir)
    broken = sorted(held)[0]
    _exhaust_close_attempts(stores, broken)
    # When the next day's scan runs
    service = _scan_service(stores, data_dir, ASOF + timedelta(days=1, minutes=15))
    report = service.run(ASOF + timedelta(days=1))
    # Then its exit row says why, it is counted, and every held position has its row
    rows = {r.symbol: r for r in report.exits}
    assert sorted(rows) == sorted(held)
    assert any("its close cannot be resolved" in r for r in rows[broken].reasons)
    assert service.metrics.total("ScanExitErrors") == 1  # type: ignore[attr-defined]
