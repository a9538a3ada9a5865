"""Protective stops resting on the venue, through real ccxt against the local fake Binance.

A held position gets one ``STOP_LOSS_LIMIT`` sell on the venue (its client ID derived from the
position, recorded in the orders ledger before it is sent); the exit rule's close, the
EMERGENCY flatten and the kill-switch cancel it exactly once before anything is sold; a stop
that triggered on the recorded candles books its fill from the venue's trades and nothing is
sold again. The ExecutionService runs on the in-memory stores, the fake verifies every
signature.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import ccxt
import pytest

from cryptosmarttrader.adapters.ccxt_venue import CcxtVenue
from cryptosmarttrader.adapters.paper_exchange import PaperExchange
from cryptosmarttrader.adapters.recorded_data import RecordedMarketData
from cryptosmarttrader.domain.exchange import OrderStateUnknownError
from cryptosmarttrader.domain.exit_rule import ExitRule
from cryptosmarttrader.domain.orders import (
    Intent,
    OrderIntent,
    OrderStatus,
    protective_key,
    protective_order_id,
)
from cryptosmarttrader.domain.risk import RiskLevel
from cryptosmarttrader.domain.types import Price, Quantity, Side
from cryptosmarttrader.services.execution import CLOSED_AT_VENUE, ExecutionService
from tests.support import live_venue
from tests.support.live_venue import BTC, EQUITY, QUOTE, STOP, Rig, close, entry, lagging, metric

pytestmark = pytest.mark.realdata

market = live_venue.market
rig = live_venue.rig


# -- placed once per position ------------------------------------------------------------------


def test_live_venue_places_one_protective_stop_per_position_at_the_venues_precision(
    rig: Rig,
) -> None:
    # Given an entry filled at the 10:00 open (31397.68): 0.03 bought, 0.02997 held
    service = rig.service()
    entry(service)
    held = Decimal(str(rig.position()["quantity"]))
    assert held == Decimal("0.02997")
    # When the cycle's protective step runs, then runs again, then after a restart
    first = service.protect_positions({BTC.value: STOP})
    again = service.protect_positions({BTC.value: STOP})
    restarted = rig.service().protect_positions({BTC.value: STOP})
    # Then exactly one STOP_LOSS_LIMIT sell left, for the quantity held, on the tick (0.01),
    # the trigger rounded down (never above the rule's level), the limit 5 % below it
    stops = rig.sent("POST", "STOP_LOSS_LIMIT")
    assert len(stops) == 1, (first, again, restarted)
    sent = stops[0]
    assert sent["side"] == "SELL" and sent["timeInForce"] == "GTC"
    assert sent["quantity"] == "0.02997"
    assert sent["stopPrice"] == "31000"
    assert Decimal(sent["price"]) == Decimal("29450.00")  # floor(31000.004 * 0.95) on 0.01
    # with the ID derived from the position (its episode and quantity), recorded in the ledger
    episode = str(rig.position()["opened_by"])
    coid = protective_order_id(BTC, protective_key(episode, held, 0))
    assert sent["newClientOrderId"] == coid.value
    (record,) = rig.orders(Intent.PROTECT)
    assert record["client_order_id"] == coid.value
    assert record["status"] == OrderStatus.ACCEPTED.value
    assert record["order_type"] == "stop_loss_limit"
    assert "protected by stop" in again[BTC.value] and "protected by stop" in restarted[BTC.value]
    # and the venue locks what the stop may sell
    assert rig.venue.fetch_balances()["BTC"] == Decimal("0.02997")
    assert metric(rig, "ProtectiveStopsPlaced") == 1


def test_live_venue_a_growing_position_gets_its_stop_resized_exactly_once(rig: Rig) -> None:
    # Given a slow venue: the entry fills 0.02 on the 10:00 bar, the rest on the 11:00 bar
    rig.fake.max_fill_per_bar["BTCUSDT"] = Decimal("0.02")
    service = rig.service()
    entry(service)
    service.protect_positions({BTC.value: STOP})
    (first,) = rig.sent("POST", "STOP_LOSS_LIMIT")
    assert first["quantity"] == "0.01998"
    # When the 11:00 bar fills the rest and the next cycle reconciles and protects (twice)
    rig.clock.advance(timedelta(hours=1))
    later = rig.service()
    later.reconcile()
    later.protect_positions({BTC.value: STOP})
    rig.service().protect_positions({BTC.value: STOP})
    # Then the old stop was cancelled once and one stop for the whole holding placed once
    stops = rig.sent("POST", "STOP_LOSS_LIMIT")
    assert [s["quantity"] for s in stops] == ["0.01998", "0.02997"]
    cancels = rig.sent("DELETE")
    assert [c["origClientOrderId"] for c in cancels] == [first["newClientOrderId"]]
    statuses = sorted(o["status"] for o in rig.orders(Intent.PROTECT))
    assert statuses == [OrderStatus.ACCEPTED.value, OrderStatus.CANCELED.value]


def test_live_venue_a_timeout_placing_the_stop_is_reconciled_by_client_id_never_resent(
    rig: Rig,
) -> None:
    service = rig.service()
    entry(service)
    # Given the venue books the stop but answers after the client gave up
    rig.fake.fail_next("POST", "/api/v3/order", "timeout_after_booking")
    note = service.protect_positions({BTC.value: STOP})
    # Then the stop was found by its client ID and recorded; no second stop is ever sent
    assert "ACCEPTED" in note[BTC.value]
    service.protect_positions({BTC.value: STOP})
    rig.service().reconcile()
    rig.service().protect_positions({BTC.value: STOP})
    assert len(rig.sent("POST", "STOP_LOSS_LIMIT")) == 1
    assert len([o for o in rig.fake.orders() if o["type"] == "STOP_LOSS_LIMIT"]) == 1
    (record,) = rig.orders(Intent.PROTECT)
    assert record["status"] == OrderStatus.ACCEPTED.value


def test_live_venue_a_stop_refused_by_the_rate_limit_is_placed_by_the_next_cycle_once(
    rig: Rig,
) -> None:
    service = rig.service()
    entry(service)
    # Given the venue answers the stop's create with a 429 (before any matching)
    rig.fake.fail_next("POST", "/api/v3/order", "rate_limit")
    note = service.protect_positions({BTC.value: STOP})
    # Then it is settled as not placed (EXPIRED, never re-sent) and the next cycle places the
    # next attempt, once
    assert "EXPIRED" in note[BTC.value] and "not placed" in note[BTC.value]
    rig.service().protect_positions({BTC.value: STOP})
    rig.service().protect_positions({BTC.value: STOP})
    sent = rig.sent("POST", "STOP_LOSS_LIMIT")
    assert len(sent) == 2 and sent[0]["newClientOrderId"] != sent[1]["newClientOrderId"]
    resting = [o for o in rig.fake.orders() if o["type"] == "STOP_LOSS_LIMIT"]
    assert [o["status"] for o in resting] == ["NEW"]
    statuses = sorted(o["status"] for o in rig.orders(Intent.PROTECT))
    assert statuses == [OrderStatus.ACCEPTED.value, OrderStatus.EXPIRED.value]


def test_live_venue_a_stop_lost_in_flight_is_never_duplicated_while_its_request_could_land(
    rig: Rig,
) -> None:
    service = rig.service()
    entry(service)
    # Given a stop whose request never reaches the book (no answer)
    rig.fake.fail_next("POST", "/api/v3/order", "timeout_before_booking")
    note = service.protect_positions({BTC.value: STOP})
    assert "SUBMITTED" in note[BTC.value]
    # When later cycles run while the venue could still execute the request (its recvWindow
    # plus the query lag margin): it is looked up by client ID, never placed again, and not
    # reported as protection
    settle_after, window = service.absent_settle_after()
    assert window == timedelta(seconds=10) and settle_after == window + service.absent_query_lag
    for minutes in (1, 3):
        rig.clock.advance(timedelta(minutes=minutes))
        again = rig.service()
        again.reconcile()
        note = again.protect_positions({BTC.value: STOP})
        assert note[BTC.value].startswith("not protected yet"), note
    assert len(rig.sent("POST", "STOP_LOSS_LIMIT")) == 1
    (record,) = rig.orders(Intent.PROTECT)
    assert record["status"] == OrderStatus.SUBMITTED.value
    # When the venue can no longer execute it and still shows nothing by its client ID
    rig.clock.advance(settle_after)
    later = rig.service()
    assert later.reconcile().expired == 1
    # Then it is settled as not placed, and the next attempt (its own client ID) is placed once
    later.protect_positions({BTC.value: STOP})
    rig.clock.advance(timedelta(hours=1))
    last = rig.service()
    last.reconcile()
    assert last.protect_positions({BTC.value: STOP})[BTC.value].startswith("protected by stop")
    sent = rig.sent("POST", "STOP_LOSS_LIMIT")
    assert len(sent) == 2 and sent[0]["newClientOrderId"] != sent[1]["newClientOrderId"]
    by_id = {str(o["client_order_id"]): o for o in rig.orders(Intent.PROTECT)}
    lost, placed = (by_id[s["newClientOrderId"]] for s in sent)
    assert (lost["status"], placed["status"]) == (
        OrderStatus.EXPIRED.value,
        OrderStatus.ACCEPTED.value,
    )
    assert "not placed" in str(lost["expire_reason"])
    assert [o["status"] for o in rig.fake.orders() if o["type"] == "STOP_LOSS_LIMIT"] == ["NEW"]


# -- triggered on the venue ------------------------------------------------------------------


def test_live_venue_a_triggered_stop_books_its_fill_and_nothing_is_sold_again(rig: Rig) -> None:
    service = rig.service()
    entry(service)
    service.protect_positions({BTC.value: STOP})
    # When the 14:00 bar (low 30819.98) has closed: the stop triggered on the venue
    rig.clock.advance(timedelta(hours=5))
    # and the exit rule decides to close the position before any reconcile saw it
    result = close(rig.service())
    # Then the close found the stop filled (its fill booked from the venue's trades, with
    # the real commission) and sold nothing
    assert result.status == CLOSED_AT_VENUE and not result.sent
    assert rig.sent("POST", "MARKET")[1:] == []  # only the entry was a market order
    assert rig.sent("DELETE") == []  # a filled stop is not cancelled
    (stop,) = rig.orders(Intent.PROTECT)
    assert stop["status"] == OrderStatus.FILLED.value
    assert Decimal(str(stop["average_price"])) == Decimal("31000")
    fee = Decimal("0.02997") * Decimal("31000") * Decimal("0.001")
    assert Decimal(str(stop["fee"])) == fee.quantize(Decimal("0.00000001"))
    position = rig.position()
    assert Decimal(str(position["quantity"])) == 0
    assert rig.fake.balances["BTC"] == 0
    # and later cycles neither sell nor place another stop
    later = rig.service()
    later.reconcile()
    assert later.protect_positions({BTC.value: STOP}) == {BTC.value: "no position held"}
    assert _close_quietly(later) is None
    assert len(rig.sent("POST")) == 2  # the entry and the stop
    assert metric(rig, "ProtectiveStopsTriggered") == 1


def _close_quietly(service: ExecutionService) -> Any:
    position = service.positions.get(BTC.value) or {}
    if Decimal(str(position.get("quantity", 0))) <= 0:
        return None
    return close(service)


def test_live_venue_a_stop_triggered_between_cycles_is_booked_by_the_reconcile(rig: Rig) -> None:
    service = rig.service()
    entry(service)
    service.protect_positions({BTC.value: STOP})
    rig.clock.advance(timedelta(hours=5))
    report = rig.service().reconcile()
    assert report.updated == 1
    assert Decimal(str(rig.position()["quantity"])) == 0
    (stop,) = rig.orders(Intent.PROTECT)
    assert stop["status"] == OrderStatus.FILLED.value


# -- the exit rule, the flatten and the kill-switch -------------------------------------------


def test_live_venue_exit_rule_cancels_the_stop_then_sells_exactly_once(rig: Rig) -> None:
    service = rig.service()
    entry(service)
    service.protect_positions({BTC.value: STOP})
    # When the exit rule closes at 11:30 (the stop still resting), then a retry, a restart
    rig.clock.advance(timedelta(hours=1, minutes=30))
    first = close(service)
    second = close(service)
    third = close(rig.service())
    # Then the stop was cancelled once, before one market sell of the whole holding
    assert first.sent and not second.sent and not third.sent
    (cancel,) = rig.sent("DELETE")
    (stop_sent,) = rig.sent("POST", "STOP_LOSS_LIMIT")
    assert cancel["origClientOrderId"] == stop_sent["newClientOrderId"]
    sells = [p for p in rig.sent("POST", "MARKET") if p["side"] == "SELL"]
    assert len(sells) == 1 and sells[0]["quantity"] == "0.02997"
    order = [m for m, p, _ in rig.fake.requests if p == "/api/v3/order" and m != "GET"]
    assert order == ["POST", "POST", "DELETE", "POST"]  # entry, stop, cancel, then the sell
    (stop,) = rig.orders(Intent.PROTECT)
    assert stop["status"] == OrderStatus.CANCELED.value
    # and the cycle's protective step places nothing while the close is open
    note = rig.service().protect_positions({BTC.value: STOP})
    assert "being closed" in note[BTC.value]
    rig.clock.advance(timedelta(hours=1))
    rig.service().reconcile()
    assert Decimal(str(rig.position()["quantity"])) == 0
    assert len(rig.sent("POST", "STOP_LOSS_LIMIT")) == 1


def test_live_venue_kill_switch_cancels_every_order_then_the_flatten_sells_once_across_a_restart(
    rig: Rig,
) -> None:
    # Given a partially filled entry still open on the venue and the stop of what it holds
    rig.fake.max_fill_per_bar["BTCUSDT"] = Decimal("0.02")
    service = rig.service()
    entry(service)
    service.protect_positions({BTC.value: STOP})
    assert len(rig.fake.orders()) == 2
    # When the kill-switch turns on: the cycle cancels every open order of the system
    rig.switch(True)
    rig.clock.advance(timedelta(minutes=20))
    rig.service().reconcile()
    # and the run dies here (before the flatten); the restarted cycle runs again
    rig.service().reconcile()
    assert len(rig.sent("DELETE")) == 2  # the entry and the stop, each once
    assert metric(rig, "ProtectiveStopsCancelled") == 1
    assert all(o["status"] == "CANCELED" for o in rig.fake.orders())
    # and nothing is placed while the switch holds
    held = rig.service().protect_positions({BTC.value: STOP})
    assert "kill-switch" in held[BTC.value]
    # When a human turns it off and the EMERGENCY flatten runs, crashes, and runs again
    rig.switch(False)
    rig.clock.advance(timedelta(minutes=20))
    flatten = close(rig.service(), "risk-flatten")
    again = close(rig.service(), "risk-flatten")
    # Then one sell of what is held, never more
    assert flatten.sent and not again.sent
    sells = [p for p in rig.sent("POST", "MARKET") if p["side"] == "SELL"]
    assert len(sells) == 1 and sells[0]["quantity"] == "0.01998"
    assert len(rig.sent("DELETE")) == 2


# -- venues without protective stops -----------------------------------------------------------


def test_fake_exchange_refuses_a_stop_off_the_tick_or_that_would_trigger_at_once(
    rig: Rig,
) -> None:
    entry(rig.service())
    client = rig.venue._client
    base = {"symbol": "BTCUSDT", "side": "SELL", "type": "STOP_LOSS_LIMIT",
            "timeInForce": "GTC", "quantity": "0.01"}  # fmt: skip
    with pytest.raises(ccxt.InvalidOrder, match="PRICE_FILTER"):
        client.private_post_order({**base, "price": "29000.001", "stopPrice": "30000"})
    with pytest.raises(ccxt.InvalidOrder, match="trigger immediately"):
        client.private_post_order({**base, "price": "31000", "stopPrice": "31500"})
    assert [o for o in rig.fake.orders() if o["type"] == "STOP_LOSS_LIMIT"] == []


def test_paper_venue_places_no_protective_stop_the_hourly_exit_rule_protects(
    rig: Rig, market: RecordedMarketData
) -> None:
    paper = rig.service(PaperExchange(market, rig.clock))
    assert not paper.protective_stops_supported()
    assert paper.protect_positions({BTC.value: STOP}) == {}


def test_live_venue_a_close_the_risk_guard_refuses_leaves_the_stop_resting(rig: Rig) -> None:
    service = rig.service()
    entry(service)
    service.protect_positions({BTC.value: STOP})
    # When a close is decided on a quote older than the RiskGuard accepts
    rig.clock.advance(timedelta(hours=2))
    held = Decimal(str(rig.position()["quantity"]))
    intent = OrderIntent("exit-rule", BTC, Side.SELL, Intent.CLOSE, 1_652_180_400_000,
                         Quantity(held), Price.of("31300"))  # fmt: skip
    refused = service.submit(intent, equity=EQUITY, quote=QUOTE)
    # Then nothing was cancelled: the position keeps its stop
    assert refused.status == "rejected" and refused.rule == "stale_quote"
    assert rig.sent("DELETE") == []
    (stop,) = rig.orders(Intent.PROTECT)
    assert stop["status"] == OrderStatus.ACCEPTED.value


# -- through the hourly trading cycle ---------------------------------------------------------


def _oco_posts(rig: Rig) -> list[dict[str, str]]:
    return [p for m, path, p in rig.fake.requests if (m, path) == ("POST", "/api/v3/orderList/oco")]


def _list_deletes(rig: Rig) -> list[dict[str, str]]:
    return [p for m, path, p in rig.fake.requests if (m, path) == ("DELETE", "/api/v3/orderList")]


def _legs(rig: Rig) -> tuple[dict[str, Any], dict[str, Any]]:
    """The OCO list's stop leg and take-profit leg in the ledger."""
    legs = {o["order_type"]: o for o in rig.orders(Intent.PROTECT)}
    assert sorted(legs) == ["limit_maker", "stop_loss_limit"], legs
    assert (
        legs["limit_maker"]["list_client_order_id"]
        == legs["stop_loss_limit"]["list_client_order_id"]
    )
    return legs["stop_loss_limit"], legs["limit_maker"]


def test_live_venue_the_cycle_protects_a_position_and_books_the_stop_the_venue_filled(
    rig: Rig, market: RecordedMarketData
) -> None:
    # Given an entry filled at the 10:00 open (31397.68) and an exit rule stopping at -1.3 %
    rule = ExitRule(stop_loss=0.013)
    entry(rig.service())
    # When the next hourly cycles run
    rig.clock.advance(timedelta(minutes=10))
    first = rig.cycle(market, rule).run()
    rig.clock.advance(timedelta(hours=1))
    second = rig.cycle(market, rule).run()
    # Then one stop rests at the rule's stop price on the entry, for what is held: on Binance
    # the below leg of an OCO list whose above leg is the rule's take-profit (+100 %)
    assert "OCO list" in first.protective_stops[BTC.value], first.protective_stops
    assert "protected by stop" in second.protective_stops[BTC.value]
    # and a resting stop does not leave the coin (or the cash) unjudged by the balance check
    assert "not judged" not in second.balance_check, second.balance_check
    (stop,) = _oco_posts(rig)
    assert stop["quantity"] == "0.02997"
    assert stop["belowStopPrice"] == "30989.51"  # 31397.68 * (1 - 0.013), down onto the tick
    assert stop["abovePrice"] == "62795.36"  # 31397.68 * 2
    # When the 14:00 bar (low 30819.98) has closed and the next cycle runs
    rig.clock.advance(timedelta(hours=4))
    third = rig.cycle(market, rule).run()
    # Then the venue's fill is booked (position closed), and nothing is sold again
    assert third.positions == {} or third.positions.get(BTC.value, 0) == 0, third
    assert third.fills_applied + third.updated >= 1
    rig.clock.advance(timedelta(hours=1))
    fourth = rig.cycle(market, rule).run()
    assert fourth.exits_by_rule == 0 and fourth.flattened == 0
    assert len(rig.sent("POST")) == 1 and len(_oco_posts(rig)) == 1  # the entry and the list
    record, take_profit = _legs(rig)
    assert record["status"] == OrderStatus.FILLED.value
    assert take_profit["status"] == OrderStatus.EXPIRED.value  # expired by the venue
    assert third.balance_drift == [] and fourth.balance_drift == []


def test_live_venue_a_position_whose_record_cannot_be_read_keeps_its_resting_stop(
    rig: Rig, market: RecordedMarketData
) -> None:
    # Given an entry protected by its OCO list resting on the venue
    rule = ExitRule(stop_loss=0.013)
    entry(rig.service())
    rig.clock.advance(timedelta(minutes=10))
    placed = rig.cycle(market, rule).run()
    assert "OCO list" in placed.protective_stops[BTC.value], placed.protective_stops
    # and then the position record damaged (its quantity below zero: unreadable)
    store = rig.stores.positions
    record = rig.position()
    assert store.upsert({**record, "quantity": Decimal("-1")}, int(record["version"]))
    # When the next hourly cycle runs
    rig.clock.advance(timedelta(hours=1))
    report = rig.cycle(market, rule).run()
    # Then the coin's stop is kept as it rests: nothing cancelled, resized or placed for it
    # (its holding is unknown, never "not held")
    assert report.protective_stops[BTC.value].startswith("position record unreadable (")
    assert "is kept as it is" in report.protective_stops[BTC.value]
    assert [m for m, _path, _p in rig.fake.requests if m == "DELETE"] == []
    assert len(_oco_posts(rig)) == 1
    stop, take_profit = _legs(rig)
    assert stop["status"] == take_profit["status"] == OrderStatus.ACCEPTED.value
    # and the position is held with the reason, the equity unknown with the record named, and
    # the balance check judges the coin neither drift nor held outside the system
    assert report.exit_decisions[BTC.value].startswith("held: position record unreadable (")
    assert report.equity is None and report.cash is not None
    assert [r.split(" unreadable:")[0] for r in report.unreadable_records] == [
        f"record {BTC.value!r} of {BTC.value}"
    ]
    assert report.balance_drift == [] and report.external_holdings == []
    assert "position record unreadable): BTC" in report.balance_check, report.balance_check


class _LateBalances:
    """The venue's balances read after the market moved on (the stop triggers in between)."""

    def __init__(self, rig: Rig, after: timedelta) -> None:
        self.rig, self.after, self.reads = rig, after, 0

    def fetch_balances(self) -> dict[str, Decimal | None]:
        if self.reads == 0:
            self.rig.clock.advance(self.after)
        self.reads += 1
        return self.rig.venue.fetch_balances()


def test_live_venue_a_stop_filled_between_the_reconcile_and_the_balance_read_is_no_drift(
    rig: Rig, market: RecordedMarketData
) -> None:
    rule = ExitRule(stop_loss=0.013)
    entry(rig.service())
    rig.clock.advance(timedelta(minutes=10))
    rig.cycle(market, rule).run()  # the stop is placed
    # When the next cycle reconciles at 11:10 but reads the balances after the 14:00 bar
    # closed (the stop sold the BTC on the venue in between)
    rig.clock.advance(timedelta(hours=1))
    cycle = rig.cycle(market, rule)
    cycle.balances = _LateBalances(rig, timedelta(hours=4))
    report = cycle.run()
    # Then the second read booked the stop's fill first: no drift, the guard stays NORMAL
    assert report.balance_drift == [], report.balance_check
    assert report.risk_level == "NORMAL"
    stop, _take_profit = _legs(rig)
    assert stop["status"] == OrderStatus.FILLED.value


def test_live_venue_a_stop_whose_cancel_failed_is_cancelled_next_cycle_then_replaced_once(
    rig: Rig,
) -> None:
    service = rig.service()
    entry(service)
    service.protect_positions({BTC.value: STOP})
    # Given the kill-switch on and the venue refusing the cancel (429 on every retry)
    rig.switch(True)
    for _ in range(3):
        rig.fake.fail_next("DELETE", "/api/v3/order", "rate_limit")
    rig.service().reconcile()
    (stop,) = rig.orders(Intent.PROTECT)
    assert stop["status"] == OrderStatus.CANCEL_PENDING.value
    assert [o["status"] for o in rig.fake.orders() if o["type"] == "STOP_LOSS_LIMIT"] == ["NEW"]
    # When the next cycle runs (the switch still on): the stop still rests on the venue
    rig.clock.advance(timedelta(minutes=5))
    rig.service().reconcile()
    # Then the cancel was sent again and confirmed
    (stop,) = rig.orders(Intent.PROTECT)
    assert stop["status"] == OrderStatus.CANCELED.value
    # and once the switch is off the position gets one new stop (the next attempt)
    rig.switch(False)
    rig.service().protect_positions({BTC.value: STOP})
    rig.service().protect_positions({BTC.value: STOP})
    resting = [o for o in rig.fake.orders() if o["type"] == "STOP_LOSS_LIMIT"]
    assert sorted(o["status"] for o in resting) == ["CANCELED", "NEW"]
    assert len(rig.sent("POST", "STOP_LOSS_LIMIT")) == 2


def test_live_venue_the_cycles_emergency_cancels_every_order_then_flattens_once_across_restarts(
    rig: Rig, market: RecordedMarketData
) -> None:
    # Given a partially filled entry still open and the stop of what it holds
    rule = ExitRule(stop_loss=0.013)
    rig.fake.max_fill_per_bar["BTCUSDT"] = Decimal("0.02")
    entry(rig.service())
    rig.clock.advance(timedelta(minutes=10))
    rig.cycle(market, rule).run()
    assert len(rig.fake.orders()) == 3  # the entry and the OCO list's two legs
    # When an operator forces EMERGENCY (which turns the kill-switch on first)
    service = rig.service()
    service.risk.override(RiskLevel.EMERGENCY, "ops@desk", "drill: flatten")  # type: ignore[attr-defined]
    # the cycle cancels every open order of the system; the run dies, the next one runs again
    held = rig.cycle(market, rule).run()
    rig.cycle(market, rule).run()
    assert held.flattened == 0
    assert len(rig.sent("DELETE")) == 1 and len(_list_deletes(rig)) == 1
    assert {o["status"] for o in rig.fake.orders()} == {"CANCELED"}
    # When a human turns the switch off: the flatten sells once, then a rerun sends nothing
    rig.switch(False)
    rig.clock.advance(timedelta(hours=1))  # the next hourly cycle, at 11:10
    flatten = rig.cycle(market, rule).run()
    again = rig.cycle(market, rule).run()
    assert flatten.flattened == 1 and again.flattened == 0
    rig.clock.advance(timedelta(hours=1))
    done = rig.cycle(market, rule).run()
    sells = [p for p in rig.sent("POST", "MARKET") if p["side"] == "SELL"]
    assert len(sells) == 1 and sells[0]["quantity"] == "0.01998"
    assert len(rig.sent("DELETE")) == 1 and len(_list_deletes(rig)) == 1
    assert len(_oco_posts(rig)) == 1  # never re-placed during the flatten
    assert done.positions == {} or done.positions.get(BTC.value, 0) == 0


def test_live_venue_a_stop_filled_just_before_the_close_leaves_dust_sold_without_an_oversell(
    rig: Rig,
) -> None:
    # Given an entry whose base-asset commission leaves a holding off the lot step: the stop
    # covers the holding floored to the step, a dust remainder stays uncovered
    service = rig.service()
    entry(service, "0.03001")
    service.protect_positions({BTC.value: STOP})
    # When the stop fills on the venue between the cycle's reconcile and its close
    rig.clock.advance(timedelta(hours=5, minutes=5))
    close(rig.service())
    # Then the close never counts as an oversell (that alarm is critical: it stops trading)
    assert rig.metrics.total("OversellRefused") == 0
    # and nothing beyond the holding was ever sold
    sold = sum(Decimal(str(o.get("filled", 0))) for o in rig.orders() if o["side"] == "sell")
    assert sold <= Decimal("0.03001")


# -- a stop that triggered and sells in parts; a stop the price is already through ----------


def test_live_venue_a_partly_filled_stop_keeps_protecting_the_rest_and_is_never_resized(
    rig: Rig,
) -> None:
    service = rig.service()
    entry(service)
    service.protect_positions({BTC.value: STOP})
    (stop_sent,) = rig.sent("POST", "STOP_LOSS_LIMIT")
    # Given a thin book: the stop sells 0.01 per bar once triggered by the 14:00 bar
    rig.fake.max_fill_per_bar["BTCUSDT"] = Decimal("0.01")
    rig.clock.advance(timedelta(hours=5))
    later = rig.service()
    later.reconcile()
    assert Decimal(str(rig.position()["quantity"])) == Decimal("0.01997")
    # When the protective step runs on the smaller position (twice, then after a restart)
    notes = [later.protect_positions({BTC.value: STOP}) for _ in range(2)]
    notes.append(rig.service().protect_positions({BTC.value: STOP}))
    # Then the triggered stop is neither cancelled nor replaced: it still sells the rest
    assert rig.sent("DELETE") == [], notes
    assert rig.sent("POST", "STOP_LOSS_LIMIT") == [stop_sent]
    assert all("triggered on the venue" in n[BTC.value] for n in notes), notes
    (record,) = rig.orders(Intent.PROTECT)
    assert record["status"] == OrderStatus.PARTIALLY_FILLED.value
    (resting,) = [o for o in rig.fake.orders() if o["type"] == "STOP_LOSS_LIMIT"]
    assert resting["status"] == "PARTIALLY_FILLED"
    # and the next bars sell what is left through that same stop, booked once
    rig.clock.advance(timedelta(hours=2))
    rig.service().reconcile()
    assert Decimal(str(rig.position()["quantity"])) == 0
    (record,) = rig.orders(Intent.PROTECT)
    assert record["status"] == OrderStatus.FILLED.value
    assert rig.metrics.total("OversellRefused") == 0


def test_live_venue_a_stop_the_price_is_already_through_is_not_placed_and_retried_next_cycle(
    rig: Rig,
) -> None:
    service = rig.service()
    entry(service)
    # Given the exit rule's stop above the last price (31397.68): Binance refuses it, -2010
    # "Stop price would trigger immediately."
    through = Decimal("32000")
    note = service.protect_positions({BTC.value: through})
    # Then it is settled as not placed, saying why; never REJECTED for this position state
    assert "EXPIRED" in note[BTC.value] and "trigger immediately" in note[BTC.value], note
    assert "hourly exit rule" in note[BTC.value]
    (record,) = rig.orders(Intent.PROTECT)
    assert record["status"] == OrderStatus.EXPIRED.value
    assert metric(rig, "ProtectiveStopsPlaced") == 0
    # When the next cycle runs with a stop below the price: the next attempt is placed, once
    rig.clock.advance(timedelta(hours=1))
    placed = rig.service().protect_positions({BTC.value: STOP})
    rig.service().protect_positions({BTC.value: STOP})
    assert "ACCEPTED" in placed[BTC.value], placed
    sent = rig.sent("POST", "STOP_LOSS_LIMIT")
    assert [s["stopPrice"] for s in sent] == ["32000", "31000"]
    statuses = sorted(o["status"] for o in rig.orders(Intent.PROTECT))
    assert statuses == [OrderStatus.ACCEPTED.value, OrderStatus.EXPIRED.value]
    assert metric(rig, "ProtectiveStopsPlaced") == 1


# -- the open-orders index lagging behind this run's own writes -------------------------------


def test_live_venue_a_stale_index_entry_of_the_stop_just_cancelled_never_cuts_the_close(
    rig: Rig,
) -> None:
    entry(rig.service())
    rig.service().protect_positions({BTC.value: STOP})
    # Given an index that still lists the stop as resting after the close cancelled it
    rig.clock.advance(timedelta(hours=1, minutes=30))
    service, index = lagging(rig)
    index.freeze()
    # When the exit rule closes the position
    result = close(service)
    # Then the stop this run cancelled is no sell still open: the whole holding is sold,
    # nothing counted as an oversell (a critical alarm that turns the kill-switch on)
    assert result.sent and result.status != "rejected", result
    sells = [p for p in rig.sent("POST", "MARKET") if p["side"] == "SELL"]
    assert [s["quantity"] for s in sells] == ["0.02997"]
    assert rig.metrics.total("OversellRefused") == 0
    (stop,) = rig.orders(Intent.PROTECT)
    assert stop["status"] == OrderStatus.CANCELED.value


def test_live_venue_the_protective_step_sees_the_close_this_run_sent_before_the_index_does(
    rig: Rig,
) -> None:
    entry(rig.service())
    rig.service().protect_positions({BTC.value: STOP})
    rig.clock.advance(timedelta(hours=1, minutes=30))
    # Given an index lagging this run's writes, and a close whose answer never came back
    service, index = lagging(rig)
    index.freeze()
    rig.fake.fail_next("POST", "/api/v3/order", "timeout_before_booking")
    closing = close(service)
    assert closing.status == OrderStatus.SUBMITTED.value, closing
    # When the same cycle's protective step runs
    note = service.protect_positions({BTC.value: STOP})
    # Then it sees the close this run sent (open, not yet in the index): no stop beside it
    assert "being closed by" in note[BTC.value], note
    assert len(rig.sent("POST", "STOP_LOSS_LIMIT")) == 1
    assert [o["status"] for o in rig.fake.orders() if o["type"] == "STOP_LOSS_LIMIT"] == [
        "CANCELED"
    ]


class _BookedThenRateLimited:
    """The venue books the stop, but the client reads its answer as a rate-limit refusal."""

    def __init__(self, venue: CcxtVenue) -> None:
        self._venue = venue

    def create_stop_order(self, *args: Any) -> Any:
        self._venue.create_stop_order(*args)
        raise OrderStateUnknownError("binance", "create_order", "429 Too Many Requests", "x",
                                     rate_limited=True)  # fmt: skip

    def __getattr__(self, name: str) -> Any:
        return getattr(self._venue, name)


def test_live_venue_a_stop_found_after_a_rate_limit_refusal_is_recorded_and_counted_reconciled(
    rig: Rig,
) -> None:
    entry(rig.service())
    note = rig.service(_BookedThenRateLimited(rig.venue)).protect_positions({BTC.value: STOP})
    # Then the lookup by client ID found it: recorded as resting, counted like every order
    # reconciled after an unknown create, and never placed again
    assert "ACCEPTED" in note[BTC.value], note
    assert metric(rig, "OrdersReconciled") == 1
    rig.service().protect_positions({BTC.value: STOP})
    assert len(rig.sent("POST", "STOP_LOSS_LIMIT")) == 1
